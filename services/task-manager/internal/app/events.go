package app

import (
	"context"
	"errors"
	"fmt"
	"time"

	"mediagw/services/task-manager/internal/domain"
)

// DeviceEvent is a DeviceOnline, DeviceOffline or DeviceDeleted event as
// the use cases take it (internal/ports/sqs decodes the wire form).
type DeviceEvent struct {
	// ID is the event's id (meta.id), for messages.
	ID      string
	Gateway string
	Device  string
	// OccurredAt is the source time (meta.occurred_at) that orders the
	// device's facts; zero when the event carried none.
	OccurredAt time.Time
	// Channels are the channels of an online device, media URLs as sent.
	Channels []domain.Channel
}

// DeviceOnline: record the device's channels with exactly one task.
// Errors that wrap domain.ErrInvalid mean the event can never be acted on.
func (m *Manager) DeviceOnline(ctx context.Context, ev DeviceEvent) error {
	in, err := m.desire(ev, domain.WantRecord)
	if err != nil {
		return err
	}
	for _, c := range ev.Channels {
		clean, hadCredentials, err := domain.CleanMediaURL(c.MediaURL)
		if err != nil {
			m.m.Ignored("bad_media_url")
			m.log.WarnContext(ctx, "channel left out: unusable media URL", "device", in.Device, "channel", c.Number, "err", err)
			continue
		}
		if hadCredentials {
			m.log.WarnContext(ctx, "media URL carried credentials; removed them", "device", in.Device, "channel", c.Number)
		}
		in.Channels = append(in.Channels, domain.Channel{Number: c.Number, MediaURL: clean})
	}
	in.Channels = domain.SortChannels(in.Channels)
	// A camera without channels is online with nothing to record; one whose
	// every channel is unusable needs a human.
	if len(ev.Channels) > 0 {
		spec := Spec{Device: in.Device, Gateway: in.Gateway, Channels: in.Channels}
		if err := spec.Validate(); err != nil {
			return fmt.Errorf("DeviceOnline %s: %w", in.Device, err)
		}
	}
	return m.Apply(ctx, in)
}

// DeviceOffline: stop the device's task.
func (m *Manager) DeviceOffline(ctx context.Context, ev DeviceEvent) error {
	in, err := m.desire(ev, domain.WantStop)
	if err != nil {
		return err
	}
	return m.Apply(ctx, in)
}

// DeviceDeleted: stop the device's task and remove its row.
func (m *Manager) DeviceDeleted(ctx context.Context, ev DeviceEvent) error {
	in, err := m.desire(ev, domain.WantDelete)
	if err != nil {
		return err
	}
	return m.Apply(ctx, in)
}

func (m *Manager) desire(ev DeviceEvent, want domain.Want) (domain.Desire, error) {
	var errs []error
	if err := ValidDeviceIndex(ev.Device); err != nil {
		errs = append(errs, err)
	}
	if err := validGateway(ev.Gateway); err != nil {
		errs = append(errs, err)
	}
	if ev.OccurredAt.IsZero() {
		// Without it the event cannot be ordered against others.
		errs = append(errs, fmt.Errorf("no meta.occurred_at: %w", domain.ErrInvalid))
	}
	if err := errors.Join(errs...); err != nil {
		return domain.Desire{}, fmt.Errorf("device event %s: %w", ev.ID, err)
	}
	return domain.Desire{Device: ev.Device, Gateway: ev.Gateway, Want: want, At: ev.OccurredAt}, nil
}

// TaskStateChanged handles an "ECS Task State Change" of either launcher.
// Only a stop matters: a task that ended on its own is restarted with
// backoff, or given up on with an alert. Changes of other clusters and of
// tasks that are not recording tasks are ignored.
func (m *Manager) TaskStateChanged(ctx context.Context, d TaskStateChange) error {
	if d.LastStatus != TaskStatusStopped {
		return nil
	}
	device, ours := DeviceOfTaskGroup(d.Group)
	if !ours || !SameCluster(d.ClusterArn, m.cfg.Cluster) {
		m.m.Ignored("foreign_task")
		return nil
	}
	return m.TaskEnded(ctx, device, domain.TaskEnd{
		TaskID:   d.TaskArn,
		ExitCode: d.ExitCode(m.cfg.Container),
		Reason:   d.Reason(),
		// Stopped by someone (an operator, the manager's own shutdown):
		// nothing wrong with the recording itself.
		Expected: d.StopCode == StopCodeUserInitiated,
	})
}
