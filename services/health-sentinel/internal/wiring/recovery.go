package wiring

import (
	"context"

	"mediagw/pkg/service"
	"mediagw/services/health-sentinel/internal/app/recovery"
)

// RecoverySettings are the recovery side's settings (intervals, budget,
// where each gateway's instance and Elastic IP are found, the simulator's
// admin URL for local runs). Embedded in Settings.
type RecoverySettings struct{}

// declareRecovery declares the recovery settings on cfg; call the returned
// function after cfg is parsed.
func declareRecovery(cfg *service.Config) func() RecoverySettings {
	return func() RecoverySettings { return RecoverySettings{} }
}

// buildRecovery builds the Recoverer from its adapters; rep learns of every
// recovery step.
func buildRecovery(ctx context.Context, rt *service.Runtime, s RecoverySettings, rep recovery.Reporter) (*recovery.Recoverer, error) {
	return &recovery.Recoverer{}, nil
}
