package ipam

import (
	"errors"
	"fmt"
	"net/netip"
)

// segment is a stretch of free keys NextFree has chosen, with the used runs
// on either side that it merges with.
type segment struct {
	from, to  Key
	leftStart Key // Start of the run ending at from-1, if hasLeft
	right     Run // the run starting at to+1, if hasRight
	hasLeft   bool
	hasRight  bool
}

// NextFree claims the count lowest free keys of the space, all or nothing,
// and returns them in ascending order. If fewer than count are free it
// changes nothing and returns an *ExhaustedError. It costs one Floor, then
// one Ceil and at most two writes per free stretch it takes from, so its
// cost grows with count and fragmentation near the start, never with the
// size of the space or how full it is. The result holds count keys, so
// callers bound count (the API caps it).
func (sp *Space) NextFree(s RunStore, count int) ([]Key, error) {
	if count < 1 {
		return nil, errorf(ErrInvalidCount, "count %d: at least 1 is needed", count)
	}
	if free := sp.Free(); free.Less(IntKey(uint64(count))) {
		return nil, &ExhaustedError{Requested: count, Available: free.Lo}
	}
	segs := make([]segment, 0, 4)
	need := uint64(count)
	for _, rg := range sp.Ranges {
		if segs, need = findFree(s, rg, need, segs); need == 0 {
			break
		}
	}
	if need > 0 {
		// Used promised more free keys than the store has; the store wins.
		return nil, &ExhaustedError{Requested: count, Available: uint64(count) - need}
	}
	out := make([]Key, 0, count)
	var last Run
	for i, g := range segs {
		for k := g.from; ; k = k.Add64(1) {
			out = append(out, k)
			if k == g.to {
				break
			}
		}
		r := Run{Start: g.from, End: g.to}
		if i > 0 && last.End.Add64(1) == g.from {
			r.Start = last.Start
		} else if g.hasLeft {
			r.Start = g.leftStart
		}
		if g.hasRight {
			s.Delete(g.right.Start)
			r.End = g.right.End
		}
		s.Put(r)
		last = r
	}
	sp.Used = sp.Used.Add64(uint64(count))
	return out, nil
}

// findFree appends to segs the free stretches of range rg, lowest first,
// until need keys are found or the range ends, and returns what is still
// needed. It only reads the store.
func findFree(s RunStore, rg Run, need uint64, segs []segment) ([]segment, uint64) {
	cur := rg.Start
	left, hasLeft := s.Floor(cur)
	if hasLeft && !left.End.Less(cur) {
		if !left.End.Less(rg.End) {
			return segs, need
		}
		cur = left.End.Add64(1)
	} else if hasLeft && left.End.Add64(1) != cur {
		hasLeft = false
	}
	for need > 0 {
		next, hasNext := s.Ceil(cur)
		inRange := hasNext && !rg.End.Less(next.Start)
		if inRange && next.Start == cur {
			// Runs are merged, so this only happens if the store was
			// written by something else; step over the run.
			if !next.End.Less(rg.End) {
				return segs, need
			}
			left, hasLeft = next, true
			cur = next.End.Add64(1)
			continue
		}
		gapEnd := rg.End
		if inRange {
			gapEnd = next.Start.Sub64(1)
		}
		g := segment{from: cur, leftStart: left.Start, hasLeft: hasLeft}
		if n := gapEnd.Sub(cur); n.Hi == 0 && n.Lo < need {
			g.to = gapEnd
			g.right, g.hasRight = next, inRange
			need -= n.Lo + 1
		} else {
			g.to = cur.Add64(need - 1)
			need = 0
		}
		segs = append(segs, g)
		if !inRange || need == 0 || !next.End.Less(rg.End) {
			return segs, need
		}
		left, hasLeft = next, true
		cur = next.End.Add64(1)
	}
	return segs, need
}

// IsUsed reports whether key k is held in the store.
func (sp *Space) IsUsed(s RunStore, k Key) bool {
	r, ok := s.Floor(k)
	return ok && !r.End.Less(k)
}

