// Package sqs is the configurator's inbound port on its queue
// (mediagw-configurator-gateway-events): GatewayProvisioned and
// GatewayRecovered become runs of app.Reporter, whose results go out as
// GatewayConfigured or GatewayConfigurationFailed.
package sqs

import (
	"context"
	"errors"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/configurator/internal/app"
)

// ConfigureAndReporter is the use case behind the queue (*app.Reporter).
type ConfigureAndReporter interface {
	ConfigureAndReport(ctx context.Context, req app.Request) error
}

// Register adds the handlers of GatewayProvisioned and GatewayRecovered to
// the router.
func Register(r *messaging.Router, uc ConfigureAndReporter) {
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayProvisioned, _ *messaging.Message) error {
		return handle(ctx, uc, app.Request{GatewayID: ev.GetGatewayId(), Address: ev.GetAddress(),
			ElasticIP: ev.GetElasticIp(), BootstrapParameter: ev.GetBootstrapPasswordParameter()})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayRecovered, _ *messaging.Message) error {
		return handle(ctx, uc, app.Request{GatewayID: ev.GetGatewayId(), Address: ev.GetAddress(),
			ElasticIP: ev.GetElasticIp(), BootstrapParameter: ev.GetBootstrapPasswordParameter()})
	})
}

// handle maps the run's outcome to the message's: nil deletes it; an error
// returns it to SQS, which delivers it again after the consumer's backoff;
// a permanent error dead-letters it with the reason.
func handle(ctx context.Context, uc ConfigureAndReporter, req app.Request) error {
	if req.GatewayID == "" {
		return messaging.Permanentf("event without gateway_id")
	}
	err := uc.ConfigureAndReport(ctx, req)
	var final *app.FinalError
	if errors.As(err, &final) {
		return messaging.Permanent(final.Err)
	}
	return err
}
