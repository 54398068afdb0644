package fsm

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/quota"
)

func applyStoragePolicyPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*StoragePolicyPutRequest)
	p := req.Policy
	now := Timestamp(req.Now)
	p.Selector.VMIDs = slices.Sorted(slices.Values(p.Selector.VMIDs))
	p.Selector.Tags = slices.Sorted(slices.Values(p.Selector.Tags))
	raw, err := txn.First(tableStoragePolicies, "id", p.ID)
	if err != nil {
		return nil, err
	}
	switch {
	case raw != nil && req.Create:
		return nil, fieldErrf("id", ErrConflict, "policy %s already exists", p.ID)
	case raw == nil && !req.Create:
		return nil, notFound("policy", p.ID)
	case raw != nil:
		old := raw.(*StoragePolicy)
		if old.Kind != p.Kind {
			return nil, fieldErrf("kind", ErrConflict, "policy %s is a %s policy; its kind cannot change", p.ID, old.Kind)
		}
		p.LastSlot, p.ActiveRun, p.LastRun, p.Skipped = old.LastSlot, old.ActiveRun, old.LastRun, old.Skipped
		p.CreatedAt, p.CreateIndex = old.CreatedAt, old.CreateIndex
	default:
		p.LastSlot, p.ActiveRun, p.LastRun, p.Skipped = 0, "", "", 0
		p.CreatedAt, p.CreateIndex = now, index
	}
	if p.Selector.Tenant != "" {
		if t, err := txn.First(tableTenants, "id", p.Selector.Tenant); err != nil {
			return nil, err
		} else if t == nil {
			return nil, fieldErrf("selector.tenant", ErrNotFound, "tenant %s does not exist", p.Selector.Tenant)
		}
	}
	p.UpdatedAt, p.ModifyIndex = now, index
	if err := insert(txn, tableStoragePolicies, index, &p); err != nil {
		return nil, err
	}
	return &p, nil
}

func applyStoragePolicyDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*StoragePolicyDeleteRequest)
	p, err := lookup[StoragePolicy](txn, tableStoragePolicies, "policy", req.ID)
	if err != nil {
		return nil, err
	}
	if p.ActiveRun != "" {
		return nil, fieldErrf("id", ErrConflict, "policy %s has run %s in progress", p.ID, p.ActiveRun)
	}
	return p, remove(txn, tableStoragePolicies, index, p)
}

func applyPolicyTick(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PolicyTickRequest)
	old, err := lookup[StoragePolicy](txn, tableStoragePolicies, "policy", req.Policy)
	if err != nil {
		return nil, err
	}
	if req.Slot <= old.LastSlot {
		return nil, fieldErrf("slot", ErrConflict, "slot %s of policy %s is handled already", req.Slot.Time().UTC().Format("2006-01-02T15:04:05Z"), old.ID)
	}
	p := *old
	now := Timestamp(req.Now)
	p.LastSlot, p.ModifyIndex = req.Slot, index
	p.Skipped += req.Missed
	var out any = &p
	if req.Run == nil {
		p.Skipped++
	} else {
		if p.ActiveRun != "" {
			return nil, fieldErrf("policy", ErrConflict, "policy %s has run %s in progress", p.ID, p.ActiveRun)
		}
		if raw, err := txn.First(tableOperations, "id", req.Run.ID); err != nil {
			return nil, err
		} else if raw != nil {
			return nil, fieldErrf("id", ErrConflict, "operation %s already exists", req.Run.ID)
		}
		op := *req.Run
		op.Kind = OpSnapshotRun
		if p.Kind == PolicyKindBackup {
			op.Kind = OpBackupRun
		}
		op.Policy, op.Slot, op.Missed = p.ID, req.Slot, req.Missed
		op.Status, op.Actor = OpPending, req.Actor
		op.VMID, op.Node, op.Spec, op.Volume = 0, "", nil, nil
		op.Stats = &RunStats{Total: len(req.Items)}
		op.CreatedAt, op.UpdatedAt, op.FinishedAt = now, now, 0
		op.CreateIndex, op.ModifyIndex = index, index
		for _, it := range req.Items {
			it.RunID, it.Key = op.ID, runItemKey(op.ID, it.VMID)
			it.Status, it.Name, it.Task, it.TaskNode, it.Error, it.Started, it.Finished = ItemPending, "", "", "", "", 0, 0
			if err := insert(txn, tableRunItems, index, &it); err != nil {
				return nil, err
			}
		}
		if len(req.Items) == 0 {
			// Nothing selected: the run is recorded, and done.
			op.Status, op.Step, op.FinishedAt = OpSucceeded, "no guests selected", now
		} else {
			p.ActiveRun = op.ID
		}
		p.LastRun = op.ID
		if err := insert(txn, tableOperations, index, &op); err != nil {
			return nil, err
		}
		out = &op
	}
	if err := insert(txn, tableStoragePolicies, index, &p); err != nil {
		return nil, err
	}
	return out, nil
}

