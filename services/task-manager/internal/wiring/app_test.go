package wiring

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/topology"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/testkit"
)

// Online → one task and a row; the same event again, and an older offline
// after the newer online, change nothing; offline stops the task; deleted
// removes the row.
func TestDeviceEventsDriveExactlyOneTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	const dev = "cam-events"

	on := e.online(dev, "ev-online-1", t0)
	e.publish(on)
	first, row := e.running(dev, 15*time.Second)
	if row.Status != domain.StatusRunning || row.Want != domain.WantRecord ||
		len(row.Channels) != 2 || row.Gateway != "gw-local" || !row.WantAt.Equal(t0) {
		t.Fatalf("ip-camera row %+v", row)
	}

	// The recorder is told where the password is, never what it is.
	envFiles, _ := filepath.Glob(filepath.Join(e.spool, "gw-local", dev, "env-*"))
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, "the stand-in wrote its environment", func() bool {
		envFiles, _ = filepath.Glob(filepath.Join(e.spool, "gw-local", dev, "env-*"))
		return len(envFiles) == 1
	})
	b, err := os.ReadFile(envFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "RECORDER_RTSP_PASSWORD_PARAM="+e.res.ParameterRoot+"/gateways/gw-local/Password\n") {
		t.Errorf("env lacks the password parameter name:\n%s", b)
	}
	// and which login budget its logins go through: the real table.
	if !strings.Contains(string(b), "LOGIN_BUDGET_TABLE="+e.res.Tables["mediagw-login-budget"]+"\n") {
		t.Errorf("env lacks the login-budget table:\n%s", b)
	}
	for _, p := range topology.Default().Parameters {
		if p.Type == "SecureString" && strings.Contains(string(b), p.LocalValue) {
			t.Errorf("a secret reached the task's environment")
		}
	}

	// Twice the same event, and an offline older than the online.
	e.publish(on)
	e.publish(&eventsv1.DeviceOffline{Meta: meta("ev-offline-old", t0.Add(-time.Minute)), GatewayId: "gw-local", DeviceIndex: dev})
	e.publish(e.online(dev, "ev-online-older", t0.Add(-30*time.Second)))
	e.drained(e.s.DeviceEvents.URL)
	if got := e.tasks(dev); len(got) != 1 || got[0].ID != first.ID {
		t.Fatalf("after duplicate and late events: tasks %+v, want only %s", got, first.ID)
	}
	if row, _ := e.row(dev); row.Task == nil || row.Task.ID != first.ID || row.Want != domain.WantRecord {
		t.Fatalf("after duplicate and late events: row %+v", row)
	}

	e.publish(&eventsv1.DeviceOffline{Meta: meta("ev-offline", t0.Add(time.Minute)), GatewayId: "gw-local", DeviceIndex: dev})
	testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, "the task stopped after offline, and the row says so", func() bool {
		row, found := e.row(dev)
		return len(e.tasks(dev)) == 0 && found && row.Task == nil && row.Status == domain.StatusIdle
	})
	if row, _ := e.row(dev); row.Want != domain.WantStop {
		t.Fatalf("row after offline %+v", row)
	}
	// The task's own STOPPED state change is no failure.
	e.drained(e.s.TaskState.URL)
	if row, _ := e.row(dev); len(row.Failures) != 0 || len(e.tasks(dev)) != 0 {
		t.Fatalf("a stop on purpose counted as a failure or restarted: %+v", row)
	}

	e.publish(&eventsv1.DeviceDeleted{Meta: meta("ev-deleted", t0.Add(2*time.Minute)), GatewayId: "gw-local", DeviceIndex: dev})
	testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, "the row removed after deleted", func() bool { _, found := e.row(dev); return !found })
}

// Deleted while recording: the task stops and the row goes.
func TestDeletedWhileRecording(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	const dev = "cam-deleted"
	e.publish(e.online(dev, "on", t0))
	e.running(dev, 15*time.Second)
	e.publish(&eventsv1.DeviceDeleted{Meta: meta("del", t0.Add(time.Second)), GatewayId: "gw-local", DeviceIndex: dev})
	testkit.Eventually(t, 15*time.Second, 50*time.Millisecond, "task stopped and row gone", func() bool {
		_, found := e.row(dev)
		return !found && len(e.tasks(dev)) == 0
	})
}

