package loginbudget

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Limits of one gateway's budget.
type Limits struct {
	// MaxFailures is how many failed or unanswered logins may fall in any
	// Window (default 2: the gateway locks at 5, and people log in too).
	MaxFailures int
	// Window is the gateway's lock window (default 30 minutes).
	Window time.Duration
	// MaxLoginTime: a login still pending after this has lost its answer
	// (or its process): it counts as failed, no longer as in flight
	// (default 2 minutes).
	MaxLoginTime time.Duration
}

// Defaults: the gateway locks its admin account for 30 minutes after 5
// failed logins; mediagw spends at most 2 of those in any 30 minutes.
const (
	DefaultMaxFailures = 2
	DefaultWindow      = 30 * time.Minute
	// maxRejected bounds the remembered rejected credentials (parameter
	// versions only grow, so old ones are never asked about again).
	maxRejected = 16
)

func (l Limits) withDefaults() Limits {
	if l.MaxFailures <= 0 {
		l.MaxFailures = DefaultMaxFailures
	}
	if l.Window <= 0 {
		l.Window = DefaultWindow
	}
	if l.MaxLoginTime <= 0 {
		l.MaxLoginTime = 2 * time.Minute
	}
	return l
}

// Credential names a password without revealing it: the SSM parameter it
// came from and that parameter's version ("/mediagw/gateways/gw-1/Password@3").
// A new version is a new credential, so a changed parameter is tried again.
type Credential string

// CredentialOf is the credential of version of parameter.
func CredentialOf(parameter string, version int64) Credential {
	return Credential(parameter + "@" + strconv.FormatInt(version, 10))
}

// Parameter is the parameter name part of c.
func (c Credential) Parameter() string {
	if i := strings.LastIndexByte(string(c), '@'); i >= 0 {
		return string(c)[:i]
	}
	return string(c)
}

// Result is what one login attempt came to.
type Result string

// Results. Pending is an attempt that has not reported yet: it counts as a
// failure until it does, so a process that dies mid-login, or an answer
// that never comes, is never a free attempt.
const (
	Pending    Result = "pending"
	Accepted   Result = "accepted"
	Rejected   Result = "rejected"
	Locked     Result = "locked"
	Unanswered Result = "unanswered"
	NotSent    Result = "not-sent"
)

// Attempt is one login a component made (or is making).
type Attempt struct {
	ID         string     `json:"id"`
	Credential Credential `json:"credential"`
	Component  string     `json:"component"`
	At         time.Time  `json:"at"`
	Result     Result     `json:"result"`
}

// Ledger is the durable state of one gateway's budget: recent attempts
// that count, the credentials the gateway refused, the last one it took,
// and a lock it reported or that is inferred.
type Ledger struct {
	Attempts   []Attempt    `json:"attempts,omitempty"`
	Rejected   []Credential `json:"rejected,omitempty"`
	Accepted   Credential   `json:"accepted,omitempty"`
	AcceptedAt time.Time    `json:"acceptedAt,omitzero"`
	// LockedUntil: no login before this. Set when the gateway reports a lock
	// (to what it said, or a whole window when it did not say).
	LockedUntil time.Time `json:"lockedUntil,omitzero"`
}

// Reason says why a login was refused.
type Reason string

// Reasons.
const (
	// ReasonRejected: the gateway refused this credential; it is not tried
	// again until its parameter changes.
	ReasonRejected Reason = "credentials-rejected"
	// ReasonBudgetSpent: MaxFailures failed or unanswered logins in the
	// window; the next is possible at Until.
	ReasonBudgetSpent Reason = "budget-spent"
	// ReasonLocked: the gateway is locked until Until.
	ReasonLocked Reason = "locked"
	// ReasonBusy: other logins are in flight and would spend the budget if
	// they failed; try again when they report (Budget.Begin waits).
	ReasonBusy Reason = "busy"
)

// Refusal is a login the budget does not allow.
type Refusal struct {
	Reason     Reason
	Credential Credential
	// Until is when a login may be possible again (zero for
	// ReasonRejected: when the parameter changes).
	Until time.Time
	// Failures is the number of failed or unanswered logins in Window.
	Failures int
	Window   time.Duration
}

// prune drops attempts older than the window and finished ones that do
// not count.
func (l *Ledger) prune(now time.Time, lim Limits) {
	l.Attempts = slices.DeleteFunc(l.Attempts, func(a Attempt) bool {
		return !a.At.Add(lim.Window).After(now) || a.Result == Accepted || a.Result == NotSent
	})
	if len(l.Rejected) > maxRejected {
		l.Rejected = l.Rejected[len(l.Rejected)-maxRejected:]
	}
	if !l.LockedUntil.After(now) {
		l.LockedUntil = time.Time{}
	}
}

// counts splits the attempts in the window into failed ones (a pending
// one past MaxLoginTime included) and ones in flight; oldestFailed and
// oldestPending are the earliest of each.
func (l Ledger) counts(now time.Time, lim Limits) (failed, pending int, oldestFailed, oldestPending time.Time) {
	for _, a := range l.Attempts {
		if !a.At.Add(lim.Window).After(now) || a.Result == Accepted || a.Result == NotSent {
			continue
		}
		if a.Result == Pending && a.At.Add(lim.MaxLoginTime).After(now) {
			pending++
			if oldestPending.IsZero() || a.At.Before(oldestPending) {
				oldestPending = a.At
			}
			continue
		}
		failed++
		if oldestFailed.IsZero() || a.At.Before(oldestFailed) {
			oldestFailed = a.At
		}
	}
	return
}

