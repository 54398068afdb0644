package fsm

import (
	"bytes"
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/go-memdb"
	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
	"github.com/moxxie/moxxie/sdn"
	"github.com/moxxie/moxxie/storage"
)

// logEntry wraps data as a raft command entry at index.
func logEntry(index uint64, data []byte) *raft.Log {
	return &raft.Log{Type: raft.LogCommand, Index: index, Data: data}
}

// mustEncode encodes cmd or fails the test.
func mustEncode(t testing.TB, cmd Command) []byte {
	t.Helper()
	buf, err := Encode(cmd)
	if err != nil {
		t.Fatalf("Encode(%T): %v", cmd, err)
	}
	return buf
}

// applyCmd encodes cmd, applies it at index and returns its single Result.
func applyCmd(t testing.TB, f *FSM, index uint64, cmd Command) *Result {
	t.Helper()
	resp := f.Apply(logEntry(index, mustEncode(t, cmd)))
	r, ok := resp.(*Result)
	if !ok {
		t.Fatalf("Apply(%T) at %d returned %T, want *Result", cmd, index, resp)
	}
	return r
}

// applyOK is applyCmd that fails the test if the command was rejected.
func applyOK(t testing.TB, f *FSM, index uint64, cmd Command) *Result {
	t.Helper()
	r := applyCmd(t, f, index, cmd)
	if r.Err != nil {
		t.Fatalf("Apply(%T) at %d: %v", cmd, index, r.Err)
	}
	return r
}

// tableRows counts the objects in f's table.
func tableRows(t testing.TB, f *FSM, table string) int {
	t.Helper()
	it, err := f.State().db.Txn(false).Get(table, "id")
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for raw := it.Next(); raw != nil; raw = it.Next() {
		n++
	}
	return n
}

// applyBatch applies cmds as one BatchRequest at index.
func applyBatch(t testing.TB, f *FSM, index uint64, entries ...[]byte) []*Result {
	t.Helper()
	resp := f.Apply(logEntry(index, mustEncode(t, &BatchRequest{Entries: entries})))
	rs, ok := resp.([]*Result)
	if !ok {
		t.Fatalf("Apply(batch) at %d returned %T, want []*Result", index, resp)
	}
	return rs
}

// dump returns the FSM's current state in snapshot format.
func dump(t testing.TB, f *FSM) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := f.State().Dump(&buf); err != nil {
		t.Fatalf("Dump: %v", err)
	}
	return buf.Bytes()
}

// requireSameDump fails unless a and b hold byte-identical state.
func requireSameDump(t testing.TB, a, b *FSM) {
	t.Helper()
	da, db := dump(t, a), dump(t, b)
	if !bytes.Equal(da, db) {
		t.Fatalf("dumps differ: %d bytes vs %d bytes\n%q\n%q", len(da), len(db), da, db)
	}
}

// memSink is an in-memory raft.SnapshotSink.
type memSink struct {
	bytes.Buffer
	failWrite bool
	closed    bool
	cancelled bool
}

var _ raft.SnapshotSink = (*memSink)(nil)

var errSinkWrite = errors.New("sink: write failed")

func (s *memSink) Write(p []byte) (int, error) {
	if s.failWrite {
		return 0, errSinkWrite
	}
	return s.Buffer.Write(p)
}

func (s *memSink) ID() string { return "mem" }

func (s *memSink) Close() error {
	s.closed = true
	return nil
}

func (s *memSink) Cancel() error {
	s.cancelled = true
	return nil
}

// persist takes a raft snapshot of f and returns what Persist wrote.
func persist(t testing.TB, f *FSM) []byte {
	t.Helper()
	snap, err := f.Snapshot()
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	defer snap.Release()
	sink := &memSink{}
	if err := snap.Persist(sink); err != nil {
		t.Fatalf("Persist: %v", err)
	}
	if !sink.closed || sink.cancelled {
		t.Fatalf("Persist: sink closed=%v cancelled=%v, want closed only", sink.closed, sink.cancelled)
	}
	return sink.Bytes()
}

// readCloser wraps b as the io.ReadCloser Restore takes and records Close.
type readCloser struct {
	io.Reader
	closed bool
}

func (r *readCloser) Close() error {
	r.closed = true
	return nil
}