// finishRun clears the policy's active run when its run op finishes.
func finishRun(txn *memdb.Txn, index uint64, op *Operation) error {
	if !op.IsPolicyRun() {
		return nil
	}
	raw, err := txn.First(tableStoragePolicies, "id", op.Policy)
	if err != nil || raw == nil {
		return err
	}
	p := *raw.(*StoragePolicy)
	if p.ActiveRun != op.ID {
		return nil
	}
	p.ActiveRun, p.ModifyIndex = "", index
	return insert(txn, tableStoragePolicies, index, &p)
}

// itemOrder ranks item states; an update may only move forward.
var itemOrder = map[string]int{ItemPending: 0, ItemRunning: 1, ItemSucceeded: 2, ItemFailed: 2}

func applyRunItemUpdate(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*RunItemUpdateRequest)
	raw, err := txn.First(tableOperations, "id", req.Run)
	if err != nil {
		return nil, err
	}
	if raw == nil || !raw.(*Operation).IsPolicyRun() {
		return nil, notFound("run", req.Run)
	}
	op := *raw.(*Operation)
	if !op.Active() {
		return nil, fieldErrf("run", ErrConflict, "run %s has finished (%s)", op.ID, op.Status)
	}
	iraw, err := txn.First(tableRunItems, "id", runItemKey(req.Run, req.VMID))
	if err != nil {
		return nil, err
	}
	if iraw == nil {
		return nil, fieldErrf("vmid", ErrNotFound, "run %s has no guest %d", req.Run, req.VMID)
	}
	it := *iraw.(*RunItem)
	if itemOrder[req.Status] < itemOrder[it.Status] || (itemOrder[it.Status] == 2 && req.Status != it.Status) ||
		(itemOrder[it.Status] == 2 && req.Status == it.Status) {
		return nil, fieldErrf("status", ErrConflict, "guest %d of run %s is %s already", req.VMID, req.Run, it.Status)
	}
	now := Timestamp(req.Now)
	if it.Status == ItemPending {
		it.Started = now
		if op.Kind == OpSnapshotRun && req.Status == ItemRunning {
			// The snapshot counts from the moment it may exist: a run
			// that would pass the guest's tenant's snapshots quota is
			// refused here, before the platform is asked.
			if err := chargeSnapshot(txn, index, &it); err != nil {
				return nil, err
			}
		}
	}
	if it.Status == ItemRunning && req.Status == ItemFailed {
		if err := charge(txn, index, snapshotHolding(it.Tenant, it.Project).negate(), false); err != nil {
			return nil, err
		}
	}
	it.Status = req.Status
	for dst, v := range map[*string]string{&it.Name: req.Name, &it.Task: req.Task, &it.TaskNode: req.TaskNode, &it.Error: req.Error} {
		if v != "" {
			*dst = v
		}
	}
	if req.Status == ItemSucceeded || req.Status == ItemFailed {
		it.Finished = now
		st := *op.Stats
		if req.Status == ItemSucceeded {
			st.Succeeded++
		} else {
			st.Failed++
		}
		op.Stats = &st
		op.UpdatedAt, op.ModifyIndex = now, index
		if err := insert(txn, tableOperations, index, &op); err != nil {
			return nil, err
		}
	}
	if req.Status == ItemSucceeded {
		if err := recordMade(txn, index, &op, &it, req.Backup); err != nil {
			return nil, err
		}
	}
	if err := insert(txn, tableRunItems, index, &it); err != nil {
		return nil, err
	}
	return &it, nil
}

