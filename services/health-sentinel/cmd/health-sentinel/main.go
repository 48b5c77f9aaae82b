// Command health-sentinel will react to task failures and gateway faults and
// alert by email (issue 11). Today it only serves /healthz, /readyz and
// /metrics; see README.md.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/health-sentinel/internal/wiring"
)

func main() {
	cfg := service.NewConfig("health-sentinel", "serves /healthz, /readyz and /metrics; consumes nothing yet", ":9104")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
