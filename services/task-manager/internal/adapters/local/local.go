// Package local launches recording tasks (an app.Launcher) as child processes of the
// task-manager (for `make run`, single-host installs and end-to-end tests).
// Each task is the recorder binary in its own process group; stopping it
// sends SIGTERM to the group, then SIGKILL after the stop timeout. When a
// task ends, the launcher puts an "ECS Task State Change" event on
// EventBridge exactly as ECS would for a Fargate task.
package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/google/uuid"

	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

// Name is the launcher's name in task records and events.
const Name = "local"

// Reporter puts a task's state change where the task-state queue gets it.
type Reporter interface {
	Report(ctx context.Context, d app.TaskStateChange) error
}

// Config configures the launcher.
type Config struct {
	// Binary is the recorder executable; Args are put before nothing else.
	Binary string
	Args   []string
	// Recorder are the settings every task gets.
	Recorder app.Recorder
	// SpoolRoot is every task's RECORDER_SPOOL_DIR: the recorder keeps its
	// segments under <root>/<gateway>/<device>/<channel>, so a restarted
	// task uploads what its predecessor left.
	SpoolRoot string
	// LogDir receives one log file per device; "" sends the tasks' output
	// to Output (default os.Stderr).
	LogDir string
	Output io.Writer
	// StopTimeout is the wait between SIGTERM and SIGKILL (default 30 s).
	StopTimeout time.Duration
	// PassEnv names the variables of the task-manager's environment that
	// tasks inherit; a trailing '*' matches a prefix. Nothing else is passed.
	PassEnv []string
	// Container names the one "container" in state changes (default "recorder").
	Container string
	// Cluster names the deployment in state changes (clusterArn local:<cluster>),
	// so that several task-managers sharing an event bus tell their tasks apart.
	Cluster string
	Logger  *slog.Logger
}

// Launcher runs recording tasks as child processes.
type Launcher struct {
	cfg Config
	rep Reporter
	env []string

	mu     sync.Mutex
	tasks  map[string]*proc
	closed bool
	wg     sync.WaitGroup
	// reports outlive Stop, not Close's deadline.
	reportCtx     context.Context
	cancelReports context.CancelFunc
}

type proc struct {
	task    domain.ObservedTask
	gateway string
	// env is the recorder's settings (no secret among them), reported as
	// the container override the way ECS reports a Fargate task's.
	env     []app.KeyValue
	cmd     *exec.Cmd
	logFile *os.File

	// Set under Launcher.mu when a stop is asked for.
	stopReason string
	stoppingAt time.Time
	done       chan struct{}
}

