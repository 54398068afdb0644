package fsm

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"runtime"
	"sync/atomic"
	"testing"
	"testing/iotest"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata")

// snapHeader returns a snapshot stream header.
func snapHeader(magic [8]byte, version uint32) []byte {
	h := append([]byte(nil), magic[:]...)
	return binary.BigEndian.AppendUint32(h, version)
}

// snapRecord returns one record: type byte, length, body.
func snapRecord(rt recordType, body []byte) []byte {
	r := binary.BigEndian.AppendUint32([]byte{byte(rt)}, uint32(len(body)))
	return append(r, body...)
}

var snapEnd = snapRecord(recEnd, nil)

// snapStream joins a valid header, the given records and an end record.
func snapStream(records ...[]byte) []byte {
	out := snapHeader(snapshotMagic, SnapshotVersion)
	for _, r := range records {
		out = append(out, r...)
	}
	return append(out, snapEnd...)
}

// structuralOffsets returns the offsets of header and record-header bytes
// of a valid stream: damage there must always be detected.
func structuralOffsets(t testing.TB, data []byte) map[int]bool {
	t.Helper()
	out := map[int]bool{}
	for i := range 12 {
		out[i] = true
	}
	p := 12
	for {
		if p+5 > len(data) {
			t.Fatalf("stream ends inside a record header at %d", p)
		}
		for i := range 5 {
			out[p+i] = true
		}
		rt, n := recordType(data[p]), int(binary.BigEndian.Uint32(data[p+1:]))
		p += 5
		if rt == recEnd {
			break
		}
		p += n
	}
	if p != len(data) {
		t.Fatalf("stream has %d bytes after its end record", len(data)-p)
	}
	return out
}

// smallSnapshot returns the snapshot of a small state holding every record
// type.
func smallSnapshot(t testing.TB) []byte {
	t.Helper()
	f := New()
	populate(t, f)
	data := persist(t, f)
	counts, err := TableCounts(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range counts {
		if n == 0 {
			t.Fatalf("small snapshot has no %s record", table)
		}
	}
	return data
}

// restoreTarget returns an FSM with state unlike smallSnapshot's.
func restoreTarget(t testing.TB) *FSM {
	t.Helper()
	f := New()
	applyOK(t, f, 1, &SettingUpsertRequest{Key: "target", Value: "keep me"})
	return f
}

// requireRestoreFails restores data into f and requires ErrBadSnapshot with
// f's state, store and AbandonCh untouched.
func requireRestoreFails(t testing.TB, f *FSM, data []byte, what string) {
	t.Helper()
	before, st := dump(t, f), f.State()
	err := restoreBytes(f, data)
	if !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("%s: Restore error %v, want ErrBadSnapshot", what, err)
	}
	if f.State() != st || isClosed(st.AbandonCh()) || !bytes.Equal(before, dump(t, f)) {
		t.Fatalf("%s: a failed Restore changed the state", what)
	}
}

// inParallel runs check over [0, n) in one parallel subtest per CPU, each
// given a range of its own, and returns when all are done. The damaged
// snapshot tests restore thousands of streams, each into a new store.
func inParallel(t *testing.T, n int, check func(t *testing.T, lo, hi int)) {
	parts := min(runtime.GOMAXPROCS(0), n)
	t.Run("ranges", func(t *testing.T) {
		for i := range parts {
			lo, hi := n*i/parts, n*(i+1)/parts
			t.Run(fmt.Sprintf("%d-%d", lo, hi), func(t *testing.T) {
				t.Parallel()
				check(t, lo, hi)
			})
		}
	})
}

func TestFSM_RestoreTruncated(t *testing.T) {
	data := smallSnapshot(t)
	structural := structuralOffsets(t, data)
	inParallel(t, len(data), func(t *testing.T, lo, hi int) {
		f := restoreTarget(t)
		for n := lo; n < hi; n++ {
			requireRestoreFails(t, f, data[:n], fmt.Sprintf("truncated to %d of %d bytes", n, len(data)))
			// TableCounts reads the stream with Restore's parser: it is
			// checked at every cut through the framing and at every
			// eighth byte besides.
			if !structural[n] && n%8 != 0 {
				continue
			}
			if _, err := TableCounts(bytes.NewReader(data[:n])); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("TableCounts of %d bytes: %v", n, err)
			}
		}
	})
	if err := restoreBytes(restoreTarget(t), data); err != nil {
		t.Fatalf("whole snapshot: %v", err)
	}
}

