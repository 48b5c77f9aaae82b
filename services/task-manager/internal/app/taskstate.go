package app

// The "ECS Task State Change" EventBridge event that both launchers
// produce: ECS itself for Fargate tasks, and the local launcher (source
// mediagw.task-manager) for child processes, so that the task-manager and
// the health-sentinel read one shape.

import (
	"strings"
	"time"
)

// Names on the wire.
const (
	TaskStateDetailType = "ECS Task State Change"
	// LocalTaskStateSource is the source of events the local launcher puts; ECS uses "aws.ecs".
	LocalTaskStateSource = "mediagw.task-manager"
	// StartedBy marks tasks the task-manager started (ECS startedBy).
	StartedBy = "mediagw-task-manager"
	// TaskGroupPrefix starts the task group of a device's recording task: the
	// group names the device, because ECS state changes carry no tags.
	TaskGroupPrefix = "recorder:"
)

// ECS stop codes the task-manager distinguishes.
const (
	StopCodeUserInitiated = "UserInitiated"
	StopCodeExited        = "EssentialContainerExited"
	StopCodeFailedToStart = "TaskFailedToStart"
)

// Task statuses.
const (
	TaskStatusRunning = "RUNNING"
	TaskStatusStopped = "STOPPED"
)

// TaskGroup is the task group of device's recording task.
func TaskGroup(device string) string { return TaskGroupPrefix + device }

// DeviceOfTaskGroup returns the device a task group names, if it is one of ours.
func DeviceOfTaskGroup(group string) (string, bool) {
	dev, ok := strings.CutPrefix(group, TaskGroupPrefix)
	return dev, ok && dev != ""
}

// TaskStateChange is the detail of an "ECS Task State Change" event: the
// fields the task-manager and the health-sentinel use, named as ECS names them.
type TaskStateChange struct {
	ClusterArn        string           `json:"clusterArn"`
	TaskArn           string           `json:"taskArn"`
	TaskDefinitionArn string           `json:"taskDefinitionArn,omitempty"`
	Group             string           `json:"group,omitempty"`
	StartedBy         string           `json:"startedBy,omitempty"`
	LaunchType        string           `json:"launchType,omitempty"`
	LastStatus        string           `json:"lastStatus"`
	DesiredStatus     string           `json:"desiredStatus,omitempty"`
	StopCode          string           `json:"stopCode,omitempty"`
	StoppedReason     string           `json:"stoppedReason,omitempty"`
	Containers        []ContainerState `json:"containers,omitempty"`
	CreatedAt         *time.Time       `json:"createdAt,omitempty"`
	StartedAt         *time.Time       `json:"startedAt,omitempty"`
	StoppingAt        *time.Time       `json:"stoppingAt,omitempty"`
	StoppedAt         *time.Time       `json:"stoppedAt,omitempty"`
	UpdatedAt         *time.Time       `json:"updatedAt,omitempty"`
	Version           int64            `json:"version,omitempty"`
	// Overrides are the task's container overrides: the recorder's
	// settings, whose RECORDER_CHANNELS names every device of a packed task
	// (the health-sentinel reads them there: a group names one device).
	Overrides *TaskOverrides `json:"overrides,omitempty"`
}

// TaskOverrides is a task's overrides as ECS puts them in the event.
type TaskOverrides struct {
	ContainerOverrides []ContainerOverride `json:"containerOverrides,omitempty"`
}

// ContainerOverride is one container's override: its environment.
type ContainerOverride struct {
	Name        string     `json:"name"`
	Environment []KeyValue `json:"environment,omitempty"`
}

// KeyValue is one environment variable of a ContainerOverride.
type KeyValue struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// ContainerState is one container's state in a TaskStateChange.
type ContainerState struct {
	Name       string `json:"name"`
	LastStatus string `json:"lastStatus,omitempty"`
	ExitCode   *int   `json:"exitCode,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// ExitCode is the exit code of the named container (any container with an
// exit code when name is empty or absent); -1 when none is known.
func (d TaskStateChange) ExitCode(name string) int32 {
	for _, c := range d.Containers {
		if c.ExitCode != nil && (name == "" || c.Name == name) {
			return int32(*c.ExitCode)
		}
	}
	for _, c := range d.Containers {
		if c.ExitCode != nil {
			return int32(*c.ExitCode)
		}
	}
	return -1
}

// Reason puts the stop code, the task's reason and a container's reason in
// one line.
func (d TaskStateChange) Reason() string {
	parts := []string{}
	for _, s := range []string{d.StopCode, d.StoppedReason} {
		if s != "" {
			parts = append(parts, s)
		}
	}
	for _, c := range d.Containers {
		if c.Reason != "" {
			parts = append(parts, c.Name+": "+c.Reason)
		}
	}
	return strings.Join(parts, "; ")
}

// LocalClusterArn is the clusterArn of the local launcher's tasks for a
// deployment whose ECS cluster is named cluster.
func LocalClusterArn(cluster string) string { return "local:" + cluster }

// SameCluster reports whether a state change's clusterArn is the
// deployment's cluster (ECS ARN, bare name, or the local launcher's);
// an empty cluster accepts every one.
func SameCluster(arn, cluster string) bool {
	return cluster == "" || arn == cluster || arn == LocalClusterArn(cluster) || strings.HasSuffix(arn, ":cluster/"+cluster)
}
