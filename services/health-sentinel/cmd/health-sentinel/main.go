// Command health-sentinel turns task failures and gateway faults into
// incidents and alert mails, checks every gateway's API and instance, and
// recovers a sick gateway by itself; see README.md.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/health-sentinel/internal/wiring"
)

func main() {
	cfg := service.NewConfig("health-sentinel", "incidents and alert mails from task failures and gateway faults; gateway health checks and recovery", ":9104")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