func TestFSM_RestoreFlippedBytes(t *testing.T) {
	data := smallSnapshot(t)
	structural := structuralOffsets(t, data)
	var rejected, accepted atomic.Int64
	inParallel(t, len(data), func(t *testing.T, lo, hi int) {
		f := restoreTarget(t)
		before := dump(t, f)
		for off := lo; off < hi; off++ {
			for _, mask := range []byte{0x01, 0xff} {
				bad := bytes.Clone(data)
				bad[off] ^= mask
				what := fmt.Sprintf("byte %d ^ %#x", off, mask)
				st := f.State()
				err := restoreBytes(f, bad)
				if err != nil {
					rejected.Add(1)
					if !errors.Is(err, ErrBadSnapshot) {
						t.Fatalf("%s: error %v, want ErrBadSnapshot", what, err)
					}
					if f.State() != st || !bytes.Equal(before, dump(t, f)) {
						t.Fatalf("%s: a failed Restore changed the state", what)
					}
					continue
				}
				n := accepted.Add(1)
				// The stream has no checksum (the archive has): damage
				// inside a record body can decode to other valid values.
				// Damage to the framing must be detected.
				if structural[off] {
					t.Fatalf("%s: damaged framing restored without error", what)
				}
				if !isClosed(st.AbandonCh()) {
					t.Fatalf("%s: successful restore did not abandon the old store", what)
				}
				// Whatever was accepted is a consistent state, which
				// TableCounts reads too (both checked for a sample:
				// FuzzRestore checks every accepted input).
				if n%16 == 1 {
					if _, err := TableCounts(bytes.NewReader(bad)); err != nil {
						t.Fatalf("%s: restored, but TableCounts says %v", what, err)
					}
					testSnapshotRestore(t, f)
				}
				// Back to the small target: the next failed Restore is
				// checked against a state cheap to dump.
				f = restoreTarget(t)
				before = dump(t, f)
			}
		}
	})
	t.Logf("%d damaged streams rejected, %d accepted as other valid states", rejected.Load(), accepted.Load())
}

func TestFSM_RestoreBadStreams(t *testing.T) {
	setting := mustMsgpack(t, &Setting{Key: "a", Value: "1", CreateIndex: 1, ModifyIndex: 1})
	good := snapStream(snapRecord(recSetting, setting))
	lenField := func(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }
	cases := []struct {
		name string
		data []byte
	}{
		{"empty", nil},
		{"header only", snapHeader(snapshotMagic, SnapshotVersion)},
		{"wrong magic", append(snapHeader([8]byte{'M', 'O', 'X', 'X', 'S', 'N', 'A', 'P'}, SnapshotVersion), snapEnd...)},
		{"lower-case magic", append(snapHeader([8]byte{'m', 'o', 'x', 'x', 'f', 's', 'm', 0}, SnapshotVersion), snapEnd...)},
		{"version 0", append(snapHeader(snapshotMagic, 0), snapEnd...)},
		{"future version", append(snapHeader(snapshotMagic, SnapshotVersion+1), snapEnd...)},
		{"version max", append(snapHeader(snapshotMagic, 0xffffffff), snapEnd...)},
		{"an archive is not a stream", archiveOf(t, good)},
		{"trailing byte", append(bytes.Clone(good), 0)},
		{"trailing end record", append(bytes.Clone(good), snapEnd...)},
		{"two streams", append(bytes.Clone(good), good...)},
		{"end record with a length", append(snapHeader(snapshotMagic, SnapshotVersion), snapRecord(recEnd, []byte{0})...)},
		{"end record with a length and no body", append(snapHeader(snapshotMagic, SnapshotVersion), append([]byte{byte(recEnd)}, lenField(1)...)...)},
		{"record type 0", snapStream(snapRecord(0, setting))},
		{"unknown record type", snapStream(snapRecord(recIdempotency+1, setting))},
		{"record over the size limit", append(snapHeader(snapshotMagic, SnapshotVersion), append([]byte{byte(recSetting)}, lenField(maxRecordSize+1)...)...)},
		{"record length max", append(snapHeader(snapshotMagic, SnapshotVersion), append([]byte{byte(recSetting)}, lenField(0xffffffff)...)...)},
		{"record longer than the stream", append(snapHeader(snapshotMagic, SnapshotVersion), append([]byte{byte(recSetting)}, lenField(1000)...)...)},
		{"large record longer than the stream", append(snapHeader(snapshotMagic, SnapshotVersion), append([]byte{byte(recSetting)}, lenField(maxRecordSize)...)...)},
		{"large record one byte short", snapStream(snapRecord(recSetting, bytes.Repeat([]byte{0xc0}, 2<<20))[:5+2<<20-1])},
		{"empty body", snapStream(snapRecord(recSetting, nil))},
		{"body not msgpack", snapStream(snapRecord(recSetting, []byte{0xc1}))},
		{"body of the wrong shape", snapStream(snapRecord(recSetting, mustMsgpack(t, []int{1, 2})))},
		{"msgpack nil body", snapStream(snapRecord(recSetting, []byte{0xc0}))},
		{"setting without key", snapStream(snapRecord(recSetting, mustMsgpack(t, &Setting{Value: "1"})))},
		{"token without secret hash", snapStream(snapRecord(recToken, mustMsgpack(t, &Token{AccessorID: "a"})))},
		{"index entry without table", snapStream(snapRecord(recIndex, mustMsgpack(t, &IndexEntry{Index: 4})))},
		{"ACL state without ID", snapStream(snapRecord(recACL, mustMsgpack(t, &ACLState{Bootstrapped: true})))},
		{"idempotency record without key", snapStream(snapRecord(recIdempotency, mustMsgpack(t, &IdempotencyRecord{RequestHash: "h"})))},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := restoreTarget(t)
			requireRestoreFails(t, f, tc.data, tc.name)
			if _, err := TableCounts(bytes.NewReader(tc.data)); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("TableCounts: %v, want ErrBadSnapshot", err)
			}
		})
	}
	// The good stream the damaged ones derive from does restore.
	f := New()
	if err := restoreBytes(f, good); err != nil {
		t.Fatal(err)
	}
	if _, s, _ := f.State().Setting(nil, "a"); s == nil || s.Value != "1" {
		t.Fatalf("restored setting %+v", s)
	}
}

