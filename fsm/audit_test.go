package fsm

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/moxxie/moxxie/audit"
)

// testAuditKey signs the checkpoints of the tests.
var testAuditKey = ed25519.NewKeyFromSeed(bytes.Repeat([]byte{5}, ed25519.SeedSize))

func auditMeta(now int64, action, object string) WriteMeta {
	return WriteMeta{Now: now, Actor: "tok-1", RequestID: "req", Audit: &AuditInfo{
		Role: "operator", Tenant: "acme", Source: "192.0.2.1:4000", Action: action, Object: object,
	}}
}

// auditLog returns the stored entries and checkpoints, verified.
func auditLog(t *testing.T, f *FSM) ([]audit.Entry, []audit.Checkpoint) {
	t.Helper()
	_, es, err := f.State().AuditEntries(nil, AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	_, cps, err := f.State().AuditCheckpoints(nil)
	if err != nil {
		t.Fatal(err)
	}
	var entries []audit.Entry
	for _, e := range es {
		entries = append(entries, *e)
	}
	var checkpoints []audit.Checkpoint
	for _, c := range cps {
		checkpoints = append(checkpoints, *c)
	}
	if _, err := audit.Verify(entries, checkpoints, audit.Options{}); err != nil {
		t.Fatalf("stored audit log does not verify: %v", err)
	}
	return entries, checkpoints
}

func TestFSM_AuditClientWrites(t *testing.T) {
	f := New()
	applyOK(t, f, 1, &SettingUpsertRequest{WriteMeta: auditMeta(10, "PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/a"), Key: "a", Value: "1"})
	// A refused write records its attempt and changes nothing else.
	r := applyCmd(t, f, 2, &SettingDeleteRequest{WriteMeta: auditMeta(11, "DELETE /v1/cluster/settings/{key}", "/v1/cluster/settings/nope"), Key: "nope"})
	requireErrorIs(t, r.Err, ErrNotFound)
	// Commands of the servers themselves are not audited.
	applyOK(t, f, 3, &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 12}, Key: "b", Value: "2"})
	applyOK(t, f, 4, &IdempotencyReapRequest{WriteMeta: WriteMeta{Now: 13}, Before: 1})
	// A batch: each audited entry gets its own record, a refused one too.
	applyBatch(t, f, 5,
		mustEncode(t, &SettingUpsertRequest{WriteMeta: auditMeta(14, "PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/c"), Key: "c", Value: "3"}),
		mustEncode(t, &SettingUpsertRequest{WriteMeta: auditMeta(14, "PUT /v1/cluster/settings/{key}", "/v1/cluster/settings/a"), Key: "a", Value: "x", CASIndex: u64(99)}),
		mustEncode(t, &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 14}, Key: "d", Value: "4"}),
	)
	es, _ := auditLog(t, f)
	want := []struct {
		index  uint64
		object string
		result string
	}{
		{1, "/v1/cluster/settings/a", "ok"},
		{2, "/v1/cluster/settings/nope", "not_found"},
		{5, "/v1/cluster/settings/c", "ok"},
		{5, "/v1/cluster/settings/a", "conflict"},
	}
	if len(es) != len(want) {
		t.Fatalf("%d entries, want %d: %+v", len(es), len(want), es)
	}
	for i, w := range want {
		e := es[i]
		if e.Seq != uint64(i+1) || e.Index != w.index || e.Object != w.object || e.Result != w.result ||
			e.TokenID != "tok-1" || e.Role != "operator" || e.Tenant != "acme" || e.Source != "192.0.2.1:4000" || e.RequestID != "req" {
			t.Errorf("entry %d: %+v, want index %d object %s result %s", i+1, e, w.index, w.object, w.result)
		}
	}
	// The entry of a write is in the same index as the write.
	if _, s, _ := f.State().Setting(nil, "a"); s.ModifyIndex != es[0].Index {
		t.Errorf("setting a at %d, its entry at %d", s.ModifyIndex, es[0].Index)
	}
}

