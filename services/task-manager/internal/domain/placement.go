package domain

import (
	"slices"
	"strings"
)

// Packing: several devices of a gateway recorded by one task (the recorder
// takes RECORDER_CHANNELS entries <device>/<channel>=<url>). The Manager
// places a device that starts, and the devices of its gateway due to start
// with it, on one new pack (Place); a task that dies has its devices placed
// again the same way.

// Load is one device's share of a task. A device is placed whole: all its
// channels ride on the same task.
type Load struct {
	Device   string
	Channels int
}

// Pack is one recording task and the devices it carries. Task "" is a pack
// not launched yet.
type Pack struct {
	Task    string
	Gateway string
	Devices []Load
}

// Channels is the number of channels the pack's task records.
func (p Pack) Channels() int {
	n := 0
	for _, d := range p.Devices {
		n += d.Channels
	}
	return n
}

// Placement is the packs after a change, and the running tasks the change
// touched: the recorder reads its channels at start, so a task whose set of
// devices changed is replaced by one with the new set (its other devices
// have a gap of one task start).
type Placement struct {
	Packs   []Pack
	Replace []string // task ids whose device set changed
}

// Place puts the pending devices of one gateway onto packs of at most
// capacity channels. Largest devices first; each goes to the pack that is
// not launched yet and has room (no running recording is interrupted), else
// to the running pack with room that it fills best, else to a new pack. A
// device with more channels than capacity gets a pack of its own, and
// capacity ≤ 1 gives every device its own pack: one task per camera.
func Place(capacity int, packs []Pack, gateway string, pending []Load) Placement {
	out := Placement{Packs: clonePacks(packs)}
	todo := slices.Clone(pending)
	slices.SortStableFunc(todo, func(a, b Load) int {
		if a.Channels != b.Channels {
			return b.Channels - a.Channels
		}
		return strings.Compare(a.Device, b.Device)
	})
	replaced := map[string]bool{}
	for _, l := range todo {
		best := -1
		if capacity > 1 {
			for i, p := range out.Packs {
				room := capacity - p.Channels()
				if p.Gateway != gateway || room < l.Channels || len(p.Devices) == 0 {
					continue
				}
				if best < 0 || better(p, out.Packs[best], room, capacity-out.Packs[best].Channels()) {
					best = i
				}
			}
		}
		if best < 0 {
			out.Packs = append(out.Packs, Pack{Gateway: gateway, Devices: []Load{l}})
			continue
		}
		p := &out.Packs[best]
		p.Devices = append(p.Devices, l)
		if p.Task != "" && !replaced[p.Task] {
			replaced[p.Task] = true
			out.Replace = append(out.Replace, p.Task)
		}
	}
	return out
}

// better says whether pack a (with room ra) is a better home than pack b
// (room rb): one not launched yet interrupts nobody; then the tighter fit.
func better(a, b Pack, ra, rb int) bool {
	if (a.Task == "") != (b.Task == "") {
		return a.Task == ""
	}
	return ra < rb
}

func clonePacks(packs []Pack) []Pack {
	out := make([]Pack, len(packs))
	for i, p := range packs {
		p.Devices = slices.Clone(p.Devices)
		out[i] = p
	}
	return out
}
