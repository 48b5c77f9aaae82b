package recovery

import (
	"context"
	"errors"
	"time"

	"mediagw/services/health-sentinel/internal/domain"
)

// Probe is what one look at a gateway's ISAPI found.
type Probe struct {
	State  domain.APIState
	Detail string
	// BootedAt is when the gateway software last started (the check's
	// time minus its reported uptime); zero when unknown. A reboot is proven
	// by a BootedAt after it was asked for.
	BootedAt time.Time
}

// ErrNotDone is wrapped by an API or Instances error that says the action
// was not carried out at all (no login possible, refused by the gateway):
// the step ends at once instead of waiting for an effect that cannot come.
var ErrNotDone = errors.New("not done")

// API is the gateway's ISAPI as the health check and the first rung need
// it. Every login goes through the shared login budget.
type API interface {
	// Probe reads the device status once; it never fails, it says what it
	// found.
	Probe(ctx context.Context, gatewayID string) Probe
	// Reboot asks the gateway software to restart. An error wrapping
	// ErrNotDone: it was not asked (or was refused); any other error may
	// be the reboot itself cutting the answer.
	Reboot(ctx context.Context, gatewayID string) error
}

// InstanceStatus is what the instance side knows of a gateway's machine.
type InstanceStatus struct {
	InstanceID string
	// OK is nil when no verdict is known (initializing, no status checks
	// yet, or no instance at all: the local simulator's machine).
	OK     *bool
	Detail string
	// Address is where the gateway is reached (its Elastic IP), if known.
	ElasticIP string
}

// Instances is the machine a gateway runs on: an EC2 instance behind an
// Elastic IP, or locally the simulator's process.
type Instances interface {
	Status(ctx context.Context, gatewayID string) (InstanceStatus, error)
	// Reboot restarts the machine; it returns once the restart was asked
	// for. It returns the instance id rebooted.
	Reboot(ctx context.Context, gatewayID string) (string, error)
	// Replace starts or continues (prev, from the last try; nil at first)
	// a replacement of the gateway's machine from imageID ("" where the
	// adapter needs none): a new machine like the old one, the gateway's
	// address moved to it. It calls save as soon as it knows more of the
	// replacement (the new instance's id), so that a sentinel that dies
	// mid-way is continued, not repeated. Idempotent. It returns once the
	// new machine runs and holds the address.
	Replace(ctx context.Context, gatewayID, imageID string, prev *domain.Replacement, save func(domain.Replacement) error) (domain.Replacement, error)
	// Retire ends the old machine of a finished replacement. Idempotent.
	Retire(ctx context.Context, gatewayID string, r domain.Replacement) error
}

// Snapshots are a gateway's restore points (nil where there are none:
// locally the simulator is replaced without one).
type Snapshots interface {
	List(ctx context.Context, gatewayID string) ([]domain.Snapshot, error)
	// Take starts a snapshot of the gateway's current instance, tagged
	// healthy (it is only called while the gateway is).
	Take(ctx context.Context, gatewayID string) (domain.Snapshot, error)
	Delete(ctx context.Context, s domain.Snapshot) error
}

// ErrLeaseLost is returned by a Leases write when the lease is no longer
// held by this sentinel.
var ErrLeaseLost = errors.New("recovery lease lost")

// Lease is a held lease on a gateway's recovery, with the state kept on it.
type Lease struct {
	ID      string
	Token   int64
	Expires time.Time
	State   domain.RecoveryState
}

// Leases give one sentinel at a time a gateway's recovery (and its
// snapshots), and keep the ladder's state with the lease, every write
// fenced by the lease's token.
type Leases interface {
	// Acquire takes the gateway's lease if free, expired or already this
	// sentinel's; ok is false when another holds it.
	Acquire(ctx context.Context, gatewayID string) (l Lease, ok bool, err error)
	// Renew extends it; ErrLeaseLost when it is not ours any more.
	Renew(ctx context.Context, l Lease) (Lease, error)
	// Save writes the state on the lease; ErrLeaseLost when not ours.
	Save(ctx context.Context, l Lease, s domain.RecoveryState) error
	// Release ends it at once (the state stays).
	Release(ctx context.Context, l Lease) error
	Duration() time.Duration
}
