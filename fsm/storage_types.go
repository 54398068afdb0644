package fsm

import (
	"fmt"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/storage"
)

// Storage management: snapshot and backup policies, their runs, the
// snapshots and backups they made, the volumes and backups on the
// platform's storages, and per-pool thresholds. A policy run is an
// Operation (kinds snapshot.run and backup.run) with one RunItem per
// guest; the leader records a run before it starts it, in the same
// command that marks the policy's slot as handled, so no slot runs twice
// whichever server leads (see PolicyTickRequest).

// Table names of storage management.
const (
	tableStoragePolicies = "storage_policies"
	tableRunItems        = "run_items"
	tablePolicySnapshots = "policy_snapshots"
	tableBackups         = "backups"
	tableVolumes         = "volumes"
	tablePoolSettings    = "pool_settings"
	tableStorageSamples  = "storage_samples"
)

// Policy kinds.
const (
	PolicyKindSnapshot = "snapshot"
	PolicyKindBackup   = "backup"
)

// Operation kinds of storage management.
const (
	OpSnapshotRun   = "snapshot.run"
	OpBackupRun     = "backup.run"
	OpVolumeCreate  = "volume.create"
	OpVolumeResize  = "volume.resize"
	OpVolumeAttach  = "volume.attach"
	OpVolumeDetach  = "volume.detach"
	OpVolumeDelete  = "volume.delete"
	OpVolumeMove    = "volume.move"
	OpBackupRestore = "backup.restore"
)

// Run item states: an item is pending until the leader starts it, running
// from the moment before the platform is asked, and then succeeded or
// failed.
const (
	ItemPending   = OpPending
	ItemRunning   = OpRunning
	ItemSucceeded = OpSucceeded
	ItemFailed    = OpFailed
)

// StoragePolicy is a snapshot or backup policy: a schedule, the guests it
// applies to and the retention of what it makes.
type StoragePolicy struct {
	ID          string `json:"id"`
	Kind        string `json:"kind"` // snapshot or backup
	Description string `json:"description,omitempty"`
	// Schedule is a Proxmox calendar event, matched against the civil
	// time of Timezone.
	Schedule string `json:"schedule"`
	// Timezone is the IANA time zone the schedule is evaluated in (for
	// example Europe/Berlin); empty means UTC. The leader loads it; the
	// FSM only checks its form.
	Timezone string           `json:"timezone,omitempty"`
	Selector storage.Selector `json:"selector"`
	Keep     storage.Keep     `json:"keep"`
	Disabled bool             `json:"disabled,omitempty"`
	// RepeatMissed runs a policy once for the slots missed while no leader
	// ran it; without it a slot found more than a grace period late is
	// skipped.
	RepeatMissed bool `json:"repeat_missed,omitempty"`
	// Storage, Mode and Compress are where and how a backup policy backs
	// up: the target storage, vzdump mode (snapshot, suspend, stop) and
	// compression (0, gzip, lzo, zstd).
	Storage  string `json:"storage,omitempty"`
	Mode     string `json:"mode,omitempty"`
	Compress string `json:"compress,omitempty"`

	// LastSlot is the newest slot handled, run or skipped; ActiveRun the
	// run in progress, if any; LastRun the newest run. Skipped counts the
	// slots that did not run (missed without repeat-missed, or covered by
	// a catch-up run).
	LastSlot  Timestamp `json:"last_slot,omitzero"`
	ActiveRun string    `json:"active_run,omitempty"`
	LastRun   string    `json:"last_run,omitempty"`
	Skipped   int       `json:"skipped,omitempty"`

	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
}

// StorageGuest is the guest in the storage package's terms, for policy
// selection and the coverage report.
func (g *InvGuest) StorageGuest() storage.Guest {
	return storage.Guest{VMID: g.VMID, Name: g.Name, Node: g.Node, Kind: g.Kind, Tenant: g.Tenant, Status: g.Status, Tags: g.Tags, Template: g.Template}
}

