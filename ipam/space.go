package ipam

import (
	"math/big"
	"net/netip"
	"slices"
	"strings"
)

// Kind says what the keys of a Space stand for.
type Kind uint8

// Kinds of Space.
const (
	// KindInt spaces hold plain integers: VLAN IDs, VNIs.
	KindInt Kind = iota
	// KindIPv4 spaces hold IPv4 addresses by numeric value.
	KindIPv4
	// KindIPv6 spaces hold IPv6 addresses by numeric value.
	KindIPv6
)

// Space is one allocation space: the ranges of keys that may be used, and
// how many of them are. The runs of used keys live in a RunStore of the
// caller's; a store holds the runs of exactly one space. The FSM persists
// Used with the owning object (prefix, VLAN group, VNI pool) and rebuilds
// the rest from that object.
//
// A prefix has two spaces: AddrSpace for its addresses and BlockSpace for
// its child prefixes, each with its own store.
type Space struct {
	// Kind says how keys are shown in errors and converted to addresses.
	Kind Kind
	// Prefix is the prefix of an address or block space, zero otherwise.
	Prefix netip.Prefix
	// Ranges are the usable keys: sorted, disjoint and not adjacent.
	Ranges []Run
	// Used counts the keys held in the store, allocated, excluded and
	// quarantined alike. It wraps only for a fully claimed ::/0 block
	// space, which still allocates correctly.
	Used Key
}

// IDRange is an inclusive range of integer IDs, such as VLAN 100-199.
type IDRange struct {
	First int `json:"first"`
	Last  int `json:"last"`
}

// AddrSpace returns the space of assignable addresses of p: its
// UsableRange with NetBox semantics.
func AddrSpace(p netip.Prefix, isPool bool) Space {
	p = p.Masked()
	first, last := UsableRange(p, isPool)
	return Space{Kind: addrKind(p.Addr()), Prefix: p, Ranges: []Run{{KeyOf(first), KeyOf(last)}}}
}

// BlockSpace returns the space in which child prefixes of p are runs: all
// of p's addresses, network and broadcast included.
func BlockSpace(p netip.Prefix) Space {
	p = p.Masked()
	return Space{Kind: addrKind(p.Addr()), Prefix: p, Ranges: []Run{{KeyOf(p.Addr()), KeyOf(LastAddr(p))}}}
}

// VLANSpace returns the space of a VLAN group. With no ranges the group
// spans all of 1..4094; otherwise each range must lie within it, and ranges
// must not overlap (adjacent ones are merged).
func VLANSpace(ranges ...IDRange) (Space, error) {
	return idSpace(ErrInvalidVLAN, "VLAN", MinVLAN, MaxVLAN, ranges)
}

// VNISpace returns the space of a VNI pool, like VLANSpace over
// 1..16777215.
func VNISpace(ranges ...IDRange) (Space, error) {
	return idSpace(ErrInvalidVNI, "VNI", MinVNI, MaxVNI, ranges)
}

// IDRangesOverlap returns a range of a and a range of b that share a
// number, and whether there are such; no ranges stand for lo..hi, as for
// a pool created without any.
func IDRangesOverlap(a, b []IDRange, lo, hi int) (IDRange, IDRange, bool) {
	all := []IDRange{{lo, hi}}
	if len(a) == 0 {
		a = all
	}
	if len(b) == 0 {
		b = all
	}
	for _, x := range a {
		for _, y := range b {
			if x.First <= y.Last && y.First <= x.Last {
				return x, y, true
			}
		}
	}
	return IDRange{}, IDRange{}, false
}

func idSpace(kind error, what string, lo, hi int, ranges []IDRange) (Space, error) {
	if len(ranges) == 0 {
		ranges = []IDRange{{lo, hi}}
	}
	rs := slices.Clone(ranges)
	slices.SortFunc(rs, func(a, b IDRange) int { return a.First - b.First })
	sp := Space{Kind: KindInt, Ranges: make([]Run, 0, len(rs))}
	for i, r := range rs {
		if err := checkIDRange(kind, what, lo, hi, r); err != nil {
			return Space{}, err
		}
		if i > 0 && r.First <= rs[i-1].Last {
			return Space{}, errorf(ErrInvalidRange, "%s ranges %d-%d and %d-%d overlap", what, rs[i-1].First, rs[i-1].Last, r.First, r.Last)
		}
		run := Run{IntKey(uint64(r.First)), IntKey(uint64(r.Last))}
		if n := len(sp.Ranges); n > 0 && sp.Ranges[n-1].End.Add64(1) == run.Start {
			sp.Ranges[n-1].End = run.End
			continue
		}
		sp.Ranges = append(sp.Ranges, run)
	}
	return sp, nil
}

func addrKind(a netip.Addr) Kind {
	if a.Is4() {
		return KindIPv4
	}
	return KindIPv6
}

