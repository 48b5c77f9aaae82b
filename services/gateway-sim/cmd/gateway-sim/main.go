// Command gateway-sim runs a simulated Hikvision media gateway: the ISAPI
// HTTP API with Digest auth and lockout, RTSP streams of every camera, and
// an admin endpoint to drive scenarios. The simulator is
// mediagw/testsupport/gatewaysim; see README.md.
//
// It is a command, not a service: --http-addr is the simulated gateway's
// ISAPI address, so there is no health listener; the admin API answers
// /admin/healthz.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/aws/aws-sdk-go-v2/aws"

	"mediagw/pkg/service"
	"mediagw/services/gateway-sim/internal/wiring"
)

func main() {
	cfg := service.NewCommandConfig("gateway-sim", "simulated Hikvision media gateway: ISAPI over HTTP (Digest auth, lockout), RTSP streams of every camera, admin API for scenarios")
	settings := wiring.Declare(cfg)
	os.Exit(run(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}

// run is service.Main for a command (no health listener, no AWS): parse,
// build, run until SIGTERM or SIGINT. Exit code 0, 1 for a failure, 2 for
// bad settings.
func run(cfg *service.Config, build func(ctx context.Context, rt *service.Runtime) error) int {
	if err := cfg.Parse(os.Args[1:], os.Stdout); err != nil {
		if errors.Is(err, service.ErrHelp) {
			return 0
		}
		fmt.Fprintln(os.Stderr, "gateway-sim:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	logger := cfg.Logger(os.Stderr)
	rt := service.NewRuntime("gateway-sim", logger, aws.Config{})
	if err := build(ctx, rt); err != nil {
		logger.Error("start-up failed", "err", err)
		return 1
	}
	if err := rt.Run(ctx); err != nil {
		logger.Error("stopped with error", "err", err)
		return 1
	}
	return 0
}