// A killed task comes back after the backoff; a task that keeps dying is
// given up on with an Alert instead of being restarted at full speed.
func TestDyingTasksAreRestartedWithBackoffThenAlerted(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	sentinel := e.res.Queues["mediagw-health-sentinel-events"].URL

	const killed = "cam-killed"
	e.publish(e.online(killed, "on-k", t0))
	first, _ := e.running(killed, 15*time.Second)
	pid, ok := e.svc.local.Pid(first.ID)
	if !ok {
		t.Fatal("no pid")
	}
	killedAt := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 20*time.Second, 50*time.Millisecond, "a new task after the kill", func() bool {
		ts := e.tasks(killed)
		return len(ts) == 1 && ts[0].ID != first.ID
	})
	if since := time.Since(killedAt); since < e.s.Policy.RestartInitial {
		t.Errorf("restarted %s after the kill, before the %s backoff", since, e.s.Policy.RestartInitial)
	}
	_, row := e.running(killed, 5*time.Second)
	if len(row.Failures) != 1 || row.LastExit != 137 || row.Status != domain.StatusRunning {
		t.Errorf("row after one kill: %+v", row)
	}

	const crashing = "cam-crash"
	e.publish(e.online(crashing, "on-c", t0))
	got := e.received(sentinel, 30*time.Second, func(got map[string][]proto.Message) bool {
		return len(got["mediagw.events.v1.Alert"]) > 0
	})
	alerts := got["mediagw.events.v1.Alert"]
	if len(alerts) != 1 {
		t.Fatalf("%d alerts, want 1 (failures seen: %d)", len(alerts), len(got["mediagw.events.v1.RecordingTaskFailed"]))
	}
	a := alerts[0].(*eventsv1.Alert)
	if a.GetDeviceIndex() != crashing || a.GetSeverity() != eventsv1.Severity_SEVERITY_CRITICAL || !strings.Contains(a.GetMessage(), "exit code 3") {
		t.Errorf("alert %v", a)
	}
	var restarts []int32
	for _, m := range got["mediagw.events.v1.RecordingTaskFailed"] {
		if f := m.(*eventsv1.RecordingTaskFailed); f.GetTask().GetDeviceIndex() == crashing {
			restarts = append(restarts, f.GetRestarts())
			if f.GetExitCode() != 3 || f.GetTask().GetLauncher() != "local" {
				t.Errorf("failure event %v", f)
			}
		}
	}
	if len(restarts) != e.s.Policy.MaxFailures {
		t.Errorf("failure events with restarts %v, want %d", restarts, e.s.Policy.MaxFailures)
	}
	row, _ = e.row(crashing)
	if row.Status != domain.StatusGaveUp || len(row.Failures) != e.s.Policy.MaxFailures {
		t.Fatalf("row after giving up: %+v", row)
	}
	// Backoff: each wait at least the policy's delay (the task itself lives ~100 ms).
	for i := 1; i < len(row.Failures); i++ {
		if gap, want := row.Failures[i].Sub(row.Failures[i-1]), e.s.Policy.Delay(i); gap < want {
			t.Errorf("failure %d came %s after the previous one, backoff is %s", i+1, gap, want)
		}
	}
	// Given up: no more starts during the cool-down. The only re-plan the
	// manager has scheduled for the device is the cool-down's end, and
	// what arrives meanwhile starts nothing: a repeated online (not newer,
	// so only planned again) and every task state change, all handled.
	last := row.Failures[len(row.Failures)-1]
	if at, ok := e.svc.manager.Scheduled(crashing); !ok || !at.Equal(row.NextAttempt) || !row.NextAttempt.Equal(last.Add(e.s.Policy.GiveUpCooldown)) {
		t.Errorf("next plan of a given-up device at %s (scheduled %v), next attempt %s; want the cool-down's end %s",
			at, ok, row.NextAttempt, last.Add(e.s.Policy.GiveUpCooldown))
	}
	e.publish(e.online(crashing, "on-c-again", t0))
	e.drained(e.s.DeviceEvents.URL)
	e.drained(e.s.TaskState.URL)
	if ts := e.tasks(crashing); len(ts) != 0 {
		t.Errorf("restarted during the cool-down: %+v", ts)
	}
	if row2, _ := e.row(crashing); len(row2.Failures) != len(row.Failures) {
		t.Errorf("more failures during the cool-down: %d", len(row2.Failures))
	}
	// The killed camera's recording was not disturbed by its neighbour.
	if ts := e.tasks(killed); len(ts) != 1 {
		t.Errorf("killed camera: %d tasks", len(ts))
	}
}