// New returns a local launcher reporting task ends through rep.
func New(cfg Config, rep Reporter) (*Launcher, error) {
	if cfg.Binary == "" {
		return nil, errors.New("local launcher: no recorder binary")
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 30 * time.Second
	}
	if cfg.Container == "" {
		cfg.Container = "recorder"
	}
	if cfg.Output == nil {
		cfg.Output = os.Stderr
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	l := &Launcher{cfg: cfg, rep: rep, env: passedEnv(os.Environ(), cfg.PassEnv), tasks: map[string]*proc{}}
	l.reportCtx, l.cancelReports = context.WithCancel(context.Background())
	return l, nil
}

func passedEnv(environ, pass []string) []string {
	var out []string
	for _, kv := range environ {
		name, _, _ := strings.Cut(kv, "=")
		for _, p := range pass {
			if prefix, ok := strings.CutSuffix(p, "*"); (ok && strings.HasPrefix(name, prefix)) || name == p {
				out = append(out, kv)
				break
			}
		}
	}
	return out
}

// Name is "local".
func (l *Launcher) Name() string { return Name }

// ErrClosed is returned by Start after Close.
var ErrClosed = errors.New("local launcher closed")

// Start runs a recorder for spec.
func (l *Launcher) Start(ctx context.Context, spec app.Spec) (domain.ObservedTask, error) {
	if err := spec.Validate(); err != nil {
		return domain.ObservedTask{}, fmt.Errorf("local launcher: %w", err)
	}
	spool := l.cfg.SpoolRoot
	if spool != "" {
		if err := os.MkdirAll(spool, 0o750); err != nil {
			return domain.ObservedTask{}, fmt.Errorf("local launcher: spool: %w", err)
		}
	}
	cmd := exec.Command(l.cfg.Binary, l.cfg.Args...)
	cmd.Env = append([]string(nil), l.env...)
	var settings []app.KeyValue
	for _, v := range l.cfg.Recorder.Env(spec, spool) {
		cmd.Env = append(cmd.Env, v.Name+"="+v.Value)
		settings = append(settings, app.KeyValue{Name: v.Name, Value: v.Value})
	}
	// Its own process group, so that a stop reaches ffmpeg too; and SIGTERM
	// if the task-manager dies without stopping it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGTERM}
	var logFile *os.File
	if l.cfg.LogDir != "" {
		if err := os.MkdirAll(l.cfg.LogDir, 0o750); err != nil {
			return domain.ObservedTask{}, fmt.Errorf("local launcher: log dir: %w", err)
		}
		f, err := os.OpenFile(filepath.Join(l.cfg.LogDir, "recorder-"+spec.Device+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
		if err != nil {
			return domain.ObservedTask{}, fmt.Errorf("local launcher: log file: %w", err)
		}
		logFile = f
		cmd.Stdout, cmd.Stderr = f, f
	} else {
		cmd.Stdout, cmd.Stderr = l.cfg.Output, l.cfg.Output
	}

	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		closeFile(logFile)
		return domain.ObservedTask{}, ErrClosed
	}
	if err := cmd.Start(); err != nil {
		closeFile(logFile)
		return domain.ObservedTask{}, fmt.Errorf("local launcher: start %s: %w", l.cfg.Binary, err)
	}
	id := "local:" + strings.ReplaceAll(uuid.NewString(), "-", "")[:16]
	p := &proc{env: settings,
		task: domain.ObservedTask{ID: id, Device: spec.Device, Token: spec.Token,
			Channels: domain.ChannelNumbers(spec.Channels), Packed: spec.PackedDevices(), StartedAt: time.Now()},
		gateway: spec.Gateway, cmd: cmd, logFile: logFile, done: make(chan struct{}),
	}
	l.tasks[id] = p
	l.wg.Add(1)
	go l.wait(p)
	l.cfg.Logger.InfoContext(ctx, "local task started", "task_id", id, "pid", cmd.Process.Pid,
		"device", spec.Device, "gateway", spec.Gateway, "channels", p.task.Channels, "packed", p.task.Packed)
	return p.task, nil
}

func closeFile(f *os.File) {
	if f != nil {
		_ = f.Close()
	}
}

// wait reaps the task, clears its process group and reports its end.
func (l *Launcher) wait(p *proc) {
	defer l.wg.Done()
	err := p.cmd.Wait()
	stoppedAt := time.Now()
	pgid := p.cmd.Process.Pid
	// Whatever the recorder left behind (an ffmpeg) goes with it.
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	closeFile(p.logFile)
	close(p.done)

	l.mu.Lock()
	delete(l.tasks, p.task.ID)
	reason, stoppingAt := p.stopReason, p.stoppingAt
	l.mu.Unlock()

	code := exitCode(p.cmd.ProcessState, err)
	d := app.TaskStateChange{
		ClusterArn: app.LocalClusterArn(l.cfg.Cluster), TaskArn: p.task.ID, TaskDefinitionArn: "local:" + filepath.Base(l.cfg.Binary),
		Group: app.TaskGroup(p.task.Device), StartedBy: app.StartedBy, LaunchType: "LOCAL",
		LastStatus: app.TaskStatusStopped, DesiredStatus: app.TaskStatusStopped,
		Containers: []app.ContainerState{{Name: l.cfg.Container, LastStatus: app.TaskStatusStopped, ExitCode: &code}},
		CreatedAt:  &p.task.StartedAt, StartedAt: &p.task.StartedAt, StoppedAt: &stoppedAt, UpdatedAt: &stoppedAt,
		Version:   2,
		Overrides: &app.TaskOverrides{ContainerOverrides: []app.ContainerOverride{{Name: l.cfg.Container, Environment: p.env}}},
	}
	if reason != "" {
		d.StopCode, d.StoppedReason, d.StoppingAt = app.StopCodeUserInitiated, reason, &stoppingAt
	} else {
		d.StopCode, d.StoppedReason = app.StopCodeExited, "Essential container in task exited"
	}
	l.cfg.Logger.Info("local task ended", "task_id", p.task.ID, "device", p.task.Device, "exit_code", code,
		"stop_code", d.StopCode, "reason", d.StoppedReason)
	ctx, cancel := context.WithTimeout(l.reportCtx, 2*time.Minute)
	defer cancel()
	if err := l.rep.Report(ctx, d); err != nil {
		// Reconciliation notices the task is gone within one interval.
		l.cfg.Logger.Error("task state change not reported", "task_id", p.task.ID, "err", err)
	}
}

func exitCode(ps *os.ProcessState, waitErr error) int {
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal()) // as a container runtime reports it
	}
	return ps.ExitCode()
}

