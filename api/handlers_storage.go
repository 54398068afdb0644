package api

import (
	"net/http"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/storage"
)

// The bodies of the storage API.
type (
	// StoragePoolList is the body of GET /v1/storage/pools.
	StoragePoolList struct {
		Pools []*fsm.StoragePool `json:"pools"`
	}
	// PoolThresholdsRequest is the body of PUT
	// /v1/storage/thresholds/{storage}: fractions of the storage's
	// capacity.
	PoolThresholdsRequest struct {
		Warn     float64 `json:"warn"`
		Critical float64 `json:"critical"`
	}
	// VolumeList is the body of GET /v1/storage/volumes.
	VolumeList struct {
		Volumes []*fsm.Volume `json:"volumes"`
	}
	// VolumeCreateRequest is the body of POST /v1/storage/volumes: a new
	// disk of SizeGiB on Storage for guest VMID, in Slot (the next free
	// scsi slot when empty).
	VolumeCreateRequest struct {
		VMID    int    `json:"vmid"`
		Storage string `json:"storage"`
		SizeGiB int    `json:"size_gib"`
		Slot    string `json:"slot"`
	}
	// VolumeResizeRequest is the body of POST .../resize: the new size,
	// larger than the disk's.
	VolumeResizeRequest struct {
		SizeGiB int `json:"size_gib"`
	}
	// VolumeAttachRequest is the body of POST .../attach.
	VolumeAttachRequest struct {
		Slot string `json:"slot"`
	}
	// VolumeMoveRequest is the body of POST .../move: the storage to move
	// the disk to, and whether to delete the source once it is copied
	// (default true).
	VolumeMoveRequest struct {
		Storage      string `json:"storage"`
		DeleteSource *bool  `json:"delete_source"`
	}
	// SnapshotList is the body of GET /v1/storage/snapshots.
	SnapshotList struct {
		Snapshots []*fsm.PolicySnapshot `json:"snapshots"`
	}
	// BackupList is the body of GET /v1/backups.
	BackupList struct {
		Backups []*fsm.Backup `json:"backups"`
	}
	// BackupRestoreRequest is the body of POST /v1/backups/{volid}/restore:
	// the VMID of the guest to make, on Node (default the backup's) and
	// Storage (default the storages its disks were backed up from).
	BackupRestoreRequest struct {
		VMID    int    `json:"vmid"`
		Node    string `json:"node"`
		Storage string `json:"storage"`
	}
	// BackupCoverage is the body of GET /v1/backups/coverage: every guest
	// with the backup policies selecting it and its newest backup, and
	// the VMIDs of the guests no enabled policy selects.
	BackupCoverage struct {
		Guests      []storage.CoverageEntry `json:"guests"`
		Unprotected []int                   `json:"unprotected"`
	}
	// RunItemList is the body of GET /v1/operations/{id}/items.
	RunItemList struct {
		Items []*fsm.RunItem `json:"items"`
	}
)

// Pools.

// handleStoragePoolList lists the storage pools with their thresholds and
// fill forecast. It supports blocking queries.
func (s *server) handleStoragePoolList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.StoragePool, error) {
		return st.StoragePools(ws, s.b.Now().UnixMilli())
	}, func(l []*fsm.StoragePool) any { return StoragePoolList{Pools: orEmpty(l)} })
}

// handleStoragePoolGet returns one pool: a shared storage by its name, a
// local one as node/storage (the slash escaped as %2F).
func (s *server) handleStoragePoolGet(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveGet(s, c, "id", "pool", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.StoragePool, error) {
		idx, l, err := st.StoragePools(ws, s.b.Now().UnixMilli())
		if i := slices.IndexFunc(l, func(p *fsm.StoragePool) bool { return p.ID == id }); i >= 0 {
			return idx, l[i], err
		}
		return idx, nil, err
	})
}

