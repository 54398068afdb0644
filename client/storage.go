package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/moxxie/moxxie/storage"
)

// Paths of the storage API.
const (
	storagePoolsPath = "/v1/storage/pools"
	thresholdsPath   = "/v1/storage/thresholds"
	volumesPath      = "/v1/storage/volumes"
	policySnapsPath  = "/v1/storage/snapshots"
	backupsPath      = "/v1/backups"
	coveragePath     = backupsPath + "/coverage"
	policiesPath     = "/v1/policies"
)

// Operation kinds of storage management.
const (
	OpVolumeCreate  = "volume.create"
	OpVolumeResize  = "volume.resize"
	OpVolumeAttach  = "volume.attach"
	OpVolumeDetach  = "volume.detach"
	OpVolumeDelete  = "volume.delete"
	OpVolumeMove    = "volume.move"
	OpBackupRestore = "backup.restore"
	OpSnapshotRun   = "snapshot.run"
	OpBackupRun     = "backup.run"
)

// Policy kinds: a policy's kind decides its collection,
// /v1/policies/snapshots or /v1/policies/backups.
const (
	PolicyKindSnapshot = "snapshot"
	PolicyKindBackup   = "backup"
)

// Storage pool states by the pool's thresholds.
const (
	PoolOK       = "ok"
	PoolWarning  = "warning"
	PoolCritical = "critical"
)

// StoragePool is one storage as an operator sees it: a shared storage
// once, a local one once per node.
type StoragePool struct {
	// ID is the storage name of a shared storage, node/storage of a local
	// one.
	ID      string   `json:"id"`
	Storage string   `json:"storage"`
	Nodes   []string `json:"nodes"`
	Type    string   `json:"type"`
	Shared  bool     `json:"shared"`
	Content []string `json:"content,omitempty"`
	Status  string   `json:"status"`
	// Used and Total are bytes; Fraction is Used/Total.
	Used     uint64  `json:"used"`
	Total    uint64  `json:"total"`
	Fraction float64 `json:"used_fraction"`
	// Warn and Critical are the thresholds, fractions of Total; State is
	// PoolOK, PoolWarning or PoolCritical by them.
	Warn     float64 `json:"warn"`
	Critical float64 `json:"critical"`
	State    string  `json:"state"`
	// DaysUntilFull is the fill forecast from the last 30 days of use;
	// nil when use does not grow.
	DaysUntilFull *float64 `json:"days_until_full,omitempty"`
}

// PoolThresholds are a storage's thresholds, as fractions of its capacity.
type PoolThresholds struct {
	Storage     string  `json:"storage"`
	Warn        float64 `json:"warn"`
	Critical    float64 `json:"critical"`
	UpdatedAt   Time    `json:"updated_at,omitzero"`
	ModifyIndex uint64  `json:"modify_index"`
}

// Volume is one guest disk image on a storage.
type Volume struct {
	VolID     string `json:"volid"`
	StorageID string `json:"storage_id"`
	Node      string `json:"node"`
	Storage   string `json:"storage"`
	VMID      int    `json:"vmid,omitempty"`
	// Size is in bytes.
	Size   uint64 `json:"size"`
	Format string `json:"format,omitempty"`
	// Content is images (a VM disk) or rootdir (a container volume).
	Content     string `json:"content"`
	ModifyIndex uint64 `json:"modify_index"`
}

// VolumeFilter narrows a volume list; zero fields match everything.
type VolumeFilter struct {
	VMID    int
	Node    string
	Storage string
}

// VolumeCreateRequest asks for a new disk of SizeGiB on Storage for guest
// VMID, in Slot (the next free scsi slot when empty).
type VolumeCreateRequest struct {
	VMID    int    `json:"vmid"`
	Storage string `json:"storage"`
	SizeGiB int    `json:"size_gib"`
	Slot    string `json:"slot,omitempty"`
}

