// Package app is the task-manager's use cases: it turns device events,
// task state changes and periodic reconciliation into domain transitions,
// stores each with a conditional write, and drives the launcher and the
// event publisher accordingly. The interfaces it needs (TaskStore,
// DeviceMedia, Launcher, EventPublisher, Metrics) are declared in ports.go
// and implemented in internal/adapters; internal/ports delivers its inputs.
//
// Every change to a device follows one pattern: read the row, compute the
// next state with the domain, write it on the condition that the row has
// not changed (else read again), and only then act. A launch is preceded by
// storing its token, so a task that exists always has a row that claims it
// or is recognisably an orphan.
package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/task-manager/internal/domain"
)

// Config configures the Manager.
type Config struct {
	Policy domain.Policy
	// AbsentGrace: see domain.ReconcileInput.
	AbsentGrace time.Duration
	// ExactList says the launcher lists every task it started at once (the
	// local launcher); otherwise a task is given the policy's launch grace
	// to appear before reconciliation calls it vanished (ECS).
	ExactList bool
	// Cluster identifies this deployment's tasks in state changes.
	Cluster string
	// Container is the recorder's container name, whose exit code counts.
	Container string
	// Capacity is how many channels one task records: a device starting
	// takes along the devices of its gateway that are due to start too, up
	// to this many channels (domain.Place). ≤ 1: one task per device.
	Capacity int
	// PackWindow: when packing, a device that has just come online waits
	// until this long after the fact (its WantAt) before its task starts,
	// so that devices of its gateway coming online with it share the task.
	// Restarts and replacements (older facts) do not wait.
	PackWindow time.Duration
	Logger     *slog.Logger
	Metrics    Metrics
	Now        func() time.Time
}

// Manager is the task-manager's use cases.
type Manager struct {
	store    TaskStore
	table    DeviceMedia
	launcher Launcher
	pub      EventPublisher
	cfg      Config
	log      *slog.Logger
	m        Metrics

	locks keyedMutex
	// gatewayLocks serialise launches per gateway when packing, so that
	// devices due at the same moment (their restart timers) end up on one
	// task rather than each launching its own.
	gatewayLocks keyedMutex

	// Scheduled re-plans (backoff ends, launch grace ends).
	ctx     context.Context
	cancel  context.CancelFunc
	timerMu sync.Mutex
	timers  map[string]scheduled
	wg      sync.WaitGroup
}

type scheduled struct {
	at    time.Time
	timer *time.Timer
}

