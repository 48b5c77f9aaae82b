package loginbudget

import (
	"context"

	"mediagw/pkg/isapi"
)

// ISAPIGate is the gate an ISAPI client of one credential logs in through
// (isapi.WithLoginGate): each login is a Begin/Finish of the budget, and
// rejections or locks answered outside a login are recorded too.
func (b *Budget) ISAPIGate(gatewayID string, cred Credential) isapi.LoginGate {
	return &isapiGate{b: b, gateway: gatewayID, cred: cred}
}

type isapiGate struct {
	b       *Budget
	gateway string
	cred    Credential
}

var _ isapi.LoginObserver = (*isapiGate)(nil)

func (g *isapiGate) BeginLogin(ctx context.Context) (isapi.LoginAttempt, error) {
	a, err := g.b.Begin(ctx, g.gateway, g.cred)
	if err != nil {
		return nil, err
	}
	return isapiAttempt{a}, nil
}

// ObserveLogin records what the gateway said to a request riding on an
// accepted login: only rejections and locks count.
func (g *isapiGate) ObserveLogin(ctx context.Context, o isapi.LoginOutcome) {
	r := resultOf(o.Result)
	if r != Rejected && r != Locked {
		return
	}
	if err := g.b.Record(ctx, g.gateway, g.cred, r, o.LockLeft); err != nil {
		// Nothing else to do: the next Begin reads the ledger again.
		g.b.log.Warn("login budget: recording an observed login failed", "gateway_id", g.gateway, "err", err)
	}
}

type isapiAttempt struct{ a *LoginAttempt }

func (a isapiAttempt) Finish(ctx context.Context, o isapi.LoginOutcome) {
	if err := a.a.Finish(ctx, resultOf(o.Result), o.LockLeft); err != nil {
		a.a.b.log.Warn("login budget: recording a login failed (it stays counted)", "gateway_id", a.a.gateway, "err", err)
	}
}

func resultOf(r isapi.LoginResult) Result {
	switch r {
	case isapi.LoginAccepted:
		return Accepted
	case isapi.LoginRejected:
		return Rejected
	case isapi.LoginLocked:
		return Locked
	case isapi.LoginNotSent:
		return NotSent
	}
	// Unanswered, or anything new: counted.
	return Unanswered
}
