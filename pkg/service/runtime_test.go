package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/prometheus/client_golang/prometheus/testutil"
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

func quietRuntime() *Runtime {
	return NewRuntime("demo", slog.New(slog.NewTextHandler(io.Discard, nil)), aws.Config{})
}

// One part failing stops every other part, runs the OnStop functions and
// is what Run returns.
func TestRunOnePartFailingStopsTheOthers(t *testing.T) {
	rt := quietRuntime()
	otherStopped := make(chan struct{})
	rt.Go("patient", func(ctx context.Context) error {
		<-ctx.Done()
		close(otherStopped)
		return ctx.Err()
	})
	boom := errors.New("boom")
	rt.Go("failing", func(context.Context) error { return boom })
	var stopped []string
	rt.OnStop(func(context.Context) error {
		select {
		case <-otherStopped:
			stopped = append(stopped, "after parts")
		default:
			stopped = append(stopped, "before parts")
		}
		return nil
	})
	err := rt.Run(context.Background())
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failing") {
		t.Fatalf("Run = %v, want the failing part's error, named", err)
	}
	if len(stopped) != 1 || stopped[0] != "after parts" {
		t.Fatalf("OnStop ran %v, want once, after every part stopped", stopped)
	}
}

// Cancelling the context is a clean stop: nil, even for parts that return
// ctx.Err(); a runtime without parts waits for the context.
func TestRunStopsCleanlyOnCancel(t *testing.T) {
	for _, parts := range []int{0, 2} {
		rt := quietRuntime()
		for i := 0; i < parts; i++ {
			rt.Go("loop", func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() })
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		select {
		case err := <-done:
			t.Fatalf("%d parts: Run returned %v before the context ended", parts, err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("%d parts: Run = %v after cancel, want nil", parts, err)
		}
	}
}

// A periodic run that fails is logged and counted, and the next run comes.
func TestEveryGoesOnAfterAFailure(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := quietRuntime()
		runs := 0
		ctx, cancel := context.WithCancel(context.Background())
		rt.Every("reconcile", time.Minute, func(context.Context) error {
			runs++
			if runs == 4 {
				cancel()
				return nil
			}
			return errors.New("store unreachable")
		})
		if err := rt.Run(ctx); err != nil {
			t.Fatalf("Run = %v: a periodic failure must not stop the service", err)
		}
		if runs != 4 {
			t.Fatalf("runs = %d, want 4", runs)
		}
		if got := testutil.ToFloat64(rt.failures.WithLabelValues("reconcile")); got != 3 {
			t.Fatalf("mediagw_periodic_failures_total = %v, want 3", got)
		}
	})
}

type codedErr struct{ code int }

func (e codedErr) Error() string { return fmt.Sprintf("exit %d", e.code) }
func (e codedErr) ExitCode() int { return e.code }

func TestExitCodeComesFromTheError(t *testing.T) {
	if got := exitCode(fmt.Errorf("part: %w", codedErr{6})); got != 6 {
		t.Errorf("wrapped ExitCoder: %d, want 6", got)
	}
	if got := exitCode(errors.New("plain")); got != 1 {
		t.Errorf("plain error: %d, want 1", got)
	}
}

// After the stop signal, the parts and the cleanup share one grace: a
// cleanup that starts late gets only what is left of it.
func TestCleanupGetsWhatThePartsLeftOfTheGrace(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		rt := quietRuntime()
		rt.Grace = 10 * time.Second
		rt.Go("slow to stop", func(ctx context.Context) error {
			<-ctx.Done()
			time.Sleep(7 * time.Second) // fake time: finishing work in flight
			return nil
		})
		var left time.Duration
		rt.OnStop(func(ctx context.Context) error {
			d, _ := ctx.Deadline()
			left = time.Until(d)
			return nil
		})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		synctest.Wait()
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
		if left != 3*time.Second {
			t.Fatalf("cleanup had %s left, want 3s (10s grace − 7s of the parts)", left)
		}
	})
}

func TestLoggerAndReadinessRedactRegisteredSecrets(t *testing.T) {
	var buf bytes.Buffer
	rt := NewRuntime("demo", slog.New(slog.NewJSONHandler(&buf, nil)), aws.Config{})
	log := rt.Logger.With("gateway_id", "gw-1")
	const pw = "Gw<Pass&9"
	rt.Secrets().Add(pw)
	body, _ := json.Marshal(map[string]string{"password": pw})
	log.Error("login with "+pw+" failed", "err", fmt.Errorf("gateway said %s", body), "raw", pw)
	out := buf.String()
	if strings.Contains(out, "Gw<Pass") || strings.Contains(out, `Gw\u003cPass`) || strings.Count(out, "[redacted]") != 3 || !strings.Contains(out, `"gateway_id":"gw-1"`) {
		t.Fatalf("log line: %s", out)
	}

	srv := httptest.NewServer(rt.Handler())
	defer srv.Close()
	rt.SetReady(true)
	rt.AddReadinessCheck("gateway", func(context.Context) error { return errors.New("rejected " + pw) })
	resp, err := http.Get(srv.URL + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if strings.Contains(string(b), pw) || !strings.Contains(string(b), "gateway: rejected [redacted]") {
		t.Fatalf("readyz: %q", b)
	}
}
