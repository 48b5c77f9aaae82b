// Command device-watcher tracks every camera channel on every gateway.
// Not built yet beyond the service runtime: it loads its configuration and
// serves /healthz, /readyz and /metrics.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
)

func main() {
	cfg := service.NewConfig("device-watcher", "tracks every camera channel on every gateway", ":9102")
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		rt.SetReady(true)
		<-ctx.Done()
		return nil
	}))
}
