package domain

import (
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func testPolicy() Policy {
	return Policy{RestartInitial: time.Second, RestartMax: 8 * time.Second, MaxFailures: 4,
		FailureWindow: time.Minute, GiveUpCooldown: 10 * time.Minute, LaunchGrace: 30 * time.Second}
}

func online(at time.Time, chs ...int32) Desire {
	var c []Channel
	for _, n := range chs {
		c = append(c, Channel{Number: n, MediaURL: "rtsp://gw:554/Streaming/Channels/" + string(rune('0'+n)) + "01"})
	}
	return Desire{Device: "dev1", Gateway: "gw1", Want: WantRecord, At: at, Channels: c}
}

func offline(at time.Time) Desire {
	return Desire{Device: "dev1", Gateway: "gw1", Want: WantStop, At: at}
}

func TestApplyDesireIgnoresDuplicatesAndOlderFacts(t *testing.T) {
	d, ok := ApplyDesire(Device{}, online(t0, 1))
	if !ok || d.Want != WantRecord || d.Index != "dev1" || d.Status != StatusIdle {
		t.Fatalf("first fact not applied: %+v", d)
	}
	d.Version = 1
	if _, ok := ApplyDesire(d, online(t0, 1)); ok {
		t.Error("a duplicate (same occurred_at) was applied")
	}
	if got, ok := ApplyDesire(d, offline(t0.Add(-time.Second))); ok || got.Want != WantRecord {
		t.Error("an older offline undid a newer online")
	}
	d, ok = ApplyDesire(d, offline(t0.Add(time.Second)))
	if !ok || d.Want != WantStop {
		t.Fatalf("newer offline not applied: %+v", d)
	}
	if !d.WantAt.Equal(t0.Add(time.Second)) {
		t.Errorf("WantAt = %v", d.WantAt)
	}
}

// Whatever order facts arrive in, and however often, the device ends up
// wanting what the newest fact says.
func TestApplyDesireConvergesUnderReorderingAndDuplicates(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 500; round++ {
		var facts []Desire
		newest := Desire{}
		for i := 0; i < 1+rng.IntN(6); i++ {
			at := t0.Add(time.Duration(rng.IntN(1000)) * time.Millisecond)
			f := online(at, 1)
			if rng.IntN(2) == 0 {
				f = offline(at)
			}
			if rng.IntN(3) == 0 {
				f.Want = WantDelete
			}
			// Equal times with different wants are a tie nobody can order; keep times unique.
			if slices.ContainsFunc(facts, func(g Desire) bool { return g.At.Equal(at) }) {
				continue
			}
			facts = append(facts, f)
			if f.At.After(newest.At) {
				newest = f
			}
		}
		deliveries := append(slices.Clone(facts), facts...) // every fact twice
		rng.Shuffle(len(deliveries), func(i, j int) { deliveries[i], deliveries[j] = deliveries[j], deliveries[i] })
		var d Device
		for _, f := range deliveries {
			if nd, ok := ApplyDesire(d, f); ok {
				d = nd
				d.Version++
			}
		}
		if d.Want != newest.Want || !d.WantAt.Equal(newest.At) {
			t.Fatalf("round %d: ended wanting %s at %v, newest fact is %s at %v", round, d.Want, d.WantAt, newest.Want, newest.At)
		}
	}
}

func TestPlan(t *testing.T) {
	p := testPolicy()
	rec, _ := ApplyDesire(Device{}, online(t0, 1, 2))
	running := rec
	running.Status, running.Task = StatusRunning, &Task{ID: "t1", Channels: []int32{1, 2}}

	cases := []struct {
		name string
		d    Device
		now  time.Time
		want StepKind
	}{
		{"online, no task: start", rec, t0, StepStart},
		{"online, task running: nothing", running, t0, StepNone},
		{"online, channels changed: stop to replace", func() Device {
			d := running
			d.Task = &Task{ID: "t1", Channels: []int32{1}}
			return d
		}(), t0, StepStop},
		{"offline, task: stop", func() Device { d := running; d.Want = WantStop; return d }(), t0, StepStop},
		{"offline, no task: nothing", func() Device { d := rec; d.Want = WantStop; return d }(), t0, StepNone},
		{"deleted, task: stop first", func() Device { d := running; d.Want = WantDelete; return d }(), t0, StepStop},
		{"deleted, no task: delete", func() Device { d := rec; d.Want = WantDelete; return d }(), t0, StepDelete},
		{"backoff not over: wait", func() Device {
			d := rec
			d.Status, d.NextAttempt = StatusBackoff, t0.Add(time.Second)
			return d
		}(), t0, StepWait},
		{"backoff over: start", func() Device {
			d := rec
			d.Status, d.NextAttempt = StatusBackoff, t0.Add(time.Second)
			return d
		}(), t0.Add(time.Second), StepStart},
		{"gave up, cooling down: wait", func() Device {
			d := rec
			d.Status, d.NextAttempt = StatusGaveUp, t0.Add(time.Hour)
			return d
		}(), t0, StepWait},
		{"launch intent of another worker: wait", BeginStart(rec, "tok", t0), t0.Add(time.Second), StepWait},
		{"stale launch intent: start again", BeginStart(rec, "tok", t0), t0.Add(p.LaunchGrace), StepStart},
		{"stopping: stop again", BeginStop(running, "device offline"), t0, StepStop},
	}
	for _, c := range cases {
		if got := Plan(c.d, c.now, p); got.Kind != c.want {
			t.Errorf("%s: plan %s, want %s", c.name, got.Kind, c.want)
		}
	}
}

func TestLaunchedOnlyForTheCurrentToken(t *testing.T) {
	d, _ := ApplyDesire(Device{}, online(t0, 1))
	d = BeginStart(d, "tok2", t0)
	if _, ok := Launched(d, "tok1", Task{ID: "old"}); ok {
		t.Error("a task launched for an older token was accepted")
	}
	d, ok := Launched(d, "tok2", Task{ID: "t2", Channels: []int32{1}})
	if !ok || d.Task.ID != "t2" || d.Status != StatusRunning {
		t.Fatalf("launch not recorded: %+v", d)
	}
	if _, ok := Launched(d, "tok2", Task{ID: "t2"}); !ok {
		t.Error("recording the same task twice (adoption, then confirmation) was refused")
	}
	if _, ok := Launched(d, "tok2", Task{ID: "t3"}); ok {
		t.Error("a second task for the same launch was accepted")
	}
}

func TestTaskEndedIgnoresTasksThatAreNotCurrent(t *testing.T) {
	p := testPolicy()
	d, _ := ApplyDesire(Device{}, online(t0, 1))
	d, _ = Launched(BeginStart(d, "tok", t0), "tok", Task{ID: "t2", Channels: []int32{1}})
	got, o := TaskEnded(d, TaskEnd{TaskID: "t1", ExitCode: 1}, t0, p)
	if o.Kind != NotCurrent || got.Task.ID != "t2" || len(got.Failures) != 0 {
		t.Fatalf("end of a replaced task changed the device: %+v %+v", o, got)
	}
}

func TestStoppedOnPurposeIsNotAFailure(t *testing.T) {
	p := testPolicy()
	d, _ := ApplyDesire(Device{}, online(t0, 1))
	d, _ = Launched(BeginStart(d, "tok", t0), "tok", Task{ID: "t1", Channels: []int32{1}})
	d = BeginStop(d, "device offline")
	got, o := TaskEnded(d, TaskEnd{TaskID: "t1", ExitCode: 0}, t0, p)
	if o.Kind != Expected || got.Task != nil || got.Status != StatusIdle || len(got.Failures) != 0 {
		t.Fatalf("%+v %+v", o, got)
	}
}

func TestFailuresBackOffThenGiveUpOnce(t *testing.T) {
	p := testPolicy()
	d, _ := ApplyDesire(Device{}, online(t0, 1))
	now := t0
	var delays []time.Duration
	alerts := 0
	for i := 0; i < p.MaxFailures; i++ {
		tok := "tok" + string(rune('a'+i))
		d, _ = Launched(BeginStart(d, tok, now), tok, Task{ID: "t-" + tok, Channels: []int32{1}})
		var o Outcome
		d, o = TaskEnded(d, TaskEnd{TaskID: "t-" + tok, ExitCode: 1, Reason: "exit 1"}, now, p)
		if o.Kind != Failed || o.Failures != i+1 {
			t.Fatalf("failure %d: %+v", i+1, o)
		}
		if o.GaveUp {
			alerts++
			if d.Status != StatusGaveUp || !d.NextAttempt.Equal(now.Add(p.GiveUpCooldown)) {
				t.Fatalf("gave up without cool-down: %+v", d)
			}
			break
		}
		delays = append(delays, o.RetryAt.Sub(now))
		if s := Plan(d, now, p); s.Kind != StepWait {
			t.Fatalf("restarted before the backoff: %s", s.Kind)
		}
		now = o.RetryAt
		if s := Plan(d, now, p); s.Kind != StepStart {
			t.Fatalf("not restarted after the backoff: %s", s.Kind)
		}
	}
	if want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second}; !slices.Equal(delays, want) {
		t.Errorf("delays %v, want %v", delays, want)
	}
	if alerts != 1 {
		t.Errorf("%d alerts, want 1", alerts)
	}
	if s := Plan(d, now.Add(time.Minute), p); s.Kind != StepWait {
		t.Errorf("restarted during the cool-down: %s", s.Kind)
	}
	// A device that comes back online gets a fresh streak.
	d.Version = 1
	d, _ = ApplyDesire(d, online(t0.Add(time.Hour), 1))
	if len(d.Failures) != 0 || Plan(d, now, p).Kind != StepStart {
		t.Errorf("online after giving up did not reset: %+v", d)
	}
}