// recordMade records the snapshot or backup a succeeded item made.
func recordMade(txn *memdb.Txn, index uint64, op *Operation, it *RunItem, b *Backup) error {
	if op.Kind == OpSnapshotRun {
		if it.Name == "" {
			return fieldErrf("name", ErrInvalid, "a succeeded snapshot item needs its snapshot name")
		}
		s := &PolicySnapshot{ID: SnapshotID(it.VMID, it.Name), VMID: it.VMID, Name: it.Name, Policy: op.Policy, Run: op.ID, Time: op.Slot,
			Tenant: it.Tenant, Project: it.Project}
		return insert(txn, tablePolicySnapshots, index, s)
	}
	if b == nil || !ValidVolID(b.VolID) {
		return fieldErrf("backup", ErrInvalid, "a succeeded backup item needs the backup's volume")
	}
	nb := *b
	nb.VMID, nb.Policy, nb.Run = it.VMID, op.Policy, op.ID
	if raw, err := txn.First(tableBackups, "id", nb.VolID); err != nil {
		return err
	} else if raw != nil {
		// A sync saw it first: keep what it saw, add who made it.
		seen := *raw.(*Backup)
		seen.Policy, seen.Run, seen.ModifyIndex = op.Policy, op.ID, index
		return insert(txn, tableBackups, index, &seen)
	}
	nb.Pending, nb.ModifyIndex = true, index
	it.Name = nb.VolID
	return insert(txn, tableBackups, index, &nb)
}

func applyPruneRecord(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PruneRecordRequest)
	raw, err := txn.First(tableOperations, "id", req.Run)
	if err != nil {
		return nil, err
	}
	if raw == nil || !raw.(*Operation).IsPolicyRun() {
		return nil, notFound("run", req.Run)
	}
	op := *raw.(*Operation)
	n := 0
	for _, id := range req.Snapshots {
		s, err := lookup[PolicySnapshot](txn, tablePolicySnapshots, "snapshot", id)
		if err != nil {
			return nil, err
		}
		if s.Protected {
			return nil, fieldErrf("snapshots", ErrConflict, "snapshot %s is protected", id)
		}
		if err := removeSnapshot(txn, index, s); err != nil {
			return nil, err
		}
		n++
	}
	for _, id := range req.Backups {
		raw, err := txn.First(tableBackups, "id", id)
		if err != nil {
			return nil, err
		}
		if raw == nil {
			continue // a sync saw it gone first
		}
		if b := raw.(*Backup); b.Protected || b.PlatformProtected {
			return nil, fieldErrf("backups", ErrConflict, "backup %s is protected", id)
		}
		if err := remove(txn, tableBackups, index, raw); err != nil {
			return nil, err
		}
		n++
	}
	st := RunStats{}
	if op.Stats != nil {
		st = *op.Stats
	}
	st.Pruned += n
	op.Stats, op.ModifyIndex, op.UpdatedAt = &st, index, Timestamp(req.Now)
	if err := insert(txn, tableOperations, index, &op); err != nil {
		return nil, err
	}
	return &op, nil
}

func applyRecordProtect(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*RecordProtectRequest)
	if req.Kind == PolicyKindSnapshot {
		s, err := lookup[PolicySnapshot](txn, tablePolicySnapshots, "snapshot", req.ID)
		if err != nil {
			return nil, err
		}
		n := *s
		n.Protected = req.Protected
		return &n, insert(txn, tablePolicySnapshots, index, &n)
	}
	b, err := lookup[Backup](txn, tableBackups, "backup", req.ID)
	if err != nil {
		return nil, err
	}
	n := *b
	n.Protected, n.ModifyIndex = req.Protected, index
	return &n, insert(txn, tableBackups, index, &n)
}

func applyStorageSync(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*StorageSyncRequest)
	scanned := map[string]bool{}
	for _, id := range req.StorageIDs {
		scanned[id] = true
	}
	// Backups: drop those of scanned storages no longer listed, keep what
	// runs recorded about the rest.
	listed := map[string]*Backup{}
	for i := range req.Backups {
		b := &req.Backups[i]
		if !scanned[b.StorageID] {
			return nil, fieldErrf("backups", ErrInvalid, "backup %s is on %s, which the sync did not scan", b.VolID, b.StorageID)
		}
		listed[b.VolID] = b
	}
	for _, id := range slices.Sorted(maps.Keys(scanned)) {
		var drop []any
		it, err := txn.Get(tableBackups, "storage_id", id)
		if err != nil {
			return nil, err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if b := raw.(*Backup); listed[b.VolID] == nil {
				drop = append(drop, raw)
			}
		}
		for _, raw := range drop {
			if err := remove(txn, tableBackups, index, raw); err != nil {
				return nil, err
			}
		}
	}
	for _, volid := range slices.Sorted(maps.Keys(listed)) {
		b := *listed[volid]
		if raw, err := txn.First(tableBackups, "id", volid); err != nil {
			return nil, err
		} else if raw != nil {
			old := raw.(*Backup)
			if b.Policy == "" {
				b.Policy, b.Run = old.Policy, old.Run
			}
			b.Protected = old.Protected
			if old.SameAsListed(&b) && !old.Pending {
				continue
			}
		}
		b.Pending, b.ModifyIndex = false, index
		if err := insert(txn, tableBackups, index, &b); err != nil {
			return nil, err
		}
	}
	return nil, syncVolumes(txn, index, scanned, req.Volumes)
}

