package domain

import (
	"slices"
	"testing"
	"time"
)

func TestDropVictimsOldestFirstNeverBusy(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 0, 0, 0, time.UTC)
	q := func(sec int, busy bool) Queued {
		return Queued{Segment: Segment{Start: t0.Add(time.Duration(sec) * time.Second), Size: 100}, Busy: busy}
	}
	queue := []Queued{q(3, false), q(0, true), q(1, false), q(2, false)}
	if got := DropVictims(queue, 400, 400); got != nil {
		t.Fatalf("within the bound: dropped %v", got)
	}
	// 400 bytes over a 250 bound: two go, the oldest not being uploaded.
	if got := DropVictims(queue, 400, 250); !slices.Equal(got, []int{2, 3}) {
		t.Fatalf("dropped %v, want [2 3] (+1 s and +2 s; +0 s is busy)", got)
	}
	// Everything busy: nothing can go.
	if got := DropVictims([]Queued{q(0, true)}, 100, 0); len(got) != 0 {
		t.Fatalf("dropped a busy segment: %v", got)
	}
}
