package fsm

import (
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/moxxie/moxxie/binenc"
	"github.com/moxxie/moxxie/ipam"
)

// IDCursor is where a listing of VLAN or VNI allocations resumes: after
// the allocation of Number in pool PoolID, in the order of pools and
// numbers.
type IDCursor struct {
	PoolID string
	Number int
}

// idCursorVersion is the first byte of an encoded cursor.
const idCursorVersion = 1

// errBadIDCursor is what ParseIDCursor's errors wrap.
var errBadIDCursor = errors.New("not a cursor of a VLAN or VNI listing")

// IDCursorOf returns the cursor of a, which a listing resumes after.
func IDCursorOf(a *IDAllocation) *IDCursor { return &IDCursor{PoolID: a.PoolID, Number: a.Number} }

// String encodes c as an opaque token: URL-safe base64 without padding of
// a version byte, the pool's ID and the number.
func (c *IDCursor) String() string {
	b := []byte{idCursorVersion}
	b = binenc.AppendString(b, c.PoolID)
	b = binary.AppendUvarint(b, uint64(c.Number))
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseIDCursor decodes what String encodes; anything else, also a cursor
// that String would have written differently, is an error.
func ParseIDCursor(s string) (*IDCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) == 0 {
		return nil, errBadIDCursor
	}
	if raw[0] != idCursorVersion {
		return nil, fmt.Errorf("%w: version %d", errBadIDCursor, raw[0])
	}
	r := binenc.NewReader(raw[1:], errBadIDCursor)
	pool := r.String("pool")
	n := r.Uvarint("number")
	if err := r.Done(); err != nil {
		return nil, err
	}
	if pool == "" || len(pool) > maxCursorField || n > ipam.MaxVNI {
		return nil, errBadIDCursor
	}
	c := &IDCursor{PoolID: pool, Number: int(n)}
	if c.String() != s {
		return nil, errBadIDCursor
	}
	return c, nil
}
