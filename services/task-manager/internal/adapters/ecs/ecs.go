// Package ecs launches recording tasks on ECS Fargate (an app.Launcher):
// RunTask with an awsvpc network configuration and container overrides
// that carry only non-secret settings (the RTSP password's SSM parameter
// name, never its value), StopTask with a reason, ListTasks/DescribeTasks
// to see what runs.
package ecs

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/smithy-go"

	"mediagw/services/task-manager/internal/app"
	"mediagw/services/task-manager/internal/domain"
)

// Name is the launcher's name in task records and events.
const Name = "ecs"

// Tags put on every recording task.
const (
	TagDevice  = "mediagw:device"
	TagGateway = "mediagw:gateway"
	TagToken   = "mediagw:launch-token"
)

// Capacity providers of the recording tasks.
const (
	CapacityFargate = "FARGATE"
	CapacitySpot    = "FARGATE_SPOT"
)

// API is the part of the ECS client the launcher uses.
type API interface {
	RunTask(ctx context.Context, in *ecs.RunTaskInput, opts ...func(*ecs.Options)) (*ecs.RunTaskOutput, error)
	StopTask(ctx context.Context, in *ecs.StopTaskInput, opts ...func(*ecs.Options)) (*ecs.StopTaskOutput, error)
	ListTasks(ctx context.Context, in *ecs.ListTasksInput, opts ...func(*ecs.Options)) (*ecs.ListTasksOutput, error)
	DescribeTasks(ctx context.Context, in *ecs.DescribeTasksInput, opts ...func(*ecs.Options)) (*ecs.DescribeTasksOutput, error)
}

// Config configures the launcher.
type Config struct {
	Cluster string
	// TaskDefinition is the recorder's task definition (family, family:revision or ARN).
	TaskDefinition string
	// Container is the recorder's container name in the task definition.
	Container      string
	Subnets        []string
	SecurityGroups []string
	AssignPublicIP bool
	// PlatformVersion "" is LATEST.
	PlatformVersion string
	// CapacityProvider is FARGATE ("" too) or FARGATE_SPOT, which the
	// cluster must have: Spot tasks cost about 70% less and may be
	// interrupted, after which the task-manager starts them again.
	CapacityProvider string
	Recorder         app.Recorder
	// SpoolDir is the recorder's spool inside the container ("" keeps its default).
	SpoolDir string
	// ChannelsPerVCPU sizes every task by the channels it carries (RunTask
	// cpu/memory overrides, the smallest valid Fargate size: SizeFor); 0
	// keeps the task definition's size.
	ChannelsPerVCPU int
}

// Launcher starts recording tasks on Fargate.
type Launcher struct {
	api API
	cfg Config
}

// New returns an ECS launcher.
func New(api API, cfg Config) (*Launcher, error) {
	var errs []error
	if cfg.Cluster == "" {
		errs = append(errs, errors.New("no cluster"))
	}
	if cfg.TaskDefinition == "" {
		errs = append(errs, errors.New("no task definition"))
	}
	if cfg.Container == "" {
		errs = append(errs, errors.New("no container name"))
	}
	if len(cfg.Subnets) == 0 {
		errs = append(errs, errors.New("no subnets (Fargate tasks need an awsvpc network)"))
	}
	if cfg.ChannelsPerVCPU < 0 {
		errs = append(errs, fmt.Errorf("channels per vCPU %d is negative", cfg.ChannelsPerVCPU))
	}
	switch cfg.CapacityProvider {
	case "", CapacityFargate, CapacitySpot:
	default:
		errs = append(errs, fmt.Errorf("capacity provider %q is neither %s nor %s", cfg.CapacityProvider, CapacityFargate, CapacitySpot))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("ecs launcher: %w", err)
	}
	return &Launcher{api: api, cfg: cfg}, nil
}

// Name is "ecs".
func (l *Launcher) Name() string { return Name }