// handleStorageThresholds sets the warning and critical thresholds of a
// storage (of every pool of that name).
func (s *server) handleStorageThresholds(c *call) error {
	name := c.r.PathValue("storage")
	if !fsm.ValidStorageName(name) {
		return invalid("storage", "%q is not a storage ID", name)
	}
	var req PoolThresholdsRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	_, pools, err := s.b.State().StoragePools(nil, s.b.Now().UnixMilli())
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(pools, func(p *fsm.StoragePool) bool { return p.Storage == name }) {
		return notFoundError("storage", "storage", name)
	}
	cmd := &fsm.PoolSettingsPutRequest{Settings: fsm.PoolSettings{Storage: name, Warn: req.Warn, Critical: req.Critical}}
	return s.propose(c, cmd, http.StatusOK, nil)
}

// Objects of guests: volumes, tracked snapshots and backups belong to the
// tenant of their guest, as the inventory knows it (gone guests too).

// guestTenantOf returns the tenant of guest vmid, or "" when the
// inventory has no such guest.
func guestTenantOf(st *fsm.Store, ws memdb.WatchSet, vmid int) (string, error) {
	_, g, err := st.InventoryGuest(ws, vmid)
	if err != nil || g == nil {
		return "", err
	}
	return g.Tenant, nil
}

// ownGuests returns the VMIDs of the guests of the call's tenant, or nil
// when the call is not confined to a tenant.
func ownGuests(c *call, st *fsm.Store, ws memdb.WatchSet) (map[int]bool, error) {
	if c.tenant == "" {
		return nil, nil
	}
	_, gs, err := st.InventoryGuests(ws, fsm.GuestFilter{Tenant: c.tenant, IncludeGone: true})
	if err != nil {
		return nil, err
	}
	own := make(map[int]bool, len(gs))
	for _, g := range gs {
		own[g.VMID] = true
	}
	return own, nil
}

// serveGuestList answers a list read of objects of guests as a blocking
// query: vmid names each object's guest, which ?vmid filters on; each
// query parameter named in fields filters on the field it reads; and a
// call confined to a tenant gets only its guests' objects.
func serveGuestList[T any](s *server, c *call, read func(*fsm.Store, memdb.WatchSet) (uint64, []*T, error),
	vmid func(*T) int, fields map[string]func(*T) string, wrap func([]*T) any) error {
	want, err := queryVMID(c)
	if err != nil {
		return err
	}
	keep := func(v *T) bool {
		for name, field := range fields {
			if !matches(c.q().Get(name), field(v)) {
				return false
			}
		}
		return matches(want, vmid(v))
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*T, error) {
		idx, l, err := read(st, ws)
		if err != nil {
			return 0, nil, err
		}
		own, err := ownGuests(c, st, ws)
		if err != nil {
			return 0, nil, err
		}
		out := make([]*T, 0, len(l))
		for _, v := range l {
			if keep(v) && (own == nil || own[vmid(v)]) {
				out = append(out, v)
			}
		}
		return idx, out, nil
	}, wrap)
}

// guestObject reads one object of a guest; to a call confined to a
// tenant, another tenant's object is missing.
func guestObject[T any](c *call, read func(*fsm.Store, memdb.WatchSet) (uint64, *T, error),
	vmid func(*T) int) func(*fsm.Store, memdb.WatchSet) (uint64, *T, error) {
	return func(st *fsm.Store, ws memdb.WatchSet) (uint64, *T, error) {
		idx, v, err := read(st, ws)
		if err != nil || v == nil || c.tenant == "" {
			return idx, v, err
		}
		t, err := guestTenantOf(st, ws, vmid(v))
		if err != nil || t != c.tenant {
			return idx, nil, err
		}
		return idx, v, nil
	}
}

// byID binds the ID of a Store read of one object.
func byID[T any](get func(*fsm.Store, memdb.WatchSet, string) (uint64, *T, error), id string) func(*fsm.Store, memdb.WatchSet) (uint64, *T, error) {
	return func(st *fsm.Store, ws memdb.WatchSet) (uint64, *T, error) { return get(st, ws, id) }
}

// queryVMID reads the optional ?vmid filter: 0 when absent.
func queryVMID(c *call) (int, error) {
	v := c.q().Get("vmid")
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < fsm.MinVMID || n > fsm.MaxVMID {
		return 0, invalid("vmid", "must be a number from %d to %d, not %q", fsm.MinVMID, fsm.MaxVMID, v)
	}
	return n, nil
}

