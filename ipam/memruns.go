package ipam

import "math/bits"

// MemRuns is an in-memory RunStore for tests, benchmarks and tools: a trie of
// fixed depth 16 over the bytes of Start, each node with 256 children and a
// bitmap of which are present. Every operation takes at most a few
// root-to-leaf walks, so its cost depends on the key length only, not on how
// many runs the store holds, much as go-memdb's radix tree behaves. It also
// caches recently reached leaves (fingers), so an operation near a recent
// one skips the walk: an allocation works at two places, the run it extends
// and the gap it fills. Nodes emptied by Delete are kept for reuse, so a
// store's memory follows its high-water mark. The zero value is an empty
// store. It is not safe for concurrent use, not even for concurrent reads.
type MemRuns struct {
	root     *trieNode
	n        int
	min, max Key // the least and greatest Start, when n > 0

	// fingers caches recently reached leaves, direct-mapped by the low
	// bits of their leaf number, so neighbouring leaves do not evict each
	// other.
	fingers [fingerSlots]finger
}

const fingerSlots = 8

// finger is a last-level node and the key of its first slot.
type finger struct {
	leaf *trieNode
	key  Key
}

// leafKey returns the key of the first slot of a's leaf.
func leafKey(a Key) Key { return Key{Hi: a.Hi, Lo: a.Lo &^ 0xff} }

// fingerOf returns a's leaf if a finger holds it, or nil.
func (m *MemRuns) fingerOf(a Key) *trieNode {
	f := &m.fingers[a.Lo>>8%fingerSlots]
	if f.key.Lo == a.Lo&^0xff && f.key.Hi == a.Hi {
		return f.leaf
	}
	return nil
}

// inLeaf returns the key in slot d of a's leaf.
func inLeaf(a Key, d int) Key { return Key{Hi: a.Hi, Lo: a.Lo&^0xff | uint64(d)} }

// setFinger records n as the leaf of key a.
func (m *MemRuns) setFinger(n *trieNode, a Key) {
	m.fingers[a.Lo>>8%fingerSlots] = finger{leaf: n, key: leafKey(a)}
}

// trieNode is one level of MemRuns. Nodes above the last level use kids;
// nodes at the last level (depth 15) use ends, holding each run's End. A
// digit's bit in set is on exactly when its subtree holds a run; a kid whose
// bit is off is an empty node kept for reuse.
type trieNode struct {
	set  [4]uint64
	kids *[256]*trieNode // above the last level
	ends *[256]Key       // at the last level; holds no pointers for the GC
}

const trieDepth = 16

func (n *trieNode) has(d byte) bool { return n.set[d>>6]&(1<<(d&63)) != 0 }
func (n *trieNode) mark(d byte)     { n.set[d>>6] |= 1 << (d & 63) }
func (n *trieNode) clear(d byte)    { n.set[d>>6] &^= 1 << (d & 63) }
func (n *trieNode) empty() bool     { return n.set == [4]uint64{} }

// below returns the greatest present digit < d, or -1.
func (n *trieNode) below(d byte) int {
	w := int(d >> 6)
	if m := n.set[w] & (1<<(d&63) - 1); m != 0 {
		return w*64 + 63 - bits.LeadingZeros64(m)
	}
	for w--; w >= 0; w-- {
		if m := n.set[w]; m != 0 {
			return w*64 + 63 - bits.LeadingZeros64(m)
		}
	}
	return -1
}

// above returns the smallest present digit > d, or -1.
func (n *trieNode) above(d byte) int {
	w := int(d >> 6)
	if m := n.set[w] & (^uint64(0) << (d & 63) << 1); m != 0 {
		return w*64 + bits.TrailingZeros64(m)
	}
	for w++; w < 4; w++ {
		if m := n.set[w]; m != 0 {
			return w*64 + bits.TrailingZeros64(m)
		}
	}
	return -1
}

// Len returns the number of runs.
func (m *MemRuns) Len() int { return m.n }

// Runs returns all runs in order of Start.
func (m *MemRuns) Runs() []Run {
	out := make([]Run, 0, m.n)
	r, ok := m.Ceil(Key{})
	for ok {
		out = append(out, r)
		if r.Start == MaxKey {
			break
		}
		r, ok = m.Ceil(r.Start.Add64(1))
	}
	return out
}

// Floor returns the run with the greatest Start <= a.
func (m *MemRuns) Floor(a Key) (Run, bool) {
	if m.n == 0 || a.Less(m.min) {
		return Run{}, false
	}
	if !a.Less(m.max) {
		a = m.max
	}
	if f := m.fingerOf(a); f != nil {
		d := byte(a.Lo)
		if f.has(d) {
			return Run{Start: a, End: f.ends[d]}, true
		}
		if p := f.below(d); p >= 0 {
			return Run{Start: inLeaf(a, p), End: f.ends[p]}, true
		}
	}
	b := a.Bytes()
	var path [trieDepth]*trieNode
	n := m.root
	i := 0
	for ; n != nil; i++ {
		path[i] = n
		d := b[i]
		if !n.has(d) {
			break
		}
		if i == trieDepth-1 {
			m.setFinger(n, a)
			return Run{Start: a, End: n.ends[d]}, true
		}
		n = n.kids[d]
	}
	if n == nil {
		return Run{}, false
	}
	for ; i >= 0; i-- {
		if d := path[i].below(b[i]); d >= 0 {
			return m.edge(path[i], i, a.head(i).withDigit(i, byte(d)), byte(d), true), true
		}
	}
	return Run{}, false
}