// RunItem is one guest of a policy run.
type RunItem struct {
	// Key is the run ID and the zero-padded VMID, so a run's items sort
	// by VMID.
	Key    string `json:"-" codec:"Key"`
	RunID  string `json:"run"`
	VMID   int    `json:"vmid"`
	Node   string `json:"node"`
	Kind   string `json:"kind"` // qemu or lxc
	Status string `json:"status"`
	// Name is the snapshot's name (snapshot runs), or the backup's volume
	// once it is known (backup runs).
	Name     string    `json:"name,omitempty"`
	Task     string    `json:"task,omitempty"`
	TaskNode string    `json:"task_node,omitempty"`
	Error    string    `json:"error,omitempty"`
	Started  Timestamp `json:"started_at,omitzero"`
	Finished Timestamp `json:"finished_at,omitzero"`
	// Tenant and Project are the scope a snapshot item's snapshot counts
	// against, from the guest when the item started.
	Tenant  string `json:"tenant,omitempty" codec:",omitempty"`
	Project string `json:"project,omitempty" codec:",omitempty"`
}

func runItemKey(run string, vmid int) string { return fmt.Sprintf("%s/%010d", run, vmid) }

// PolicySnapshot is a snapshot a snapshot policy made and still keeps.
// Snapshots made by hand are not tracked and never pruned.
type PolicySnapshot struct {
	// ID is "<vmid>/<name>".
	ID        string    `json:"id"`
	VMID      int       `json:"vmid"`
	Name      string    `json:"name"`
	Policy    string    `json:"policy"`
	Run       string    `json:"run"`
	Time      Timestamp `json:"time"`
	Protected bool      `json:"protected,omitempty"`
	// Tenant and Project are the scope the snapshot counts against in the
	// snapshots quota.
	Tenant  string `json:"tenant,omitempty" codec:",omitempty"`
	Project string `json:"project,omitempty" codec:",omitempty"`
}

// SnapshotID is the ID of snapshot name of guest vmid.
func SnapshotID(vmid int, name string) string { return fmt.Sprintf("%d/%s", vmid, name) }

// Backup is one backup on a platform storage: seen there by a storage
// sync, or recorded by the policy run that made it.
type Backup struct {
	VolID string `json:"volid"`
	// StorageID is "<node>/<storage>" of the listing it came from.
	StorageID string    `json:"storage_id"`
	Node      string    `json:"node"`
	Storage   string    `json:"storage"`
	VMID      int       `json:"vmid"`
	Kind      string    `json:"kind,omitempty"` // qemu or lxc
	Time      Timestamp `json:"time"`
	Size      uint64    `json:"size"`
	Format    string    `json:"format,omitempty"`
	Notes     string    `json:"notes,omitempty"`
	// Policy and Run name the policy run that made it, from the run or its
	// notes; backups made otherwise have none and are never pruned.
	Policy string `json:"policy,omitempty"`
	Run    string `json:"run,omitempty"`
	// Protected is Moxxie's protection, set through the API;
	// PlatformProtected is the platform's own flag, as listed. Retention
	// removes neither kind.
	Protected         bool `json:"protected,omitempty"`
	PlatformProtected bool `json:"platform_protected,omitempty"`
	// Pending is set on a backup a run recorded that no sync has seen yet.
	Pending     bool   `json:"-" codec:",omitempty"`
	ModifyIndex uint64 `json:"modify_index"`
}

// Volume is one guest disk image on a platform storage.
type Volume struct {
	VolID       string `json:"volid"`
	StorageID   string `json:"storage_id"`
	Node        string `json:"node"`
	Storage     string `json:"storage"`
	VMID        int    `json:"vmid,omitempty"`
	Size        uint64 `json:"size"`
	Format      string `json:"format,omitempty"`
	Content     string `json:"content"` // images or rootdir
	ModifyIndex uint64 `json:"modify_index"`
}