// volIDParam reads a volume ID ({volid}, its slashes escaped) from the
// path.
func volIDParam(c *call) (string, error) {
	v := c.r.PathValue("volid")
	if !fsm.ValidVolID(v) {
		return "", invalid("volid", "%q is not a volume ID (storage:name, the slashes in it escaped as %%2F)", v)
	}
	return v, nil
}

// matches reports whether want is empty or got.
func matches[T comparable](want, got T) bool {
	var zero T
	return want == zero || want == got
}

// orEmpty returns l, or an empty list for nil, so that lists encode as [].
func orEmpty[T any](l []T) []T {
	if l == nil {
		return []T{}
	}
	return l
}

// Volumes.

func volumeVMID(v *fsm.Volume) int { return v.VMID }

// handleVolumeList lists the guest disks of the synced storages, by
// volume ID, filtered by vmid, node and storage. It supports blocking
// queries.
func (s *server) handleVolumeList(c *call) error {
	return serveGuestList(s, c, (*fsm.Store).Volumes, volumeVMID, map[string]func(*fsm.Volume) string{
		"node":    func(v *fsm.Volume) string { return v.Node },
		"storage": func(v *fsm.Volume) string { return v.Storage },
	}, func(l []*fsm.Volume) any { return VolumeList{Volumes: l} })
}

// handleVolumeGet returns one volume.
func (s *server) handleVolumeGet(c *call) error {
	volid, err := volIDParam(c)
	if err != nil {
		return err
	}
	return serveGet(s, c, "volid", "volume", volid, guestObject(c, byID((*fsm.Store).Volume, volid), volumeVMID))
}

// visibleGuest returns guest vmid, which must be in the inventory and not
// gone, and the call's tenant's when it is confined to one: otherwise a
// 404 naming field.
func visibleGuest(c *call, st *fsm.Store, vmid int, field string) (*fsm.InvGuest, error) {
	_, g, err := st.InventoryGuest(nil, vmid)
	if err != nil {
		return nil, err
	}
	if g == nil || g.Gone || !visible(c, g.Tenant) {
		return nil, notFoundError(field, "guest", strconv.Itoa(vmid))
	}
	return g, nil
}

// proposeOperation records op (pending; the leader runs it) and answers
// 202 with it.
func (s *server) proposeOperation(c *call, op fsm.Operation) error {
	op.ID = newID()
	return s.propose(c, &fsm.OperationCreateRequest{Op: op}, http.StatusAccepted, nil)
}

// handleVolumeCreate records a volume.create operation: a new disk for a
// guest, checked against its tenant's and project's disk quota.
func (s *server) handleVolumeCreate(c *call) error {
	if s.b.Platform() == "" {
		return errNoPlatform
	}
	var req VolumeCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if req.VMID == 0 {
		return invalid("vmid", "the guest to add the disk to is required")
	}
	g, err := visibleGuest(c, s.b.State(), req.VMID, "vmid")
	if err != nil {
		return err
	}
	return s.proposeOperation(c, fsm.Operation{Kind: fsm.OpVolumeCreate, VMID: g.VMID, Node: g.Node, Tenant: g.Tenant,
		Volume: &fsm.VolumeSpec{Slot: req.Slot, Storage: req.Storage, SizeGiB: req.SizeGiB}})
}

// volumeAction returns the handler of an operation on one volume: the
// body, decoded as T (none for struct{}), fills in the volume spec.
func volumeAction[T any](kind string, fill func(*T, *fsm.VolumeSpec)) func(*server, *call) error {
	return func(s *server, c *call) error {
		if s.b.Platform() == "" {
			return errNoPlatform
		}
		volid, err := volIDParam(c)
		if err != nil {
			return err
		}
		var req T
		if err := decodeJSON(c.body, &req, false); err != nil {
			return err
		}
		st := s.b.State()
		_, v, err := st.Volume(nil, volid)
		if err != nil {
			return err
		}
		if v == nil {
			return notFoundError("volid", "volume", volid)
		}
		if v.VMID == 0 {
			return invalid("volid", "volume %s belongs to no guest", volid)
		}
		// The guest must be there, and the call's tenant's.
		g, err := visibleGuest(c, st, v.VMID, "volid")
		if err != nil {
			return err
		}
		spec := &fsm.VolumeSpec{VolID: volid}
		fill(&req, spec)
		return s.proposeOperation(c, fsm.Operation{Kind: kind, VMID: g.VMID, Node: g.Node, Tenant: g.Tenant, Volume: spec})
	}
}

