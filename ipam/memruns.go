package ipam

import "math/bits"

// MemRuns is an in-memory RunStore for tests, benchmarks and tools: a trie of
// fixed depth 16 over the bytes of Start, each node with 256 children and a
// bitmap of which are present. Every operation walks at most two root-to-leaf
// paths, so its cost depends on the key length only, not on how many runs
// the store holds, much as go-memdb's radix tree behaves. Nodes emptied by
// Delete are kept for reuse, so a store's memory follows its high-water
// mark. The zero value is an empty store. It is not safe for concurrent
// use.
type MemRuns struct {
	root *trieNode
	n    int
}

// trieNode is one level of MemRuns. Nodes above the last level use kids;
// nodes at the last level (depth 15) use ends, holding each run's End. A
// digit's bit in set is on exactly when its subtree holds a run; a kid whose
// bit is off is an empty node kept for reuse.
type trieNode struct {
	set  [4]uint64
	kids [256]*trieNode
	ends *[256]Key
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
	var path [trieDepth]*trieNode
	n := m.root
	i := 0
	for ; n != nil; i++ {
		path[i] = n
		d := a.digit(i)
		if !n.has(d) {
			break
		}
		if i == trieDepth-1 {
			return Run{Start: a, End: n.ends[d]}, true
		}
		n = n.kids[d]
	}
	if n == nil {
		return Run{}, false
	}
	for ; i >= 0; i-- {
		if d := path[i].below(a.digit(i)); d >= 0 {
			return m.edge(path[i], i, a.head(i).withDigit(i, byte(d)), byte(d), true), true
		}
	}
	return Run{}, false
}

// Ceil returns the run with the smallest Start >= a.
func (m *MemRuns) Ceil(a Key) (Run, bool) {
	var path [trieDepth]*trieNode
	n := m.root
	i := 0
	for ; n != nil; i++ {
		path[i] = n
		d := a.digit(i)
		if !n.has(d) {
			break
		}
		if i == trieDepth-1 {
			return Run{Start: a, End: n.ends[d]}, true
		}
		n = n.kids[d]
	}
	if n == nil {
		return Run{}, false
	}
	for ; i >= 0; i-- {
		if d := path[i].above(a.digit(i)); d >= 0 {
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
	return Run{Start: k, End: n.ends[d]}
}

// Put inserts r, or replaces the run with the same Start.
func (m *MemRuns) Put(r Run) {
	if m.root == nil {
		m.root = new(trieNode)
	}
	n := m.root
	for i := 0; i < trieDepth-1; i++ {
		d := r.Start.digit(i)
		if !n.has(d) {
			n.mark(d)
			if n.kids[d] == nil {
				n.kids[d] = new(trieNode)
			}
		}
		n = n.kids[d]
	}
	d := r.Start.digit(trieDepth - 1)
	if n.ends == nil {
		n.ends = new([256]Key)
	}
	if !n.has(d) {
		n.mark(d)
		m.n++
	}
	n.ends[d] = r.End
}

// Delete removes the run starting at start, if there is one.
func (m *MemRuns) Delete(start Key) {
	var path [trieDepth]*trieNode
	n := m.root
	for i := 0; i < trieDepth; i++ {
		if n == nil || !n.has(start.digit(i)) {
			return
		}
		path[i] = n
		if i < trieDepth-1 {
			n = n.kids[start.digit(i)]
		}
	}
	m.n--
	for i := trieDepth - 1; i >= 0; i-- {
		path[i].clear(start.digit(i))
		if !path[i].empty() {
			return
		}
	}
}