// Size returns how many keys the space has, or MaxKey if that is 2^128 (a
// ::/0 pool or block space).
func (sp *Space) Size() Key {
	var n Key
	for _, r := range sp.Ranges {
		n = n.addSat(r.End.Sub(r.Start)).addSat(IntKey(1))
	}
	return n
}

// ExactSize returns how many keys the space has, also 2^128, which Size
// cannot hold.
func (sp *Space) ExactSize() *big.Int {
	n := new(big.Int)
	one := big.NewInt(1)
	for _, r := range sp.Ranges {
		n.Add(n, r.End.Big()).Sub(n, r.Start.Big()).Add(n, one)
	}
	return n
}

// Free returns how many keys are not used, from Size and Used, without
// looking at the store. In a space of 2^128 keys (a ::/0 pool) it is exact
// but for an empty space, where it says MaxKey, one short.
func (sp *Space) Free() Key {
	if sp.whole() {
		if sp.Used.IsZero() { // empty (or, see UsedExact, full)
			return MaxKey
		}
		return Key{}.Sub(sp.Used) // 2^128 - Used, modulo 2^128
	}
	return sp.Size().subSat(sp.Used)
}

// whole reports whether the space has every key, 2^128 of them.
func (sp *Space) whole() bool {
	return len(sp.Ranges) == 1 && sp.Ranges[0].Start.IsZero() && sp.Ranges[0].End == MaxKey
}

// UsedExact returns how many keys are used. Used is kept modulo 2^128, so
// a space of 2^128 keys that is full holds 0 there: only then does it ask s
// whether any key is free.
func (sp *Space) UsedExact(s RunStore) *big.Int {
	if sp.whole() && sp.Used.IsZero() && len(sp.FreeRuns(s, 1)) == 0 {
		return sp.ExactSize()
	}
	return sp.Used.Big()
}

// rangeOf returns the index of the range holding k, or -1.
func (sp *Space) rangeOf(k Key) int {
	i, _ := slices.BinarySearchFunc(sp.Ranges, k, func(r Run, k Key) int {
		if r.End.Less(k) {
			return -1
		}
		if k.Less(r.Start) {
			return 1
		}
		return 0
	})
	if i < len(sp.Ranges) && !k.Less(sp.Ranges[i].Start) && !sp.Ranges[i].End.Less(k) {
		return i
	}
	return -1
}

// Contains reports whether k is a usable key of the space.
func (sp *Space) Contains(k Key) bool { return sp.rangeOf(k) >= 0 }

// KeyOf returns the key of address a in an address or block space, checking
// its family and that it is usable.
func (sp *Space) KeyOf(a netip.Addr) (Key, error) {
	if sp.Kind == KindInt || a.Is4() != (sp.Kind == KindIPv4) {
		return Key{}, errorf(ErrFamily, "%s does not belong in %s", a, sp.name())
	}
	k := KeyOf(a)
	if !sp.Contains(k) {
		return Key{}, sp.outside(k)
	}
	return k, nil
}

// Addr returns the address of key k in an address or block space.
func (sp *Space) Addr(k Key) netip.Addr { return AddrOf(k, sp.Kind == KindIPv4) }

// Format returns k as its space shows it: an address or a decimal ID.
func (sp *Space) Format(k Key) string {
	switch {
	case sp.Kind == KindIPv6, sp.Kind == KindIPv4 && k.Hi == 0 && k.Lo <= 1<<32-1:
		return sp.Addr(k).String()
	}
	return k.String()
}

// formatRun returns r as "a" or "a-b".
func (sp *Space) formatRun(r Run) string {
	if r.Start == r.End {
		return sp.Format(r.Start)
	}
	return sp.Format(r.Start) + "-" + sp.Format(r.End)
}

// name describes the space for error messages.
func (sp *Space) name() string {
	if sp.Prefix.IsValid() {
		return sp.Prefix.String()
	}
	return sp.usable()
}

// usable lists the ranges of the space.
func (sp *Space) usable() string {
	parts := make([]string, len(sp.Ranges))
	for i, r := range sp.Ranges {
		parts[i] = sp.formatRun(r)
	}
	return strings.Join(parts, ",")
}

// outside returns the ErrOutside error for k.
func (sp *Space) outside(k Key) error {
	isAddr := sp.Kind == KindIPv6 || sp.Kind == KindIPv4 && k.Hi == 0 && k.Lo <= 1<<32-1
	if sp.Prefix.IsValid() && isAddr && sp.Prefix.Contains(sp.Addr(k)) {
		// In the prefix but not usable: its network, broadcast or
		// subnet-router anycast address.
		return errorf(ErrOutside, "%s is in %s but not usable (usable %s)", sp.Format(k), sp.Prefix, sp.usable())
	}
	if sp.Prefix.IsValid() && len(sp.Ranges) == 1 {
		return errorf(ErrOutside, "%s is outside %s (usable %s)", sp.Format(k), sp.Prefix, sp.formatRun(sp.Ranges[0]))
	}
	return errorf(ErrOutside, "%s is outside %s", sp.Format(k), sp.name())
}
