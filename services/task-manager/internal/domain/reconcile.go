package domain

import (
	"sort"
	"time"
)

// ObservedTask is a recording task as the launcher lists it.
type ObservedTask struct {
	ID       string
	Device   string // "" when the task carries no device (not started by the manager)
	Token    string
	Channels []int32
	// Packed are other devices the task records beside Device (packing).
	Packed    []string
	StartedAt time.Time
}

// ReconcileInput is one look at the world. Tasks must be listed before Rows
// are read: a task's launch intent is stored before it is launched, so every
// listed task the manager started has its token in a row read afterwards.
type ReconcileInput struct {
	// Table holds one desire per device present in deviceMediaURL.
	Table map[string]Desire
	Rows  []Device
	Tasks []ObservedTask
	// ListedAt is when Tasks were listed.
	ListedAt time.Time
	// AbsentGrace: a row whose device has been missing from a non-empty
	// table for this long (by the row's last update) is deleted.
	AbsentGrace time.Duration
	// VanishGrace: a task started this long before the listing and not in
	// it has vanished. ECS lists new tasks late (use the launch grace); the
	// local launcher's list is exact (0).
	VanishGrace time.Duration
}

// ReconcilePlan is what reconciliation found. The manager applies each item
// through the same conditional writes as events, so a plan computed from a
// slightly stale look cannot undo newer state.
type ReconcilePlan struct {
	Desires  []Desire                // table facts (ApplyDesire ignores those not newer)
	Adopt    map[string]ObservedTask // device → its launched but unrecorded task
	Vanished map[string]TaskEnd      // device → end of its task that the launcher no longer lists
	Orphans  []ObservedTask          // tasks that belong to no device's current state: stop
	Devices  []string                // every device to plan afterwards
}

// Reconcile compares desired (table), stored (rows) and actual (tasks).
func Reconcile(in ReconcileInput, p Policy) ReconcilePlan {
	out := ReconcilePlan{Adopt: map[string]ObservedTask{}, Vanished: map[string]TaskEnd{}}
	rows := map[string]Device{}
	for _, d := range in.Rows {
		rows[d.Index] = d
	}
	devices := map[string]bool{}
	for dev, want := range in.Table {
		devices[dev] = true
		out.Desires = append(out.Desires, want)
	}
	for dev, d := range rows {
		devices[dev] = true
		if _, present := in.Table[dev]; !present && len(in.Table) > 0 && d.Want != WantDelete &&
			in.ListedAt.Sub(d.UpdatedAt) > in.AbsentGrace {
			// Gone from the watcher's table: deleted, and the event was lost.
			out.Desires = append(out.Desires, Desire{Device: dev, Want: WantDelete, At: in.ListedAt})
		}
	}
	claimed := map[string]bool{} // tasks some row names as its current one
	for _, d := range rows {
		if d.Task != nil {
			claimed[d.Task.ID] = true
		}
	}
	listed := map[string]bool{}
	for _, t := range in.Tasks {
		listed[t.ID] = true
		if claimed[t.ID] {
			continue
		}
		// A launch whose recording was lost: every device it carries whose
		// row still holds the launch's token adopts it.
		adopted := false
		for _, dev := range append([]string{t.Device}, t.Packed...) {
			if d, ok := rows[dev]; ok && d.Task == nil && d.Status == StatusStarting && t.Token != "" && d.Token == t.Token {
				out.Adopt[dev] = t
				adopted = true
			}
		}
		if !adopted {
			out.Orphans = append(out.Orphans, t)
		}
	}
	for dev, d := range rows {
		if d.Task != nil && !listed[d.Task.ID] && d.Task.StartedAt.Before(in.ListedAt.Add(-in.VanishGrace)) {
			// No state change reached us (lost, or the manager was down):
			// restart at once, without counting a failure we cannot see.
			out.Vanished[dev] = TaskEnd{TaskID: d.Task.ID, ExitCode: -1, Reason: "task no longer listed by the launcher", Expected: true}
		}
	}
	for dev := range devices {
		out.Devices = append(out.Devices, dev)
	}
	sort.Strings(out.Devices)
	sort.Slice(out.Desires, func(i, j int) bool { return out.Desires[i].Device < out.Desires[j].Device })
	return out
}
