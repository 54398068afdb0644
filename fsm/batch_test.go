package fsm

import (
	"bytes"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestFSM_Batch(t *testing.T) {
	upsert := func(k, v string) []byte { return mustEncode(t, &SettingUpsertRequest{Key: k, Value: v}) }
	nested := mustEncode(t, &BatchRequest{Entries: [][]byte{upsert("nested", "x")}})
	ignorable := []byte{byte(IgnoreUnknownTypeFlag) | 42, 0x80}

	type want struct {
		err     error // checked with errors.Is
		errText string
		value   bool // a non-nil value
		skipped bool // an empty Result
	}
	cases := []struct {
		name     string
		entries  [][]byte
		want     []want
		settings map[string]string // settings after the batch
	}{
		{name: "empty", entries: nil, want: []want{}, settings: map[string]string{"pre": "0"}},
		{
			name:     "all accepted, in order",
			entries:  [][]byte{upsert("a", "1"), upsert("b", "2"), upsert("a", "3")},
			want:     []want{{value: true}, {value: true}, {value: true}},
			settings: map[string]string{"pre": "0", "a": "3", "b": "2"},
		},
		{
			name: "one rejected entry does not affect the others",
			entries: [][]byte{
				upsert("a", "1"),
				mustEncode(t, &SettingDeleteRequest{Key: "missing"}),
				mustEncode(t, &SettingUpsertRequest{Key: "pre", Value: "x", CASIndex: u64(99)}),
				upsert("b", "2"),
			},
			want:     []want{{value: true}, {err: ErrNotFound}, {err: ErrConflict}, {value: true}},
			settings: map[string]string{"pre": "0", "a": "1", "b": "2"},
		},
		{
			name:     "later entries see earlier ones",
			entries:  [][]byte{upsert("a", "1"), mustEncode(t, &SettingDeleteRequest{Key: "a"}), mustEncode(t, &SettingDeleteRequest{Key: "a"})},
			want:     []want{{value: true}, {value: true}, {err: ErrNotFound}},
			settings: map[string]string{"pre": "0"},
		},
		{
			name:     "nested batch is an error result",
			entries:  [][]byte{upsert("a", "1"), nested, upsert("b", "2")},
			want:     []want{{value: true}, {errText: "cannot be nested"}, {value: true}},
			settings: map[string]string{"pre": "0", "a": "1", "b": "2"},
		},
		{
			name:     "ignorable unknown entry is skipped",
			entries:  [][]byte{ignorable, upsert("a", "1")},
			want:     []want{{skipped: true}, {value: true}},
			settings: map[string]string{"pre": "0", "a": "1"},
		},
		{
			name:     "CAS against an entry earlier in the batch",
			entries:  [][]byte{upsert("a", "1"), mustEncode(t, &SettingUpsertRequest{Key: "a", Value: "2", CASIndex: u64(5)})},
			want:     []want{{value: true}, {value: true}},
			settings: map[string]string{"pre": "0", "a": "2"},
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := New()
			applyOK(t, f, 1, &SettingUpsertRequest{Key: "pre", Value: "0"})

			rs := applyBatch(t, f, 5, tc.entries...)

			if len(rs) != len(tc.want) {
				t.Fatalf("%d results for %d entries", len(rs), len(tc.want))
			}
			for i, w := range tc.want {
				r := rs[i]
				if r == nil {
					t.Fatalf("result %d is nil", i)
				}
				switch {
				case w.skipped:
					if !reflect.DeepEqual(r, &Result{}) {
						t.Errorf("result %d = %+v, want an empty Result", i, r)
					}
				case w.errText != "":
					if r.Err == nil || !strings.Contains(r.Err.Error(), w.errText) {
						t.Errorf("result %d error %v, want %q", i, r.Err, w.errText)
					}
				default:
					requireErrorIs(t, r.Err, w.err)
					if (r.Value != nil) != w.value {
						t.Errorf("result %d value %#v", i, r.Value)
					}
				}
			}
			_, list, err := f.State().Settings(nil)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string]string{}
			for _, s := range list {
				got[s.Key] = s.Value
				// Every entry is stamped with the batch's log index.
				if s.Key != "pre" && s.ModifyIndex != 5 {
					t.Errorf("setting %s has modify index %d, want 5", s.Key, s.ModifyIndex)
				}
			}
			if !reflect.DeepEqual(got, tc.settings) {
				t.Fatalf("settings %v, want %v", got, tc.settings)
			}
		})
	}
}

