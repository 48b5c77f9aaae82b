package manager

import (
	"context"
	"errors"
	"fmt"

	"mediagw/pkg/gatewayid"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

// Register adds the device event handlers to the device-events router.
func (m *Manager) Register(devices *messaging.Router) {
	messaging.On(devices, m.OnDeviceOnline)
	messaging.On(devices, m.OnDeviceOffline)
	messaging.On(devices, m.OnDeviceDeleted)
}

// RegisterTaskState adds the task state change handler to the task-state router.
func (m *Manager) RegisterTaskState(states *messaging.Router) {
	messaging.OnEventBridge(states, app.TaskStateDetailType, m.OnTaskStateChange)
}

// OnDeviceOnline: record the device's channels with exactly one task.
func (m *Manager) OnDeviceOnline(ctx context.Context, ev *eventsv1.DeviceOnline, _ *messaging.Message) error {
	in, err := m.desire(ctx, ev.GetMeta(), ev.GetGatewayId(), ev.GetDeviceIndex(), domain.WantRecord)
	if err != nil {
		return err
	}
	for _, c := range ev.GetChannels() {
		clean, hadCredentials, err := domain.CleanMediaURL(c.GetMediaUrl())
		if err != nil {
			m.m.ignored("bad_media_url")
			m.log.WarnContext(ctx, "channel left out: unusable media URL", "device", in.Device, "channel", c.GetChannel(), "err", err)
			continue
		}
		if hadCredentials {
			m.log.WarnContext(ctx, "media URL carried credentials; removed them", "device", in.Device, "channel", c.GetChannel())
		}
		in.Channels = append(in.Channels, domain.Channel{Number: c.GetChannel(), MediaURL: clean})
	}
	in.Channels = domain.SortChannels(in.Channels)
	// A camera without channels is online with nothing to record; one whose
	// every channel is unusable needs a human.
	if len(ev.GetChannels()) > 0 {
		spec := app.Spec{Device: in.Device, Gateway: in.Gateway, Channels: in.Channels}
		if err := spec.Validate(); err != nil {
			return messaging.Permanent(fmt.Errorf("DeviceOnline %s: %w", in.Device, err))
		}
	}
	return m.Apply(ctx, in)
}

// OnDeviceOffline: stop the device's task.
func (m *Manager) OnDeviceOffline(ctx context.Context, ev *eventsv1.DeviceOffline, _ *messaging.Message) error {
	in, err := m.desire(ctx, ev.GetMeta(), ev.GetGatewayId(), ev.GetDeviceIndex(), domain.WantStop)
	if err != nil {
		return err
	}
	return m.Apply(ctx, in)
}

// OnDeviceDeleted: stop the device's task and remove its row.
func (m *Manager) OnDeviceDeleted(ctx context.Context, ev *eventsv1.DeviceDeleted, _ *messaging.Message) error {
	in, err := m.desire(ctx, ev.GetMeta(), ev.GetGatewayId(), ev.GetDeviceIndex(), domain.WantDelete)
	if err != nil {
		return err
	}
	return m.Apply(ctx, in)
}

func (m *Manager) desire(_ context.Context, meta *eventsv1.EventMeta, gateway, device string, want domain.Want) (domain.Desire, error) {
	var errs []error
	if err := app.ValidDeviceIndex(device); err != nil {
		errs = append(errs, err)
	}
	if _, err := gatewayid.Parse(gateway); err != nil {
		errs = append(errs, err)
	}
	if meta.GetOccurredAt() == nil {
		// Without it the event cannot be ordered against others.
		errs = append(errs, errors.New("no meta.occurred_at"))
	}
	if err := errors.Join(errs...); err != nil {
		return domain.Desire{}, messaging.Permanent(fmt.Errorf("device event %s: %w", meta.GetId(), err))
	}
	return domain.Desire{Device: device, Gateway: gateway, Want: want, At: meta.GetOccurredAt().AsTime()}, nil
}

// OnTaskStateChange handles "ECS Task State Change" events of both
// launchers. Only a stop matters: a task that ended on its own is
// restarted with backoff, or given up on with an alert.
func (m *Manager) OnTaskStateChange(ctx context.Context, d *app.TaskStateChange, _ *messaging.Message) error {
	if d.LastStatus != app.TaskStatusStopped {
		return nil
	}
	device, ours := app.DeviceOfTaskGroup(d.Group)
	if !ours || !app.SameCluster(d.ClusterArn, m.cfg.Cluster) {
		m.m.ignored("foreign_task")
		return nil
	}
	return m.TaskEnded(ctx, device, domain.TaskEnd{
		TaskID:   d.TaskArn,
		ExitCode: d.ExitCode(m.cfg.Container),
		Reason:   d.Reason(),
		// Stopped by someone (an operator, the manager's own shutdown):
		// nothing wrong with the recording itself.
		Expected: d.StopCode == app.StopCodeUserInitiated,
	})
}
