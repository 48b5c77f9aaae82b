package domain

import (
	"math/rand/v2"
	"time"
)

// Backoff is capped exponential backoff with jitter: each wait is the
// current interval less up to Jitter of it (jitter only shortens a wait,
// so Max is a real cap), then the interval grows by Multiplier up to Max.
// The zero value of the unexported state starts at Initial.
type Backoff struct {
	Initial    time.Duration
	Max        time.Duration
	Multiplier float64 // ≥ 1
	Jitter     float64 // 0…1: 0.5 spreads each wait over 50–100 % of the interval

	current time.Duration
}

// Next returns the next wait.
func (b *Backoff) Next() time.Duration {
	if b.current <= 0 {
		b.current = b.Initial
	}
	cur := float64(min(b.current, b.Max))
	wait := time.Duration(cur - b.Jitter*cur*rand.Float64())
	if float64(b.current) >= float64(b.Max)/b.Multiplier {
		b.current = b.Max
	} else {
		b.current = time.Duration(float64(b.current) * b.Multiplier)
	}
	return wait
}

// Reset starts again at Initial.
func (b *Backoff) Reset() { b.current = b.Initial }