// A batch applies exactly like its entries applied one by one, except that
// they share one log index.
func TestFSM_BatchEquivalentToSingles(t *testing.T) {
	cmds := []Command{
		&SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1}, Key: "a", Value: "1"},
		&SettingUpsertRequest{WriteMeta: WriteMeta{Now: 2}, Key: "a", Value: "2", CASIndex: u64(0)},
		&ACLBootstrapRequest{WriteMeta: WriteMeta{Now: 3}, Token: Token{AccessorID: "r", SecretHash: "h"}},
		&TokenCreateRequest{WriteMeta: WriteMeta{Now: 4, Actor: "r", IdempotencyKey: "i", RequestHash: "x"}, Token: Token{AccessorID: "t", SecretHash: "ht"}},
		&TokenCreateRequest{WriteMeta: WriteMeta{Now: 5, Actor: "r", IdempotencyKey: "i", RequestHash: "x"}, Token: Token{AccessorID: "t", SecretHash: "ht"}},
		&SettingDeleteRequest{WriteMeta: WriteMeta{Now: 6}, Key: "a"},
		&IdempotencyReapRequest{WriteMeta: WriteMeta{Now: 7}, Before: 5},
	}
	batched, single := New(), New()
	var entries [][]byte
	var want []*Result
	for _, c := range cmds {
		entries = append(entries, mustEncode(t, c))
		want = append(want, applyCmd(t, single, 9, c))
	}
	got := applyBatch(t, batched, 9, entries...)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("batch results differ from single results:\n%+v\n%+v", got, want)
	}
	requireSameDump(t, batched, single)
}

func TestFSM_BatchCorruptEntryPanics(t *testing.T) {
	// The leader only batches entries it encoded itself: an entry that does
	// not decode means a corrupt log and halts the server, like a corrupt
	// top-level entry.
	cases := map[string][]byte{
		"empty entry":     {},
		"unknown type":    {byte(nextFreeType)},
		"truncated entry": {byte(SettingUpsertType), 0x81},
		"garbage msgpack": {byte(TokenCreateType), 0xc1},
	}
	for name, e := range cases {
		t.Run(name, func(t *testing.T) {
			f := New()
			before := dump(t, f)
			data := mustEncode(t, &BatchRequest{Entries: [][]byte{e}})
			func() {
				defer func() {
					if recover() == nil {
						t.Fatal("Apply did not panic")
					}
				}()
				f.Apply(logEntry(1, data))
			}()
			if !bytes.Equal(before, dump(t, f)) {
				t.Fatal("state changed")
			}
		})
	}
}

// TestBatch_ChunksLikeSingleCommands applies a batch heavy enough to be cut
// into several transactions, with a rejected command in one chunk, and
// requires the results and the state of applying each command alone.
func TestBatch_ChunksLikeSingleCommands(t *testing.T) {
	setup := &PrefixCreateRequest{Prefix: Prefix{ID: "p", Prefix: "10.0.0.0/16"}}
	var entries [][]byte
	for i := range 12 {
		ids := make([]string, 100)
		for j := range ids {
			ids[j] = fmt.Sprintf("a-%d-%d", i, j)
		}
		if i == 7 {
			ids[50] = "a-2-3" // a duplicate ID: this allocation is rejected
		}
		entries = append(entries, mustEncode(t, &AddressAllocateRequest{WriteMeta: WriteMeta{Now: int64(i)}, PrefixID: "p", Count: 100, IDs: ids}))
	}
	batched, single := New(), New()
	applyOK(t, batched, 1, setup)
	applyOK(t, single, 1, setup)
	rs := applyBatch(t, batched, 2, entries...)
	for i, e := range entries {
		want := single.Apply(logEntry(2, e)).(*Result)
		if responseString(rs[i]) != responseString(want) {
			t.Fatalf("entry %d: batched %s, alone %s", i, responseString(rs[i]), responseString(want))
		}
		if (i == 7) != (rs[i].Err != nil) {
			t.Fatalf("entry %d: error %v", i, rs[i].Err)
		}
	}
	requireSameDump(t, batched, single)
}