// Reconciliation: a device online in deviceMediaURL without any event gets
// its task; tasks started behind the manager's back are stopped; a device
// whose task vanished without a state change gets a new one.
func TestReconciliationFixesDriftWithinOneInterval(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Settings) {
		s.ReconcileInterval, s.AbsentGrace, s.Policy.LaunchGrace = time.Second, 2*time.Second, 500*time.Millisecond
	})
	e.start()
	const dev = "cam-table-only"
	e.putChannel(dev, 1, "online", t0)
	e.putChannel(dev, 2, "offline", t0)
	current, _ := e.running(dev, 5*time.Second)
	if len(current.Channels) != 1 || current.Channels[0] != 1 {
		t.Errorf("task records channels %v, want the online one only", current.Channels)
	}

	ctx := context.Background()
	spec := app.Spec{Device: dev, Gateway: "gw-local", Token: "rogue",
		Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://127.0.0.1:8554/Streaming/Channels/101"}}}
	rogue, err := e.svc.local.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	spec.Device, spec.Token = "cam-nobody", ""
	stray, err := e.svc.local.Start(ctx, spec)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, "tasks started behind the manager's back stopped", func() bool {
		_, r := e.svc.local.Pid(rogue.ID)
		_, s := e.svc.local.Pid(stray.ID)
		return !r && !s
	})
	if ts := e.tasks(dev); len(ts) != 1 || ts[0].ID != current.ID {
		t.Fatalf("the device's own task was touched: %+v", ts)
	}

	// Gone from the table (deleted, and the event lost): stopped and removed after the grace.
	if _, err := e.db.DeleteItem(ctx, deleteChannel(e, dev, 1)); err != nil {
		t.Fatal(err)
	}
	if _, err := e.db.DeleteItem(ctx, deleteChannel(e, dev, 2)); err != nil {
		t.Fatal(err)
	}
	e.putChannel("cam-other", 1, "offline", t0) // the table is not empty
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "task stopped and row removed for a device gone from the table", func() bool {
		_, found := e.row(dev)
		return !found && len(e.tasks(dev)) == 0
	})
}

// A restarted task-manager finds the local tasks of its predecessor gone
// (it stopped them on its way out) and starts them again at start-up,
// without waiting for their state changes and without counting a failure.
func TestRestartedManagerRestoresTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	stop := e.start()
	for _, dev := range []string{"cam-r1", "cam-r2"} {
		e.publish(e.online(dev, "on-"+dev, t0))
	}
	_, before := e.running("cam-r1", 15*time.Second)
	e.running("cam-r2", 5*time.Second)
	stop()
	// Their state changes may come late (one can sit invisible in the queue,
	// received by the predecessor's last long poll): throw them away, so
	// that only the start-up reconciliation can bring the tasks back.
	if _, err := e.sqs.PurgeQueue(context.Background(), &sqs.PurgeQueueInput{QueueUrl: aws.String(e.s.TaskState.URL)}); err != nil {
		t.Fatal(err)
	}

	e.start()
	_, after := e.running("cam-r1", 15*time.Second)
	e.running("cam-r2", 5*time.Second)
	if after.Task.ID == before.Task.ID || len(after.Failures) != 0 || after.Status != domain.StatusRunning {
		t.Errorf("row after the restart %+v", after)
	}
}

// Events that cannot be acted on go to the dead-letter queue with a reason
// (and start nothing); a media URL with credentials is used without them.
func TestBadDeviceEvents(t *testing.T) {
	t.Parallel()
	e := newEnv(t, nil)
	e.start()
	bad := []proto.Message{
		&eventsv1.DeviceOnline{Meta: meta("bad-dev", t0), GatewayId: "gw-local", DeviceIndex: "../etc", Channels: channels(1)},
		&eventsv1.DeviceOnline{Meta: meta("bad-url", t0), GatewayId: "gw-local", DeviceIndex: "cam-badurl",
			Channels: []*eventsv1.Channel{{Channel: 1, MediaUrl: "http://10.0.0.5/x"}}},
	}
	for _, ev := range bad {
		e.publish(ev)
	}
	withCreds := &eventsv1.DeviceOnline{Meta: meta("creds", t0), GatewayId: "gw-local", DeviceIndex: "cam-creds",
		Channels: []*eventsv1.Channel{{Channel: 1, MediaUrl: "rtsp://admin:Hunter2-Secret@127.0.0.1:8554/Streaming/Channels/101"}}}
	e.publish(withCreds)

	_, row := e.running("cam-creds", 15*time.Second)
	if len(row.Channels) != 1 || row.Channels[0].MediaURL != "rtsp://127.0.0.1:8554/Streaming/Channels/101" {
		t.Errorf("channels %+v", row.Channels)
	}
	envFiles, _ := filepath.Glob(filepath.Join(e.spool, "gw-local", "cam-creds", "env-*"))
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, "stand-in env", func() bool {
		envFiles, _ = filepath.Glob(filepath.Join(e.spool, "gw-local", "cam-creds", "env-*"))
		return len(envFiles) > 0
	})
	if b, _ := os.ReadFile(envFiles[0]); strings.Contains(string(b), "Hunter2") {
		t.Error("credentials from the event reached the task")
	}

	dlq := e.deadLettered(e.s.DeviceEvents.DLQURL, 2, 15*time.Second)
	if len(dlq) != 2 {
		t.Fatalf("%d messages dead-lettered, want 2: %v", len(dlq), dlq)
	}
	for _, reason := range dlq {
		if strings.Contains(reason, "Hunter2") {
			t.Errorf("a reason repeats a secret: %s", reason)
		}
	}
	if _, found := e.row("cam-badurl"); found {
		t.Error("a row for an event without a usable channel")
	}
}
