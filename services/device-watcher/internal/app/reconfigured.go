package app

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
)

// reconfigurable is the watch of one gateway (watcher.Watcher).
type reconfigurable interface {
	Reconfigured(ctx context.Context, configuredAt time.Time) error
}

// reconfigurations hands the configurator's GatewayConfigured events to
// the watchers of the gateways they are about.
type reconfigurations struct {
	watchers map[string]reconfigurable
	log      *slog.Logger
}

func newReconfigurations(watchers map[string]reconfigurable, log *slog.Logger) *reconfigurations {
	return &reconfigurations{watchers: watchers, log: log}
}

func (r *reconfigurations) register(router *messaging.Router) {
	messaging.On(router, r.gatewayConfigured)
}

// gatewayConfigured: the configurator logged in to the gateway with the
// password in the parameter store and configured it, so a rejection of
// that password before then is out of date. An event about a gateway this
// instance does not watch is acknowledged: another deployment's, or one
// removed from GATEWAYS.
func (r *reconfigurations) gatewayConfigured(ctx context.Context, ev *eventsv1.GatewayConfigured, _ *messaging.Message) error {
	w, ok := r.watchers[ev.GetGatewayId()]
	if !ok {
		r.log.Debug("GatewayConfigured for a gateway not watched here", "gateway_id", ev.GetGatewayId())
		return nil
	}
	var at time.Time
	if ts := ev.GetMeta().GetOccurredAt(); ts != nil {
		at = ts.AsTime()
	}
	if err := w.Reconfigured(ctx, at); err != nil {
		return fmt.Errorf("gateway %s reconfigured: %w", ev.GetGatewayId(), err)
	}
	return nil
}
