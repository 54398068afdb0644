package fsm

import (
	"errors"
	"regexp"
	"slices"

	"github.com/moxxie/moxxie/storage"
)

// StoragePolicyPutRequest creates a policy (Create) or replaces one. A
// replace keeps the policy's kind and its run state.
type StoragePolicyPutRequest struct {
	WriteMeta
	Policy StoragePolicy
	Create bool
}

// StoragePolicyDeleteRequest deletes a policy that has no run in
// progress. What it made is kept, and no longer pruned.
type StoragePolicyDeleteRequest struct {
	WriteMeta
	ID string
}

// PolicyTickRequest marks Slot of a policy as handled: with Run, by
// recording that run (a pending operation with one item per guest); without
// it, as skipped. Apply refuses a slot not newer than the policy's last one,
// and a run while another of the policy is in progress: that refusal is
// what makes a slot run at most once across leaders.
type PolicyTickRequest struct {
	WriteMeta
	Policy string
	Slot   Timestamp
	// Missed counts the older slots this tick covers.
	Missed int
	Run    *Operation
	Items  []RunItem
}

// RunItemUpdateRequest records progress of one item of a run. Status moves
// forward only: pending, running, then succeeded or failed.
type RunItemUpdateRequest struct {
	WriteMeta
	Run    string
	VMID   int
	Status string
	// Name, Task, TaskNode and Error are set when not empty.
	Name     string
	Task     string
	TaskNode string
	Error    string
	// Backup is what a succeeded backup item made.
	Backup *Backup
}

// PruneRecordRequest records that retention removed snapshots (by ID) and
// backups (by volume) of a run's policy from the platform.
type PruneRecordRequest struct {
	WriteMeta
	Run       string
	Snapshots []string
	Backups   []string
}

// RecordProtectRequest protects a tracked snapshot or backup from pruning,
// or lifts the protection.
type RecordProtectRequest struct {
	WriteMeta
	Kind      string // snapshot or backup
	ID        string
	Protected bool
}

// StorageSyncRequest replaces the backups and volumes of the listed
// storages (StorageIDs, "<node>/<storage>") with what their listings
// hold now.
type StorageSyncRequest struct {
	WriteMeta
	StorageIDs []string
	Backups    []Backup
	Volumes    []Volume
}

// PoolSettingsPutRequest sets a storage's thresholds.
type PoolSettingsPutRequest struct {
	WriteMeta
	Settings PoolSettings
}

// Type returns StoragePolicyPutType.
func (*StoragePolicyPutRequest) Type() MessageType { return StoragePolicyPutType }

// Type returns StoragePolicyDeleteType.
func (*StoragePolicyDeleteRequest) Type() MessageType { return StoragePolicyDeleteType }

// Type returns PolicyTickType.
func (*PolicyTickRequest) Type() MessageType { return PolicyTickType }

// Type returns RunItemUpdateType.
func (*RunItemUpdateRequest) Type() MessageType { return RunItemUpdateType }

// Type returns PruneRecordType.
func (*PruneRecordRequest) Type() MessageType { return PruneRecordType }

// Type returns RecordProtectType.
func (*RecordProtectRequest) Type() MessageType { return RecordProtectType }

// Type returns StorageSyncType.
func (*StorageSyncRequest) Type() MessageType { return StorageSyncType }

// Type returns PoolSettingsPutType.
func (*PoolSettingsPutRequest) Type() MessageType { return PoolSettingsPutType }

