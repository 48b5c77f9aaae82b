package domain

import (
	"slices"
	"testing"
	"time"
)

func snap(id string, age time.Duration, avail bool) Snapshot {
	return Snapshot{ID: id, Created: t0.Add(-age), Available: avail, Healthy: true}
}

func ids(s []Snapshot) []string {
	var out []string
	for _, x := range s {
		out = append(out, x.ID)
	}
	slices.Sort(out)
	return out
}

func TestSnapshotDue(t *testing.T) {
	p := SnapshotPolicy{RPO: time.Hour, Keep: 3, MaxAge: 24 * time.Hour}
	if !SnapshotDue(nil, p, t0) {
		t.Fatal("no snapshot: not due")
	}
	if SnapshotDue([]Snapshot{snap("a", 30*time.Minute, true)}, p, t0) {
		t.Fatal("due 30 minutes after the last one with an RPO of 1h")
	}
	// A pending one within the RPO counts: no second one is started.
	if SnapshotDue([]Snapshot{snap("a", time.Minute, false)}, p, t0) {
		t.Fatal("due while one is pending")
	}
	failed := snap("f", time.Minute, false)
	failed.Failed = true
	if !SnapshotDue([]Snapshot{failed, snap("a", 2*time.Hour, true)}, p, t0) {
		t.Fatal("a failed snapshot made the next one not due")
	}
}

func TestRetentionByCountAndAge(t *testing.T) {
	p := SnapshotPolicy{RPO: time.Hour, Keep: 3, MaxAge: 10 * time.Hour}
	snaps := []Snapshot{
		snap("h1", 1*time.Hour, true), snap("h2", 2*time.Hour, true), snap("h3", 3*time.Hour, true),
		snap("h4", 4*time.Hour, true), snap("h5", 5*time.Hour, true),
	}
	if got := ids(SnapshotsToDelete(snaps, p, t0)); !slices.Equal(got, []string{"h4", "h5"}) {
		t.Fatalf("by count: delete %v, want [h4 h5]", got)
	}
	old := []Snapshot{snap("n", time.Hour, true), snap("o1", 11*time.Hour, true), snap("o2", 12*time.Hour, true)}
	if got := ids(SnapshotsToDelete(old, p, t0)); !slices.Equal(got, []string{"o1", "o2"}) {
		t.Fatalf("by age: delete %v, want [o1 o2]", got)
	}
}

func TestRetentionKeepsTheNewestRestorePoint(t *testing.T) {
	p := SnapshotPolicy{RPO: time.Hour, Keep: 1, MaxAge: time.Hour}
	// The gateway has been sick for two days: its only snapshot is old,
	// and a newer one is still pending.
	snaps := []Snapshot{snap("pending", time.Minute, false), snap("old", 48*time.Hour, true)}
	if got := ids(SnapshotsToDelete(snaps, p, t0)); len(got) != 0 {
		t.Fatalf("deleted %v: the only restore point (and the pending one) must stay", got)
	}
	rp, ok := NewestRestorePoint(snaps)
	if !ok || rp.ID != "old" {
		t.Fatalf("restore point %v %v, want old", rp, ok)
	}
}

func TestRestorePointIsNewestHealthyAvailable(t *testing.T) {
	unhealthy := snap("u", time.Minute, true)
	unhealthy.Healthy = false
	snaps := []Snapshot{unhealthy, snap("p", 2*time.Minute, false), snap("good", time.Hour, true), snap("older", 2*time.Hour, true)}
	rp, ok := NewestRestorePoint(snaps)
	if !ok || rp.ID != "good" {
		t.Fatalf("restore point %v %v, want good", rp, ok)
	}
	if _, ok := NewestRestorePoint([]Snapshot{unhealthy}); ok {
		t.Fatal("an unhealthy snapshot was a restore point")
	}
}

func TestSnapshotPolicyValidate(t *testing.T) {
	for _, p := range []SnapshotPolicy{{RPO: 0, Keep: 1}, {RPO: time.Hour, Keep: 0}, {RPO: time.Hour, Keep: 1, MaxAge: -1}} {
		if p.Validate() == nil {
			t.Fatalf("%+v accepted", p)
		}
	}
}
