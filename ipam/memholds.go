package ipam

// holdID identifies a hold in MemHolds.
type holdID struct {
	space string
	key   Key
}

// MemHolds is an in-memory HoldStore: a binary heap ordered by CompareHolds
// with a map from (Space, Key) to heap position, so every operation is
// O(log n). The zero value is empty. It is not safe for concurrent use.
type MemHolds struct {
	heap []Hold
	pos  map[holdID]int
}

// Len returns the number of holds.
func (m *MemHolds) Len() int { return len(m.heap) }

// Get returns the hold on key k of space.
func (m *MemHolds) Get(space string, k Key) (Hold, bool) {
	i, ok := m.pos[holdID{space, k}]
	if !ok {
		return Hold{}, false
	}
	return m.heap[i], true
}

// First returns the hold that is first by CompareHolds.
func (m *MemHolds) First() (Hold, bool) {
	if len(m.heap) == 0 {
		return Hold{}, false
	}
	return m.heap[0], true
}

// Put inserts h, or replaces the hold with the same Space and Key.
func (m *MemHolds) Put(h Hold) {
	if m.pos == nil {
		m.pos = make(map[holdID]int)
	}
	id := holdID{h.Space, h.Key}
	if i, ok := m.pos[id]; ok {
		m.heap[i] = h
		m.fix(i)
		return
	}
	m.heap = append(m.heap, h)
	m.pos[id] = len(m.heap) - 1
	m.up(len(m.heap) - 1)
}

// Delete removes the hold on key k of space, if there is one.
func (m *MemHolds) Delete(space string, k Key) {
	id := holdID{space, k}
	i, ok := m.pos[id]
	if !ok {
		return
	}
	last := len(m.heap) - 1
	m.swap(i, last)
	m.heap = m.heap[:last]
	delete(m.pos, id)
	if i < last {
		m.fix(i)
	}
}

func (m *MemHolds) swap(i, j int) {
	m.heap[i], m.heap[j] = m.heap[j], m.heap[i]
	m.pos[holdID{m.heap[i].Space, m.heap[i].Key}] = i
	m.pos[holdID{m.heap[j].Space, m.heap[j].Key}] = j
}

func (m *MemHolds) fix(i int) {
	if !m.down(i) {
		m.up(i)
	}
}

func (m *MemHolds) up(i int) {
	for i > 0 {
		p := (i - 1) / 2
		if CompareHolds(m.heap[i], m.heap[p]) >= 0 {
			return
		}
		m.swap(i, p)
		i = p
	}
}

// down sifts i towards the leaves and reports whether it moved.
func (m *MemHolds) down(i int) bool {
	start := i
	for {
		c := 2*i + 1
		if c >= len(m.heap) {
			break
		}
		if r := c + 1; r < len(m.heap) && CompareHolds(m.heap[r], m.heap[c]) < 0 {
			c = r
		}
		if CompareHolds(m.heap[c], m.heap[i]) >= 0 {
			break
		}
		m.swap(i, c)
		i = c
	}
	return i != start
}
