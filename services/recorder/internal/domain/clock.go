package domain

import "time"

// Clock maps one ffmpeg run's stream time (seconds since the first packet,
// as the segment list reports it) to wall-clock time.
//
// The anchor is the wall time at which the first media packet of the run
// arrived; stream time advances with the camera's clock after that, so every
// segment of a run is placed by the same anchor and consecutive segments
// line up exactly. The camera clock drifts against ours (tens of ppm: a
// second within hours), so Observe compares each entry's stream end with
// the moment the entry was seen. That difference is the pipeline's latency
// (tens of ms for stream copy, most of a second when transcoding) plus the
// drift; the latency is learnt from the first entries (their minimum: a
// probing backlog only adds), and the anchor is moved once the drift beyond
// it exceeds the tolerance on several entries in a row. A single late entry
// (a network hiccup) moves nothing.
type Clock struct {
	anchor    time.Time
	tolerance time.Duration
	confirm   int
	latency   time.Duration
	learnt    int
	pending   []time.Duration
}

// Default drift handling: learn the latency from three entries, move the
// anchor when three entries in a row are more than half a second off.
const (
	DefaultSkewTolerance = 500 * time.Millisecond
	DefaultSkewConfirm   = 3
)

// NewClock returns a clock whose stream time zero is anchor.
func NewClock(anchor time.Time, tolerance time.Duration, confirm int) *Clock {
	if confirm < 1 {
		confirm = 1
	}
	return &Clock{anchor: anchor, tolerance: tolerance, confirm: confirm}
}

// Anchor is the wall time of stream time zero.
func (c *Clock) Anchor() time.Time { return c.anchor }

// Span places a list entry in wall-clock time, both ends truncated to the
// millisecond, so the duration of one entry plus its start is the start of
// the next entry exactly.
func (c *Clock) Span(e ListEntry) (start time.Time, dur time.Duration) {
	start = c.anchor.Add(StreamDuration(e.Start)).Truncate(time.Millisecond)
	end := c.anchor.Add(StreamDuration(e.End)).Truncate(time.Millisecond)
	return start, end.Sub(start)
}

// Observe takes an entry and the time it was read (ffmpeg writes it as
// soon as the packet that ends the segment has gone through). It returns
// the drift: how much later than expected (after the learnt latency) the
// entry was seen, and how far the anchor was moved, if it was.
func (c *Clock) Observe(e ListEntry, seen time.Time) (drift, moved time.Duration) {
	skew := seen.Sub(c.anchor.Add(StreamDuration(e.End)))
	if c.learnt < c.confirm {
		if c.learnt == 0 || skew < c.latency {
			c.latency = skew
		}
		c.learnt++
		return 0, 0
	}
	drift = skew - c.latency
	if drift <= c.tolerance && drift >= -c.tolerance {
		c.pending = c.pending[:0]
		return drift, 0
	}
	if len(c.pending) > 0 && (c.pending[0] > 0) != (drift > 0) {
		c.pending = c.pending[:0]
	}
	c.pending = append(c.pending, drift)
	if len(c.pending) < c.confirm {
		return drift, 0
	}
	// The smallest of the confirming drifts is the least affected by delays.
	moved = c.pending[0]
	for _, s := range c.pending[1:] {
		if abs(s) < abs(moved) {
			moved = s
		}
	}
	c.anchor = c.anchor.Add(moved)
	c.pending = c.pending[:0]
	return drift, moved
}

func abs(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}
