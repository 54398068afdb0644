package fsm

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// Fuzz targets. Their seed corpora live in testdata/fuzz/<FuzzName>/ and
// run as ordinary tests; explore with e.g.
//
//	go test -run '^$' -fuzz '^FuzzApply$' -fuzztime 30s ./fsm/
//
// FuzzRestore finds new coverage often and each input is minimized for up
// to a minute by default, which leaves little time for exploring: add
// -fuzzminimizetime 1s.

// addCommandSeeds adds a valid encoding of every command type, a batch of
// all of them and a few edge cases.
func addCommandSeeds(f *testing.F) {
	samples := sampleCommands(f)
	var all [][]byte
	for _, mt := range MessageTypes() {
		buf := mustEncode(f, samples[mt])
		f.Add(buf)
		if mt != BatchType {
			all = append(all, buf)
		}
		f.Add(mustEncode(f, commands[mt].new())) // zero value
	}
	f.Add(mustEncode(f, &BatchRequest{Entries: all}))
	f.Add(mustEncode(f, &BatchRequest{Entries: [][]byte{mustEncode(f, &BatchRequest{Entries: all})}}))
	f.Add(mustEncode(f, &BatchRequest{Entries: [][]byte{{byte(IgnoreUnknownTypeFlag) | 3}}}))
	f.Add([]byte{})
	f.Add([]byte{byte(IgnoreUnknownTypeFlag) | 1, 0x80})
	f.Add([]byte{byte(nextFreeType), 0x80})
}

func FuzzDecode(f *testing.F) {
	addCommandSeeds(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := Decode(data)
		if err != nil {
			if cmd != nil {
				t.Fatalf("Decode returned %#v with error %v", cmd, err)
			}
			_, known := commands[MessageType(data0(data))]
			switch {
			case len(data) == 0 && !errors.Is(err, ErrEmptyEntry):
				t.Fatalf("empty entry: %v", err)
			case len(data) > 0 && !known && !errors.Is(err, ErrUnknownType):
				t.Fatalf("unknown type %d: %v", data[0], err)
			}
			return
		}
		if cmd.Type() != MessageType(data[0]) {
			t.Fatalf("type byte %d decoded as %T", data[0], cmd)
		}
		// Whatever decodes re-encodes, and the encoding is a fixed point.
		buf, err := Encode(cmd)
		if err != nil {
			t.Fatalf("Encode of a decoded %T: %v", cmd, err)
		}
		cmd2, err := Decode(buf)
		if err != nil {
			t.Fatalf("Decode of re-encoded %T: %v", cmd, err)
		}
		if !reflect.DeepEqual(cmd, cmd2) {
			t.Fatalf("re-encoding changed the command:\n%#v\n%#v", cmd, cmd2)
		}
		if buf2 := mustEncode(t, cmd2); !bytes.Equal(buf, buf2) {
			t.Fatalf("encoding is not canonical:\n%q\n%q", buf, buf2)
		}
	})
}

func data0(b []byte) byte {
	if len(b) == 0 {
		return 0
	}
	return b[0]
}

// foreignLineage reports whether cmd is a lineage check of another
// lineage than the state's, on which Apply halts the server by design.
func foreignLineage(cmd Command, st *Store) bool {
	c, ok := cmd.(*LineageCheckRequest)
	return ok && c.Lineage != st.Lineage()
}

// corruptBatch reports whether data is a batch holding an entry that
// neither decodes nor may be skipped: a corrupt log, on which Apply halts
// the server by design.
func corruptBatch(cmd Command) bool {
	b, ok := cmd.(*BatchRequest)
	if !ok {
		return false
	}
	for _, e := range b.Entries {
		if ignorable(e) {
			continue
		}
		if _, err := Decode(e); err != nil {
			return true
		}
	}
	return false
}

