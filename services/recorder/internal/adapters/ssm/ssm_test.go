package ssm

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ssm"
	"github.com/aws/aws-sdk-go-v2/service/ssm/types"

	"mediagw/pkg/loginbudget"
)

type fakeSSM struct {
	value     string
	version   int64
	decrypted int // reads with decryption
	plain     int // reads without
	err       error
}

func (f *fakeSSM) GetParameter(_ context.Context, in *ssm.GetParameterInput, _ ...func(*ssm.Options)) (*ssm.GetParameterOutput, error) {
	if f.err != nil {
		return nil, f.err
	}
	v := "AQICAHh-ciphertext"
	if aws.ToBool(in.WithDecryption) {
		f.decrypted++
		v = f.value
	} else {
		f.plain++
	}
	return &ssm.GetParameterOutput{Parameter: &types.Parameter{Value: aws.String(v), Version: f.version}}, nil
}

// The value is read once and named by its version; Current looks at the
// version without decrypting, and a newer one makes Get read again.
func TestCachedUntilANewVersion(t *testing.T) {
	f := &fakeSSM{value: "one", version: 3}
	p := NewPassword(f, "/mediagw/gateways/gw-1/Password")
	ctx := context.Background()
	for range 3 {
		v, cred, err := p.Get(ctx)
		if err != nil || v != "one" || cred != loginbudget.CredentialOf("/mediagw/gateways/gw-1/Password", 3) {
			t.Fatalf("Get = %q, %q, %v", v, cred, err)
		}
	}
	if f.decrypted != 1 {
		t.Fatalf("%d decrypted reads for three Gets, want 1", f.decrypted)
	}
	if cred, err := p.Current(ctx); err != nil || cred != "/mediagw/gateways/gw-1/Password@3" || f.plain != 1 {
		t.Fatalf("Current = %q, %v (plain reads %d)", cred, err, f.plain)
	}
	if _, _, _ = p.Get(ctx); f.decrypted != 1 {
		t.Fatal("the same version read again")
	}
	f.value, f.version = "two", 4
	if cred, _ := p.Current(ctx); cred != "/mediagw/gateways/gw-1/Password@4" {
		t.Fatalf("Current after a put = %q", cred)
	}
	if v, cred, _ := p.Get(ctx); v != "two" || cred != "/mediagw/gateways/gw-1/Password@4" || f.decrypted != 2 {
		t.Fatalf("Get after a new version = %q, %q (decrypted reads %d)", v, cred, f.decrypted)
	}
}

type registry []string

func (r *registry) Add(s ...string) { *r = append(*r, s...) }

// Every value read is registered for redaction.
func TestValuesAreRegisteredAsSecrets(t *testing.T) {
	f := &fakeSSM{value: "one", version: 1}
	var reg registry
	p := NewPassword(f, "/p", WithSecrets(&reg))
	p.Get(context.Background())
	f.value, f.version = "two", 2
	p.Current(context.Background())
	p.Get(context.Background())
	if len(reg) != 2 || reg[0] != "one" || reg[1] != "two" {
		t.Fatalf("registered %d values, want both read", len(reg))
	}
}

func TestErrorsNameTheParameterNotTheValue(t *testing.T) {
	f := &fakeSSM{err: &types.ParameterNotFound{Message: aws.String("nope")}}
	_, _, err := NewPassword(f, "/mediagw/gw1/rtsp").Get(context.Background())
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "/mediagw/gw1/rtsp") {
		t.Fatalf("Get = %v, want ErrNotFound naming the parameter", err)
	}
	if _, err := NewPassword(f, "/mediagw/gw1/rtsp").Current(context.Background()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Current = %v, want ErrNotFound", err)
	}
}