// SameAsListed reports whether b and o agree in what a listing shows.
func (b *Backup) SameAsListed(o *Backup) bool {
	return b.VolID == o.VolID && b.StorageID == o.StorageID && b.VMID == o.VMID && b.Time == o.Time && b.Size == o.Size &&
		b.Notes == o.Notes && b.PlatformProtected == o.PlatformProtected && b.Protected == o.Protected && b.Policy == o.Policy && b.Format == o.Format && b.Kind == o.Kind
}

// syncVolumes replaces the volumes of the scanned storages and recounts
// the disk of every guest whose volumes changed.
func syncVolumes(txn *memdb.Txn, index uint64, scanned map[string]bool, vols []Volume) error {
	touched := map[int]bool{}
	listed := map[string]*Volume{}
	for i := range vols {
		v := &vols[i]
		if !scanned[v.StorageID] {
			return fieldErrf("volumes", ErrInvalid, "volume %s is on %s, which the sync did not scan", v.VolID, v.StorageID)
		}
		listed[v.VolID] = v
	}
	for _, id := range slices.Sorted(maps.Keys(scanned)) {
		var drop []any
		it, err := txn.Get(tableVolumes, "storage_id", id)
		if err != nil {
			return err
		}
		for raw := it.Next(); raw != nil; raw = it.Next() {
			if v := raw.(*Volume); listed[v.VolID] == nil || listed[v.VolID].StorageID != v.StorageID {
				drop = append(drop, raw)
				touched[v.VMID] = true
			}
		}
		for _, raw := range drop {
			if err := remove(txn, tableVolumes, index, raw); err != nil {
				return err
			}
		}
	}
	for _, volid := range slices.Sorted(maps.Keys(listed)) {
		v := *listed[volid]
		if raw, err := txn.First(tableVolumes, "id", volid); err != nil {
			return err
		} else if raw != nil {
			old := raw.(*Volume)
			if old.StorageID == v.StorageID && old.VMID == v.VMID && old.Size == v.Size && old.Format == v.Format && old.Content == v.Content {
				continue
			}
			touched[old.VMID] = true
		}
		touched[v.VMID] = true
		v.ModifyIndex = index
		if err := insert(txn, tableVolumes, index, &v); err != nil {
			return err
		}
	}
	for _, vmid := range slices.Sorted(maps.Keys(touched)) {
		if err := recountGuestDisk(txn, index, vmid); err != nil {
			return err
		}
	}
	return nil
}

// recountGuestDisk sets a guest's VolumeBytes from its volumes and moves
// its usage accordingly.
func recountGuestDisk(txn *memdb.Txn, index uint64, vmid int) error {
	if vmid == 0 {
		return nil
	}
	raw, err := txn.First(tableInvGuests, "id", vmid)
	if err != nil || raw == nil {
		return err
	}
	var total uint64
	it, err := txn.Get(tableVolumes, "vmid", vmid)
	if err != nil {
		return err
	}
	for v := it.Next(); v != nil; v = it.Next() {
		total += v.(*Volume).Size
	}
	old := raw.(*InvGuest)
	if old.VolumeBytes == total {
		return nil
	}
	g := *old
	g.VolumeBytes = total
	if err := chargeChange(txn, index, old.holding(), g.holding(), false); err != nil {
		return err
	}
	return insert(txn, tableInvGuests, index, &g)
}

func applyPoolSettingsPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*PoolSettingsPutRequest)
	s := req.Settings
	s.UpdatedAt, s.ModifyIndex = Timestamp(req.Now), index
	return &s, insert(txn, tablePoolSettings, index, &s)
}