func TestFSM_AuditRejectedChangesOnlyTheLog(t *testing.T) {
	f := New()
	next := populate(t, f)
	_, before, _ := f.State().AuditEntries(nil, AuditFilter{})
	r := applyCmd(t, f, next, &TokenRevokeRequest{WriteMeta: auditMeta(50, "DELETE /v1/acl/tokens/{accessor_id}", "/v1/acl/tokens/x"), AccessorID: "x"})
	requireErrorIs(t, r.Err, ErrNotFound)
	_, after, _ := f.State().AuditEntries(nil, AuditFilter{})
	if len(after) != len(before)+1 || after[len(after)-1].Result != "not_found" {
		t.Fatalf("entries %d -> %d", len(before), len(after))
	}
	if _, toks, _ := f.State().Tokens(nil); len(toks) != 2 {
		t.Fatalf("tokens changed: %d", len(toks))
	}
	auditLog(t, f)
}

func TestFSM_AuditRecordCheckpointTruncate(t *testing.T) {
	f := New()
	idx := uint64(1)
	for i := range 6 {
		applyOK(t, f, idx, &AuditRecordRequest{WriteMeta: auditMeta(int64(i), AuditAuthFailed, "/v1/vms"), Result: "unauthorized"})
		idx++
	}
	es, _ := auditLog(t, f)
	if len(es) != 6 || es[0].Result != "unauthorized" || es[0].Action != AuditAuthFailed {
		t.Fatalf("entries %+v", es)
	}
	// Checkpoints must match the stored chain and carry a valid signature.
	bad := audit.Sign(testAuditKey, audit.Head{Seq: 3, Hash: es[2].Hash}, 9)
	bad.Sig = audit.Sign(testAuditKey, audit.Head{Seq: 3, Hash: es[1].Hash}, 9).Sig
	requireErrorIs(t, applyCmd(t, f, idx, &AuditCheckpointRequest{Checkpoint: bad}).Err, ErrInvalid)
	requireErrorIs(t, applyCmd(t, f, idx, &AuditCheckpointRequest{Checkpoint: audit.Sign(testAuditKey, audit.Head{Seq: 3, Hash: es[1].Hash}, 9)}).Err, ErrConflict)
	requireErrorIs(t, applyCmd(t, f, idx, &AuditCheckpointRequest{Checkpoint: audit.Sign(testAuditKey, audit.Head{Seq: 9, Hash: es[1].Hash}, 9)}).Err, ErrNotFound)
	for _, seq := range []uint64{2, 4} {
		applyOK(t, f, idx, &AuditCheckpointRequest{Checkpoint: audit.Sign(testAuditKey, audit.Head{Seq: seq, Hash: es[seq-1].Hash}, 9)})
		idx++
	}
	requireErrorIs(t, applyCmd(t, f, idx, &AuditCheckpointRequest{Checkpoint: audit.Sign(testAuditKey, audit.Head{Seq: 4, Hash: es[3].Hash}, 10)}).Err, ErrConflict)
	// Truncation must end at a checkpoint.
	requireErrorIs(t, applyCmd(t, f, idx, &AuditTruncateRequest{Before: 4}).Err, ErrConflict)
	r := applyOK(t, f, idx, &AuditTruncateRequest{Before: 5})
	idx++
	if got := r.Value.(map[string]int)["deleted"]; got != 4 {
		t.Fatalf("deleted %d, want 4", got)
	}
	es, cps := auditLog(t, f)
	if len(es) != 2 || es[0].Seq != 5 || len(cps) != 1 || cps[0].Seq != 4 {
		t.Fatalf("after truncation: %d entries from %d, checkpoints %+v", len(es), es[0].Seq, cps)
	}
	// Appending goes on from the head; truncating everything keeps the
	// head in the checkpoint.
	applyOK(t, f, idx, &AuditRecordRequest{WriteMeta: auditMeta(7, AuditAuthFailed, "/v1/status"), Result: "forbidden"})
	idx++
	es, _ = auditLog(t, f)
	applyOK(t, f, idx, &AuditCheckpointRequest{Checkpoint: audit.Sign(testAuditKey, audit.Head{Seq: 7, Hash: es[2].Hash}, 11)})
	idx++
	applyOK(t, f, idx, &AuditTruncateRequest{Before: 8})
	idx++
	if head, _ := f.State().AuditHead(); head.Seq != 7 || head.Hash != es[2].Hash {
		t.Fatalf("head %v", head)
	}
	applyOK(t, f, idx, &AuditRecordRequest{WriteMeta: auditMeta(8, AuditAuthFailed, "/v1/status"), Result: "unauthorized"})
	es, _ = auditLog(t, f)
	if len(es) != 1 || es[0].Seq != 8 {
		t.Fatalf("entries %+v", es)
	}
	// The state with audit records survives a snapshot round trip.
	testSnapshotRestore(t, f)
	// Invalid records.
	requireErrorIs(t, applyCmd(t, f, idx+1, &AuditRecordRequest{Result: "x"}).Err, ErrInvalid)
}

