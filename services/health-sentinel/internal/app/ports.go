// Package app holds the health-sentinel's use cases: signals into
// incidents (Incidents.Signal), mails out of them (Incidents.Flush), the
// health checks and recoveries of gateways (Sentinel), and the recovery
// Reporter. The small interfaces they need are declared here.
package app

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"mediagw/services/health-sentinel/internal/app/recovery"
	"mediagw/services/health-sentinel/internal/domain"
)

// Store keeps incidents and storm counters (adapters/dynamodb). Put and
// PutStorm write only if the version read is still current and return the
// new version, or domain.ErrConflict.
type Store interface {
	Get(ctx context.Context, key string) (domain.Incident, bool, error)
	Put(ctx context.Context, inc domain.Incident) (domain.Incident, error)
	// Active returns the incidents that are open or owe a mail, and the
	// storm counters that owe a digest.
	Active(ctx context.Context) ([]domain.Incident, []domain.Storm, error)
	GetStorm(ctx context.Context, gateway string) (domain.Storm, bool, error)
	PutStorm(ctx context.Context, s domain.Storm) (domain.Storm, error)
}

// Mailer sends a mail to the alert-email topic (adapters/sns).
type Mailer interface {
	Send(ctx context.Context, m domain.Message) error
}

// Footage counts the footage missed by cameras between from and to
// (adapters/s3); empty cameras means every camera of the gateway.
type Footage interface {
	Missed(ctx context.Context, gateway string, cameras []string, from, to time.Time) (string, error)
}

// Cameras names a gateway's cameras (adapters/dynamodb, the
// device-watcher's deviceMediaURL table), for its outage's mails.
type Cameras interface {
	Of(ctx context.Context, gateway string) ([]string, error)
}

// EventPublisher publishes events (GatewayRecovered).
type EventPublisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Recoverer is the recovery side (app/recovery.Recoverer).
type Recoverer interface {
	Check(ctx context.Context, gatewayID string) (recovery.Health, error)
	Recover(ctx context.Context, gatewayID string) error
	SnapshotDue(ctx context.Context) error
}

// Gateways lists the gateways to watch (adapters/ssm).
type Gateways interface {
	IDs(ctx context.Context) ([]string, error)
}

// Metrics the use cases count (adapters/prometheus).
type Metrics interface {
	MailSent(kind string)
	MailHeld(kind string) // into a digest
	IncidentOpened(kind string)
	IncidentResolved(kind string)
	SignalIgnored(reason string)
}
