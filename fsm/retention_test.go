package fsm

import (
	"slices"
	"strconv"
	"testing"
)

// retentionFixture is a state with history of every kind, old and new:
// operations finished at 20 and at 500, one still running, two old ones
// that a storage policy and a DR plan name as their last runs; and
// inventory gone at 60 and at 900 next to inventory still present, and a
// guest and a storage gone at 60 that a backup and a volume still name.
func retentionFixture(t *testing.T) *FSM {
	t.Helper()
	f := New()
	var index uint64
	next := func() uint64 { index++; return index }
	op := func(id string, vmid int, status string, finishedAt int64) {
		applyOK(t, f, next(), &OperationCreateRequest{WriteMeta: WriteMeta{Now: 10}, Op: Operation{ID: id, Kind: OpVMStart, VMID: vmid}})
		if status == OpRunning {
			applyOK(t, f, next(), &OperationUpdateRequest{WriteMeta: WriteMeta{Now: 11}, ID: id, Status: str(OpRunning)})
			return
		}
		u := &OperationUpdateRequest{WriteMeta: WriteMeta{Now: finishedAt}, ID: id, Status: str(status)}
		if status == OpFailed {
			u.Error = &OpError{Code: "task_failed", Message: "start failed"}
		}
		applyOK(t, f, next(), u)
	}
	op("op-old-ok", 100, OpSucceeded, 20)
	op("op-old-failed", 101, OpFailed, 21)
	op("op-new", 102, OpSucceeded, 500)
	op("op-running", 103, OpRunning, 0)
	op("op-policy-last", 104, OpSucceeded, 22)
	op("op-dr-last", 105, OpSucceeded, 23)

	// Storage policies and DR plans name their runs only as runs record
	// them, which takes a platform; set the names directly.
	txn := f.State().db.Txn(true)
	if err := txn.Insert(tableStoragePolicies, &StoragePolicy{ID: "nightly", LastRun: "op-policy-last"}); err != nil {
		t.Fatal(err)
	}
	if err := txn.Insert(tableDRPlans, &DRPlan{ID: "web", LastRun: "op-dr-last"}); err != nil {
		t.Fatal(err)
	}
	backup := sampleBackup()
	backup.VMID, backup.StorageID = 203, "pve1/local"
	volume := sampleVolume()
	volume.VMID, volume.StorageID = 200, "pve1/nfs"
	if err := txn.Insert(tableBackups, &backup); err != nil {
		t.Fatal(err)
	}
	if err := txn.Insert(tableVolumes, &volume); err != nil {
		t.Fatal(err)
	}
	for _, it := range []struct{ table, key, run string }{
		{tableRunItems, "op-old-ok/0000000100", "op-old-ok"},
		{tableRunItems, "op-policy-last/0000000104", "op-policy-last"},
		{tableDRItems, "op-old-failed/0001/0000000101", "op-old-failed"},
		{tableDRItems, "op-dr-last/0001/0000000105", "op-dr-last"},
	} {
		var obj any = &RunItem{Key: it.key, RunID: it.run}
		if it.table == tableDRItems {
			obj = &DRItem{Key: it.key, RunID: it.run}
		}
		if err := txn.Insert(it.table, obj); err != nil {
			t.Fatal(err)
		}
	}
	txn.Commit()

	guest := func(vmid int) InvGuest { return InvGuest{VMID: vmid, Kind: GuestKindVM, Node: "pve1"} }
	storage := func(id string) InvStorage { return InvStorage{ID: id, Node: "pve1", Storage: id[len("pve1/"):]} }
	applyOK(t, f, next(), &InventorySyncRequest{WriteMeta: WriteMeta{Now: 50},
		Nodes:   []InvNode{{Name: "pve1", Status: "online"}, {Name: "pve2", Status: "online"}},
		Guests:  []InvGuest{guest(200), guest(201), guest(202), guest(203)},
		Storage: []InvStorage{storage("pve1/local"), storage("pve1/nfs"), {ID: "pve2/local", Node: "pve2", Storage: "local"}},
	})
	applyOK(t, f, next(), &InventorySyncRequest{WriteMeta: WriteMeta{Now: 60},
		GoneNodes: []string{"pve2"}, GoneGuests: []int{201, 203}, GoneStorage: []string{"pve2/local", "pve1/nfs"}})
	applyOK(t, f, next(), &InventorySyncRequest{WriteMeta: WriteMeta{Now: 900}, GoneGuests: []int{202}})
	return f
}

