package gatewaysim

import (
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// LoginFaults change how the gateway answers logins, on ISAPI and RTSP
// alike. They are authentication behaviours of a gateway's firmware rather
// than per-request faults (Fault fires after authentication), so they are
// set as a whole: Config.LoginFaults at start, SetLoginFaults or
// PUT /admin/login-faults later. The zero value is the well-behaved gateway.
//
// A failed login is a request carrying credentials that the gateway refuses:
// wrong credentials (counted toward the lockout) or any credentials while the
// source IP is locked. Requests without credentials (the challenge round
// trip) and a right Digest on an expired nonce (stale) are not failed logins
// and are always answered at once.
type LoginFaults struct {
	// Lost401: a failed login gets no answer; the gateway reads the request
	// and closes the connection. It is still recorded and counted.
	Lost401 bool `json:"lost401,omitempty"`
	// Late401 holds the 401 to a failed login back this long (with Lost401:
	// the close). The login is recorded when the request arrives.
	Late401 time.Duration `json:"-"`
	// NoLockFields: ISAPI 401 answers carry no body at all, so no
	// lockStatus, retryTimes or resLockTime (as older firmware does); the
	// lockout still happens. RTSP 401s never carry a body.
	NoLockFields bool `json:"noLockFields,omitempty"`
	// BasicOnly: the challenge is `Basic realm="…"` alone and only Basic
	// credentials are accepted (Digest credentials are a failed login), on
	// ISAPI and RTSP. It overrides Config.AllowBasic.
	BasicOnly bool `json:"basicOnly,omitempty"`
}

// MarshalJSON writes Late401 as a Go duration string.
func (f LoginFaults) MarshalJSON() ([]byte, error) {
	type plain LoginFaults
	w := struct {
		plain
		Late401 string `json:"late401,omitempty"`
	}{plain: plain(f)}
	if f.Late401 > 0 {
		w.Late401 = f.Late401.String()
	}
	return json.Marshal(w)
}

// UnmarshalJSON accepts late401 as "12s" or a number of seconds.
func (f *LoginFaults) UnmarshalJSON(b []byte) error {
	type plain LoginFaults
	var w struct {
		plain
		Late401 json.RawMessage `json:"late401"`
	}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	d, err := parseJSONDuration(w.Late401)
	if err != nil {
		return fmt.Errorf("late401: %w", err)
	}
	*f = LoginFaults(w.plain)
	f.Late401 = d
	return nil
}

func (f LoginFaults) validate() error {
	if f.Late401 < 0 {
		return fmt.Errorf("gatewaysim: negative late401")
	}
	return nil
}

// answer is how a failed login is answered under f.
func (f LoginFaults) answer() string {
	switch {
	case f.Lost401:
		return AnswerLost
	case f.Late401 > 0:
		return AnswerLate
	default:
		return AnswerUnauthorized
	}
}

// Protocols of a FailedLogin.
const (
	ProtocolISAPI = "isapi"
	ProtocolRTSP  = "rtsp"
)

// Answers of a FailedLogin.
const (
	AnswerUnauthorized = "401"     // a 401 at once
	AnswerLate         = "late401" // a 401 after LoginFaults.Late401
	AnswerLost         = "lost"    // no answer, the connection closed
)

// FailedLogin is one failed login the gateway saw.
type FailedLogin struct {
	// Time is when the request arrived, on the gateway's clock (Config.Now).
	Time     time.Time `json:"time"`
	IP       string    `json:"ip"`       // source IP
	Protocol string    `json:"protocol"` // ProtocolISAPI or ProtocolRTSP
	User     string    `json:"user"`     // the user name in the credentials ("" if unreadable)
	// Request is "METHOD /path" (no query, no user info).
	Request string `json:"request"`
	// Locked: refused because the source IP was locked; the credentials did
	// not count (they may even have been right).
	Locked bool `json:"locked,omitempty"`
	// Locks: this failure locked the source IP.
	Locks  bool   `json:"locks,omitempty"`
	Answer string `json:"answer"` // AnswerUnauthorized, AnswerLate or AnswerLost
}

// LoginLedger is a list of failed logins, oldest first.
type LoginLedger []FailedLogin

// maxLedger bounds the ledger of a long-running simulator; the oldest
// records go first and Counters.LoginFailuresDropped counts them.
const maxLedger = 10000

// ByIP keeps the records of one source IP.
func (l LoginLedger) ByIP(ip string) LoginLedger {
	return l.filter(func(f FailedLogin) bool { return f.IP == ip })
}

// ByProtocol keeps the records of one protocol (ProtocolISAPI, ProtocolRTSP).
func (l LoginLedger) ByProtocol(p string) LoginLedger {
	return l.filter(func(f FailedLogin) bool { return f.Protocol == p })
}

// Since keeps the records at or after t.
func (l LoginLedger) Since(t time.Time) LoginLedger {
	return l.filter(func(f FailedLogin) bool { return !f.Time.Before(t) })
}

func (l LoginLedger) filter(keep func(FailedLogin) bool) LoginLedger {
	out := LoginLedger{}
	for _, f := range l {
		if keep(f) {
			out = append(out, f)
		}
	}
	return out
}

// CountByIP is the number of records per source IP.
func (l LoginLedger) CountByIP() map[string]int {
	m := map[string]int{}
	for _, f := range l {
		m[f.IP]++
	}
	return m
}

// MaxInWindow is the largest number of records within any window of length
// d (records at t and t+d are not in one window), e.g. to assert "at most 2
// failed logins in any 30 minutes".
func (l LoginLedger) MaxInWindow(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	times := make([]time.Time, len(l))
	for i, f := range l {
		times[i] = f.Time
	}
	slices.SortFunc(times, func(a, b time.Time) int { return a.Compare(b) })
	best, lo := 0, 0
	for hi := range times {
		for !times[hi].Before(times[lo].Add(d)) {
			lo++
		}
		best = max(best, hi-lo+1)
	}
	return best
}

// SetLoginFaults replaces the login faults; they apply to requests that
// arrive from now on.
func (s *Server) SetLoginFaults(f LoginFaults) error {
	if err := f.validate(); err != nil {
		return err
	}
	s.loginFaults.Store(&f)
	s.log.Info("login faults set", "lost401", f.Lost401, "late401", f.Late401, "noLockFields", f.NoLockFields, "basicOnly", f.BasicOnly)
	return nil
}

// LoginFaults returns the login faults in force.
func (s *Server) LoginFaults() LoginFaults {
	if f := s.loginFaults.Load(); f != nil {
		return *f
	}
	return LoginFaults{}
}

// LoginFailures is the ledger of failed logins (ISAPI and RTSP) since the
// start or the last ResetCounters, oldest first.
func (s *Server) LoginFailures() LoginLedger { return s.Counters().LoginFailures }

// loginAttempt is a request that needs authentication, as the gateway's
// account policy sees it; both protocols go through login.
type loginAttempt struct {
	ip, protocol, user, request string
	presented                   bool        // the request carried credentials
	outcome                     authOutcome // of the credentials check: authOK, authChallenge, authStale or authFailed
}

// login applies the per-source-IP lockout shared by ISAPI and RTSP to one
// attempt and records a failed login in the counters and the ledger before
// it is answered. It returns the verdict and whether the login failed.
func (s *Server) login(at loginAttempt, lf LoginFaults, now time.Time) (authVerdict, bool) {
	v := s.auth.settle(at.ip, at.outcome, now)
	failed := v.outcome == authFailed || v.outcome == authLocked && at.presented
	if !failed {
		return v, false
	}
	rec := FailedLogin{
		Time: now, IP: at.ip, Protocol: at.protocol, User: at.user, Request: at.request,
		Locked: v.outcome == authLocked, Locks: v.outcome == authFailed && v.locked, Answer: lf.answer(),
	}
	s.st.update(func(st *state) {
		if v.outcome == authFailed {
			st.counters.FailedLogins[at.ip]++
		}
		if rec.Locks {
			st.counters.Lockouts[at.ip]++
		}
		if len(st.counters.LoginFailures) >= maxLedger {
			st.counters.LoginFailures = slices.Delete(st.counters.LoginFailures, 0, 1)
			st.counters.LoginFailuresDropped++
		}
		st.counters.LoginFailures = append(st.counters.LoginFailures, rec)
	})
	s.log.Info("failed login", "ip", at.ip, "protocol", at.protocol, "request", at.request,
		"locked", rec.Locked, "locks", rec.Locks, "answer", rec.Answer)
	return v, true
}
