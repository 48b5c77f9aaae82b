// Command health-sentinel reacts to task failures and gateway faults, alerts by email.
// Not built yet beyond the service runtime: it loads its configuration and
// serves /healthz, /readyz and /metrics.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
)

func main() {
	cfg := service.NewConfig("health-sentinel", "reacts to task failures and gateway faults, alerts by email", ":9104")
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		rt.SetReady(true)
		<-ctx.Done()
		return nil
	}))
}