// storageRetention is how long hourly storage samples are kept, in
// milliseconds: the forecast window and then some.
const storageRetention = 100 * 24 * quota.HourMillis

func storageSampleKey(hour int64, pool string) string { return fmt.Sprintf("%016d/%s", hour, pool) }

// sampleStorage records each pool's use at hour and drops samples past
// their retention.
func sampleStorage(txn *memdb.Txn, index uint64, hour int64) error {
	pools, err := poolsOf(txn)
	if err != nil {
		return err
	}
	for _, p := range pools {
		s := &StorageSample{Key: storageSampleKey(hour, p.ID), Pool: p.ID, Hour: hour, Used: p.Used, Size: p.Total}
		if err := insert(txn, tableStorageSamples, index, s); err != nil {
			return err
		}
	}
	it, err := txn.Get(tableStorageSamples, "id")
	if err != nil {
		return err
	}
	var old []any
	for raw := it.Next(); raw != nil && raw.(*StorageSample).Hour < hour-storageRetention; raw = it.Next() {
		old = append(old, raw)
	}
	for _, raw := range old {
		if err := remove(txn, tableStorageSamples, index, raw); err != nil {
			return err
		}
	}
	return nil
}

// StoragePool is one storage as an operator sees it: a shared storage once, a
// local one once per node.
type StoragePool struct {
	// ID is the storage name for a shared storage, "<node>/<storage>" for
	// a local one.
	ID       string   `json:"id"`
	Storage  string   `json:"storage"`
	Nodes    []string `json:"nodes"`
	Type     string   `json:"type"`
	Shared   bool     `json:"shared"`
	Content  []string `json:"content,omitempty"`
	Status   string   `json:"status"`
	Used     uint64   `json:"used"`
	Total    uint64   `json:"total"`
	Fraction float64  `json:"used_fraction"`
	Warn     float64  `json:"warn"`
	Critical float64  `json:"critical"`
	// State is ok, warning or critical by the thresholds.
	State string `json:"state"`
	// DaysUntilFull is the least-squares forecast over the last 30 days
	// of hourly samples; absent when usage does not grow.
	DaysUntilFull *float64 `json:"days_until_full,omitempty"`
}

// poolsOf groups the inventory's storage into pools, sorted by ID.
func poolsOf(txn *memdb.Txn) ([]*StoragePool, error) {
	it, err := txn.Get(tableInvStorage, "id")
	if err != nil {
		return nil, err
	}
	byID := map[string]*StoragePool{}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		s := raw.(*InvStorage)
		if s.Gone {
			continue
		}
		id := s.Node + "/" + s.Storage
		if s.Shared {
			id = s.Storage
		}
		p := byID[id]
		if p == nil {
			p = &StoragePool{ID: id, Storage: s.Storage, Type: s.Type, Shared: s.Shared, Content: s.Content, Status: s.Status, Used: s.Used, Total: s.Total}
			byID[id] = p
		}
		p.Nodes = append(p.Nodes, s.Node)
		if s.Status != "available" {
			p.Status = s.Status
		}
	}
	out := make([]*StoragePool, 0, len(byID))
	for _, id := range slices.Sorted(maps.Keys(byID)) {
		p := byID[id]
		slices.Sort(p.Nodes)
		p.Warn, p.Critical = DefaultPoolWarn, DefaultPoolCritical
		if raw, err := txn.First(tablePoolSettings, "id", p.Storage); err != nil {
			return nil, err
		} else if raw != nil {
			p.Warn, p.Critical = raw.(*PoolSettings).Warn, raw.(*PoolSettings).Critical
		}
		if p.Total > 0 {
			p.Fraction = float64(p.Used) / float64(p.Total)
		}
		p.State = "ok"
		switch {
		case p.Fraction >= p.Critical:
			p.State = "critical"
		case p.Fraction >= p.Warn:
			p.State = "warning"
		}
		out = append(out, p)
	}
	return out, nil
}

// poolForecastWindow is the history the fill forecast fits, in seconds.
const poolForecastWindow = 30 * 24 * 3600

