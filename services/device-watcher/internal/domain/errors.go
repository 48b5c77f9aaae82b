package domain

import "errors"

// Errors the stores report, whatever their technology.
var (
	// ErrLeaseLost: the lease is held by someone else now (or expired and
	// was taken); a write fenced by it was refused.
	ErrLeaseLost = errors.New("gateway lease lost")
	// ErrConflict: the stored state is not at the version a change was
	// computed from (another writer was first); reload it.
	ErrConflict = errors.New("stored state changed meanwhile")
	// ErrMisconfigured: the store or the event bus refuses every request
	// for a reason no retry can fix (a table or topic missing, access
	// denied). Nothing can be watched through it: the watcher stops and
	// the process exits for the orchestrator to restart.
	ErrMisconfigured = errors.New("resource missing or access denied")
)