var (
	// storageNameRe is Proxmox's storage ID rule.
	storageNameRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9\-_.]{1,99}$`)
	// volIDRe is a storage-qualified volume name.
	volIDRe = regexp.MustCompile(`^[a-zA-Z][a-zA-Z0-9\-_.]{1,99}:[^\s]{1,250}$`)
	// diskSlotRe names a guest disk slot.
	diskSlotRe = regexp.MustCompile(`^(ide[0-3]|sata[0-5]|scsi([0-9]|[1-2][0-9]|30)|virtio([0-9]|1[0-5])|mp([0-9]|[1-9][0-9]|2[0-4][0-9]|25[0-5])|rootfs|unused[0-9]{1,3})$`)
)

// ValidStorageName reports whether s is a Proxmox storage ID.
func ValidStorageName(s string) bool { return storageNameRe.MatchString(s) }

// ValidVolID reports whether s is a storage-qualified volume ID.
func ValidVolID(s string) bool { return volIDRe.MatchString(s) }

// ValidDiskSlot reports whether s names a guest disk slot.
func ValidDiskSlot(s string) bool { return diskSlotRe.MatchString(s) }

// MaxDiskGiB bounds the size of one disk.
const MaxDiskGiB = 1 << 20

// Validate checks the policy.
func (r *StoragePolicyPutRequest) Validate() error {
	p := &r.Policy
	if err := storage.ValidPolicyID(p.ID); err != nil {
		return fieldErrf("id", ErrInvalid, "%v", err)
	}
	if p.Kind != PolicyKindSnapshot && p.Kind != PolicyKindBackup {
		return fieldErrf("kind", ErrInvalid, "kind %q is not snapshot or backup", p.Kind)
	}
	if len(p.Description) > 1024 {
		return fieldErrf("description", ErrInvalid, "description is longer than 1024 bytes")
	}
	if _, err := storage.ParseCalendar(p.Schedule); err != nil {
		return fieldErrf("schedule", ErrInvalid, "%v", err)
	}
	if err := storage.ValidZoneName(p.Timezone); err != nil {
		return fieldErrf("timezone", ErrInvalid, "%v", err)
	}
	if err := p.Selector.Validate(); err != nil {
		var fe *storage.FieldError
		if errors.As(err, &fe) {
			return fieldErrf(fe.Field, ErrInvalid, "%s", fe.Message)
		}
		return fieldErrf("selector", ErrInvalid, "%v", err)
	}
	if err := p.Keep.Validate(); err != nil {
		return fieldErrf("keep", ErrInvalid, "%v", err)
	}
	switch p.Kind {
	case PolicyKindSnapshot:
		if p.Storage != "" || p.Mode != "" || p.Compress != "" {
			return fieldErrf("storage", ErrInvalid, "a snapshot policy has no storage, mode or compression")
		}
	case PolicyKindBackup:
		if !ValidStorageName(p.Storage) {
			return fieldErrf("storage", ErrInvalid, "a backup policy needs a target storage (a Proxmox storage ID), not %q", p.Storage)
		}
		if !slices.Contains([]string{"snapshot", "suspend", "stop"}, p.Mode) {
			return fieldErrf("mode", ErrInvalid, "mode %q is not snapshot, suspend or stop", p.Mode)
		}
		if !slices.Contains([]string{"", "0", "gzip", "lzo", "zstd"}, p.Compress) {
			return fieldErrf("compress", ErrInvalid, "compress %q is not 0, gzip, lzo or zstd", p.Compress)
		}
	}
	return nil
}

// Validate checks the tick.
func (r *PolicyTickRequest) Validate() error {
	if r.Slot <= 0 {
		return fieldErrf("slot", ErrInvalid, "a tick needs its slot")
	}
	if r.Missed < 0 {
		return fieldErrf("missed", ErrInvalid, "missed must not be negative")
	}
	if r.Run == nil {
		if len(r.Items) > 0 {
			return fieldErrf("items", ErrInvalid, "a skipped slot has no items")
		}
		return nil
	}
	if r.Run.ID == "" {
		return fieldErrf("id", ErrInvalid, "operation id is required")
	}
	seen := map[int]bool{}
	for _, it := range r.Items {
		if it.VMID < MinVMID || it.VMID > MaxVMID || seen[it.VMID] {
			return fieldErrf("items", ErrInvalid, "vmid %d is invalid or listed twice", it.VMID)
		}
		seen[it.VMID] = true
	}
	return nil
}

// Validate checks the update.
func (r *RunItemUpdateRequest) Validate() error {
	switch r.Status {
	case ItemRunning, ItemSucceeded:
	case ItemFailed:
		if r.Error == "" {
			return fieldErrf("error", ErrInvalid, "a failed item needs an error")
		}
	default:
		return fieldErrf("status", ErrInvalid, "status %q cannot be set", r.Status)
	}
	return nil
}

// Validate checks the request.
func (r *RecordProtectRequest) Validate() error {
	if r.Kind != PolicyKindSnapshot && r.Kind != PolicyKindBackup {
		return fieldErrf("kind", ErrInvalid, "kind %q is not snapshot or backup", r.Kind)
	}
	return nil
}

// Validate checks the thresholds.
func (r *PoolSettingsPutRequest) Validate() error {
	s := &r.Settings
	if !ValidStorageName(s.Storage) {
		return fieldErrf("storage", ErrInvalid, "%q is not a storage ID", s.Storage)
	}
	if !(s.Warn > 0 && s.Warn <= 1) {
		return fieldErrf("warn", ErrInvalid, "warn must be a fraction in (0, 1]")
	}
	if !(s.Critical > 0 && s.Critical <= 1) {
		return fieldErrf("critical", ErrInvalid, "critical must be a fraction in (0, 1]")
	}
	if s.Warn > s.Critical {
		return fieldErrf("warn", ErrInvalid, "warn %.2f is above critical %.2f", s.Warn, s.Critical)
	}
	return nil
}

// validateVolume checks the volume spec of a volume operation.
func validateVolume(kind string, v *VolumeSpec) error {
	if v == nil {
		return fieldErrf("volume", ErrInvalid, "%s needs a volume", kind)
	}
	if v.Slot != "" && !ValidDiskSlot(v.Slot) {
		return fieldErrf("slot", ErrInvalid, "%q is not a disk slot (scsi0-30, virtio0-15, sata0-5, ide0-3, mp0-255, rootfs)", v.Slot)
	}
	needVol := kind != OpVolumeCreate && kind != OpBackupRestore
	if needVol && !ValidVolID(v.VolID) {
		return fieldErrf("volid", ErrInvalid, "%q is not a volume ID (storage:name)", v.VolID)
	}
	switch kind {
	case OpVolumeCreate:
		if !ValidStorageName(v.Storage) {
			return fieldErrf("storage", ErrInvalid, "%q is not a storage ID", v.Storage)
		}
		if v.SizeGiB < 1 || v.SizeGiB > MaxDiskGiB {
			return fieldErrf("size_gib", ErrInvalid, "size_gib must be 1-%d", MaxDiskGiB)
		}
	case OpVolumeResize:
		if v.SizeGiB < 1 || v.SizeGiB > MaxDiskGiB {
			return fieldErrf("size_gib", ErrInvalid, "size_gib must be 1-%d", MaxDiskGiB)
		}
	case OpVolumeAttach:
		if v.Slot == "" {
			return fieldErrf("slot", ErrInvalid, "attach needs a slot")
		}
	case OpVolumeMove:
		if !ValidStorageName(v.Storage) {
			return fieldErrf("storage", ErrInvalid, "%q is not a storage ID", v.Storage)
		}
	case OpBackupRestore:
		if !ValidVolID(v.Archive) {
			return fieldErrf("archive", ErrInvalid, "%q is not a backup volume ID", v.Archive)
		}
		if v.Storage != "" && !ValidStorageName(v.Storage) {
			return fieldErrf("storage", ErrInvalid, "%q is not a storage ID", v.Storage)
		}
	}
	return nil
}
