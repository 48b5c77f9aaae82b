package app

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"mediagw/pkg/loginbudget"
)

// Logins to the gateway: every one goes through the shared login budget,
// and once the budget refuses the credential or the gateway rejects it,
// the recorder stops logging in (its channels wait, ffmpeg is not
// restarted) until the password parameter has a new version or the
// budget allows the credential again. Nothing retries the same rejected
// password after a while.

// loginStop says why logins stopped.
type loginStop struct {
	cred   loginbudget.Credential
	reason loginbudget.Reason
	detail string // the budget's words; credentials are names, never values
}

// logins is the recorder's login state, shared by its channels.
type logins struct {
	mu      sync.Mutex
	stop    *loginStop    // nil: logins go on
	changed chan struct{} // closed and replaced at every transition
	// authFailed is the last authentication problem a channel's relay
	// reported, so that it is logged once, not at every restart.
	authFailed map[string]string
}

func newLogins() *logins {
	return &logins{changed: make(chan struct{}), authFailed: map[string]string{}}
}

// state is the current stop (nil: logins go on) and a channel closed at
// the next transition.
func (l *logins) state() (*loginStop, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.stop, l.changed
}

func (l *logins) stopped() *loginStop {
	st, _ := l.state()
	return st
}

// set makes st the state and says whether that is a transition.
func (l *logins) set(st *loginStop) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case st == nil && l.stop == nil:
		return false
	case st != nil && l.stop != nil && st.cred == l.stop.cred && st.reason == l.stop.reason:
		return false
	}
	l.stop = st
	close(l.changed)
	l.changed = make(chan struct{})
	return true
}

// version is the parameter version part of a credential.
func version(c loginbudget.Credential) string {
	return strings.TrimPrefix(string(c), c.Parameter()+"@")
}

// noPassword names the credential of a user without a password parameter.
func noPassword(user string) loginbudget.Credential {
	return loginbudget.CredentialOf("(no password parameter; user "+user+")", 0)
}

// loginFunc is the relays' Login (nil when the streams need no credentials).
func (r *Recorder) loginFunc() func(context.Context) (*Login, error) {
	if r.d.Password == nil && r.cfg.RTSPUser == "" {
		return nil
	}
	return r.login
}

// login admits one login: refused at once while logins are stopped,
// otherwise through the budget (which records it as pending before it is
// sent); its Finish records the result and stops logins on a rejection.
func (r *Recorder) login(ctx context.Context) (*Login, error) {
	if st := r.logins.stopped(); st != nil {
		return nil, fmt.Errorf("gateway %s: login not attempted: logins are stopped (%s: %s): %w", r.cfg.Gateway, st.reason, st.detail, loginbudget.ErrRefused)
	}
	password, cred, err := r.password(ctx)
	if err != nil {
		return nil, err
	}
	att, err := r.begin(ctx, cred)
	if err != nil {
		var re *loginbudget.RefusedError
		if errors.As(err, &re) && re.Reason != loginbudget.ReasonBusy {
			r.stopLogins(cred, re.Reason, re.Refusal.String())
		}
		return nil, err
	}
	var once, refused sync.Once
	return &Login{User: r.cfg.RTSPUser, Password: password, Refused: func(ctx context.Context) {
		refused.Do(func() {
			r.stopLogins(cred, loginbudget.ReasonRejected, "the gateway refused the password on a connection that had logged in with it")
			if err := r.d.Budget.Record(ctx, r.cfg.Gateway, cred, loginbudget.Rejected); err != nil {
				r.log.Warn("login budget: a rejection could not be recorded", "err", err)
			}
		})
	}, Finish: func(ctx context.Context, res loginbudget.Result) {
		once.Do(func() {
			// Stop first, so that the channel whose ffmpeg the relay
			// is about to end finds logins stopped.
			if res == loginbudget.Rejected {
				r.stopLogins(cred, loginbudget.ReasonRejected, "the gateway rejected the password")
			}
			if err := att.Finish(ctx, res); err != nil {
				r.log.Warn("login budget: the result of a login could not be recorded; it counts as failed", "result", string(res), "err", err)
			}
			if res == loginbudget.Accepted {
				r.resumeLogins(cred, "the gateway accepted the password")
				r.logins.mu.Lock()
				clear(r.logins.authFailed)
				r.logins.mu.Unlock()
			}
		})
	}}, nil
}

