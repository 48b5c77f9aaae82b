// Package wiring wires the task-manager: its settings (Declare), and
// Build, which makes the adapters (DynamoDB, the ECS or local launcher,
// EventBridge, Prometheus, the event publisher), the use cases of
// internal/app over them, and the ports: the consumers of its two queues
// (internal/ports/sqs) and the reconciliation loop, registered on the
// runtime. mediagw-ctl is wired apart, in wiring/ctl.
package wiring

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	ddbadapter "mediagw/services/task-manager/internal/adapters/dynamodb"
	ecsadapter "mediagw/services/task-manager/internal/adapters/ecs"
	ebadapter "mediagw/services/task-manager/internal/adapters/eventbridge"
	"mediagw/services/task-manager/internal/adapters/local"
	promadapter "mediagw/services/task-manager/internal/adapters/prometheus"
	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
	sqsport "mediagw/services/task-manager/internal/ports/sqs"
)

// Resources of topology.json.
const (
	DeviceEventsQueue = "mediagw-task-manager-device-events"
	TaskStateQueue    = "mediagw-task-manager-task-state"
	TaskEventsTopic   = "mediagw-task-events"
	AlertsTopic       = "mediagw-alerts"
)

// Launchers.
const (
	LauncherECS   = "ecs"
	LauncherLocal = "local"
)

// DefaultTaskCapacity packs up to 100 channels of a gateway into one
// recording task: what the recorder's benchmark records on one vCPU
// (DefaultChannelsPerVCPU), so that a full task is 1 vCPU / 2 GB on Fargate.
const DefaultTaskCapacity = 100

// DefaultChannelsPerVCPU is what the recorder's benchmark measured: 100
// streams recorded in process on one core (services/recorder, make bench).
const DefaultChannelsPerVCPU = 100

// Settings is the task-manager's whole configuration.
type Settings struct {
	DeviceEvents, TaskState *service.Queue
	// QueueWaitTime is the SQS long-poll wait.
	QueueWaitTime time.Duration

	TaskEvents, Alerts                 *service.Topic
	DeviceMediaURLTable, IPCameraTable string
	RecordingsBucket                   string
	KeyPrefix                          string
	ParameterRoot                      string
	// LoginBudgetTable is passed to every recorder (LOGIN_BUDGET_TABLE).
	LoginBudgetTable string

	Launcher string
	// TaskCapacity is how many channels one recording task carries; ≤ 1:
	// one task per device.
	TaskCapacity int
	// PackWindow: how long a device that came online waits for others of
	// its gateway to share its task (packing only).
	PackWindow        time.Duration
	Policy            domain.Policy
	ReconcileInterval time.Duration
	AbsentGrace       time.Duration

	// Recorder settings every task gets.
	RTSPUser          string
	PasswordParameter string // may hold {root} and {gateway}
	SegmentLength     time.Duration
	StopTimeout       time.Duration
	RecorderHTTPAddr  string

	// ECS launcher.
	Cluster           string
	TaskDefinition    string
	Container         string
	Subnets           []string
	SecurityGroups    []string
	AssignPublicIP    bool
	PlatformVersion   string
	CapacityProvider  string
	ContainerSpoolDir string
	// ChannelsPerVCPU sizes each task by its channels (0: the task
	// definition's size).
	ChannelsPerVCPU int

	// Local launcher.
	RecorderBinary string
	RecorderArgs   []string
	LocalSpoolDir  string
	LocalLogDir    string
	LocalPassEnv   []string
}

// passwordParameter is the SSM parameter name template with the root filled in.
func (s Settings) passwordParameter() string {
	return strings.ReplaceAll(s.PasswordParameter, "{root}", strings.TrimRight(s.ParameterRoot, "/"))
}

