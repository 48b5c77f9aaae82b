// Command configurator applies gateway settings through ISAPI. Without a
// command it runs the service (GatewayProvisioned / GatewayRecovered in,
// GatewayConfigured / GatewayConfigurationFailed out); `configurator
// provision` and `configurator apply` are one-shot operator commands. See
// services/configurator/README.md.
package main

import (
	"os"

	"mediagw/services/configurator/internal/app"
)

func main() { os.Exit(app.Main()) }
