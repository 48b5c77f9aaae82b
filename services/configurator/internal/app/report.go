package app

import (
	"context"
	"fmt"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/configurator/internal/domain"
)

// Component is the configurator's name in the login budget and in
// GatewayCredentialsRejected / GatewayCredentialsAccepted.
const Component = "configurator"

// Reporter runs a configuration for an event (GatewayProvisioned,
// GatewayRecovered) or a pending configuration (Resumer) and reports it
// (Events): GatewayConfigured or GatewayConfigurationFailed, with
// GatewayCredentialsRejected when no password could be logged in with and
// GatewayCredentialsAccepted when a pending configuration got through.
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
// and retrying cannot help (among them a run that found no password to log
// in with: it is pending, and Resumer runs it again when the login budget
// admits one). Any other error means "run it again later": a
// retryable failure (reported, returned as the *domain.Failure), a run
// interrupted by ctx (not reported), or a configured run that could not be
// reported (the next run finds nothing to change and reports again). A
// permanent failure that could not be reported is a *FinalError.
func (r *Reporter) ConfigureAndReport(ctx context.Context, req Request) error {
	_, err := r.configureAndReport(ctx, req)
	return err
}

// configureAndReport is ConfigureAndReport that also returns the run's
// failure (nil: configured).
func (r *Reporter) configureAndReport(ctx context.Context, req Request) (*domain.Failure, error) {
	res, fail := r.conf.Configure(ctx, req)
	if fail != nil && ctx.Err() != nil {
		// Shutting down mid-run: no verdict; the request comes back.
		return fail, fmt.Errorf("configuration of %s interrupted: %w", req.GatewayID, ctx.Err())
	}
	for _, ev := range Events(req.GatewayID, res, fail) {
		err := r.pub.Publish(ctx, ev)
		switch {
		case err == nil:
		case fail == nil:
			// A second run finds nothing to change and reports again.
			return nil, fmt.Errorf("report configured %s: %w", req.GatewayID, err)
		case fail.Retryable:
			return fail, fmt.Errorf("report failure of %s: %w", req.GatewayID, err)
		default:
			// Running again would spend login attempts for the same verdict.
			return fail, &FinalError{Err: fmt.Errorf("could not report the failure of %s at %s (%s): %w", req.GatewayID, fail.Step, fail.Reason, err)}
		}
	}
	if fail != nil && fail.Retryable {
		return fail, fail
	}
	return fail, nil
}

// Events are the events that report a run: GatewayConfigured or
// GatewayConfigurationFailed; with GatewayCredentialsRejected when no
// password could be logged in with, or GatewayCredentialsAccepted when
// the run logged in for a configuration pending on its credentials.
func Events(gatewayID string, res domain.Result, fail *domain.Failure) []proto.Message {
	var evs []proto.Message
	if fail == nil {
		evs = append(evs, ConfiguredEvent(gatewayID, res))
	} else {
		evs = append(evs, FailedEvent(gatewayID, fail))
		if ev := CredentialsRejectedEvent(gatewayID, fail); ev != nil {
			evs = append(evs, ev)
		}
	}
	if res.CredentialsAccepted != "" {
		evs = append(evs, &eventsv1.GatewayCredentialsAccepted{GatewayId: gatewayID, Component: Component, Credential: res.CredentialsAccepted})
	}
	return evs
}

// CredentialsRejectedEvent is the GatewayCredentialsRejected event of a
// failure, nil when the failure is not about credentials.
func CredentialsRejectedEvent(gatewayID string, f *domain.Failure) *eventsv1.GatewayCredentialsRejected {
	cr := f.Credentials
	if cr == nil {
		return nil
	}
	ev := &eventsv1.GatewayCredentialsRejected{GatewayId: gatewayID, Component: Component, Reason: cr.Reason,
		Credential: cr.Credential, Detail: f.Reason, FailedLogins: int32(cr.FailedLogins)}
	if !cr.Until.IsZero() {
		ev.Until = timestamppb.New(cr.Until)
	}
	return ev
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
