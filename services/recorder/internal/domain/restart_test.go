package domain

import (
	"testing"
	"time"
)

func TestBackoffGrowsCapsAndResets(t *testing.T) {
	p := NewRestartPolicy(time.Second, 8*time.Second, time.Minute, 3)
	var waits []time.Duration
	var failing []bool
	for i := 0; i < 6; i++ {
		w, f := p.RunEnded(2*time.Second, 0)
		waits = append(waits, w)
		failing = append(failing, f)
	}
	// Nominal 1, 2, 4, 8, 8, 8 s, jitter only below: the cap is a cap.
	nominal := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, w := range waits {
		n := nominal[i] * time.Second
		if w < n/2 || w > n {
			t.Errorf("wait %d = %v, want %v − up to 50%%", i, w, n)
		}
	}
	for i, f := range failing {
		if f != (i >= 2) {
			t.Errorf("after %d failed runs failing=%v", i+1, f)
		}
	}
	// A run that produced segments but was short is not healthy.
	if w, f := p.RunEnded(10*time.Second, 1); !f || w < 4*time.Second {
		t.Errorf("short run: wait %v failing %v", w, f)
	}
	// A healthy run resets the wait and the failure count.
	w, f := p.RunEnded(2*time.Minute, 3)
	if f || w > time.Second || p.Failures() != 0 {
		t.Errorf("after a healthy run: wait %v failing %v failures %d", w, f, p.Failures())
	}
}

func TestNoSegmentsIsNeverHealthy(t *testing.T) {
	p := NewRestartPolicy(time.Second, time.Minute, time.Minute, 2)
	p.RunEnded(time.Hour, 0)
	if _, f := p.RunEnded(time.Hour, 0); !f {
		t.Fatal("two long runs without a segment should count as failing")
	}
}

func TestBackoffGrowsByItsMultiplier(t *testing.T) {
	b := Backoff{Initial: 500 * time.Millisecond, Max: 30 * time.Second, Multiplier: 1.5, Jitter: 0.5}
	nominal := 500 * time.Millisecond
	for i := 0; i < 15; i++ {
		if w := b.Next(); w < nominal/2 || w > nominal {
			t.Fatalf("wait %d = %v, want %v − up to 50%%", i, w, nominal)
		}
		nominal = min(time.Duration(float64(nominal)*1.5), 30*time.Second)
	}
	b.Reset()
	if w := b.Next(); w > 500*time.Millisecond {
		t.Fatalf("after Reset: %v", w)
	}
}

// The cap holds for every wait, whatever the jitter draws (the issue: a
// 1 m cap waited 1 m 29.8 s).
func TestBackoffNeverExceedsItsCap(t *testing.T) {
	b := Backoff{Initial: time.Second, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.5}
	for i := 0; i < 1000; i++ {
		if w := b.Next(); w > 5*time.Second || w <= 0 {
			t.Fatalf("wait %d = %v, cap 5s", i, w)
		}
	}
	// An initial interval above the cap is capped too.
	b = Backoff{Initial: time.Minute, Max: 5 * time.Second, Multiplier: 2, Jitter: 0.5}
	if w := b.Next(); w > 5*time.Second {
		t.Fatalf("first wait %v above the cap", w)
	}
}

// A segment from a failing stream clears its failure count at once.
func TestSegmentWrittenClearsFailures(t *testing.T) {
	p := NewRestartPolicy(time.Second, 5*time.Second, time.Minute, 2)
	p.RunEnded(time.Second, 0)
	if _, f := p.RunEnded(time.Second, 0); !f {
		t.Fatal("not failing after two failed runs")
	}
	p.SegmentWritten()
	if p.Failures() != 0 {
		t.Fatalf("failures %d after a segment", p.Failures())
	}
	if _, f := p.RunEnded(10*time.Second, 1); f {
		t.Fatal("one short run after a segment counts as failing again")
	}
}