func TestFailuresOutsideTheWindowAreForgotten(t *testing.T) {
	p := testPolicy()
	d, _ := ApplyDesire(Device{}, online(t0, 1))
	now := t0
	for i := 0; i < 10; i++ {
		tok := "tok" + string(rune('a'+i))
		d, _ = Launched(BeginStart(d, tok, now), tok, Task{ID: tok, Channels: []int32{1}})
		var o Outcome
		d, o = TaskEnded(d, TaskEnd{TaskID: tok, ExitCode: 1}, now, p)
		if o.GaveUp || o.Failures != 1 {
			t.Fatalf("a task that dies once per window counted %d failures", o.Failures)
		}
		now = now.Add(p.FailureWindow + time.Second)
	}
}

func TestPolicyDelayIsCapped(t *testing.T) {
	p := testPolicy()
	if got := p.Delay(30); got != p.RestartMax {
		t.Errorf("Delay(30) = %v", got)
	}
}

func TestCleanMediaURL(t *testing.T) {
	clean, had, err := CleanMediaURL("rtsp://admin:S3cret!@10.0.0.5:554/Streaming/Channels/101")
	if err != nil || !had || clean != "rtsp://10.0.0.5:554/Streaming/Channels/101" {
		t.Errorf("got %q %v %v", clean, had, err)
	}
	if _, _, err := CleanMediaURL("http://admin:S3cret!@x/"); err == nil || strings.Contains(err.Error(), "S3cret") {
		t.Errorf("non-rtsp: %v", err)
	}
	if _, _, err := CleanMediaURL("rtsp://admin:S3cret!@%zz"); err == nil || strings.Contains(err.Error(), "S3cret") {
		t.Errorf("unparsable: %v", err)
	}
}