// VolumeSpec is what a volume operation or a restore asked for, and what
// it made.
type VolumeSpec struct {
	Slot         string `json:"slot,omitempty"`
	VolID        string `json:"volid,omitempty"`
	Storage      string `json:"storage,omitempty"`
	SizeGiB      int    `json:"size_gib,omitempty"`
	DeleteSource bool   `json:"delete_source,omitempty"`
	Project      string `json:"project,omitempty"`
	// ReserveGiB is what the operation holds against the quota while it
	// runs.
	ReserveGiB int64 `json:"reserve_gib,omitempty"`
	// Result is the volume the operation made or moved the disk to.
	Result string `json:"result,omitempty"`
	// Archive is the backup a restore reads.
	Archive string `json:"archive,omitempty"`
}

// RunStats counts a policy run's items.
type RunStats struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Pruned counts the snapshots or backups retention removed.
	Pruned int `json:"pruned"`
}

// StoragePolicyRequest is a snapshot or backup policy to create or
// replace: a Proxmox calendar schedule, in the IANA time zone Timezone
// (empty: UTC), the guests it applies to and the retention of what it
// makes. Storage, Mode (default snapshot) and Compress are for backup
// policies only.
type StoragePolicyRequest struct {
	ID           string           `json:"id,omitempty"`
	Description  string           `json:"description,omitempty"`
	Schedule     string           `json:"schedule"`
	Timezone     string           `json:"timezone,omitempty"`
	Selector     storage.Selector `json:"selector"`
	Keep         storage.Keep     `json:"keep"`
	Disabled     bool             `json:"disabled,omitempty"`
	RepeatMissed bool             `json:"repeat_missed,omitempty"`
	Storage      string           `json:"storage,omitempty"`
	Mode         string           `json:"mode,omitempty"`
	Compress     string           `json:"compress,omitempty"`
}