// The volume operations other than create.
var (
	volumeResize = volumeAction(fsm.OpVolumeResize, func(r *VolumeResizeRequest, v *fsm.VolumeSpec) { v.SizeGiB = r.SizeGiB })
	volumeAttach = volumeAction(fsm.OpVolumeAttach, func(r *VolumeAttachRequest, v *fsm.VolumeSpec) { v.Slot = r.Slot })
	volumeDetach = volumeAction(fsm.OpVolumeDetach, func(*struct{}, *fsm.VolumeSpec) {})
	volumeDelete = volumeAction(fsm.OpVolumeDelete, func(*struct{}, *fsm.VolumeSpec) {})
	volumeMove   = volumeAction(fsm.OpVolumeMove, func(r *VolumeMoveRequest, v *fsm.VolumeSpec) {
		v.Storage, v.DeleteSource = r.Storage, r.DeleteSource == nil || *r.DeleteSource
	})
)

// Tracked snapshots.

func snapshotVMID(p *fsm.PolicySnapshot) int { return p.VMID }

// handleSnapshotList lists the snapshots the snapshot policies made and
// keep, by ID, filtered by policy and vmid. It supports blocking queries.
func (s *server) handleSnapshotList(c *call) error {
	read := func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.PolicySnapshot, error) {
		return st.PolicySnapshots(ws, c.q().Get("policy"))
	}
	return serveGuestList(s, c, read, snapshotVMID, nil, func(l []*fsm.PolicySnapshot) any { return SnapshotList{Snapshots: l} })
}

// recordKind is a kind of record retention prunes, which can be
// protected from it: tracked snapshots and backups.
type recordKind[T any] struct {
	// kind is the fsm.RecordProtectRequest kind; field the path
	// parameter a 404 names; noun names a record in messages.
	kind, field, noun string
	// ref returns the ID of the record the path names.
	ref  func(*call) (string, error)
	get  func(*fsm.Store, memdb.WatchSet, string) (uint64, *T, error)
	vmid func(*T) int
}

// The records that can be protected.
var (
	snapshotRecords = &recordKind[fsm.PolicySnapshot]{fsm.PolicyKindSnapshot, "name", "policy snapshot", snapshotRef,
		(*fsm.Store).PolicySnapshot, snapshotVMID}
	backupRecords = &recordKind[fsm.Backup]{fsm.PolicyKindBackup, "volid", "backup", volIDParam, (*fsm.Store).Backup, backupVMID}
)

// protect returns the handler that protects a record from pruning, or
// lifts the protection.
func (k *recordKind[T]) protect(protected bool) func(*server, *call) error {
	return func(s *server, c *call) error {
		id, err := k.ref(c)
		if err != nil {
			return err
		}
		_, v, err := guestObject(c, byID(k.get, id), k.vmid)(s.b.State(), nil)
		if err != nil {
			return err
		}
		if v == nil {
			return notFoundError(k.field, k.noun, id)
		}
		return s.propose(c, &fsm.RecordProtectRequest{Kind: k.kind, ID: id, Protected: protected}, http.StatusOK, nil)
	}
}

// snapshotRef returns the ID of the {vmid}/{name} snapshot.
func snapshotRef(c *call) (string, error) {
	vmid, err := vmidParam(c)
	if err != nil {
		return "", err
	}
	name, err := pathID(c, "name")
	if err != nil {
		return "", err
	}
	return fsm.SnapshotID(vmid, name), nil
}

// Backups.

