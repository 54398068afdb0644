package fsm

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
)

// idemRecords returns the stored idempotency records by key.
func idemRecords(t testing.TB, f *FSM) map[string]IdempotencyRecord {
	t.Helper()
	it, err := f.State().db.Txn(false).Get(tableIdempotency, "id")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]IdempotencyRecord{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		out[raw.(*IdempotencyRecord).Key] = *raw.(*IdempotencyRecord)
	}
	return out
}

// requireIdemEntries fails unless tableIdemEntries lists every stored
// idempotency record in exactly one row, whose Index is the record's and
// whose Oldest is the least CreatedAt of its records, lists nothing else,
// and comes in order of Oldest.
func requireIdemEntries(t testing.TB, f *FSM) {
	t.Helper()
	recs := idemRecords(t, f)
	it, err := f.State().db.Txn(false).Get(tableIdemEntries, "id")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	last := int64(-1 << 63)
	for raw := it.Next(); raw != nil; raw = it.Next() {
		e := raw.(*idemEntry)
		if e.Oldest < last {
			t.Fatalf("entry %d (oldest %d) listed after one of %d", e.Index, e.Oldest, last)
		}
		last = e.Oldest
		if len(e.Keys) == 0 {
			t.Fatalf("entry %d lists no keys", e.Index)
		}
		oldest := int64(1<<63 - 1)
		for _, k := range e.Keys {
			rec, ok := recs[k]
			switch {
			case !ok:
				t.Fatalf("entry %d lists %q, which is not stored", e.Index, k)
			case rec.Index != e.Index:
				t.Fatalf("entry %d lists %q, created at entry %d", e.Index, k, rec.Index)
			case listed[k]:
				t.Fatalf("%q listed twice", k)
			}
			listed[k] = true
			oldest = min(oldest, rec.CreatedAt)
		}
		if e.Oldest != oldest {
			t.Fatalf("entry %d: oldest %d, its records' oldest %d", e.Index, e.Oldest, oldest)
		}
	}
	if len(listed) != len(recs) {
		t.Fatalf("%d of %d records listed", len(listed), len(recs))
	}
}

func keyedSetting(now int64, key string) *SettingUpsertRequest {
	return &SettingUpsertRequest{WriteMeta: WriteMeta{Now: now, Actor: "a", IdempotencyKey: key, RequestHash: "h"}, Key: "k", Value: key}
}

// A reap in a batch deletes the records that the commands before it in
// the same transaction created, and none that commands after it create;
// an entry whose commands commit in several transactions (chunks, or one
// each after a rejected command) gets a row for each, and one when
// restored.
func TestFSM_IdempotencyReapInBatch(t *testing.T) {
	enc := func(c Command) []byte { return mustEncode(t, c) }
	rejected := enc(&SettingUpsertRequest{WriteMeta: WriteMeta{Now: 6}, Key: "k", Value: "v", CASIndex: u64(999)})
	many := func(now int64, prefix string, n int) [][]byte {
		var out [][]byte
		for i := range n {
			out = append(out, enc(keyedSetting(now, fmt.Sprintf("%s%03d", prefix, i))))
		}
		return out
	}
	cases := []struct {
		name    string
		entries [][]byte
		reaped  int // by the reap of the batch
		left    int // records after the batch
		rows    int // rows after the batch
	}{
		{name: "created then reaped", entries: [][]byte{enc(keyedSetting(5, "x")), enc(&IdempotencyReapRequest{Before: 10})}, reaped: 1, left: 0, rows: 0},
		{name: "reaped then created", entries: [][]byte{enc(&IdempotencyReapRequest{Before: 10}), enc(keyedSetting(5, "x"))}, reaped: 0, left: 1, rows: 1},
		{name: "young kept", entries: [][]byte{enc(keyedSetting(5, "x")), enc(keyedSetting(15, "y")), enc(&IdempotencyReapRequest{Before: 10})}, reaped: 1, left: 1, rows: 1},
		{name: "with a rejected command", entries: [][]byte{enc(keyedSetting(5, "x")), rejected, enc(keyedSetting(15, "y")), enc(&IdempotencyReapRequest{Before: 10})}, reaped: 1, left: 1, rows: 1},
		{name: "three chunks", entries: append(many(5, "c", 2*maxTxnWeight+3), enc(&IdempotencyReapRequest{Before: 1})), reaped: 0, left: 2*maxTxnWeight + 3, rows: 3},
		{name: "three chunks reaped", entries: append(many(5, "c", 2*maxTxnWeight+3), enc(&IdempotencyReapRequest{Before: 6})), reaped: 2*maxTxnWeight + 3, left: 0, rows: 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			rs := applyBatch(t, f, 7, tc.entries...)
			for _, r := range rs {
				if m, ok := r.Value.(map[string]int); ok {
					if m["reaped"] != tc.reaped {
						t.Errorf("reaped %d, want %d", m["reaped"], tc.reaped)
					}
				}
			}
			if n := len(idemRecords(t, f)); n != tc.left {
				t.Errorf("%d records left, want %d", n, tc.left)
			}
			requireIdemEntries(t, f)
			if n := tableRows(t, f, tableIdemEntries); n != tc.rows {
				t.Errorf("%d rows, want %d", n, tc.rows)
			}
			restored := testSnapshotRestore(t, f)
			requireIdemEntries(t, restored)
			if n := tableRows(t, restored, tableIdemEntries); n != min(tc.rows, 1) {
				t.Errorf("%d rows after restore, want %d", n, min(tc.rows, 1))
			}
		})
	}
}

