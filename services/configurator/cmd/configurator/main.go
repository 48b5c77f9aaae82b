// Command configurator applies gateway settings through ISAPI. Without a
// command it runs the service (GatewayProvisioned / GatewayRecovered in,
// GatewayConfigured / GatewayConfigurationFailed out); `configurator
// provision` and `configurator apply` are one-shot operator commands. See
// services/configurator/README.md.
package main

import (
	"context"
	"os"

	"mediagw/pkg/service"
	"mediagw/services/configurator/internal/ports/cli"
	"mediagw/services/configurator/internal/wiring"
)

func main() {
	if code, ok := cli.Main(os.Args[1:], os.Stdout, os.Stderr, wiring.Commands()); ok {
		os.Exit(code)
	}
	cfg := service.NewConfig("configurator", cli.Summary+" (commands: provision, apply; see `configurator help`)", ":9101")
	settings := wiring.Declare(cfg)
	os.Exit(service.Main(cfg, func(ctx context.Context, rt *service.Runtime) error {
		return wiring.Build(ctx, rt, settings())
	}))
}
