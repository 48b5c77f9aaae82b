// Package loginbudget keeps every component that logs in to a gateway
// (configurator, device-watcher, recorders) within one shared, durable
// budget of failed logins, so that mediagw never locks a gateway's admin
// account: the gateway locks it for 30 minutes after 5 failed logins, and
// every component shares that one account.
//
// The rules, per gateway, across processes, restarts and redeliveries:
//   - an attempt is recorded, as pending, before it is sent; a pending
//     attempt counts as a failure until it reports, so a lost or late answer
//     or a process that dies mid-login is never a free attempt;
//   - at most Limits.MaxFailures (2) failed, unanswered or pending logins in
//     any Limits.Window (30 minutes);
//   - a credential the gateway rejected is not tried again by anyone until
//     its parameter changes (a credential is an SSM parameter and version,
//     never the password);
//   - a lock the gateway reports (or, when it does not say for how long, a
//     whole window) stops every login until it ends.
//
// The ledger of one gateway is one item of the login-budget table,
// written with a version condition (see adapter package dynamodb).
package loginbudget

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"time"
)

// ErrRefused matches every *RefusedError: the budget did not allow a login.
var ErrRefused = errors.New("loginbudget: login refused")

// writeTimeout bounds one write of a ledger.
const writeTimeout = 10 * time.Second

// ErrConflict is what a Store returns when the ledger changed since it was
// loaded; Budget then loads it again.
var ErrConflict = errors.New("loginbudget: ledger changed concurrently")

// RefusedError is a login the budget refused: nothing was sent.
type RefusedError struct {
	Gateway string
	Refusal
}

func (e *RefusedError) Error() string {
	return fmt.Sprintf("gateway %s: login not attempted: %s", e.Gateway, e.Refusal.String())
}

// Is matches ErrRefused.
func (e *RefusedError) Is(target error) bool { return target == ErrRefused }

// Store keeps one ledger per gateway. Load of a gateway never seen returns
// an empty ledger and version 0; Save writes only when the stored version
// is still prev (else ErrConflict) and stores prev+1.
type Store interface {
	Load(ctx context.Context, gatewayID string) (l Ledger, version int64, err error)
	Save(ctx context.Context, gatewayID string, l Ledger, prev int64) error
}

// Observer hears what the budget does (metrics). It must not block.
type Observer interface {
	// LoginFinished: one attempt of this component came to r.
	LoginFinished(gatewayID string, r Result)
	// LoginRefused: the budget refused a login of this component.
	LoginRefused(gatewayID string, reason Reason)
}

// Budget is one component's handle on the shared budgets.
type Budget struct {
	store     Store
	component string
	limits    Limits
	now       func() time.Time
	observer  Observer
	log       *slog.Logger
}

// Option tunes a Budget.
type Option func(*Budget)

// WithLimits overrides the defaults (tests; every component of a system
// must use the same limits).
func WithLimits(l Limits) Option { return func(b *Budget) { b.limits = l.withDefaults() } }

// WithClock sets the clock (default time.Now). The ledger's times are
// compared across processes, so they need roughly agreeing clocks; a few
// seconds of skew shift the window by as much.
func WithClock(now func() time.Time) Option { return func(b *Budget) { b.now = now } }

// WithLogger sets where the budget reports what it could not record
// (default: nowhere).
func WithLogger(l *slog.Logger) Option { return func(b *Budget) { b.log = l } }

// WithObserver sets the observer (default none).
func WithObserver(o Observer) Option { return func(b *Budget) { b.observer = o } }

// New returns the budget handle of component (e.g. "configurator").
func New(store Store, component string, opts ...Option) *Budget {
	b := &Budget{store: store, component: component, limits: Limits{}.withDefaults(), now: time.Now, log: slog.New(slog.DiscardHandler)}
	for _, o := range opts {
		o(b)
	}
	return b
}

// Limits are the budget's limits.
func (b *Budget) Limits() Limits { return b.limits }

