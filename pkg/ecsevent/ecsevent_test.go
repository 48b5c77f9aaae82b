package ecsevent_test

import (
	"encoding/json"
	"testing"

	"mediagw/pkg/ecsevent"
)

// An ECS state change as EventBridge delivers its detail: the named
// container's exit code wins, any container's stands in, and the reasons
// make one line.
func TestExitAndReason(t *testing.T) {
	var d ecsevent.TaskStateChange
	err := json.Unmarshal([]byte(`{"lastStatus":"STOPPED","stopCode":"EssentialContainerExited","stoppedReason":"Essential container in task exited",
		"containers":[{"name":"sidecar","exitCode":0},{"name":"recorder","exitCode":3,"reason":"OutOfMemoryError"}]}`), &d)
	if err != nil {
		t.Fatal(err)
	}
	if code, c := d.Exit("recorder"); code != 3 || c != "recorder" {
		t.Errorf("Exit(recorder) = %d, %q", code, c)
	}
	if code, c := d.Exit("gone"); code != 0 || c != "sidecar" {
		t.Errorf("Exit(gone) = %d, %q: want the first container with a code", code, c)
	}
	if got, want := d.Reason(), "EssentialContainerExited; Essential container in task exited; recorder: OutOfMemoryError"; got != want {
		t.Errorf("Reason() = %q, want %q", got, want)
	}
	if code, c := (ecsevent.TaskStateChange{}).Exit("recorder"); code != -1 || c != "recorder" {
		t.Errorf("no containers: Exit = %d, %q", code, c)
	}
}
