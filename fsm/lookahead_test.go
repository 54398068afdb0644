package fsm

import (
	"reflect"
	"testing"
)

// TestBatch_LookaheadLikeSingles applies batches whose commands read what
// earlier commands of the same batch write, and requires the results and
// the state of applying each command alone. Each case breaks one rule of
// lookahead if the rule is dropped.
func TestBatch_LookaheadLikeSingles(t *testing.T) {
	meta := func(now int64, key, hash string) WriteMeta {
		return WriteMeta{Now: now, Actor: "tok", IdempotencyKey: key, RequestHash: hash}
	}
	alloc := func(now int64, key string, ids ...string) *AddressAllocateRequest {
		return &AddressAllocateRequest{WriteMeta: meta(now, key, "h-"+key), PrefixID: "p", Count: len(ids), IDs: ids}
	}
	setup := []Command{
		&PrefixCreateRequest{WriteMeta: WriteMeta{Now: 1}, Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24"}},
		alloc(2, "old", "a-old"),
	}
	cases := []struct {
		name      string
		batch     []Command
		wantState func(t *testing.T, rs []*Result)
	}{{
		// The reap removes the record of "old": the allocation after it
		// runs again instead of replaying.
		name:  "reap, then a reaped key",
		batch: []Command{&IdempotencyReapRequest{WriteMeta: WriteMeta{Now: 10}, Before: 5}, alloc(11, "old", "a-new")},
		wantState: func(t *testing.T, rs []*Result) {
			if rs[1].Err != nil || rs[1].Replayed {
				t.Fatalf("allocation after the reap: %+v, want applied", rs[1])
			}
		},
	}, {
		// A retry: the API makes new IDs for it, and it replays.
		name:  "one key twice",
		batch: []Command{alloc(10, "k", "a1"), alloc(11, "k", "a2")},
		wantState: func(t *testing.T, rs []*Result) {
			if rs[0].Replayed || !rs[1].Replayed {
				t.Fatalf("got replayed %v, %v; want the second only", rs[0].Replayed, rs[1].Replayed)
			}
		},
	}, {
		name:  "one address ID in two allocations",
		batch: []Command{alloc(10, "k1", "a1", "a2"), alloc(11, "k2", "a3", "a2")},
		wantState: func(t *testing.T, rs []*Result) {
			requireErrorIs(t, rs[1].Err, ErrConflict)
		},
	}, {
		name: "an address ID a gateway took earlier in the batch",
		batch: []Command{
			&PrefixCreateRequest{WriteMeta: WriteMeta{Now: 10}, Prefix: Prefix{ID: "q", Prefix: "10.0.1.0/24", Gateway: "10.0.1.1"}, GatewayID: "gw"},
			alloc(11, "k", "gw"),
		},
		wantState: func(t *testing.T, rs []*Result) {
			requireErrorIs(t, rs[1].Err, ErrConflict)
		},
	}, {
		// IDs in order take one seek: a taken ID among them, and a
		// taken one between them that is not among them.
		name:  "ordered IDs around a taken one",
		batch: []Command{alloc(10, "k1", "a-new", "a-old", "a-z"), alloc(11, "k2", "a-a", "a-z2")},
		wantState: func(t *testing.T, rs []*Result) {
			requireErrorIs(t, rs[0].Err, ErrConflict)
			if rs[1].Err != nil {
				t.Fatalf("IDs on both sides of a taken one: %v", rs[1].Err)
			}
		},
	}, {
		name:  "ordered IDs ending in a taken one",
		batch: []Command{alloc(10, "k", "a-new", "a-old")},
		wantState: func(t *testing.T, rs []*Result) {
			requireErrorIs(t, rs[0].Err, ErrConflict)
		},
	}, {
		name:  "an address ID released earlier in the batch",
		batch: []Command{&AddressReleaseRequest{WriteMeta: WriteMeta{Now: 10}, ID: "a-old", Force: true}, alloc(11, "k", "a-old")},
		wantState: func(t *testing.T, rs []*Result) {
			if rs[1].Err != nil {
				t.Fatalf("allocation of the released ID: %v", rs[1].Err)
			}
		},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			batched, single := New(), New()
			for i, c := range setup {
				applyOK(t, batched, uint64(i+1), c)
				applyOK(t, single, uint64(i+1), c)
			}
			var entries [][]byte
			var want []*Result
			for _, c := range tc.batch {
				entries = append(entries, mustEncode(t, c))
				want = append(want, applyCmd(t, single, 9, c))
			}
			got := applyBatch(t, batched, 9, entries...)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("batch results differ from single results:\n%+v\n%+v", got, want)
			}
			tc.wantState(t, got)
			requireSameDump(t, batched, single)
		})
	}
}
