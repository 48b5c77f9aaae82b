package isapi

import (
	"context"
	"sync"

	"mediagw/pkg/loginbudget"
)

// memStore is a login-budget store in memory with the version rule of the
// table (the DynamoDB store is tested in pkg/loginbudget and by the
// component tests in internal/wiring).
type memStore struct {
	mu sync.Mutex
	l  map[string]loginbudget.Ledger
	v  map[string]int64
}

func (m *memStore) Load(_ context.Context, gw string) (loginbudget.Ledger, int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.l[gw], m.v[gw], nil
}

func (m *memStore) Save(_ context.Context, gw string, l loginbudget.Ledger, prev int64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.v[gw] != prev {
		return loginbudget.ErrConflict
	}
	m.l[gw], m.v[gw] = l, prev+1
	return nil
}

// NewMemBudget is the configurator's login budget, in memory.
func NewMemBudget() *loginbudget.Budget {
	return loginbudget.New(&memStore{l: map[string]loginbudget.Ledger{}, v: map[string]int64{}}, "configurator")
}
