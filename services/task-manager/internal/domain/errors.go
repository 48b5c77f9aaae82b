package domain

import "errors"

// ErrConflict means a device's row changed since it was read (another
// handler or another task-manager wrote in between): read it again and
// decide again. Stores return it, wrapped, for a failed conditional write.
var ErrConflict = errors.New("device row changed concurrently")

// ErrInvalid marks an input that can never be acted on, however often it
// is retried: a device event without a usable id or time, a task spec a
// recorder cannot run.
var ErrInvalid = errors.New("invalid")
