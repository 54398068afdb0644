package fsm

import (
	"bytes"
	"testing"

	"github.com/hashicorp/raft"
)

// TestFSM_SDNRolloutRequestID: a rollout keeps the request ID of the
// apply that started it, the hosts' plan views show it, and it survives
// a snapshot.
func TestFSM_SDNRolloutRequestID(t *testing.T) {
	x := newSDNFixture(t)
	vxlanIntent(x)
	res := x.ok(&SDNApplyRequest{WriteMeta: WriteMeta{RequestID: "req-apply-1"}, RolloutID: "r1", Deadline: Timestamp(1e15)}).(*SDNApplyResult)
	if res.Rollout == nil || res.Rollout.RequestID != "req-apply-1" {
		t.Fatalf("apply result %+v", res.Rollout)
	}
	if r := x.rollout("r1"); r.RequestID != "req-apply-1" {
		t.Fatalf("stored rollout request ID %q", r.RequestID)
	}
	_, view, err := x.store().SDNHostPlan(nil, "pve2")
	if err != nil || view.RolloutID != "r1" || view.RequestID != "req-apply-1" {
		t.Fatalf("plan view %+v, %v", view, err)
	}

	f2 := testSnapshotRestore(t, x.f)
	_, r, err := f2.State().SDNRollout(nil, "r1")
	if err != nil || r == nil || r.RequestID != "req-apply-1" {
		t.Fatalf("restored rollout %+v, %v", r, err)
	}
}

// TestFSM_TraceParentCarried: the trace context in WriteMeta travels in
// the encoded command, changes nothing the FSM computes, and an entry
// decoded with DecodeEntry applies as Apply does.
func TestFSM_TraceParentCarried(t *testing.T) {
	const tp = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	mk := func(traceParent string) Command {
		return &SettingUpsertRequest{WriteMeta: WriteMeta{Now: 1000, RequestID: "r", TraceParent: traceParent}, Key: "k", Value: "v"}
	}
	plain, err := Encode(mk(""))
	if err != nil {
		t.Fatal(err)
	}
	traced, err := Encode(mk(tp))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(plain, []byte("TraceParent")) {
		t.Fatal("an untraced command encodes an empty TraceParent")
	}
	e := New().DecodeEntry(&raft.Log{Index: 7, Type: raft.LogCommand, Data: traced})
	cmds := e.Commands()
	if e.Index() != 7 || len(cmds) != 1 || cmds[0].Meta().TraceParent != tp {
		t.Fatalf("decoded %d commands at %d: %+v", len(cmds), e.Index(), cmds)
	}
	a, b := New(), New()
	ra := a.ApplyEntry(e)
	rb := b.Apply(&raft.Log{Index: 7, Type: raft.LogCommand, Data: plain})
	if ra.(*Result).Err != nil || rb.(*Result).Err != nil {
		t.Fatalf("results %+v %+v", ra, rb)
	}
	if !bytes.Equal(dump(t, a), dump(t, b)) {
		t.Fatal("a traced command changed what the FSM stores")
	}
	if got := a.State().LatestIndex(); got != 7 {
		t.Fatalf("latest index %d", got)
	}

	batch, err := Encode(&BatchRequest{Entries: [][]byte{traced, plain}})
	if err != nil {
		t.Fatal(err)
	}
	e = New().DecodeEntry(&raft.Log{Index: 8, Type: raft.LogCommand, Data: batch})
	if cmds := e.Commands(); len(cmds) != 2 || cmds[0].Meta().TraceParent != tp || cmds[1].Meta().TraceParent != "" {
		t.Fatalf("batch commands %+v", cmds)
	}
	if rs, ok := a.ApplyEntry(e).([]*Result); !ok || len(rs) != 2 {
		t.Fatalf("batch results %+v", rs)
	}
	if e := New().DecodeEntry(&raft.Log{Index: 9, Type: raft.LogNoop}); e.Commands() != nil || a.ApplyEntry(e) != nil {
		t.Fatal("a non-command entry applied something")
	}
}
