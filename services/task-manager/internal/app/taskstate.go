package app

// The "ECS Task State Change" EventBridge event that both launchers
// produce: ECS itself for Fargate tasks, and the local launcher (source
// mediagw.task-manager) for child processes, so that the task-manager and
// the health-sentinel read one shape.

import (
	"strings"

	"mediagw/pkg/ecsevent"
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

// The wire shape of the event's detail (pkg/ecsevent), by the names the
// task-manager has always used.
type (
	TaskStateChange   = ecsevent.TaskStateChange
	TaskOverrides     = ecsevent.TaskOverrides
	ContainerOverride = ecsevent.ContainerOverride
	KeyValue          = ecsevent.KeyValue
	ContainerState    = ecsevent.ContainerState
)

// LocalClusterArn is the clusterArn of the local launcher's tasks for a
// deployment whose ECS cluster is named cluster.
func LocalClusterArn(cluster string) string { return "local:" + cluster }

// SameCluster reports whether a state change's clusterArn is the
// deployment's cluster (ECS ARN, bare name, or the local launcher's);
// an empty cluster accepts every one.
func SameCluster(arn, cluster string) bool {
	return cluster == "" || arn == cluster || arn == LocalClusterArn(cluster) || strings.HasSuffix(arn, ":cluster/"+cluster)
}