// StoragePolicy is a stored policy with its run state and the time of its
// next slot.
type StoragePolicy struct {
	StoragePolicyRequest
	Kind string `json:"kind"`
	// LastSlot is the newest slot handled, run or skipped; ActiveRun the
	// run in progress; LastRun the newest run; Skipped counts the slots
	// that did not run.
	LastSlot    Time   `json:"last_slot,omitzero"`
	ActiveRun   string `json:"active_run,omitempty"`
	LastRun     string `json:"last_run,omitempty"`
	Skipped     int    `json:"skipped,omitempty"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	// NextRun is the next slot; zero while the policy is disabled.
	NextRun Time `json:"next_run,omitzero"`
}

// RunItem is one guest of a policy run.
type RunItem struct {
	Run    string `json:"run"`
	VMID   int    `json:"vmid"`
	Node   string `json:"node"`
	Kind   string `json:"kind"`
	Status string `json:"status"`
	// Name is the snapshot's name, or the backup's volume once known.
	Name     string `json:"name,omitempty"`
	Task     string `json:"task,omitempty"`
	TaskNode string `json:"task_node,omitempty"`
	Error    string `json:"error,omitempty"`
	Started  Time   `json:"started_at,omitzero"`
	Finished Time   `json:"finished_at,omitzero"`
}

// PolicySnapshot is a snapshot a snapshot policy made and keeps.
type PolicySnapshot struct {
	// ID is vmid/name.
	ID     string `json:"id"`
	VMID   int    `json:"vmid"`
	Name   string `json:"name"`
	Policy string `json:"policy"`
	Run    string `json:"run"`
	// Time is the slot of the run that made it.
	Time      Time `json:"time"`
	Protected bool `json:"protected,omitempty"`
}

// SnapshotFilter narrows a policy snapshot list.
type SnapshotFilter struct {
	Policy string
	VMID   int
}

// Backup is one backup on a storage.
type Backup struct {
	VolID     string `json:"volid"`
	StorageID string `json:"storage_id"`
	Node      string `json:"node"`
	Storage   string `json:"storage"`
	VMID      int    `json:"vmid"`
	Kind      string `json:"kind,omitempty"`
	Time      Time   `json:"time"`
	Size      uint64 `json:"size"`
	Format    string `json:"format,omitempty"`
	Notes     string `json:"notes,omitempty"`
	// Policy and Run name the policy run that made it; backups made
	// otherwise have none and are never pruned.
	Policy string `json:"policy,omitempty"`
	Run    string `json:"run,omitempty"`
	// Protected is Moxxie's protection; PlatformProtected the platform's
	// own flag. Retention removes neither.
	Protected         bool   `json:"protected,omitempty"`
	PlatformProtected bool   `json:"platform_protected,omitempty"`
	ModifyIndex       uint64 `json:"modify_index"`
}

// BackupFilter narrows a backup list.
type BackupFilter struct {
	VMID    int
	Policy  string
	Storage string
}

// BackupRestoreRequest asks for guest VMID to be made from a backup, on
// Node (default the backup's) and Storage (default the storages its disks
// were backed up from).
type BackupRestoreRequest struct {
	VMID    int    `json:"vmid"`
	Node    string `json:"node,omitempty"`
	Storage string `json:"storage,omitempty"`
}

// BackupCoverage is every guest with the backup policies selecting it and
// its newest backup, and the VMIDs of the guests no enabled policy
// selects.
type BackupCoverage struct {
	Guests      []storage.CoverageEntry `json:"guests"`
	Unprotected []int                   `json:"unprotected"`
}

// filterValues encodes the non-zero filter fields as query parameters.
func filterValues(vmid int, pairs ...string) url.Values {
	v := url.Values{}
	if vmid != 0 {
		v.Set("vmid", strconv.Itoa(vmid))
	}
	for i := 0; i+1 < len(pairs); i += 2 {
		setNonEmpty(v, pairs[i], pairs[i+1])
	}
	return v
}

// StoragePools lists the storage pools, by ID, with their thresholds and
// fill forecast (GET /v1/storage/pools).
func (c *Client) StoragePools(ctx context.Context, q *QueryOptions) ([]StoragePool, *Meta, error) {
	return getList[StoragePool](ctx, c, storagePoolsPath, "pools", nil, q)
}

// StoragePool reads one pool: a shared storage by name, a local one as
// node/storage (GET /v1/storage/pools/{id}).
func (c *Client) StoragePool(ctx context.Context, id string, q *QueryOptions) (*StoragePool, *Meta, error) {
	return getOne[StoragePool](ctx, c, itemPath(storagePoolsPath, id), nil, q)
}

// SetStorageThresholds sets the warning and critical thresholds of every
// pool of a storage, as fractions of its capacity (PUT
// /v1/storage/thresholds/{storage}).
func (c *Client) SetStorageThresholds(ctx context.Context, storageID string, warn, critical float64, w *WriteOptions) (*PoolThresholds, *Meta, error) {
	body := map[string]float64{"warn": warn, "critical": critical}
	return writeOne[PoolThresholds](ctx, c, http.MethodPut, itemPath(thresholdsPath, storageID), body, w)
}

// Volumes lists the guest disks of the synced storages, by volume ID (GET
// /v1/storage/volumes).
func (c *Client) Volumes(ctx context.Context, f VolumeFilter, q *QueryOptions) ([]Volume, *Meta, error) {
	return getList[Volume](ctx, c, volumesPath, "volumes", filterValues(f.VMID, "node", f.Node, "storage", f.Storage), q)
}

// Volume reads one volume (GET /v1/storage/volumes/{volid}).
func (c *Client) Volume(ctx context.Context, volid string, q *QueryOptions) (*Volume, *Meta, error) {
	return getOne[Volume](ctx, c, itemPath(volumesPath, volid), nil, q)
}

// CreateVolume asks for a new disk for a guest (POST /v1/storage/volumes)
// and returns the pending volume.create operation; follow it with
// WaitOperation.
func (c *Client) CreateVolume(ctx context.Context, req VolumeCreateRequest, w *WriteOptions) (*Operation, *Meta, error) {
	return writeOne[Operation](ctx, c, http.MethodPost, volumesPath, req, w)
}

// volumeAction starts an operation on one volume.
func (c *Client) volumeAction(ctx context.Context, method, volid, action string, body any, w *WriteOptions) (*Operation, *Meta, error) {
	p := itemPath(volumesPath, volid)
	if action != "" {
		p += "/" + action
	}
	return writeOne[Operation](ctx, c, method, p, body, w)
}

// ResizeVolume grows a disk to sizeGiB (POST .../resize) and returns the
// pending operation.
func (c *Client) ResizeVolume(ctx context.Context, volid string, sizeGiB int, w *WriteOptions) (*Operation, *Meta, error) {
	return c.volumeAction(ctx, http.MethodPost, volid, "resize", map[string]int{"size_gib": sizeGiB}, w)
}

// AttachVolume attaches an unused volume of its guest at slot (POST
// .../attach) and returns the pending operation.
func (c *Client) AttachVolume(ctx context.Context, volid, slot string, w *WriteOptions) (*Operation, *Meta, error) {
	return c.volumeAction(ctx, http.MethodPost, volid, "attach", map[string]string{"slot": slot}, w)
}

// DetachVolume detaches a disk, which stays as an unused volume of its
// guest (POST .../detach), and returns the pending operation.
func (c *Client) DetachVolume(ctx context.Context, volid string, w *WriteOptions) (*Operation, *Meta, error) {
	return c.volumeAction(ctx, http.MethodPost, volid, "detach", nil, w)
}

// MoveVolume moves a disk to another storage, live when its guest runs,
// deleting the source once the copy is in use unless keepSource (POST
// .../move), and returns the pending operation.
func (c *Client) MoveVolume(ctx context.Context, volid, storageID string, keepSource bool, w *WriteOptions) (*Operation, *Meta, error) {
	body := map[string]any{"storage": storageID, "delete_source": !keepSource}
	return c.volumeAction(ctx, http.MethodPost, volid, "move", body, w)
}

// DeleteVolume destroys a disk (DELETE /v1/storage/volumes/{volid}) and
// returns the pending operation.
func (c *Client) DeleteVolume(ctx context.Context, volid string, w *WriteOptions) (*Operation, *Meta, error) {
	return c.volumeAction(ctx, http.MethodDelete, volid, "", nil, w)
}

// policyPath returns the path of the policies of kind (PolicyKindSnapshot or
// PolicyKindBackup), or of one of them.
func policyPath(kind, id string) string {
	p := policiesPath + "/" + kind + "s"
	if id != "" {
		p = itemPath(p, id)
	}
	return p
}

// StoragePolicies lists the policies of kind, PolicyKindSnapshot or
// PolicyKindBackup, by ID (GET /v1/policies/snapshots or .../backups).
func (c *Client) StoragePolicies(ctx context.Context, kind string, q *QueryOptions) ([]StoragePolicy, *Meta, error) {
	return getList[StoragePolicy](ctx, c, policyPath(kind, ""), "policies", nil, q)
}

// StoragePolicy reads one policy of kind.
func (c *Client) StoragePolicy(ctx context.Context, kind, id string, q *QueryOptions) (*StoragePolicy, *Meta, error) {
	return getOne[StoragePolicy](ctx, c, policyPath(kind, id), nil, q)
}

// CreateStoragePolicy creates a policy of kind.
func (c *Client) CreateStoragePolicy(ctx context.Context, kind string, req StoragePolicyRequest, w *WriteOptions) (*StoragePolicy, *Meta, error) {
	return writeOne[StoragePolicy](ctx, c, http.MethodPost, policyPath(kind, ""), req, w)
}

// UpdateStoragePolicy replaces the policy of kind called req.ID; its run
// state is kept.
func (c *Client) UpdateStoragePolicy(ctx context.Context, kind string, req StoragePolicyRequest, w *WriteOptions) (*StoragePolicy, *Meta, error) {
	return writeOne[StoragePolicy](ctx, c, http.MethodPut, policyPath(kind, req.ID), req, w)
}

// DeleteStoragePolicy deletes a policy of kind with no run in progress
// and returns it as it was. What it made is kept, and no longer pruned.
func (c *Client) DeleteStoragePolicy(ctx context.Context, kind, id string, w *WriteOptions) (*StoragePolicy, *Meta, error) {
	return writeOne[StoragePolicy](ctx, c, http.MethodDelete, policyPath(kind, id), nil, w)
}

// RunStoragePolicy runs a policy of kind now, outside its schedule, and
// returns the run, pending (POST .../{id}/run). A run in progress is a
// 409.
func (c *Client) RunStoragePolicy(ctx context.Context, kind, id string, w *WriteOptions) (*Operation, *Meta, error) {
	return writeOne[Operation](ctx, c, http.MethodPost, policyPath(kind, id)+"/run", nil, w)
}

// StoragePolicyRuns lists the runs of a policy of kind, newest first (GET
// .../{id}/runs).
func (c *Client) StoragePolicyRuns(ctx context.Context, kind, id string, q *QueryOptions) ([]Operation, *Meta, error) {
	return getList[Operation](ctx, c, policyPath(kind, id)+"/runs", "operations", nil, q)
}

// RunItems lists the items of a policy run, one per guest, by VMID (GET
// /v1/operations/{id}/items).
func (c *Client) RunItems(ctx context.Context, run string, q *QueryOptions) ([]RunItem, *Meta, error) {
	return getList[RunItem](ctx, c, itemPath(operationsPath, run)+"/items", "items", nil, q)
}

// PolicySnapshots lists the snapshots the snapshot policies made and
// keep, by ID (GET /v1/storage/snapshots).
func (c *Client) PolicySnapshots(ctx context.Context, f SnapshotFilter, q *QueryOptions) ([]PolicySnapshot, *Meta, error) {
	return getList[PolicySnapshot](ctx, c, policySnapsPath, "snapshots", filterValues(f.VMID, "policy", f.Policy), q)
}

// ProtectSnapshot protects snapshot name of guest vmid from pruning, or
// with protected false lifts the protection (POST
// /v1/storage/snapshots/{vmid}/{name}/protect or .../unprotect).
func (c *Client) ProtectSnapshot(ctx context.Context, vmid int, name string, protected bool, w *WriteOptions) (*PolicySnapshot, *Meta, error) {
	p := policySnapsPath + "/" + strconv.Itoa(vmid) + "/" + url.PathEscape(name) + "/" + protectVerb(protected)
	return writeOne[PolicySnapshot](ctx, c, http.MethodPost, p, nil, w)
}

func protectVerb(protected bool) string {
	if protected {
		return "protect"
	}
	return "unprotect"
}

// Backups lists the backups on the synced storages, by volume ID (GET
// /v1/backups).
func (c *Client) Backups(ctx context.Context, f BackupFilter, q *QueryOptions) ([]Backup, *Meta, error) {
	return getList[Backup](ctx, c, backupsPath, "backups", filterValues(f.VMID, "policy", f.Policy, "storage", f.Storage), q)
}

// Backup reads one backup (GET /v1/backups/{volid}).
func (c *Client) Backup(ctx context.Context, volid string, q *QueryOptions) (*Backup, *Meta, error) {
	return getOne[Backup](ctx, c, itemPath(backupsPath, volid), nil, q)
}

// RestoreBackup asks for a guest to be made from a backup (POST
// /v1/backups/{volid}/restore) and returns the pending backup.restore
// operation.
func (c *Client) RestoreBackup(ctx context.Context, volid string, req BackupRestoreRequest, w *WriteOptions) (*Operation, *Meta, error) {
	return writeOne[Operation](ctx, c, http.MethodPost, itemPath(backupsPath, volid)+"/restore", req, w)
}

// ProtectBackup protects a backup from pruning, or with protected false
// lifts the protection (POST /v1/backups/{volid}/protect or .../unprotect).
func (c *Client) ProtectBackup(ctx context.Context, volid string, protected bool, w *WriteOptions) (*Backup, *Meta, error) {
	return writeOne[Backup](ctx, c, http.MethodPost, itemPath(backupsPath, volid)+"/"+protectVerb(protected), nil, w)
}

// BackupCoverage reports every guest with the backup policies selecting
// it and its newest backup; with unprotectedOnly, only the guests no
// enabled policy selects (GET /v1/backups/coverage).
func (c *Client) BackupCoverage(ctx context.Context, unprotectedOnly bool, q *QueryOptions) (*BackupCoverage, *Meta, error) {
	var v url.Values
	if unprotectedOnly {
		v = url.Values{"unprotected": {"true"}}
	}
	return getOne[BackupCoverage](ctx, c, coveragePath, v, q)
}
