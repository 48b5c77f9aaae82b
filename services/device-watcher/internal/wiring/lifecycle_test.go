package wiring_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"testing/synctest"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"mediagw/pkg/service"
	"mediagw/services/device-watcher/internal/domain"
	"mediagw/services/device-watcher/internal/wiring"
	"mediagw/testsupport/testkit"
)

// With no gateway configured the service has nothing to do: it stays up
// (ready, under service.Main) until it is stopped, and stops cleanly.
func TestNoGatewayStaysUpUntilStopped(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		logs := &testkit.Buffer{}
		rt := service.NewRuntime(wiring.Name, slog.New(slog.NewJSONHandler(logs, nil)), aws.Config{Region: "us-east-1"})
		ctx, cancel := context.WithCancel(t.Context())
		if err := wiring.Build(ctx, rt, wiring.Settings{PollInterval: time.Second, LeaseDuration: time.Second}); err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- rt.Run(ctx) }()
		synctest.Wait() // everything started is waiting: for the stop
		select {
		case err := <-done:
			t.Fatalf("stopped on its own: %v", err)
		default:
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("stop: %v", err)
		}
	})
}

// A table that does not exist is a fault no retry fixes: the watcher
// returns it, and the runtime stops the service with it (the process exits
// 1 and the orchestrator restarts it), rather than staying up, ready and
// blind. The login budget's table too: without it no login is admitted.
func TestMissingTableStopsTheService(t *testing.T) {
	t.Parallel()
	for _, missing := range []string{"LEASES_TABLE", "LOGIN_BUDGET_TABLE"} {
		t.Run(missing, func(t *testing.T) {
			t.Parallel()
			h := newHarness(t)
			s := h.sim("gw-m", 1, 1)
			table := func(env string) string {
				if env == missing {
					return h.env[env] + "-missing"
				}
				return h.env[env]
			}
			cfg := service.NewConfig(wiring.Name, "device-watcher under test", "127.0.0.1:0")
			settings := wiring.Declare(cfg)
			args := []string{
				"--gateways=gw-m=" + s.URL(),
				"--device-events-topic-arn=" + h.env["DEVICE_EVENTS_TOPIC_ARN"],
				"--gateway-events-topic-arn=" + h.env["GATEWAY_EVENTS_TOPIC_ARN"],
				"--device-media-url-table=" + h.env["DEVICE_MEDIA_URL_TABLE"],
				"--leases-table=" + table("LEASES_TABLE"),
				"--login-budget-table=" + table("LOGIN_BUDGET_TABLE"),
				"--parameter-root=" + h.env["PARAMETER_ROOT"],
				"--instance-id=dw-1", "--lease-duration=3s",
			}
			if err := cfg.Parse(args, io.Discard); err != nil {
				t.Fatal(err)
			}
			logs := &testkit.Buffer{}
			rt := service.NewRuntime(wiring.Name, slog.New(slog.NewJSONHandler(logs, nil)), h.aws)
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if err := wiring.Build(ctx, rt, settings()); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- rt.Run(ctx) }()
			select {
			case err := <-done:
				if !errors.Is(err, domain.ErrMisconfigured) {
					t.Fatalf("service stopped with %v, want the missing table", err)
				}
			case <-time.After(patience):
				t.Fatalf("still running with a missing table; logs:\n%s", logs.String())
			}
			if n := s.Counters().Subscribers; n != 0 {
				t.Fatalf("%d event streams left open", n)
			}
			if n := len(s.LoginFailures()); n != 0 {
				t.Fatalf("%d failed logins", n)
			}
		})
	}
}