func restoreBytes(f *FSM, b []byte) error {
	return f.Restore(&readCloser{Reader: bytes.NewReader(b)})
}

// testSnapshotRestore round-trips f through Snapshot, Persist and Restore
// into a fresh FSM, checks that both hold identical state and returns the
// restored FSM.
func testSnapshotRestore(t testing.TB, f *FSM) *FSM {
	t.Helper()
	data := persist(t, f)
	if !bytes.Equal(data, dump(t, f)) {
		t.Fatalf("Persist and Dump of the same state differ")
	}
	f2 := New()
	rc := &readCloser{Reader: bytes.NewReader(data)}
	if err := f2.Restore(rc); err != nil {
		t.Fatalf("Restore: %v", err)
	}
	if !rc.closed {
		t.Fatalf("Restore did not close its reader")
	}
	requireSameDump(t, f, f2)
	return f2
}

// requireErrorIs fails unless err matches want (nil want: no error).
func requireErrorIs(t testing.TB, err, want error) {
	t.Helper()
	switch {
	case want == nil && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != nil && !errors.Is(err, want):
		t.Fatalf("error = %v, want %v", err, want)
	}
}

// fired reports whether any channel of ws is closed, without blocking.
func fired(ws memdb.WatchSet) bool {
	for ch := range ws {
		select {
		case <-ch:
			return true
		default:
		}
	}
	return false
}

func isClosed(ch <-chan struct{}) bool {
	select {
	case <-ch:
		return true
	default:
		return false
	}
}

func u64(v uint64) *uint64 { return &v }

