package fsm

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

func TestFSM_Idempotency(t *testing.T) {
	meta := func(actor, key, hash string) WriteMeta {
		return WriteMeta{Now: 50, Actor: actor, IdempotencyKey: key, RequestHash: hash}
	}
	first := &SettingUpsertRequest{WriteMeta: meta("alice", "k1", "h1"), Key: "s", Value: "first"}
	firstResult := &Setting{Key: "s", Value: "first", CreateIndex: 1, ModifyIndex: 1, UpdatedAt: 50}

	cases := []struct {
		name       string
		second     Command
		wantErr    error
		wantReplay bool
		wantValue  string // the setting's value after the second command
	}{
		{
			name:       "same key and hash replays",
			second:     &SettingUpsertRequest{WriteMeta: meta("alice", "k1", "h1"), Key: "s", Value: "first"},
			wantReplay: true, wantValue: "first",
		},
		{
			// The hash stands for the request: same hash, same answer, even
			// if the body the leader decoded differs.
			name:       "same key and hash, different body, still replays",
			second:     &SettingUpsertRequest{WriteMeta: meta("alice", "k1", "h1"), Key: "s", Value: "second"},
			wantReplay: true, wantValue: "first",
		},
		{
			name:       "same key and hash, different command type, replays",
			second:     &SettingDeleteRequest{WriteMeta: meta("alice", "k1", "h1"), Key: "s"},
			wantReplay: true, wantValue: "first",
		},
		{
			name:      "same key, different hash",
			second:    &SettingUpsertRequest{WriteMeta: meta("alice", "k1", "h2"), Key: "s", Value: "second"},
			wantErr:   ErrIdempotencyMismatch,
			wantValue: "first",
		},
		{
			name:      "same key, empty hash",
			second:    &SettingUpsertRequest{WriteMeta: meta("alice", "k1", ""), Key: "s", Value: "second"},
			wantErr:   ErrIdempotencyMismatch,
			wantValue: "first",
		},
		{
			name:      "same key, other actor applies",
			second:    &SettingUpsertRequest{WriteMeta: meta("bob", "k1", "h1"), Key: "s", Value: "second"},
			wantValue: "second",
		},
		{
			name:      "same key, no actor applies",
			second:    &SettingUpsertRequest{WriteMeta: meta("", "k1", "h1"), Key: "s", Value: "second"},
			wantValue: "second",
		},
		{
			name:      "other key applies",
			second:    &SettingUpsertRequest{WriteMeta: meta("alice", "k2", "h1"), Key: "s", Value: "second"},
			wantValue: "second",
		},
		{
			name:      "no key applies",
			second:    &SettingUpsertRequest{WriteMeta: meta("alice", "", "h1"), Key: "s", Value: "second"},
			wantValue: "second",
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			r1 := applyOK(t, f, 1, first)
			if r1.Replayed || !reflect.DeepEqual(r1.Value, firstResult) {
				t.Fatalf("first apply = %#v (replayed %v), want %#v", r1.Value, r1.Replayed, firstResult)
			}
			records := f.State().IdempotencyRecords()
			if records != 1 {
				t.Fatalf("%d idempotency records after the first apply, want 1", records)
			}
			before := dump(t, f)

			r2 := applyCmd(t, f, 2, tc.second)
			requireErrorIs(t, r2.Err, tc.wantErr)
			if r2.Replayed != tc.wantReplay {
				t.Fatalf("Replayed = %v, want %v", r2.Replayed, tc.wantReplay)
			}
			if _, s, _ := f.State().Setting(nil, "s"); s == nil || s.Value != tc.wantValue {
				t.Fatalf("setting after second command = %+v, want value %q", s, tc.wantValue)
			}
			if tc.wantReplay || tc.wantErr != nil {
				if !bytes.Equal(before, dump(t, f)) {
					t.Fatal("a replayed or rejected command changed the state")
				}
			}
			if !tc.wantReplay {
				return
			}
			raw, ok := r2.Value.(json.RawMessage)
			if !ok {
				t.Fatalf("replayed value is %T, want json.RawMessage", r2.Value)
			}
			want, _ := json.Marshal(firstResult)
			if !bytes.Equal(raw, want) {
				t.Fatalf("replayed value %s, want %s", raw, want)
			}
			var s Setting
			if err := json.Unmarshal(raw, &s); err != nil || !reflect.DeepEqual(&s, firstResult) {
				t.Fatalf("replayed value decodes to %+v, %v", s, err)
			}
		})
	}
}

func TestFSM_IdempotencyAppliesOnce(t *testing.T) {
	f := New()
	cmd := &TokenCreateRequest{
		WriteMeta: WriteMeta{Now: 7, Actor: "root", IdempotencyKey: "create-t1", RequestHash: "h"},
		Token:     Token{AccessorID: "t1", SecretHash: "secret-hash", Role: "reader"},
	}
	// Without the key, the retry would be a duplicate-token conflict.
	r1 := applyOK(t, f, 1, cmd)
	for i := uint64(2); i < 6; i++ {
		r := applyOK(t, f, i, cmd)
		if !r.Replayed {
			t.Fatalf("retry at %d applied again", i)
		}
		raw := r.Value.(json.RawMessage)
		want, _ := json.Marshal(r1.Value)
		if !bytes.Equal(raw, want) {
			t.Fatalf("replay %s, want %s", raw, want)
		}
		// The stored result is the API's JSON view: no secret hash.
		if strings.Contains(string(raw), "secret-hash") {
			t.Fatalf("replayed result leaks the secret hash: %s", raw)
		}
	}
	if _, list, _ := f.State().Tokens(nil); len(list) != 1 || list[0].CreateIndex != 1 {
		t.Fatalf("tokens %+v, want t1 created once at index 1", list)
	}
	if n := f.State().IdempotencyRecords(); n != 1 {
		t.Fatalf("%d idempotency records, want 1", n)
	}
}