// PoolSettings are an operator's thresholds for one storage, as fractions
// of its capacity.
type PoolSettings struct {
	Storage     string    `json:"storage"`
	Warn        float64   `json:"warn"`
	Critical    float64   `json:"critical"`
	UpdatedAt   Timestamp `json:"updated_at"`
	ModifyIndex uint64    `json:"modify_index"`
}

// Default pool thresholds.
const (
	DefaultPoolWarn     = 0.80
	DefaultPoolCritical = 0.90
)

// StorageSample is what one pool used at the start of an hour.
type StorageSample struct {
	// Key is the zero-padded hour and the pool, so samples sort by time.
	Key  string `json:"-" codec:"Key"`
	Pool string `json:"pool"`
	Hour int64  `json:"hour"` // unix milliseconds
	Used uint64 `json:"used"`
	Size uint64 `json:"size"`
}

// VolumeSpec is what a volume operation asks for.
type VolumeSpec struct {
	// Slot is the guest's disk slot (scsi1, virtio0, mp0, ...); a create
	// without one takes the next free scsi slot.
	Slot string `json:"slot,omitempty"`
	// VolID names the volume resized, attached, detached, deleted or moved.
	VolID string `json:"volid,omitempty"`
	// Storage is where a create allocates the disk or a move copies it.
	Storage string `json:"storage,omitempty"`
	// SizeGiB is a new disk's size, or a resize's new size.
	SizeGiB int `json:"size_gib,omitempty"`
	// DeleteSource removes the source volume after a move.
	DeleteSource bool `json:"delete_source,omitempty"`
	// Project is the guest's project when the operation was recorded.
	Project string `json:"project,omitempty"`
	// ReserveGiB is what the operation holds against the guest's tenant
	// and project quota while it runs, stamped by Apply.
	ReserveGiB int64 `json:"reserve_gib,omitempty"`
	// Result is the volume the operation made or moved the disk to.
	Result string `json:"result,omitempty"`
	// Archive is the backup a restore reads.
	Archive string `json:"archive,omitempty"`
}

// RunStats counts a run's items by state.
type RunStats struct {
	Total     int `json:"total"`
	Succeeded int `json:"succeeded"`
	Failed    int `json:"failed"`
	// Pruned counts the snapshots or backups retention removed.
	Pruned int `json:"pruned"`
}

// storageTables returns the storage part of the memdb schema.
func storageTables() map[string]*memdb.TableSchema {
	return map[string]*memdb.TableSchema{
		tableStoragePolicies: {Name: tableStoragePolicies, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
		}},
		tableRunItems: {Name: tableRunItems, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		}},
		tablePolicySnapshots: {Name: tablePolicySnapshots, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "ID"}},
			"policy_vmid": {Name: "policy_vmid", Indexer: &memdb.CompoundIndex{Indexes: []memdb.Indexer{
				&memdb.StringFieldIndex{Field: "Policy"},
				&memdb.IntFieldIndex{Field: "VMID"},
			}}},
		}},
		tableBackups: {Name: tableBackups, Indexes: map[string]*memdb.IndexSchema{
			"id":         {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "VolID"}},
			"storage_id": {Name: "storage_id", Indexer: &memdb.StringFieldIndex{Field: "StorageID"}},
			"vmid":       {Name: "vmid", Indexer: &memdb.IntFieldIndex{Field: "VMID"}},
		}},
		tableVolumes: {Name: tableVolumes, Indexes: map[string]*memdb.IndexSchema{
			"id":         {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "VolID"}},
			"storage_id": {Name: "storage_id", Indexer: &memdb.StringFieldIndex{Field: "StorageID"}},
			"vmid":       {Name: "vmid", Indexer: &memdb.IntFieldIndex{Field: "VMID"}},
		}},
		tablePoolSettings: {Name: tablePoolSettings, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Storage"}},
		}},
		tableStorageSamples: {Name: tableStorageSamples, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: &memdb.StringFieldIndex{Field: "Key"}},
		}},
	}
}
