package wiring

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/services/task-manager/internal/adapters/ecs/ecstest"
	"mediagw/testsupport/testkit"
)

// carrying waits until one task other than not carries exactly devices,
// each device's row naming it, and returns its id.
func (e *env) carrying(devices []string, not string, within time.Duration) string {
	e.t.Helper()
	var id string
	testkit.Eventually(e.t, within, 50*time.Millisecond, "one task carrying "+strings.Join(devices, ","), func() bool {
		id = ""
		for _, dev := range devices {
			row, found := e.row(dev)
			if !found || row.Task == nil || row.Task.ID == not || (id != "" && row.Task.ID != id) || !slices.Equal(row.Task.Pack, devices) {
				return false
			}
			id = row.Task.ID
		}
		return true
	})
	return id
}

// With TASK_CAPACITY above one and the local launcher: the devices of a
// gateway online at start-up share one recorder process, which is told
// every device's channels; killed, all its devices come back on one new
// process after the backoff; a device going offline replaces the process
// with one carrying the others.
func TestPackedLocalTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Settings) { s.TaskCapacity = 10 })
	devs := []string{"cam-pa", "cam-pb", "cam-pc"}
	for _, dev := range devs {
		e.putChannel(dev, 1, "online", t0)
	}
	e.start()
	first := e.carrying(devs, "", 15*time.Second)
	all, err := e.svc.local.List(context.Background())
	if err != nil || len(all) != 1 || all[0].ID != first {
		t.Fatalf("local tasks %+v, %v; want the one task %s", all, err, first)
	}
	primary := all[0].Device
	var envFiles []string
	testkit.Eventually(t, 5*time.Second, 50*time.Millisecond, "the stand-in wrote its environment", func() bool {
		envFiles, _ = filepath.Glob(filepath.Join(e.spool, "gw-local", primary, "env-*"))
		return len(envFiles) == 1
	})
	b, err := os.ReadFile(envFiles[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, dev := range devs {
		entry := dev + "/1=rtsp://127.0.0.1:8554/Streaming/Channels/101"
		if dev == primary {
			entry = "RECORDER_CHANNELS=1=rtsp://127.0.0.1:8554/Streaming/Channels/101"
		}
		if !strings.Contains(string(b), entry) {
			t.Errorf("env lacks %s:\n%s", entry, b)
		}
	}

	pid, ok := e.svc.local.Pid(first)
	if !ok {
		t.Fatal("no pid")
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	second := e.carrying(devs, first, 20*time.Second)
	for _, dev := range devs {
		if row, _ := e.row(dev); len(row.Failures) != 1 || row.LastExit != 137 {
			t.Errorf("%s after the kill: %+v", dev, row)
		}
	}

	e.publish(&eventsv1.DeviceOffline{Meta: meta("off-pb", t0.Add(time.Second)), GatewayId: "gw-local", DeviceIndex: "cam-pb"})
	third := e.carrying([]string{"cam-pa", "cam-pc"}, second, 20*time.Second)
	if row, _ := e.row("cam-pb"); row.Task != nil {
		t.Errorf("offline device still has a task: %+v", row)
	}
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "only the new task runs", func() bool {
		all, _ := e.svc.local.List(context.Background())
		return len(all) == 1 && all[0].ID == third
	})
	for _, dev := range []string{"cam-pa", "cam-pc"} {
		if row, _ := e.row(dev); len(row.Failures) != 1 {
			t.Errorf("%s counted the replacement as a failure: %+v", dev, row)
		}
	}
}

// The same on the emulator's ECS: one Fargate task for the gateway's
// devices, sized by all their channels; stopped behind the manager's back
// (no state change), both devices come back on one new task.
func TestPackedECSTasks(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Settings) {
		s.Launcher = LauncherECS
		s.ReconcileInterval, s.Policy.LaunchGrace = time.Second, 500*time.Millisecond
		s.ChannelsPerVCPU, s.TaskCapacity = DefaultChannelsPerVCPU, DefaultTaskCapacity
	})
	subnet, sg := ecstest.Network(t, e.cfg)
	e.s.TaskDefinition, e.s.Subnets, e.s.SecurityGroups = ecstest.TaskDefinition(t, e.cfg, e.res), []string{subnet}, []string{sg}
	devs := []string{"cam-ea", "cam-eb"}
	for _, dev := range devs {
		for ch := 1; ch <= 20; ch++ {
			e.putChannel(dev, ch, "online", t0)
		}
	}
	e.start()
	client := ecs.NewFromConfig(e.cfg)
	ctx := context.Background()
	first := e.carrying(devs, "", 15*time.Second)
	out, err := client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(e.res.Cluster), Tasks: []string{first}})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("describe %s: %v", first, err)
	}
	task := out.Tasks[0]
	// 40 channels: more than a quarter vCPU records.
	if aws.ToString(task.Overrides.Cpu) != "512" || aws.ToString(task.Overrides.Memory) != "1024" {
		t.Errorf("size %s/%s, want 512/1024", aws.ToString(task.Overrides.Cpu), aws.ToString(task.Overrides.Memory))
	}
	var chans string
	for _, kv := range task.Overrides.ContainerOverrides[0].Environment {
		if aws.ToString(kv.Name) == "RECORDER_CHANNELS" {
			chans = aws.ToString(kv.Value)
		}
	}
	if n := strings.Count(chans, "=rtsp://"); n != 40 || strings.Count(chans, "/20=rtsp://") != 1 {
		t.Errorf("RECORDER_CHANNELS carries %d entries, want 40 (one device's prefixed): %s", n, chans)
	}

	if _, err := client.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(e.res.Cluster), Task: aws.String(first), Reason: aws.String("by hand")}); err != nil {
		t.Fatal(err)
	}
	e.carrying(devs, first, 20*time.Second)
	lt, err := client.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(e.res.Cluster), DesiredStatus: ecstypes.DesiredStatusRunning})
	if err != nil || len(lt.TaskArns) != 1 {
		t.Errorf("running tasks %v, %v; want one", lt.TaskArns, err)
	}
}

// Devices whose DeviceOnline events arrive within PACK_WINDOW share one task.
func TestDevicesOnlineTogetherSharePackedTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Settings) { s.TaskCapacity, s.PackWindow = 10, 2*time.Second })
	e.start()
	now := time.Now().UTC()
	devs := []string{"cam-wa", "cam-wb"}
	for _, dev := range devs {
		e.publish(e.online(dev, "on-"+dev, now))
	}
	id := e.carrying(devs, "", 20*time.Second)
	all, err := e.svc.local.List(context.Background())
	if err != nil || len(all) != 1 || all[0].ID != id {
		t.Errorf("local tasks %+v, %v; want only %s", all, err, id)
	}
}