// New returns a Manager.
func New(s TaskStore, t DeviceMedia, l Launcher, p EventPublisher, cfg Config) *Manager {
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.AbsentGrace <= 0 {
		cfg.AbsentGrace = 5 * time.Minute
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Manager{store: s, table: t, launcher: l, pub: p, cfg: cfg, log: cfg.Logger, m: cfg.Metrics,
		ctx: ctx, cancel: cancel, timers: map[string]scheduled{}}
}

// maxConflicts bounds the read-decide-write retries of one change; more
// than that means something rewrites the row in a loop.
const maxConflicts = 20

// mutate applies f to the device's current row and stores the result,
// reading again on a write conflict. f returns write=false to leave the row
// as it is. It returns the stored (or unchanged) device and whether a row exists.
func (m *Manager) mutate(ctx context.Context, device string, f func(d domain.Device, found bool) (nd domain.Device, write bool)) (domain.Device, bool, error) {
	for range maxConflicts {
		d, found, err := m.store.Get(ctx, device)
		if err != nil {
			return d, false, err
		}
		nd, write := f(d, found)
		if !write {
			return d, found, nil
		}
		stored, err := m.store.Put(ctx, nd, m.cfg.Now())
		if errors.Is(err, domain.ErrConflict) {
			m.m.WriteConflict()
			continue
		}
		if err != nil {
			return d, found, err
		}
		return stored, true, nil
	}
	return domain.Device{}, false, fmt.Errorf("device %s: %w %d times in a row", device, domain.ErrConflict, maxConflicts)
}

// Apply records a fact about what the device should do, then brings its
// task in line. Facts not newer than what is stored change nothing.
func (m *Manager) Apply(ctx context.Context, in domain.Desire) error {
	unlock := m.locks.lock(in.Device)
	defer unlock()
	if err := m.applyLocked(ctx, in); err != nil {
		return err
	}
	return m.ensureLocked(ctx, in.Device)
}

func (m *Manager) applyLocked(ctx context.Context, in domain.Desire) error {
	ignored := false
	_, _, err := m.mutate(ctx, in.Device, func(d domain.Device, found bool) (domain.Device, bool) {
		if !found && in.Want == domain.WantDelete {
			ignored = true // nothing to delete; a row made only to go again helps nobody
			return d, false
		}
		nd, changed := domain.ApplyDesire(d, in)
		ignored = !changed
		return nd, changed
	})
	if err != nil {
		return err
	}
	if ignored {
		m.m.Ignored("not_newer")
		m.log.DebugContext(ctx, "fact not newer than the device's state; ignored", "device", in.Device, "want", in.Want, "at", in.At)
	} else {
		m.log.InfoContext(ctx, "device state", "device", in.Device, "gateway", in.Gateway, "want", in.Want, "at", in.At,
			"channels", domain.ChannelNumbers(in.Channels))
	}
	return nil
}

// Ensure brings the device's task in line with its stored state.
func (m *Manager) Ensure(ctx context.Context, device string) error {
	unlock := m.locks.lock(device)
	defer unlock()
	return m.ensureLocked(ctx, device)
}

func (m *Manager) ensureLocked(ctx context.Context, device string) error {
	for range maxConflicts {
		d, found, err := m.store.Get(ctx, device)
		if err != nil || !found {
			return err
		}
		now := m.cfg.Now()
		step := domain.Plan(d, now, m.cfg.Policy)
		switch step.Kind {
		case domain.StepNone:
			return nil
		case domain.StepWait:
			m.schedule(device, step.Until)
			return nil
		case domain.StepDelete:
			err := m.store.Delete(ctx, d)
			if errors.Is(err, domain.ErrConflict) {
				continue
			}
			if err == nil {
				m.log.InfoContext(ctx, "device removed", "device", device)
			}
			return err
		case domain.StepStart:
			if at := m.gatherUntil(d, now); now.Before(at) {
				m.schedule(device, at)
				return nil
			}
			if err := m.start(ctx, d, now); err != nil {
				return err
			}
		case domain.StepStop:
			if err := m.stop(ctx, d, step); err != nil {
				return err
			}
		}
	}
	return fmt.Errorf("device %s: no steady state after %d steps", device, maxConflicts)
}

// start stores a launch intent, launches, and records the task. Conflicts
// end it without error: ensureLocked plans again from the new state. With
// a capacity above one, the devices of the same gateway that are due to
// start as well ride on the same task (each row gets the same launch token
// by its own conditional write; a row that changed meanwhile stays out).
func (m *Manager) start(ctx context.Context, d domain.Device, now time.Time) error {
	if m.cfg.Capacity > 1 {
		// Device lock, then gateway lock: nothing takes them the other way.
		defer m.gatewayLocks.lock(d.Gateway)()
	}
	token := uuid.NewString()
	intent, err := m.store.Put(ctx, domain.BeginStart(d, token, now), now)
	if errors.Is(err, domain.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	packed, err := m.gather(ctx, intent, token, now)
	if err != nil {
		m.log.WarnContext(ctx, "no devices packed beside this one", "device", d.Index, "err", err)
	}
	intents := append([]domain.Device{intent}, packed...)
	spec := Spec{Device: d.Index, Gateway: d.Gateway, Channels: d.Channels, Token: token}
	for _, p := range packed {
		spec.Packed = append(spec.Packed, PackedDevice{Device: p.Index, Channels: p.Channels})
	}
	task, err := m.launcher.Start(ctx, spec)
	if err != nil {
		var errs []error
		for _, in := range intents {
			errs = append(errs, m.launchFailed(ctx, in, token, err))
		}
		return errors.Join(errs...)
	}
	m.m.TaskStarted(m.launcher.Name())
	var pack []string
	if len(packed) > 0 {
		pack = append([]string{d.Index}, spec.PackedDevices()...)
		slices.Sort(pack)
	}
	var accepted []domain.Device
	var errs []error
	for _, in := range intents {
		rec := domain.Task{ID: task.ID, Launcher: m.launcher.Name(), Channels: domain.ChannelNumbers(in.Channels), Pack: pack, StartedAt: task.StartedAt}
		ok := false
		_, _, err := m.mutate(ctx, in.Index, func(cur domain.Device, found bool) (domain.Device, bool) {
			if !found {
				ok = false
				return cur, false
			}
			nd, acc := domain.Launched(cur, token, rec)
			ok = acc
			return nd, acc && (cur.Task == nil || cur.Task.ID != rec.ID)
		})
		if err != nil {
			// The task runs but is not recorded: reconciliation adopts it by its token.
			errs = append(errs, fmt.Errorf("device %s: record task %s: %w", in.Index, task.ID, err))
			continue
		}
		if ok {
			accepted = append(accepted, in)
			m.log.InfoContext(ctx, "recording task started", "device", in.Index, "gateway", in.Gateway, "task_id", task.ID,
				"launcher", m.launcher.Name(), "channels", rec.Channels, "pack", pack)
			m.publish(ctx, &eventsv1.RecordingTaskStarted{Task: m.taskEvent(in, rec)})
		}
	}
	if err := errors.Join(errs...); err != nil {
		return err
	}
	if len(accepted) < len(intents) {
		// A device moved on during the launch (offline, another launch): the
		// task must not record it. Stop the task; the devices that took it
		// see it end as stopped on purpose and start again at once.
		m.log.WarnContext(ctx, "a device moved on during the launch; stopping the new task", "device", d.Index, "task_id", task.ID,
			"accepted", len(accepted), "devices", len(intents))
		if len(accepted) == 0 {
			m.m.OrphanStopped()
		}
		return m.launcher.Stop(ctx, task.ID, "superseded: a device's state changed during the launch")
	}
	return nil
}

// gatherUntil is when a device due to start may: one that came online
// less than the pack window ago waits for the rest of it (at most the
// window from now, whatever the clocks of the fact's source say).
func (m *Manager) gatherUntil(d domain.Device, now time.Time) time.Time {
	if m.cfg.Capacity <= 1 || m.cfg.PackWindow <= 0 || d.Status != domain.StatusIdle || len(d.Failures) > 0 {
		return time.Time{}
	}
	until := d.WantAt.Add(m.cfg.PackWindow)
	if limit := now.Add(m.cfg.PackWindow); until.After(limit) {
		until = limit
	}
	return until
}

// gather stores the launch intent of the devices that go on the task
// starting for first (same gateway, due to start now, up to the capacity).
func (m *Manager) gather(ctx context.Context, first domain.Device, token string, now time.Time) ([]domain.Device, error) {
	if m.cfg.Capacity <= 1 {
		return nil, nil
	}
	rows, _, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	byIndex := map[string]domain.Device{}
	var pending []domain.Load
	for _, r := range rows {
		if r.Index == first.Index || r.Gateway != first.Gateway || domain.Plan(r, now, m.cfg.Policy).Kind != domain.StepStart {
			continue
		}
		byIndex[r.Index] = r
		pending = append(pending, domain.Load{Device: r.Index, Channels: len(r.Channels)})
	}
	if len(pending) == 0 {
		return nil, nil
	}
	own := domain.Pack{Gateway: first.Gateway, Devices: []domain.Load{{Device: first.Index, Channels: len(first.Channels)}}}
	placed := domain.Place(m.cfg.Capacity, []domain.Pack{own}, first.Gateway, pending)
	var out []domain.Device
	for _, l := range placed.Packs[0].Devices[1:] {
		in, err := m.store.Put(ctx, domain.BeginStart(byIndex[l.Device], token, now), now)
		if errors.Is(err, domain.ErrConflict) {
			continue // changed meanwhile: it plans on its own
		}
		if err != nil {
			return out, err
		}
		out = append(out, in)
	}
	return out, nil
}

func (m *Manager) launchFailed(ctx context.Context, intent domain.Device, token string, cause error) error {
	reason := "launch failed: " + cause.Error()
	var out domain.Outcome
	applied := false
	_, _, err := m.mutate(ctx, intent.Index, func(cur domain.Device, found bool) (domain.Device, bool) {
		if !found {
			return cur, false
		}
		nd, o, ok := domain.LaunchFailed(cur, token, reason, m.cfg.Now(), m.cfg.Policy)
		out, applied = o, ok
		return nd, ok
	})
	m.log.ErrorContext(ctx, "recording task did not start", "device", intent.Index, "err", cause)
	if err != nil {
		return errors.Join(fmt.Errorf("device %s: %w", intent.Index, cause), err)
	}
	if applied {
		m.failed(ctx, intent, domain.Task{Launcher: m.launcher.Name(), Channels: domain.ChannelNumbers(intent.Channels)}, -1, reason, out)
	}
	return nil
}

// stop asks the launcher to stop the device's task and, once it accepted,
// forgets the task.
func (m *Manager) stop(ctx context.Context, d domain.Device, step domain.Step) error {
	if d.Status != domain.StatusStopping {
		var err error
		d, err = m.store.Put(ctx, domain.BeginStop(d, step.Reason), m.cfg.Now())
		if errors.Is(err, domain.ErrConflict) {
			return nil
		}
		if err != nil {
			return err
		}
	}
	if err := m.launcher.Stop(ctx, step.Task.ID, step.Reason); err != nil {
		return fmt.Errorf("device %s: %w", d.Index, err)
	}
	cleared := false
	_, _, err := m.mutate(ctx, d.Index, func(cur domain.Device, found bool) (domain.Device, bool) {
		if !found {
			return cur, false
		}
		nd, ok := domain.StopRequested(cur, step.Task.ID)
		cleared = ok
		return nd, ok
	})
	if err != nil {
		return err
	}
	if cleared {
		m.m.TaskStopped(m.launcher.Name())
		m.log.InfoContext(ctx, "recording task stopped", "device", d.Index, "task_id", step.Task.ID, "reason", step.Reason)
		m.publish(ctx, &eventsv1.RecordingTaskStopped{Task: m.taskEvent(d, *step.Task), Reason: step.Reason})
	}
	return nil
}

// TaskEnded applies a task's end reported by the launcher's state change
// to every device the task carried (device is the one its group names),
// all ends first and at one time, so that the devices of a packed task
// restart together onto one task.
func (m *Manager) TaskEnded(ctx context.Context, device string, end domain.TaskEnd) error {
	devices, err := m.carriers(ctx, device, end.TaskID)
	if err != nil {
		return err
	}
	// Hold every carrier while the ends are applied, so that no restart of
	// one of them (a timer) starts before the others have ended and can go
	// along. Locks in order: nothing else holds two.
	locked := slices.Sorted(slices.Values(devices))
	locked = slices.Compact(locked)
	for _, dev := range locked {
		defer m.locks.lock(dev)()
	}
	now := m.cfg.Now()
	var errs []error
	for _, dev := range devices {
		errs = append(errs, m.taskEndedLocked(ctx, dev, end, false, now))
	}
	return errors.Join(append(errs, m.ensureAll(ctx, locked))...)
}

// ensureAll plans devices whose locks the caller holds.
func (m *Manager) ensureAll(ctx context.Context, devices []string) error {
	var errs []error
	for _, dev := range devices {
		errs = append(errs, m.ensureLocked(ctx, dev))
	}
	return errors.Join(errs...)
}

// carriers are the devices whose rows name taskID as their task: device
// and, for a packed task, the others of its pack. Rows that let go of the
// task already (the device that stopped it) are found by a look at every
// row when packing is on.
func (m *Manager) carriers(ctx context.Context, device, taskID string) ([]string, error) {
	d, found, err := m.store.Get(ctx, device)
	if err != nil {
		return nil, err
	}
	if found && d.Task != nil && d.Task.ID == taskID {
		if len(d.Task.Pack) == 0 {
			return []string{device}, nil
		}
		return append([]string{device}, slices.DeleteFunc(slices.Clone(d.Task.Pack), func(s string) bool { return s == device })...), nil
	}
	if m.cfg.Capacity <= 1 {
		return []string{device}, nil
	}
	rows, _, err := m.store.List(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{device}
	for _, r := range rows {
		if r.Index != device && r.Task != nil && r.Task.ID == taskID {
			out = append(out, r.Index)
		}
	}
	return out, nil
}

// taskEndedLocked applies the end to one device; the caller plans it
// afterwards (Ensure).
func (m *Manager) taskEndedLocked(ctx context.Context, device string, end domain.TaskEnd, vanished bool, now time.Time) error {
	var out domain.Outcome
	var before domain.Device
	_, found, err := m.mutate(ctx, device, func(cur domain.Device, found bool) (domain.Device, bool) {
		if !found {
			out = domain.Outcome{Kind: domain.NotCurrent}
			return cur, false
		}
		before = cur
		nd, o := domain.TaskEnded(cur, end, now, m.cfg.Policy)
		out = o
		return nd, o.Kind != domain.NotCurrent
	})
	if err != nil {
		return err
	}
	if !found || out.Kind == domain.NotCurrent {
		m.m.Ignored("not_current_task")
		m.log.DebugContext(ctx, "end of a task that is not the device's current one; ignored", "device", device, "task_id", end.TaskID)
		return nil
	}
	task := *before.Task
	switch {
	case out.Kind == domain.Failed:
		m.failed(ctx, before, task, end.ExitCode, end.Reason, out)
	case vanished:
		m.log.WarnContext(ctx, "recording task vanished without a state change; restarting", "device", device, "task_id", end.TaskID)
		m.publish(ctx, &eventsv1.RecordingTaskFailed{Task: m.taskEvent(before, task), ExitCode: end.ExitCode, Reason: end.Reason})
	default:
		m.log.InfoContext(ctx, "recording task ended as expected", "device", device, "task_id", end.TaskID, "reason", end.Reason)
		m.publish(ctx, &eventsv1.RecordingTaskStopped{Task: m.taskEvent(before, task), Reason: end.Reason})
	}
	return nil
}

// failed reports a failure of the device's task; the last one before the
// manager gives up also raises an alert.
func (m *Manager) failed(ctx context.Context, d domain.Device, task domain.Task, exit int32, reason string, out domain.Outcome) {
	m.m.TaskFailed(m.launcher.Name())
	m.log.WarnContext(ctx, "recording task failed", "device", d.Index, "task_id", task.ID, "exit_code", exit, "reason", reason,
		"failures", out.Failures, "retry_at", out.RetryAt, "gave_up", out.GaveUp)
	m.publish(ctx, &eventsv1.RecordingTaskFailed{Task: m.taskEvent(d, task), ExitCode: exit, Reason: reason, Restarts: int32(out.Failures)})
	if out.GaveUp {
		m.m.GaveUp()
		m.publish(ctx, &eventsv1.Alert{
			Severity: eventsv1.Severity_SEVERITY_CRITICAL,
			Subject:  fmt.Sprintf("Recording of camera %s on gateway %s keeps failing", d.Index, d.Gateway),
			Message: fmt.Sprintf("The recording task of camera %s (gateway %s, channels %v) failed %d times within %s; "+
				"the task-manager stops restarting it until %s. Last exit code %d: %s.",
				d.Index, d.Gateway, domain.ChannelNumbers(d.Channels), out.Failures, m.cfg.Policy.FailureWindow,
				out.RetryAt.UTC().Format(time.RFC3339), exit, reason),
			GatewayId:   d.Gateway,
			DeviceIndex: d.Index,
		})
	}
	if !out.RetryAt.IsZero() {
		m.schedule(d.Index, out.RetryAt)
	}
}

func (m *Manager) taskEvent(d domain.Device, t domain.Task) *eventsv1.RecordingTask {
	launcherName := t.Launcher
	if launcherName == "" {
		launcherName = m.launcher.Name()
	}
	return &eventsv1.RecordingTask{TaskId: t.ID, Launcher: launcherName, GatewayId: d.Gateway, DeviceIndex: d.Index, Channels: t.Channels}
}

func (m *Manager) publish(ctx context.Context, ev proto.Message) {
	if err := m.pub.Publish(ctx, ev); err != nil {
		// The state is stored; the event is lost. Say so loudly.
		m.log.ErrorContext(ctx, "event not published", "event", string(ev.ProtoReflect().Descriptor().Name()), "err", err)
	}
}

// schedule plans the device again at at (the earliest wins).
func (m *Manager) schedule(device string, at time.Time) {
	m.timerMu.Lock()
	defer m.timerMu.Unlock()
	if m.ctx.Err() != nil {
		return
	}
	if s, ok := m.timers[device]; ok {
		if !s.at.After(at) {
			return
		}
		s.timer.Stop()
	}
	delay := max(at.Sub(m.cfg.Now()), 0) + 10*time.Millisecond
	m.timers[device] = scheduled{at: at, timer: time.AfterFunc(delay, func() {
		m.timerMu.Lock()
		delete(m.timers, device)
		if m.ctx.Err() != nil {
			m.timerMu.Unlock()
			return
		}
		m.wg.Add(1)
		m.timerMu.Unlock()
		defer m.wg.Done()
		if err := m.Ensure(m.ctx, device); err != nil && m.ctx.Err() == nil {
			m.log.Error("scheduled re-plan failed; reconciliation retries", "device", device, "err", err)
		}
	})}
}

// Scheduled is when this process plans the device again on its own (a
// restart due after a backoff or a cool-down, the end of a launch grace),
// if it will.
func (m *Manager) Scheduled(device string) (time.Time, bool) {
	m.timerMu.Lock()
	defer m.timerMu.Unlock()
	s, ok := m.timers[device]
	return s.at, ok
}

// Close stops scheduled work and waits for what is running.
func (m *Manager) Close() {
	m.timerMu.Lock()
	m.cancel()
	for _, s := range m.timers {
		s.timer.Stop()
	}
	m.timers = map[string]scheduled{}
	m.timerMu.Unlock()
	m.wg.Wait()
}

// keyedMutex serialises work on one device within this process; the
// conditional writes keep several processes correct, this keeps them from
// tripping over each other here.
type keyedMutex struct {
	mu    sync.Mutex
	locks map[string]*keyedEntry
}

type keyedEntry struct {
	mu   sync.Mutex
	refs int
}

func (k *keyedMutex) lock(key string) (unlock func()) {
	k.mu.Lock()
	if k.locks == nil {
		k.locks = map[string]*keyedEntry{}
	}
	e := k.locks[key]
	if e == nil {
		e = &keyedEntry{}
		k.locks[key] = e
	}
	e.refs++
	k.mu.Unlock()
	e.mu.Lock()
	return func() {
		e.mu.Unlock()
		k.mu.Lock()
		if e.refs--; e.refs == 0 {
			delete(k.locks, key)
		}
		k.mu.Unlock()
	}
}
