package wiring

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"google.golang.org/protobuf/proto"

	eventsv1 "mediagw/pkg/gen/mediagw/events/v1"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	ecsadapter "mediagw/services/task-manager/internal/adapters/ecs"
	"mediagw/services/task-manager/internal/adapters/ecs/ecstest"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/testkit"
)

// The wired service with LAUNCHER=ecs against the emulator's ECS: a device
// online in the table gets a Fargate task whose overrides hold no secret;
// a task stopped behind the manager's back (no state change: the emulator
// sends none) is replaced within one interval; a task started by hand is
// stopped; an offline event stops the device's task.
func TestECSLauncherService(t *testing.T) {
	t.Parallel()
	var taskDef string
	e := newEnv(t, func(s *Settings) {
		s.Launcher = LauncherECS
		s.ReconcileInterval, s.Policy.LaunchGrace = time.Second, 500*time.Millisecond
		s.ChannelsPerVCPU = DefaultChannelsPerVCPU
	})
	taskDef = ecstest.TaskDefinition(t, e.cfg, e.res)
	subnet, sg := ecstest.Network(t, e.cfg)
	e.s.TaskDefinition, e.s.Subnets, e.s.SecurityGroups = taskDef, []string{subnet}, []string{sg}
	e.start()
	client := ecs.NewFromConfig(e.cfg)
	ctx := context.Background()
	cluster := e.res.Cluster

	running := func(dev string) []ecstypes.Task {
		t.Helper()
		out, err := client.ListTasks(ctx, &ecs.ListTasksInput{Cluster: aws.String(cluster), DesiredStatus: ecstypes.DesiredStatusRunning})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.TaskArns) == 0 {
			return nil
		}
		d, err := client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: out.TaskArns, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
		if err != nil {
			t.Fatal(err)
		}
		var mine []ecstypes.Task
		for _, task := range d.Tasks {
			if aws.ToString(task.DesiredStatus) != "RUNNING" {
				continue
			}
			for _, tag := range task.Tags {
				if aws.ToString(tag.Key) == ecsadapter.TagDevice && aws.ToString(tag.Value) == dev {
					mine = append(mine, task)
				}
			}
			if dev == "" && len(task.Tags) == 0 {
				mine = append(mine, task)
			}
		}
		return mine
	}
	one := func(dev string) ecstypes.Task {
		t.Helper()
		var task ecstypes.Task
		testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "one ECS task for "+dev+", recorded in its row", func() bool {
			ts := running(dev)
			if len(ts) != 1 {
				return false
			}
			task = ts[0]
			row, found := e.row(dev)
			return found && row.Task != nil && row.Task.ID == aws.ToString(task.TaskArn) && row.Task.Launcher == "ecs"
		})
		return task
	}

	const dev = "cam-ecs"
	e.putChannel(dev, 1, "online", t0)
	first := one(dev)
	if first.LaunchType != ecstypes.LaunchTypeFargate || aws.ToString(first.Group) != "recorder:"+dev {
		t.Errorf("task launch type %s, group %s", first.LaunchType, aws.ToString(first.Group))
	}
	// One channel: the smallest Fargate size (the task is sized by its channels).
	if aws.ToString(first.Overrides.Cpu) != "256" || aws.ToString(first.Overrides.Memory) != "512" {
		t.Errorf("task size %s/%s, want 256/512", aws.ToString(first.Overrides.Cpu), aws.ToString(first.Overrides.Memory))
	}
	secrets := []string{}
	for _, p := range topology.Default().Parameters {
		if p.Type == "SecureString" {
			secrets = append(secrets, p.LocalValue)
		}
	}
	sawParam := false
	for _, co := range first.Overrides.ContainerOverrides {
		for _, kv := range co.Environment {
			v := aws.ToString(kv.Value)
			for _, s := range secrets {
				if strings.Contains(v, s) {
					t.Errorf("override %s carries a secret", aws.ToString(kv.Name))
				}
			}
			if aws.ToString(kv.Name) == "RECORDER_RTSP_PASSWORD_PARAM" && v == e.res.ParameterRoot+"/gateways/gw-local/Password" {
				sawParam = true
			}
		}
	}
	if !sawParam {
		t.Errorf("overrides lack the password parameter name: %+v", first.Overrides)
	}

	// Stopped behind the manager's back, no state change: replaced.
	if _, err := client.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(cluster), Task: first.TaskArn, Reason: aws.String("operator")}); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "a replacement task", func() bool {
		ts := running(dev)
		return len(ts) == 1 && aws.ToString(ts[0].TaskArn) != aws.ToString(first.TaskArn)
	})
	second := one(dev)

	// Started by hand, without tags: stopped.
	out, err := client.RunTask(ctx, &ecs.RunTaskInput{Cluster: aws.String(cluster), TaskDefinition: aws.String(taskDef), LaunchType: ecstypes.LaunchTypeFargate,
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: []string{subnet}, SecurityGroups: []string{sg}}}})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("run task by hand: %v", err)
	}
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "the hand-started task stopped", func() bool { return len(running("")) == 0 })
	if ts := running(dev); len(ts) != 1 || aws.ToString(ts[0].TaskArn) != aws.ToString(second.TaskArn) {
		t.Fatalf("the device's task was touched: %d tasks", len(ts))
	}

	// Offline (newer than the table's last change): StopTask with the reason.
	e.putChannel(dev, 1, "offline", t0.Add(time.Minute))
	e.publish(&eventsv1.DeviceOffline{Meta: meta("off", t0.Add(time.Minute)), GatewayId: "gw-local", DeviceIndex: dev})
	testkit.Eventually(t, 10*time.Second, 50*time.Millisecond, "the task stopped after offline", func() bool { return len(running(dev)) == 0 })
	d, err := client.DescribeTasks(ctx, &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{aws.ToString(second.TaskArn)}})
	if err != nil || len(d.Tasks) != 1 || aws.ToString(d.Tasks[0].StoppedReason) != "device offline" {
		t.Errorf("stopped task: %v %+v", err, d)
	}
}

