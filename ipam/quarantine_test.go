package ipam

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestQuarantine(t *testing.T) {
	const t0 = int64(1_700_000_000_000_000_000)
	sp, m := addrSpace(t, "10.0.0.0/29", false)
	var q MemHolds
	keys, err := sp.NextFree(m, 3)
	if err != nil {
		t.Fatal(err)
	}
	// Release .1 at t0 and .2 a minute later; the key stays used while held.
	for i, k := range keys[:2] {
		at := t0 + int64(i)*int64(time.Minute)
		h, err := Quarantine(&q, "p1", k, at, DefaultQuarantine)
		if err != nil {
			t.Fatal(err)
		}
		if h.Until != at+int64(DefaultQuarantine) {
			t.Fatalf("Until = %d", h.Until)
		}
	}
	_, err = Quarantine(&q, "p1", keys[0], t0, DefaultQuarantine)
	wantErr(t, err, ErrQuarantined, "")
	next, err := sp.NextFree(m, 1)
	if err != nil || sp.Format(next[0]) != "10.0.0.4" {
		t.Fatalf("NextFree during quarantine = %s, %v; want 10.0.0.4", sp.Format(next[0]), err)
	}
	wantErr(t, sp.Claim(m, keys[0]), ErrInUse, "10.0.0.1 is in use")

	if got := Expired(&q, t0+int64(DefaultQuarantine)-1); len(got) != 0 {
		t.Fatalf("Expired before time = %v", got)
	}
	got := Expired(&q, t0+int64(DefaultQuarantine))
	if len(got) != 1 || got[0].Key != keys[0] || got[0].Space != "p1" {
		t.Fatalf("Expired at expiry = %v", got)
	}
	for _, h := range got {
		if err := sp.Release(m, h.Key); err != nil {
			t.Fatal(err)
		}
	}
	next, err = sp.NextFree(m, 1)
	if err != nil || sp.Format(next[0]) != "10.0.0.1" {
		t.Fatalf("NextFree after expiry = %s, %v; want 10.0.0.1", sp.Format(next[0]), err)
	}
	// A forced release lifts the hold early.
	h, ok := Lift(&q, "p1", keys[1])
	if !ok || h.Key != keys[1] {
		t.Fatalf("Lift = %v, %v", h, ok)
	}
	if _, ok := Lift(&q, "p1", keys[1]); ok {
		t.Fatal("Lift twice succeeded")
	}
	if q.Len() != 0 {
		t.Fatalf("%d holds left", q.Len())
	}
}

func TestExpiredOrder(t *testing.T) {
	var q MemHolds
	holds := []Hold{
		{Space: "b", Key: IntKey(1), Until: 10},
		{Space: "a", Key: IntKey(2), Until: 10},
		{Space: "a", Key: IntKey(1), Until: 10},
		{Space: "a", Key: IntKey(9), Until: 5},
		{Space: "c", Key: IntKey(1), Until: 30},
	}
	for _, h := range holds {
		q.Put(h)
	}
	got := Expired(&q, 20)
	want := []Hold{holds[3], holds[2], holds[1], holds[0]}
	if !slices.Equal(got, want) {
		t.Fatalf("Expired = %v; want %v", got, want)
	}
	if h, ok := q.First(); !ok || h != holds[4] {
		t.Fatalf("left %v", h)
	}
}

func TestQuarantineSaturates(t *testing.T) {
	var q MemHolds
	h, err := Quarantine(&q, "p", IntKey(1), math.MaxInt64-5, time.Hour)
	if err != nil || h.Until != math.MaxInt64 {
		t.Fatalf("Until = %d, %v; want MaxInt64", h.Until, err)
	}
	if got := addNanos(math.MinInt64+5, -time.Hour); got != math.MinInt64 {
		t.Fatalf("addNanos underflow = %d", got)
	}
}

func TestMemHoldsMatchesModel(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var q MemHolds
	model := map[holdID]Hold{}
	spaces := []string{"a", "b", "c"}
	for i := 0; i < 20000; i++ {
		id := holdID{spaces[rng.IntN(3)], IntKey(rng.Uint64N(50))}
		switch rng.IntN(3) {
		case 0:
			h := Hold{Space: id.space, Key: id.key, Until: rng.Int64N(100)}
			q.Put(h)
			model[id] = h
		case 1:
			q.Delete(id.space, id.key)
			delete(model, id)
		case 2:
			got, ok := q.Get(id.space, id.key)
			want, wok := model[id]
			if got != want || ok != wok {
				t.Fatalf("Get(%v) = %v, %v; want %v, %v", id, got, ok, want, wok)
			}
		}
		if q.Len() != len(model) {
			t.Fatalf("Len = %d; want %d", q.Len(), len(model))
		}
		if first, ok := q.First(); ok {
			for _, h := range model {
				if CompareHolds(h, first) < 0 {
					t.Fatalf("First = %v but %v is earlier", first, h)
				}
			}
		}
	}
	all := Expired(&q, math.MaxInt64)
	if len(all) != len(model) || !slices.IsSortedFunc(all, CompareHolds) {
		t.Fatalf("Expired drained %d of %d holds, sorted %v", len(all), len(model), slices.IsSortedFunc(all, CompareHolds))
	}
}
