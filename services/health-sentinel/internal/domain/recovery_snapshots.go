package domain

// The snapshot schedule's rules: when a gateway's next snapshot is due and
// which snapshots the retention lets go.

import (
	"fmt"
	"slices"
	"time"
)

// Snapshot is one restore point of a gateway's instance (an image and the
// volume snapshots behind it).
type Snapshot struct {
	ID         string
	GatewayID  string
	InstanceID string
	Created    time.Time
	// Available: complete and usable for a replacement (not pending, not failed).
	Available bool
	// Failed: the snapshot will never become available.
	Failed bool
	// Healthy: it was taken while the gateway was healthy (every snapshot
	// the schedule takes is; one without the tag is never used).
	Healthy bool
}

// SnapshotPolicy is the schedule: one snapshot per RPO, kept by count and
// age.
type SnapshotPolicy struct {
	RPO    time.Duration // at most this much of the gateway's state is lost in a replacement
	Keep   int           // the newest Keep snapshots are kept...
	MaxAge time.Duration // ...unless older than MaxAge (0: no age limit)
}

// Validate says what is wrong with p.
func (p SnapshotPolicy) Validate() error {
	if p.RPO <= 0 {
		return fmt.Errorf("snapshot RPO must be positive, got %s", p.RPO)
	}
	if p.Keep < 1 {
		return fmt.Errorf("snapshots kept must be at least 1, got %d", p.Keep)
	}
	if p.MaxAge < 0 {
		return fmt.Errorf("snapshot max age must not be negative, got %s", p.MaxAge)
	}
	return nil
}

// newestFirst sorts snapshots newest first (ties by id, for a stable order).
func newestFirst(snaps []Snapshot) []Snapshot {
	out := slices.Clone(snaps)
	slices.SortFunc(out, func(a, b Snapshot) int {
		if c := b.Created.Compare(a.Created); c != 0 {
			return c
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
	return out
}

// NewestRestorePoint is the snapshot a replacement starts from: the newest
// available one taken while the gateway was healthy.
func NewestRestorePoint(snaps []Snapshot) (Snapshot, bool) {
	for _, s := range newestFirst(snaps) {
		if s.Available && s.Healthy && !s.Failed {
			return s, true
		}
	}
	return Snapshot{}, false
}

// SnapshotDue says whether a new snapshot should be taken at now: none was
// taken (or is being taken) within the RPO. A failed one does not count.
func SnapshotDue(snaps []Snapshot, p SnapshotPolicy, now time.Time) bool {
	for _, s := range snaps {
		if !s.Failed && now.Sub(s.Created) < p.RPO {
			return false
		}
	}
	return true
}

// SnapshotsToDelete lists what the retention lets go at now: failed ones,
// those beyond the newest Keep, and those older than MaxAge — but never the
// newest restore point, so a gateway that stays sick (and so gets no new
// snapshot) keeps one to be replaced from; and never one still pending
// among the newest Keep.
func SnapshotsToDelete(snaps []Snapshot, p SnapshotPolicy, now time.Time) []Snapshot {
	keepRP, hasRP := NewestRestorePoint(snaps)
	var del []Snapshot
	kept := 0
	for _, s := range newestFirst(snaps) {
		if hasRP && s.ID == keepRP.ID {
			kept++
			continue
		}
		switch {
		case s.Failed:
			del = append(del, s)
		case kept >= p.Keep:
			del = append(del, s)
		case p.MaxAge > 0 && now.Sub(s.Created) > p.MaxAge && s.Available:
			del = append(del, s)
		default:
			kept++
		}
	}
	return del
}
