// Package ecsevent is the detail of the "ECS Task State Change" event on
// the wire: ECS puts it for Fargate tasks and the task-manager's local
// launcher puts the same shape for child processes; the task-manager and
// the health-sentinel both read it, so it is defined once, here.
package ecsevent

import (
	"strings"
	"time"
)

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
	code, _ := d.Exit(name)
	return code
}

// Exit is ExitCode with the name of the container it is of (name itself
// when none is known).
func (d TaskStateChange) Exit(name string) (int32, string) {
	for _, c := range d.Containers {
		if c.ExitCode != nil && (name == "" || c.Name == name) {
			return int32(*c.ExitCode), c.Name
		}
	}
	for _, c := range d.Containers {
		if c.ExitCode != nil {
			return int32(*c.ExitCode), c.Name
		}
	}
	return -1, name
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