// update applies f to the gateway's ledger with optimistic concurrency.
func (b *Budget) update(ctx context.Context, gatewayID string, f func(*Ledger) error) error {
	for try := 0; ; try++ {
		l, v, err := b.store.Load(ctx, gatewayID)
		if err != nil {
			return err
		}
		if err := f(&l); err != nil {
			return err
		}
		// A write cut short by the caller's context may still land: an
		// attempt recorded with nobody left to finish it would hold every
		// login back. So the write itself is not cancelled, only bounded.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), writeTimeout)
		err = b.store.Save(wctx, gatewayID, l, v)
		cancel()
		if !errors.Is(err, ErrConflict) {
			return err
		}
		if try >= 50 {
			return fmt.Errorf("gateway %s: login budget: too many concurrent writers: %w", gatewayID, err)
		}
		// Many recorders may start at once: spread the retries.
		d := time.Duration(1+randInt(10*(try+1))) * time.Millisecond
		select {
		case <-time.After(d):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// Begin records a pending login with cred to the gateway and returns it,
// or a *RefusedError (errors.Is ErrRefused) when the budget does not
// allow it. While other logins are in flight and could spend the budget,
// it waits for them (bounded by ctx). When the ledger cannot be written
// the login must not happen: the error says so.
func (b *Budget) Begin(ctx context.Context, gatewayID string, cred Credential) (*LoginAttempt, error) {
	id := newID()
	wait := 20 * time.Millisecond
	for {
		var refused *Refusal
		err := b.update(ctx, gatewayID, func(l *Ledger) error {
			refused = l.Begin(id, cred, b.component, b.now(), b.limits)
			if refused != nil {
				return &RefusedError{Gateway: gatewayID, Refusal: *refused}
			}
			return nil
		})
		switch {
		case refused != nil && refused.Reason == ReasonBusy:
			select {
			case <-time.After(wait + time.Duration(randInt(int(wait/time.Millisecond)))*time.Millisecond):
			case <-ctx.Done():
				return nil, fmt.Errorf("gateway %s: login not attempted: waiting for other logins in flight: %w", gatewayID, ctx.Err())
			}
			wait = min(2*wait, 500*time.Millisecond)
			continue
		case refused != nil:
			if b.observer != nil {
				b.observer.LoginRefused(gatewayID, refused.Reason)
			}
			return nil, err
		case err != nil:
			return nil, fmt.Errorf("gateway %s: login not attempted: the login budget could not be recorded: %w", gatewayID, err)
		}
		a := &LoginAttempt{b: b, gateway: gatewayID, id: id, cred: cred}
		if ctx.Err() != nil {
			// Admitted, but the caller has gone: nothing will be sent.
			_ = a.Finish(ctx, NotSent, 0)
			return nil, fmt.Errorf("gateway %s: login not attempted: %w", gatewayID, ctx.Err())
		}
		return a, nil
	}
}

// Forget clears an earlier rejection of cred: the configurator has just
// set the gateway's password to that value.
func (b *Budget) Forget(ctx context.Context, gatewayID string, cred Credential) error {
	return b.update(ctx, gatewayID, func(l *Ledger) error { l.Forget(cred); return nil })
}

// Check says, without recording anything, whether a login with cred would
// be allowed now: nil, or a *RefusedError.
func (b *Budget) Check(ctx context.Context, gatewayID string, cred Credential) error {
	l, _, err := b.store.Load(ctx, gatewayID)
	if err != nil {
		return fmt.Errorf("gateway %s: login budget: %w", gatewayID, err)
	}
	if r := l.Check(cred, b.now(), b.limits); r != nil {
		return &RefusedError{Gateway: gatewayID, Refusal: *r}
	}
	return nil
}

// Ledger returns the gateway's ledger as stored (for operators).
func (b *Budget) Ledger(ctx context.Context, gatewayID string) (Ledger, error) {
	l, _, err := b.store.Load(ctx, gatewayID)
	return l, err
}

// LoginAttempt is a login Begin admitted.
type LoginAttempt struct {
	b       *Budget
	gateway string
	id      string
	cred    Credential
	done    bool
}

// Credential is the credential the attempt uses.
func (a *LoginAttempt) Credential() Credential { return a.cred }

// Finish records what the login came to; lockLeft is what the gateway said
// about a lock (Locked only; 0 when it did not say). Only the first call
// counts. A Finish that cannot be written leaves the attempt pending,
// which counts as a failure: the error is for logs.
func (a *LoginAttempt) Finish(ctx context.Context, r Result, lockLeft time.Duration) error {
	if a.done {
		return nil
	}
	a.done = true
	if a.b.observer != nil {
		a.b.observer.LoginFinished(a.gateway, r)
	}
	// Recording the result must survive the caller's deadline (a timed-out
	// login is exactly the one to record).
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	err := a.b.update(ctx, a.gateway, func(l *Ledger) error {
		l.Finish(a.id, r, lockLeft, a.b.now(), a.b.limits)
		return nil
	})
	if err != nil {
		return fmt.Errorf("gateway %s: login budget: recording a %s login: %w", a.gateway, r, err)
	}
	return nil
}

func newID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func randInt(n int) int { return mrand.IntN(max(n, 1)) }

// Record counts a rejection or lock the gateway answered outside an
// admitted login (see Ledger.Record).
func (b *Budget) Record(ctx context.Context, gatewayID string, cred Credential, r Result, lockLeft time.Duration) error {
	if b.observer != nil {
		b.observer.LoginFinished(gatewayID, r)
	}
	return b.update(ctx, gatewayID, func(l *Ledger) error {
		l.Record(newID(), cred, b.component, r, lockLeft, b.now(), b.limits)
		return nil
	})
}
