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
	// Nominal 1, 2, 4, 8, 8, 8 s with ±50 % jitter.
	nominal := []time.Duration{1, 2, 4, 8, 8, 8}
	for i, w := range waits {
		n := nominal[i] * time.Second
		if w < n/2 || w > n*3/2 {
			t.Errorf("wait %d = %v, want %v ± 50%%", i, w, n)
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
	if f || w > 1500*time.Millisecond || p.Failures() != 0 {
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
		if w := b.Next(); w < nominal/2 || w > nominal*3/2+1 {
			t.Fatalf("wait %d = %v, want %v ± 50%%", i, w, nominal)
		}
		nominal = min(time.Duration(float64(nominal)*1.5), 30*time.Second)
	}
	b.Reset()
	if w := b.Next(); w > 750*time.Millisecond {
		t.Fatalf("after Reset: %v", w)
	}
}
