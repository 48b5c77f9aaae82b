package local

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"mediagw/services/task-manager/internal/adapters/local/localtest"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/testkit"
)

func TestMain(m *testing.M) {
	localtest.Maybe()
	os.Exit(m.Run())
}

type reports chan app.TaskStateChange

func (r reports) Report(_ context.Context, d app.TaskStateChange) error { r <- d; return nil }

func (r reports) next(t *testing.T, within time.Duration) app.TaskStateChange {
	t.Helper()
	select {
	case d := <-r:
		return d
	case <-time.After(within):
		t.Fatalf("no task state change within %s", within)
		return app.TaskStateChange{}
	}
}

const password = "Never-In-Env-42"

func newLauncher(t *testing.T, stopTimeout time.Duration) (*Launcher, reports, string) {
	t.Helper()
	root := t.TempDir()
	rep := make(reports, 16)
	t.Setenv("MEDIAGW_TEST_UNRELATED", "must-not-pass")
	l, err := New(Config{
		Binary: os.Args[0], Args: []string{localtest.Arg},
		Recorder: app.Recorder{RTSPUser: "admin", PasswordParameter: "/mediagw/gateways/{gateway}/Password",
			SegmentLength: 30 * time.Second, Bucket: "b", KeyPrefix: "recordings", HTTPAddr: "127.0.0.1:0", StopTimeout: time.Second,
			LoginBudgetTable: "lb-table"},
		SpoolRoot: root, StopTimeout: stopTimeout, PassEnv: []string{"PATH", "AWS_*"},
	}, rep)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := l.Close(ctx); err != nil {
			t.Errorf("close: %v", err)
		}
	})
	return l, rep, root
}

func spec(device string) app.Spec {
	return app.Spec{Device: device, Gateway: "gw1", Token: "tok-" + device, Channels: []domain.Channel{
		{Number: 1, MediaURL: "rtsp://127.0.0.1:8554/Streaming/Channels/101"},
		{Number: 2, MediaURL: "rtsp://127.0.0.1:8554/Streaming/Channels/201"},
	}}
}

// waitFile waits until a file matching pattern has content and returns it.
func waitFile(t *testing.T, pattern string) string {
	t.Helper()
	var content string
	testkit.Eventually(t, 10*time.Second, 20*time.Millisecond, "a file "+pattern, func() bool {
		if m, _ := filepath.Glob(pattern); len(m) > 0 {
			if b, err := os.ReadFile(m[0]); err == nil && len(b) > 0 {
				content = string(b)
				return true
			}
		}
		return false
	})
	return content
}

// gone says whether a process has ended: no such process, or a zombie (gone
// for every purpose but kill(0)).
func gone(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return true
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err != nil || strings.Contains(string(b), ") Z")
}

