package app

import (
	"encoding/json"
	"testing"
)

// A real ECS event's detail (trimmed) decodes and reads as the local
// launcher's do.
func TestDetailOfAnECSEvent(t *testing.T) {
	const ecsDetail = `{"clusterArn":"arn:aws:ecs:eu-west-1:123456789012:cluster/mediagw","taskArn":"arn:aws:ecs:eu-west-1:123456789012:task/mediagw/abc",
	"group":"recorder:cam-1","startedBy":"mediagw-task-manager","lastStatus":"STOPPED","desiredStatus":"STOPPED",
	"stopCode":"EssentialContainerExited","stoppedReason":"Essential container in task exited",
	"containers":[{"name":"log-router","exitCode":0},{"name":"recorder","exitCode":4,"lastStatus":"STOPPED","reason":"gave up"}],
	"stoppedAt":"2026-03-01T12:00:00.123Z","version":5}`
	var d TaskStateChange
	if err := json.Unmarshal([]byte(ecsDetail), &d); err != nil {
		t.Fatal(err)
	}
	if d.ExitCode("recorder") != 4 || d.ExitCode("missing") != 0 || (TaskStateChange{}).ExitCode("recorder") != -1 {
		t.Errorf("exit codes %d %d", d.ExitCode("recorder"), d.ExitCode("missing"))
	}
	if got := d.Reason(); got != "EssentialContainerExited; Essential container in task exited; recorder: gave up" {
		t.Errorf("reason %q", got)
	}
	if dev, ok := DeviceOfTaskGroup(d.Group); !ok || dev != "cam-1" {
		t.Errorf("device %q %v", dev, ok)
	}
	if _, ok := DeviceOfTaskGroup("family:mediagw-recorder"); ok {
		t.Error("a default ECS group taken for a device")
	}
	if !SameCluster(d.ClusterArn, "mediagw") || SameCluster(d.ClusterArn, "other") || !SameCluster("local:mediagw", "mediagw") || SameCluster("local:x", "mediagw") {
		t.Error("cluster matching")
	}
}
