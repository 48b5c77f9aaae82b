// Command task-manager turns device events into recording tasks.
// Not built yet beyond the service runtime: it loads its configuration and
// serves /healthz, /readyz and /metrics.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
)

func main() {
	cfg := service.NewConfig("task-manager", "turns device events into recording tasks", ":9103")
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		rt.SetReady(true)
		<-ctx.Done()
		return nil
	}))
}
