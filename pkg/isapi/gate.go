package isapi

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// LoginGate admits logins. The client calls BeginLogin before it sends a
// request that carries credentials this client has not seen accepted yet
// (never for the unauthenticated challenge round trip, never for requests
// riding on an accepted login). An error refuses the attempt: nothing is
// sent and the error is returned to the caller (wrapped, errors.Is/As
// work).
//
// BeginLogin comes before the login's first request — the
// unauthenticated challenge round trip, when the client has no challenge
// yet — so that a refused login sends nothing at all; the challenge alone
// is no login (a non-401 answer to it finishes the attempt as
// LoginNotSent). One attempt covers one request with the credentials and,
// when the gateway answers it "stale" (right password, expired nonce: not
// a failed login), the one retry with a fresh nonce.
type LoginGate interface {
	BeginLogin(ctx context.Context) (LoginAttempt, error)
}

// LoginAttempt is one admitted login; Finish is called exactly once with
// what happened. Its context outlives the request's (the outcome must be
// recorded even when the caller gave up) but is bounded (FinishTimeout).
type LoginAttempt interface {
	Finish(ctx context.Context, o LoginOutcome)
}

// LoginObserver is optional: a LoginGate that also implements it hears
// what the gateway said about the credentials outside an admitted attempt
// — a rejection (LoginRejected) or a lock (LoginLocked) answered to a
// request riding on an accepted login (the password was changed behind
// the client's back: the gateway counted a failed login), or a lock
// reported to the unauthenticated challenge request. Each call is one
// answer of the gateway.
type LoginObserver interface {
	ObserveLogin(ctx context.Context, o LoginOutcome)
}

// LoginOutcome is how one login attempt ended.
type LoginOutcome struct {
	Result LoginResult
	// LockLeft is, for LoginLocked, what the gateway said is left of the
	// lock (0: it did not say).
	LockLeft time.Duration
}

// LoginResult is what became of a login attempt.
type LoginResult int

// Results of a login attempt.
const (
	// LoginAccepted: the gateway answered with anything but a 401.
	LoginAccepted LoginResult = iota + 1
	// LoginRejected: a 401 to the request that carried the credentials.
	LoginRejected
	// LoginLocked: the gateway said it is locked (lock fields or
	// deviceIsLocked), whether or not this password was right.
	LoginLocked
	// LoginUnanswered: the request was written, or may have been (a
	// connection was open for it), but no answer came (connection lost,
	// timeout, context ended after writing). The gateway may have counted
	// it as a failed login.
	LoginUnanswered
	// LoginNotSent: no request with the credentials was written (dial
	// refused, context ended before writing, Basic over plain HTTP
	// refused, the challenge request answered without asking for them).
	LoginNotSent
)

func (r LoginResult) String() string {
	switch r {
	case LoginAccepted:
		return "accepted"
	case LoginRejected:
		return "rejected"
	case LoginLocked:
		return "locked"
	case LoginUnanswered:
		return "unanswered"
	case LoginNotSent:
		return "not-sent"
	}
	return fmt.Sprintf("LoginResult(%d)", int(r))
}

// FinishTimeout bounds the context LoginAttempt.Finish and
// LoginObserver.ObserveLogin get.
const FinishTimeout = 10 * time.Second

// WithLoginGate binds a gate to the client's credentials: every login
// with them goes through the gate. A client with a gate is made per
// credential: SetCredentials with other credentials returns
// ErrCredentialsBound and changes nothing. ChangePassword still works
// (the gateway accepting it proves the old password and installs the
// new one, which the client then uses as accepted); make a new client,
// with the gate of the new credential, for anything after it.
func WithLoginGate(g LoginGate) Option { return func(c *Client) { c.loginGate = g } }

// attempt is an admitted login in flight; finish reports it once.
type attempt struct {
	a    LoginAttempt
	once sync.Once
}

func (at *attempt) finish(ctx context.Context, o LoginOutcome) {
	if at == nil {
		return
	}
	at.once.Do(func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinishTimeout)
		defer cancel()
		at.a.Finish(fctx, o)
	})
}

// observe tells the gate, if it listens, about an answer outside an
// attempt.
func (c *Client) observe(ctx context.Context, o LoginOutcome) {
	obs, ok := c.loginGate.(LoginObserver)
	if !ok {
		return
	}
	octx, cancel := context.WithTimeout(context.WithoutCancel(ctx), FinishTimeout)
	defer cancel()
	obs.ObserveLogin(octx, o)
}
