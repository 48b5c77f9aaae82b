package codescan

import (
	"slices"
	"strings"
	"testing"
)

func TestScanFindsEveryWayToCallAnOperationAndNothingElse(t *testing.T) {
	b, err := Scan(".", "mediagw/deploy/cdk/codescan/testdata/app")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"dynamodb:GetItem", // through an interface of the binary's own
		"dynamodb:Query",   // through a paginator
		"s3:ListBucket",    // ListObjectsV2 is authorized as s3:ListBucket
		"s3:PutObject",     // on the client
	}
	if got := b.ActionList(); !slices.Equal(got, want) {
		t.Errorf("actions %q, want %q (lookalike.DeleteObject is none)", got, want)
	}
	if w := b.Actions["s3:PutObject"]; len(w) != 1 || !strings.Contains(w[0], "main.go:") {
		t.Errorf("s3:PutObject located at %q", w)
	}
	if got := b.Resources["Table"]; !slices.Equal(got, []string{"fixture-table"}) {
		t.Errorf("tables %q", got)
	}
	if got := b.Resources["Queue"]; !slices.Equal(got, []string{"fixture-queue"}) {
		t.Errorf("queues %q (an optional queue named by a constant)", got)
	}
}

func TestScanRefusesAPatternWithoutMediagwCode(t *testing.T) {
	if _, err := Scan(".", "fmt"); err == nil {
		t.Error("scanning fmt succeeded")
	}
}