// Ceil returns the run with the smallest Start >= a.
func (m *MemRuns) Ceil(a Key) (Run, bool) {
	if m.n == 0 || m.max.Less(a) {
		return Run{}, false
	}
	if a.Less(m.min) {
		a = m.min
	}
	if f := m.fingerOf(a); f != nil {
		d := byte(a.Lo)
		if f.has(d) {
			return Run{Start: a, End: f.ends[d]}, true
		}
		if p := f.above(d); p >= 0 {
			return Run{Start: inLeaf(a, p), End: f.ends[p]}, true
		}
	}
	b := a.Bytes()
	var path [trieDepth]*trieNode
	n := m.root
	i := 0
	for ; n != nil; i++ {
		path[i] = n
		d := b[i]
		if !n.has(d) {
			break
		}
		if i == trieDepth-1 {
			m.setFinger(n, a)
			return Run{Start: a, End: n.ends[d]}, true
		}
		n = n.kids[d]
	}
	if n == nil {
		return Run{}, false
	}
	for ; i >= 0; i-- {
		if d := path[i].above(b[i]); d >= 0 {
			return m.edge(path[i], i, a.head(i).withDigit(i, byte(d)), byte(d), false), true
		}
	}
	return Run{}, false
}

// edge descends from node n at level i through digit d to the greatest
// (max) or smallest run below it; k holds the digits so far.
func (m *MemRuns) edge(n *trieNode, i int, k Key, d byte, max bool) Run {
	for ; i < trieDepth-1; i++ {
		n = n.kids[d]
		var c int
		if max {
			c = n.below(255)
			if n.has(255) {
				c = 255
			}
		} else {
			c = n.above(0)
			if n.has(0) {
				c = 0
			}
		}
		d = byte(c)
		k = k.withDigit(i+1, d)
	}
	m.setFinger(n, k)
	return Run{Start: k, End: n.ends[d]}
}

// Put inserts r, or replaces the run with the same Start.
func (m *MemRuns) Put(r Run) {
	// A non-empty leaf has its bits set on the path above it.
	n := m.fingerOf(r.Start)
	if n == nil || n.empty() {
		n = m.walkCreate(r.Start)
	}
	d := byte(r.Start.Lo)
	if !n.has(d) {
		n.mark(d)
		if m.n == 0 || r.Start.Less(m.min) {
			m.min = r.Start
		}
		if m.n == 0 || m.max.Less(r.Start) {
			m.max = r.Start
		}
		m.n++
	}
	n.ends[d] = r.End
}

// walkCreate returns the leaf for key a, creating and marking the path to
// it, and records it as a finger.
func (m *MemRuns) walkCreate(a Key) *trieNode {
	if m.root == nil {
		m.root = new(trieNode)
	}
	n := m.root
	b := a.Bytes()
	for i := 0; i < trieDepth-1; i++ {
		d := b[i]
		if !n.has(d) {
			n.mark(d)
			if n.kids == nil {
				n.kids = new([256]*trieNode)
			}
			if n.kids[d] == nil {
				n.kids[d] = new(trieNode)
			}
		}
		n = n.kids[d]
	}
	if n.ends == nil {
		n.ends = new([256]Key)
	}
	m.setFinger(n, a)
	return n
}

// Delete removes the run starting at start, if there is one.
func (m *MemRuns) Delete(start Key) {
	if f := m.fingerOf(start); f != nil {
		d := byte(start.Lo)
		if !f.has(d) {
			return
		}
		// Clearing the last run of a leaf must clear the path above
		// it too: leave that to the walk below.
		if f.clear(d); !f.empty() {
			m.deleted(start)
			return
		}
		f.mark(d)
	}
	if m.n == 0 || start.Less(m.min) || m.max.Less(start) {
		return
	}
	b := start.Bytes()
	var path [trieDepth]*trieNode
	n := m.root
	for i := 0; i < trieDepth; i++ {
		if !n.has(b[i]) {
			return
		}
		path[i] = n
		if i < trieDepth-1 {
			n = n.kids[b[i]]
		}
	}
	for i := trieDepth - 1; i >= 0; i-- {
		path[i].clear(b[i])
		if !path[i].empty() {
			break
		}
	}
	m.deleted(start)
}

// deleted updates the count and bounds after the run at start is gone.
func (m *MemRuns) deleted(start Key) {
	if m.n--; start == m.min || start == m.max {
		m.bounds(start)
	}
}

// bounds recomputes min or max after the run at start, one of them, is
// gone.
func (m *MemRuns) bounds(start Key) {
	if m.n > 0 && start == m.min {
		r, _ := m.Ceil(start)
		m.min = r.Start
	}
	if m.n > 0 && start == m.max {
		r, _ := m.Floor(start)
		m.max = r.Start
	}
}