func backupVMID(b *fsm.Backup) int { return b.VMID }

// handleBackupList lists the backups on the synced storages, by volume
// ID, filtered by vmid, policy and storage. It supports blocking queries.
func (s *server) handleBackupList(c *call) error {
	return serveGuestList(s, c, (*fsm.Store).Backups, backupVMID, map[string]func(*fsm.Backup) string{
		"policy":  func(b *fsm.Backup) string { return b.Policy },
		"storage": func(b *fsm.Backup) string { return b.Storage },
	}, func(l []*fsm.Backup) any { return BackupList{Backups: l} })
}

// handleBackupGet returns one backup.
func (s *server) handleBackupGet(c *call) error {
	volid, err := volIDParam(c)
	if err != nil {
		return err
	}
	return serveGet(s, c, "volid", "backup", volid, guestObject(c, byID((*fsm.Store).Backup, volid), backupVMID))
}

// handleBackupRestore records a backup.restore operation: a new guest
// VMID made from the backup.
func (s *server) handleBackupRestore(c *call) error {
	if s.b.Platform() == "" {
		return errNoPlatform
	}
	volid, err := volIDParam(c)
	if err != nil {
		return err
	}
	var req BackupRestoreRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	st := s.b.State()
	_, b, err := guestObject(c, byID((*fsm.Store).Backup, volid), backupVMID)(st, nil)
	if err != nil {
		return err
	}
	if b == nil {
		return notFoundError("volid", "backup", volid)
	}
	if req.VMID == 0 {
		return invalid("vmid", "the VMID of the guest to restore is required")
	}
	node := b.Node
	if req.Node != "" {
		_, n, err := st.InventoryNode(nil, req.Node)
		if err != nil {
			return err
		}
		if n == nil || n.Gone {
			return invalid("node", "no node %q in the inventory", req.Node)
		}
		node = req.Node
	}
	return s.proposeOperation(c, fsm.Operation{Kind: fsm.OpBackupRestore, VMID: req.VMID, Node: node, Tenant: c.tenant,
		Volume: &fsm.VolumeSpec{Archive: volid, Storage: req.Storage}})
}