// Declare registers every setting with c and returns a function that gives
// the parsed Settings (call it after c is parsed, i.e. inside service.Main).
func Declare(c *service.Config) func() Settings {
	devices := c.Queue(DeviceEventsQueue)
	states := c.Queue(TaskStateQueue)
	wait := c.Duration("QUEUE_WAIT_TIME", 20*time.Second, "SQS long-poll wait")
	taskTopic := c.Topic(TaskEventsTopic)
	alertTopic := c.Topic(AlertsTopic)
	dmTable := c.Table("deviceMediaURL")
	ipTable := c.Table("ip-camera")
	budgetTable := c.Table("mediagw-login-budget")
	bucket := c.Bucket("mediagw-recordings")
	prefix := c.String("RECORDINGS_KEY_PREFIX", "recordings", "S3 key prefix of the segments")
	root := c.String("PARAMETER_ROOT", "/mediagw", "root of the SSM parameters")

	var launcherName *string
	launcherName = c.String("LAUNCHER", LauncherLocal, "where recording tasks run: ecs (Fargate) or local (child processes)",
		service.Check(func() error {
			if *launcherName != LauncherECS && *launcherName != LauncherLocal {
				return fmt.Errorf("%q is neither ecs nor local", *launcherName)
			}
			return nil
		}))
	positive := func(d **time.Duration) service.Option {
		return service.Check(func() error {
			if **d <= 0 {
				return errors.New("must be positive")
			}
			return nil
		})
	}
	ecsNeeds := func(what string, empty func() bool) service.Option {
		return service.Check(func() error {
			if *launcherName == LauncherECS && empty() {
				return fmt.Errorf("required with LAUNCHER=ecs (%s)", what)
			}
			return nil
		})
	}
	var interval, rInit, rMax, window, grace, segLen, stopTimeout *time.Duration
	interval = c.Duration("RECONCILE_INTERVAL", time.Minute, "how often desired and actual tasks are compared", positive(&interval))
	absent := c.Duration("ABSENT_GRACE", 5*time.Minute, "a device gone from deviceMediaURL this long has its task stopped and row removed")
	p := domain.DefaultPolicy()
	rInit = c.Duration("RESTART_INITIAL", p.RestartInitial, "wait before restarting a task that died; doubles per failure", positive(&rInit))
	rMax = c.Duration("RESTART_MAX", p.RestartMax, "longest wait before a restart", positive(&rMax))
	var maxFail *int
	maxFail = c.Int("MAX_FAILURES", p.MaxFailures, "failures within FAILURE_WINDOW after which the manager alerts and pauses",
		service.Check(func() error {
			if *maxFail < 1 {
				return errors.New("must be at least 1")
			}
			return nil
		}))
	window = c.Duration("FAILURE_WINDOW", p.FailureWindow, "window in which failures count", positive(&window))
	cooldown := c.Duration("GIVE_UP_COOLDOWN", p.GiveUpCooldown, "pause after giving up before the next try")
	grace = c.Duration("LAUNCH_GRACE", p.LaunchGrace, "how long a launch may stay unconfirmed or a new task unlisted", positive(&grace))

	user := c.String("RECORDER_RTSP_USER", "admin", "RTSP user of the gateways (not secret)")
	pass := c.String("RECORDER_PASSWORD_PARAMETER", "{root}/gateways/{gateway}/Password", "SSM SecureString parameter NAME holding the RTSP password; {root} is PARAMETER_ROOT, {gateway} the gateway id")
	segLen = c.Duration("SEGMENT_LENGTH", 30*time.Second, "recorders' segment length", positive(&segLen))
	stopTimeout = c.Duration("RECORDER_STOP_TIMEOUT", 30*time.Second, "time a recorder has after SIGTERM (local: then SIGKILL; ECS: keep it at the container's stopTimeout)", positive(&stopTimeout))
	recHTTP := c.String("RECORDER_HTTP_ADDR", "", "recorders' /metrics listener (default: 127.0.0.1:0 for local tasks, the recorder's own for ECS)")

	cluster := c.String("ECS_CLUSTER", "mediagw", "ECS cluster of the recording tasks (also names local tasks' cluster)")
	var taskDef *string
	taskDef = c.String("RECORDER_TASK_DEFINITION", "", "recorder task definition (ecs)", ecsNeeds("the recorder's task definition", func() bool { return *taskDef == "" }))
	container := c.String("RECORDER_CONTAINER", topology.Default().ECS.RecorderContainer, "recorder container name in the task definition")
	var subnets *[]string
	subnets = c.List("SUBNETS", "", "subnets of the recording tasks (ecs)", ecsNeeds("Fargate tasks use awsvpc networking", func() bool { return len(*subnets) == 0 }))
	sgs := c.List("SECURITY_GROUPS", "", "security groups of the recording tasks (ecs)")
	public := c.Bool("ASSIGN_PUBLIC_IP", false, "give recording tasks a public IP (ecs; needed without a NAT gateway)")
	platform := c.String("ECS_PLATFORM_VERSION", "", "Fargate platform version (ecs; default LATEST)")
	var capacity *string
	capacity = c.String("RECORDER_CAPACITY", ecsadapter.CapacityFargate, "capacity provider of the recording tasks (ecs): FARGATE or FARGATE_SPOT (the cluster must have it)",
		service.Check(func() error {
			if *capacity != ecsadapter.CapacityFargate && *capacity != ecsadapter.CapacitySpot {
				return errors.New("neither FARGATE nor FARGATE_SPOT")
			}
			return nil
		}))
	var taskCap *int
	taskCap = c.Int("TASK_CAPACITY", DefaultTaskCapacity, "channels one recording task carries: devices of a gateway due to start together share a task up to this many channels (a device is never split); 1: one task per device; 100: what one vCPU records",
		service.Check(func() error {
			if *taskCap < 1 {
				return errors.New("must be at least 1")
			}
			return nil
		}))
	packWindow := c.Duration("PACK_WINDOW", 5*time.Second, "with TASK_CAPACITY above 1: how long after coming online a device waits for others of its gateway to share its task (restarts do not wait)")
	var perVCPU *int
	perVCPU = c.Int("RECORDER_CHANNELS_PER_VCPU", DefaultChannelsPerVCPU, "channels one vCPU records (ecs): each task gets the smallest Fargate size for its channels; 0 keeps the task definition's size",
		service.Check(func() error {
			if *perVCPU < 0 {
				return errors.New("negative")
			}
			return nil
		}))
	cSpool := c.String("RECORDER_SPOOL_DIR", "", "spool directory inside the container (ecs; default the recorder's)")

	var bin *string
	bin = c.String("RECORDER_BINARY", "", "recorder executable (local; default: 'recorder' beside this binary, else on PATH)",
		service.Check(func() error {
			if *launcherName == LauncherLocal && *bin == "" {
				// Not found is no start-up failure: the manager stays up, says
				// so, and reports every launch that fails (see Build).
				if *bin = findRecorder(); *bin == "" {
					*bin = "recorder"
				}
			}
			return nil
		}))
	args := c.List("RECORDER_ARGS", "", "arguments for the recorder executable (local)")
	spool := c.String("LOCAL_SPOOL_DIR", filepath.Join(os.TempDir(), "mediagw-spool"), "root of the local tasks' spool directories (local)")
	logDir := c.String("LOCAL_LOG_DIR", "", "directory of one log file per local task (local; default: this process's stderr)")
	passEnv := c.List("LOCAL_PASS_ENV", "PATH,HOME,TMPDIR,TZ,LANG,AWS_*", "variables local tasks inherit; a trailing * matches a prefix (local)")

	return func() Settings {
		return Settings{
			DeviceEvents: devices, TaskState: states,
			QueueWaitTime: *wait, TaskEvents: taskTopic, Alerts: alertTopic,
			DeviceMediaURLTable: *dmTable, IPCameraTable: *ipTable, RecordingsBucket: *bucket, KeyPrefix: *prefix,
			ParameterRoot: *root, LoginBudgetTable: *budgetTable, Launcher: *launcherName, TaskCapacity: *taskCap, PackWindow: *packWindow,
			Policy: domain.Policy{RestartInitial: *rInit, RestartMax: *rMax, MaxFailures: *maxFail,
				FailureWindow: *window, GiveUpCooldown: *cooldown, LaunchGrace: *grace},
			ReconcileInterval: *interval, AbsentGrace: *absent,
			RTSPUser: *user, PasswordParameter: *pass, SegmentLength: *segLen, StopTimeout: *stopTimeout, RecorderHTTPAddr: *recHTTP,
			Cluster: *cluster, TaskDefinition: *taskDef, Container: *container, Subnets: *subnets, SecurityGroups: *sgs,
			AssignPublicIP: *public, PlatformVersion: *platform, CapacityProvider: *capacity, ContainerSpoolDir: *cSpool, ChannelsPerVCPU: *perVCPU,
			RecorderBinary: *bin, RecorderArgs: *args, LocalSpoolDir: *spool, LocalLogDir: *logDir, LocalPassEnv: *passEnv,
		}
	}
}

