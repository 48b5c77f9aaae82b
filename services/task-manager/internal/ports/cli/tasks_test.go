package cli

import (
	"testing"

	"mediagw/services/task-manager/internal/domain"
)

func TestTaskLinesShowWhatEachTaskCarries(t *testing.T) {
	pack := []string{"cam-1", "cam-3"}
	got := taskLines([]domain.Device{
		{Index: "cam-1", Gateway: "gw", Task: &domain.Task{ID: "t-b", Launcher: "ecs", Channels: []int32{1, 2}, Pack: pack}},
		{Index: "cam-2", Gateway: "gw", Task: &domain.Task{ID: "t-a", Launcher: "ecs", Channels: []int32{1}}},
		{Index: "cam-3", Gateway: "gw", Task: &domain.Task{ID: "t-b", Launcher: "ecs", Channels: []int32{4}, Pack: pack}},
		{Index: "cam-4", Gateway: "gw"},
	})
	want := []taskLine{
		{id: "t-a", launcher: "ecs", gateway: "gw", devices: 1, channels: 1, carries: "cam-2:1"},
		{id: "t-b", launcher: "ecs", gateway: "gw", devices: 2, channels: 3, carries: "cam-1:1,2 cam-3:4"},
	}
	if len(got) != len(want) {
		t.Fatalf("lines %+v, want %+v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("line %d: %+v, want %+v", i, got[i], want[i])
		}
	}
}