// Family is the task definition's family, which ListTasks filters on.
func (l *Launcher) Family() string {
	td := l.cfg.TaskDefinition
	if i := strings.LastIndex(td, "task-definition/"); i >= 0 {
		td = td[i+len("task-definition/"):]
	}
	family, _, _ := strings.Cut(td, ":")
	return family
}

// RunTaskInput is the request Start sends for spec.
func (l *Launcher) RunTaskInput(spec app.Spec) *ecs.RunTaskInput {
	var env []ecstypes.KeyValuePair
	for _, v := range l.cfg.Recorder.Env(spec, l.cfg.SpoolDir) {
		env = append(env, ecstypes.KeyValuePair{Name: aws.String(v.Name), Value: aws.String(v.Value)})
	}
	public := ecstypes.AssignPublicIpDisabled
	if l.cfg.AssignPublicIP {
		public = ecstypes.AssignPublicIpEnabled
	}
	in := &ecs.RunTaskInput{
		Cluster:        aws.String(l.cfg.Cluster),
		TaskDefinition: aws.String(l.cfg.TaskDefinition),
		LaunchType:     ecstypes.LaunchTypeFargate,
		Count:          aws.Int32(1),
		// The launch token makes a retried RunTask start no second task.
		ClientToken: aws.String(spec.Token),
		StartedBy:   aws.String(app.StartedBy),
		Group:       aws.String(app.TaskGroup(spec.Device)),
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{
			Subnets: l.cfg.Subnets, SecurityGroups: l.cfg.SecurityGroups, AssignPublicIp: public,
		}},
		Overrides: &ecstypes.TaskOverride{ContainerOverrides: []ecstypes.ContainerOverride{{
			Name: aws.String(l.cfg.Container), Environment: env,
		}}},
		Tags: []ecstypes.Tag{
			{Key: aws.String(TagDevice), Value: aws.String(spec.Device)},
			{Key: aws.String(TagGateway), Value: aws.String(spec.Gateway)},
			{Key: aws.String(TagToken), Value: aws.String(spec.Token)},
		},
		EnableECSManagedTags: true,
		PropagateTags:        ecstypes.PropagateTagsTaskDefinition,
	}
	if l.cfg.ChannelsPerVCPU > 0 {
		if size, ok := SizeFor(spec.ChannelCount(), l.cfg.ChannelsPerVCPU); ok {
			in.Overrides.Cpu = aws.String(strconv.Itoa(size.CPU))
			in.Overrides.Memory = aws.String(strconv.Itoa(size.MemoryMiB))
		}
	}
	if l.cfg.PlatformVersion != "" {
		in.PlatformVersion = aws.String(l.cfg.PlatformVersion)
	}
	if l.cfg.CapacityProvider == CapacitySpot {
		// A launch type and a capacity provider strategy exclude each other.
		in.LaunchType = ""
		in.CapacityProviderStrategy = []ecstypes.CapacityProviderStrategyItem{{CapacityProvider: aws.String(CapacitySpot), Weight: 1}}
	}
	return in
}

// Start runs one recording task for spec.
func (l *Launcher) Start(ctx context.Context, spec app.Spec) (domain.ObservedTask, error) {
	if err := spec.Validate(); err != nil {
		return domain.ObservedTask{}, fmt.Errorf("ecs launcher: %w", err)
	}
	out, err := l.api.RunTask(ctx, l.RunTaskInput(spec))
	if err != nil {
		return domain.ObservedTask{}, fmt.Errorf("ecs RunTask for device %s: %w", spec.Device, err)
	}
	if len(out.Tasks) == 0 {
		reasons := make([]string, 0, len(out.Failures))
		for _, f := range out.Failures {
			reasons = append(reasons, aws.ToString(f.Reason)+" "+aws.ToString(f.Detail))
		}
		return domain.ObservedTask{}, fmt.Errorf("ecs RunTask for device %s started no task: %s", spec.Device, strings.Join(reasons, "; "))
	}
	t := out.Tasks[0]
	started := aws.ToTime(t.CreatedAt)
	if started.IsZero() {
		started = time.Now()
	}
	return domain.ObservedTask{ID: aws.ToString(t.TaskArn), Device: spec.Device, Token: spec.Token,
		Channels: domain.ChannelNumbers(spec.Channels), Packed: spec.PackedDevices(), StartedAt: started}, nil
}

