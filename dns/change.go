package dns

import (
	"bytes"
	"cmp"
	"maps"
	"math"
	"slices"
	"strings"

	"github.com/miekg/dns"
)

// rrset is an RRset being made or changed: its records in order, the TTL
// each was added with and how many times each was added (a record added
// twice stays until it is removed twice). ttls and refs stay nil while
// every record has its own header's TTL and was added once, as nearly
// every one has.
//
// Records of an ordered type (see ordered) are appended by add after the
// first sorted, which are in order, and settle puts them in place: a name
// with many addresses costs O(n log n) to make, not a comparison with
// every record held for each record added.
type rrset struct {
	rrs    []dns.RR
	ttls   []uint32
	refs   []uint32
	sorted int
}

// rrsetMore is what an answer keeps of its RRset beyond its records.
type rrsetMore struct {
	ttls []uint32
	refs []uint32
}

// ttl returns the TTL record i was added with.
func (s *rrset) ttl(i int) uint32 {
	if s.ttls == nil {
		return s.rrs[i].Header().Ttl
	}
	return s.ttls[i]
}

// ref returns how many times record i was added.
func (s *rrset) ref(i int) uint32 {
	if s.refs == nil {
		return 1
	}
	return s.refs[i]
}

// ordered reports whether rrCompare tells records of rr's type apart as
// dns.IsDuplicate does within one RRset: equal is the same record.
func ordered(rr dns.RR) bool {
	switch rr.(type) {
	case *dns.A, *dns.AAAA, *dns.PTR:
		return true
	}
	return false
}

// add adds rr, or counts it again if the set holds it already. The set
// keeps its records in rrCompare's order, so that an answer is the same
// whatever order its records came in: on every server, and before and
// after a rebuild.
func (s *rrset) add(rr dns.RR) {
	if ordered(rr) {
		s.rrs = append(s.rrs, rr)
		if s.ttls != nil {
			s.ttls = append(s.ttls, rr.Header().Ttl)
		}
		if s.refs != nil {
			s.refs = append(s.refs, 1)
		}
		return
	}
	at := len(s.rrs)
	for i, have := range s.rrs {
		if dns.IsDuplicate(have, rr) {
			s.count(i)
			return
		}
		if at == len(s.rrs) && rrCompare(rr, have) < 0 {
			at = i
		}
	}
	s.rrs = slices.Insert(s.rrs, at, rr)
	if s.ttls != nil {
		s.ttls = slices.Insert(s.ttls, at, rr.Header().Ttl)
	}
	if s.refs != nil {
		s.refs = slices.Insert(s.refs, at, 1)
	}
	s.sorted = len(s.rrs)
}

// count counts record i once more.
func (s *rrset) count(i int) {
	if s.refs == nil {
		s.refs = make([]uint32, len(s.rrs))
		for j := range s.refs {
			s.refs[j] = 1
		}
	}
	s.refs[i]++
}

// settle puts the records add appended in order among the others; a
// record the set holds already is counted again, keeping the TTL it was
// first added with.
func (s *rrset) settle() {
	n := len(s.rrs)
	if s.sorted == n {
		return
	}
	type entry struct {
		rr       dns.RR
		ttl, ref uint32
	}
	es := make([]entry, n)
	for i := range es {
		es[i] = entry{s.rrs[i], s.ttl(i), s.ref(i)}
	}
	slices.SortStableFunc(es[s.sorted:], func(a, b entry) int { return rrCompare(a.rr, b.rr) })
	out := make([]entry, 0, n)
	for i, j := 0, s.sorted; i < s.sorted || j < n; {
		var e entry
		if j == n || i < s.sorted && rrCompare(es[i].rr, es[j].rr) <= 0 {
			e, i = es[i], i+1
		} else {
			e, j = es[j], j+1
		}
		if k := len(out) - 1; k >= 0 && rrCompare(out[k].rr, e.rr) == 0 {
			out[k].ref += e.ref
			continue
		}
		out = append(out, e)
	}
	clear(s.rrs[len(out):])
	s.rrs, s.ttls, s.refs = s.rrs[:len(out)], nil, nil
	for i, e := range out {
		s.rrs[i] = e.rr
		if e.ttl != e.rr.Header().Ttl && s.ttls == nil {
			s.ttls = make([]uint32, len(out))
			for j := range i {
				s.ttls[j] = out[j].ttl
			}
		}
		if s.ttls != nil {
			s.ttls[i] = e.ttl
		}
		if e.ref != 1 && s.refs == nil {
			s.refs = make([]uint32, len(out))
			for j := range i {
				s.refs[j] = out[j].ref
			}
		}
		if s.refs != nil {
			s.refs[i] = e.ref
		}
	}
	s.sorted = len(s.rrs)
}

