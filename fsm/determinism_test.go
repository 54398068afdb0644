package fsm

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

const determinismLogLen = 3000

func TestFSM_Deterministic(t *testing.T) {
	for _, seed := range []uint64{1, 0xdecafbad} {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			t.Parallel()
			entries := genLog(t, seed, determinismLogLen)
			a, b := New(), New()
			ra := applyLog(a, 1, entries)
			rb := applyLog(b, 1, entries)
			for i := range ra {
				if ra[i] != rb[i] {
					t.Fatalf("entry %d: responses differ:\n%s\n%s", i, ra[i], rb[i])
				}
			}
			requireSameDump(t, a, b)
			if pa, pb := persist(t, a), persist(t, b); !bytes.Equal(pa, pb) {
				t.Fatal("Persist output differs")
			}
			if a.State().LatestIndex() != determinismLogLen || b.State().LatestIndex() != determinismLogLen {
				t.Fatalf("LatestIndex %d and %d, want %d", a.State().LatestIndex(), b.State().LatestIndex(), determinismLogLen)
			}
			requireCoverage(t, ra)
			testSnapshotRestore(t, a)
		})
	}
}

// requireCoverage fails if the generated log did not exercise every
// outcome, which would make the determinism test weaker than it looks.
func requireCoverage(t *testing.T, responses []string) {
	t.Helper()
	all := strings.Join(responses, "\n")
	for _, want := range []string{
		"replayed=true",
		ErrIdempotencyMismatch.Error(),
		ErrConflict.Error(),
		ErrNotFound.Error(),
		ErrAlreadyBootstrapped.Error(),
		"cannot be nested",
		`"reaped"`,
		`"addresses":[{`,
		`"quarantined_until"`,
		"in quarantine until",
		"deleting the prefix would drop the quarantine",
		"requested,",
		"child prefixes come from containers",
		"overlaps",
		`"vid":`,
		`"vni":`,
		"CreateIndex:",
		`"rollout":{"id"`,                  // an SDN apply that started a rollout
		`"no_change":true`,                 // and one that found nothing to change
		"is preparing",                     // and one refused while a rollout ran
		`"phase":"aborted"`,                // an abort
		`"applied":`,                       // a host's report
		"to carry VLAN",                    // a compile error
		`"allocation_id":"sv`,              // a vnet with a tag from a pool
		"\nnil\n",                          // a skipped ignorable entry
		"{<nil> err=<nil> replayed=false}", // a skipped ignorable batch entry
	} {
		if !strings.Contains(all, want) {
			t.Errorf("the generated log never produced %q", want)
		}
	}
}

func TestFSM_SnapshotRestore(t *testing.T) {
	cases := []struct {
		name    string
		entries [][]byte
	}{
		{"empty", nil},
		{"one setting", [][]byte{mustEncode(t, &SettingUpsertRequest{Key: "a", Value: "1"})}},
		{"generated", genLog(t, 7, 500)},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyLog(f, 1, tc.entries)
			f2 := testSnapshotRestore(t, f)
			// The restored state reads the same through the Store API.
			i1, s1, _ := f.State().Settings(nil)
			i2, s2, _ := f2.State().Settings(nil)
			j1, t1, _ := f.State().Tokens(nil)
			j2, t2, _ := f2.State().Tokens(nil)
			if i1 != i2 || j1 != j2 || !reflect.DeepEqual(s1, s2) || !reflect.DeepEqual(t1, t2) {
				t.Fatal("restored store reads differently")
			}
			for _, tok := range t1 {
				got, _ := f2.State().TokenBySecretHash(tok.SecretHash)
				if !reflect.DeepEqual(got, tok) {
					t.Fatalf("restored TokenBySecretHash(%q) = %+v, want %+v", tok.SecretHash, got, tok)
				}
			}
			if f.State().ACLBootstrapped() != f2.State().ACLBootstrapped() ||
				f.State().IdempotencyRecords() != f2.State().IdempotencyRecords() {
				t.Fatal("restored ACL or idempotency state differs")
			}
			// Restoring its own snapshot is idempotent.
			f3 := testSnapshotRestore(t, f2)
			requireSameDump(t, f, f3)
		})
	}
}

