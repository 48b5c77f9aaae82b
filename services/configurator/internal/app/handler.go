// Package app wires the configurator: the service (SQS consumer → handler
// → SNS publisher) and the operator commands.
package app

import (
	"context"
	"fmt"
	"log/slog"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/configurator/internal/configurator"
	"mediagw/services/configurator/internal/domain"
)

// Publisher publishes events.
type Publisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Configurer configures one gateway.
type Configurer interface {
	Configure(ctx context.Context, req configurator.Request) (domain.Result, *domain.Failure)
}

// Handler turns GatewayProvisioned and GatewayRecovered into runs and
// their results into GatewayConfigured or GatewayConfigurationFailed.
type Handler struct {
	conf Configurer
	pub  Publisher
	log  *slog.Logger
}

// NewHandler returns a Handler.
func NewHandler(conf Configurer, pub Publisher, log *slog.Logger) *Handler {
	return &Handler{conf: conf, pub: pub, log: log}
}

// Register adds the handler's event types to the router.
func (h *Handler) Register(r *messaging.Router) {
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayProvisioned, _ *messaging.Message) error {
		return h.Handle(ctx, configurator.Request{GatewayID: ev.GetGatewayId(), Address: ev.GetAddress(),
			ElasticIP: ev.GetElasticIp(), BootstrapParameter: ev.GetBootstrapPasswordParameter()})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayRecovered, _ *messaging.Message) error {
		return h.Handle(ctx, configurator.Request{GatewayID: ev.GetGatewayId(), Address: ev.GetAddress(),
			ElasticIP: ev.GetElasticIp(), BootstrapParameter: ev.GetBootstrapPasswordParameter()})
	})
}

// Handle runs one configuration and reports it. The message is done (nil)
// when the gateway is configured or the failure is reported and retrying
// cannot help; a retryable failure is reported and returned, so that SQS
// delivers the message again after a backoff.
func (h *Handler) Handle(ctx context.Context, req configurator.Request) error {
	if req.GatewayID == "" {
		return messaging.Permanentf("event without gateway_id")
	}
	res, fail := h.conf.Configure(ctx, req)
	if fail != nil && ctx.Err() != nil {
		// Shutting down mid-run: no verdict; the message comes back.
		return fmt.Errorf("configuration of %s interrupted: %w", req.GatewayID, ctx.Err())
	}
	if fail == nil {
		if err := h.pub.Publish(ctx, ConfiguredEvent(req.GatewayID, res)); err != nil {
			// A second run finds nothing to change and reports again.
			return fmt.Errorf("report configured %s: %w", req.GatewayID, err)
		}
		return nil
	}
	if err := h.pub.Publish(ctx, FailedEvent(req.GatewayID, fail)); err != nil {
		if fail.Retryable {
			return fmt.Errorf("report failure of %s: %w", req.GatewayID, err)
		}
		// Running again would spend login attempts for the same verdict.
		return messaging.Permanentf("could not report the failure of %s at %s (%s): %w", req.GatewayID, fail.Step, fail.Reason, err)
	}
	if fail.Retryable {
		return fail
	}
	return nil
}

// ConfiguredEvent is the GatewayConfigured event of a result.
func ConfiguredEvent(gatewayID string, res domain.Result) *eventsv1.GatewayConfigured {
	ev := &eventsv1.GatewayConfigured{GatewayId: gatewayID, Rebooted: res.Rebooted, Took: durationpb.New(res.Took)}
	for _, s := range res.Changed {
		ev.Changed = append(ev.Changed, string(s))
	}
	return ev
}

// FailedEvent is the GatewayConfigurationFailed event of a failure.
func FailedEvent(gatewayID string, f *domain.Failure) *eventsv1.GatewayConfigurationFailed {
	ev := &eventsv1.GatewayConfigurationFailed{GatewayId: gatewayID, Step: f.Step, Reason: f.Reason, Retryable: f.Retryable}
	if f.LockRemaining > 0 {
		ev.LockRemaining = durationpb.New(f.LockRemaining)
	}
	return ev
}
