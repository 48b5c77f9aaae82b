// Package wiring builds the health-sentinel from its settings. Today there
// is nothing to build: the service only serves /healthz, /readyz and
// /metrics (pkg/service does that); it consumes no queue yet.
package wiring

import (
	"context"

	"mediagw/pkg/service"
)

// Settings are the health-sentinel's own settings. It has none yet beyond
// the common ones (HTTP_ADDR, LOG_LEVEL, SHUTDOWN_GRACE).
type Settings struct{}

// Declare declares the settings on cfg; call the returned function after
// cfg is parsed.
func Declare(cfg *service.Config) func() Settings {
	return func() Settings { return Settings{} }
}

// Build registers the service's parts on rt. It registers none: the
// runtime then stays up, and ready, until its context ends.
func Build(ctx context.Context, rt *service.Runtime, s Settings) error {
	return nil
}
