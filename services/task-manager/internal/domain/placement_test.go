package domain

import (
	"slices"
	"testing"
)

func devices(p Pack) []string {
	var out []string
	for _, l := range p.Devices {
		out = append(out, l.Device)
	}
	slices.Sort(out)
	return out
}

func loads(n, channels int, prefix string) []Load {
	var out []Load
	for i := range n {
		out = append(out, Load{Device: prefix + string(rune('a'+i%26)) + string(rune('a'+i/26)), Channels: channels})
	}
	return out
}

func TestPlaceCapacityOneIsOneTaskPerDevice(t *testing.T) {
	got := Place(1, nil, "gw", loads(3, 1, "cam-"))
	if len(got.Packs) != 3 || len(got.Replace) != 0 {
		t.Fatalf("packs %+v replace %v", got.Packs, got.Replace)
	}
	for _, p := range got.Packs {
		if len(p.Devices) != 1 || p.Task != "" {
			t.Errorf("pack %+v", p)
		}
	}
}

func TestPlaceFillsTasksUpToCapacity(t *testing.T) {
	got := Place(100, nil, "gw", loads(250, 1, "cam-"))
	var sizes []int
	for _, p := range got.Packs {
		sizes = append(sizes, p.Channels())
	}
	if !slices.Equal(sizes, []int{100, 100, 50}) {
		t.Errorf("pack sizes %v, want 100,100,50", sizes)
	}
	seen := map[string]bool{}
	for _, p := range got.Packs {
		for _, l := range p.Devices {
			if seen[l.Device] {
				t.Errorf("%s placed twice", l.Device)
			}
			seen[l.Device] = true
		}
	}
	if len(seen) != 250 {
		t.Errorf("%d devices placed, want 250", len(seen))
	}
}

func TestPlaceKeepsDevicesWholeAndGatewaysApart(t *testing.T) {
	packs := []Pack{{Task: "t-other", Gateway: "gw-2", Devices: []Load{{"x", 1}}}}
	got := Place(4, packs, "gw-1", []Load{{"big", 6}, {"a", 3}, {"b", 2}, {"c", 1}})
	// big alone (more than capacity), a+c, b: never with gw-2's task.
	var sets [][]string
	for _, p := range got.Packs {
		if p.Gateway == "gw-1" {
			sets = append(sets, devices(p))
		}
		if p.Task == "t-other" && len(p.Devices) != 1 {
			t.Errorf("another gateway's task got devices: %+v", p)
		}
	}
	want := [][]string{{"big"}, {"a", "c"}, {"b"}}
	if !slices.EqualFunc(sets, want, slices.Equal) {
		t.Errorf("packs %v, want %v", sets, want)
	}
	if len(got.Replace) != 0 {
		t.Errorf("replaced %v", got.Replace)
	}
}

func TestPlacePrefersPacksNotLaunchedOverRunningOnes(t *testing.T) {
	packs := []Pack{
		{Task: "t-1", Gateway: "gw", Devices: []Load{{"a", 98}}},
		{Gateway: "gw", Devices: []Load{{"b", 10}}},
	}
	got := Place(100, packs, "gw", []Load{{"c", 1}})
	if !slices.Equal(devices(got.Packs[1]), []string{"b", "c"}) || len(got.Replace) != 0 {
		t.Errorf("packs %+v replace %v: want c beside b, t-1 untouched", got.Packs, got.Replace)
	}
	// Only a running pack has room: it takes the device and its task is replaced.
	got = Place(100, packs[:1], "gw", []Load{{"c", 1}})
	if len(got.Packs) != 1 || !slices.Equal(devices(got.Packs[0]), []string{"a", "c"}) || !slices.Equal(got.Replace, []string{"t-1"}) {
		t.Errorf("packs %+v replace %v", got.Packs, got.Replace)
	}
	if len(packs[0].Devices) != 1 {
		t.Errorf("Place changed its input: %+v", packs[0])
	}
}
