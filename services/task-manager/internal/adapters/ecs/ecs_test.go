package ecs

import (
	"context"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"mediagw/deploy/provision"
	"mediagw/pkg/topology"
	"mediagw/services/task-manager/internal/adapters/ecs/ecstest"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	"mediagw/testsupport/awstest"
)

func TestMain(m *testing.M) { os.Exit(awstest.Main(m)) }

// newLauncher provisions the recorder's cluster and task definition under a
// unique prefix and aims a launcher at the emulator's default VPC.
func newLauncher(t *testing.T) (*Launcher, *ecs.Client, provision.Resources) {
	t.Helper()
	cfg := awstest.Config(t)
	ctx := context.Background()
	res, err := provision.Apply(ctx, cfg, topology.Default(), provision.Options{Prefix: awstest.Name("tmecs") + "-", Only: []string{"ecs"}})
	if err != nil {
		t.Fatal(err)
	}
	subnet, sg := ecstest.Network(t, cfg)
	client := ecs.NewFromConfig(cfg)
	l, err := New(client, Config{
		Cluster: res.Cluster, TaskDefinition: ecstest.TaskDefinition(t, cfg, res), Container: topology.Default().ECS.RecorderContainer,
		Subnets: []string{subnet}, SecurityGroups: []string{sg},
		Recorder: app.Recorder{RTSPUser: "admin", PasswordParameter: "/mediagw/gateways/{gateway}/Password",
			SegmentLength: 30 * time.Second, Bucket: "mediagw-recordings", KeyPrefix: "recordings", StopTimeout: 25 * time.Second,
			LoginBudgetTable: "mediagw-login-budget"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return l, client, res
}

func spec(device string) app.Spec {
	return app.Spec{Device: device, Gateway: "gw-local", Token: "tok-" + device, Channels: []domain.Channel{
		{Number: 1, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/101"},
		{Number: 3, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/301"},
	}}
}

func describe(t *testing.T, c *ecs.Client, cluster, arn string) ecstypes.Task {
	t.Helper()
	out, err := c.DescribeTasks(context.Background(), &ecs.DescribeTasksInput{Cluster: aws.String(cluster), Tasks: []string{arn}, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags}})
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("describe %s: %v (%d tasks)", arn, err, len(out.Tasks))
	}
	return out.Tasks[0]
}

func TestRunTaskCarriesSettingsButNoSecret(t *testing.T) {
	t.Parallel()
	l, client, res := newLauncher(t)
	ctx := context.Background()
	task, err := l.Start(ctx, spec("cam1"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(task.ID, ":task/") || task.Device != "cam1" || task.Token != "tok-cam1" || !slices.Equal(task.Channels, []int32{1, 3}) {
		t.Errorf("task %+v", task)
	}
	got := describe(t, client, res.Cluster, task.ID)
	if got.LaunchType != ecstypes.LaunchTypeFargate || aws.ToString(got.StartedBy) != "mediagw-task-manager" || aws.ToString(got.Group) != "recorder:cam1" {
		t.Errorf("launch type %s, startedBy %q, group %q", got.LaunchType, aws.ToString(got.StartedBy), aws.ToString(got.Group))
	}
	tags := map[string]string{}
	for _, tag := range got.Tags {
		tags[aws.ToString(tag.Key)] = aws.ToString(tag.Value)
	}
	if tags[TagDevice] != "cam1" || tags[TagGateway] != "gw-local" || tags[TagToken] != "tok-cam1" {
		t.Errorf("tags %v", tags)
	}
	if got.Overrides == nil || len(got.Overrides.ContainerOverrides) != 1 {
		t.Fatalf("overrides %+v", got.Overrides)
	}
	co := got.Overrides.ContainerOverrides[0]
	if aws.ToString(co.Name) != "recorder" {
		t.Errorf("override for container %q", aws.ToString(co.Name))
	}
	env := map[string]string{}
	for _, kv := range co.Environment {
		env[aws.ToString(kv.Name)] = aws.ToString(kv.Value)
	}
	want := map[string]string{
		"RECORDER_GATEWAY_ID": "gw-local", "RECORDER_DEVICE_INDEX": "cam1",
		"RECORDER_CHANNELS":            "1=rtsp://10.0.0.5:554/Streaming/Channels/101,3=rtsp://10.0.0.5:554/Streaming/Channels/301",
		"RECORDER_RTSP_USER":           "admin",
		"RECORDER_RTSP_PASSWORD_PARAM": "/mediagw/gateways/gw-local/Password",
		"RECORDER_SEGMENT_LENGTH":      "30s", "RECORDER_BUCKET": "mediagw-recordings", "RECORDER_KEY_PREFIX": "recordings",
		"SHUTDOWN_GRACE": "25s", "MEDIAGW_LAUNCH_TOKEN": "tok-cam1",
		"LOGIN_BUDGET_TABLE": "mediagw-login-budget",
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("override %s = %q, want %q", k, env[k], v)
		}
	}
	// No secret in any override: not the gateway password (the emulator's
	// parameter value), and no credentials in a URL.
	var secrets []string
	for _, p := range topology.Default().Parameters {
		if p.Type == "SecureString" {
			secrets = append(secrets, p.LocalValue)
		}
	}
	for k, v := range env {
		for _, s := range secrets {
			if strings.Contains(v, s) {
				t.Errorf("override %s carries a secret", k)
			}
		}
		if strings.Contains(v, "@") || strings.Contains(strings.ToUpper(k), "PASSWORD") && !strings.HasSuffix(k, "_PARAM") {
			t.Errorf("override %s = %q looks like a credential", k, v)
		}
	}
	if len(env) != len(want) {
		t.Errorf("overrides carry unexpected settings: %v", env)
	}
}

func TestListAndStop(t *testing.T) {
	t.Parallel()
	l, client, res := newLauncher(t)
	ctx := context.Background()
	a, err := l.Start(ctx, spec("cam-a"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := l.Start(ctx, spec("cam-b"))
	if err != nil {
		t.Fatal(err)
	}
	// A task of the recorder family started by hand, without our tags.
	hand := l.RunTaskInput(spec("x"))
	hand.Tags, hand.Group, hand.StartedBy, hand.ClientToken, hand.Overrides = nil, nil, nil, nil, nil
	out, err := client.RunTask(ctx, hand)
	if err != nil || len(out.Tasks) != 1 {
		t.Fatalf("hand-started task: %v", err)
	}
	handARN := aws.ToString(out.Tasks[0].TaskArn)

	list, err := l.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byID := map[string]domain.ObservedTask{}
	for _, o := range list {
		byID[o.ID] = o
	}
	if len(list) != 3 {
		t.Errorf("listed %d tasks, want 3: %+v", len(list), list)
	}
	if o := byID[a.ID]; o.Device != "cam-a" || o.Token != "tok-cam-a" || !slices.Equal(o.Channels, []int32{1, 3}) {
		t.Errorf("listed %+v", o)
	}
	if o, ok := byID[handARN]; !ok || o.Device != "" || o.Token != "" {
		t.Errorf("hand-started task listed as %+v (present %v)", o, ok)
	}

	if err := l.Stop(ctx, a.ID, "device offline"); err != nil {
		t.Fatal(err)
	}
	if got := describe(t, client, res.Cluster, a.ID); aws.ToString(got.StoppedReason) != "device offline" || aws.ToString(got.DesiredStatus) != "STOPPED" {
		t.Errorf("stopped task: reason %q, desired %q", aws.ToString(got.StoppedReason), aws.ToString(got.DesiredStatus))
	}
	list, err = l.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, o := range list {
		ids = append(ids, o.ID)
	}
	if slices.Contains(ids, a.ID) || !slices.Contains(ids, b.ID) {
		t.Errorf("after stopping %s: %v", a.ID, ids)
	}
}

func TestNewRefusesAnIncompleteConfig(t *testing.T) {
	_, err := New(nil, Config{Cluster: "c"})
	if err == nil || !strings.Contains(err.Error(), "subnets") || !strings.Contains(err.Error(), "task definition") {
		t.Errorf("err %v", err)
	}
}

func TestSpotCapacityReplacesTheLaunchType(t *testing.T) {
	for provider, want := range map[string]string{"": "FARGATE", CapacityFargate: "FARGATE", CapacitySpot: ""} {
		l, err := New(nil, Config{Cluster: "c", TaskDefinition: "mediagw-recorder", Container: "recorder", Subnets: []string{"s"}, CapacityProvider: provider})
		if err != nil {
			t.Fatal(err)
		}
		in := l.RunTaskInput(spec("cam"))
		if string(in.LaunchType) != want {
			t.Errorf("%q: launch type %q, want %q", provider, in.LaunchType, want)
		}
		if spot := provider == CapacitySpot; spot != (len(in.CapacityProviderStrategy) == 1 && aws.ToString(in.CapacityProviderStrategy[0].CapacityProvider) == CapacitySpot) {
			t.Errorf("%q: capacity provider strategy %+v", provider, in.CapacityProviderStrategy)
		}
	}
	if _, err := New(nil, Config{Cluster: "c", TaskDefinition: "t", Container: "r", Subnets: []string{"s"}, CapacityProvider: "EC2"}); err == nil || !strings.Contains(err.Error(), `"EC2"`) {
		t.Errorf("capacity provider EC2 accepted: %v", err)
	}
}

func TestFamily(t *testing.T) {
	for td, want := range map[string]string{
		"arn:aws:ecs:us-east-1:123:task-definition/mediagw-recorder:7": "mediagw-recorder",
		"mediagw-recorder:3": "mediagw-recorder",
		"mediagw-recorder":   "mediagw-recorder",
	} {
		if got := (&Launcher{cfg: Config{TaskDefinition: td}}).Family(); got != want {
			t.Errorf("Family(%q) = %q", td, got)
		}
	}
}

func TestTaskSizeFollowsTheChannelsCarried(t *testing.T) {
	t.Parallel()
	l, client, res := newLauncher(t)
	l.cfg.ChannelsPerVCPU = 100
	ctx := context.Background()
	big := spec("cam-big")
	big.Channels = nil
	for n := int32(1); n <= 30; n++ {
		big.Channels = append(big.Channels, domain.Channel{Number: n, MediaURL: fmt.Sprintf("rtsp://10.0.0.5:554/Streaming/Channels/%d01", n)})
	}
	for _, c := range []struct {
		spec     app.Spec
		cpu, mem string
	}{{spec("cam-small"), "256", "512"}, {big, "512", "1024"}} {
		task, err := l.Start(ctx, c.spec)
		if err != nil {
			t.Fatal(err)
		}
		got := describe(t, client, res.Cluster, task.ID)
		if got.Overrides == nil || aws.ToString(got.Overrides.Cpu) != c.cpu || aws.ToString(got.Overrides.Memory) != c.mem {
			t.Errorf("%s (%d channels): overrides %+v, want cpu %s memory %s", c.spec.Device, len(c.spec.Channels), got.Overrides, c.cpu, c.mem)
		}
	}
	// Without ChannelsPerVCPU the task definition's size stays.
	l.cfg.ChannelsPerVCPU = 0
	if in := l.RunTaskInput(big); in.Overrides.Cpu != nil || in.Overrides.Memory != nil {
		t.Errorf("size overridden without ChannelsPerVCPU: %v/%v", aws.ToString(in.Overrides.Cpu), aws.ToString(in.Overrides.Memory))
	}
}

func TestPackedTaskCarriesEveryDevicesChannels(t *testing.T) {
	t.Parallel()
	l, client, res := newLauncher(t)
	l.cfg.ChannelsPerVCPU = 100
	ctx := context.Background()
	s := spec("cam-p1")
	for i := range 30 {
		dev := fmt.Sprintf("cam-p%d", i+2)
		s.Packed = append(s.Packed, app.PackedDevice{Device: dev, Channels: []domain.Channel{{Number: 1, MediaURL: "rtsp://10.0.0.5:554/Streaming/Channels/" + dev}}})
	}
	task, err := l.Start(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if len(task.Packed) != 30 || task.Packed[0] != "cam-p2" || !slices.Equal(task.Channels, []int32{1, 3}) {
		t.Errorf("started %+v", task)
	}
	got := describe(t, client, res.Cluster, task.ID)
	// 32 channels: more than a quarter vCPU carries.
	if aws.ToString(got.Overrides.Cpu) != "512" || aws.ToString(got.Overrides.Memory) != "1024" {
		t.Errorf("size %s/%s, want 512/1024", aws.ToString(got.Overrides.Cpu), aws.ToString(got.Overrides.Memory))
	}
	list, err := l.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(list, func(o domain.ObservedTask) bool { return o.ID == task.ID })
	if i < 0 || list[i].Device != "cam-p1" || !slices.Equal(list[i].Packed, task.Packed) || !slices.Equal(list[i].Channels, []int32{1, 3}) {
		t.Errorf("listed %+v, want the devices it was started with", list)
	}
}
