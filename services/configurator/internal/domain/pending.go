package domain

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// PendingConfiguration is a request the configurator could not carry out
// because it found no password it may or can log in with (the login
// budget refused every candidate, or the gateway rejected them). It is
// kept as the gateway's PendingConfiguration parameter (a String: it holds
// no secret) so that the service runs it again, without a new event, as
// soon as the login budget admits one of the candidates (a new version of
// a password parameter, the end of a lock or of the budget's window).
type PendingConfiguration struct {
	GatewayID          string `json:"gateway_id"`
	Address            string `json:"address"`
	ElasticIP          string `json:"elastic_ip,omitempty"`
	BootstrapParameter string `json:"bootstrap_parameter,omitempty"`
	// Since is when a run first left it (kept by later refused runs).
	Since time.Time `json:"since"`
	// NotBefore, when set, holds the run back until then even if the
	// budget admits a candidate: the gateway itself said it allows too few
	// more failed logins (failed logins the budget does not know of).
	NotBefore time.Time `json:"not_before,omitzero"`
	// Retry: a later run logged in (the credentials problem is over) but
	// failed for a reason that may pass; it is run again, with backoff,
	// until it succeeds or fails for good.
	Retry bool `json:"retry,omitempty"`
}

// EncodePendingConfiguration is the parameter value of p.
func EncodePendingConfiguration(p PendingConfiguration) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("pending configuration of %s: %w", p.GatewayID, err)
	}
	return string(b), nil
}

// DecodePendingConfiguration reads a PendingConfiguration parameter value.
func DecodePendingConfiguration(value string) (PendingConfiguration, error) {
	var p PendingConfiguration
	if err := json.Unmarshal([]byte(value), &p); err != nil {
		return p, fmt.Errorf("%w: %s: not a pending configuration: %w", ErrBadParameter, ParamPendingConfiguration, err)
	}
	if p.GatewayID == "" || p.Address == "" {
		return p, fmt.Errorf("%w: %s: no gateway id or address", ErrBadParameter, ParamPendingConfiguration)
	}
	return p, nil
}

// Reasons of a CredentialsRejection (those of the login budget).
const (
	CredentialsRejected = "credentials-rejected"
	CredentialsBudget   = "budget-spent"
	CredentialsLocked   = "locked"
)

// CredentialsRejection says why a run found no password to log in with;
// it becomes a GatewayCredentialsRejected event. No secret in it:
// credentials are parameter names and versions.
type CredentialsRejection struct {
	// Reason is CredentialsRejected, CredentialsBudget or CredentialsLocked.
	Reason string
	// Credential is the desired password's parameter and version
	// ("<name>@<version>").
	Credential string
	// Until is when a login may be possible again; zero when only a new
	// parameter version helps.
	Until time.Time
	// FailedLogins is the number of failed or unanswered logins in the
	// budget's window.
	FailedLogins int
}

// ErrNoCredentials is wrapped by the error of a run that found no
// password to log in with.
var ErrNoCredentials = errors.New("no password the gateway accepts may be tried")
