package domain

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Kind classifies an error from the gateway or the parameter store.
type Kind int

// Error kinds.
const (
	// KindPermanent: retrying cannot help (invalid content, not supported,
	// a bad parameter). The zero Kind, so unclassified errors are not retried.
	KindPermanent Kind = iota
	// KindTransient: may pass (timeout, no answer, busy, 5xx, throttling).
	KindTransient
	// KindRejected: the gateway refused the password (a failed login).
	KindRejected
	// KindLocked: the gateway locks this client out after failed logins.
	KindLocked
	// KindRefused: the login budget (pkg/loginbudget) did not allow the
	// login; nothing was sent, so it cost nothing.
	KindRefused
)

func (k Kind) String() string {
	switch k {
	case KindTransient:
		return "transient"
	case KindRejected:
		return "rejected"
	case KindLocked:
		return "locked"
	case KindRefused:
		return "refused"
	default:
		return "permanent"
	}
}

// OpError is an adapter's classified error.
type OpError struct {
	Op   string // what was attempted, e.g. "GET /ISAPI/System/time"
	Kind Kind
	// AttemptsLeft is, for KindRejected, the failed logins the gateway
	// still allows before it locks (-1 when it did not say).
	AttemptsLeft int
	// LockRemaining is, for KindLocked, how long the lock still lasts (0
	// when the gateway did not say).
	LockRemaining time.Duration
	Err           error
}

func (e *OpError) Error() string {
	if e.Op == "" {
		return e.Err.Error()
	}
	return e.Op + ": " + e.Err.Error()
}

func (e *OpError) Unwrap() error { return e.Err }

// KindOf classifies err: an *OpError says its kind; a cancelled or expired
// context is transient; anything else is permanent.
func KindOf(err error) Kind {
	var oe *OpError
	switch {
	case err == nil:
		return KindPermanent
	case errors.As(err, &oe):
		return oe.Kind
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return KindTransient
	}
	return KindPermanent
}

// Failure is the outcome of a run that did not reach the desired settings;
// it becomes a GatewayConfigurationFailed event.
type Failure struct {
	// Step is the setting or phase that failed: "parameters", "connect",
	// "login", "password", "name", "time", "portmap.contentMgmt",
	// "portmap.devMgmt", "reboot" or "verify".
	Step string
	// Reason is human readable and free of secrets.
	Reason string
	// Retryable: the cause may pass by itself and the configurator tries
	// again (by redelivery of the message).
	Retryable bool
	// LockRemaining is set when the gateway reported a login lockout.
	LockRemaining time.Duration
	// Credentials is set when no password could be tried or none was
	// accepted (the login budget refused, the gateway rejected): the run
	// is pending until the budget admits a password again.
	Credentials *CredentialsRejection
	Err         error
}

// Steps that are not settings.
const (
	StepParameters = "parameters"
	StepConnect    = "connect"
	StepLogin      = "login"
	StepReboot     = "reboot"
	StepVerify     = "verify"
)

func (f *Failure) Error() string {
	return fmt.Sprintf("configuration failed at %s: %s", f.Step, f.Reason)
}

func (f *Failure) Unwrap() error { return f.Err }

// Fail builds a Failure from a classified error: transient errors are
// retryable; a lockout is not retried by the configurator (redelivery
// comes back long before a lock ends) but reports its remaining time.
func Fail(step string, err error) *Failure {
	f := &Failure{Step: step, Reason: err.Error(), Err: err}
	switch KindOf(err) {
	case KindTransient:
		f.Retryable = true
	case KindLocked:
		var oe *OpError
		if errors.As(err, &oe) {
			f.LockRemaining = oe.LockRemaining
		}
	}
	return f
}

// Failf builds a Failure with its own reason.
func Failf(step string, retryable bool, format string, args ...any) *Failure {
	err := fmt.Errorf(format, args...)
	return &Failure{Step: step, Reason: err.Error(), Retryable: retryable, Err: err}
}

// Result is the outcome of a run that reached the desired settings.
type Result struct {
	// Changed lists the settings written, in order.
	Changed  []Setting
	Rebooted bool
	Took     time.Duration
	// CredentialsAccepted is, when the run ended a pending configuration
	// (an earlier run found no password to log in with), the credential
	// the gateway accepted ("<name>@<version>"); empty otherwise.
	CredentialsAccepted string
}