// historyOf lists the IDs of every operation and inventory object, gone
// ones included.
func historyOf(t *testing.T, f *FSM) (ops, items, nodes, guests, storage []string) {
	t.Helper()
	txn := f.State().db.Txn(false)
	for table, out := range map[string]*[]string{tableOperations: &ops, tableRunItems: &items, tableDRItems: &items,
		tableInvNodes: &nodes, tableInvGuests: &guests, tableInvStorage: &storage} {
		err := eachObject(txn, table, func(raw any) {
			switch o := raw.(type) {
			case *Operation:
				*out = append(*out, o.ID)
			case *RunItem:
				*out = append(*out, o.RunID)
			case *DRItem:
				*out = append(*out, o.RunID)
			case *InvNode:
				*out = append(*out, o.Name)
			case *InvGuest:
				*out = append(*out, strconv.Itoa(o.VMID))
			case *InvStorage:
				*out = append(*out, o.ID)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		slices.Sort(*out)
	}
	return ops, items, nodes, guests, storage
}

func TestFSM_RetentionPrune(t *testing.T) {
	allOps := []string{"op-dr-last", "op-new", "op-old-failed", "op-old-ok", "op-policy-last", "op-running"}
	keptOps := []string{"op-dr-last", "op-new", "op-policy-last", "op-running"}
	allGuests := []string{"200", "201", "202", "203"}
	allStorage := []string{"pve1/local", "pve1/nfs", "pve2/local"}
	tests := []struct {
		name                         string
		opsBefore, goneBefore        int64
		want                         RetentionPruned
		ops, nodes, guests, storages []string
	}{
		{name: "zero cut-offs keep everything",
			ops: allOps, nodes: []string{"pve1", "pve2"}, guests: allGuests, storages: allStorage},
		{name: "cut-offs before everything keep everything", opsBefore: 20, goneBefore: 60,
			ops: allOps, nodes: []string{"pve1", "pve2"}, guests: allGuests, storages: allStorage},
		{name: "finished operations only, not the runs policies and plans name", opsBefore: 100,
			want: RetentionPruned{Operations: 2, Items: 2},
			ops:  keptOps, nodes: []string{"pve1", "pve2"}, guests: allGuests, storages: allStorage},
		{name: "gone inventory only", goneBefore: 100,
			want: RetentionPruned{Nodes: 1, Guests: 1, Storage: 1},
			ops:  allOps, nodes: []string{"pve1"}, guests: []string{"200", "202", "203"}, storages: []string{"pve1/local", "pve1/nfs"}},
		{name: "both, late cut-offs", opsBefore: 10_000, goneBefore: 10_000,
			want: RetentionPruned{Operations: 3, Items: 2, Nodes: 1, Guests: 2, Storage: 1},
			ops:  []string{"op-dr-last", "op-policy-last", "op-running"}, nodes: []string{"pve1"}, guests: []string{"200", "203"}, storages: []string{"pve1/local", "pve1/nfs"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := retentionFixture(t)
			replica := testSnapshotRestore(t, f)
			due, err := f.State().RetentionDue(tc.opsBefore, tc.goneBefore)
			if err != nil {
				t.Fatal(err)
			}
			if wantDue := tc.want != (RetentionPruned{}); due != wantDue {
				t.Errorf("RetentionDue = %v, want %v", due, wantDue)
			}
			cmd := &RetentionPruneRequest{WriteMeta: WriteMeta{Now: 20_000, Actor: "server:s1"}, OperationsBefore: tc.opsBefore, GoneBefore: tc.goneBefore}
			r := applyOK(t, f, 100, cmd)
			if got := *r.Value.(*RetentionPruned); got != tc.want {
				t.Errorf("pruned %+v, want %+v", got, tc.want)
			}
			ops, items, nodes, guests, storage := historyOf(t, f)
			var wantItems []string
			for _, id := range tc.ops {
				if id != "op-new" && id != "op-running" {
					wantItems = append(wantItems, id)
				}
			}
			for what, pair := range map[string][2][]string{"operations": {ops, tc.ops}, "run items": {items, wantItems}, "nodes": {nodes, tc.nodes}, "guests": {guests, tc.guests}, "storage": {storage, tc.storages}} {
				if !slices.Equal(pair[0], pair[1]) {
					t.Errorf("%s left: %v, want %v", what, pair[0], pair[1])
				}
			}
			// Every server applies the same entry to the same state.
			applyOK(t, replica, 100, cmd)
			requireSameDump(t, f, replica)
			// Nothing is left to prune with the same cut-offs.
			if due, _ := f.State().RetentionDue(tc.opsBefore, tc.goneBefore); due {
				t.Error("RetentionDue after the prune = true")
			}
			if got := *applyOK(t, f, 101, cmd).Value.(*RetentionPruned); got != (RetentionPruned{}) {
				t.Errorf("second prune deleted %+v", got)
			}
		})
	}
}

// TestFSM_RetentionPruneMax: a bounded prune deletes operations first,
// then inventory, each in ID order, and the next entry goes on from there.
func TestFSM_RetentionPruneMax(t *testing.T) {
	f := retentionFixture(t)
	steps := []struct {
		want   RetentionPruned
		ops    []string
		guests []string
	}{
		{RetentionPruned{Operations: 2, Items: 1}, []string{"op-dr-last", "op-old-ok", "op-policy-last", "op-running"}, []string{"200", "201", "202", "203"}},
		{RetentionPruned{Operations: 1, Items: 1, Nodes: 1}, []string{"op-dr-last", "op-policy-last", "op-running"}, []string{"200", "201", "202", "203"}},
		{RetentionPruned{Guests: 2}, []string{"op-dr-last", "op-policy-last", "op-running"}, []string{"200", "203"}},
		{RetentionPruned{Storage: 1}, []string{"op-dr-last", "op-policy-last", "op-running"}, []string{"200", "203"}},
		{RetentionPruned{}, []string{"op-dr-last", "op-policy-last", "op-running"}, []string{"200", "203"}},
	}
	for i, step := range steps {
		r := applyOK(t, f, uint64(100+i), &RetentionPruneRequest{OperationsBefore: 10_000, GoneBefore: 10_000, Max: 2})
		if got := *r.Value.(*RetentionPruned); got != step.want {
			t.Errorf("prune %d deleted %+v, want %+v", i, got, step.want)
		}
		ops, _, _, guests, _ := historyOf(t, f)
		if !slices.Equal(ops, step.ops) || !slices.Equal(guests, step.guests) {
			t.Errorf("after prune %d: operations %v, guests %v; want %v, %v", i, ops, guests, step.ops, step.guests)
		}
	}
}

// TestRetentionPrune_Ignorable: the command carries IgnoreUnknownTypeFlag,
// so that a server of an older version skips it instead of halting
// (TestFSM_ApplyUnknownType and TestFSM_Batch cover the skipping).
func TestRetentionPrune_Ignorable(t *testing.T) {
	buf := mustEncode(t, &RetentionPruneRequest{OperationsBefore: 1})
	if MessageType(buf[0])&IgnoreUnknownTypeFlag == 0 {
		t.Fatalf("retention_prune is type %d, without IgnoreUnknownTypeFlag", buf[0])
	}
}