// StoragePools lists the storage pools with their thresholds and fill forecast
// at now (unix milliseconds).
func (s *Store) StoragePools(ws memdb.WatchSet, now int64) (uint64, []*StoragePool, error) {
	txn := s.db.Txn(false)
	for _, t := range []string{tableInvStorage, tablePoolSettings, tableStorageSamples} {
		it, err := txn.Get(t, "id")
		if err != nil {
			return 0, nil, err
		}
		ws.Add(it.WatchCh())
	}
	pools, err := poolsOf(txn)
	if err != nil {
		return 0, nil, err
	}
	points := map[string][]quota.Point{}
	it, err := txn.Get(tableStorageSamples, "id")
	if err != nil {
		return 0, nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		smp := raw.(*StorageSample)
		points[smp.Pool] = append(points[smp.Pool], quota.Point{Time: smp.Hour / 1000, Value: float64(smp.Used)})
	}
	for _, p := range pools {
		pts := append(points[p.ID], quota.Point{Time: now / 1000, Value: float64(p.Used)})
		if days, ok := quota.Forecast(pts, float64(p.Total), now/1000, poolForecastWindow); ok && p.Total > 0 {
			p.DaysUntilFull = &days
		}
	}
	return s.tableIndex(txn, tableInvStorage, tablePoolSettings, tableStorageSamples), pools, nil
}

// RunItems lists the items of a run by VMID.
func (s *Store) RunItems(ws memdb.WatchSet, run string) (uint64, []*RunItem, error) {
	return list[*RunItem](s, ws, tableRunItems, "id_prefix", run+"/")
}

// StoragePolicies lists the policies by ID.
func (s *Store) StoragePolicies(ws memdb.WatchSet) (uint64, []*StoragePolicy, error) {
	return list[*StoragePolicy](s, ws, tableStoragePolicies, "id")
}

// StoragePolicy returns one policy, or nil.
func (s *Store) StoragePolicy(ws memdb.WatchSet, id string) (uint64, *StoragePolicy, error) {
	return getByID[*StoragePolicy](s, ws, tableStoragePolicies, id)
}

// PolicySnapshots lists the tracked snapshots of a policy (all when
// policy is empty), by ID.
func (s *Store) PolicySnapshots(ws memdb.WatchSet, policy string) (uint64, []*PolicySnapshot, error) {
	idx, all, err := list[*PolicySnapshot](s, ws, tablePolicySnapshots, "id")
	if err != nil || policy == "" {
		return idx, all, err
	}
	out := all[:0:0]
	for _, p := range all {
		if p.Policy == policy {
			out = append(out, p)
		}
	}
	return idx, out, nil
}

// PolicySnapshot returns one tracked snapshot, or nil.
func (s *Store) PolicySnapshot(ws memdb.WatchSet, id string) (uint64, *PolicySnapshot, error) {
	return getByID[*PolicySnapshot](s, ws, tablePolicySnapshots, id)
}

// Backups lists the backups, by volume ID.
func (s *Store) Backups(ws memdb.WatchSet) (uint64, []*Backup, error) {
	return list[*Backup](s, ws, tableBackups, "id")
}

// Backup returns one backup, or nil.
func (s *Store) Backup(ws memdb.WatchSet, volid string) (uint64, *Backup, error) {
	return getByID[*Backup](s, ws, tableBackups, volid)
}

// Volumes lists the volumes, by volume ID.
func (s *Store) Volumes(ws memdb.WatchSet) (uint64, []*Volume, error) {
	return list[*Volume](s, ws, tableVolumes, "id")
}

// Volume returns one volume, or nil.
func (s *Store) Volume(ws memdb.WatchSet, volid string) (uint64, *Volume, error) {
	return getByID[*Volume](s, ws, tableVolumes, volid)
}

