// Package loginbudgettest holds a login-budget store in memory for unit
// tests: the version rule of the table (a write whose version is stale is
// a loginbudget.ErrConflict), nothing else. The table itself is tested
// against the emulator (pkg/loginbudget/dynamodb) and by component tests.
package loginbudgettest

import (
	"context"
	"sync"

	"mediagw/pkg/loginbudget"
)

// Store is a loginbudget.Store in memory.
type Store struct {
	mu sync.Mutex
	l  map[string]loginbudget.Ledger
	v  map[string]int64
}

var _ loginbudget.Store = (*Store)(nil)

// NewStore returns an empty store.
func NewStore() *Store {
	return &Store{l: map[string]loginbudget.Ledger{}, v: map[string]int64{}}
}

// Load returns the gateway's ledger and its version (0: none yet).
func (s *Store) Load(_ context.Context, gw string) (loginbudget.Ledger, int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.l[gw], s.v[gw], nil
}

// Save writes the ledger if its version is still prev.
func (s *Store) Save(_ context.Context, gw string, l loginbudget.Ledger, prev int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.v[gw] != prev {
		return loginbudget.ErrConflict
	}
	s.l[gw], s.v[gw] = l, prev+1
	return nil
}