// Claim marks key k used. It fails with ErrOutside if k is not usable in
// the space and with ErrInUse if it is already used.
func (sp *Space) Claim(s RunStore, k Key) error {
	if !sp.Contains(k) {
		return sp.outside(k)
	}
	if _, ok := sp.claimRange(s, k, k); !ok {
		return errorf(ErrInUse, "%s is in use", sp.Format(k))
	}
	return nil
}

// ClaimOrNext claims the requested key k if it is free and otherwise the
// lowest free key, and returns the key it claimed. A k outside the space is
// an error, not a reason to fall back.
func (sp *Space) ClaimOrNext(s RunStore, k Key) (Key, error) {
	err := sp.Claim(s, k)
	if err == nil {
		return k, nil
	}
	if !errors.Is(err, ErrInUse) {
		return Key{}, err
	}
	keys, err := sp.NextFree(s, 1)
	if err != nil {
		return Key{}, err
	}
	return keys[0], nil
}

// ClaimRange marks every key in [from, to] used, all or nothing, as for a
// DHCP range or a block of reserved addresses. The range must lie within
// one range of the space and be entirely free.
func (sp *Space) ClaimRange(s RunStore, from, to Key) error {
	if err := sp.checkRange(from, to); err != nil {
		return err
	}
	if used, ok := sp.claimRange(s, from, to); !ok {
		msg := fmt.Sprintf("%s in %s is in use", sp.Format(used), sp.formatRun(Run{from, to}))
		if from == to {
			msg = sp.Format(used) + " is in use"
		}
		return &InUseError{Key: used, msg: msg}
	}
	return nil
}

// checkRange checks that [from, to] is ordered and within one range.
func (sp *Space) checkRange(from, to Key) error {
	if to.Less(from) {
		return errorf(ErrInvalidRange, "range %s-%s ends before it starts", sp.Format(from), sp.Format(to))
	}
	i := sp.rangeOf(from)
	if i < 0 {
		return sp.outside(from)
	}
	if sp.Ranges[i].End.Less(to) {
		return sp.outside(to)
	}
	return nil
}

// claimRange claims the checked range [from, to] if it is free, merging it
// with its neighbours, and otherwise returns the lowest used key in it.
func (sp *Space) claimRange(s RunStore, from, to Key) (Key, bool) {
	left, hasLeft := s.Floor(from)
	if hasLeft && !left.End.Less(from) {
		return from, false
	}
	next, hasNext := s.Ceil(from)
	if hasNext && !to.Less(next.Start) {
		return next.Start, false
	}
	r := Run{Start: from, End: to}
	if hasLeft && left.End.Add64(1) == from {
		r.Start = left.Start
	}
	if hasNext && to.Add64(1) == next.Start {
		s.Delete(next.Start)
		r.End = next.End
	}
	s.Put(r)
	sp.Used = sp.Used.Add(to.Sub(from).Add64(1))
	return Key{}, true
}

// Release marks key k free again, splitting its run. It fails with
// ErrNotAllocated if k is not used. Addresses go through the quarantine
// first; Release is what to call when their hold expires or is lifted.
func (sp *Space) Release(s RunStore, k Key) error {
	if !sp.Contains(k) {
		return sp.outside(k)
	}
	if _, ok := sp.releaseRange(s, k, k); !ok {
		return errorf(ErrNotAllocated, "%s is not allocated", sp.Format(k))
	}
	return nil
}

// ReleaseRange marks every key in [from, to] free, all or nothing; every
// key in it must be used.
func (sp *Space) ReleaseRange(s RunStore, from, to Key) error {
	if err := sp.checkRange(from, to); err != nil {
		return err
	}
	if free, ok := sp.releaseRange(s, from, to); !ok {
		return errorf(ErrNotAllocated, "%s in %s is not allocated", sp.Format(free), sp.formatRun(Run{from, to}))
	}
	return nil
}