// Stop asks ECS to stop the task (ECS sends SIGTERM, then SIGKILL after
// the container's stop timeout). A task ECS no longer knows is no error.
func (l *Launcher) Stop(ctx context.Context, taskID, reason string) error {
	if len(reason) > 255 {
		reason = reason[:255]
	}
	_, err := l.api.StopTask(ctx, &ecs.StopTaskInput{Cluster: aws.String(l.cfg.Cluster), Task: aws.String(taskID), Reason: aws.String(reason)})
	if err != nil {
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "InvalidParameterException" && strings.Contains(strings.ToLower(ae.ErrorMessage()), "not found") {
			return nil
		}
		return fmt.Errorf("ecs StopTask %s: %w", taskID, err)
	}
	return nil
}

// List returns the recorder tasks ECS wants running (desired status
// RUNNING: pending and running ones), with their device and launch token
// from the tags. Tasks of the family without tags (started by hand) are
// listed with no device.
func (l *Launcher) List(ctx context.Context) ([]domain.ObservedTask, error) {
	var arns []string
	var next *string
	for {
		out, err := l.api.ListTasks(ctx, &ecs.ListTasksInput{
			Cluster: aws.String(l.cfg.Cluster), Family: aws.String(l.Family()),
			DesiredStatus: ecstypes.DesiredStatusRunning, NextToken: next,
		})
		if err != nil {
			return nil, fmt.Errorf("ecs ListTasks: %w", err)
		}
		arns = append(arns, out.TaskArns...)
		if next = out.NextToken; next == nil {
			break
		}
	}
	var tasks []domain.ObservedTask
	for i := 0; i < len(arns); i += 100 {
		batch := arns[i:min(i+100, len(arns))]
		out, err := l.api.DescribeTasks(ctx, &ecs.DescribeTasksInput{
			Cluster: aws.String(l.cfg.Cluster), Tasks: batch, Include: []ecstypes.TaskField{ecstypes.TaskFieldTags},
		})
		if err != nil {
			return nil, fmt.Errorf("ecs DescribeTasks: %w", err)
		}
		for _, t := range out.Tasks {
			// Only the desired status counts: a task ECS stopped has it STOPPED.
			if aws.ToString(t.DesiredStatus) != string(ecstypes.DesiredStatusRunning) {
				continue
			}
			tasks = append(tasks, l.observed(t))
		}
	}
	return tasks, nil
}

func (l *Launcher) observed(t ecstypes.Task) domain.ObservedTask {
	o := domain.ObservedTask{ID: aws.ToString(t.TaskArn), StartedAt: aws.ToTime(t.CreatedAt)}
	for _, tag := range t.Tags {
		switch aws.ToString(tag.Key) {
		case TagDevice:
			o.Device = aws.ToString(tag.Value)
		case TagToken:
			o.Token = aws.ToString(tag.Value)
		}
	}
	if o.Device == "" {
		if dev, ok := app.DeviceOfTaskGroup(aws.ToString(t.Group)); ok {
			o.Device = dev
		}
	}
	if t.Overrides != nil {
		for _, c := range t.Overrides.ContainerOverrides {
			if aws.ToString(c.Name) != l.cfg.Container {
				continue
			}
			for _, kv := range c.Environment {
				switch aws.ToString(kv.Name) {
				case app.EnvChannels:
					o.Channels = app.ParseChannels(aws.ToString(kv.Value))
					o.Packed = app.ParsePackedDevices(aws.ToString(kv.Value))
				case app.EnvLaunchToken:
					if o.Token == "" {
						o.Token = aws.ToString(kv.Value)
					}
				}
			}
		}
	}
	return o
}