// begin records a pending login with cred. The budget waits while other
// logins are in flight (reading only, so ffmpeg may give up meanwhile at
// no cost) and writes the pending attempt with a context the session's
// end cannot cut short: an attempt admitted for a session that has gone
// is finished as not sent there, never left pending.
func (r *Recorder) begin(ctx context.Context, cred loginbudget.Credential) (LoginAttempt, error) {
	return r.d.Budget.Begin(ctx, r.cfg.Gateway, cred)
}

func (r *Recorder) password(ctx context.Context) (string, loginbudget.Credential, error) {
	if r.d.Password == nil {
		return "", noPassword(r.cfg.RTSPUser), nil
	}
	return r.d.Password.Get(ctx)
}

// stopLogins stops every login with a log line and the metric, once per
// transition.
func (r *Recorder) stopLogins(cred loginbudget.Credential, reason loginbudget.Reason, detail string) {
	if !r.logins.set(&loginStop{cred: cred, reason: reason, detail: detail}) {
		return
	}
	r.m.CredentialsRejected(string(reason))
	r.log.Error("credentials rejected: no login to the gateway, no recording, until the password parameter changes or the login budget allows it again",
		"gateway", r.cfg.Gateway, "parameter", cred.Parameter(), "version", version(cred), "reason", string(reason), "detail", detail)
}

// resumeLogins lets logins go on again.
func (r *Recorder) resumeLogins(cred loginbudget.Credential, why string) {
	if !r.logins.set(nil) {
		return
	}
	r.m.CredentialsRejected("")
	r.log.Info("credentials usable again: recording resumes", "gateway", r.cfg.Gateway, "parameter", cred.Parameter(), "version", version(cred), "why", why)
}

// authFailed logs, once per channel and problem, why a relay ended a
// connection over authentication it will not do.
func (r *Recorder) authFailed(ch string, err error) {
	r.logins.mu.Lock()
	seen := r.logins.authFailed[ch] == err.Error()
	r.logins.authFailed[ch] = err.Error()
	r.logins.mu.Unlock()
	if seen {
		r.log.Debug("rtsp authentication refused", "channel", ch, "err", err)
		return
	}
	r.log.Error("rtsp authentication refused", "channel", ch, "err", err)
}

// watchLogins is the part that, while logins are stopped, looks every
// PasswordRecheck at the password parameter's version and at the budget,
// and resumes logins when the parameter changed or the budget allows the
// credential again.
func (r *Recorder) watchLogins(ctx context.Context) error {
	for {
		st, changed := r.logins.state()
		var tick <-chan time.Time
		var t *time.Timer
		if st != nil {
			t = time.NewTimer(r.cfg.PasswordRecheck)
			tick = t.C
		}
		select {
		case <-ctx.Done():
			if t != nil {
				t.Stop()
			}
			return nil
		case <-changed:
			if t != nil {
				t.Stop()
			}
			continue
		case <-tick:
		}
		r.recheck(ctx, st)
	}
}

func (r *Recorder) recheck(ctx context.Context, st *loginStop) {
	cur := st.cred
	if r.d.Password != nil {
		c, err := r.d.Password.Current(ctx)
		if err != nil {
			r.log.Warn("reading the password parameter's version", "err", err)
			return
		}
		cur = c
	}
	if cur != st.cred {
		r.resumeLogins(cur, "the password parameter changed")
		return
	}
	err := r.d.Budget.Check(ctx, r.cfg.Gateway, cur)
	var re *loginbudget.RefusedError
	switch {
	case err == nil:
		r.resumeLogins(cur, "the login budget allows the password again")
	case errors.As(err, &re):
		// Still refused, perhaps for another reason now (a spent budget
		// whose last login was rejected); busy is no reason to stop.
		if re.Reason != loginbudget.ReasonBusy {
			r.stopLogins(cur, re.Reason, re.Refusal.String())
		}
	default:
		r.log.Warn("reading the login budget", "err", err)
	}
}

// waitForLogins blocks a channel while logins are stopped (it is marked
// failing meanwhile: it records nothing) and says whether it waited.
func (r *Recorder) waitForLogins(ctx context.Context, ch string) bool {
	waited := false
	for {
		st, changed := r.logins.state()
		if st == nil {
			return waited
		}
		if !waited {
			waited = true
			r.m.ChannelFailing(ch, true)
		}
		select {
		case <-ctx.Done():
			return waited
		case <-changed:
		}
	}
}