// releaseRange frees the checked range [from, to] if all of it is used, and
// otherwise returns the lowest free key in it. Runs are merged, so a fully
// used range lies within one run.
func (sp *Space) releaseRange(s RunStore, from, to Key) (Key, bool) {
	r, ok := s.Floor(from)
	if !ok || r.End.Less(from) {
		return from, false
	}
	if r.End.Less(to) {
		return r.End.Add64(1), false
	}
	if r.Start == from {
		s.Delete(from)
	} else {
		s.Put(Run{Start: r.Start, End: from.Sub64(1)})
	}
	if to.Less(r.End) {
		s.Put(Run{Start: to.Add64(1), End: r.End})
	}
	sp.Used = sp.Used.Sub(to.Sub(from).Add64(1))
	return Key{}, true
}

// NextFreeBlock claims the lowest free block of 2^shift keys aligned to
// 2^shift, within one range of the space, and returns its first key. Each
// step skips at least one run too close to the candidate, so the cost grows
// with the number of runs it has to pass, not with the size of the space.
func (sp *Space) NextFreeBlock(s RunStore, shift uint) (Key, error) {
	if shift >= 128 {
		return Key{}, errorf(ErrInvalidLength, "a block of 2^%d keys is too large", shift)
	}
	k, ok := sp.nextFreeBlock(s, shift)
	if !ok {
		return Key{}, errorf(ErrExhausted, "no free aligned block of %s in %s", pow2(shift), sp.name())
	}
	return k, nil
}

func (sp *Space) nextFreeBlock(s RunStore, shift uint) (Key, bool) {
	span := lowMask(shift)
	for _, rg := range sp.Ranges {
		cand, ok := alignUp(rg.Start, shift)
		for ok {
			end := cand.Add(span)
			if end.Less(cand) || rg.End.Less(end) {
				break
			}
			r, used := s.Floor(end)
			if !used || r.End.Less(cand) {
				sp.claimRange(s, cand, end)
				return cand, true
			}
			if r.End == MaxKey {
				break
			}
			cand, ok = alignUp(r.End.Add64(1), shift)
		}
	}
	return Key{}, false
}

// NextFreePrefix claims the lowest free child prefix of length bits in a
// BlockSpace and returns it.
func (sp *Space) NextFreePrefix(s RunStore, bits int) (netip.Prefix, error) {
	if err := sp.checkChildBits(bits); err != nil {
		return netip.Prefix{}, err
	}
	k, ok := sp.nextFreeBlock(s, uint(familyBits(sp.Prefix.Addr())-bits))
	if !ok {
		return netip.Prefix{}, errorf(ErrExhausted, "1 requested, 0 available: no free /%d in %s", bits, sp.Prefix)
	}
	return netip.PrefixFrom(sp.Addr(k), bits), nil
}

// NextFreePrefixOutside is NextFreePrefix for a child that must not
// overlap avoid: it claims the lowest free child prefix of length bits
// that lies wholly outside avoid.
func (sp *Space) NextFreePrefixOutside(s RunStore, bits int, avoid netip.Prefix) (netip.Prefix, error) {
	if err := sp.checkChildBits(bits); err != nil {
		return netip.Prefix{}, err
	}
	if avoid.Addr().Is4() != sp.Prefix.Addr().Is4() || !avoid.Overlaps(sp.Prefix) {
		return sp.NextFreePrefix(s, bits)
	}
	ranges := sp.Ranges
	defer func() { sp.Ranges = ranges }()
	sp.Ranges = withoutRun(ranges, Run{KeyOf(avoid.Masked().Addr()), KeyOf(LastAddr(avoid))})
	k, ok := sp.nextFreeBlock(s, uint(familyBits(sp.Prefix.Addr())-bits))
	if !ok {
		return netip.Prefix{}, errorf(ErrExhausted, "1 requested, 0 available: no free /%d in %s outside %s", bits, sp.Prefix, avoid.Masked())
	}
	return netip.PrefixFrom(sp.Addr(k), bits), nil
}

