// Package taskstate is the "ECS Task State Change" EventBridge event that
// both launchers produce: ECS itself for Fargate tasks, and the local
// launcher (source mediagw.task-manager) for child processes, so that the
// task-manager and the health-sentinel read one shape.
package taskstate

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/cenkalti/backoff/v4"
)

// Names on the wire.
const (
	DetailType = "ECS Task State Change"
	// LocalSource is the source of events the local launcher puts; ECS uses "aws.ecs".
	LocalSource = "mediagw.task-manager"
	// StartedBy marks tasks the task-manager started (ECS startedBy).
	StartedBy = "mediagw-task-manager"
	// GroupPrefix starts the task group of a device's recording task: the
	// group names the device, because ECS state changes carry no tags.
	GroupPrefix = "recorder:"
)

// ECS stop codes the task-manager distinguishes.
const (
	StopCodeUserInitiated = "UserInitiated"
	StopCodeExited        = "EssentialContainerExited"
	StopCodeFailedToStart = "TaskFailedToStart"
)

// Statuses.
const (
	StatusRunning = "RUNNING"
	StatusStopped = "STOPPED"
)

// Group is the task group of device's recording task.
func Group(device string) string { return GroupPrefix + device }

// DeviceOfGroup returns the device a task group names, if it is one of ours.
func DeviceOfGroup(group string) (string, bool) {
	dev, ok := strings.CutPrefix(group, GroupPrefix)
	return dev, ok && dev != ""
}

// Detail is the detail of an "ECS Task State Change" event: the fields the
// task-manager and the health-sentinel use, named as ECS names them.
type Detail struct {
	ClusterArn        string      `json:"clusterArn"`
	TaskArn           string      `json:"taskArn"`
	TaskDefinitionArn string      `json:"taskDefinitionArn,omitempty"`
	Group             string      `json:"group,omitempty"`
	StartedBy         string      `json:"startedBy,omitempty"`
	LaunchType        string      `json:"launchType,omitempty"`
	LastStatus        string      `json:"lastStatus"`
	DesiredStatus     string      `json:"desiredStatus,omitempty"`
	StopCode          string      `json:"stopCode,omitempty"`
	StoppedReason     string      `json:"stoppedReason,omitempty"`
	Containers        []Container `json:"containers,omitempty"`
	CreatedAt         *time.Time  `json:"createdAt,omitempty"`
	StartedAt         *time.Time  `json:"startedAt,omitempty"`
	StoppingAt        *time.Time  `json:"stoppingAt,omitempty"`
	StoppedAt         *time.Time  `json:"stoppedAt,omitempty"`
	UpdatedAt         *time.Time  `json:"updatedAt,omitempty"`
	Version           int64       `json:"version,omitempty"`
}

// Container is one container's state in a Detail.
type Container struct {
	Name       string `json:"name"`
	LastStatus string `json:"lastStatus,omitempty"`
	ExitCode   *int   `json:"exitCode,omitempty"`
	Reason     string `json:"reason,omitempty"`
}

// ExitCode is the exit code of the named container (any container with an
// exit code when name is empty or absent); -1 when none is known.
func (d Detail) ExitCode(name string) int32 {
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
func (d Detail) Reason() string {
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

// PutEventsAPI is the part of the EventBridge client the Reporter uses.
type PutEventsAPI interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, opts ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Reporter puts task state changes on an EventBridge bus, as ECS would.
type Reporter struct {
	eb  PutEventsAPI
	bus string
	// MaxElapsed bounds the retries of one report (default 1 min).
	MaxElapsed time.Duration
}

// NewReporter returns a Reporter for the bus ("" for the default bus).
func NewReporter(eb PutEventsAPI, bus string) *Reporter {
	return &Reporter{eb: eb, bus: bus, MaxElapsed: time.Minute}
}

// Report puts one task state change, retrying failures for a while.
func (r *Reporter) Report(ctx context.Context, d Detail) error {
	body, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("task state change %s: %w", d.TaskArn, err)
	}
	entry := ebtypes.PutEventsRequestEntry{
		Source: aws.String(LocalSource), DetailType: aws.String(DetailType), Detail: aws.String(string(body)),
		Resources: []string{d.TaskArn},
	}
	if r.bus != "" {
		entry.EventBusName = aws.String(r.bus)
	}
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval = 200 * time.Millisecond
	bo.MaxElapsedTime = r.MaxElapsed
	return backoff.Retry(func() error {
		out, err := r.eb.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []ebtypes.PutEventsRequestEntry{entry}})
		if err != nil {
			return fmt.Errorf("put task state change %s: %w", d.TaskArn, err)
		}
		if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
			e := out.Entries[0]
			return fmt.Errorf("put task state change %s: %s: %s", d.TaskArn, aws.ToString(e.ErrorCode), aws.ToString(e.ErrorMessage))
		}
		return nil
	}, backoff.WithContext(bo, ctx))
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