// Validate checks the settings that depend on each other (Declare's checks
// do the same for settings from the environment).
func (s Settings) Validate() error {
	var errs []error
	bad := func(v, msg string) { errs = append(errs, &service.ConfigError{Var: v, Err: errors.New(msg)}) }
	for i, q := range []*service.Queue{s.DeviceEvents, s.TaskState} {
		if q == nil || q.URL == "" {
			bad(topology.EnvName([]string{DeviceEventsQueue, TaskStateQueue}[i], "QUEUE_URL"), "required")
		}
	}
	for i, t := range []*service.Topic{s.TaskEvents, s.Alerts} {
		if t == nil || t.ARN == "" {
			bad(topology.EnvName([]string{TaskEventsTopic, AlertsTopic}[i], "TOPIC_ARN"), "required")
		}
	}
	if s.LoginBudgetTable == "" {
		bad("LOGIN_BUDGET_TABLE", "required: every recorder logs in to its gateway through the login budget")
	}
	switch s.Launcher {
	case LauncherECS:
		if s.TaskDefinition == "" {
			bad("RECORDER_TASK_DEFINITION", "required with LAUNCHER=ecs")
		}
		if len(s.Subnets) == 0 {
			bad("SUBNETS", "required with LAUNCHER=ecs")
		}
		if c := s.CapacityProvider; c != "" && c != ecsadapter.CapacityFargate && c != ecsadapter.CapacitySpot {
			bad("RECORDER_CAPACITY", "neither FARGATE nor FARGATE_SPOT")
		}
		if s.ChannelsPerVCPU < 0 {
			bad("RECORDER_CHANNELS_PER_VCPU", "negative")
		}
	case LauncherLocal:
		if s.RecorderBinary == "" {
			bad("RECORDER_BINARY", "required with LAUNCHER=local")
		}
	default:
		bad("LAUNCHER", "neither ecs nor local")
	}
	if s.ReconcileInterval <= 0 || s.Policy.RestartInitial <= 0 || s.Policy.RestartMax <= 0 || s.Policy.FailureWindow <= 0 ||
		s.Policy.LaunchGrace <= 0 || s.Policy.MaxFailures < 1 || s.SegmentLength <= 0 || s.StopTimeout <= 0 {
		bad("RECONCILE_INTERVAL, RESTART_*, FAILURE_WINDOW, LAUNCH_GRACE, MAX_FAILURES, SEGMENT_LENGTH, RECORDER_STOP_TIMEOUT", "must be positive")
	}
	return errors.Join(errs...)
}

