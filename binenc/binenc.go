// Package binenc holds the pieces of Moxxie's hand-written binary
// encodings (the FSM's most frequent commands, the frames of batched
// forwarding): uvarints, length-prefixed strings and bytes, and a reader
// whose first error sticks.
//
// A value is written with binary.AppendUvarint or binary.AppendVarint, or
// with the Append functions here; a string or bytes is its length as a
// uvarint and then its bytes; a bool is one byte, 0 or 1.
package binenc

import (
	"encoding/binary"
	"fmt"
)

// AppendString appends s, length-prefixed.
func AppendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// AppendBytes appends p, length-prefixed.
func AppendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

// AppendBool appends v as one byte.
func AppendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

// StringSize is at least what AppendString appends for s.
func StringSize(s string) int { return binary.MaxVarintLen64 + len(s) }

// Reader decodes a payload. The first error sticks: every later read
// returns a zero value, so a decoder checks Err once at the end. Errors
// wrap the sentinel given to NewReader and name what was being read.
type Reader struct {
	b   []byte
	bad error
	err error
	in  *Interner
}

// NewReader returns a reader of p whose errors wrap bad.
func NewReader(p []byte, bad error) *Reader { return &Reader{b: p, bad: bad} }

// WithInterner makes SharedString read through in, and returns r.
func (r *Reader) WithInterner(in *Interner) *Reader {
	r.in = in
	return r
}

// Fail records an error about what, unless one is recorded already, and
// stops the reader.
func (r *Reader) Fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", r.bad, what)
	}
	r.b = nil
}

// Uvarint reads an unsigned varint.
func (r *Reader) Uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.Fail(what + " truncated or overflowed")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Varint reads a signed varint.
func (r *Reader) Varint(what string) int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.Fail(what + " truncated or overflowed")
		return 0
	}
	r.b = r.b[n:]
	return v
}

// Count reads a count of items that each take at least min bytes (min
// at least 1), so that a corrupt count cannot make the caller allocate
// more than the payload could hold.
func (r *Reader) Count(what string, min int) int {
	n := r.Uvarint(what)
	if n > uint64(len(r.b)/min) {
		r.Fail(what + " exceeds the payload")
		return 0
	}
	return int(n)
}

// Bytes reads length-prefixed bytes, which share the payload's memory.
func (r *Reader) Bytes(what string) []byte {
	n := r.Uvarint(what)
	if n > uint64(len(r.b)) {
		r.Fail(what + " exceeds the payload")
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

// String reads a length-prefixed string.
func (r *Reader) String(what string) string { return string(r.Bytes(what)) }

// SharedString reads a length-prefixed string that many payloads repeat
// (an actor, an action): through the reader's interner when it has one,
// like String otherwise.
func (r *Reader) SharedString(what string) string {
	b := r.Bytes(what)
	if r.in == nil {
		return string(b)
	}
	return r.in.intern(b)
}

// Interner hands out one string for equal bytes, so that the values many
// decoded payloads repeat share their memory instead of each holding a
// copy. It keeps at most max strings of at most maxInternedLen bytes; when
// full it starts over, so values that stop recurring (a client's port) do
// not crowd out new ones. It is not safe for concurrent use.
type Interner struct {
	m   map[string]string
	max int
}

// maxInternedLen bounds the strings an Interner keeps: longer ones are
// seldom repeated.
const maxInternedLen = 128

// NewInterner returns an interner of at most max strings.
func NewInterner(max int) *Interner {
	return &Interner{m: make(map[string]string), max: max}
}

func (in *Interner) intern(b []byte) string {
	if len(b) == 0 || len(b) > maxInternedLen {
		return string(b)
	}
	if s, ok := in.m[string(b)]; ok {
		return s
	}
	if len(in.m) >= in.max {
		clear(in.m)
	}
	s := string(b)
	in.m[s] = s
	return s
}

// Bool reads a byte that must be 0 or 1.
func (r *Reader) Bool(what string) bool {
	if len(r.b) == 0 || r.b[0] > 1 {
		r.Fail(what + " is not a bool")
		return false
	}
	v := r.b[0] == 1
	r.b = r.b[1:]
	return v
}

// More reports whether bytes are left and nothing failed: a field that a
// later layout appends is read only when present.
func (r *Reader) More() bool { return r.err == nil && len(r.b) != 0 }

// Done returns the first error, or an error if bytes are left over.
func (r *Reader) Done() error {
	if r.err == nil && len(r.b) != 0 {
		r.Fail(fmt.Sprintf("%d bytes after the last field", len(r.b)))
	}
	return r.err
}

// Err returns the first error.
func (r *Reader) Err() error { return r.err }
