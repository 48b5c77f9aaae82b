package app

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/task-manager/internal/domain"
)

// memStore is an in-memory TaskStore with the same conditional writes as
// the table; conflictOnce makes the next Put fail as if another writer
// had been first.
type memStore struct {
	mu           sync.Mutex
	rows         map[string]domain.Device
	conflictOnce bool
}

func (s *memStore) Get(_ context.Context, device string) (domain.Device, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.rows[device]
	if !ok {
		return domain.Device{Index: device}, false, nil
	}
	return d, true, nil
}

func (s *memStore) Put(_ context.Context, d domain.Device, now time.Time) (domain.Device, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.rows[d.Index]
	if s.conflictOnce || (ok && cur.Version != d.Version) || (!ok && d.Version != 0) {
		s.conflictOnce = false
		return d, fmt.Errorf("put %s: %w", d.Index, domain.ErrConflict)
	}
	d.Version++
	d.UpdatedAt = now
	s.rows[d.Index] = d
	return d, nil
}

func (s *memStore) Delete(_ context.Context, d domain.Device) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.rows[d.Index]; !ok || cur.Version != d.Version {
		return fmt.Errorf("delete %s: %w", d.Index, domain.ErrConflict)
	}
	delete(s.rows, d.Index)
	return nil
}

func (s *memStore) List(context.Context) ([]domain.Device, []error, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []domain.Device
	for _, d := range s.rows {
		out = append(out, d)
	}
	return out, nil, nil
}

type noTable struct{}

func (noTable) Rows(context.Context) ([]ChannelRow, []error, error) { return nil, nil, nil }

// memLauncher runs no task; it remembers them.
type memLauncher struct {
	mu      sync.Mutex
	n       int
	running map[string]domain.ObservedTask
	stops   []string
}

func (l *memLauncher) Name() string { return "mem" }

func (l *memLauncher) Start(_ context.Context, spec Spec) (domain.ObservedTask, error) {
	if err := spec.Validate(); err != nil {
		return domain.ObservedTask{}, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n++
	t := domain.ObservedTask{ID: fmt.Sprintf("mem:%d", l.n), Device: spec.Device, Token: spec.Token,
		Channels: domain.ChannelNumbers(spec.Channels), Packed: spec.PackedDevices(), StartedAt: time.Now()}
	l.running[t.ID] = t
	return t, nil
}

func (l *memLauncher) Stop(_ context.Context, id, _ string) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	delete(l.running, id)
	l.stops = append(l.stops, id)
	return nil
}

func (l *memLauncher) List(context.Context) ([]domain.ObservedTask, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []domain.ObservedTask
	for _, t := range l.running {
		out = append(out, t)
	}
	return out, nil
}

type memPublisher struct {
	mu     sync.Mutex
	events []string
}

func (p *memPublisher) Publish(_ context.Context, ev proto.Message) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.events = append(p.events, string(ev.ProtoReflect().Descriptor().Name()))
	return nil
}

// countMetrics counts write conflicts and ignored inputs.
type countMetrics struct {
	noMetrics
	mu        sync.Mutex
	conflicts int
	ignored   map[string]int
}

func (m *countMetrics) WriteConflict() { m.mu.Lock(); m.conflicts++; m.mu.Unlock() }
func (m *countMetrics) Ignored(r string) {
	m.mu.Lock()
	m.ignored[r]++
	m.mu.Unlock()
}

type fixture struct {
	m       *Manager
	store   *memStore
	l       *memLauncher
	pub     *memPublisher
	metrics *countMetrics
}

