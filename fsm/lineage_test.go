package fsm

import (
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestLineage: a restored snapshot carries the lineage written into it,
// which is also its latest index; a later snapshot keeps it and a later
// restore replaces it; a lineage check of the state's own lineage changes
// nothing, and one of another halts the server.
func TestLineage(t *testing.T) {
	src := New()
	next := populate(t, src)
	if src.State().Lineage() != 0 {
		t.Fatalf("lineage %d without a restore", src.State().Lineage())
	}
	data := dump(t, src)
	restored := New()
	with, err := WithLineage(data, next+100)
	if err != nil {
		t.Fatal(err)
	}
	if err := restoreBytes(restored, with); err != nil {
		t.Fatal(err)
	}
	if got := restored.State().Lineage(); got != next+100 {
		t.Fatalf("lineage %d after a restore at %d", got, next+100)
	}
	if got := restored.State().LatestIndex(); got != next+100 {
		t.Fatalf("latest index %d after a restore at %d", got, next+100)
	}
	// It is state: snapshots carry it, and a later restore replaces it.
	again := testSnapshotRestore(t, restored)
	if again.State().Lineage() != next+100 {
		t.Fatalf("lineage %d after a snapshot", again.State().Lineage())
	}
	twice, err := WithLineage(dump(t, again), next+200)
	if err != nil {
		t.Fatal(err)
	}
	if err := restoreBytes(again, twice); err != nil || again.State().Lineage() != next+200 {
		t.Fatalf("second restore: %v, lineage %d", err, again.State().Lineage())
	}
	if _, err := WithLineage(data[:len(data)-1], 1); !errors.Is(err, ErrBadSnapshot) {
		t.Fatalf("a cut stream: %v", err)
	}

	// The check of its own lineage passes, without a change.
	before := dump(t, restored)
	if r := applyCmd(t, restored, next+101, &LineageCheckRequest{Lineage: next + 100}); r.Err != nil {
		t.Fatal(r.Err)
	}
	if string(dump(t, restored)) != string(before) {
		t.Fatal("a lineage check changed the state")
	}
	// Another halts: the state comes from a restore the leader has not.
	for _, c := range []struct {
		fsm  *FSM
		want uint64
		msg  string
	}{
		{restored, 0, "the leader's state comes from no restore, this server's from the restore at index " + fmt.Sprint(next+100)},
		{src, next + 100, "the leader's state comes from the restore at index " + fmt.Sprint(next+100) + ", this server's from no restore"},
	} {
		resp, panicked := applyRecover(c.fsm, next+102, mustEncode(t, &LineageCheckRequest{Lineage: c.want}))
		if !panicked || !strings.Contains(fmt.Sprint(resp), ErrLineage.Error()) || !strings.Contains(fmt.Sprint(resp), c.msg) {
			t.Errorf("lineage check %d: panicked %v: %v", c.want, panicked, resp)
		}
	}
}