// Over a generated log of colliding keyed commands, replays, batches and
// reaps, the rows stay exact after every entry, also on a restored copy,
// and a reap deletes exactly the records a scan of all of them finds
// older than its cut-off.
func TestFSM_IdempotencyReapMatchesScan(t *testing.T) {
	for _, seed := range []uint64{3, 0xfeed} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rnd := rand.New(rand.NewPCG(seed, 1))
			entries := genLog(t, seed, 1500)
			f := New()
			index := uint64(0)
			for i, e := range entries {
				index++
				f.Apply(logEntry(index, e))
				requireIdemEntries(t, f)
				if i%100 == 99 {
					f = testSnapshotRestore(t, f)
					requireIdemEntries(t, f)
				}
				if i%7 != 6 {
					continue
				}
				before := idemRecords(t, f)
				if len(before) == 0 {
					continue
				}
				times := slices.Sorted(func(yield func(int64) bool) {
					for _, r := range before {
						if !yield(r.CreatedAt) {
							return
						}
					}
				})
				cut := times[rnd.IntN(len(times))] + rnd.Int64N(3) - 1
				index++
				r := applyOK(t, f, index, &IdempotencyReapRequest{Before: cut})
				after := idemRecords(t, f)
				want := maps.Clone(before)
				maps.DeleteFunc(want, func(_ string, r IdempotencyRecord) bool { return r.CreatedAt < cut })
				if !reflect.DeepEqual(slices.Sorted(maps.Keys(after)), slices.Sorted(maps.Keys(want))) {
					t.Fatalf("entry %d: reap before %d left %d records, a scan keeps %d", i, cut, len(after), len(want))
				}
				if got := r.Value.(map[string]int)["reaped"]; got != len(before)-len(want) {
					t.Fatalf("entry %d: reaped %d, a scan finds %d", i, got, len(before)-len(want))
				}
				requireIdemEntries(t, f)
			}
		})
	}
}

func TestStore_IdempotencyReapBefore(t *testing.T) {
	// Entries 1-4 create 3, 2, 4 and 1 records; the oldest of each at 10,
	// 20, 20 and 30.
	f := New()
	created := []struct {
		index uint64
		times []int64
	}{
		{1, []int64{10, 12, 40}},
		{2, []int64{20, 21}},
		{3, []int64{25, 20, 22, 26}},
		{4, []int64{30}},
	}
	for _, c := range created {
		var entries [][]byte
		for i, now := range c.times {
			entries = append(entries, mustEncode(t, keyedSetting(now, fmt.Sprintf("e%d-%d", c.index, i))))
		}
		applyBatch(t, f, c.index, entries...)
	}
	cases := []struct {
		cutoff     int64
		max        int
		wantBefore int64
		wantOK     bool
	}{
		{cutoff: 10, max: 100, wantOK: false},
		{cutoff: 11, max: 100, wantBefore: 11, wantOK: true},
		{cutoff: 100, max: 100, wantBefore: 100, wantOK: true},
		{cutoff: 100, max: 10, wantBefore: 100, wantOK: true},
		{cutoff: 100, max: 9, wantBefore: 30, wantOK: true},
		// Entries 2 and 3 share their oldest time: taken together.
		{cutoff: 100, max: 5, wantBefore: 20, wantOK: true},
		{cutoff: 100, max: 4, wantBefore: 20, wantOK: true},
		// At least the first entry's oldest record, however small max.
		{cutoff: 100, max: 1, wantBefore: 20, wantOK: true},
		{cutoff: 100, max: 0, wantBefore: 20, wantOK: true},
		{cutoff: 21, max: 1, wantBefore: 20, wantOK: true},
		{cutoff: 20, max: 1, wantBefore: 20, wantOK: true},
	}
	for _, tc := range cases {
		before, ok := f.State().IdempotencyReapBefore(tc.cutoff, tc.max)
		if ok != tc.wantOK || (ok && before != tc.wantBefore) {
			t.Errorf("IdempotencyReapBefore(%d, %d) = %d, %v; want %d, %v", tc.cutoff, tc.max, before, ok, tc.wantBefore, tc.wantOK)
		}
		if ok && before <= 10 {
			t.Errorf("IdempotencyReapBefore(%d, %d) = %d reaps nothing", tc.cutoff, tc.max, before)
		}
	}
	// Reaping in steps as the leader does ends with nothing due.
	index := uint64(10)
	for steps := 0; ; steps++ {
		before, ok := f.State().IdempotencyReapBefore(100, 2)
		if !ok {
			break
		}
		if steps > 10 {
			t.Fatal("reaping does not finish")
		}
		index++
		if r := applyOK(t, f, index, &IdempotencyReapRequest{Before: before}); r.Value.(map[string]int)["reaped"] == 0 {
			t.Fatalf("a reap before %d deleted nothing", before)
		}
	}
	if n := len(idemRecords(t, f)); n != 0 {
		t.Fatalf("%d records left", n)
	}
	requireIdemEntries(t, f)
}
