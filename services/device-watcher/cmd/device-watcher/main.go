// Command device-watcher tracks every camera channel on every configured
// gateway: it keeps the deviceMediaURL table current and announces each
// camera online/offline/deleted and each gateway unreachable/reachable
// exactly once per transition. See the service README.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/device-watcher/internal/wiring"
)

func main() {
	cfg := service.NewConfig("device-watcher", "tracks every camera channel on every gateway: DynamoDB deviceMediaURL and device/gateway events", ":9102")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