func TestStartGivesTheRecorderItsSettingsAndNoSecret(t *testing.T) {
	l, rep, root := newLauncher(t, 5*time.Second)
	ctx := context.Background()
	task, err := l.Start(ctx, spec("cam1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(task.ID, "local:") || task.Device != "cam1" || task.Token != "tok-cam1" || len(task.Channels) != 2 {
		t.Errorf("task %+v", task)
	}
	env := waitFile(t, filepath.Join(root, "gw1", "cam1", "env-*"))
	for _, want := range []string{
		"RECORDER_GATEWAY_ID=gw1", "RECORDER_DEVICE_INDEX=cam1",
		"RECORDER_CHANNELS=1=rtsp://127.0.0.1:8554/Streaming/Channels/101,2=rtsp://127.0.0.1:8554/Streaming/Channels/201",
		"RECORDER_RTSP_USER=admin", "RECORDER_RTSP_PASSWORD_PARAM=/mediagw/gateways/gw1/Password",
		"RECORDER_SEGMENT_LENGTH=30s", "RECORDER_BUCKET=b", "RECORDER_KEY_PREFIX=recordings",
		"RECORDER_SPOOL_DIR=" + root, "HTTP_ADDR=127.0.0.1:0", "SHUTDOWN_GRACE=1s",
		"MEDIAGW_LAUNCH_TOKEN=tok-cam1", "LOGIN_BUDGET_TABLE=lb-table",
	} {
		if !strings.Contains(env, want+"\n") {
			t.Errorf("env lacks %s:\n%s", want, env)
		}
	}
	if strings.Contains(env, "MEDIAGW_TEST_UNRELATED") || strings.Contains(env, password) {
		t.Errorf("env carries more than it should:\n%s", env)
	}
	pid, ok := l.Pid(task.ID)
	if !ok {
		t.Fatal("no pid")
	}
	if pgid, _ := syscall.Getpgid(pid); pgid != pid {
		t.Errorf("task not in its own process group: pgid %d, pid %d", pgid, pid)
	}
	if list, _ := l.List(ctx); len(list) != 1 || list[0].ID != task.ID {
		t.Errorf("list %+v", list)
	}

	if err := l.Stop(ctx, task.ID, "device offline"); err != nil {
		t.Fatal(err)
	}
	d := rep.next(t, 10*time.Second)
	if d.TaskArn != task.ID || d.LastStatus != "STOPPED" || d.StopCode != app.StopCodeUserInitiated ||
		d.StoppedReason != "device offline" || d.ExitCode("recorder") != 0 || d.Group != "recorder:cam1" || d.StartedBy != app.StartedBy {
		t.Errorf("state change %+v", d)
	}
	if list, _ := l.List(ctx); len(list) != 0 {
		t.Errorf("stopped task still listed: %+v", list)
	}
	if err := l.Stop(ctx, task.ID, "again"); err != nil {
		t.Errorf("stopping an ended task: %v", err)
	}
}

func TestPackedTaskRecordsEveryDevice(t *testing.T) {
	l, rep, root := newLauncher(t, 5*time.Second)
	ctx := context.Background()
	s := spec("cam1")
	s.Packed = []app.PackedDevice{{Device: "cam2", Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://127.0.0.1:8554/Streaming/Channels/301"}}}}
	task, err := l.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	env := waitFile(t, filepath.Join(root, "gw1", "cam1", "env-*"))
	want := "RECORDER_CHANNELS=1=rtsp://127.0.0.1:8554/Streaming/Channels/101,2=rtsp://127.0.0.1:8554/Streaming/Channels/201," +
		"cam2/1=rtsp://127.0.0.1:8554/Streaming/Channels/301\n"
	if !strings.Contains(env, want) {
		t.Errorf("env lacks %s:\n%s", want, env)
	}
	list, err := l.List(ctx)
	if err != nil || len(list) != 1 || list[0].ID != task.ID || !slices.Equal(list[0].Packed, []string{"cam2"}) {
		t.Errorf("list %+v, %v", list, err)
	}
	// Its end names every device it carried, in the container override's
	// RECORDER_CHANNELS as ECS reports a Fargate task's (the group names only cam1).
	if err := l.Stop(ctx, task.ID, "test"); err != nil {
		t.Fatal(err)
	}
	d := rep.next(t, 10*time.Second)
	if d.Overrides == nil || len(d.Overrides.ContainerOverrides) != 1 || d.Overrides.ContainerOverrides[0].Name != "recorder" {
		t.Fatalf("state change overrides %+v", d.Overrides)
	}
	var chs string
	for _, kv := range d.Overrides.ContainerOverrides[0].Environment {
		if kv.Name == app.EnvChannels {
			chs = kv.Value
		}
		if strings.Contains(kv.Name, "SECRET") || strings.HasPrefix(kv.Name, "AWS_") {
			t.Errorf("override carries %s", kv.Name)
		}
	}
	if got := app.ParsePackedDevices(chs); !slices.Equal(got, []string{"cam2"}) {
		t.Errorf("override RECORDER_CHANNELS %q names packed devices %v, want [cam2]", chs, got)
	}
}

func TestKilledTaskIsReportedAsExitedAndItsGroupCleared(t *testing.T) {
	l, rep, root := newLauncher(t, 5*time.Second)
	task, err := l.Start(context.Background(), spec("grandchild1"))
	if err != nil {
		t.Fatal(err)
	}
	gpid, err := strconv.Atoi(waitFile(t, filepath.Join(root, "gw1", "grandchild1", "grandchild.pid")))
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := l.Pid(task.ID)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	d := rep.next(t, 10*time.Second)
	if d.StopCode != app.StopCodeExited || d.ExitCode("recorder") != 137 {
		t.Errorf("state change %+v (exit %d)", d, d.ExitCode("recorder"))
	}
	testkit.Eventually(t, 5*time.Second, 20*time.Millisecond, fmt.Sprintf("the task's child %d ended with it", gpid), func() bool { return gone(gpid) })
}

func TestTaskIgnoringSIGTERMIsKilledAfterTheStopTimeout(t *testing.T) {
	l, rep, root := newLauncher(t, 300*time.Millisecond)
	task, err := l.Start(context.Background(), spec("ignoreterm1"))
	if err != nil {
		t.Fatal(err)
	}
	// The stand-in writes its environment once it ignores SIGTERM.
	waitFile(t, filepath.Join(root, "gw1", "ignoreterm1", "env-*"))
	if err := l.Stop(context.Background(), task.ID, "device deleted"); err != nil {
		t.Fatal(err)
	}
	d := rep.next(t, 10*time.Second)
	if d.ExitCode("") != 137 || d.StopCode != app.StopCodeUserInitiated {
		t.Errorf("state change %+v", d)
	}
}

func TestCrashingTaskIsReported(t *testing.T) {
	l, rep, _ := newLauncher(t, time.Second)
	task, err := l.Start(context.Background(), spec("crash1"))
	if err != nil {
		t.Fatal(err)
	}
	d := rep.next(t, 10*time.Second)
	if d.TaskArn != task.ID || d.ExitCode("recorder") != 3 || d.StopCode != app.StopCodeExited {
		t.Errorf("state change %+v", d)
	}
}

func TestCloseStopsEveryTaskAndRefusesNewOnes(t *testing.T) {
	l, rep, _ := newLauncher(t, time.Second)
	for _, dev := range []string{"a1", "a2", "a3"} {
		if _, err := l.Start(context.Background(), spec(dev)); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		// Close waited for the reports: they are there (the bound only fails the test).
		if d := rep.next(t, 10*time.Second); d.StopCode != app.StopCodeUserInitiated {
			t.Errorf("state change %+v", d)
		}
	}
	if _, err := l.Start(context.Background(), spec("a4")); err == nil {
		t.Error("started a task after Close")
	}
}

func TestStartRefusesABadSpec(t *testing.T) {
	l, _, _ := newLauncher(t, time.Second)
	for name, s := range map[string]app.Spec{
		"credentials in URL": {Device: "d", Gateway: "g", Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://admin:" + password + "@h/x"}}},
		"no channels":        {Device: "d", Gateway: "g"},
		"device with slash":  {Device: "../d", Gateway: "g", Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://h/x"}}},
	} {
		_, err := l.Start(context.Background(), s)
		if err == nil {
			t.Errorf("%s: started", name)
			continue
		}
		if strings.Contains(err.Error(), password) {
			t.Errorf("%s: error repeats the password: %v", name, err)
		}
	}
	if list, _ := l.List(context.Background()); len(list) != 0 {
		t.Errorf("tasks started: %+v", list)
	}
}