func TestFSM_IdempotencyRejectedIsNotRecorded(t *testing.T) {
	f := New()
	meta := WriteMeta{Actor: "a", IdempotencyKey: "k", RequestHash: "h"}
	r := applyCmd(t, f, 1, &SettingDeleteRequest{WriteMeta: meta, Key: "s"})
	requireErrorIs(t, r.Err, ErrNotFound)
	if n := f.State().IdempotencyRecords(); n != 0 {
		t.Fatalf("a rejected command stored %d idempotency records", n)
	}
	// The retry after the cause is fixed is applied, not replayed as an
	// error.
	applyOK(t, f, 2, &SettingUpsertRequest{Key: "s"})
	r = applyOK(t, f, 3, &SettingDeleteRequest{WriteMeta: meta, Key: "s"})
	if r.Replayed {
		t.Fatal("retry of a rejected command was replayed")
	}
	r = applyOK(t, f, 4, &SettingDeleteRequest{WriteMeta: meta, Key: "s"})
	if !r.Replayed {
		t.Fatal("second retry of an applied command was not replayed")
	}
}

func TestFSM_IdempotencyInBatch(t *testing.T) {
	f := New()
	m := WriteMeta{Actor: "a", IdempotencyKey: "k", RequestHash: "h"}
	e := mustEncode(t, &SettingUpsertRequest{WriteMeta: m, Key: "s", Value: "1"})
	mismatch := mustEncode(t, &SettingUpsertRequest{WriteMeta: WriteMeta{Actor: "a", IdempotencyKey: "k", RequestHash: "x"}, Key: "s", Value: "2"})
	rs := applyBatch(t, f, 1, e, e, mismatch)
	if len(rs) != 3 {
		t.Fatalf("%d results, want 3", len(rs))
	}
	if rs[0].Err != nil || rs[0].Replayed {
		t.Fatalf("entry 0: %+v, want applied", rs[0])
	}
	if rs[1].Err != nil || !rs[1].Replayed {
		t.Fatalf("entry 1: %+v, want replayed", rs[1])
	}
	requireErrorIs(t, rs[2].Err, ErrIdempotencyMismatch)
	// And across entries: a later single command replays the batch entry.
	if r := applyOK(t, f, 2, &SettingUpsertRequest{WriteMeta: m, Key: "s", Value: "1"}); !r.Replayed {
		t.Fatal("not replayed after the batch")
	}
}

// TestFSM_IdempotentAllocationKeepsAddresses checks the record of a keyed
// address allocation, which keeps the allocated addresses rather than
// their JSON: a replay answers the JSON of the first answer even after
// the addresses changed or were released, and a snapshot stores that JSON,
// so a restored server replays the same bytes.
func TestFSM_IdempotentAllocationKeepsAddresses(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/24"}})
	meta := WriteMeta{Now: 100, Actor: "a", IdempotencyKey: "k", RequestHash: "h"}
	alloc := func() *AddressAllocateRequest {
		return &AddressAllocateRequest{WriteMeta: meta, PrefixID: "p", Count: 2, IDs: []string{"a1", "a2"}, Owner: "vm:101/net0"}
	}
	first := applyOK(t, f, 2, alloc())
	want := first.ValueJSON()
	if !bytes.Contains(want, []byte(`"address":"10.0.0.1"`)) {
		t.Fatalf("first answer %s does not list 10.0.0.1", want)
	}
	record := func(f *FSM) *IdempotencyRecord {
		raw, err := f.State().db.Txn(false).First(tableIdempotency, "id", "a/k")
		if err != nil || raw == nil {
			t.Fatalf("no idempotency record (%v)", err)
		}
		return raw.(*IdempotencyRecord)
	}
	if rec := record(f); rec.Result != nil || rec.list != first.Value {
		t.Fatalf("record holds Result %q and list %p, want the answer's list %p", rec.Result, rec.list, first.Value)
	}
	replay := func(f *FSM, index uint64) {
		t.Helper()
		r := applyOK(t, f, index, alloc())
		got, ok := r.Value.(json.RawMessage)
		if !r.Replayed || !ok || !bytes.Equal(got, want) {
			t.Fatalf("replay at %d = %s (replayed %v), want %s", index, r.Value, r.Replayed, want)
		}
	}
	desc := "changed"
	applyOK(t, f, 3, &AddressUpdateRequest{ID: "a1", Description: &desc})
	applyOK(t, f, 4, &AddressReleaseRequest{ID: "a2", Force: true})
	replay(f, 5)

	f2 := testSnapshotRestore(t, f)
	if rec := record(f2); !bytes.Equal(rec.Result, want) || rec.list != nil {
		t.Fatalf("restored record holds Result %s and list %v, want Result %s", rec.Result, rec.list, want)
	}
	replay(f2, 6)
	replay(f, 6)
	requireSameDump(t, f, f2)
}