// Stop asks the task to stop: SIGTERM to its process group now, SIGKILL
// after the stop timeout. It returns at once; the task's end is reported
// as a state change. Stopping a task that has already ended is no error.
func (l *Launcher) Stop(ctx context.Context, taskID, reason string) error {
	l.mu.Lock()
	p, ok := l.tasks[taskID]
	if !ok || p.stopReason != "" {
		l.mu.Unlock()
		return nil
	}
	if reason == "" {
		reason = "stopped by the task-manager"
	}
	p.stopReason, p.stoppingAt = reason, time.Now()
	l.mu.Unlock()

	pgid := p.cmd.Process.Pid
	if err := syscall.Kill(-pgid, syscall.SIGTERM); err != nil && !errors.Is(err, syscall.ESRCH) {
		return fmt.Errorf("local launcher: stop %s: %w", taskID, err)
	}
	l.cfg.Logger.InfoContext(ctx, "local task stopping", "task_id", taskID, "device", p.task.Device, "reason", reason)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		t := time.NewTimer(l.cfg.StopTimeout)
		defer t.Stop()
		select {
		case <-p.done:
		case <-t.C:
			l.cfg.Logger.Warn("local task ignored SIGTERM; killing it", "task_id", taskID, "stop_timeout", l.cfg.StopTimeout.String())
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
		}
	}()
	return nil
}

// List returns the tasks still running (stopping ones included).
func (l *Launcher) List(context.Context) ([]domain.ObservedTask, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]domain.ObservedTask, 0, len(l.tasks))
	for _, p := range l.tasks {
		out = append(out, p.task)
	}
	return out, nil
}

// Pid returns the process id of a running task (for tests and operators).
func (l *Launcher) Pid(taskID string) (int, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if p, ok := l.tasks[taskID]; ok {
		return p.cmd.Process.Pid, true
	}
	return 0, false
}

// Close stops every task (reported as stopped by the user, so the next
// task-manager restarts them without counting a failure) and waits for
// them and their reports until ctx ends; then it kills what is left.
func (l *Launcher) Close(ctx context.Context) error {
	l.mu.Lock()
	l.closed = true
	ids := make([]string, 0, len(l.tasks))
	for id := range l.tasks {
		ids = append(ids, id)
	}
	l.mu.Unlock()
	for _, id := range ids {
		_ = l.Stop(ctx, id, "task-manager shutting down")
	}
	done := make(chan struct{})
	go func() { l.wg.Wait(); close(done) }()
	select {
	case <-done:
		l.cancelReports()
		return nil
	case <-ctx.Done():
		l.cancelReports()
		l.mu.Lock()
		for _, p := range l.tasks {
			_ = syscall.Kill(-p.cmd.Process.Pid, syscall.SIGKILL)
		}
		l.mu.Unlock()
		<-done
		return fmt.Errorf("local launcher: tasks outlived the shutdown: %w", ctx.Err())
	}
}
