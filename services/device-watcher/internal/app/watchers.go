package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"mediagw/pkg/gatewayid"
)

// Watchers are the watchers of the gateways this instance is configured
// with, by gateway id.
type Watchers struct {
	byID map[gatewayid.ID]*Watcher
	log  *slog.Logger
}

// NewWatchers indexes ws by gateway id.
func NewWatchers(log *slog.Logger, ws ...*Watcher) *Watchers {
	m := make(map[gatewayid.ID]*Watcher, len(ws))
	for _, w := range ws {
		m[w.GatewayID()] = w
	}
	return &Watchers{byID: m, log: log}
}

// GatewayConfigured: the configurator configured the gateway at
// configuredAt (zero: now), perhaps changing its password to the
// parameter's current version; the watcher looks at the password and the
// login budget at once (see Watcher.Reconfigured). A gateway this
// instance does not watch is not an error: another deployment's, or one
// removed from its settings.
func (ws *Watchers) GatewayConfigured(ctx context.Context, gatewayID string, configuredAt time.Time) error {
	w, ok := ws.byID[gatewayid.ID(gatewayID)]
	if !ok {
		ws.log.Debug("GatewayConfigured for a gateway not watched here", "gateway_id", gatewayID)
		return nil
	}
	if err := w.Reconfigured(ctx, configuredAt); err != nil {
		return fmt.Errorf("gateway %s reconfigured: %w", gatewayID, err)
	}
	return nil
}