// admitVolume completes a volume operation from the state: the guest must
// be in the inventory, the volume (but for a create) one of its disks, and
// the disk a create or a resize adds is what the operation reserves
// against the guest's tenant and project quota.
func admitVolume(txn *memdb.Txn, op *Operation) error {
	raw, err := txn.First(tableInvGuests, "id", op.VMID)
	if err != nil {
		return err
	}
	if raw == nil || raw.(*InvGuest).Gone {
		return fieldErrf("vmid", ErrNotFound, "guest %d is not in the inventory", op.VMID)
	}
	g := raw.(*InvGuest)
	if g.Template {
		return fieldErrf("vmid", ErrInvalid, "guest %d is a template; its disks do not change", op.VMID)
	}
	v := *op.Volume
	op.Volume = &v
	op.Tenant, v.Project, v.ReserveGiB = g.Tenant, g.Project, 0
	if op.Node == "" {
		op.Node = g.Node
	}
	const gib = 1 << 30
	switch op.Kind {
	case OpVolumeCreate:
		v.ReserveGiB = int64(v.SizeGiB)
	default:
		vraw, err := txn.First(tableVolumes, "id", v.VolID)
		if err != nil {
			return err
		}
		if vraw == nil {
			return fieldErrf("volid", ErrNotFound, "volume %s is not known (is the storage synced?)", v.VolID)
		}
		vol := vraw.(*Volume)
		if vol.VMID != op.VMID {
			return fieldErrf("volid", ErrConflict, "volume %s belongs to guest %d, not %d", v.VolID, vol.VMID, op.VMID)
		}
		if op.Kind == OpVolumeResize {
			cur := int64((vol.Size + gib - 1) / gib)
			if int64(v.SizeGiB) <= cur {
				return fieldErrf("size_gib", ErrInvalid, "disks only grow: size_gib %d is not more than the current %d GiB", v.SizeGiB, cur)
			}
			v.ReserveGiB = int64(v.SizeGiB) - cur
		}
		if op.Kind == OpVolumeMove {
			if st, _, _ := strings.Cut(v.VolID, ":"); st == v.Storage {
				return fieldErrf("storage", ErrInvalid, "volume %s is on %s already", v.VolID, v.Storage)
			}
		}
	}
	return nil
}

// admitRestore checks a restore: the backup is known, and no guest in the
// inventory has the VMID it restores to.
func admitRestore(txn *memdb.Txn, op *Operation) error {
	raw, err := txn.First(tableBackups, "id", op.Volume.Archive)
	if err != nil {
		return err
	}
	if raw == nil {
		return fieldErrf("archive", ErrNotFound, "backup %s is not known (is the storage synced?)", op.Volume.Archive)
	}
	b := raw.(*Backup)
	if b.Kind == "lxc" && op.Volume.Storage == "" {
		return fieldErrf("storage", ErrInvalid, "backup %s is of a container: a container restore needs a storage", b.VolID)
	}
	if g, err := txn.First(tableInvGuests, "id", op.VMID); err != nil {
		return err
	} else if g != nil && !g.(*InvGuest).Gone {
		return fieldErrf("vmid", ErrConflict, "guest %d exists; a restore does not overwrite a guest", op.VMID)
	}
	if op.Node == "" {
		op.Node = b.Node
	}
	if op.Tenant == "" {
		if g, err := txn.First(tableInvGuests, "id", b.VMID); err != nil {
			return err
		} else if g != nil {
			op.Tenant = g.(*InvGuest).Tenant
		}
	}
	return nil
}

// snapshotHolding is what one snapshot of a guest of tenant and project
// holds of their snapshots quota.
func snapshotHolding(tenant, project string) holding {
	if tenant == "" {
		return holding{}
	}
	return holding{tenant: tenant, project: project, delta: quota.Amounts{quota.Snapshots: 1}}
}

// chargeSnapshot charges a snapshot item's guest's tenant and project for
// one snapshot, refusing one past the quota, and records the scope on the
// item.
func chargeSnapshot(txn *memdb.Txn, index uint64, it *RunItem) error {
	raw, err := txn.First(tableInvGuests, "id", it.VMID)
	if err != nil || raw == nil {
		return err
	}
	g := raw.(*InvGuest)
	it.Tenant, it.Project = g.Tenant, g.Project
	return charge(txn, index, snapshotHolding(it.Tenant, it.Project), true)
}

// removeSnapshot drops a tracked snapshot and what it holds.
func removeSnapshot(txn *memdb.Txn, index uint64, s *PolicySnapshot) error {
	if err := charge(txn, index, snapshotHolding(s.Tenant, s.Project).negate(), false); err != nil {
		return err
	}
	return remove(txn, tablePolicySnapshots, index, s)
}

// dropGuestSnapshots drops the tracked snapshots of a guest that is gone
// from the platform (its snapshots went with it).
func dropGuestSnapshots(txn *memdb.Txn, index uint64, vmid int) error {
	it, err := txn.Get(tablePolicySnapshots, "id_prefix", fmt.Sprintf("%d/", vmid))
	if err != nil {
		return err
	}
	var gone []*PolicySnapshot
	for raw := it.Next(); raw != nil; raw = it.Next() {
		gone = append(gone, raw.(*PolicySnapshot))
	}
	for _, s := range gone {
		if err := removeSnapshot(txn, index, s); err != nil {
			return err
		}
	}
	return nil
}