func TestReconcile(t *testing.T) {
	p := testPolicy()
	now := t0.Add(time.Hour)
	rec := func(dev string) Device {
		d, _ := ApplyDesire(Device{}, Desire{Device: dev, Gateway: "gw", Want: WantRecord, At: t0, Channels: []Channel{{1, "rtsp://gw/1"}}})
		d.Version, d.UpdatedAt = 1, t0
		return d
	}
	current := rec("current")
	current, _ = Launched(BeginStart(current, "tokc", t0), "tokc", Task{ID: "tc", Channels: []int32{1}, StartedAt: t0})
	pending := BeginStart(rec("pending"), "tokp", now.Add(-time.Second))
	gone := rec("gone")
	gone, _ = Launched(BeginStart(gone, "tokg", t0), "tokg", Task{ID: "tg", Channels: []int32{1}, StartedAt: t0})
	young := rec("young")
	young, _ = Launched(BeginStart(young, "toky", now), "toky", Task{ID: "ty", Channels: []int32{1}, StartedAt: now.Add(-time.Second)})
	absent := rec("absent")

	table := map[string]Desire{}
	for _, dev := range []string{"current", "pending", "gone", "young", "new"} {
		table[dev] = Desire{Device: dev, Want: WantRecord, At: t0}
	}
	plan := Reconcile(ReconcileInput{
		Table: table,
		Rows:  []Device{current, pending, gone, young, absent},
		Tasks: []ObservedTask{
			{ID: "tc", Device: "current", Token: "tokc"},
			{ID: "tp", Device: "pending", Token: "tokp"},
			{ID: "told", Device: "current", Token: "tok-old"},
			{ID: "tforeign"},
		},
		ListedAt: now, AbsentGrace: time.Minute, VanishGrace: p.LaunchGrace,
	}, p)

	if a, ok := plan.Adopt["pending"]; !ok || a.ID != "tp" || len(plan.Adopt) != 1 {
		t.Errorf("adopt %+v", plan.Adopt)
	}
	var orphans []string
	for _, o := range plan.Orphans {
		orphans = append(orphans, o.ID)
	}
	slices.Sort(orphans)
	if !slices.Equal(orphans, []string{"tforeign", "told"}) {
		t.Errorf("orphans %v", orphans)
	}
	if v, ok := plan.Vanished["gone"]; !ok || v.TaskID != "tg" || len(plan.Vanished) != 1 {
		t.Errorf("vanished %+v (a task younger than the launch grace must not count)", plan.Vanished)
	}
	var deletes []string
	for _, d := range plan.Desires {
		if d.Want == WantDelete {
			deletes = append(deletes, d.Device)
		}
	}
	if !slices.Equal(deletes, []string{"absent"}) {
		t.Errorf("deletes %v", deletes)
	}
	if !slices.Contains(plan.Devices, "new") || !slices.Contains(plan.Devices, "absent") {
		t.Errorf("devices %v", plan.Devices)
	}

	// With an exact list (local launcher), a task started before the
	// listing and missing from it has vanished, however young.
	plan = Reconcile(ReconcileInput{Table: table, Rows: []Device{young}, ListedAt: now}, p)
	if _, ok := plan.Vanished["young"]; !ok {
		t.Errorf("exact list: young task not vanished: %+v", plan.Vanished)
	}
	// ... but not one started after the listing (launched meanwhile).
	plan = Reconcile(ReconcileInput{Table: table, Rows: []Device{young}, ListedAt: now.Add(-2 * time.Second)}, p)
	if len(plan.Vanished) != 0 {
		t.Errorf("a task launched after the listing counted as vanished")
	}

	// An empty table is more likely a broken watcher than no devices at all.
	plan = Reconcile(ReconcileInput{Table: map[string]Desire{}, Rows: []Device{absent}, ListedAt: now, AbsentGrace: time.Minute}, p)
	if len(plan.Desires) != 0 {
		t.Errorf("an empty table deleted rows: %+v", plan.Desires)
	}
}

