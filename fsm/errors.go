package fsm

import "errors"

// Errors returned by Apply and the store. API handlers map them to HTTP
// statuses; they are values, never panics.
var (
	// ErrEmptyEntry means a log entry had no bytes at all.
	ErrEmptyEntry = errors.New("fsm: empty log entry")
	// ErrUnknownType means a log entry's type byte is not registered.
	ErrUnknownType = errors.New("fsm: unknown message type")
	// ErrNotFound means the addressed object does not exist.
	ErrNotFound = errors.New("not found")
	// ErrConflict means the command conflicts with the current state, for
	// example a compare-and-set index that no longer matches.
	ErrConflict = errors.New("conflict")
	// ErrAlreadyBootstrapped means the ACL system already has its admin token.
	ErrAlreadyBootstrapped = errors.New("ACL bootstrap already done")
	// ErrIdempotencyMismatch means an idempotency key was reused for a
	// different request.
	ErrIdempotencyMismatch = errors.New("idempotency key reused with a different request")
	// ErrBadSnapshot means a snapshot stream is truncated, corrupt or of an
	// unsupported version.
	ErrBadSnapshot = errors.New("bad snapshot")
)
