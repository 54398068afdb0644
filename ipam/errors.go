package ipam

import (
	"errors"
	"fmt"
)

// Errors returned by this package. Each is returned wrapped in an error whose
// message names the offending value; test for the kind with errors.Is.
var (
	// ErrInvalidPrefix means a string is not a CIDR prefix at all.
	ErrInvalidPrefix = errors.New("invalid prefix")
	// ErrNotCanonical means a prefix has host bits set, as in 10.0.0.5/24.
	ErrNotCanonical = errors.New("prefix is not canonical")
	// ErrZone means an address or prefix carries an IPv6 zone.
	ErrZone = errors.New("IPv6 zone not allowed")
	// ErrMapped means an IPv4 address or prefix was written in IPv4-mapped
	// IPv6 form (::ffff:10.0.0.0/104) instead of as IPv4.
	ErrMapped = errors.New("IPv4-mapped IPv6 not allowed")
	// ErrInvalidAddr means a string is not an IP address.
	ErrInvalidAddr = errors.New("invalid address")
	// ErrFamily means an IPv4 value met an IPv6 space, or the reverse.
	ErrFamily = errors.New("address family mismatch")
	// ErrOutside means a key lies outside the usable part of its space: an
	// address outside its prefix's usable range, a VLAN ID outside its
	// group's ranges.
	ErrOutside = errors.New("outside the space")
	// ErrInUse means a key or range to claim is already used.
	ErrInUse = errors.New("already in use")
	// ErrNotAllocated means a key or range to release is not used.
	ErrNotAllocated = errors.New("not allocated")
	// ErrExhausted means a space has not enough free keys or no free block;
	// the count form is an *ExhaustedError.
	ErrExhausted = errors.New("exhausted")
	// ErrInvalidCount means an allocation asked for fewer than one key.
	ErrInvalidCount = errors.New("invalid count")
	// ErrInvalidRange means a range is empty, reversed, overlaps another or
	// leaves its bounds.
	ErrInvalidRange = errors.New("invalid range")
	// ErrInvalidLength means a child prefix length does not fit its parent.
	ErrInvalidLength = errors.New("invalid prefix length")
	// ErrInvalidHostname means a DNS name breaks RFC 1123.
	ErrInvalidHostname = errors.New("invalid hostname")
	// ErrInvalidOwner means an owner reference is not kind:id[/iface].
	ErrInvalidOwner = errors.New("invalid owner")
	// ErrInvalidVLAN means a VLAN ID is outside 1..4094.
	ErrInvalidVLAN = errors.New("invalid VLAN ID")
	// ErrInvalidVNI means a VXLAN network identifier is outside 1..16777215.
	ErrInvalidVNI = errors.New("invalid VNI")
	// ErrQuarantined means a key is already held in quarantine.
	ErrQuarantined = errors.New("already quarantined")
)

// valueError is a sentinel kind with a message that names the value.
type valueError struct {
	kind error
	msg  string
}

func (e *valueError) Error() string { return e.msg }
func (e *valueError) Unwrap() error { return e.kind }

// InUseError is the ErrInUse of claiming a range: Key is the first key
// of the range that is used, so that the caller can say what holds it.
type InUseError struct {
	Key Key
	msg string
}

func (e *InUseError) Error() string { return e.msg }

// Unwrap returns ErrInUse.
func (e *InUseError) Unwrap() error { return ErrInUse }

// errorf returns an error of the given kind whose message is the formatted
// text alone.
func errorf(kind error, format string, args ...any) error {
	return &valueError{kind: kind, msg: fmt.Sprintf(format, args...)}
}

// ExhaustedError is returned when an all-or-nothing allocation asks for more
// keys than are free. It matches ErrExhausted with errors.Is. API handlers
// answer it with 409 and its message.
type ExhaustedError struct {
	// Requested is how many keys were asked for.
	Requested int
	// Available is how many keys were free; it is below Requested.
	Available uint64
}

// Error returns "N requested, M available".
func (e *ExhaustedError) Error() string {
	return fmt.Sprintf("%d requested, %d available", e.Requested, e.Available)
}

// Unwrap returns ErrExhausted.
func (e *ExhaustedError) Unwrap() error { return ErrExhausted }
