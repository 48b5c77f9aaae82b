// Command gateway-sim runs a simulated Hikvision media gateway: the ISAPI
// HTTP API with Digest auth and lockout, RTSP streams of every camera, and
// an admin endpoint to drive scenarios. The simulator is
// mediagw/testsupport/gatewaysim; see README.md.
//
// Its settings are a command's (service.NewCommandConfig): --http-addr is
// the simulated gateway's ISAPI address, so service.Main serves no health
// listener; the admin API answers /admin/healthz.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/gateway-sim/internal/wiring"
)

func main() {
	cfg := service.NewCommandConfig("gateway-sim", "simulated Hikvision media gateway: ISAPI over HTTP (Digest auth, lockout), RTSP streams of every camera, admin API for scenarios")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