func TestAuditResult(t *testing.T) {
	cases := map[error]string{
		nil:                               "ok",
		ErrNotFound:                       "not_found",
		ErrConflict:                       "conflict",
		ErrIdempotencyMismatch:            "idempotency_mismatch",
		fieldErrf("x", ErrInvalid, "bad"): "invalid_request",
		errors.New("other"):               "failed",
	}
	for err, want := range cases {
		if got := AuditResult(err); got != want {
			t.Errorf("AuditResult(%v) = %q, want %q", err, got, want)
		}
	}
}

func TestParseAuditRetention(t *testing.T) {
	good := map[string]time.Duration{"0": 0, "90d": 90 * 24 * time.Hour, "1d": 24 * time.Hour, "1h": time.Hour, "720h": 720 * time.Hour}
	for v, want := range good {
		if got, err := ParseAuditRetention(v); err != nil || got != want {
			t.Errorf("%q: %v, %v", v, got, err)
		}
		if err := CheckSetting(AuditRetentionKey, v); err != nil {
			t.Errorf("CheckSetting %q: %v", v, err)
		}
	}
	for _, v := range []string{"", "-1d", "0d", "10m", "x", "d", "1.5d", "-2h"} {
		if err := CheckSetting(AuditRetentionKey, v); err == nil {
			t.Errorf("CheckSetting accepted %q", v)
		}
	}
}

