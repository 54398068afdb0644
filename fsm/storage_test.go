package fsm

import (
	"errors"
	"testing"

	"github.com/moxxie/moxxie/quota"
	"github.com/moxxie/moxxie/storage"
)

// storageFSM returns an FSM with two guests of tenant acme (disk quota 40
// GiB), a local disk storage and a backup storage, and their volumes.
func storageFSM(t *testing.T) *FSM {
	t.Helper()
	f := New()
	applyOK(t, f, 1, &TenantCreateRequest{Tenant: Tenant{ID: "acme", Quota: quota.Limits{quota.DiskGiB: 40}}})
	applyOK(t, f, 2, &InventorySyncRequest{
		Nodes: []InvNode{{Name: "pve1", Status: "online"}},
		Guests: []InvGuest{
			{VMID: 100, Kind: GuestKindVM, Node: "pve1", Status: "running", Tenant: "acme", MaxDisk: 10 << 30},
			{VMID: 101, Kind: GuestKindVM, Node: "pve1", Status: "stopped", Tenant: "acme", MaxDisk: 10 << 30},
		},
		Storage: []InvStorage{
			{ID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", Content: []string{"images"}, Status: "available", Used: 20 << 30, Total: 100 << 30},
			{ID: "pve1/local", Node: "pve1", Storage: "local", Content: []string{"backup"}, Status: "available", Used: 95 << 30, Total: 100 << 30},
		},
	})
	applyOK(t, f, 3, &StorageSyncRequest{StorageIDs: []string{"pve1/local-lvm", "pve1/local"},
		Volumes: []Volume{
			{VolID: "local-lvm:vm-100-disk-0", StorageID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", VMID: 100, Size: 10 << 30, Content: "images"},
			{VolID: "local-lvm:vm-100-disk-1", StorageID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", VMID: 100, Size: 5 << 30, Content: "images"},
			{VolID: "local-lvm:vm-101-disk-0", StorageID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", VMID: 101, Size: 10 << 30, Content: "images"},
		}})
	return f
}

// TestFSM_StorageSyncCountsEveryVolume shows disk usage following the
// guests' volumes, not just the boot disk Proxmox reports, and a sync
// replacing exactly the storages it listed.
func TestFSM_StorageSyncCountsEveryVolume(t *testing.T) {
	f := storageFSM(t)
	if got := usage(t, f, "acme").Amounts[quota.DiskGiB]; got != 25 {
		t.Fatalf("disk usage %d GiB, want 25 (15 of vm 100's two volumes, 10 of vm 101)", got)
	}
	// A second disk of vm 100 is deleted; a listing of another storage
	// leaves local-lvm's volumes alone.
	applyOK(t, f, 4, &StorageSyncRequest{StorageIDs: []string{"pve1/local"}})
	applyOK(t, f, 5, &StorageSyncRequest{StorageIDs: []string{"pve1/local-lvm"}, Volumes: []Volume{
		{VolID: "local-lvm:vm-100-disk-0", StorageID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", VMID: 100, Size: 10 << 30, Content: "images"},
		{VolID: "local-lvm:vm-101-disk-0", StorageID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", VMID: 101, Size: 10 << 30, Content: "images"},
	}})
	if got := usage(t, f, "acme").Amounts[quota.DiskGiB]; got != 20 {
		t.Fatalf("disk usage %d GiB after the delete, want 20", got)
	}
	// An inventory sync keeps the counted volumes.
	applyOK(t, f, 6, &InventorySyncRequest{Guests: []InvGuest{{VMID: 100, Kind: GuestKindVM, Node: "pve1", Status: "stopped", Tenant: "acme", MaxDisk: 10 << 30}}})
	if _, g, _ := f.State().InventoryGuest(nil, 100); g.VolumeBytes != 10<<30 {
		t.Fatalf("inventory sync dropped VolumeBytes: %d", g.VolumeBytes)
	}
	// A volume listed from a storage the sync did not scan is refused.
	r := applyCmd(t, f, 7, &StorageSyncRequest{StorageIDs: []string{"pve1/local"}, Volumes: []Volume{{VolID: "x:y", StorageID: "pve1/other"}}})
	requireErrorIs(t, r.Err, ErrInvalid)
}

// TestFSM_VolumeAdmission table-tests the checks a volume operation gets
// in Apply: quota, known volumes of the guest, growth only.
func TestFSM_VolumeAdmission(t *testing.T) {
	cases := []struct {
		name  string
		kind  string
		vmid  int
		v     VolumeSpec
		want  error
		field string
	}{
		{"create within quota", OpVolumeCreate, 100, VolumeSpec{Storage: "local-lvm", SizeGiB: 15}, nil, ""},
		{"create over quota", OpVolumeCreate, 100, VolumeSpec{Storage: "local-lvm", SizeGiB: 16}, quota.ErrExceeded, "quota"},
		{"resize grows", OpVolumeResize, 100, VolumeSpec{VolID: "local-lvm:vm-100-disk-1", SizeGiB: 20}, nil, ""},
		{"resize over quota", OpVolumeResize, 100, VolumeSpec{VolID: "local-lvm:vm-100-disk-1", SizeGiB: 21}, quota.ErrExceeded, "quota"},
		{"resize shrinks", OpVolumeResize, 100, VolumeSpec{VolID: "local-lvm:vm-100-disk-1", SizeGiB: 5}, ErrInvalid, "size_gib"},
		{"another guest's volume", OpVolumeDetach, 100, VolumeSpec{VolID: "local-lvm:vm-101-disk-0"}, ErrConflict, "volid"},
		{"unknown volume", OpVolumeDelete, 100, VolumeSpec{VolID: "local-lvm:vm-100-disk-9"}, ErrNotFound, "volid"},
		{"unknown guest", OpVolumeCreate, 999, VolumeSpec{Storage: "local-lvm", SizeGiB: 1}, ErrNotFound, "vmid"},
		{"move to where it is", OpVolumeMove, 100, VolumeSpec{VolID: "local-lvm:vm-100-disk-1", Storage: "local-lvm"}, ErrInvalid, "storage"},
		{"bad slot", OpVolumeCreate, 100, VolumeSpec{Storage: "local-lvm", SizeGiB: 1, Slot: "scsi99"}, ErrInvalid, "slot"},
		{"bad volid", OpVolumeResize, 100, VolumeSpec{VolID: "nope", SizeGiB: 1}, ErrInvalid, "volid"},
		{"attach without slot", OpVolumeAttach, 100, VolumeSpec{VolID: "local-lvm:vm-100-disk-1"}, ErrInvalid, "slot"},
		{"zero size", OpVolumeCreate, 100, VolumeSpec{Storage: "local-lvm"}, ErrInvalid, "size_gib"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f := storageFSM(t)
			v := c.v
			r := applyCmd(t, f, 10, &OperationCreateRequest{Op: Operation{ID: "op", Kind: c.kind, VMID: c.vmid, Volume: &v}})
			if c.want == nil {
				if r.Err != nil {
					t.Fatal(r.Err)
				}
				return
			}
			requireErrorIs(t, r.Err, c.want)
			var fe *FieldError
			if !errors.As(r.Err, &fe) || fe.Field != c.field {
				t.Fatalf("error %v names field %v, want %q", r.Err, fe, c.field)
			}
			if got := usage(t, f, "acme").Amounts[quota.DiskGiB]; got != 25 {
				t.Fatalf("a refused operation changed usage to %d", got)
			}
		})
	}
}

// TestFSM_VolumeReservation shows a create holding its disk against the
// quota while it runs, so two creates cannot together pass it, and
// letting go when it ends.
func TestFSM_VolumeReservation(t *testing.T) {
	f := storageFSM(t)
	create := func(id string, gib int) *OperationCreateRequest {
		return &OperationCreateRequest{Op: Operation{ID: id, Kind: OpVolumeCreate, VMID: 100, Volume: &VolumeSpec{Storage: "local-lvm", SizeGiB: gib}}}
	}
	applyOK(t, f, 10, create("a", 10))
	// vm 100 has an operation in progress; vm 101's create sees a's
	// reservation.
	c := create("b", 10)
	c.Op.VMID = 101
	requireErrorIs(t, applyCmd(t, f, 11, c).Err, quota.ErrExceeded)
	applyOK(t, f, 12, &OperationUpdateRequest{ID: "a", Status: str(OpFailed), Error: &OpError{Code: "failed", Message: "x"}})
	applyOK(t, f, 13, c)
	if got := usage(t, f, "acme").Amounts[quota.DiskGiB]; got != 35 {
		t.Fatalf("usage %d, want 35", got)
	}
}

// TestFSM_PolicyTickExactlyOnce shows the tick as the guard that makes
// a slot run at most once: a slot not newer than the last is refused, as
// is a run while another of the policy is in progress, and the policy's
// active run clears when its operation ends.
func TestFSM_PolicyTickExactlyOnce(t *testing.T) {
	f := storageFSM(t)
	pol := StoragePolicy{ID: "nightly", Kind: PolicyKindBackup, Schedule: "02:00", Selector: storage.Selector{Tenant: "acme"},
		Keep: storage.Keep{Daily: 7}, Storage: "local", Mode: "snapshot"}
	applyOK(t, f, 10, &StoragePolicyPutRequest{WriteMeta: WriteMeta{Now: 5}, Policy: pol, Create: true})
	requireErrorIs(t, applyCmd(t, f, 11, &StoragePolicyPutRequest{Policy: pol, Create: true}).Err, ErrConflict)

	tick := func(slot Timestamp, run string) *PolicyTickRequest {
		r := &PolicyTickRequest{WriteMeta: WriteMeta{Now: int64(slot)}, Policy: "nightly", Slot: slot}
		if run != "" {
			r.Run = &Operation{ID: run}
			r.Items = []RunItem{{VMID: 100, Node: "pve1", Kind: "qemu"}, {VMID: 101, Node: "pve1", Kind: "qemu"}}
		}
		return r
	}
	res := applyOK(t, f, 12, tick(100, "run-1"))
	op := res.Value.(*Operation)
	if op.Kind != OpBackupRun || op.Policy != "nightly" || op.Slot != 100 || op.Stats.Total != 2 || op.Status != OpPending {
		t.Fatalf("run %+v", op)
	}
	// The same slot again (a second leader), and the next slot while the
	// run is in progress, are refused.
	requireErrorIs(t, applyCmd(t, f, 13, tick(100, "run-2")).Err, ErrConflict)
	requireErrorIs(t, applyCmd(t, f, 14, tick(200, "run-2")).Err, ErrConflict)
	requireErrorIs(t, applyCmd(t, f, 15, &StoragePolicyDeleteRequest{ID: "nightly"}).Err, ErrConflict)

	// Items move forward only; a succeeded backup item needs its backup.
	item := func(vmid int, status string) *RunItemUpdateRequest {
		return &RunItemUpdateRequest{Run: "run-1", VMID: vmid, Status: status}
	}
	applyOK(t, f, 16, item(100, ItemRunning))
	requireErrorIs(t, applyCmd(t, f, 17, item(100, ItemSucceeded)).Err, ErrInvalid)
	done := item(100, ItemSucceeded)
	done.Backup = &Backup{VolID: "local:backup/vzdump-qemu-100.vma.zst", StorageID: "pve1/local", Node: "pve1", Storage: "local", Time: 100}
	applyOK(t, f, 18, done)
	requireErrorIs(t, applyCmd(t, f, 19, item(100, ItemRunning)).Err, ErrConflict)
	requireErrorIs(t, applyCmd(t, f, 20, done).Err, ErrConflict)
	failed := item(101, ItemFailed)
	failed.Error = "guest locked"
	applyOK(t, f, 21, failed)
	_, b, _ := f.State().Backup(nil, done.Backup.VolID)
	if b == nil || b.Policy != "nightly" || b.Run != "run-1" || b.VMID != 100 {
		t.Fatalf("backup record %+v", b)
	}
	_, got, _ := f.State().Operation(nil, "run-1")
	if got.Stats.Succeeded != 1 || got.Stats.Failed != 1 {
		t.Fatalf("stats %+v", got.Stats)
	}
	_, items, _ := f.State().RunItems(nil, "run-1")
	if len(items) != 2 || items[0].VMID != 100 || items[0].Status != ItemSucceeded || items[1].Error != "guest locked" {
		t.Fatalf("items %+v", items)
	}

	// The run ends; the next slot runs, an older one never does.
	applyOK(t, f, 22, &OperationUpdateRequest{ID: "run-1", Status: str(OpFailed), Error: &OpError{Code: "failed", Message: "1 of 2"}})
	_, p, _ := f.State().StoragePolicy(nil, "nightly")
	if p.ActiveRun != "" || p.LastRun != "run-1" || p.LastSlot != 100 {
		t.Fatalf("policy after the run %+v", p)
	}
	requireErrorIs(t, applyCmd(t, f, 23, tick(50, "run-3")).Err, ErrConflict)
	// A skipped slot (found too late) counts, with the slots it covers.
	skip := tick(300, "")
	skip.Missed = 2
	applyOK(t, f, 24, skip)
	_, p, _ = f.State().StoragePolicy(nil, "nightly")
	if p.LastSlot != 300 || p.Skipped != 3 || p.ActiveRun != "" {
		t.Fatalf("policy after a skip %+v", p)
	}
	// A run of no guests is recorded as done at once.
	empty := tick(400, "run-4")
	empty.Items = nil
	if op := applyOK(t, f, 25, empty).Value.(*Operation); op.Status != OpSucceeded {
		t.Fatalf("empty run %+v", op)
	}
	// Replacing keeps the run state; the kind cannot change.
	pol.Description = "changed"
	applyOK(t, f, 26, &StoragePolicyPutRequest{Policy: pol})
	_, p, _ = f.State().StoragePolicy(nil, "nightly")
	if p.LastSlot != 400 || p.Description != "changed" || p.CreatedAt != 5 {
		t.Fatalf("replaced policy %+v", p)
	}
	pol.Kind, pol.Storage, pol.Mode = PolicyKindSnapshot, "", ""
	requireErrorIs(t, applyCmd(t, f, 27, &StoragePolicyPutRequest{Policy: pol}).Err, ErrConflict)
}

// TestFSM_PruneNeverRemovesProtected shows protection holding in Apply
// whatever the runner asks.
func TestFSM_PruneNeverRemovesProtected(t *testing.T) {
	f := storageFSM(t)
	pol := StoragePolicy{ID: "hourly", Kind: PolicyKindSnapshot, Schedule: "hourly", Selector: storage.Selector{VMIDs: []int{100}}, Keep: storage.Keep{Last: 1}}
	applyOK(t, f, 10, &StoragePolicyPutRequest{Policy: pol, Create: true})
	for i, slot := range []Timestamp{3600e9, 7200e9} {
		run := []string{"r1", "r2"}[i]
		idx := uint64(11 + 4*i)
		applyOK(t, f, idx, &PolicyTickRequest{Policy: "hourly", Slot: slot, Run: &Operation{ID: run}, Items: []RunItem{{VMID: 100, Node: "pve1"}}})
		applyOK(t, f, idx+1, &RunItemUpdateRequest{Run: run, VMID: 100, Status: ItemRunning, Name: storage.SnapshotName("hourly", slot.Time())})
		applyOK(t, f, idx+2, &RunItemUpdateRequest{Run: run, VMID: 100, Status: ItemSucceeded})
		applyOK(t, f, idx+3, &OperationUpdateRequest{ID: run, Status: str(OpSucceeded)})
	}
	_, snaps, _ := f.State().PolicySnapshots(nil, "hourly")
	if len(snaps) != 2 {
		t.Fatalf("snapshots %+v", snaps)
	}
	old := snaps[0].ID
	applyOK(t, f, 30, &RecordProtectRequest{Kind: PolicyKindSnapshot, ID: old, Protected: true})
	requireErrorIs(t, applyCmd(t, f, 31, &PruneRecordRequest{Run: "r2", Snapshots: []string{old}}).Err, ErrConflict)
	applyOK(t, f, 32, &RecordProtectRequest{Kind: PolicyKindSnapshot, ID: old})
	op := applyOK(t, f, 33, &PruneRecordRequest{Run: "r2", Snapshots: []string{old}}).Value.(*Operation)
	if op.Stats.Pruned != 1 {
		t.Fatalf("pruned %+v", op.Stats)
	}
	requireErrorIs(t, applyCmd(t, f, 34, &RecordProtectRequest{Kind: PolicyKindSnapshot, ID: old}).Err, ErrNotFound)
}

// TestFSM_StoragePoolsAndThresholds shows pools grouped from the
// inventory with their thresholds, state and hourly samples.
func TestFSM_StoragePoolsAndThresholds(t *testing.T) {
	f := storageFSM(t)
	_, pools, err := f.State().StoragePools(nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	if len(pools) != 2 || pools[0].ID != "pve1/local" || pools[0].State != "critical" || pools[1].State != "ok" {
		t.Fatalf("pools %+v %+v", pools[0], pools[1])
	}
	applyOK(t, f, 10, &PoolSettingsPutRequest{Settings: PoolSettings{Storage: "local-lvm", Warn: 0.1, Critical: 0.5}})
	_, pools, _ = f.State().StoragePools(nil, 0)
	if pools[1].State != "warning" || pools[1].Warn != 0.1 {
		t.Fatalf("local-lvm with thresholds %+v", pools[1])
	}
	requireErrorIs(t, applyCmd(t, f, 11, &PoolSettingsPutRequest{Settings: PoolSettings{Storage: "local", Warn: 0.9, Critical: 0.5}}).Err, ErrInvalid)

	// Usage growing 1 GiB an hour from 20 GiB reaches 100 GiB in 80 hours.
	const hour = quota.HourMillis
	for h := int64(1); h <= 3; h++ {
		applyOK(t, f, uint64(30+h), &InventorySyncRequest{Storage: []InvStorage{
			{ID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", Content: []string{"images"}, Status: "available", Used: uint64(20+h) << 30, Total: 100 << 30},
		}})
		applyOK(t, f, uint64(40+h), &MeterTickRequest{WriteMeta: WriteMeta{Now: h * hour * 1e6}})
	}
	_, pools, _ = f.State().StoragePools(nil, 3*hour)
	if d := pools[1].DaysUntilFull; d == nil || *d < 3.2 || *d > 3.4 {
		t.Fatalf("days until full %v, want about 77/24", d)
	}
}

// TestFSM_BackupProtectionSurvivesSync shows Moxxie's protection of a
// backup kept across storage syncs that list the platform's own flag, and
// either flag refusing a prune.
func TestFSM_BackupProtectionSurvivesSync(t *testing.T) {
	f := storageFSM(t)
	listed := func(platform bool) *StorageSyncRequest {
		return &StorageSyncRequest{StorageIDs: []string{"pve1/local"}, Backups: []Backup{{VolID: "local:backup/a.vma.zst", StorageID: "pve1/local",
			Node: "pve1", Storage: "local", VMID: 100, Time: 1, Policy: "nightly", Run: "r1", PlatformProtected: platform}}}
	}
	applyOK(t, f, 10, listed(false))
	applyOK(t, f, 11, &RecordProtectRequest{Kind: PolicyKindBackup, ID: "local:backup/a.vma.zst", Protected: true})
	applyOK(t, f, 12, listed(false))
	if _, b, _ := f.State().Backup(nil, "local:backup/a.vma.zst"); !b.Protected || b.PlatformProtected {
		t.Fatalf("after a sync: %+v", b)
	}
	pol := StoragePolicy{ID: "nightly", Kind: PolicyKindBackup, Schedule: "02:00", Selector: storage.Selector{All: true}, Storage: "local", Mode: "stop"}
	applyOK(t, f, 13, &StoragePolicyPutRequest{Policy: pol, Create: true})
	applyOK(t, f, 14, &PolicyTickRequest{Policy: "nightly", Slot: 1, Run: &Operation{ID: "r2"}, Items: []RunItem{{VMID: 100, Node: "pve1"}}})
	requireErrorIs(t, applyCmd(t, f, 15, &PruneRecordRequest{Run: "r2", Backups: []string{"local:backup/a.vma.zst"}}).Err, ErrConflict)
	applyOK(t, f, 16, &RecordProtectRequest{Kind: PolicyKindBackup, ID: "local:backup/a.vma.zst"})
	applyOK(t, f, 17, listed(true))
	requireErrorIs(t, applyCmd(t, f, 18, &PruneRecordRequest{Run: "r2", Backups: []string{"local:backup/a.vma.zst"}}).Err, ErrConflict)
	applyOK(t, f, 19, listed(false))
	applyOK(t, f, 20, &PruneRecordRequest{Run: "r2", Backups: []string{"local:backup/a.vma.zst"}})
}

// TestFSM_SnapshotQuota shows policy snapshots counted against the
// snapshots quota of their guest's tenant: a snapshot past it is refused
// before the platform is asked, a failed one gives its count back, and
// pruning or the guest going away releases what the snapshots held.
func TestFSM_SnapshotQuota(t *testing.T) {
	f := storageFSM(t)
	applyOK(t, f, 4, &TenantUpdateRequest{ID: "acme", ScopeChange: ScopeChange{Quota: quota.Limits{quota.DiskGiB: 40, quota.Snapshots: 2}, SetQuota: true}})
	pol := StoragePolicy{ID: "often", Kind: PolicyKindSnapshot, Schedule: "hourly", Selector: storage.Selector{Tenant: "acme"}, Keep: storage.Keep{Last: 5}}
	applyOK(t, f, 10, &StoragePolicyPutRequest{Policy: pol, Create: true})
	idx := uint64(10)
	next := func() uint64 { idx++; return idx }
	run := func(id string, slot Timestamp) {
		applyOK(t, f, next(), &PolicyTickRequest{Policy: "often", Slot: slot, Run: &Operation{ID: id},
			Items: []RunItem{{VMID: 100, Node: "pve1"}, {VMID: 101, Node: "pve1"}}})
	}
	start := func(id string, vmid int, slot Timestamp) *Result {
		return applyCmd(t, f, next(), &RunItemUpdateRequest{Run: id, VMID: vmid, Status: ItemRunning, Name: storage.SnapshotName("often", slot.Time())})
	}
	snapshots := func() int64 { return usage(t, f, "acme").Amounts[quota.Snapshots] }

	run("r1", 3600e9)
	if r := start("r1", 100, 3600e9); r.Err != nil {
		t.Fatal(r.Err)
	}
	if r := start("r1", 101, 3600e9); r.Err != nil {
		t.Fatal(r.Err)
	}
	applyOK(t, f, next(), &RunItemUpdateRequest{Run: "r1", VMID: 100, Status: ItemSucceeded})
	applyOK(t, f, next(), &RunItemUpdateRequest{Run: "r1", VMID: 101, Status: ItemFailed, Error: "locked"})
	if snapshots() != 1 {
		t.Fatalf("snapshots %d after one success and one failure, want 1", snapshots())
	}
	applyOK(t, f, next(), &OperationUpdateRequest{ID: "r1", Status: str(OpFailed), Error: &OpError{Code: "failed", Message: "x"}})

	run("r2", 7200e9)
	if r := start("r2", 100, 7200e9); r.Err != nil {
		t.Fatal(r.Err)
	}
	applyOK(t, f, next(), &RunItemUpdateRequest{Run: "r2", VMID: 100, Status: ItemSucceeded})
	r := start("r2", 101, 7200e9)
	requireErrorIs(t, r.Err, quota.ErrExceeded)
	var fe *FieldError
	if !errors.As(r.Err, &fe) || fe.Field != "quota" {
		t.Fatalf("refusal %v does not name the quota", r.Err)
	}
	if snapshots() != 2 {
		t.Fatalf("snapshots %d, want 2", snapshots())
	}
	// Retention frees one; the guest going away frees the rest.
	applyOK(t, f, next(), &PruneRecordRequest{Run: "r2", Snapshots: []string{SnapshotID(100, storage.SnapshotName("often", Timestamp(3600e9).Time()))}})
	if snapshots() != 1 {
		t.Fatalf("snapshots %d after pruning one, want 1", snapshots())
	}
	applyOK(t, f, next(), &InventorySyncRequest{GoneGuests: []int{100}})
	if snapshots() != 0 {
		t.Fatalf("snapshots %d after the guest went away, want 0", snapshots())
	}
	if _, left, _ := f.State().PolicySnapshots(nil, "often"); len(left) != 0 {
		t.Fatalf("snapshots of a gone guest are still tracked: %+v", left)
	}
}

// TestFSM_PolicyTimezone: a policy keeps its time zone; a zone name of
// the wrong form is refused, naming the field, and nothing is written.
// Apply checks only the form: loading zone data is for the leader.
func TestFSM_PolicyTimezone(t *testing.T) {
	f := storageFSM(t)
	pol := StoragePolicy{ID: "nightly", Kind: PolicyKindSnapshot, Schedule: "02:00", Timezone: "Europe/Berlin", Selector: storage.Selector{All: true}}
	applyOK(t, f, 10, &StoragePolicyPutRequest{Policy: pol, Create: true})
	if _, p, _ := f.State().StoragePolicy(nil, "nightly"); p == nil || p.Timezone != "Europe/Berlin" {
		t.Fatalf("stored %+v", p)
	}
	for i, zone := range []string{"../etc/localtime", "Local", "Europe//Berlin"} {
		bad := pol
		bad.ID, bad.Timezone = "bad", zone
		requireFieldError(t, applyCmd(t, f, uint64(11+i), &StoragePolicyPutRequest{Policy: bad, Create: true}).Err, "timezone")
		if _, p, _ := f.State().StoragePolicy(nil, "bad"); p != nil {
			t.Fatalf("zone %q: stored %+v", zone, p)
		}
	}
}
