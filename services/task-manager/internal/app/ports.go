package app

import (
	"context"
	"time"

	"google.golang.org/protobuf/proto"

	"mediagw/services/task-manager/internal/domain"
)

// TaskStore keeps devices' state (the ip-camera table; adapters/dynamodb).
type TaskStore interface {
	// Get reads one device; found is false when it has no row.
	Get(ctx context.Context, device string) (d domain.Device, found bool, err error)
	// Put writes d on the condition that the stored version is d.Version
	// (no row when 0) and returns d with its new version; it fails with
	// domain.ErrConflict otherwise.
	Put(ctx context.Context, d domain.Device, now time.Time) (domain.Device, error)
	// Delete removes the row if it still has d.Version, else domain.ErrConflict.
	Delete(ctx context.Context, d domain.Device) error
	// List reads every row; rows that do not decode are returned in bad.
	List(ctx context.Context) (devices []domain.Device, bad []error, err error)
}

// DeviceMedia is the device-watcher's deviceMediaURL table: what should
// be recorded (adapters/dynamodb). The task-manager only reads it.
type DeviceMedia interface {
	// Rows reads the whole table; rows that do not decode are returned in bad.
	Rows(ctx context.Context) (rows []ChannelRow, bad []error, err error)
}

// Launcher starts, stops and lists recording tasks (adapters/ecs,
// adapters/local).
type Launcher interface {
	// Name is the launcher's name in task records and events ("ecs", "local").
	Name() string
	Start(ctx context.Context, spec Spec) (domain.ObservedTask, error)
	// Stop asks the task to stop; stopping a task that has already ended is
	// no error. Its end is reported as a task state change.
	Stop(ctx context.Context, taskID, reason string) error
	List(ctx context.Context) ([]domain.ObservedTask, error)
}

// EventPublisher publishes the task-manager's events (RecordingTask*,
// Alert); the runtime's messaging publisher routes them to their topics.
type EventPublisher interface {
	Publish(ctx context.Context, ev proto.Message) error
}

// Metrics records what the manager does (adapters/prometheus). A nil
// Metrics in Config records nothing.
type Metrics interface {
	TaskStarted(launcher string)
	TaskStopped(launcher string)
	TaskFailed(launcher string)
	GaveUp()
	OrphanStopped()
	WriteConflict()
	Ignored(reason string)
	Reconciled(took time.Duration, err error)
	// Devices is the number of devices in each status at the last
	// reconciliation (every status present, zero included).
	Devices(byStatus map[domain.Status]int)
}

type noMetrics struct{}

func (noMetrics) TaskStarted(string)              {}
func (noMetrics) TaskStopped(string)              {}
func (noMetrics) TaskFailed(string)               {}
func (noMetrics) GaveUp()                         {}
func (noMetrics) OrphanStopped()                  {}
func (noMetrics) WriteConflict()                  {}
func (noMetrics) Ignored(string)                  {}
func (noMetrics) Reconciled(time.Duration, error) {}
func (noMetrics) Devices(map[domain.Status]int)   {}
