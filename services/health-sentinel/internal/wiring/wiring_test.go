package wiring_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"mediagw/pkg/service"
	"mediagw/services/health-sentinel/internal/wiring"
)

// TestServiceIsReadyAndStopsOnCancel runs the wired service as Main does:
// declare and parse the settings, build, mark ready, run until cancelled.
func TestServiceIsReadyAndStopsOnCancel(t *testing.T) {
	cfg := service.NewConfig("health-sentinel", "test", "127.0.0.1:0")
	settings := wiring.Declare(cfg)
	if err := cfg.Parse(nil, io.Discard); err != nil {
		t.Fatal(err)
	}
	rt := service.NewRuntime("health-sentinel", slog.New(slog.DiscardHandler), aws.Config{})
	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()

	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := wiring.Build(ctx, rt, settings()); err != nil {
		t.Fatalf("Build: %v", err)
	}
	rt.SetReady(true)
	done := make(chan error, 1)
	go func() { done <- rt.Run(ctx) }()

	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
		}
		if path == "/metrics" && !strings.Contains(string(body), "go_goroutines") {
			t.Fatalf("/metrics has no runtime metrics: %s", body)
		}
	}
	// Ready was answered: the service is still running (it has no parts,
	// so it waits for its context).
	select {
	case err := <-done:
		t.Fatalf("Run returned before cancel: %v", err)
	default:
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Run after cancel: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after cancel")
	}
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("/readyz after stop: %d, want 503", resp.StatusCode)
	}
}
