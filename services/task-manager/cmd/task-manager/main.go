// Command task-manager turns device events into recording tasks: one task
// per online camera, on ECS Fargate or as local processes, kept right by
// device events, task state changes and periodic reconciliation.
// See services/task-manager/README.md.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/task-manager/internal/wiring"
)

func main() {
	cfg := service.NewConfig("task-manager", "turns device events into recording tasks", ":9103")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
