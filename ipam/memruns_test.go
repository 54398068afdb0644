package ipam

import (
	"math/rand/v2"
	"slices"
	"testing"
)

// sliceRuns is a trivially correct RunStore used as the model for MemRuns.
type sliceRuns []Run

func (s *sliceRuns) find(a Key) (int, bool) {
	return slices.BinarySearchFunc(*s, a, func(r Run, a Key) int { return r.Start.Cmp(a) })
}

func (s *sliceRuns) Floor(a Key) (Run, bool) {
	i, found := s.find(a)
	if found {
		return (*s)[i], true
	}
	if i == 0 {
		return Run{}, false
	}
	return (*s)[i-1], true
}

func (s *sliceRuns) Ceil(a Key) (Run, bool) {
	i, _ := s.find(a)
	if i == len(*s) {
		return Run{}, false
	}
	return (*s)[i], true
}

func (s *sliceRuns) Put(r Run) {
	i, found := s.find(r.Start)
	if found {
		(*s)[i] = r
		return
	}
	*s = slices.Insert(*s, i, r)
}

func (s *sliceRuns) Delete(start Key) {
	if i, found := s.find(start); found {
		*s = slices.Delete(*s, i, i+1)
	}
}

func TestMemRunsMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Keys drawn from a few clusters so that neighbours share long
	// prefixes, differ in the high bytes, and sit at the extremes.
	bases := []Key{{}, {Lo: 1 << 32}, {Hi: 0x20010db8 << 32}, {Hi: 1 << 63}, MaxKey.Sub64(300)}
	key := func() Key { return bases[rng.IntN(len(bases))].Add64(rng.Uint64N(300)) }
	var m MemRuns
	var model sliceRuns
	for i := 0; i < 20000; i++ {
		k := key()
		switch rng.IntN(4) {
		case 0, 1:
			r := Run{Start: k, End: key()}
			m.Put(r)
			model.Put(r)
		case 2:
			m.Delete(k)
			model.Delete(k)
		case 3:
			got, gok := m.Floor(k)
			want, wok := model.Floor(k)
			if got != want || gok != wok {
				t.Fatalf("Floor(%s) = %v, %v; want %v, %v", k, got, gok, want, wok)
			}
			got, gok = m.Ceil(k)
			want, wok = model.Ceil(k)
			if got != want || gok != wok {
				t.Fatalf("Ceil(%s) = %v, %v; want %v, %v", k, got, gok, want, wok)
			}
		}
		if m.Len() != len(model) {
			t.Fatalf("Len = %d; want %d", m.Len(), len(model))
		}
	}
	if !slices.Equal(m.Runs(), []Run(model)) {
		t.Fatalf("Runs differ from the model")
	}
	for _, r := range model {
		m.Delete(r.Start)
	}
	if m.Len() != 0 || !m.root.empty() {
		t.Fatalf("store not empty after deleting everything: %d runs", m.Len())
	}
	if _, ok := m.Floor(MaxKey); ok {
		t.Fatalf("Floor on an empty store found a run")
	}
}

func TestMemRunsEdges(t *testing.T) {
	var m MemRuns
	if _, ok := m.Ceil(Key{}); ok {
		t.Fatal("Ceil on zero store")
	}
	m.Put(Run{Start: Key{}, End: IntKey(1)})
	m.Put(Run{Start: MaxKey, End: MaxKey})
	if r, ok := m.Floor(MaxKey.Sub64(1)); !ok || r.Start != (Key{}) {
		t.Fatalf("Floor(max-1) = %v, %v", r, ok)
	}
	if r, ok := m.Ceil(IntKey(1)); !ok || r.Start != MaxKey {
		t.Fatalf("Ceil(1) = %v, %v", r, ok)
	}
	if r, ok := m.Floor(MaxKey); !ok || r.Start != MaxKey {
		t.Fatalf("Floor(max) = %v, %v", r, ok)
	}
	m.Put(Run{Start: MaxKey, End: MaxKey})
	if m.Len() != 2 {
		t.Fatalf("replacing Put changed Len to %d", m.Len())
	}
	m.Delete(IntKey(7))
	if m.Len() != 2 {
		t.Fatalf("deleting a missing run changed Len to %d", m.Len())
	}
}
