// Package sqs holds the health-sentinel's consumers: one handler per event
// type of its two queues, each decoding the event into a domain.Signal for
// the use cases.
package sqs

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"mediagw/pkg/ecsevent"
	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/messaging"
	"mediagw/services/health-sentinel/internal/domain"
)

// Signals is what the handlers feed (app.Incidents).
type Signals interface {
	Signal(ctx context.Context, s domain.Signal) error
}

// Unreachables handles GatewayUnreachable (app.Sentinel: the incident,
// then a health check and recovery).
type Unreachables interface {
	Unreachable(ctx context.Context, s domain.Signal) error
}

// occurred is the event's occurred_at; an event without one is malformed.
func occurred(m *eventsv1.EventMeta) (time.Time, error) {
	if m.GetOccurredAt() == nil {
		return time.Time{}, messaging.Permanentf("event %s has no occurred_at", m.GetId())
	}
	return m.GetOccurredAt().AsTime(), nil
}

func needGateway(id string) error {
	if id == "" {
		return messaging.Permanentf("no gateway_id")
	}
	return nil
}

// Events is the router of mediagw-health-sentinel-events.
func Events(sig Signals, un Unreachables) *messaging.Router {
	r := messaging.NewRouter()
	gw := func(ctx context.Context, meta *eventsv1.EventMeta, gateway string, s domain.Signal) error {
		if err := needGateway(gateway); err != nil {
			return err
		}
		at, err := occurred(meta)
		if err != nil {
			return err
		}
		s.ID, s.At, s.Gateway = meta.GetId(), at, gateway
		return sig.Signal(ctx, s)
	}
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayUnreachable, _ *messaging.Message) error {
		if err := needGateway(ev.GetGatewayId()); err != nil {
			return err
		}
		at, err := occurred(ev.GetMeta())
		if err != nil {
			return err
		}
		if ev.GetSince() != nil {
			at = ev.GetSince().AsTime()
		}
		return un.Unreachable(ctx, domain.Signal{ID: ev.GetMeta().GetId(), At: at, Kind: domain.KindGateway, Gateway: ev.GetGatewayId(),
			Action: domain.Raise, Title: "API does not answer", Detail: "GatewayUnreachable from " + ev.GetMeta().GetSource() + ": " + ev.GetReason()})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayReachable, _ *messaging.Message) error {
		return gw(ctx, ev.GetMeta(), ev.GetGatewayId(), domain.Signal{Kind: domain.KindGateway, Action: domain.Clear,
			Detail: "GatewayReachable from " + ev.GetMeta().GetSource()})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayConfigurationFailed, _ *messaging.Message) error {
		return gw(ctx, ev.GetMeta(), ev.GetGatewayId(), domain.Signal{Kind: domain.KindConfig, Action: domain.Raise,
			Title: "settings cannot be applied", Detail: fmt.Sprintf("step %s: %s", ev.GetStep(), ev.GetReason())})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayConfigured, _ *messaging.Message) error {
		return gw(ctx, ev.GetMeta(), ev.GetGatewayId(), domain.Signal{Kind: domain.KindConfig, Action: domain.Clear,
			Detail: "GatewayConfigured: the settings are applied"})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayCredentialsRejected, _ *messaging.Message) error {
		return gw(ctx, ev.GetMeta(), ev.GetGatewayId(), domain.Signal{Kind: domain.KindCredentials, Action: domain.Raise,
			Title: "admin password rejected", Detail: fmt.Sprintf("%s: %s (credential %s, %d failed logins)", ev.GetComponent(), ev.GetReason(),
				ev.GetCredential(), ev.GetFailedLogins())})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.GatewayCredentialsAccepted, _ *messaging.Message) error {
		return gw(ctx, ev.GetMeta(), ev.GetGatewayId(), domain.Signal{Kind: domain.KindCredentials, Action: domain.Clear,
			Detail: fmt.Sprintf("%s logged in with %s", ev.GetComponent(), ev.GetCredential())})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.RecordingTaskFailed, _ *messaging.Message) error {
		t := ev.GetTask()
		if t.GetDeviceIndex() == "" {
			return messaging.Permanentf("RecordingTaskFailed without task.device_index")
		}
		at, err := occurred(ev.GetMeta())
		if err != nil {
			return err
		}
		return sig.Signal(ctx, domain.Signal{ID: ev.GetMeta().GetId(), At: at, Kind: domain.KindCamera, Gateway: t.GetGatewayId(),
			Device: t.GetDeviceIndex(), Action: domain.Raise, Detail: ev.GetReason(),
			Exit: &domain.Exit{TaskID: t.GetTaskId(), Code: ev.GetExitCode(), At: at}})
	})
	messaging.On(r, func(ctx context.Context, ev *eventsv1.Alert, _ *messaging.Message) error {
		at, err := occurred(ev.GetMeta())
		if err != nil {
			return err
		}
		s := domain.Signal{ID: ev.GetMeta().GetId(), At: at, Gateway: ev.GetGatewayId(), Device: ev.GetDeviceIndex(), Action: domain.Raise,
			Detail: strings.TrimSpace(ev.GetSubject() + ". " + ev.GetMessage())}
		switch {
		case ev.GetDeviceIndex() != "":
			// The task-manager's alert: it gave up restarting the camera's task.
			s.Kind, s.CrashLoop = domain.KindCamera, true
		case ev.GetGatewayId() != "":
			s.Kind, s.Title = domain.KindAlert, domain.Truncate(ev.GetSubject(), 60)
		default:
			return messaging.Permanentf("Alert names neither a gateway nor a camera")
		}
		return sig.Signal(ctx, s)
	})
	return r
}

