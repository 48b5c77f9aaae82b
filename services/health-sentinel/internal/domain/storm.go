package domain

import "time"

// Storm is a gateway's mail count in its current window (the storm limit:
// at most Limit mails per gateway per window; the rest go into one digest).
type Storm struct {
	Gateway     string    `json:"gateway"`
	WindowStart time.Time `json:"window_start"`
	Sent        int       `json:"sent"`
	// Digest are the lines of the mails held back, sent as one digest at
	// DigestDue (the end of the window the first of them fell in).
	Digest    []string  `json:"digest,omitempty"`
	DigestDue time.Time `json:"digest_due,omitzero"`
	Version   int64     `json:"-"`
}

// Admit counts one mail at now: ok when it may go out, otherwise line is
// kept for the digest.
func (s Storm) Admit(now time.Time, limit int, window time.Duration, line string) (Storm, bool) {
	if s.WindowStart.IsZero() || !now.Before(s.WindowStart.Add(window)) {
		s.WindowStart, s.Sent = now, 0
	}
	if s.Sent < limit {
		s.Sent++
		return s, true
	}
	s.Digest = append(append([]string(nil), s.Digest...), line)
	if s.DigestDue.IsZero() {
		s.DigestDue = s.WindowStart.Add(window)
	}
	return s, false
}

// DigestReady reports whether a digest is owed at now.
func (s Storm) DigestReady(now time.Time) bool {
	return len(s.Digest) > 0 && !now.Before(s.DigestDue)
}

// TakeDigest empties the digest (its lines are returned to be mailed).
func (s Storm) TakeDigest() (Storm, []string) {
	lines := s.Digest
	s.Digest, s.DigestDue = nil, time.Time{}
	return s, lines
}