// sampleCommands returns one command of every registered type with every
// field populated (see requirePopulated).
func sampleCommands(t testing.TB) map[MessageType]Command {
	t.Helper()
	meta := func(n int64) WriteMeta {
		return WriteMeta{Now: n, Actor: "acc-1", RequestID: "req-1", IdempotencyKey: "idem-1", RequestHash: "hash-1", Audit: &AuditInfo{
			Role: "operator", Tenant: "acme", Source: "192.0.2.1:4000", Action: "POST /v1/vms", Object: "/v1/vms",
		}, TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"}
	}
	tok := func(id string) Token {
		return Token{
			AccessorID: id, SecretHash: "sh-" + id, Description: "desc " + id, Role: "admin",
			Tenant: "t1", CreatedAt: 11, ExpiresAt: 22, CreateIndex: 33,
		}
	}
	inner := &SettingUpsertRequest{WriteMeta: meta(2), Key: "inner", Value: "v", CASIndex: u64(0)}
	return map[MessageType]Command{
		SettingUpsertType:   &SettingUpsertRequest{WriteMeta: meta(1), Key: "k", Value: "v", CASIndex: u64(7)},
		SettingDeleteType:   &SettingDeleteRequest{WriteMeta: meta(2), Key: "k"},
		ACLBootstrapType:    &ACLBootstrapRequest{WriteMeta: meta(3), Token: tok("boot")},
		TokenCreateType:     &TokenCreateRequest{WriteMeta: meta(4), Token: tok("tok")},
		TokenRevokeType:     &TokenRevokeRequest{WriteMeta: meta(5), AccessorID: "tok"},
		IdempotencyReapType: &IdempotencyReapRequest{WriteMeta: meta(6), Before: 99},
		BatchType:           &BatchRequest{WriteMeta: meta(7), Entries: [][]byte{mustEncode(t, inner), {byte(SettingDeleteType), 0x80}}},
		VRFCreateType:       &VRFCreateRequest{WriteMeta: meta(8), VRF: VRF{ID: "red", Description: "d", Tenant: "t", CreateIndex: 1, ModifyIndex: 2, CreatedAt: 3}},
		VRFDeleteType:       &VRFDeleteRequest{WriteMeta: meta(9), ID: "red"},
		PrefixCreateType:    &PrefixCreateRequest{WriteMeta: meta(10), Prefix: samplePrefix(), GatewayID: "gw"},
		PrefixUpdateType:    &PrefixUpdateRequest{WriteMeta: meta(11), ID: "p", Tenant: str("t"), Project: str("p"), Description: str("d"), ProjectRules: true, IsPool: new(true)},
		PrefixDeleteType:    &PrefixDeleteRequest{WriteMeta: meta(12), ID: "p", Reparent: true, KeepQuarantine: true, WholeRule: true},
		PrefixAllocateType:  &PrefixAllocateRequest{WriteMeta: meta(13), ParentID: "p", Bits: 26, Child: samplePrefix(), MappedRule: true, MappedContainerRule: true},
		IPRangeCreateType: &IPRangeCreateRequest{WriteMeta: meta(14), DrainRule: true, Range: IPRange{
			ID: "r", PrefixID: "p", Start: "10.0.0.10", End: "10.0.0.20", Description: "dhcp", CreateIndex: 1, CreatedAt: 2,
		}},
		IPRangeDeleteType: &IPRangeDeleteRequest{WriteMeta: meta(15), ID: "r"},
		AddressAllocateType: &AddressAllocateRequest{
			WriteMeta: meta(16), PrefixID: "p", VRF: "red", Address: "10.0.0.5", Fallback: true, Force: true, Count: 1,
			IDs: []string{"a"}, Status: "active", DNSName: "web.moxxie.test", Tenant: "t", Project: "p", Owner: "vm:101/net0", Description: "d",
			NameRules: true, Confine: "t", ReverseRule: true,
		},
		AddressUpdateType: &AddressUpdateRequest{
			WriteMeta: meta(17), ID: "a", Status: str("reserved"), DNSName: str("db.moxxie.test"), Tenant: str("t"), Project: str("p"), Owner: str("ct:105"), Description: str("d"),
			NameRules: true, ProjectRules: true, Confine: "t", ReverseRule: true,
		},
		AddressReleaseType: &AddressReleaseRequest{WriteMeta: meta(18), ID: "a", Force: true, Confine: "t"},
		PoolCreateType: &PoolCreateRequest{WriteMeta: meta(19), Pool: Pool{
			ID: "g", Kind: PoolVNI, Name: "prod", Ranges: []ipam.IDRange{{First: 100, Last: 199}}, Tenant: "t", Description: "d",
			CreateIndex: 1, ModifyIndex: 2, CreatedAt: 3,
		}, Exclusive: true, TagRule: true},
		PoolDeleteType: &PoolDeleteRequest{WriteMeta: meta(20), Kind: PoolVLAN, ID: "g", ZoneRule: true},
		IDAllocateType: &IDAllocateRequest{WriteMeta: meta(21), Kind: PoolVLAN, PoolID: "g", Number: 100, Fallback: true, UniqueName: true, Allocation: IDAllocation{
			ID: "v", Kind: PoolVLAN, PoolID: "g", Number: 100, Name: "n", Tenant: "t", Project: "p", Owner: "vm:1", Description: "d", CreateIndex: 1, CreatedAt: 2, ModifyIndex: 3, UpdatedAt: 4,
		}, Confine: "t"},
		IDReleaseType:       &IDReleaseRequest{WriteMeta: meta(22), Kind: PoolVLAN, ID: "v", Confine: "t"},
		ZoneCreateType:      &ZoneCreateRequest{WriteMeta: meta(23), Zone: Zone{ID: "moxxie.test", Tenant: "t", TTL: 30, Description: "d", CreateIndex: 1, CreatedAt: 2, ModifyIndex: 3, UpdatedAt: 4}, NameRules: true},
		ZoneDeleteType:      &ZoneDeleteRequest{WriteMeta: meta(24), ID: "moxxie.test"},
		QuarantineDrainType: &QuarantineDrainRequest{WriteMeta: meta(25)},
		InventorySyncType: &InventorySyncRequest{
			WriteMeta: meta(26), Nodes: []InvNode{sampleInvNode()}, Guests: []InvGuest{sampleInvGuest()},
			Storage: []InvStorage{sampleInvStorage()}, GoneNodes: []string{"pve9"}, GoneGuests: []int{109}, GoneStorage: []string{"pve9/local"},
		},
		InventoryStaleType:  &InventoryStaleRequest{WriteMeta: meta(27), Error: "connection refused"},
		OperationCreateType: &OperationCreateRequest{WriteMeta: meta(28), Op: sampleOperation()},
		OperationUpdateType: &OperationUpdateRequest{
			WriteMeta: meta(29), ID: "op-1", Status: str(OpFailed), Step: str("cloning"), Progress: str("50%"), Task: str("UPID:x"), TaskNode: str("pve1"),
			VMID: intp(101), Node: str("pve1"), Addresses: []OpAddress{{NIC: 1, ID: "a", Address: "10.0.0.5", PrefixID: "p", DNSName: "web.moxxie.test"}},
			Error: &OpError{Code: "task_failed", Message: "clone failed", Field: "template"}, RolledBack: true,
			VolumeSlot: str("scsi1"), VolumeResult: str("local-lvm:vm-101-disk-1"),
		},
		AuditRecordType: &AuditRecordRequest{WriteMeta: meta(30), Result: "unauthorized"},
		AuditCheckpointType: &AuditCheckpointRequest{WriteMeta: meta(31), Checkpoint: audit.Checkpoint{
			Seq: 4, Hash: strings.Repeat("ab", 32), Time: 5, KeyID: strings.Repeat("cd", 32), Sig: "c2ln",
		}},
		AuditTruncateType: &AuditTruncateRequest{WriteMeta: meta(32), Before: 5},
		SecretPutType: &SecretPutRequest{WriteMeta: meta(33), Secret: Secret{
			Name: "pve-token", Ciphertext: bytes.Repeat([]byte{1}, 32), Nonce: bytes.Repeat([]byte{2}, 12), DEKID: "dek-1", Version: 1,
			Description: "d", CreatedAt: 1, UpdatedAt: 2, CreateIndex: 3, ModifyIndex: 4,
		}, IfVersion: 1, Reencrypt: true},
		SecretDeleteType: &SecretDeleteRequest{WriteMeta: meta(34), Name: "pve-token"},
		SecretKeyWrapType: &SecretKeyWrapRequest{WriteMeta: meta(35), Key: SecretKey{
			ID: "dek-1", KEKID: "kek-2", Wrapped: bytes.Repeat([]byte{3}, 61), Seq: 1, CreatedAt: 1, UpdatedAt: 2, CreateIndex: 3, ModifyIndex: 4,
		}, PrevKEKID: "kek-1"},
		TenantCreateType: &TenantCreateRequest{WriteMeta: meta(36), Tenant: Tenant{
			ID: "acme", Description: "d", Quota: quota.Limits{quota.Guests: 10, quota.VCPUs: 40}, CreateIndex: 1, ModifyIndex: 2, CreatedAt: 3, UpdatedAt: 4,
		}},
		TenantUpdateType: &TenantUpdateRequest{WriteMeta: meta(37), ID: "acme", ScopeChange: ScopeChange{Description: str("d2"), Quota: quota.Limits{quota.IPv4: 5}, SetQuota: true}},
		TenantDeleteType: &TenantDeleteRequest{WriteMeta: meta(38), ID: "acme"},
		ProjectCreateType: &ProjectCreateRequest{WriteMeta: meta(39), Project: Project{
			ID: "acme/web", Tenant: "acme", Name: "web", Description: "d", Quota: quota.Limits{quota.Guests: 2}, CreateIndex: 1, ModifyIndex: 2, CreatedAt: 3, UpdatedAt: 4,
		}},
		ProjectUpdateType: &ProjectUpdateRequest{WriteMeta: meta(40), ID: "acme/web", ScopeChange: ScopeChange{Description: str("d2"), Quota: quota.Limits{quota.VCPUs: 8}, SetQuota: true}},
		ProjectDeleteType: &ProjectDeleteRequest{WriteMeta: meta(41), ID: "acme/web"},
		MeterTickType:     &MeterTickRequest{WriteMeta: meta(42)},
		RateCardPutType: &RateCardPutRequest{WriteMeta: meta(43), Card: RateCard{RateCard: quota.RateCard{
			ID: "eur-2026", Currency: "EUR", EffectiveFrom: 1_764_547_200_000, EffectiveTo: 1_767_225_600_000,
			Rates: map[quota.Meter]string{quota.VCPURunning: "0.02", quota.MemoryRunning: "0.005"},
		}, CreateIndex: 1, ModifyIndex: 2, UpdatedAt: 3}},
		RateCardDeleteType: &RateCardDeleteRequest{WriteMeta: meta(44), ID: "eur-2026"},
		CapacityPolicyPutType: &CapacityPolicyPutRequest{WriteMeta: meta(45), Policy: CapacityPolicy{
			ID: "gpu", Nodes: []string{"pve1", "pve2"}, Policy: quota.Policy{CPURatio: 4, MemoryRatio: 1.5, DiskRatio: 1, ReserveVCPUs: 2, ReserveMemoryMiB: 4096, ReserveDiskGiB: 50},
			CreateIndex: 1, ModifyIndex: 2, UpdatedAt: 3,
		}},
		CapacityPolicyDeleteType: &CapacityPolicyDeleteRequest{WriteMeta: meta(46), ID: "gpu"},
		SDNZonePutType: &SDNZonePutRequest{WriteMeta: meta(47), Zone: sdn.Zone{
			ID: "z1", Type: sdn.ZoneVXLAN, MTU: 1450, Nodes: []string{"pve1", "pve2"}, Pool: "vnis", Port: 4790,
		}, Create: true, TagRules: true},
		SDNZoneDeleteType: &SDNZoneDeleteRequest{WriteMeta: meta(48), ID: "z1"},
		SDNVnetPutType: &SDNVnetPutRequest{WriteMeta: meta(49), Vnet: sdn.Vnet{
			ID: "v1", Zone: "z1", Tag: 100, Tenant: "acme", Alias: "web",
		}, Create: true, AllocationID: "alloc-1", TagRules: true},
		SDNVnetDeleteType: &SDNVnetDeleteRequest{WriteMeta: meta(50), ID: "v1"},
		SDNSubnetPutType: &SDNSubnetPutRequest{WriteMeta: meta(51), Subnet: sdn.Subnet{
			ID: "s1", Vnet: "v1", PrefixID: "p", CIDR: "10.0.0.0/24", Gateway: "10.0.0.1", SNAT: true,
		}, Create: true},
		SDNSubnetDeleteType: &SDNSubnetDeleteRequest{WriteMeta: meta(52), ID: "s1"},
		SDNAllowPutType: &SDNAllowPutRequest{WriteMeta: meta(53), Allow: sdn.Allow{
			ID: "a1", From: "tenant:acme", To: "vnet:v2", Description: "d",
		}, Create: true},
		SDNAllowDeleteType: &SDNAllowDeleteRequest{WriteMeta: meta(54), ID: "a1"},
		SDNHostPutType: &SDNHostPutRequest{WriteMeta: meta(55), Host: sdn.Host{
			Name: "pve1", Address: "192.0.2.11", Uplink: "eno1", MTU: 9000, Management: "vmbr0",
		}},
		SDNHostDeleteType: &SDNHostDeleteRequest{WriteMeta: meta(56), Name: "pve1"},
		SDNApplyType:      &SDNApplyRequest{WriteMeta: meta(57), RolloutID: "r-1", Deadline: 99},
		SDNReportType: &SDNReportRequest{WriteMeta: meta(58), Host: "pve1", Version: 3, State: SDNStateFailed, Error: "boom",
			Drift: []string{"v1: mtu 1500, want 1450"}, Actions: 2},
		SDNRolloutAbortType:     &SDNRolloutAbortRequest{WriteMeta: meta(59), RolloutID: "r-1", Reason: "deadline passed"},
		StoragePolicyPutType:    &StoragePolicyPutRequest{WriteMeta: meta(60), Policy: sampleStoragePolicy(), Create: true},
		StoragePolicyDeleteType: &StoragePolicyDeleteRequest{WriteMeta: meta(61), ID: "nightly"},
		PolicyTickType: &PolicyTickRequest{WriteMeta: meta(62), Policy: "nightly", Slot: 7, Missed: 2, Run: ptr(sampleOperation()),
			Items: []RunItem{sampleRunItem()}},
		RunItemUpdateType: &RunItemUpdateRequest{WriteMeta: meta(63), Run: "op-1", VMID: 101, Status: ItemFailed, Name: "n", Task: "UPID:x",
			TaskNode: "pve1", Error: "boom", Backup: ptr(sampleBackup())},
		PruneRecordType:   &PruneRecordRequest{WriteMeta: meta(64), Run: "op-1", Snapshots: []string{"101/mx-a"}, Backups: []string{"b:backup/x"}},
		RecordProtectType: &RecordProtectRequest{WriteMeta: meta(65), Kind: PolicyKindBackup, ID: "b:backup/x", Protected: true},
		StorageSyncType: &StorageSyncRequest{WriteMeta: meta(66), StorageIDs: []string{"pve1/local"}, Backups: []Backup{sampleBackup()},
			Volumes: []Volume{sampleVolume()}},
		PoolSettingsPutType: &PoolSettingsPutRequest{WriteMeta: meta(67), Settings: PoolSettings{Storage: "local", Warn: 0.7, Critical: 0.8,
			UpdatedAt: 1, ModifyIndex: 2}},
		DRPlanPutType:    &DRPlanPutRequest{WriteMeta: meta(68), Plan: sampleDRPlan(), Create: true, LocalSite: "east"},
		DRPlanDeleteType: &DRPlanDeleteRequest{WriteMeta: meta(69), ID: "web"},
		DRReplicaSyncType: &DRReplicaSyncRequest{WriteMeta: meta(70), Source: "east", LocalSite: "west", Plans: []DRPlan{sampleDRPlan()},
			ConflictIDs: []string{"cf-1"}},
		DRRunStartType: &DRRunStartRequest{WriteMeta: meta(71), Plan: "web", Kind: OpDRDrill, Trigger: DRTriggerManual, Keep: true,
			Run: sampleOperation(), Items: []DRItem{sampleDRItem()}},
		DRItemUpdateType: &DRItemUpdateRequest{WriteMeta: meta(72), Run: "op-1", Order: 1, VMID: 101, Step: DRStepFailed, TargetVMID: 2101,
			TargetNode: "pve2", Task: "UPID:x", TaskNode: "pve2", Address: "10.0.0.9", Backup: "pbs:backup/vm/2101/y", Error: "restore failed",
			Network: map[string]string{"net0": "virtio=BC:24:11:00:00:01,bridge=vmbr0,tag=10", "ipconfig0": "ip=10.0.10.21/24,gw=10.0.10.1"}},
		DRFenceType: &DRFenceRequest{WriteMeta: meta(73), Plan: "web", Fence: &DRFence{By: "west", Run: "op-1", Since: 5, Isolated: true,
			Stopped: []int{101}, Lifted: true, LiftedBy: "root"},
			Conflicts: []DRConflict{sampleDRConflict()}},
		DRFailoverEndType:  &DRFailoverEndRequest{WriteMeta: meta(74), Plan: "web"},
		RetentionPruneType: &RetentionPruneRequest{WriteMeta: meta(75), OperationsBefore: 1000, GoneBefore: 2000, Max: 5000},
		DRIsolationType:    &DRIsolationRequest{WriteMeta: meta(76), Plan: "web", Action: DRIsolationStopped, VMIDs: []int{101}, By: "sync"},
		RestoreMarkType:    &RestoreMarkRequest{WriteMeta: meta(77), SnapshotIndex: 42},
		PoolUpdateType:     &PoolUpdateRequest{WriteMeta: meta(78), Kind: PoolVNI, ID: "g", Name: str("n"), Ranges: &[]ipam.IDRange{{First: 5, Last: 9}}, Description: str("d"), Tenant: str("t")},
		IDUpdateType:       &IDUpdateRequest{WriteMeta: meta(79), Kind: PoolVLAN, ID: "v", Name: str("n"), Tenant: str("t"), Project: str("p"), Owner: str("vm:1/net0"), Description: str("d"), Confine: "t"},
		ZoneUpdateType:     &ZoneUpdateRequest{WriteMeta: meta(80), ID: "moxxie.test", TTL: ptr(uint32(300)), Description: str("d")},
		DNSSerialMarkType:  &DNSSerialMarkRequest{WriteMeta: meta(81)},
		DRRunRetryType:     &DRRunRetryRequest{WriteMeta: meta(82), Plan: "web"},
		LineageCheckType:   &LineageCheckRequest{WriteMeta: meta(83), Lineage: 9},
	}
}

// sampleDRPlan returns a DR plan with every field set.
func sampleDRPlan() DRPlan {
	return DRPlan{
		ID: "web", SourceSite: "east", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm", TargetNode: "pve2",
		Manual: true, RPO: "4h", Guests: []DRGuest{{VMID: 101, Order: 1, TargetVMID: 2101, DNSName: "web.moxxie.test"}},
		Networks: []DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p"}},
		Replica:  true, Status: []DRGuestStatus{{VMID: 101, Name: "web", Kind: "qemu", Backup: "pbs:backup/vm/101/x", BackupAt: 1, Error: "e"}},
		SourceUpdatedAt: 2, SyncedAt: 3,
		Failover:  &DRFailover{Run: "op-1", Trigger: DRTriggerAutomatic, StartedAt: 4, State: OpRunning},
		Fence:     &DRFence{By: "west", Run: "op-1", Since: 5, Isolated: true, Stopped: []int{101}, Lifted: true, LiftedBy: "root"},
		ActiveRun: "op-1", LastRun: "op-0", CreatedAt: 6, UpdatedAt: 7, CreateIndex: 8, ModifyIndex: 9,
	}
}

func sampleDRItem() DRItem {
	return DRItem{Key: "op-1/000001/0000000101", RunID: "op-1", VMID: 101, Order: 1, Name: "web", Kind: "qemu", Backup: "pbs:backup/vm/101/x",
		TargetVMID: 2101, TargetNode: "pve2", Step: DRStepRestoring, Task: "UPID:x", TaskNode: "pve2", Keep: true, Address: "10.0.0.9",
		DNSName: "web.moxxie.test", Error: "e", Started: 1, Finished: 2}
}

func sampleDRConflict() DRConflict {
	return DRConflict{ID: "cf-1", Plan: "web", Kind: DRConflictGuestRan, Site: "east", VMID: 101, Detail: "vm 101 ran at east", At: 1, Version: 2}
}

// sampleInvMeta returns inventory history with every field set.
func sampleInvMeta() InvMeta {
	return InvMeta{Gone: true, FirstSeen: 1, LastSeen: 2, GoneAt: 3, LastChanged: 4, CreateIndex: 5, ModifyIndex: 6}
}

func sampleInvNode() InvNode {
	return InvNode{Name: "pve1", Status: "online", MaxCPU: 8, MaxMem: 1 << 35, MaxDisk: 1 << 40, CPU: 0.25, Mem: 1 << 33, Disk: 1 << 38, InvMeta: sampleInvMeta()}
}

func sampleInvGuest() InvGuest {
	return InvGuest{
		VMID: 101, Kind: GuestKindVM, Node: "pve1", Name: "web", Status: "running", Template: true, Tags: []string{"tenant.acme"},
		Pool: "prod", Tenant: "acme", Project: "web", Lock: "backup", MaxCPU: 2, MaxMem: 1 << 31, MaxDisk: 1 << 34, VolumeBytes: 1 << 35, InvMeta: sampleInvMeta(),
	}
}

func sampleInvStorage() InvStorage {
	return InvStorage{
		ID: "pve1/local", Node: "pve1", Storage: "local", Type: "dir", Content: []string{"iso"}, Shared: true,
		Status: "available", Used: 1, Total: 2, InvMeta: sampleInvMeta(),
	}
}

func str(s string) *string { return &s }

func intp(v int) *int { return &v }

// sampleOperation returns an operation with every field set.
func sampleOperation() Operation {
	return Operation{
		ID: "op-1", Kind: OpVMCreate, Status: OpRunning, VMID: 101, Node: "pve1", Tenant: "acme",
		NodeAllocatable: &quota.Capacity{VCPUs: 64, MemoryMiB: 131072, DiskGiB: 2048},
		Spec: &VMSpec{
			Name: "web", TemplateVMID: 9000, Node: "pve1", Cores: 2, MemoryMiB: 2048, DiskGiB: 10, Storage: "local-lvm", Tenant: "acme", Project: "web",
			Tags: []string{"web"}, Description: "d", Start: true, SSHKeys: []string{"ssh-ed25519 AAAA"},
			NICs: []VMNIC{{Bridge: "vmbr0", VLAN: 10, PrefixID: "p", Address: "10.0.0.5", DNSName: "web.moxxie.test"}},
		},
		Step: "cloning", Progress: "50%", Task: "UPID:x", TaskNode: "pve1", Addresses: []OpAddress{{NIC: 1, ID: "a", Address: "10.0.0.5", PrefixID: "p", DNSName: "web.moxxie.test"}},
		Error: &OpError{Code: "c", Message: "m", Field: "f"}, RolledBack: true, Actor: "acc", CreatedAt: 1, UpdatedAt: 2, FinishedAt: 3,
		CreateIndex: 4, ModifyIndex: 5, RequestID: "req-1", TraceParent: "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
		Policy: "nightly", Slot: 6, Missed: 1, Stats: &RunStats{Total: 3, Succeeded: 1, Failed: 1, Pruned: 2},
		Volume: &VolumeSpec{Slot: "scsi1", VolID: "local-lvm:vm-101-disk-1", Storage: "nfs", SizeGiB: 20, DeleteSource: true, Project: "web",
			ReserveGiB: 10, Result: "nfs:101/vm-101-disk-0.qcow2", Archive: "b:backup/x"},
	}
}

func ptr[T any](v T) *T { return &v }

// sampleStoragePolicy returns a policy with every field set.
func sampleStoragePolicy() StoragePolicy {
	return StoragePolicy{
		ID: "nightly", Kind: PolicyKindBackup, Description: "d", Schedule: "mon..fri 02:00", Timezone: "Europe/Berlin",
		Selector: storage.Selector{VMIDs: []int{101}, Tenant: "acme", Tags: []string{"prod"}, All: true},
		Keep:     storage.Keep{Last: 1, Hourly: 2, Daily: 3, Weekly: 4, Monthly: 5, Yearly: 6},
		Disabled: true, RepeatMissed: true, Storage: "pbs", Mode: "stop", Compress: "zstd",
		LastSlot: 1, ActiveRun: "op-2", LastRun: "op-1", Skipped: 3, CreatedAt: 4, UpdatedAt: 5, CreateIndex: 6, ModifyIndex: 7,
	}
}

func sampleRunItem() RunItem {
	return RunItem{Key: "op-1/0000000101", RunID: "op-1", VMID: 101, Node: "pve1", Kind: "qemu", Status: ItemRunning, Name: "n",
		Task: "UPID:x", TaskNode: "pve1", Error: "e", Started: 1, Finished: 2, Tenant: "acme", Project: "web"}
}

func sampleBackup() Backup {
	return Backup{VolID: "b:backup/x", StorageID: "b", Node: "pve1", Storage: "b", VMID: 101, Kind: "qemu", Time: 1, Size: 2,
		Format: "vma.zst", Notes: "n", Policy: "nightly", Run: "op-1", Protected: true, PlatformProtected: true, Pending: true, ModifyIndex: 3}
}

func sampleVolume() Volume {
	return Volume{VolID: "local-lvm:vm-101-disk-0", StorageID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", VMID: 101,
		Size: 1 << 30, Format: "raw", Content: "images", ModifyIndex: 1}
}

// samplePrefix returns a prefix with every field set.
func samplePrefix() Prefix {
	return Prefix{
		ID: "p", Prefix: "10.0.0.0/24", VRF: "red", Status: PrefixActive, IsPool: true, ParentID: "c",
		Tenant: "t", Project: "p", Gateway: "10.0.0.1", Description: "d", CreateIndex: 1, ModifyIndex: 2, CreatedAt: 3, UpdatedAt: 4,
	}
}

// requirePopulated fails if any field reachable from v holds its zero
// value, so that a round-trip test cannot pass by dropping a field.
func requirePopulated(t testing.TB, name string, v reflect.Value) {
	t.Helper()
	switch v.Kind() {
	case reflect.Pointer, reflect.Interface:
		if v.IsNil() {
			t.Errorf("%s is nil", name)
			return
		}
		requirePopulated(t, name, v.Elem())
	case reflect.Struct:
		for i := 0; i < v.NumField(); i++ {
			if !v.Type().Field(i).IsExported() {
				continue // never encoded: state of one server's Apply
			}
			requirePopulated(t, name+"."+v.Type().Field(i).Name, v.Field(i))
		}
	case reflect.Slice:
		if v.Len() == 0 {
			t.Errorf("%s is empty", name)
		}
	default:
		if v.IsZero() {
			t.Errorf("%s is zero", name)
		}
	}
}

// nextFreeType is the first message type number not yet registered.
const nextFreeType = DRIsolationType&^IgnoreUnknownTypeFlag + 1