func FuzzApply(f *testing.F) {
	addCommandSeeds(f)
	// Commands that succeed against the populated state.
	for _, c := range []Command{
		&SettingDeleteRequest{Key: "a"},
		&SettingUpsertRequest{Key: "a", CASIndex: u64(2), WriteMeta: WriteMeta{Actor: "root", IdempotencyKey: "i1", RequestHash: "rh1"}},
		&TokenRevokeRequest{AccessorID: "t1"},
		&IdempotencyReapRequest{Before: 1 << 40},
	} {
		f.Add(mustEncode(f, c))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		cmd, err := Decode(data)
		if err != nil && !ignorable(data) {
			return // Apply halts on these by design (TestFSM_ApplyUnknownType)
		}
		a := New()
		next := populate(t, a)
		foreign := foreignLineage(cmd, a.State())
		resp, panicked := applyRecover(a, next, data)
		if foreign {
			if !panicked {
				t.Fatalf("a lineage check of another lineage applied: %s", responseString(resp))
			}
			return
		}
		if corruptBatch(cmd) {
			if !panicked {
				t.Fatalf("a batch with a corrupt entry applied: %s", responseString(resp))
			}
			return
		}
		if panicked {
			t.Fatalf("Apply panicked: %v", resp)
		}
		if a.State().LatestIndex() != next {
			t.Fatalf("LatestIndex %d, want %d", a.State().LatestIndex(), next)
		}
		// Deterministic: a second FSM gives the same response and state.
		b := New()
		populate(t, b)
		if rb, _ := applyRecover(b, next, data); responseString(rb) != responseString(resp) {
			t.Fatalf("responses differ:\n%s\n%s", responseString(resp), responseString(rb))
		}
		requireSameDump(t, a, b)
		// The state it leaves snapshots and restores.
		testSnapshotRestore(t, a)
	})
}

// applyRecover applies data at index, returning the panic value instead of
// the response if Apply panics.
func applyRecover(f *FSM, index uint64, data []byte) (resp any, panicked bool) {
	defer func() {
		if p := recover(); p != nil {
			resp, panicked = p, true
		}
	}()
	return f.Apply(logEntry(index, data)), false
}

func FuzzRestore(f *testing.F) {
	small := New()
	populate(f, small)
	gen := New()
	applyLog(gen, 1, genLog(f, 5, 60))
	for _, s := range [][]byte{dump(f, small), dump(f, New()), dump(f, gen)} {
		f.Add(s)
		f.Add(s[:len(s)-1])
	}
	f.Add([]byte{})
	f.Add(append(snapHeader(snapshotMagic, SnapshotVersion), snapRecord(recEnd, []byte{1})...))
	f.Fuzz(func(t *testing.T, data []byte) {
		fsm := New()
		populate(t, fsm)
		before, st := dump(t, fsm), fsm.State()
		err := restoreBytes(fsm, data)
		_, cerr := TableCounts(bytes.NewReader(data))
		if (err == nil) != (cerr == nil) {
			t.Fatalf("Restore says %v, TableCounts says %v", err, cerr)
		}
		if err != nil {
			if !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("Restore error %v, want ErrBadSnapshot", err)
			}
			if fsm.State() != st || isClosed(st.AbandonCh()) || !bytes.Equal(before, dump(t, fsm)) {
				t.Fatal("a failed Restore changed the state")
			}
			return
		}
		if fsm.State() == st || !isClosed(st.AbandonCh()) {
			t.Fatal("a successful Restore did not replace and abandon the store")
		}
		// Whatever was accepted snapshots again to a stable state, and the
		// FSM keeps applying.
		again := testSnapshotRestore(t, fsm)
		applyCmd(t, fsm, 1<<32, &SettingUpsertRequest{Key: "after", Value: "restore"})
		applyCmd(t, again, 1<<32, &SettingUpsertRequest{Key: "after", Value: "restore"})
		requireSameDump(t, fsm, again)
	})
}

func FuzzReadArchive(f *testing.F) {
	small := New()
	populate(f, small)
	for _, s := range [][]byte{dump(f, small), dump(f, New())} {
		a := archiveOf(f, s)
		f.Add(a)
		f.Add(a[:len(a)-1])
	}
	f.Add(craftArchive(archiveMagic, ArchiveVersion, []byte("{}"), 0, nil))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := ReadArchive(bytes.NewReader(data), 1<<20)
		if err != nil {
			if a != nil || !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("ReadArchive = %v, %v; want nil, ErrBadSnapshot", a, err)
			}
			return
		}
		if _, err := TableCounts(bytes.NewReader(a.Data)); err != nil {
			t.Fatalf("accepted archive holds a bad stream: %v", err)
		}
		if a.Meta.Size != int64(len(a.Data)) {
			t.Fatalf("meta size %d, data %d bytes", a.Meta.Size, len(a.Data))
		}
		// Written again, it reads back the same.
		var buf bytes.Buffer
		if err := WriteArchive(&buf, a.Meta, a.Data); err != nil {
			t.Fatal(err)
		}
		b, err := ReadArchive(&buf, 1<<21)
		if err != nil {
			t.Fatalf("rewritten archive: %v", err)
		}
		want := a.Meta
		want.Version, want.FSMVersion = ArchiveVersion, SnapshotVersion
		if b.Meta != want || !bytes.Equal(a.Data, b.Data) {
			t.Fatalf("rewritten archive reads %+v, want %+v", b.Meta, want)
		}
	})
}
