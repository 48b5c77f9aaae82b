package domain

import "errors"

// Errors the recorder stops with; the command turns each into its own exit
// code (see README).
var (
	// ErrCredentials: the RTSP password could not be read at start.
	ErrCredentials = errors.New("RTSP credentials unavailable")
	// ErrGaveUp: every channel kept failing for longer than the give-up time.
	ErrGaveUp = errors.New("every channel kept failing for longer than the give-up time")
	// ErrSpoolNotEmpty: stopped with segments not uploaded; they stay in
	// the spool for the next recorder.
	ErrSpoolNotEmpty = errors.New("stopped with segments not uploaded")
	// ErrSpool: the spool directory is unusable.
	ErrSpool = errors.New("spool unusable")
	// ErrSpoolLocked: another recorder records the same channel into the
	// same spool directory (a duplicate launch on one host).
	ErrSpoolLocked = errors.New("spool directory is in use by another recorder")
)

// More specific errors the adapters map theirs to.
var (
	// ErrNotFound: a parameter (the RTSP password) does not exist.
	ErrNotFound = errors.New("not found")
	// ErrUnknownChannel: a channel the spool was not opened with.
	ErrUnknownChannel = errors.New("unknown channel")
)