// A packed task is its devices' current task when any row names it; a lost
// packed launch is adopted by every device holding its token; only a task
// no row claims or adopts is an orphan.
func TestReconcilePackedTasks(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	pack := []string{"a", "b"}
	rows := []Device{
		{Index: "a", Want: WantRecord, Status: StatusRunning, Task: &Task{ID: "t1", Pack: pack, StartedAt: now}},
		{Index: "b", Want: WantRecord, Status: StatusRunning, Task: &Task{ID: "t1", Pack: pack, StartedAt: now}},
		{Index: "c", Want: WantRecord, Status: StatusStarting, Token: "tok2", TokenAt: now},
		{Index: "d", Want: WantRecord, Status: StatusStarting, Token: "tok2", TokenAt: now},
		{Index: "e", Want: WantStop, Status: StatusIdle},
	}
	plan := Reconcile(ReconcileInput{Rows: rows, ListedAt: now, Tasks: []ObservedTask{
		{ID: "t1", Device: "b", Packed: []string{"a"}}, // listed under its other device
		{ID: "t2", Device: "c", Packed: []string{"d"}, Token: "tok2"},
		{ID: "t3", Device: "e", Packed: []string{"a"}, Token: "old"},
	}}, DefaultPolicy())
	if len(plan.Adopt) != 2 || plan.Adopt["c"].ID != "t2" || plan.Adopt["d"].ID != "t2" {
		t.Errorf("adopt %+v", plan.Adopt)
	}
	if len(plan.Orphans) != 1 || plan.Orphans[0].ID != "t3" {
		t.Errorf("orphans %+v", plan.Orphans)
	}
	if len(plan.Vanished) != 0 {
		t.Errorf("vanished %+v", plan.Vanished)
	}
}