// findRecorder looks for the recorder beside this executable (make run
// builds every binary into bin/), then on PATH.
func findRecorder() string {
	if exe, err := os.Executable(); err == nil {
		p := filepath.Join(filepath.Dir(exe), "recorder")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p
		}
	}
	if p, err := exec.LookPath("recorder"); err == nil {
		return p
	}
	return ""
}

// Build wires the task-manager on rt: the launcher, the use cases, the
// consumers of its two queues and the reconciliation every
// RECONCILE_INTERVAL. It reconciles once before it returns, so that the
// service turns ready with its tasks in place (a restarted task-manager
// starts its local tasks again here). On the way out the scheduled
// restarts stop, then the local tasks (the next task-manager starts them
// again).
func Build(ctx context.Context, rt *service.Runtime, s Settings) error {
	_, err := build(ctx, rt, s)
	return err
}

// built is what component tests look into.
type built struct {
	manager *app.Manager
	// local is the local launcher (nil with LAUNCHER=ecs).
	local *local.Launcher
}

func build(ctx context.Context, rt *service.Runtime, s Settings) (*built, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg := rt.AWS
	db := dynamodb.NewFromConfig(cfg)
	rec := app.Recorder{
		RTSPUser: s.RTSPUser, PasswordParameter: s.passwordParameter(), SegmentLength: s.SegmentLength,
		Bucket: s.RecordingsBucket, KeyPrefix: s.KeyPrefix, LoginBudgetTable: s.LoginBudgetTable, HTTPAddr: s.RecorderHTTPAddr,
		// Leave the recorder a moment of the stop timeout for its own exit.
		StopTimeout: max(s.StopTimeout-2*time.Second, time.Second),
	}
	b := &built{}
	var launcher app.Launcher
	switch s.Launcher {
	case LauncherECS:
		el, err := ecsadapter.New(ecs.NewFromConfig(cfg), ecsadapter.Config{
			Cluster: s.Cluster, TaskDefinition: s.TaskDefinition, Container: s.Container,
			Subnets: s.Subnets, SecurityGroups: s.SecurityGroups, AssignPublicIP: s.AssignPublicIP,
			PlatformVersion: s.PlatformVersion, CapacityProvider: s.CapacityProvider, Recorder: rec, SpoolDir: s.ContainerSpoolDir,
			ChannelsPerVCPU: s.ChannelsPerVCPU,
		})
		if err != nil {
			return nil, err
		}
		launcher = el
	case LauncherLocal:
		if _, err := exec.LookPath(s.RecorderBinary); err != nil {
			rt.Logger.Error("RECORDER_BINARY: the recorder cannot be run; every launch fails until it can", "recorder_binary", s.RecorderBinary, "err", err)
		}
		if rec.HTTPAddr == "" {
			rec.HTTPAddr = "127.0.0.1:0" // several recorders on one host
		}
		ll, err := local.New(local.Config{
			Binary: s.RecorderBinary, Args: s.RecorderArgs, Recorder: rec, SpoolRoot: s.LocalSpoolDir,
			LogDir: s.LocalLogDir, StopTimeout: s.StopTimeout, PassEnv: s.LocalPassEnv,
			Container: s.Container, Cluster: s.Cluster, Logger: rt.Logger.With("launcher", "local"),
		}, ebadapter.NewReporter(eventbridge.NewFromConfig(cfg), ""))
		if err != nil {
			return nil, err
		}
		b.local, launcher = ll, ll
	}

	m := app.New(ddbadapter.NewIPCamera(db, s.IPCameraTable), ddbadapter.NewDeviceMedia(db, s.DeviceMediaURLTable), launcher,
		messaging.TopicPublisher(rt, s.TaskEvents, s.Alerts), app.Config{
			Policy: s.Policy, AbsentGrace: s.AbsentGrace, ExactList: b.local != nil, Capacity: s.TaskCapacity, PackWindow: s.PackWindow,
			Cluster: s.Cluster, Container: s.Container, Logger: rt.Logger, Metrics: promadapter.NewMetrics(rt.Metrics),
		})
	b.manager = m
	rt.OnStop(func(context.Context) error { m.Close(); return nil })
	if b.local != nil {
		rt.OnStop(func(ctx context.Context) error {
			// Within SHUTDOWN_GRACE (25 s by default) after the consumers' 10 s.
			cctx, cancel := context.WithTimeout(ctx, 12*time.Second)
			defer cancel()
			if err := b.local.Close(cctx); err != nil {
				rt.Logger.Error("local tasks did not stop in time", "err", err)
			}
			return nil
		})
	}

	consumer := func(c *messaging.ConsumerConfig) { c.WaitTime, c.ShutdownGrace = s.QueueWaitTime, 10*time.Second }
	messaging.Consume(rt, s.DeviceEvents, sqsport.DeviceEvents(m).Handle, consumer)
	messaging.Consume(rt, s.TaskState, sqsport.TaskState(m).Handle, consumer)
	rt.Every("reconcile", s.ReconcileInterval, m.Reconcile)

	if err := m.Reconcile(ctx); err != nil && ctx.Err() == nil {
		rt.Logger.ErrorContext(ctx, "start-up reconciliation incomplete; retried every interval", "err", err)
	}
	rt.Logger.InfoContext(ctx, "task-manager wired", "launcher", s.Launcher, "reconcile_interval", s.ReconcileInterval.String())
	return b, nil
}
