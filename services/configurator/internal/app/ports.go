// Package app holds the configurator's use cases: Configurator.Configure
// applies a gateway's desired settings (reads its parameters, logs in
// without ever risking a lockout, writes only what differs, verifies every
// write, reboots when a change needs it and waits for the gateway to come
// back), and Reporter.ConfigureAndReport runs it for an event and publishes
// the result. The interfaces below are what they need; adapters/isapi,
// adapters/ssm, adapters/prometheus and the messaging publisher implement
// them.
package app

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"mediagw/services/configurator/internal/domain"
)

// Gateway is one run's connection to a gateway. Errors are classified
// with domain.OpError.
type Gateway interface {
	// Probe checks, without credentials, that the gateway answers.
	Probe(ctx context.Context) error
	// Login tries one password with one request.
	Login(ctx context.Context, password domain.Secret) error
	// ChangePassword changes the admin password from the one Login accepted.
	ChangePassword(ctx context.Context, newPassword domain.Secret) error
	Read(ctx context.Context, s domain.Setting, into *domain.Current) error
	// Write sets s to the target's value; rebootRequired is the gateway's say.
	Write(ctx context.Context, s domain.Setting, t domain.Target) (rebootRequired bool, err error)
	Reboot(ctx context.Context) error
	Uptime(ctx context.Context) (time.Duration, error)
	Close()
}

// Dialer opens a Gateway for a base URL; it must not send anything yet.
type Dialer func(baseURL string) (Gateway, error)

// ParameterStore reads a gateway's parameters. bootstrapParameter, when
// not empty, is the full name of the parameter holding the bootstrap
// password, which then wins over <gateway>/BootstrapPassword. Errors are
// classified with domain.OpError.
//
// It also keeps the PendingReboot record (domain.ParamPendingReboot), so
// that a reboot owed by a run that died is done by the next one.
type ParameterStore interface {
	Parameters(ctx context.Context, gatewayID, bootstrapParameter string) (domain.Parameters, error)
	SetPendingReboot(ctx context.Context, gatewayID, note string) error
	ClearPendingReboot(ctx context.Context, gatewayID string) error
}

// EventPublisher publishes an event (GatewayConfigured,
// GatewayConfigurationFailed, GatewayProvisioned).
type EventPublisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Configurer configures one gateway; *Configurator is the one.
type Configurer interface {
	Configure(ctx context.Context, req Request) (domain.Result, *domain.Failure)
}

// Metrics records what runs do. Labels: result is one of the Result*
// constants; password is "desired" or "bootstrap"; outcome is "accepted",
// "rejected", "locked" or "error".
type Metrics interface {
	RunFinished(result string, took time.Duration)
	SettingChanged(s domain.Setting)
	RebootRequested()
	LoginAttempt(password, outcome string)
}

// Run results, as Metrics sees them.
const (
	ResultConfigured      = "configured"
	ResultFailedRetryable = "failed_retryable"
	ResultFailedPermanent = "failed_permanent"
	ResultLocked          = "locked"
)

// ResultLabel is the result of a run that ended with f (nil: configured).
func ResultLabel(f *domain.Failure) string {
	switch {
	case f == nil:
		return ResultConfigured
	case f.LockRemaining > 0 || domain.KindOf(f.Err) == domain.KindLocked:
		return ResultLocked
	case f.Retryable:
		return ResultFailedRetryable
	}
	return ResultFailedPermanent
}

type noMetrics struct{}

func (noMetrics) RunFinished(string, time.Duration) {}
func (noMetrics) SettingChanged(domain.Setting)     {}
func (noMetrics) RebootRequested()                  {}
func (noMetrics) LoginAttempt(string, string)       {}
