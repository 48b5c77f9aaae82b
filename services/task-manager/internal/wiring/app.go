package wiring

import (
	"context"
	"fmt"
	"os/exec"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"

	"mediagw/pkg/messaging"
	"mediagw/pkg/service"
	"mediagw/pkg/topology"
	store "mediagw/services/task-manager/internal/adapters/dynamodb"
	ecslauncher "mediagw/services/task-manager/internal/adapters/ecs"
	eventbridgeadapter "mediagw/services/task-manager/internal/adapters/eventbridge"
	"mediagw/services/task-manager/internal/adapters/local"
	promadapter "mediagw/services/task-manager/internal/adapters/prometheus"
	"mediagw/services/task-manager/internal/app"
	sqsport "mediagw/services/task-manager/internal/ports/sqs"
)

// App is the wired task-manager.
type App struct {
	Manager *app.Manager
	// Local is the local launcher (nil with LAUNCHER=ecs).
	Local *local.Launcher

	rt        *service.Runtime
	interval  time.Duration
	devices   *messaging.Consumer
	taskState *messaging.Consumer
}

// New builds the task-manager from its settings.
func New(rt *service.Runtime, s Settings) (*App, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	cfg := rt.AWS
	db := dynamodb.NewFromConfig(cfg)
	rec := app.Recorder{
		RTSPUser: s.RTSPUser, PasswordParameter: s.passwordParameter(), SegmentLength: s.SegmentLength,
		Bucket: s.RecordingsBucket, KeyPrefix: s.KeyPrefix, HTTPAddr: s.RecorderHTTPAddr,
		// Leave the recorder a moment of the stop timeout for its own exit.
		StopTimeout: max(s.StopTimeout-2*time.Second, time.Second),
	}
	a := &App{rt: rt}
	var l app.Launcher
	switch s.Launcher {
	case LauncherECS:
		el, err := ecslauncher.New(ecs.NewFromConfig(cfg), ecslauncher.Config{
			Cluster: s.Cluster, TaskDefinition: s.TaskDefinition, Container: s.Container,
			Subnets: s.Subnets, SecurityGroups: s.SecurityGroups, AssignPublicIP: s.AssignPublicIP,
			PlatformVersion: s.PlatformVersion, Recorder: rec, SpoolDir: s.ContainerSpoolDir,
		})
		if err != nil {
			return nil, err
		}
		l = el
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
		}, eventbridgeadapter.NewReporter(eventbridge.NewFromConfig(cfg), ""))
		if err != nil {
			return nil, err
		}
		a.Local, l = ll, ll
	}

	msgMetrics := messaging.NewMetrics(rt.Metrics)
	routes := topology.Default().Routes(map[string]string{
		"mediagw-task-events": s.TaskEventsTopicARN,
		"mediagw-alerts":      s.AlertsTopicARN,
	})
	pub := messaging.NewPublisher(sns.NewFromConfig(cfg), messaging.PublisherConfig{
		Source: "task-manager", Routes: routes, Logger: rt.Logger, Metrics: msgMetrics,
	})
	a.Manager = app.New(store.NewIPCamera(db, s.IPCameraTable), store.NewDeviceMedia(db, s.DeviceMediaURLTable), l, pub, app.Config{
		Policy: s.Policy, AbsentGrace: s.AbsentGrace, ExactList: a.Local != nil,
		Cluster: s.Cluster, Container: s.Container, Logger: rt.Logger, Metrics: promadapter.NewMetrics(rt.Metrics),
	})
	a.interval = s.ReconcileInterval

	sqsClient := sqs.NewFromConfig(cfg)
	devices := sqsport.DeviceEvents(a.Manager)
	a.devices = messaging.NewConsumer(sqsClient, messaging.ConsumerConfig{
		Queue: "task-manager-device-events", QueueURL: s.DeviceEvents.URL, DeadLetterQueueURL: s.DeviceEvents.DLQURL,
		MaxReceiveCount: s.DeviceEvents.MaxReceiveCount, WaitTime: s.QueueWaitTime, ShutdownGrace: 10 * time.Second,
		Logger: rt.Logger, Metrics: msgMetrics,
	}, devices.Handle)
	states := sqsport.TaskState(a.Manager)
	a.taskState = messaging.NewConsumer(sqsClient, messaging.ConsumerConfig{
		Queue: "task-manager-task-state", QueueURL: s.TaskState.URL, DeadLetterQueueURL: s.TaskState.DLQURL,
		MaxReceiveCount: s.TaskState.MaxReceiveCount, WaitTime: s.QueueWaitTime, ShutdownGrace: 10 * time.Second,
		Logger: rt.Logger, Metrics: msgMetrics,
	}, states.Handle)
	return a, nil
}

// Run reconciles once, turns ready, then consumes both queues and
// reconciles every interval until ctx ends. Local tasks are stopped on the
// way out (the next task-manager restarts them).
func (a *App) Run(ctx context.Context) error {
	if err := a.Manager.Reconcile(ctx); err != nil && ctx.Err() == nil {
		a.rt.Logger.ErrorContext(ctx, "start-up reconciliation incomplete; retried every interval", "err", err)
	}
	a.rt.SetReady(true)
	a.rt.Logger.InfoContext(ctx, "task-manager running")

	// One part ending ends them all.
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 3)
	for _, run := range []func(context.Context) error{a.devices.Run, a.taskState.Run, a.reconcileLoop} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer cancel()
			if err := run(runCtx); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	var err error
	for e := range errs {
		err = e
	}
	if a.Local != nil {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 12*time.Second)
		defer cancel()
		if cerr := a.Local.Close(cctx); cerr != nil {
			a.rt.Logger.Error("local tasks did not stop in time", "err", cerr)
		}
	}
	if err != nil {
		return fmt.Errorf("task-manager: %w", err)
	}
	return nil
}

// Run builds and runs the task-manager.
func Run(ctx context.Context, rt *service.Runtime, s Settings) error {
	a, err := New(rt, s)
	if err != nil {
		return err
	}
	return a.Run(ctx)
}

func (a *App) reconcileLoop(ctx context.Context) error {
	defer a.Manager.Close()
	t := time.NewTicker(a.interval)
	defer t.Stop()
	for {
		if err := a.Manager.Reconcile(ctx); err != nil && ctx.Err() == nil {
			a.rt.Logger.ErrorContext(ctx, "reconciliation incomplete", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
