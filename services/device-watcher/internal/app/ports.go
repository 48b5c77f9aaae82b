package app

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"mediagw/services/device-watcher/internal/domain"
)

// The interfaces the watcher needs, implemented by the adapters.

// Gateway observes one gateway (adapters/isapi.Conn).
type Gateway interface {
	// Poll lists the gateway's cameras, with the details of those known
	// says need them, and confirms the absence of known cameras.
	Poll(ctx context.Context, known map[string]domain.Known) domain.Snapshot
	// Stream follows the gateway's event stream until ctx ends. While
	// logins are stopped (or await the gateway's configuration) it sends
	// one UpdateDown with Refused (AwaitingConfiguration) and waits for
	// them to resume.
	Stream(ctx context.Context, out chan<- domain.StreamUpdate)
	// WatchLogins runs until ctx ends: while logins to the gateway are
	// stopped (its password rejected, the login budget refusing), it looks
	// again every recheck interval and resumes them when the password's
	// parameter has a new version or the budget allows a login again;
	// while they await the gateway's configuration, when it no longer must
	// (domain.AwaitsConfiguration); it sends on resumed (without blocking)
	// each time they resume.
	WatchLogins(ctx context.Context, resumed chan<- struct{})
	// Reconfigured: the configurator configured the gateway (it may have
	// changed the gateway's password to the parameter's current version):
	// no login awaits the gateway's configuration any more, and the
	// password's version and the login budget are looked at now. The
	// watcher also calls it when it takes a lease that notes a
	// configuration.
	Reconfigured(ctx context.Context) error
}

// Passwords gives a gateway's password and the version of the parameter
// it comes from; fresh asks to bypass a cache (adapters/ssm.Passwords).
// The Gateway adapter uses it.
type Passwords interface {
	Password(ctx context.Context, gatewayID string, fresh bool) (password string, version int64, err error)
	// Version reads the parameter's current version, not its value.
	Version(ctx context.Context, gatewayID string) (int64, error)
	// ParameterName is the parameter that holds the gateway's password.
	ParameterName(gatewayID string) string
	// BootstrapExists reports whether the gateway has a BootstrapPassword
	// parameter (it may still have its factory password), without
	// decrypting it.
	BootstrapExists(ctx context.Context, gatewayID string) (bool, error)
}

// DeviceStore keeps the cameras' and the gateways' state
// (adapters/dynamodb.Store). Commit fails with domain.ErrLeaseLost when
// the lease does not fence the write any more, domain.ErrConflict when the
// stored version moved on; any store fails with domain.ErrMisconfigured
// when no retry can help.
type DeviceStore interface {
	Load(ctx context.Context, gatewayID string) (domain.State, error)
	LoadDevice(ctx context.Context, gatewayID, index string) (*domain.Device, *domain.Change, error)
	Commit(ctx context.Context, l domain.Lease, c domain.Change) error
	Announced(ctx context.Context, c domain.Change) error
}

// Leases hands out the gateways' leases (adapters/dynamodb.Leases). Renew
// fails with domain.ErrLeaseLost when the lease is someone else's now.
type Leases interface {
	Acquire(ctx context.Context, id string) (domain.Lease, bool, error)
	Renew(ctx context.Context, l domain.Lease) (domain.Lease, error)
	Release(ctx context.Context, l domain.Lease) error
	NoteConfigured(ctx context.Context, id string, at time.Time) error
	Duration() time.Duration
}

// EventPublisher publishes events (pkg/messaging's Publisher through
// adapters/sns).
type EventPublisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Metrics records what the watchers do (adapters/prometheus.Metrics).
type Metrics interface {
	// LeaseHeld: this instance took (true) or let go of (false) the
	// gateway's lease; letting go drops the gateway's state gauges.
	LeaseHeld(gatewayID string, held bool)
	// StoreError counts a failed state write or read: conflict,
	// lease_lost, error.
	StoreError(kind string)
	// PollDuration records one poll, once it has been applied and its
	// changes stored and announced.
	PollDuration(gatewayID string, d time.Duration)
	// Published counts an announcement.
	Published(eventType string)
	// DetectionLatency records the time from when a change was detectable
	// (source: stream, poll, gateway) to its announcement.
	DetectionLatency(eventType, source string, d time.Duration)
	// State sets the gateway's channel counts, reachability and login
	// standing (credentials rejected; logins awaiting the gateway's
	// configuration).
	State(gatewayID string, c domain.Counts, reachable, credentialsRejected, awaitingConfiguration bool)
}

// NopMetrics records nothing.
type NopMetrics struct{}

func (NopMetrics) LeaseHeld(string, bool)                         {}
func (NopMetrics) StoreError(string)                              {}
func (NopMetrics) PollDuration(string, time.Duration)             {}
func (NopMetrics) Published(string)                               {}
func (NopMetrics) DetectionLatency(string, string, time.Duration) {}
func (NopMetrics) State(string, domain.Counts, bool, bool, bool)  {}
