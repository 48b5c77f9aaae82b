// Package wiring wires the task-manager: settings, AWS clients, the launcher,
// the manager, the two queue consumers and the reconciliation loop.
package wiring

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	"mediagw/services/task-manager/internal/domain"
)

// Launchers.
const (
	LauncherECS   = "ecs"
	LauncherLocal = "local"
)

// Queue is one queue the task-manager consumes.
type Queue struct {
	URL, DLQURL     string
	MaxReceiveCount int
}

// Settings is the task-manager's whole configuration.
type Settings struct {
	DeviceEvents, TaskState Queue
	// QueueWaitTime is the SQS long-poll wait.
	QueueWaitTime time.Duration

	TaskEventsTopicARN, AlertsTopicARN string
	DeviceMediaURLTable, IPCameraTable string
	RecordingsBucket                   string
	KeyPrefix                          string
	ParameterRoot                      string

	Launcher          string
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
	ContainerSpoolDir string

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
	q := func(name string) (url, dlq *string, mrc *int) {
		url = c.String(topology.EnvName(name, "QUEUE_URL"), "", "queue "+name, service.Required())
		dlq = c.String(topology.EnvName(name, "DLQ_URL"), "", "dead-letter queue of "+name)
		mrc = c.Int(topology.EnvName(name, "MAX_RECEIVE_COUNT"), 5, "deliveries before a failing message of "+name+" is dead-lettered")
		return
	}
	devURL, devDLQ, devMRC := q("mediagw-task-manager-device-events")
	stURL, stDLQ, stMRC := q("mediagw-task-manager-task-state")
	wait := c.Duration("QUEUE_WAIT_TIME", 20*time.Second, "SQS long-poll wait")
	taskTopic := c.String("TASK_EVENTS_TOPIC_ARN", "", "topic of RecordingTaskStarted/Stopped/Failed", service.Required())
	alertTopic := c.String("ALERTS_TOPIC_ARN", "", "topic of Alert", service.Required())
	dmTable := c.String("DEVICE_MEDIA_URL_TABLE", "", "deviceMediaURL table (read only)", service.Required())
	ipTable := c.String("IP_CAMERA_TABLE", "", "ip-camera table (one row per device)", service.Required())
	bucket := c.String("RECORDINGS_BUCKET", "", "S3 bucket recorders write to", service.Required())
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
	cSpool := c.String("RECORDER_SPOOL_DIR", "", "spool directory inside the container (ecs; default the recorder's)")

	var bin *string
	bin = c.String("RECORDER_BINARY", "", "recorder executable (local; default: 'recorder' beside this binary, else on PATH)",
		service.Check(func() error {
			if *launcherName == LauncherLocal && *bin == "" {
				// Not found is no start-up failure: the manager stays up, says
				// so, and reports every launch that fails (see New).
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
			DeviceEvents:  Queue{URL: *devURL, DLQURL: *devDLQ, MaxReceiveCount: *devMRC},
			TaskState:     Queue{URL: *stURL, DLQURL: *stDLQ, MaxReceiveCount: *stMRC},
			QueueWaitTime: *wait, TaskEventsTopicARN: *taskTopic, AlertsTopicARN: *alertTopic,
			DeviceMediaURLTable: *dmTable, IPCameraTable: *ipTable, RecordingsBucket: *bucket, KeyPrefix: *prefix,
			ParameterRoot: *root, Launcher: *launcherName,
			Policy: domain.Policy{RestartInitial: *rInit, RestartMax: *rMax, MaxFailures: *maxFail,
				FailureWindow: *window, GiveUpCooldown: *cooldown, LaunchGrace: *grace},
			ReconcileInterval: *interval, AbsentGrace: *absent,
			RTSPUser: *user, PasswordParameter: *pass, SegmentLength: *segLen, StopTimeout: *stopTimeout, RecorderHTTPAddr: *recHTTP,
			Cluster: *cluster, TaskDefinition: *taskDef, Container: *container, Subnets: *subnets, SecurityGroups: *sgs,
			AssignPublicIP: *public, PlatformVersion: *platform, ContainerSpoolDir: *cSpool,
			RecorderBinary: *bin, RecorderArgs: *args, LocalSpoolDir: *spool, LocalLogDir: *logDir, LocalPassEnv: *passEnv,
		}
	}
}

// Validate checks the settings that depend on each other (Declare's checks
// do the same for settings from the environment).
func (s Settings) Validate() error {
	var errs []error
	bad := func(v, msg string) { errs = append(errs, &service.ConfigError{Var: v, Err: errors.New(msg)}) }
	switch s.Launcher {
	case LauncherECS:
		if s.TaskDefinition == "" {
			bad("RECORDER_TASK_DEFINITION", "required with LAUNCHER=ecs")
		}
		if len(s.Subnets) == 0 {
			bad("SUBNETS", "required with LAUNCHER=ecs")
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
