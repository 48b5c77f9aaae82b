package domain

import "time"

// RestartPolicy decides when a channel's ffmpeg is started again after it
// exits: capped exponential backoff that is reset by a healthy run, and the
// point at which a stream counts as failing. It is not safe for concurrent
// use; each channel has its own.
type RestartPolicy struct {
	backoff      Backoff
	healthyAfter time.Duration
	failingAfter int
	failures     int
}

// NewRestartPolicy: waits start at initial and double up to max (with
// jitter of up to 50 % below the interval, so that many channels of one
// gateway do not restart in step; never above max). A run that lasted healthyAfter and produced a segment
// resets them. After failingAfter unhealthy runs in a row the stream
// counts as failing. Waits never stop growing into a give-up: cameras
// come back.
func NewRestartPolicy(initial, max, healthyAfter time.Duration, failingAfter int) *RestartPolicy {
	if failingAfter < 1 {
		failingAfter = 1
	}
	return &RestartPolicy{
		backoff:      Backoff{Initial: initial, Max: max, Multiplier: 2, Jitter: 0.5},
		healthyAfter: healthyAfter, failingAfter: failingAfter,
	}
}

// RunEnded records how a run went and returns how long to wait before the
// next start and whether the stream is now failing.
func (p *RestartPolicy) RunEnded(ranFor time.Duration, segments int) (wait time.Duration, failing bool) {
	if segments > 0 && ranFor >= p.healthyAfter {
		p.failures = 0
		p.backoff.Reset()
	} else {
		p.failures++
	}
	return p.backoff.Next(), p.failures >= p.failingAfter
}

// SegmentWritten records that the current run produced a segment: the
// stream is not failing any more (the waits stay grown until a healthy
// run).
func (p *RestartPolicy) SegmentWritten() { p.failures = 0 }

// Failures is the number of unhealthy runs in a row.
func (p *RestartPolicy) Failures() int { return p.failures }