func newFixture(t *testing.T, tweak ...func(*Config)) *fixture {
	f := &fixture{store: &memStore{rows: map[string]domain.Device{}}, l: &memLauncher{running: map[string]domain.ObservedTask{}},
		pub: &memPublisher{}, metrics: &countMetrics{ignored: map[string]int{}}}
	cfg := Config{Policy: domain.DefaultPolicy(), Cluster: "mediagw", Container: "recorder", Metrics: f.metrics}
	for _, tw := range tweak {
		tw(&cfg)
	}
	f.m = New(f.store, noTable{}, f.l, f.pub, cfg)
	t.Cleanup(f.m.Close)
	return f
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func online(id string, at time.Time) DeviceEvent {
	return DeviceEvent{ID: id, Gateway: "gw1", Device: "cam-1", OccurredAt: at,
		Channels: []domain.Channel{{Number: 2, MediaURL: "rtsp://h/2"}, {Number: 1, MediaURL: "rtsp://admin:pw@h/1"}}}
}

// Online starts one task with the channels cleaned and sorted; a duplicate
// and an older offline change nothing; a newer offline stops the task.
func TestDeviceEventsDriveOneTask(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.DeviceOnline(ctx, online("e1", t0)); err != nil {
		t.Fatal(err)
	}
	row, _, _ := f.store.Get(ctx, "cam-1")
	if row.Status != domain.StatusRunning || row.Task == nil || row.Task.Launcher != "mem" ||
		len(row.Channels) != 2 || row.Channels[0] != (domain.Channel{Number: 1, MediaURL: "rtsp://h/1"}) {
		t.Fatalf("row %+v", row)
	}
	if err := f.m.DeviceOnline(ctx, online("e1", t0)); err != nil {
		t.Fatal(err)
	}
	if err := f.m.DeviceOffline(ctx, DeviceEvent{ID: "e0", Gateway: "gw1", Device: "cam-1", OccurredAt: t0.Add(-time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if f.l.n != 1 || len(f.l.running) != 1 || f.metrics.ignored["not_newer"] != 2 {
		t.Fatalf("after a duplicate and an older offline: %d launches, %d running, ignored %v", f.l.n, len(f.l.running), f.metrics.ignored)
	}
	if err := f.m.DeviceOffline(ctx, DeviceEvent{ID: "e2", Gateway: "gw1", Device: "cam-1", OccurredAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	row, _, _ = f.store.Get(ctx, "cam-1")
	if len(f.l.running) != 0 || row.Task != nil || row.Want != domain.WantStop {
		t.Errorf("after offline: running %v, row %+v", f.l.running, row)
	}
	if fmt.Sprint(f.pub.events) != "[RecordingTaskStarted RecordingTaskStopped]" {
		t.Errorf("events %v", f.pub.events)
	}
}

// A write that loses a race is read, decided and written again.
func TestWriteConflictIsDecidedAgain(t *testing.T) {
	f := newFixture(t)
	f.store.conflictOnce = true
	if err := f.m.DeviceOnline(context.Background(), online("e1", t0)); err != nil {
		t.Fatal(err)
	}
	if f.metrics.conflicts != 1 || f.l.n != 1 {
		t.Errorf("%d conflicts, %d launches; want 1 and 1", f.metrics.conflicts, f.l.n)
	}
}

// Events that can never be acted on say so with domain.ErrInvalid and
// change nothing; a gateway id with ':' is one (pkg/gatewayid).
func TestInvalidDeviceEvents(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for name, ev := range map[string]DeviceEvent{
		"gateway id with ':'": {ID: "a", Gateway: "site:1", Device: "cam-1", OccurredAt: t0},
		"device with a slash": {ID: "b", Gateway: "gw1", Device: "../cam", OccurredAt: t0},
		"no time":             {ID: "c", Gateway: "gw1", Device: "cam-1"},
		"no usable channel":   {ID: "d", Gateway: "gw1", Device: "cam-1", OccurredAt: t0, Channels: []domain.Channel{{Number: 1, MediaURL: "http://h/1"}}},
	} {
		if err := f.m.DeviceOnline(ctx, ev); !errors.Is(err, domain.ErrInvalid) {
			t.Errorf("%s: %v, want domain.ErrInvalid", name, err)
		}
	}
	if err := f.m.DeviceDeleted(ctx, DeviceEvent{ID: "e", Gateway: "gw1", Device: "cam:1", OccurredAt: t0}); err != nil {
		t.Errorf("a device index with ':' is one: %v", err)
	}
	if len(f.store.rows) != 0 || f.l.n != 0 {
		t.Errorf("rows %v, launches %d", f.store.rows, f.l.n)
	}
}

// State changes of another cluster, or of tasks that are not recording
// tasks, are ignored; a stop by someone of the device's task restarts it at
// once without counting a failure.
func TestTaskStateChanges(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	if err := f.m.DeviceOnline(ctx, online("e1", t0)); err != nil {
		t.Fatal(err)
	}
	row, _, _ := f.store.Get(ctx, "cam-1")
	zero := 0
	stopped := func(cluster, group, code string) TaskStateChange {
		return TaskStateChange{ClusterArn: cluster, TaskArn: row.Task.ID, Group: group, LastStatus: TaskStatusStopped, StopCode: code,
			Containers: []ContainerState{{Name: "recorder", ExitCode: &zero}}}
	}
	for _, d := range []TaskStateChange{
		stopped("arn:aws:ecs:us-east-1:1:cluster/other", TaskGroup("cam-1"), StopCodeExited),
		stopped(LocalClusterArn("mediagw"), "family:mediagw-recorder", StopCodeExited),
	} {
		if err := f.m.TaskStateChanged(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if f.metrics.ignored["foreign_task"] != 2 || f.l.n != 1 {
		t.Fatalf("ignored %v, launches %d", f.metrics.ignored, f.l.n)
	}
	delete(f.l.running, row.Task.ID)
	if err := f.m.TaskStateChanged(ctx, stopped(LocalClusterArn("mediagw"), TaskGroup("cam-1"), StopCodeUserInitiated)); err != nil {
		t.Fatal(err)
	}
	after, _, _ := f.store.Get(ctx, "cam-1")
	if f.l.n != 2 || after.Task == nil || after.Task.ID == row.Task.ID || len(after.Failures) != 0 {
		t.Errorf("after a stop by someone: %d launches, row %+v", f.l.n, after)
	}
}

// RecordingTaskStarted carries the device and its task.
func TestStartedEventNamesTheTask(t *testing.T) {
	f := newFixture(t)
	var got *eventsv1.RecordingTaskStarted
	f.m.pub = publishFunc(func(ev proto.Message) {
		if s, ok := ev.(*eventsv1.RecordingTaskStarted); ok {
			got = s
		}
	})
	if err := f.m.DeviceOnline(context.Background(), online("e1", t0)); err != nil {
		t.Fatal(err)
	}
	if got == nil || got.GetTask().GetDeviceIndex() != "cam-1" || got.GetTask().GetGatewayId() != "gw1" ||
		got.GetTask().GetLauncher() != "mem" || fmt.Sprint(got.GetTask().GetChannels()) != "[1 2]" {
		t.Errorf("started %v", got)
	}
}

type publishFunc func(proto.Message)

func (f publishFunc) Publish(_ context.Context, ev proto.Message) error { f(ev); return nil }
