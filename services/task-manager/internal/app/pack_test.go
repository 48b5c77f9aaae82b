package app

import (
	"context"
	"slices"
	"testing"
	"time"

	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/testkit"
)

// wanting stores a device that should record and has no task yet.
func (f *fixture) wanting(t *testing.T, gateway, device string, channels int) {
	t.Helper()
	d := domain.Device{Index: device, Gateway: gateway, Want: domain.WantRecord, WantAt: t0, Status: domain.StatusIdle}
	for n := range channels {
		d.Channels = append(d.Channels, domain.Channel{Number: int32(n + 1), MediaURL: "rtsp://h/" + device})
	}
	if _, err := f.store.Put(context.Background(), d, t0); err != nil {
		t.Fatal(err)
	}
}

// tasksOf maps each task id to the devices whose rows name it.
func (f *fixture) tasksOf() map[string][]string {
	f.store.mu.Lock()
	defer f.store.mu.Unlock()
	out := map[string][]string{}
	for _, d := range f.store.rows {
		if d.Task != nil {
			out[d.Task.ID] = append(out[d.Task.ID], d.Index)
		}
	}
	for id := range out {
		slices.Sort(out[id])
	}
	return out
}

func packs(m map[string][]string) [][]string {
	var out [][]string
	for _, devs := range m {
		out = append(out, devs)
	}
	slices.SortFunc(out, func(a, b []string) int { return slices.Compare(a, b) })
	return out
}

func taskOf(m map[string][]string, device string) string {
	for id, devs := range m {
		if slices.Contains(devs, device) {
			return id
		}
	}
	return ""
}

// With a capacity of 3 channels, the devices of a gateway due at once share
// tasks (never with another gateway's); a packed task that crashes has all
// its devices back off together and come back on one task; a device going
// offline replaces its task with one carrying the others.
func TestPackingDevicesOntoTasks(t *testing.T) {
	f := newFixture(t, func(c *Config) {
		c.Capacity = 3
		c.Policy.RestartInitial, c.Policy.RestartMax = 20*time.Millisecond, 20*time.Millisecond
	})
	ctx := context.Background()
	for _, dev := range []string{"cam-a", "cam-b", "cam-c", "cam-d"} {
		f.wanting(t, "gw1", dev, 1)
	}
	f.wanting(t, "gw1", "cam-e", 1)
	f.wanting(t, "gw2", "cam-x", 1)
	if err := f.m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	got := f.tasksOf()
	want := [][]string{{"cam-a", "cam-b", "cam-c"}, {"cam-d", "cam-e"}, {"cam-x"}}
	if !slices.EqualFunc(packs(got), want, slices.Equal) || f.l.n != 3 {
		t.Fatalf("tasks %v (%d launches), want %v", packs(got), f.l.n, want)
	}
	packed := f.l.running[taskOf(got, "cam-a")]
	if packed.Device != "cam-a" || !slices.Equal(packed.Packed, []string{"cam-b", "cam-c"}) {
		t.Errorf("launched %+v", packed)
	}
	if row, _, _ := f.store.Get(ctx, "cam-b"); row.Task == nil || !slices.Equal(row.Task.Pack, []string{"cam-a", "cam-b", "cam-c"}) ||
		!slices.Equal(row.Task.Channels, []int32{1}) || row.Status != domain.StatusRunning {
		t.Errorf("cam-b row %+v", row)
	}

	// The packed task crashes: every device it carried fails once and the
	// three start again together.
	old := taskOf(got, "cam-a")
	one := 1
	delete(f.l.running, old)
	if err := f.m.TaskStateChanged(ctx, TaskStateChange{ClusterArn: LocalClusterArn("mediagw"), TaskArn: old, Group: TaskGroup("cam-a"),
		LastStatus: TaskStatusStopped, StopCode: StopCodeExited, Containers: []ContainerState{{Name: "recorder", ExitCode: &one}}}); err != nil {
		t.Fatal(err)
	}
	for _, dev := range []string{"cam-a", "cam-b", "cam-c"} {
		if row, _, _ := f.store.Get(ctx, dev); len(row.Failures) != 1 {
			t.Errorf("%s after the crash: %+v", dev, row)
		}
	}
	testkit.Eventually(t, 5*time.Second, 5*time.Millisecond, "the crashed task's devices on one new task", func() bool {
		id := taskOf(f.tasksOf(), "cam-a")
		return id != "" && id != old && slices.Equal(f.tasksOf()[id], []string{"cam-a", "cam-b", "cam-c"})
	})
	if f.l.n != 4 {
		t.Errorf("%d launches, want 4: the three restarted on one task", f.l.n)
	}

	// cam-b goes offline: its task is stopped; the others see it end as
	// stopped on purpose and restart at once, together.
	cur := taskOf(f.tasksOf(), "cam-a")
	if err := f.m.DeviceOffline(ctx, DeviceEvent{ID: "off", Gateway: "gw1", Device: "cam-b", OccurredAt: t0.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(f.l.stops, cur) {
		t.Fatalf("stops %v, want %s", f.l.stops, cur)
	}
	zero := 0
	if err := f.m.TaskStateChanged(ctx, TaskStateChange{ClusterArn: LocalClusterArn("mediagw"), TaskArn: cur, Group: TaskGroup("cam-a"),
		LastStatus: TaskStatusStopped, StopCode: StopCodeUserInitiated, Containers: []ContainerState{{Name: "recorder", ExitCode: &zero}}}); err != nil {
		t.Fatal(err)
	}
	got = f.tasksOf()
	if id := taskOf(got, "cam-a"); id == cur || !slices.Equal(got[id], []string{"cam-a", "cam-c"}) || taskOf(got, "cam-b") != "" || f.l.n != 5 {
		t.Errorf("after cam-b went offline: tasks %v, %d launches", got, f.l.n)
	}
	for _, dev := range []string{"cam-a", "cam-c"} {
		if row, _, _ := f.store.Get(ctx, dev); len(row.Failures) != 1 {
			t.Errorf("%s counted the replacement as a failure: %+v", dev, row)
		}
	}
}

// Reconciliation adopts a packed launch whose recording was lost, for every
// device that still holds its token, and stops nothing of it.
func TestPackedLaunchIsAdoptedByEveryDevice(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Capacity = 10; c.ExactList = true })
	ctx := context.Background()
	for _, dev := range []string{"cam-a", "cam-b"} {
		f.wanting(t, "gw1", dev, 1)
		d, _, _ := f.store.Get(ctx, dev)
		if _, err := f.store.Put(ctx, domain.BeginStart(d, "tok-lost", time.Now()), time.Now()); err != nil {
			t.Fatal(err)
		}
	}
	f.l.running["mem:lost"] = domain.ObservedTask{ID: "mem:lost", Device: "cam-a", Packed: []string{"cam-b"}, Token: "tok-lost",
		Channels: []int32{1}, StartedAt: time.Now()}
	if err := f.m.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if got := f.tasksOf(); !slices.Equal(got["mem:lost"], []string{"cam-a", "cam-b"}) || len(f.l.stops) != 0 || f.l.n != 0 {
		t.Errorf("tasks %v, stops %v, launches %d", got, f.l.stops, f.l.n)
	}
	if row, _, _ := f.store.Get(ctx, "cam-b"); row.Task == nil || !slices.Equal(row.Task.Pack, []string{"cam-a", "cam-b"}) || !slices.Equal(row.Task.Channels, []int32{1}) {
		t.Errorf("cam-b row %+v", row)
	}
}
