package ipam

import (
	"encoding/binary"
	"math/big"
	"net/netip"
	"strings"
)

// MappedBlock holds the IPv4-mapped IPv6 addresses (RFC 4291), which
// Moxxie takes only written as IPv4: an IPv6 prefix that holds addresses
// may not overlap it.
var MappedBlock = netip.MustParsePrefix("::ffff:0:0/96")

// ParsePrefix parses a CIDR prefix and refuses anything but the canonical
// form of an IPv4 or IPv6 prefix: host bits set (10.0.0.5/24, answered with
// the canonical 10.0.0.0/24), IPv6 zones, and IPv4 written as IPv4-mapped
// IPv6 (::ffff:10.0.0.0/104). Upper-case hex and other spellings that netip
// accepts are allowed; the prefix's String is the form to store.
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "%") {
		return netip.Prefix{}, errorf(ErrZone, "%s has an IPv6 zone: a prefix cannot carry one", s)
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, errorf(ErrInvalidPrefix, "%q is not a CIDR prefix: %s", s, parseReason(err))
	}
	if p.Addr().Is4In6() && p.Bits() >= 96 {
		v4 := netip.PrefixFrom(p.Addr().Unmap(), p.Bits()-96).Masked()
		return netip.Prefix{}, errorf(ErrMapped, "%s is IPv4-mapped IPv6: write it as %s", s, v4)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, errorf(ErrNotCanonical, "%s is not canonical: did you mean %s?", s, m)
	}
	return p, nil
}

// ParseAddr parses an IP address and refuses IPv6 zones and IPv4 written as
// IPv4-mapped IPv6 (::ffff:10.0.0.1).
func ParseAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errorf(ErrInvalidAddr, "an IP address is required")
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, errorf(ErrInvalidAddr, "%q is not an IP address: %s", s, parseReason(err))
	}
	if a.Zone() != "" {
		return netip.Addr{}, errorf(ErrZone, "%s has an IPv6 zone: an address here cannot carry one", s)
	}
	if a.Is4In6() {
		return netip.Addr{}, errorf(ErrMapped, "%s is IPv4-mapped IPv6: write it as %s", s, a.Unmap())
	}
	return a, nil
}

// parseReason strips netip's echo of the input from a parse error.
func parseReason(err error) string {
	msg := err.Error()
	if i := strings.Index(msg, "): "); i >= 0 {
		return msg[i+3:]
	}
	return msg
}

// Contains reports whether inner lies entirely within outer: same family,
// outer no longer than inner and inner's addresses inside outer. A prefix
// contains itself.
func Contains(outer, inner netip.Prefix) bool {
	return outer.IsValid() && inner.IsValid() &&
		outer.Addr().Is4() == inner.Addr().Is4() &&
		outer.Bits() <= inner.Bits() &&
		outer.Contains(inner.Masked().Addr())
}

// Overlaps reports whether a and b share any address. Prefixes of
// different families never overlap.
func Overlaps(a, b netip.Prefix) bool { return a.Overlaps(b) }

// familyBits returns 32 for an IPv4 address and 128 otherwise.
func familyBits(a netip.Addr) int {
	if a.Is4() {
		return 32
	}
	return 128
}

// LastAddr returns the highest address in p.
func LastAddr(p netip.Prefix) netip.Addr {
	p = p.Masked()
	host := uint(familyBits(p.Addr()) - p.Bits())
	return AddrOf(KeyOf(p.Addr()).or(lowMask(host)), p.Addr().Is4())
}

// UsableRange returns the first and last assignable address of p, as NetBox
// counts them. A pool prefix is usable from end to end. Otherwise an IPv4
// prefix shorter than /31 skips its network and broadcast addresses, and an
// IPv6 prefix shorter than /127 skips its subnet-router anycast address (the
// all-zeros host); /31, /32, /127 and /128 are usable from end to end.
func UsableRange(p netip.Prefix, isPool bool) (first, last netip.Addr) {
	p = p.Masked()
	first, last = p.Addr(), LastAddr(p)
	if isPool {
		return first, last
	}
	if first.Is4() && p.Bits() < 31 {
		return first.Next(), last.Prev()
	}
	if first.Is6() && p.Bits() < 127 {
		return first.Next(), last
	}
	return first, last
}

// Size returns the number of addresses in p, 2^(family bits - prefix bits).
func Size(p netip.Prefix) *big.Int {
	host := familyBits(p.Addr()) - p.Bits()
	return new(big.Int).Lsh(big.NewInt(1), uint(host))
}

// KeyOf returns the numeric value of a: a 32-bit value for IPv4, 128-bit for
// IPv6.
func KeyOf(a netip.Addr) Key {
	if a.Is4() {
		b := a.As4()
		return IntKey(uint64(binary.BigEndian.Uint32(b[:])))
	}
	return KeyFromBytes(a.As16())
}

// AddrOf returns the address whose numeric value is k: IPv4 from k's low 32
// bits if is4, IPv6 otherwise.
func AddrOf(k Key, is4 bool) netip.Addr {
	if is4 {
		var b [4]byte
		binary.BigEndian.PutUint32(b[:], uint32(k.Lo))
		return netip.AddrFrom4(b)
	}
	return netip.AddrFrom16(k.Bytes())
}

// maxKeyOf returns the highest key of a's family.
func maxKeyOf(a netip.Addr) Key {
	if a.Is4() {
		return IntKey(1<<32 - 1)
	}
	return MaxKey
}

// Add returns a+n and whether the result stays within a's family.
func Add(a netip.Addr, n uint64) (netip.Addr, bool) {
	k := KeyOf(a)
	s := k.Add64(n)
	if s.Less(k) || maxKeyOf(a).Less(s) {
		return netip.Addr{}, false
	}
	return AddrOf(s, a.Is4()), true
}

// Distance returns |b-a| and whether a and b are of the same family.
func Distance(a, b netip.Addr) (Key, bool) {
	if a.Is4() != b.Is4() {
		return Key{}, false
	}
	ka, kb := KeyOf(a), KeyOf(b)
	if kb.Less(ka) {
		return ka.Sub(kb), true
	}
	return kb.Sub(ka), true
}

// Addr16 returns KeyOf(a) as 16 big-endian bytes: IPv4 as twelve zero bytes
// and its four, IPv6 as its sixteen. Within a family the bytes sort as the
// addresses do, and IPv4 sorts before every IPv6 address outside ::/96.
// Every allocation space is of one family, so Addr16 is the key to use for
// runs; an index that holds both families uses AddrKey.
func Addr16(a netip.Addr) [16]byte { return KeyOf(a).Bytes() }

// AddrKey returns a family byte (4 or 6) followed by Addr16(a): an ordered,
// collision-free key for indexes holding both families, with all IPv4
// before all IPv6.
func AddrKey(a netip.Addr) [17]byte {
	var k [17]byte
	k[0] = 6
	if a.Is4() {
		k[0] = 4
	}
	b := Addr16(a)
	copy(k[1:], b[:])
	return k
}
