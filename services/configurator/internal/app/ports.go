// Package app holds the configurator's use cases: Configurator.Configure
// applies a gateway's desired settings (reads its parameters, logs in only
// through the shared login budget, writes only what differs, verifies
// every write, reboots when a change needs it and waits for the gateway to
// come back), Reporter.ConfigureAndReport runs it for an event and
// publishes the result, and Resumer.Resume runs the configurations that
// found no password to log in with again as soon as the login budget
// admits one. The interfaces below are what they need; adapters/isapi,
// adapters/ssm, adapters/prometheus, pkg/loginbudget and the messaging
// publisher implement them.
package app

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"mediagw/pkg/loginbudget"
	"mediagw/services/configurator/internal/domain"
)

// Gateway is one run's connection to a gateway. Errors are classified
// with domain.OpError.
type Gateway interface {
	// Probe checks, without credentials, that the gateway answers.
	Probe(ctx context.Context) error
	// Login tries one password, whose login credential (parameter and
	// version) is cred, with one request, through the login budget: a
	// refusal is a domain.KindRefused error (wrapping the
	// *loginbudget.RefusedError) and sends nothing. What follows uses the
	// last password the gateway accepted.
	Login(ctx context.Context, password domain.Secret, cred loginbudget.Credential) error
	// ChangePassword changes the admin password from the one Login
	// accepted; Login with the new password is needed before anything else.
	ChangePassword(ctx context.Context, newPassword domain.Secret) error
	Read(ctx context.Context, s domain.Setting, into *domain.Current) error
	// Write sets s to the target's value; rebootRequired is the gateway's say.
	Write(ctx context.Context, s domain.Setting, t domain.Target) (rebootRequired bool, err error)
	Reboot(ctx context.Context) error
	Uptime(ctx context.Context) (time.Duration, error)
	Close()
}

// Dialer opens a Gateway for the gateway's id (its login budget) and base
// URL; it must not send anything yet.
type Dialer func(gatewayID, baseURL string) (Gateway, error)

// ParameterStore reads a gateway's parameters (with each one's full name
// and version). bootstrapParameter, when not empty, is the full name of
// the parameter holding the bootstrap password, which then wins over
// <gateway>/BootstrapPassword. Errors are classified with domain.OpError.
//
// It also keeps the PendingReboot record (domain.ParamPendingReboot), so
// that a reboot owed by a run that died is done by the next one, and the
// PendingConfiguration records (domain.ParamPendingConfiguration) of runs
// that found no password to log in with.
type ParameterStore interface {
	Parameters(ctx context.Context, gatewayID, bootstrapParameter string) (domain.Parameters, error)
	SetPendingReboot(ctx context.Context, gatewayID, note string) error
	ClearPendingReboot(ctx context.Context, gatewayID string) error
	SetPendingConfiguration(ctx context.Context, p domain.PendingConfiguration) error
	ClearPendingConfiguration(ctx context.Context, gatewayID string) error
	// PendingConfigurations lists the records of every gateway. A record
	// that cannot be read is left out and named in the error, which comes
	// with the others.
	PendingConfigurations(ctx context.Context) ([]domain.PendingConfiguration, error)
}

// LoginBudget is the part of the shared login budget (*loginbudget.Budget)
// the run uses besides the gate its Gateway logs in through.
type LoginBudget interface {
	// Ledger is the gateway's ledger (the credential it accepted last).
	Ledger(ctx context.Context, gatewayID string) (loginbudget.Ledger, error)
	// Check says, recording nothing, whether a login with cred would be
	// admitted now: nil, or a *loginbudget.RefusedError.
	Check(ctx context.Context, gatewayID string, cred loginbudget.Credential) error
	// Forget clears an earlier rejection of cred: the gateway was just
	// given that password.
	Forget(ctx context.Context, gatewayID string, cred loginbudget.Credential) error
	Limits() loginbudget.Limits
}

// EventPublisher publishes an event (GatewayConfigured,
// GatewayConfigurationFailed, GatewayCredentialsRejected,
// GatewayCredentialsAccepted, GatewayProvisioned).
type EventPublisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Configurer configures one gateway; *Configurator is the one.
type Configurer interface {
	Configure(ctx context.Context, req Request) (domain.Result, *domain.Failure)
}

// Metrics records what runs do. Labels: result is one of the Result*
// constants; password is "desired" or "bootstrap"; outcome is one of the
// Login* constants.
type Metrics interface {
	RunFinished(result string, took time.Duration)
	SettingChanged(s domain.Setting)
	RebootRequested()
	LoginAttempt(password, outcome string)
	// CredentialsRejected says whether the gateway has a configuration
	// pending because no password could be logged in with.
	CredentialsRejected(gatewayID string, rejected bool)
}

// Login outcomes, as Metrics sees them.
const (
	LoginAccepted   = "accepted"
	LoginRejected   = "rejected"
	LoginLocked     = "locked"
	LoginRefused    = "refused"    // by the login budget: nothing sent
	LoginUnanswered = "unanswered" // no answer (counted by the budget)
	LoginError      = "error"
)

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
func (noMetrics) CredentialsRejected(string, bool)  {}