// handleBackupCoverage reports, for every guest that is not a template,
// the enabled backup policies selecting it and its newest backup; with
// ?unprotected only the guests no policy selects.
func (s *server) handleBackupCoverage(c *call) error {
	only, err := boolParam(c, "unprotected")
	if err != nil {
		return err
	}
	var out BackupCoverage
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		gi, invGuests, err := st.InventoryGuests(ws, fsm.GuestFilter{Tenant: c.tenant})
		if err != nil {
			return 0, err
		}
		pi, policies, err := st.StoragePolicies(ws)
		if err != nil {
			return 0, err
		}
		bi, backups, err := st.Backups(ws)
		if err != nil {
			return 0, err
		}
		guests := make([]storage.Guest, 0, len(invGuests))
		for _, g := range invGuests {
			guests = append(guests, g.StorageGuest())
		}
		var sels []storage.PolicySelector
		for _, p := range policies {
			if p.Kind == fsm.PolicyKindBackup {
				sels = append(sels, storage.PolicySelector{ID: p.ID, Selector: p.Selector, Disabled: p.Disabled})
			}
		}
		records := make([]storage.BackupRecord, 0, len(backups))
		for _, b := range backups {
			if b.Run != "" {
				// A storage shared with other sites lists their policies'
				// backups too: only this site's runs count.
				if _, op, err := st.Operation(nil, b.Run); err != nil || op == nil {
					continue
				}
			}
			records = append(records, storage.BackupRecord{VMID: b.VMID, Time: b.Time.Time(), VolID: b.VolID, Policy: b.Policy})
		}
		out = coverageOf(storage.Coverage(guests, sels, records), only)
		return max(gi, pi, bi), nil
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// coverageOf wraps the coverage entries, keeping only the unprotected
// guests when only is set.
func coverageOf(entries []storage.CoverageEntry, only bool) BackupCoverage {
	out := BackupCoverage{Guests: []storage.CoverageEntry{}, Unprotected: []int{}}
	for _, e := range entries {
		if !e.Protected {
			out.Unprotected = append(out.Unprotected, e.VMID)
		}
		if !only || !e.Protected {
			out.Guests = append(out.Guests, e)
		}
	}
	return out
}

// Policy runs.

// handleRunItems lists the items of a policy run, one per guest, by
// VMID; a call confined to a tenant sees those of its tenant's runs. It
// supports blocking queries.
func (s *server) handleRunItems(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var out []*fsm.RunItem
	found := false
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		oi, op, err := st.Operation(ws, id)
		if err != nil {
			return 0, err
		}
		found = op != nil && op.IsPolicyRun() && visible(c, opTenant(op))
		if !found {
			return oi, nil
		}
		ii, items, err := st.RunItems(ws, id)
		out = items
		return max(oi, ii), err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if !found {
		return notFoundError("id", "policy run", id)
	}
	writeJSON(c.w, http.StatusOK, RunItemList{Items: orEmpty(out)})
	return nil
}

// Policies.

// StoragePolicyView is a snapshot or backup policy with the time of its
// next slot (absent while disabled). It is also the body of a policy
// create or replace, so that a policy read can be sent back changed: the
// fields only the server sets (run state, times, indexes, next_run) are
// accepted there and ignored, and kind must be the path's.
type StoragePolicyView struct {
	fsm.StoragePolicy
	NextRun time.Time `json:"next_run,omitzero"`
}

// StoragePolicyList is the body of GET /v1/policies/snapshots and
// /v1/policies/backups.
type StoragePolicyList struct {
	Policies []StoragePolicyView `json:"policies"`
}

// Default vzdump mode of a backup policy.
const defaultBackupMode = "snapshot"

// policyKind is the collection of the snapshot or of the backup policies.
type policyKind struct {
	// kind is fsm.PolicyKindSnapshot or fsm.PolicyKindBackup; path the
	// collection's path; noun names a policy in messages.
	kind, path, noun string
}

// The two policy collections.
var (
	snapshotPolicies = &policyKind{fsm.PolicyKindSnapshot, "/v1/policies/snapshots", "snapshot policy"}
	backupPolicies   = &policyKind{fsm.PolicyKindBackup, "/v1/policies/backups", "backup policy"}
)

// policyView shows p with its next slot after the later of its last slot,
// its creation and now.
func policyView(p *fsm.StoragePolicy, now time.Time) StoragePolicyView {
	v := StoragePolicyView{StoragePolicy: *p}
	cal, err := storage.ParseCalendar(p.Schedule)
	if err != nil || p.Disabled {
		return v
	}
	if loc, err := PolicyZone(p); err == nil {
		v.NextRun = cal.NextIn(max(p.LastSlot, p.CreatedAt, fsm.Timestamp(now.UnixNano())).Time(), loc)
	}
	return v
}

// visiblePolicy reports whether the call may see policy p: one of the
// collection's kind and, to a call confined to a tenant, one whose
// selector names that tenant.
func (k *policyKind) visiblePolicy(c *call, p *fsm.StoragePolicy) bool {
	return p != nil && p.Kind == k.kind && visible(c, p.Selector.Tenant)
}

// read returns the {id} policy of the collection the call may see, or nil.
func (k *policyKind) read(c *call, st *fsm.Store, ws memdb.WatchSet, id string) (uint64, *fsm.StoragePolicy, error) {
	idx, p, err := st.StoragePolicy(ws, id)
	if err != nil || !k.visiblePolicy(c, p) {
		return idx, nil, err
	}
	return idx, p, nil
}

func (k *policyKind) handleList(s *server, c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []StoragePolicyView, error) {
		idx, l, err := st.StoragePolicies(ws)
		now := s.b.Now()
		out := []StoragePolicyView{}
		for _, p := range l {
			if k.visiblePolicy(c, p) {
				out = append(out, policyView(p, now))
			}
		}
		return idx, out, err
	}, func(l []StoragePolicyView) any { return StoragePolicyList{Policies: l} })
}