// Two task-managers (as two ECS service replicas would be) handle the same
// online fact at the same moment, many times over: the conditional writes
// let exactly one task start.
func TestConcurrentManagersStartOneTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Settings) { s.Launcher = LauncherECS })
	e.s.TaskDefinition = ecstest.TaskDefinition(t, e.cfg, e.res)
	subnet, sg := ecstest.Network(t, e.cfg)
	e.s.Subnets, e.s.SecurityGroups = []string{subnet}, []string{sg}
	var managers []*app.Manager
	for range 2 {
		// Built, not run: no consumer and no loop competes with the calls below.
		b, err := build(context.Background(), service.NewRuntime("task-manager", slog.New(slog.DiscardHandler), e.cfg), e.s)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(b.manager.Close)
		managers = append(managers, b.manager)
	}
	const dev = "cam-race"
	in := domain.Desire{Device: dev, Gateway: "gw-local", Want: domain.WantRecord, At: t0,
		Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://127.0.0.1:8554/Streaming/Channels/101"}}}
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for i := range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- managers[i%2].Apply(context.Background(), in)
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	client := ecs.NewFromConfig(e.cfg)
	out, err := client.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(e.res.Cluster), DesiredStatus: ecstypes.DesiredStatusRunning})
	if err != nil {
		t.Fatal(err)
	}
	row, _ := e.row(dev)
	if len(out.TaskArns) != 1 || row.Task == nil || row.Task.ID != out.TaskArns[0] {
		t.Fatalf("%d tasks running %v; row records %+v", len(out.TaskArns), out.TaskArns, row.Task)
	}
	// Not even briefly a second one: none was started and stopped again.
	stopped, err := client.ListTasks(context.Background(), &ecs.ListTasksInput{Cluster: aws.String(e.res.Cluster), DesiredStatus: ecstypes.DesiredStatusStopped})
	if err != nil {
		t.Fatal(err)
	}
	if len(stopped.TaskArns) != 0 {
		t.Errorf("%d extra tasks were started and stopped", len(stopped.TaskArns))
	}
}

// RunTask refused (here: a task definition that does not exist) counts as
// a failure: backoff, failure events, and an alert when it keeps failing.
func TestECSLaunchFailuresBackOffThenAlert(t *testing.T) {
	t.Parallel()
	e := newEnv(t, func(s *Settings) {
		s.Launcher, s.TaskDefinition = LauncherECS, "mediagw-recorder-missing:1"
	})
	subnet, sg := ecstest.Network(t, e.cfg)
	e.s.Subnets, e.s.SecurityGroups = []string{subnet}, []string{sg}
	e.start()
	const dev = "cam-unlaunchable"
	e.publish(e.online(dev, "on", t0))
	got := e.received(e.res.Queues["mediagw-health-sentinel-events"].URL, 30*time.Second, func(got map[string][]proto.Message) bool {
		return len(got["mediagw.events.v1.Alert"]) > 0
	})
	if len(got["mediagw.events.v1.Alert"]) != 1 || len(got["mediagw.events.v1.RecordingTaskFailed"]) != e.s.Policy.MaxFailures {
		t.Fatalf("alerts %d, failures %d", len(got["mediagw.events.v1.Alert"]), len(got["mediagw.events.v1.RecordingTaskFailed"]))
	}
	for _, m := range got["mediagw.events.v1.RecordingTaskFailed"] {
		f := m.(*eventsv1.RecordingTaskFailed)
		if f.GetExitCode() != -1 || !strings.Contains(f.GetReason(), "launch failed") || f.GetTask().GetLauncher() != "ecs" {
			t.Errorf("failure event %v", f)
		}
	}
	row, _ := e.row(dev)
	if row.Status != domain.StatusGaveUp || row.Task != nil {
		t.Errorf("row %+v", row)
	}
	for i := 1; i < len(row.Failures); i++ {
		if gap, want := row.Failures[i].Sub(row.Failures[i-1]), e.s.Policy.Delay(i); gap < want {
			t.Errorf("attempt %d came %s after the previous one, backoff is %s", i+1, gap, want)
		}
	}
}