// rrCompare orders the records of one RRset: addresses by value, PTR
// records by target (without regard to ASCII case, as names compare),
// others by their text.
func rrCompare(a, b dns.RR) int {
	switch a := a.(type) {
	case *dns.A:
		if b, ok := b.(*dns.A); ok {
			return bytes.Compare(a.A.To4(), b.A.To4())
		}
	case *dns.AAAA:
		if b, ok := b.(*dns.AAAA); ok {
			return bytes.Compare(a.AAAA.To16(), b.AAAA.To16())
		}
	case *dns.PTR:
		if b, ok := b.(*dns.PTR); ok {
			return compareFold(a.Ptr, b.Ptr)
		}
	}
	return strings.Compare(a.String(), b.String())
}

// compareFold compares a and b as strings.Compare does, with ASCII
// letters in lower case.
func compareFold(a, b string) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		x, y := lower(a[i]), lower(b[i])
		if x != y {
			return cmp.Compare(x, y)
		}
	}
	return cmp.Compare(len(a), len(b))
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// remove takes rr out once, and reports whether the set held it.
func (s *rrset) remove(rr dns.RR) bool {
	i, ok := s.find(rr)
	if !ok {
		return false
	}
	if s.refs != nil {
		if s.refs[i]--; s.refs[i] > 0 {
			return true
		}
		s.refs = slices.Delete(s.refs, i, i+1)
	}
	if s.ttls != nil {
		s.ttls = slices.Delete(s.ttls, i, i+1)
	}
	s.rrs = slices.Delete(s.rrs, i, i+1)
	s.sorted = len(s.rrs)
	return true
}

// find returns the place of rr in the set, settled first, and whether the
// set holds it.
func (s *rrset) find(rr dns.RR) (int, bool) {
	s.settle()
	if ordered(rr) {
		i, ok := slices.BinarySearchFunc(s.rrs, rr, rrCompare)
		return i, ok && dns.IsDuplicate(s.rrs[i], rr)
	}
	for i, have := range s.rrs {
		if dns.IsDuplicate(have, rr) {
			return i, true
		}
	}
	return 0, false
}

// rrsetOf returns the RRset a served answer was made from, to be changed;
// the answer itself is left as it is. A nil answer gives an empty set.
func rrsetOf(a *answer) rrset {
	if a == nil {
		return rrset{}
	}
	s := rrset{rrs: slices.Clone(a.rrs), sorted: len(a.rrs)}
	if a.more != nil {
		s.ttls, s.refs = slices.Clone(a.more.ttls), slices.Clone(a.more.refs)
	}
	return s
}

// pack makes the answer of a non-empty RRset into a, which it returns.
// The records are served with the set's least TTL (RFC 2181 5.2); a record
// with another TTL is copied, never changed, since served answers may
// share it. The set must not be used afterwards: the answer keeps its
// slices.
func (b *builder) pack(a *answer, k key, s *rrset) *answer {
	s.settle()
	ttl := s.ttl(0)
	for i := 1; i < len(s.rrs); i++ {
		ttl = min(ttl, s.ttl(i))
	}
	*a = answer{rrs: s.rrs, count: uint16(min(len(s.rrs), 0xffff))}
	// What each record was added with is kept before the served copies
	// get the set's TTL: without ttls, a record's own TTL is its header's.
	plain := true
	for i := range s.rrs {
		plain = plain && s.ref(i) == 1 && s.ttl(i) == ttl
	}
	if !plain {
		a.more = &rrsetMore{ttls: make([]uint32, len(s.rrs)), refs: make([]uint32, len(s.rrs))}
		for i := range s.rrs {
			a.more.ttls[i], a.more.refs[i] = s.ttl(i), s.ref(i)
		}
	}
	for i, rr := range s.rrs {
		if rr.Header().Ttl != ttl {
			rr = dns.Copy(rr)
			rr.Header().Ttl = ttl
			s.rrs[i] = rr
		}
	}
	a.wire, a.qlen = b.arena.packAnswer(k, a.rrs)
	return a
}

