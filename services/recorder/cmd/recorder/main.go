// Command recorder records the camera channels of one gateway device into
// S3 as continuous segments. See README.md for its interface.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/recorder/internal/wiring"
)

func main() {
	cfg := service.NewConfig("recorder", "records a gateway device's camera channels into S3 as continuous segments", ":9400")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
