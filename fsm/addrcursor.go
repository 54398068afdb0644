package fsm

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"net/netip"

	"github.com/moxxie/moxxie/binenc"
)

// AddressCursor is where a page of an address listing ended. A listing
// given it as AddressFilter.After resumes after that address, also when
// the address is gone by then: listings in (VRF, address) order resume
// after VRF and Addr, those by tenant, owner or DNS name, which come in
// ID order, after ID.
type AddressCursor struct {
	VRF  string
	Addr netip.Addr
	ID   string
}

// addressCursorVersion is the first byte of an encoded cursor.
const addressCursorVersion = 1

// maxCursorField bounds the VRF and the ID a cursor may carry.
const maxCursorField = 256

// errBadCursor is what ParseAddressCursor's errors wrap.
var errBadCursor = errors.New("not a cursor of an address listing")

// AddressCursorOf returns the cursor of a, which a listing resumes after.
func AddressCursorOf(a *Address) *AddressCursor {
	ip, _ := netip.ParseAddr(a.Address) // stored addresses are valid
	return &AddressCursor{VRF: a.VRF, Addr: ip, ID: a.ID}
}

// String encodes c as an opaque token: URL-safe base64 without padding of
// a version byte, the VRF, the address's bytes and the ID.
func (c *AddressCursor) String() string {
	b := []byte{addressCursorVersion}
	b = binenc.AppendString(b, c.VRF)
	b = binenc.AppendBytes(b, c.Addr.AsSlice())
	b = binenc.AppendString(b, c.ID)
	return base64.RawURLEncoding.EncodeToString(b)
}

// ParseAddressCursor decodes what String encodes; anything else, also a
// cursor that String would have written differently, is an error.
func ParseAddressCursor(s string) (*AddressCursor, error) {
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil || len(raw) == 0 {
		return nil, errBadCursor
	}
	if raw[0] != addressCursorVersion {
		return nil, fmt.Errorf("%w: version %d", errBadCursor, raw[0])
	}
	r := binenc.NewReader(raw[1:], errBadCursor)
	c := &AddressCursor{VRF: r.String("vrf")}
	ip := r.Bytes("address")
	c.ID = r.String("id")
	if err := r.Done(); err != nil {
		return nil, err
	}
	var ok bool
	if c.Addr, ok = netip.AddrFromSlice(ip); !ok {
		return nil, fmt.Errorf("%w: an address of %d bytes", errBadCursor, len(ip))
	}
	if c.ID == "" || len(c.ID) > maxCursorField || len(c.VRF) > maxCursorField {
		return nil, errBadCursor
	}
	if c.String() != s {
		return nil, errBadCursor
	}
	return c, nil
}

// key is c's position in the addr index.
func (c *AddressCursor) key() []byte { return vrfAddrKey(c.VRF, c.Addr) }

// afterInAddrOrder reports whether a lies after c in (VRF, address)
// order.
func (c *AddressCursor) afterInAddrOrder(a *Address) bool {
	ip, err := netip.ParseAddr(a.Address)
	return err == nil && bytes.Compare(vrfAddrKey(a.VRF, ip), c.key()) > 0
}
