package dynamodb

import (
	"context"
	"errors"

	"mediagw/pkg/loginbudget"
)

// LoginBudgetStore marks the errors of the login budget's table that no
// retry fixes (the table missing, access denied) as
// domain.ErrMisconfigured, as for the watcher's own tables: without the
// budget no login is admitted, so the watcher must stop, not stay up blind.
func LoginBudgetStore(s loginbudget.Store) loginbudget.Store { return budgetStore{s} }

type budgetStore struct{ s loginbudget.Store }

func (b budgetStore) Load(ctx context.Context, gatewayID string) (loginbudget.Ledger, int64, error) {
	l, v, err := b.s.Load(ctx, gatewayID)
	return l, v, mapErr(err)
}

func (b budgetStore) Save(ctx context.Context, gatewayID string, l loginbudget.Ledger, prev int64) error {
	err := b.s.Save(ctx, gatewayID, l, prev)
	if errors.Is(err, loginbudget.ErrConflict) {
		return err
	}
	return mapErr(err)
}