// TestFSM_AuditBlocks checks the audit log kept in blocks, one per write
// transaction: entries of a batch share a block, reads, checkpoints and
// truncation find entries inside blocks, and a snapshot restores the same
// log that goes on growing from the same head.
func TestFSM_AuditBlocks(t *testing.T) {
	f := New()
	record := func(i int) []byte {
		return mustEncode(t, &AuditRecordRequest{WriteMeta: auditMeta(int64(i), AuditAuthFailed, fmt.Sprintf("/v1/x/%d", i)), Result: "unauthorized"})
	}
	// Entries 1-5 in one batch, 6 alone, 7-10 in a batch with a refused
	// write in the middle (entry 8), which starts the batch over with a
	// transaction per command.
	applyBatch(t, f, 1, record(1), record(2), record(3), record(4), record(5))
	applyOK(t, f, 2, &AuditRecordRequest{WriteMeta: auditMeta(6, AuditAuthFailed, "/v1/x/6"), Result: "unauthorized"})
	rs := applyBatch(t, f, 3, record(7),
		mustEncode(t, &SettingDeleteRequest{WriteMeta: auditMeta(8, "DELETE /v1/cluster/settings/{key}", "/v1/x/8"), Key: "nope"}),
		record(9), record(10))
	requireErrorIs(t, rs[1].Err, ErrNotFound)
	es, _ := auditLog(t, f)
	if len(es) != 10 {
		t.Fatalf("%d entries, want 10", len(es))
	}
	for i, e := range es {
		if want := fmt.Sprintf("/v1/x/%d", i+1); e.Seq != uint64(i+1) || e.Object != want {
			t.Fatalf("entry %d: seq %d object %s, want %s", i, e.Seq, e.Object, want)
		}
	}
	if n := tableRows(t, f, tableAudit); n != 6 {
		t.Errorf("%d blocks, want 6 (one batch, one command, four commands applied alone)", n)
	}

	// Reads from inside a block, with a limit and a filter.
	_, got, err := f.State().AuditEntries(nil, AuditFilter{SinceSeq: 3, Limit: 2})
	if err != nil || len(got) != 2 || got[0].Seq != 3 || got[1].Seq != 4 {
		t.Fatalf("since 3 limit 2: %v %+v", err, got)
	}
	_, got, _ = f.State().AuditEntries(nil, AuditFilter{SinceSeq: 2, Action: "DELETE /v1/cluster/settings/{key}"})
	if len(got) != 1 || got[0].Seq != 8 {
		t.Fatalf("filtered: %+v", got)
	}
	_, got, _ = f.State().AuditEntries(nil, AuditFilter{SinceSeq: 11})
	if len(got) != 0 {
		t.Fatalf("since 11: %+v", got)
	}

	// The newest entries, across blocks, still in Seq order.
	for _, tc := range []struct {
		f    AuditFilter
		want []uint64
	}{
		{AuditFilter{Last: 3}, []uint64{8, 9, 10}},
		{AuditFilter{Last: 7}, []uint64{4, 5, 6, 7, 8, 9, 10}},
		{AuditFilter{Last: 20}, []uint64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}},
		{AuditFilter{Last: 3, SinceSeq: 9}, []uint64{9, 10}},
		{AuditFilter{Last: 2, Action: "DELETE /v1/cluster/settings/{key}"}, []uint64{8}},
		{AuditFilter{Last: 2, Limit: 1}, []uint64{9, 10}},
		{AuditFilter{Last: 1, SinceSeq: 11}, nil},
	} {
		_, got, err := f.State().AuditEntries(nil, tc.f)
		var seqs []uint64
		for _, e := range got {
			seqs = append(seqs, e.Seq)
		}
		if err != nil || !slices.Equal(seqs, tc.want) {
			t.Errorf("%+v: %v %v, want %v", tc.f, err, seqs, tc.want)
		}
	}

	// A checkpoint of entry 3, inside the first block, and truncation
	// before entry 4 split that block.
	idx := uint64(4)
	applyOK(t, f, idx, &AuditCheckpointRequest{Checkpoint: audit.Sign(testAuditKey, audit.Head{Seq: 3, Hash: es[2].Hash}, 9)})
	idx++
	if r := applyOK(t, f, idx, &AuditTruncateRequest{Before: 4}); r.Value.(map[string]int)["deleted"] != 3 {
		t.Fatalf("truncate: %+v", r.Value)
	}
	idx++
	es, cps := auditLog(t, f)
	if len(es) != 7 || es[0].Seq != 4 || len(cps) != 1 {
		t.Fatalf("after truncation: %d entries from %d, %d checkpoints", len(es), es[0].Seq, len(cps))
	}

	// A restored state dumps the same bytes and appends from the same head.
	f2 := testSnapshotRestore(t, f)
	for _, g := range []*FSM{f, f2} {
		applyBatch(t, g, idx, record(11), record(12))
	}
	if !bytes.Equal(dump(t, f), dump(t, f2)) {
		t.Fatal("the restored state diverged after appending")
	}
	if es, _ := auditLog(t, f2); len(es) != 9 || es[8].Seq != 12 {
		t.Fatalf("restored log: %d entries", len(es))
	}
}

// TestFSM_AuditBlockSizedForItsChunk checks that a transaction's block is
// made as large as the entries its commands append: the audited ones.
func TestFSM_AuditBlockSizedForItsChunk(t *testing.T) {
	f := New()
	record := func(i int) []byte {
		return mustEncode(t, &AuditRecordRequest{WriteMeta: auditMeta(int64(i), AuditAuthFailed, fmt.Sprintf("/v1/x/%d", i)), Result: "unauthorized"})
	}
	lastBlock := func() *auditBlock {
		raw, err := f.State().db.Txn(false).Last(tableAudit, "id")
		if err != nil || raw == nil {
			t.Fatalf("no audit block (%v)", err)
		}
		return raw.(*auditBlock)
	}
	unaudited := mustEncode(t, &SettingUpsertRequest{Key: "s", Value: "v"})
	applyBatch(t, f, 1, record(1), unaudited, record(2), record(3))
	if b := lastBlock(); len(b.Entries) != 3 || cap(b.Entries) != 3 {
		t.Fatalf("block of a batch of three audited commands: %d entries, room for %d; want 3 and 3", len(b.Entries), cap(b.Entries))
	}
	applyOK(t, f, 2, &AuditRecordRequest{WriteMeta: auditMeta(4, AuditAuthFailed, "/v1/x/4"), Result: "unauthorized"})
	if b := lastBlock(); len(b.Entries) != 1 || cap(b.Entries) != 1 || b.First != 4 {
		t.Fatalf("block of one command: first %d, %d entries, room for %d; want 4, 1 and 1", b.First, len(b.Entries), cap(b.Entries))
	}
}