// Failures counts the attempts in the window that failed, were not
// answered, or have not reported yet.
func (l Ledger) Failures(now time.Time, lim Limits) int {
	failed, pending, _, _ := l.counts(now, lim.withDefaults())
	return failed + pending
}

// Check says whether a login with cred may start now; nil means yes.
func (l Ledger) Check(cred Credential, now time.Time, lim Limits) *Refusal {
	lim = lim.withDefaults()
	failed, pending, oldestFailed, oldestPending := l.counts(now, lim)
	ref := func(r Reason, until time.Time) *Refusal {
		return &Refusal{Reason: r, Credential: cred, Until: until, Failures: failed, Window: lim.Window}
	}
	switch {
	case l.LockedUntil.After(now):
		return ref(ReasonLocked, l.LockedUntil)
	case slices.Contains(l.Rejected, cred):
		return ref(ReasonRejected, time.Time{})
	case failed >= lim.MaxFailures:
		// Free again when the oldest failure leaves the window.
		return ref(ReasonBudgetSpent, oldestFailed.Add(lim.Window))
	case failed+pending >= lim.MaxFailures,
		// A credential the gateway has not accepted yet is tried by one
		// login at a time: 64 recorders with a wrong password cost one.
		pending > 0 && cred != l.Accepted:
		return ref(ReasonBusy, oldestPending.Add(lim.MaxLoginTime))
	}
	return nil
}

// Begin records a pending attempt with cred, or refuses it.
func (l *Ledger) Begin(id string, cred Credential, component string, now time.Time, lim Limits) *Refusal {
	lim = lim.withDefaults()
	l.prune(now, lim)
	if slices.ContainsFunc(l.Attempts, func(a Attempt) bool { return a.ID == id }) {
		// Our own write went through although its answer was lost (the
		// conditional retry then saw a conflict): already admitted.
		return nil
	}
	if r := l.Check(cred, now, lim); r != nil {
		return r
	}
	l.Attempts = append(l.Attempts, Attempt{ID: id, Credential: cred, Component: component, At: now, Result: Pending})
	return nil
}

// Finish records what attempt id came to. lockLeft is what the gateway
// said about a lock (0: it did not say). Finishing an unknown or already
// finished attempt changes nothing.
func (l *Ledger) Finish(id string, r Result, lockLeft time.Duration, now time.Time, lim Limits) {
	lim = lim.withDefaults()
	i := slices.IndexFunc(l.Attempts, func(a Attempt) bool { return a.ID == id })
	if i < 0 || l.Attempts[i].Result != Pending {
		return
	}
	a := &l.Attempts[i]
	a.Result = r
	switch r {
	case Accepted:
		l.Accepted, l.AcceptedAt = a.Credential, now
		l.Rejected = slices.DeleteFunc(l.Rejected, func(c Credential) bool { return c == a.Credential })
	case Rejected:
		if !slices.Contains(l.Rejected, a.Credential) {
			l.Rejected = append(l.Rejected, a.Credential)
		}
		if l.Accepted == a.Credential {
			l.Accepted, l.AcceptedAt = "", time.Time{}
		}
	case Locked:
		// Probed at most once per lock window: without a word from the
		// gateway on how long, assume a whole window.
		until := now.Add(lim.Window)
		if lockLeft > 0 {
			until = now.Add(lockLeft)
		}
		if until.After(l.LockedUntil) {
			l.LockedUntil = until
		}
	}
	l.prune(now, lim)
}

// String describes a refusal for people (no secret in it: credentials are
// parameter names and versions).
func (r *Refusal) String() string {
	switch r.Reason {
	case ReasonRejected:
		return fmt.Sprintf("the gateway rejected the password of %s; it is not tried again until the parameter changes", r.Credential)
	case ReasonBudgetSpent:
		return fmt.Sprintf("%d failed or unanswered logins in the last %s (the login budget); no login before %s",
			r.Failures, r.Window, r.Until.UTC().Format(time.RFC3339))
	case ReasonLocked:
		return fmt.Sprintf("the gateway is locked after failed logins; no login before %s", r.Until.UTC().Format(time.RFC3339))
	case ReasonBusy:
		return "other logins to the gateway are in flight; waiting for them"
	}
	return string(r.Reason)
}

// Forget drops cred from the rejected credentials: the configurator has
// just set the gateway's password to it, so an earlier rejection (of the
// same value, tried before the gateway had it) no longer holds.
func (l *Ledger) Forget(cred Credential) {
	l.Rejected = slices.DeleteFunc(l.Rejected, func(c Credential) bool { return c == cred })
}

// Record adds a finished attempt that was not admitted through Begin: a
// rejection or lock the gateway answered to a request riding on an
// accepted login (the password changed behind the component's back). It
// counts like any other.
func (l *Ledger) Record(id string, cred Credential, component string, r Result, lockLeft time.Duration, now time.Time, lim Limits) {
	lim = lim.withDefaults()
	l.prune(now, lim)
	l.Attempts = append(l.Attempts, Attempt{ID: id, Credential: cred, Component: component, At: now, Result: Pending})
	l.Finish(id, r, lockLeft, now, lim)
}