// change makes the builder's next index: the records it adds and removes
// change RRsets and names, and finish makes the index. The first index
// writes its base table; later ones a copy of the last overlay.
type change struct {
	b    *builder
	next *index
	to   *table // the table written: next's base or overlay
	// zonesOwned says next's zones map is its own, not the last index's.
	zonesOwned bool
	// sets holds the RRsets changed so far, in order, and keys their keys'
	// places in it.
	sets  []rrset
	keys  map[key]int
	order []key
}

// change starts the next index; with incremental, from the builder's
// current one.
func (b *builder) change(incremental bool) *change {
	c := &change{b: b, next: b.ix, keys: map[key]int{}}
	if incremental {
		next := *b.ix
		next.over = table{answers: maps.Clone(b.ix.over.answers), names: maps.Clone(b.ix.over.names)}
		if next.over.answers == nil {
			next.over = table{answers: map[key]*answer{}, names: map[string]string{}}
		}
		c.next = &next
	}
	c.to = &c.next.base
	if incremental {
		c.to = &c.next.over
	}
	return c
}

// set returns the RRset of k as changed so far. It is valid until the
// next call.
func (c *change) set(k key) *rrset {
	i, ok := c.keys[k]
	if !ok {
		i = len(c.sets)
		c.sets = append(c.sets, rrsetOf(c.next.answer(k)))
		c.order = append(c.order, k)
		c.keys[k] = i
	}
	return &c.sets[i]
}

// hasRecords reports whether name owns an RRset of a host type.
func (c *change) hasRecords(name string) bool {
	for _, t := range hostTypes {
		k := key{name, t}
		if i, ok := c.keys[k]; ok {
			if len(c.sets[i].rrs) > 0 {
				return true
			}
		} else if c.next.answer(k) != nil {
			return true
		}
	}
	return false
}

func (c *change) add(rec *Record) {
	name, z, rr, problem := c.next.parse(rec)
	if problem != "" {
		c.next.skip(problem)
		return
	}
	existed := c.next.zoneName(name) != ""
	c.set(key{name, rr.Header().Rrtype}).add(rr)
	if !existed {
		c.created(name, z)
	}
}

func (c *change) remove(rec *Record) {
	name, z, rr, problem := c.next.parse(rec)
	if problem != "" {
		return // skipped when it was added
	}
	s := c.set(key{name, rr.Header().Rrtype})
	if s.remove(rr) && len(s.rrs) == 0 && name != z.name && c.b.children[name] == 0 && !c.hasRecords(name) {
		c.ceased(name, z)
	}
}

// created records that name exists in z, and so do its ancestors up to
// the apex (empty non-terminals answer NODATA, not NXDOMAIN).
func (c *change) created(name string, z *zone) {
	for {
		c.setName(name, z.name)
		if name == z.name {
			return
		}
		p := parent(name)
		existed := c.next.zoneName(p) != ""
		c.b.children[p]++
		if existed {
			return
		}
		name = p
	}
}

// ceased records that name, which has neither records nor names below
// it, no longer exists, nor do the ancestors it alone kept.
func (c *change) ceased(name string, z *zone) {
	for {
		c.setName(name, "")
		p := parent(name)
		if c.b.children[p]--; c.b.children[p] > 0 {
			return
		}
		delete(c.b.children, p)
		if p == z.name || c.hasRecords(p) {
			return
		}
		name = p
	}
}

// parent returns the name one label up; the parent of a top-level name is
// the root.
func parent(name string) string {
	off, end := dns.NextLabel(name, 0)
	if end {
		return "."
	}
	return name[off:]
}

// setName records name in zone zn, or, with zn empty, removes it.
func (c *change) setName(name, zn string) {
	c.to.names[name] = zn
	if zn == "" && c.to == &c.next.base {
		delete(c.to.names, name)
	} else if zn == "" {
		if _, inBase := c.next.base.names[name]; !inBase {
			delete(c.to.names, name)
		}
	}
}

// setAnswer records k's answer, or, with a nil one, removes it.
func (c *change) setAnswer(k key, a *answer) {
	c.to.answers[k] = a
	if a == nil && c.to == &c.next.base {
		delete(c.to.answers, k)
	} else if a == nil {
		if _, inBase := c.next.base.answers[k]; !inBase {
			delete(c.to.answers, k)
		}
	}
}