func (k *policyKind) handleGet(s *server, c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveGet(s, c, "id", k.noun, id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *StoragePolicyView, error) {
		idx, p, err := k.read(c, st, ws, id)
		if p == nil {
			return idx, nil, err
		}
		v := policyView(p, s.b.Now())
		return idx, &v, err
	})
}

// decode reads a policy body for the collection; path is the {id} of a
// replace, which the body's id must be or leave empty.
func (k *policyKind) decode(c *call, path string) (fsm.StoragePolicy, error) {
	var v StoragePolicyView
	if err := decodeJSON(c.body, &v, true); err != nil {
		return fsm.StoragePolicy{}, err
	}
	p := v.StoragePolicy
	switch {
	case path == "":
	case p.ID == "":
		p.ID = path
	case p.ID != path:
		return p, invalid("id", "the body's id %q differs from the path's %q; a policy cannot be renamed", p.ID, path)
	}
	if p.Kind != "" && p.Kind != k.kind {
		return p, invalid("kind", "a %s policy is not a %s policy; use %s", p.Kind, k.kind, k.path)
	}
	p.Kind = k.kind
	if k.kind == fsm.PolicyKindBackup && p.Mode == "" {
		p.Mode = defaultBackupMode
	}
	// The FSM checks the zone's form; whether it exists, only a server
	// with the zone data can say.
	if storage.ValidZoneName(p.Timezone) == nil {
		if _, err := PolicyZone(&p); err != nil {
			return p, invalid("timezone", "unknown time zone %q: want an IANA name such as Europe/Berlin or UTC", p.Timezone)
		}
	}
	return p, nil
}

// PolicyZone returns the time zone p's schedule is evaluated in: UTC when
// it names none. moxxied carries its own copy of the zone data
// (time/tzdata), used where the system has none. Zones once loaded are
// kept: the leader looks them up every second.
func PolicyZone(p *fsm.StoragePolicy) (*time.Location, error) {
	if p.Timezone == "" {
		return time.UTC, nil
	}
	if loc, ok := loadedZones.Load(p.Timezone); ok {
		return loc.(*time.Location), nil
	}
	loc, err := time.LoadLocation(p.Timezone)
	if err != nil {
		return nil, err
	}
	loadedZones.Store(p.Timezone, loc)
	return loc, nil
}

// loadedZones maps the zone names PolicyZone loaded to their locations;
// only names that exist get in, so it holds at most the zone database.
var loadedZones sync.Map

// confinePolicy confines the policy of a call confined to a tenant to
// that tenant's guests: its selector names the tenant (filled in when
// empty; another is a 403 naming selector.tenant), does not select every
// guest (403 naming selector.all) and lists only the tenant's guests (404
// naming selector.vmids).
func confinePolicy(c *call, st *fsm.Store, p *fsm.StoragePolicy) error {
	if c.tenant == "" {
		return nil
	}
	if p.Selector.All {
		return &apiError{status: http.StatusForbidden, code: CodeForbidden, field: "selector.all",
			message: "this token acts within tenant " + c.tenant + "; its policies cannot select every guest"}
	}
	t, err := forTenant(c, p.Selector.Tenant, "selector.tenant")
	if err != nil {
		return err
	}
	p.Selector.Tenant = t
	for _, vmid := range p.Selector.VMIDs {
		if t, err := guestTenantOf(st, nil, vmid); err != nil {
			return err
		} else if t != c.tenant {
			return notFoundError("selector.vmids", "guest", strconv.Itoa(vmid))
		}
	}
	return nil
}

// render shows a written policy with its next slot.
func (k *policyKind) render(s *server) func(any) (any, error) {
	return func(v any) (any, error) {
		p, err := resultOf[fsm.StoragePolicy](v)
		if err != nil {
			return nil, err
		}
		return policyView(p, s.b.Now()), nil
	}
}

func (k *policyKind) handleCreate(s *server, c *call) error {
	p, err := k.decode(c, "")
	if err != nil {
		return err
	}
	if err := confinePolicy(c, s.b.State(), &p); err != nil {
		return err
	}
	return s.propose(c, &fsm.StoragePolicyPutRequest{Policy: p, Create: true}, http.StatusCreated, k.render(s))
}

