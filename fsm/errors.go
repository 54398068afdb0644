package fsm

import (
	"errors"
	"fmt"
	"strconv"
)

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
	// ErrInvalid means a command's input is invalid (HTTP 400); it comes
	// wrapped in a *FieldError naming the field.
	ErrInvalid = errors.New("invalid")
	// ErrBadSnapshot means a snapshot stream is truncated, corrupt or of an
	// unsupported version.
	ErrBadSnapshot = errors.New("bad snapshot")
)

// NotFoundError is the error of a command or read that addresses an
// object that does not exist: What names the kind of object and ID the
// identifier it was addressed by. It wraps ErrNotFound. The API names the
// path parameter that carried ID as the error's field.
type NotFoundError struct {
	What, ID string
}

// Error reads `WHAT "ID" not found`, as the API's reads answer a missing
// object, with the ID quoted since it may hold spaces.
func (e *NotFoundError) Error() string {
	return e.What + " " + strconv.Quote(e.ID) + " not found"
}

// Unwrap returns ErrNotFound.
func (e *NotFoundError) Unwrap() error { return ErrNotFound }

// notFound returns the *NotFoundError of the object what with id.
func notFound(what, id string) error {
	return &NotFoundError{What: what, ID: id}
}

// FieldError is an error about one field of a request: Field is its JSON
// name and Err says what is wrong, wrapping the sentinel that decides the
// HTTP status (ErrInvalid or an ipam validation error: 400; ErrConflict or
// an ipam in-use or exhaustion error: 409; ErrNotFound: 404).
type FieldError struct {
	Field string
	Err   error
}

// Error returns the message of Err; the field travels separately.
func (e *FieldError) Error() string { return e.Err.Error() }

// Unwrap returns Err.
func (e *FieldError) Unwrap() error { return e.Err }

// fieldErr wraps err as a FieldError naming field.
func fieldErr(field string, err error) error {
	return &FieldError{Field: field, Err: err}
}

// fieldErrf returns a FieldError naming field whose error wraps kind and
// reads as the formatted message alone.
func fieldErrf(field string, kind error, format string, args ...any) error {
	return &FieldError{Field: field, Err: &kindError{kind: kind, msg: fmt.Sprintf(format, args...)}}
}

// kindError is a message that wraps a sentinel without repeating it.
type kindError struct {
	kind error
	msg  string
}

func (e *kindError) Error() string { return e.msg }
func (e *kindError) Unwrap() error { return e.kind }
