// Package budget is app.LoginBudget on mediagw/pkg/loginbudget, whose
// ledgers live in the login-budget DynamoDB table
// (mediagw/pkg/loginbudget/dynamodb).
package budget

import (
	"context"

	"mediagw/pkg/loginbudget"
	"mediagw/services/recorder/internal/app"
)

// Component is the name the recorder's logins carry in the ledger.
const Component = "recorder"

// Budget adapts a *loginbudget.Budget.
type Budget struct{ b *loginbudget.Budget }

var _ app.LoginBudget = Budget{}

// New returns the recorder's budget over store.
func New(store loginbudget.Store, opts ...loginbudget.Option) Budget {
	return Budget{b: loginbudget.New(store, Component, opts...)}
}

// Begin records a pending login or refuses it (*loginbudget.RefusedError).
func (b Budget) Begin(ctx context.Context, gateway string, cred loginbudget.Credential) (app.LoginAttempt, error) {
	a, err := b.b.Begin(ctx, gateway, cred)
	if err != nil {
		return nil, err
	}
	return attempt{a}, nil
}

// Check says whether a login with cred would be allowed now.
func (b Budget) Check(ctx context.Context, gateway string, cred loginbudget.Credential) error {
	return b.b.Check(ctx, gateway, cred)
}

// Record counts a rejection answered outside an admitted login.
func (b Budget) Record(ctx context.Context, gateway string, cred loginbudget.Credential, r loginbudget.Result) error {
	return b.b.Record(ctx, gateway, cred, r, 0)
}

type attempt struct{ a *loginbudget.LoginAttempt }

// Finish records the result; RTSP says nothing about locks, so no lock
// time is ever reported.
func (a attempt) Finish(ctx context.Context, r loginbudget.Result) error {
	return a.a.Finish(ctx, r, 0)
}
