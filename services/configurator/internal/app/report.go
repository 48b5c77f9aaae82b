package app

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/types/known/durationpb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/configurator/internal/domain"
)

// Reporter runs a configuration for an event (GatewayProvisioned,
// GatewayRecovered) and reports it as GatewayConfigured or
// GatewayConfigurationFailed.
type Reporter struct {
	conf Configurer
	pub  EventPublisher
}

// NewReporter returns a Reporter.
func NewReporter(conf Configurer, pub EventPublisher) *Reporter {
	return &Reporter{conf: conf, pub: pub}
}

// FinalError marks an error after which the same request must not be run
// again: a new run would spend login attempts for the same verdict. Its
// text is the wrapped error's.
type FinalError struct{ Err error }

func (e *FinalError) Error() string { return e.Err.Error() }
func (e *FinalError) Unwrap() error { return e.Err }

// ConfigureAndReport runs one configuration and reports it. It returns nil
// when the gateway is configured and reported, or the failure is reported
// and retrying cannot help. Any other error means "run it again later": a
// retryable failure (reported, returned as the *domain.Failure), a run
// interrupted by ctx (not reported), or a configured run that could not be
// reported (the next run finds nothing to change and reports again). A
// permanent failure that could not be reported is a *FinalError.
func (r *Reporter) ConfigureAndReport(ctx context.Context, req Request) error {
	res, fail := r.conf.Configure(ctx, req)
	if fail != nil && ctx.Err() != nil {
		// Shutting down mid-run: no verdict; the request comes back.
		return fmt.Errorf("configuration of %s interrupted: %w", req.GatewayID, ctx.Err())
	}
	if fail == nil {
		if err := r.pub.Publish(ctx, ConfiguredEvent(req.GatewayID, res)); err != nil {
			// A second run finds nothing to change and reports again.
			return fmt.Errorf("report configured %s: %w", req.GatewayID, err)
		}
		return nil
	}
	if err := r.pub.Publish(ctx, FailedEvent(req.GatewayID, fail)); err != nil {
		if fail.Retryable {
			return fmt.Errorf("report failure of %s: %w", req.GatewayID, err)
		}
		// Running again would spend login attempts for the same verdict.
		return &FinalError{Err: fmt.Errorf("could not report the failure of %s at %s (%s): %w", req.GatewayID, fail.Step, fail.Reason, err)}
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