// TaskStateChange is the detail of an "ECS Task State Change" event (the
// task-manager's local launcher puts the same shape).
type TaskStateChange = ecsevent.TaskStateChange

// Recorder settings read from a task's override (the task-manager's
// contract with the recorder).
const (
	envChannels = "RECORDER_CHANNELS" // <channel>=<url>,…; a packed device's entries <device>/<channel>=<url>
	envGateway  = "RECORDER_GATEWAY_ID"
)

// env is the named variable of the recorder container's override ("" if none).
func env(d *TaskStateChange, container, name string) string {
	if d.Overrides == nil {
		return ""
	}
	for _, c := range d.Overrides.ContainerOverrides {
		if container != "" && c.Name != container {
			continue
		}
		for _, kv := range c.Environment {
			if kv.Name == name {
				return kv.Value
			}
		}
	}
	return ""
}

// devices are the cameras the task recorded: the one its group names and,
// when it was packed, those its RECORDER_CHANNELS names (<device>/<channel>=…).
func devices(d *TaskStateChange, first, container string) []string {
	out := []string{first}
	for _, part := range strings.Split(env(d, container, envChannels), ",") {
		id, _, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			continue
		}
		if dev, _, packed := strings.Cut(id, "/"); packed && dev != "" && !slices.Contains(out, dev) {
			out = append(out, dev)
		}
	}
	return out
}

// taskGroupPrefix starts the task group of a recording task (the
// task-manager names the device there: ECS state changes carry no tags).
const taskGroupPrefix = "recorder:"

// TaskStateConfig says how a task's log stream is named.
type TaskStateConfig struct {
	// Container is the recorder's container name.
	Container string
	// LogStreamPrefix is the awslogs stream prefix of the task definition:
	// ECS names a task's stream <prefix>/<container>/<task id>.
	LogStreamPrefix string
}

// TaskState is the router of mediagw-health-sentinel-task-state.
func TaskState(sig Signals, cfg TaskStateConfig) *messaging.Router {
	r := messaging.NewRouter()
	messaging.OnEventBridge(r, "ECS Task State Change", func(ctx context.Context, d *TaskStateChange, m *messaging.Message) error {
		dev, ok := strings.CutPrefix(d.Group, taskGroupPrefix)
		if !ok || dev == "" {
			return nil // not a recording task
		}
		taskID := d.TaskArn[strings.LastIndex(d.TaskArn, "/")+1:]
		id := m.EventID
		if id == "" {
			id = m.MessageID
		}
		// A packed task carried several cameras: its start and its end are
		// each camera's (one incident per camera, as for a task of its own).
		devs := devices(d, dev, cfg.Container)
		gateway := env(d, cfg.Container, envGateway)
		each := func(s domain.Signal) error {
			for _, dv := range devs {
				s.Device, s.Gateway = dv, gateway
				// A redelivery re-applies them all; each camera's incident
				// ignores the event id it has seen.
				if err := sig.Signal(ctx, s); err != nil {
					return fmt.Errorf("task %s, camera %s: %w", taskID, dv, err)
				}
			}
			return nil
		}
		switch d.LastStatus {
		case "RUNNING":
			at := firstTime(d.StartedAt, d.UpdatedAt)
			if at.IsZero() {
				return messaging.Permanentf("RUNNING task %s without startedAt", d.TaskArn)
			}
			return each(domain.Signal{ID: id, At: at, Kind: domain.KindCamera, Action: domain.Running})
		case "STOPPED":
			code, container := d.Exit(cfg.Container)
			if container == "" {
				container = "recorder"
			}
			if d.StopCode == "UserInitiated" || (code == 0 && d.StopCode != "TaskFailedToStart") {
				return nil // stopped on purpose, or ended well
			}
			at := firstTime(d.StoppedAt, d.UpdatedAt)
			if at.IsZero() {
				return messaging.Permanentf("STOPPED task %s without stoppedAt", d.TaskArn)
			}
			stream := ""
			switch {
			case strings.HasPrefix(d.ClusterArn, "local:"):
				// The task-manager's local launcher logs each task to a file
				// named after its first device.
				stream = "recorder-" + dev + ".log in the task-manager's LOCAL_LOG_DIR"
			case cfg.LogStreamPrefix != "" && taskID != "":
				stream = cfg.LogStreamPrefix + "/" + container + "/" + taskID
			}
			detail := d.Reason()
			if len(devs) > 1 {
				detail = strings.TrimPrefix(detail+"; ", "; ") + fmt.Sprintf("the task recorded %d cameras: %s", len(devs), strings.Join(devs, ", "))
			}
			return each(domain.Signal{ID: id, At: at, Kind: domain.KindCamera, Action: domain.Raise,
				Detail: detail, Exit: &domain.Exit{TaskID: taskID, Code: code, At: at, LogStream: stream}})
		}
		return nil
	})
	return r
}

func firstTime(ts ...*time.Time) time.Time {
	for _, t := range ts {
		if t != nil && !t.IsZero() {
			return *t
		}
	}
	return time.Time{}
}
