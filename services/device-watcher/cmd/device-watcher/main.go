// Command device-watcher tracks every camera channel on every configured
// gateway: it keeps the deviceMediaURL table current and announces each
// camera online/offline/deleted and each gateway unreachable/reachable
// exactly once per transition. See the service README.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/device-watcher/internal/app"
)

func main() {
	cfg, settings := app.NewConfig()
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return app.Run(ctx, rt, settings)
	}))
}