func TestFSM_RestoreLargeRecord(t *testing.T) {
	// Bodies over 1 MiB are read as they arrive rather than allocated from
	// the length up front; both paths restore the same.
	for _, size := range []int{1<<20 - 64, 3 << 20} {
		f := New()
		applyOK(t, f, 1, &SettingUpsertRequest{Key: "big", Value: string(bytes.Repeat([]byte("x"), size))})
		f2 := testSnapshotRestore(t, f)
		if _, s, _ := f2.State().Setting(nil, "big"); s == nil || len(s.Value) != size {
			t.Fatalf("restored setting of %d bytes lost its value", size)
		}
	}
}

func TestStore_DumpIndexed(t *testing.T) {
	f := New()
	var buf bytes.Buffer
	if idx, err := f.State().DumpIndexed(&buf); err != nil || idx != 0 {
		t.Fatalf("empty store: %d, %v", idx, err)
	}
	next := populate(t, f)
	applyCmd(t, f, next+5, &SettingDeleteRequest{Key: "nope"}) // rejected: no table changes
	buf.Reset()
	idx, err := f.State().DumpIndexed(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if idx != next-1 {
		t.Fatalf("DumpIndexed index %d, want %d (the last change)", idx, next-1)
	}
	if !bytes.Equal(buf.Bytes(), dump(t, f)) {
		t.Fatal("DumpIndexed and Dump write different bytes")
	}
}

func TestFSM_RestoreReadError(t *testing.T) {
	data := smallSnapshot(t)
	readers := map[string]io.Reader{
		"error at start":   iotest.ErrReader(errors.New("disk on fire")),
		"error mid-stream": io.MultiReader(bytes.NewReader(data[:len(data)/2]), iotest.ErrReader(errors.New("disk on fire"))),
		"timeout reader":   iotest.TimeoutReader(bytes.NewReader(data)),
	}
	for name, r := range readers {
		t.Run(name, func(t *testing.T) {
			f := restoreTarget(t)
			before := dump(t, f)
			rc := &readCloser{Reader: r}
			if err := f.Restore(rc); !errors.Is(err, ErrBadSnapshot) {
				t.Fatalf("Restore: %v, want ErrBadSnapshot", err)
			}
			if !rc.closed {
				t.Fatal("Restore did not close its reader on error")
			}
			if !bytes.Equal(before, dump(t, f)) {
				t.Fatal("state changed")
			}
		})
	}
	// One byte at a time is slow, not broken.
	f := New()
	if err := f.Restore(&readCloser{Reader: iotest.OneByteReader(bytes.NewReader(data))}); err != nil {
		t.Fatalf("one-byte reader: %v", err)
	}
}

func TestTableCounts(t *testing.T) {
	f := New()
	populate(t, f)
	counts, err := TableCounts(bytes.NewReader(persist(t, f)))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{
		tableIndex:            47, // one per table written to through insert or touchTable (not the clock)
		tableSettings:         3,  // a, b, d (c deleted)
		tableTokens:           2,  // root, t1 (t2 revoked)
		tableACL:              1,
		tableIdempotency:      2,
		tableVRFs:             1,
		tablePrefixes:         2, // the /8 container and the /24 in it
		tableIPRanges:         1,
		tableAddresses:        3, // the gateway, a-1 and a-3 (a-2 released)
		tablePools:            1,
		tableIDAllocs:         1,
		tableZones:            1,
		tableSpaces:           4, // root of global, the container's blocks, the /24's addresses, the VLAN group
		tableRuns:             5, // one each, and two in the /24: .1-.4 and the range
		tableHolds:            1, // a-2 in quarantine
		tableIPAMClock:        1,
		tableInvNodes:         1,
		tableInvGuests:        2, // 100 and 101, which is gone but kept
		tableInvStorage:       1,
		tableInvState:         1,
		tableOperations:       4, // op-1, op-2, run-1 and dr-1
		tableSecretKeys:       1,
		tableSecrets:          1,
		tableAudit:            2, // setting d and the refused login
		tableAuditCheckpoints: 1,
		tableTenants:          1,
		tableProjects:         1,
		tableUsage:            2, // acme and acme/web, holding a-3
		tableMeterClock:       1,
		tableMeterRates:       1, // acme/web's address
		tableMeterBuckets:     2, // its first hour and first day
		tableRateCards:        1,
		tableCapacitySamples:  1, // pve1 at the first tick
		tableCapacityPolicies: 1,
		tableSDNZones:         1,
		tableSDNVnets:         1,
		tableSDNSubnets:       1,
		tableSDNAllows:        1,
		tableSDNHosts:         1,
		tableSDNPlans:         1, // pve1's plan of version 1
		tableSDNRollouts:      1,
		tableStoragePolicies:  1,
		tableRunItems:         1, // vm 100 of run-1
		tablePolicySnapshots:  1, // the snapshot it took
		tableBackups:          1,
		tableVolumes:          1,
		tablePoolSettings:     1,
		tableStorageSamples:   1, // local at the first tick
		tableDRPlans:          2, // web, and west's db as a replica
		tableDRItems:          1, // vm 100 of dr-1
		tableDRConflicts:      1, // vm 100 ran at east
	}
	if !reflect.DeepEqual(counts, want) {
		t.Fatalf("TableCounts = %v, want %v", counts, want)
	}
	empty, err := TableCounts(bytes.NewReader(dump(t, New())))
	if err != nil {
		t.Fatal(err)
	}
	for table, n := range empty {
		if n != 0 {
			t.Errorf("empty state has %d %s objects", n, table)
		}
	}
	if len(empty) != len(snapshotTables) {
		t.Errorf("TableCounts lists %d tables, want all %d", len(empty), len(snapshotTables))
	}
}

// TestFSM_RestoreGoldenV1 restores a snapshot written by the first version
// of the format. Servers must keep reading old snapshots: regenerate the
// file only when its content is meant to change, never to paper over a
// format change (go test -run GoldenV1 -update).
func TestFSM_RestoreGoldenV1(t *testing.T) {
	path := filepath.Join("testdata", "snapshot-v1.bin")
	if *update {
		f := New()
		populate(t, f)
		if err := os.WriteFile(path, persist(t, f), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f := New()
	if err := restoreBytes(f, data); err != nil {
		t.Fatal(err)
	}
	st := f.State()
	if !st.ACLBootstrapped() {
		t.Error("not bootstrapped")
	}
	if _, s, _ := st.Setting(nil, "a"); s == nil || s.Value != "1" || s.CreateIndex != 2 || s.UpdatedAt != 2 {
		t.Errorf("setting a = %+v", s)
	}
	if tok, _ := st.TokenBySecretHash("h1"); tok == nil || tok.AccessorID != "t1" || tok.Tenant != "x" || tok.CreateIndex != 6 {
		t.Errorf("token h1 = %+v", tok)
	}
	if n := st.IdempotencyRecords(); n != 2 {
		t.Errorf("%d idempotency records, want 2", n)
	}
	if st.LatestIndex() != 8 {
		t.Errorf("LatestIndex = %d, want 8", st.LatestIndex())
	}
	// Written again it is byte-identical: the record framing and the
	// msgpack encoding have not drifted. (Stored idempotency results are
	// JSON made when the command applied, so they are carried, not
	// re-encoded.)
	if !bytes.Equal(dump(t, f), data) {
		t.Error("re-dumping testdata/snapshot-v1.bin changes it: the snapshot encoding changed; bump SnapshotVersion and keep reading version 1")
	}
}