// existing returns the {id} policy a replace or delete acts on: a 404
// naming id unless it exists and the call may see it. With an
// Idempotency-Key a missing policy is nil, no error: the first attempt
// may have deleted it, and the FSM replays that attempt's answer (or
// answers 404 itself).
func (k *policyKind) existing(c *call, st *fsm.Store) (string, *fsm.StoragePolicy, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return "", nil, err
	}
	_, p, err := st.StoragePolicy(nil, id)
	switch {
	case err != nil:
		return "", nil, err
	case p == nil && keyed(c):
		return id, nil, nil
	case !k.visiblePolicy(c, p):
		return "", nil, notFoundError("id", k.noun, id)
	}
	return id, p, nil
}

func (k *policyKind) handleUpdate(s *server, c *call) error {
	st := s.b.State()
	id, _, err := k.existing(c, st)
	if err != nil {
		return err
	}
	p, err := k.decode(c, id)
	if err != nil {
		return err
	}
	if err := confinePolicy(c, st, &p); err != nil {
		return err
	}
	return s.propose(c, &fsm.StoragePolicyPutRequest{Policy: p}, http.StatusOK, k.render(s))
}

// handleDelete deletes a policy with no run in progress and answers the
// policy as it was.
func (k *policyKind) handleDelete(s *server, c *call) error {
	id, old, err := k.existing(c, s.b.State())
	if err != nil {
		return err
	}
	return s.propose(c, &fsm.StoragePolicyDeleteRequest{ID: id}, http.StatusOK, func(v any) (any, error) {
		if old == nil {
			return v, nil // a replay: the first answer
		}
		return policyView(old, s.b.Now()), nil
	})
}

// handleRun runs the {id} policy now, outside its schedule (Proxmox's
// "Run now"), disabled or not: a run of the guests it selects at this
// moment, recorded as a scheduled run is, with the time as its slot. It
// answers 202 with the run, 409 naming policy while a run is in
// progress.
func (k *policyKind) handleRun(s *server, c *call) error {
	st := s.b.State()
	id, p, err := k.existing(c, st)
	if err != nil {
		return err
	}
	if p == nil {
		return notFoundError("id", k.noun, id)
	}
	_, inv, err := st.InventoryGuests(nil, fsm.GuestFilter{})
	if err != nil {
		return err
	}
	var guests []storage.Guest
	byVMID := map[int]*fsm.InvGuest{}
	for _, g := range inv {
		if !g.Gone {
			guests, byVMID[g.VMID] = append(guests, g.StorageGuest()), g
		}
	}
	var items []fsm.RunItem
	for _, vmid := range storage.SelectVMIDs(guests, p.Selector) {
		g := byVMID[vmid]
		items = append(items, fsm.RunItem{VMID: vmid, Node: g.Node, Kind: g.Kind})
	}
	// The slot must be after the last one handled, also when that came
	// from a leader whose clock ran ahead.
	slot := max(fsm.Timestamp(s.b.Now().UnixNano()), p.LastSlot+1)
	req := &fsm.PolicyTickRequest{Policy: p.ID, Slot: slot, Run: &fsm.Operation{ID: NewID(), Tenant: p.Selector.Tenant}, Items: items}
	return s.propose(c, req, http.StatusAccepted, nil)
}

// handleRuns lists the runs of a policy, newest first. It supports
// blocking queries.
func (k *policyKind) handleRuns(s *server, c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	var runs []*fsm.Operation
	found := false
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		pi, p, err := k.read(c, st, ws, id)
		if found = p != nil; err != nil || !found {
			return pi, err
		}
		oi, ops, err := st.Operations(ws, false)
		runs = []*fsm.Operation{}
		for _, op := range slices.Backward(ops) {
			if op.IsPolicyRun() && op.Policy == id {
				runs = append(runs, op)
			}
		}
		return max(pi, oi), err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if !found {
		return notFoundError("id", k.noun, id)
	}
	writeJSON(c.w, http.StatusOK, OperationList{Operations: runs})
	return nil
}
