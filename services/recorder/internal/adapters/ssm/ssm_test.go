package ssm

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"
)

type fakeSSM struct {
	value string
	calls int
	err   error
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	f.calls++
	if f.err != nil {
		return nil, f.err
	}
	if !aws.ToBool(in.WithDecryption) {
		return nil, errors.New("not decrypted")
	}
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Value: aws.String(f.value)}}, nil
}

func TestCachedUntilRefusedThenRateLimited(t *testing.T) {
	f := &fakeSSM{value: "one"}
	p := NewPassword(f, "/x", 50*time.Millisecond)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p.now = func() time.Time { return now }
	ctx := context.Background()
	for i := 0; i < 3; i++ {
		if v, err := p.Get(ctx); err != nil || v != "one" {
			t.Fatalf("Get = %q, %v", v, err)
		}
	}
	if f.calls != 1 {
		t.Fatalf("%d SSM calls for three Gets, want 1", f.calls)
	}
	f.value = "two"
	p.Invalidate()
	if v, _ := p.Get(ctx); v != "one" || f.calls != 1 {
		t.Fatalf("re-read %q within the minimum age (calls %d)", v, f.calls)
	}
	now = now.Add(60 * time.Millisecond) // past the minimum age
	if v, _ := p.Get(ctx); v != "two" || f.calls != 2 {
		t.Fatalf("after the minimum age Get = %q (calls %d), want the rotated value", v, f.calls)
	}
	if v, _ := p.Get(ctx); v != "two" || f.calls != 2 {
		t.Fatalf("not cached again: %q, calls %d", v, f.calls)
	}
}

func TestErrorsNameTheParameterNotTheValue(t *testing.T) {
	f := &fakeSSM{err: &types.ParameterNotFound{Message: aws.String("nope")}}
	_, err := NewPassword(f, "/mediagw/gw1/rtsp", time.Second).Get(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/mediagw/gw1/rtsp") {
		t.Fatalf("Get = %v, want ErrNotFound naming the parameter", err)
	}
}
