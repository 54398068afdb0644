package node

import (
	"slices"
	"testing"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/storage"
)

// A storage shared between sites lists other sites' backups too, with
// notes naming their own policies: retention counts only the backups of
// this site's runs of the policy.
func TestOwnBackups_OnlyThisSitesRuns(t *testing.T) {
	tf := &testFSM{f: fsm.New()}
	tf.apply(t, &fsm.StoragePolicyPutRequest{Create: true, Policy: fsm.StoragePolicy{ID: "nightly", Kind: fsm.PolicyKindBackup,
		Schedule: "02:00", Selector: storage.Selector{VMIDs: []int{100}}, Keep: storage.Keep{Last: 1}, Storage: "dr", Mode: "snapshot"}})
	tf.apply(t, &fsm.PolicyTickRequest{Policy: "nightly", Slot: 1, Run: &fsm.Operation{ID: "run-here"}, Items: []fsm.RunItem{{VMID: 100, Node: "pve1", Kind: "qemu"}}})
	all := []*fsm.Backup{
		{VolID: "dr:backup/a", VMID: 100, Policy: "nightly", Run: "run-here"},
		{VolID: "dr:backup/b", VMID: 100, Policy: "nightly", Run: "run-at-another-site"},
		{VolID: "dr:backup/c", VMID: 100, Policy: "nightly"},
		{VolID: "dr:backup/d", VMID: 101, Policy: "nightly", Run: "run-here"},
		{VolID: "dr:backup/e", VMID: 100, Policy: "weekly", Run: "run-here"},
	}
	var got []string
	for _, b := range ownBackups(tf.f.State(), all, "nightly", 100) {
		got = append(got, b.VolID)
	}
	if !slices.Equal(got, []string{"dr:backup/a"}) {
		t.Fatalf("own backups %v, want only dr:backup/a", got)
	}
}
