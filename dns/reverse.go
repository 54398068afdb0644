package dns

import (
	"net/netip"
	"strconv"
	"strings"
)

const hexDigits = "0123456789abcdef"

// ReverseName returns the owner name of addr's PTR record, such as
// "1.0.0.10.in-addr.arpa." or the 32-nibble name under "ip6.arpa.".
func ReverseName(addr netip.Addr) string {
	addr = addr.Unmap()
	if addr.Is4() {
		return reverse4(addr.As4(), 4)
	}
	return reverse6(addr.As16(), 32)
}

// ReverseZones returns the names of the reverse zones that cover prefix
// exactly, for serving PTR records of its addresses. Reverse names have a
// label per octet (IPv4) or nibble (IPv6), so a prefix on such a boundary
// gives one zone: 10.1.0.0/16 gives "1.10.in-addr.arpa.". A shorter prefix
// off the boundary is split at the next one: 10.0.0.0/22 gives the four /24
// zones. A prefix longer than /24 (IPv4) or /124 (IPv6) gives the zone of
// the /24 or /124 that contains it, which then answers NXDOMAIN for the
// other addresses in it. An invalid prefix gives nil.
func ReverseZones(prefix netip.Prefix) []string {
	if !prefix.IsValid() {
		return nil
	}
	prefix = prefix.Masked()
	addr, bits := prefix.Addr(), prefix.Bits()
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	step, width := 4, 128
	if addr.Is4() {
		step, width = 8, 32
	}
	if bits > width-step {
		bits = width - step
		p, _ := addr.Prefix(bits)
		return []string{reverseZone(p.Addr(), bits, step)}
	}
	if bits%step == 0 {
		return []string{reverseZone(addr, bits, step)}
	}
	boundary := (bits/step + 1) * step
	n := 1 << (boundary - bits)
	zones := make([]string, 0, n)
	sub := addr
	for range n {
		zones = append(zones, reverseZone(sub, boundary, step))
		sub = nextPrefix(sub, boundary)
	}
	return zones
}

// Aggregate reports whether prefix is too short to give reverse zones:
// shorter than /8 (IPv4) or /16 (IPv6), such as 0.0.0.0/0, ::/0 or
// 2000::/3, a prefix that groups address space rather than one an
// operator's addresses come from. Its zones would make every server
// answer, with NXDOMAIN, the reverse lookups of all the space it groups,
// which would then no longer be forwarded; the prefixes inside it give
// their own zones.
func Aggregate(prefix netip.Prefix) bool {
	addr, bits := prefix.Addr(), prefix.Bits()
	if addr.Is4In6() && bits >= 96 {
		addr, bits = addr.Unmap(), bits-96
	}
	if addr.Is4() {
		return bits < 8
	}
	return bits < 16
}

// reverseZone names the zone of the prefix addr/bits, bits a multiple of step.
func reverseZone(addr netip.Addr, bits, step int) string {
	if step == 8 {
		return reverse4(addr.As4(), bits/8)
	}
	return reverse6(addr.As16(), bits/4)
}

// reverse4 returns the in-addr.arpa. name of the first n octets of a.
func reverse4(a [4]byte, n int) string {
	var b strings.Builder
	for i := n - 1; i >= 0; i-- {
		b.WriteString(strconv.Itoa(int(a[i])))
		b.WriteByte('.')
	}
	b.WriteString("in-addr.arpa.")
	return b.String()
}

// reverse6 returns the ip6.arpa. name of the first n nibbles of a.
func reverse6(a [16]byte, n int) string {
	var b strings.Builder
	b.Grow(2*n + len("ip6.arpa."))
	for i := n - 1; i >= 0; i-- {
		nib := a[i/2] >> 4
		if i%2 == 1 {
			nib = a[i/2] & 0x0f
		}
		b.WriteByte(hexDigits[nib])
		b.WriteByte('.')
	}
	b.WriteString("ip6.arpa.")
	return b.String()
}

// nextPrefix returns the first address of the prefix of length bits that
// follows the one starting at addr.
func nextPrefix(addr netip.Addr, bits int) netip.Addr {
	b := addr.AsSlice()
	// Add 1 at bit position bits-1, counted from the most significant bit.
	i, carry := (bits-1)/8, byte(1)<<(7-(bits-1)%8)
	for ; i >= 0 && carry != 0; i-- {
		sum := uint16(b[i]) + uint16(carry)
		b[i] = byte(sum)
		carry = byte(sum >> 8)
	}
	next, _ := netip.AddrFromSlice(b)
	return next
}

// ReverseZonePrefix returns the prefix whose addresses' reverse names lie
// in zone, a name under "in-addr.arpa." or "ip6.arpa." (case and the final
// dot do not matter): "1.10.in-addr.arpa." gives 10.1.0.0/16. It is false
// for any other name.
func ReverseZonePrefix(zone string) (netip.Prefix, bool) {
	zone = strings.ToLower(strings.TrimSuffix(zone, "."))
	var labels []string
	var v4 bool
	switch {
	case zone == "in-addr.arpa" || zone == "ip6.arpa":
	case strings.HasSuffix(zone, ".in-addr.arpa"):
		labels, v4 = strings.Split(strings.TrimSuffix(zone, ".in-addr.arpa"), "."), true
	case strings.HasSuffix(zone, ".ip6.arpa"):
		labels = strings.Split(strings.TrimSuffix(zone, ".ip6.arpa"), ".")
	default:
		return netip.Prefix{}, false
	}
	v4 = v4 || zone == "in-addr.arpa"
	if v4 {
		if len(labels) > 4 {
			return netip.Prefix{}, false
		}
		var a [4]byte
		for i, l := range labels {
			n, err := strconv.Atoi(l)
			if err != nil || n < 0 || n > 255 || strconv.Itoa(n) != l {
				return netip.Prefix{}, false
			}
			a[len(labels)-1-i] = byte(n)
		}
		return netip.PrefixFrom(netip.AddrFrom4(a), 8*len(labels)), true
	}
	if len(labels) > 32 {
		return netip.Prefix{}, false
	}
	var a [16]byte
	for i, l := range labels {
		nib := strings.Index(hexDigits, l)
		if len(l) != 1 || nib < 0 {
			return netip.Prefix{}, false
		}
		pos := len(labels) - 1 - i // nibble position from the most significant
		if pos%2 == 0 {
			a[pos/2] |= byte(nib) << 4
		} else {
			a[pos/2] |= byte(nib)
		}
	}
	return netip.PrefixFrom(netip.AddrFrom16(a), 4*len(labels)), true
}
