// Package sqs is the device-watcher's inbound port on SQS: the handlers of
// the events it consumes, registered on a messaging.Router.
package sqs

import (
	"context"
	"time"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
)

// Reconfigurations is the use case GatewayConfigured calls (app.Watchers).
type Reconfigurations interface {
	GatewayConfigured(ctx context.Context, gatewayID string, configuredAt time.Time) error
}

// Handler is the handler of the queue mediagw-device-watcher-gateway-events.
func Handler(app Reconfigurations) messaging.Handler {
	r := messaging.NewRouter()
	Register(r, app)
	return r.Handle
}

// Register adds the handlers to r: GatewayConfigured, from the queue
// mediagw-device-watcher-gateway-events.
func Register(r *messaging.Router, app Reconfigurations) {
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayConfigured, _ *messaging.Message) error {
		return gatewayConfigured(ctx, app, ev)
	})
}

// gatewayConfigured hands the configurator's GatewayConfigured to the
// watcher of the gateway it is about; its meta.occurred_at is when the
// gateway was configured. An error fails the message (retried by the
// queue, dead-lettered after its max receive count).
func gatewayConfigured(ctx context.Context, app Reconfigurations, ev *eventsv1.GatewayConfigured) error {
	var at time.Time
	if ts := ev.GetMeta().GetOccurredAt(); ts != nil {
		at = ts.AsTime()
	}
	return app.GatewayConfigured(ctx, ev.GetGatewayId(), at)
}
