// Package restart decides when a channel's ffmpeg is started again after it
// exits: capped exponential backoff that is reset by a healthy run, and the
// point at which a stream counts as failing.
package restart

import (
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy is not safe for concurrent use; each channel has its own.
type Policy struct {
	backoff      *backoff.ExponentialBackOff
	healthyAfter time.Duration
	failingAfter int
	failures     int
}

// NewPolicy: waits start at initial and double up to max (with ±50 %
// jitter so many channels of one gateway do not restart in step). A run
// that lasted healthyAfter and produced a segment resets them. After
// failingAfter unhealthy runs in a row the stream counts as failing.
func NewPolicy(initial, max, healthyAfter time.Duration, failingAfter int) *Policy {
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(initial),
		backoff.WithMaxInterval(max),
		backoff.WithMultiplier(2),
		backoff.WithRandomizationFactor(0.5),
		backoff.WithMaxElapsedTime(0), // never stop: cameras come back
	)
	if failingAfter < 1 {
		failingAfter = 1
	}
	return &Policy{backoff: b, healthyAfter: healthyAfter, failingAfter: failingAfter}
}

// RunEnded records how a run went and returns how long to wait before the
// next start and whether the stream is now failing.
func (p *Policy) RunEnded(ranFor time.Duration, segments int) (wait time.Duration, failing bool) {
	if segments > 0 && ranFor >= p.healthyAfter {
		p.failures = 0
		p.backoff.Reset()
	} else {
		p.failures++
	}
	return p.backoff.NextBackOff(), p.failures >= p.failingAfter
}

// Failures is the number of unhealthy runs in a row.
func (p *Policy) Failures() int { return p.failures }