func TestFSM_SnapshotIsolation(t *testing.T) {
	f := New()
	entries := genLog(t, 11, 400)
	applyLog(f, 1, entries[:200])
	want := dump(t, f)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	defer snap.Release()
	// Writes after Snapshot must not leak into the snapshot.
	applyLog(f, 201, entries[200:])
	if bytes.Equal(want, dump(t, f)) {
		t.Fatal("the second half of the log changed nothing; pick another seed")
	}
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(sink.Bytes(), want) {
		t.Fatal("snapshot holds writes applied after it was taken")
	}
}

func TestFSM_PersistWriteError(t *testing.T) {
	f := New()
	populate(t, f)
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatal(err)
	}
	sink := &memSink{failWrite: true}
	if err := snap.Persist(sink); err == nil {
		t.Fatal("Persist succeeded on a failing sink")
	}
	if !sink.cancelled || sink.closed {
		t.Fatalf("failed Persist: cancelled=%v closed=%v, want cancelled only", sink.cancelled, sink.closed)
	}
}

func TestFSM_RestoreAbandonsOldStore(t *testing.T) {
	src := New()
	populate(t, src)
	data := persist(t, src)

	f := New()
	applyOK(t, f, 1, &SettingUpsertRequest{Key: "old", Value: "x"})
	old := f.State()
	if isClosed(old.AbandonCh()) {
		t.Fatal("AbandonCh closed before any restore")
	}
	// A failed restore keeps the store and does not abandon it.
	if err := restoreBytes(f, data[:len(data)-1]); err == nil {
		t.Fatal("truncated snapshot restored")
	}
	if f.State() != old || isClosed(old.AbandonCh()) {
		t.Fatal("a failed restore replaced or abandoned the store")
	}

	if err := restoreBytes(f, data); err != nil {
		t.Fatal(err)
	}
	if !isClosed(old.AbandonCh()) {
		t.Fatal("Restore did not close the old store's AbandonCh")
	}
	cur := f.State()
	if cur == old || isClosed(cur.AbandonCh()) {
		t.Fatal("Restore did not install a fresh store")
	}
	// The abandoned store still serves reads of the old state.
	if _, s, _ := old.Setting(nil, "old"); s == nil {
		t.Fatal("abandoned store lost its data")
	}
	if _, s, _ := cur.Setting(nil, "old"); s != nil {
		t.Fatal("Restore kept state that is not in the snapshot")
	}
	requireSameDump(t, src, f)

	// A second restore abandons the second store, once.
	if err := restoreBytes(f, data); err != nil {
		t.Fatal(err)
	}
	if !isClosed(cur.AbandonCh()) {
		t.Fatal("second Restore did not abandon the previous store")
	}
}

func TestFSM_ApplyAfterRestore(t *testing.T) {
	entries := genLog(t, 42, 2000)
	const cut = 1000

	whole := New()
	rw := applyLog(whole, 1, entries)

	f := New()
	applyLog(f, 1, entries[:cut])
	restored := testSnapshotRestore(t, f)

	rf := applyLog(f, cut+1, entries[cut:])
	rr := applyLog(restored, cut+1, entries[cut:])
	for i := range rf {
		if rf[i] != rr[i] || rf[i] != rw[cut+i] {
			t.Fatalf("entry %d: responses differ after restore:\n%s\n%s\n%s", cut+i, rf[i], rr[i], rw[cut+i])
		}
	}
	requireSameDump(t, f, restored)
	requireSameDump(t, f, whole)
	for _, x := range []*FSM{f, restored, whole} {
		requireIdemEntries(t, x)
	}
	if pa, pb := persist(t, f), persist(t, restored); !bytes.Equal(pa, pb) {
		t.Fatal("Persist output differs after restore")
	}
}
