package recovery

import (
	"context"
	"errors"
)

// Recoverer checks gateways, runs the recovery ladder and takes snapshots.
type Recoverer struct{}

// Check runs one health check of gatewayID and takes no action.
func (r *Recoverer) Check(ctx context.Context, gatewayID string) (Health, error) {
	return Health{}, errors.New("recovery: not built yet")
}

// Recover runs or continues the ladder for gatewayID under the lease; it
// returns when the gateway is healthy, the budget is spent, or ctx ends.
func (r *Recoverer) Recover(ctx context.Context, gatewayID string) error {
	return errors.New("recovery: not built yet")
}

// SnapshotDue runs one pass of the snapshot schedule.
func (r *Recoverer) SnapshotDue(ctx context.Context) error {
	return errors.New("recovery: not built yet")
}