// withoutRun returns the sorted, disjoint ranges rs less the keys of cut.
func withoutRun(rs []Run, cut Run) []Run {
	out := make([]Run, 0, len(rs)+1)
	for _, r := range rs {
		if r.End.Less(cut.Start) || cut.End.Less(r.Start) {
			out = append(out, r)
			continue
		}
		if r.Start.Less(cut.Start) {
			out = append(out, Run{r.Start, cut.Start.Sub64(1)})
		}
		if cut.End.Less(r.End) {
			out = append(out, Run{cut.End.Add64(1), r.End})
		}
	}
	return out
}

// checkChildBits checks that a child of length bits fits the block space.
func (sp *Space) checkChildBits(bits int) error {
	if sp.Kind == KindInt || !sp.Prefix.IsValid() {
		return errorf(ErrFamily, "%s holds no prefixes", sp.name())
	}
	if fb := familyBits(sp.Prefix.Addr()); bits <= sp.Prefix.Bits() || bits > fb {
		return errorf(ErrInvalidLength, "/%d does not fit in %s: a child is /%d to /%d", bits, sp.Prefix, sp.Prefix.Bits()+1, fb)
	}
	return nil
}

// ClaimPrefix claims child, a canonical prefix strictly inside the block
// space's prefix, failing with ErrInUse if any of it is taken.
func (sp *Space) ClaimPrefix(s RunStore, child netip.Prefix) error {
	from, to, err := sp.childRange(child)
	if err != nil {
		return err
	}
	if used, ok := sp.claimRange(s, from, to); !ok {
		return errorf(ErrInUse, "%s overlaps a used block at %s", child, sp.Format(used))
	}
	return nil
}

// ReleasePrefix frees child, which must be wholly claimed.
func (sp *Space) ReleasePrefix(s RunStore, child netip.Prefix) error {
	from, to, err := sp.childRange(child)
	if err != nil {
		return err
	}
	if free, ok := sp.releaseRange(s, from, to); !ok {
		return errorf(ErrNotAllocated, "%s is not allocated: %s is free", child, sp.Format(free))
	}
	return nil
}

// childRange returns the keys of child after checking it fits.
func (sp *Space) childRange(child netip.Prefix) (Key, Key, error) {
	if err := sp.checkChildBits(child.Bits()); err != nil {
		return Key{}, Key{}, err
	}
	if child.Masked() != child {
		return Key{}, Key{}, errorf(ErrNotCanonical, "%s is not canonical: did you mean %s?", child, child.Masked())
	}
	if child.Addr().Is4() != sp.Prefix.Addr().Is4() {
		return Key{}, Key{}, errorf(ErrFamily, "%s does not belong in %s", child, sp.Prefix)
	}
	if !Contains(sp.Prefix, child) {
		return Key{}, Key{}, errorf(ErrOutside, "%s is outside %s", child, sp.Prefix)
	}
	return KeyOf(child.Addr()), KeyOf(LastAddr(child)), nil
}

// FreeRuns returns up to limit stretches of free keys, lowest first, for
// listing what is available. It costs one store lookup per stretch.
func (sp *Space) FreeRuns(s RunStore, limit int) []Run {
	var out []Run
	for _, rg := range sp.Ranges {
		if len(out) >= limit {
			break
		}
		cur := rg.Start
		if r, ok := s.Floor(cur); ok && !r.End.Less(cur) {
			if !r.End.Less(rg.End) {
				continue
			}
			cur = r.End.Add64(1)
		}
		for len(out) < limit {
			next, ok := s.Ceil(cur)
			if !ok || rg.End.Less(next.Start) {
				out = append(out, Run{Start: cur, End: rg.End})
				break
			}
			if cur.Less(next.Start) {
				out = append(out, Run{Start: cur, End: next.Start.Sub64(1)})
			}
			if !next.End.Less(rg.End) {
				break
			}
			cur = next.End.Add64(1)
		}
	}
	return out
}