// finish packs the changed RRsets and returns the next index, which the
// builder keeps as its current one.
func (c *change) finish() *index {
	if c.zonesOwned {
		c.next.findAboveZones()
	}
	answers := make([]answer, len(c.sets)) // one allocation for all
	for i, k := range c.order {
		s := &c.sets[i]
		s.settle()
		if old := c.next.answer(k); old != nil {
			c.next.records -= len(old.rrs)
		}
		if len(s.rrs) == 0 {
			c.setAnswer(k, nil)
			continue
		}
		c.next.records += len(s.rrs)
		c.setAnswer(k, c.b.pack(&answers[i], k, s))
	}
	if c.to == &c.next.over && len(c.to.answers)+len(c.to.names) > foldAt(len(c.next.base.answers)+len(c.next.base.names)) {
		c.next.fold()
	}
	c.b.ix = c.next
	return c.next
}

// foldAt is the overlay size at which it is folded into a new base of
// base entries. Each change copies the overlay and each fold the base, so
// with a change writing a few entries the cost per change is least when
// the overlay folds at about the square root of 16 times the base.
func foldAt(base int) int { return max(4096, int(math.Sqrt(16*float64(base)))) }

// fold makes a new base of the base and the overlay, and empties the
// overlay. The old base is left as it is for queries still reading it.
func (ix *index) fold() {
	base := table{answers: maps.Clone(ix.base.answers), names: maps.Clone(ix.base.names)}
	for k, a := range ix.over.answers {
		if a == nil {
			delete(base.answers, k)
		} else {
			base.answers[k] = a
		}
	}
	for n, z := range ix.over.names {
		if z == "" {
			delete(base.names, n)
		} else {
			base.names[n] = z
		}
	}
	ix.base, ix.over = base, table{}
}

// skip counts a dropped record and keeps the first reason.
func (ix *index) skip(problem string) {
	if ix.skipped == 0 {
		ix.problem = problem
	}
	ix.skipped++
}

// apply makes the next index from the current one and changes, in order,
// and returns it; indexes made before stay as they were. It returns false
// when the changes cannot be made to the current index alone: a zone that
// comes or goes while names exist under its apex (their zone changes), or
// a zone listed twice. The builder must then be discarded and the index
// rebuilt from a snapshot.
func (b *builder) apply(changes []Change) (*index, bool) {
	c := b.change(true)
	// A serial is given to the zones once, before zones are added and at
	// the end: each time repacks every zone.
	var serial uint32
	for i := range changes {
		ch := &changes[i]
		for j := range ch.Remove {
			c.remove(&ch.Remove[j])
		}
		for _, name := range ch.RemoveZones {
			if !c.removeZone(name) {
				return nil, false
			}
		}
		if len(ch.Zones) > 0 && serial != 0 {
			c.reserial(serial)
			serial = 0
		}
		for j := range ch.Zones {
			if !c.addZone(&ch.Zones[j]) {
				return nil, false
			}
		}
		for j := range ch.Add {
			c.add(&ch.Add[j])
		}
		serial = cmp.Or(ch.Serial, serial)
	}
	if serial != 0 {
		c.reserial(serial)
	}
	return c.finish(), true
}

// ownZones gives the next index a zones map of its own, to change.
func (c *change) ownZones() {
	if !c.zonesOwned {
		c.next.zones = maps.Clone(c.next.zones)
		c.zonesOwned = true
	}
}

// reserial makes serial the SOA serial of every zone.
func (c *change) reserial(serial uint32) {
	for n, z := range c.next.zones {
		if z.conf.serial != serial {
			c.ownZones()
			conf := z.conf
			conf.serial = serial
			c.next.zones[n] = c.b.newZone(n, conf)
		}
	}
}

// removeZone stops serving the zone name, which must hold no names but
// its apex by now. A zone not served is no change.
func (c *change) removeZone(name string) bool {
	name, ok := canonical(name)
	if !ok || c.next.zones[name] == nil {
		return true
	}
	if c.b.children[name] > 0 || c.hasRecords(name) {
		return false
	}
	c.ownZones()
	delete(c.next.zones, name)
	c.setName(name, "")
	return true
}

// addZone serves a new zone, whose apex must not be a name already: no
// name of the zone around it may lie in the new one.
func (c *change) addZone(zc *Zone) bool {
	name, conf, problem := zoneSettings(zc)
	switch {
	case problem != "":
		c.next.skip(problem)
		return true
	case c.next.zones[name] != nil || c.next.zoneName(name) != "":
		return false
	}
	c.ownZones()
	c.next.zones[name] = c.b.newZone(name, conf)
	c.setName(name, name)
	return true
}
