package service

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
)

func TestReadinessFollowsStateAndChecks(t *testing.T) {
	rt := NewRuntime("demo", slog.New(slog.NewTextHandler(io.Discard, nil)), aws.Config{})
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	get := func(path string) (int, string) {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, _ := get("/healthz"); code != 200 {
		t.Fatalf("healthz %d", code)
	}
	if code, _ := get("/readyz"); code != 503 {
		t.Fatalf("readyz before SetReady: %d", code)
	}
	rt.SetReady(true)
	if code, _ := get("/readyz"); code != 200 {
		t.Fatalf("readyz after SetReady: %d", code)
	}
	rt.AddReadinessCheck("queue", func(context.Context) error { return errors.New("unreachable") })
	if code, body := get("/readyz"); code != 503 || !strings.Contains(body, "queue: unreachable") {
		t.Fatalf("readyz with failing check: %d %q", code, body)
	}
	if code, body := get("/metrics"); code != 200 || !strings.Contains(body, "go_goroutines") {
		t.Fatalf("metrics: %d", code)
	}
}
