package node

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/provider"
)

// Volume operations change one disk of one guest. Each looks at the
// guest's disks first and does nothing when the disk is already as asked,
// so a new leader can run an interrupted one again; a create records the
// slot it chose before it asks the platform, and finds its disk there.

// diskKeptError is a move that failed with the guest still on its
// original disk.
type diskKeptError struct {
	err   error
	volid string
}

func (e *diskKeptError) Error() string {
	return fmt.Sprintf("%v; the guest still uses its original disk %s, which is unchanged", e.err, e.volid)
}

func (e *diskKeptError) Unwrap() error { return e.err }

// volume runs a volume operation, then waits until the storage sync has
// seen its effect, so disk usage and the volume list are current when it
// ends.
func (o *opState) volume() error {
	ctx, cancel := o.ctx()
	defer cancel()
	ref, err := o.guestRef()
	if err != nil {
		return err
	}
	disks, err := o.r.p.Disks(ctx, ref)
	if err != nil {
		return err
	}
	v := o.op.Volume
	switch o.op.Kind {
	case fsm.OpVolumeCreate:
		err = o.volumeCreate(ctx, ref, disks)
	case fsm.OpVolumeResize:
		err = o.volumeResize(ctx, ref, disks)
	case fsm.OpVolumeAttach:
		err = o.volumeAttach(ctx, ref, disks)
	case fsm.OpVolumeDetach:
		d, ok := diskOf(disks, v.VolID)
		switch {
		case !ok:
			err = fmt.Errorf("guest %d has no disk %s: %w", ref.VMID, v.VolID, fsm.ErrNotFound)
		case !d.Unused():
			_ = o.step("detaching " + d.Slot)
			t, derr := o.r.p.DetachDisk(ctx, ref, d.Slot)
			err = o.wait(t, derr)
		}
	case fsm.OpVolumeDelete:
		err = o.volumeDelete(ctx, ref, disks)
	case fsm.OpVolumeMove:
		err = o.volumeMove(ctx, ref, disks)
	}
	if err != nil {
		return err
	}
	_ = o.step("waiting for the storage sync")
	o.r.s.awaitStorageSync(ctx)
	return nil
}

// diskOf finds the disk holding volid.
func diskOf(disks []provider.Disk, volid string) (provider.Disk, bool) {
	i := slices.IndexFunc(disks, func(d provider.Disk) bool { return d.VolID == volid })
	if i < 0 {
		return provider.Disk{}, false
	}
	return disks[i], true
}

// slotOf finds the disk at slot.
func slotOf(disks []provider.Disk, slot string) (provider.Disk, bool) {
	i := slices.IndexFunc(disks, func(d provider.Disk) bool { return d.Slot == slot })
	if i < 0 {
		return provider.Disk{}, false
	}
	return disks[i], true
}

// freeSlot returns the first scsi slot (mp slot for a container) no disk
// uses.
func freeSlot(disks []provider.Disk, kind provider.GuestKind) (string, error) {
	prefix, limit := "scsi", 31
	if kind == provider.KindContainer {
		prefix, limit = "mp", 256
	}
	for i := range limit {
		slot := fmt.Sprintf("%s%d", prefix, i)
		if _, used := slotOf(disks, slot); !used {
			return slot, nil
		}
	}
	return "", fmt.Errorf("guest has no free %s slot: %w", prefix, fsm.ErrConflict)
}

func (o *opState) volumeCreate(ctx context.Context, ref provider.GuestRef, disks []provider.Disk) error {
	v := o.op.Volume
	slot := v.Slot
	if slot == "" {
		s, err := freeSlot(disks, ref.Kind)
		if err != nil {
			return err
		}
		slot = s
		if err := o.update(&fsm.OperationUpdateRequest{VolumeSlot: &slot}); err != nil {
			return err
		}
	}
	if d, used := slotOf(disks, slot); used {
		// An earlier leader's create may have made it: the disk at the
		// slot on the storage asked for is that one.
		if d.Storage != v.Storage || o.op.Volume.Result == "" && !o.madeBefore(d) {
			return &fsm.FieldError{Field: "slot", Err: fmt.Errorf("%w: slot %s of guest %d holds %s", fsm.ErrConflict, slot, ref.VMID, d.VolID)}
		}
	} else {
		_ = o.step(fmt.Sprintf("adding a %d GiB disk at %s on %s", v.SizeGiB, slot, v.Storage))
		t, err := o.r.p.AddDisk(ctx, ref, slot, v.Storage, v.SizeGiB)
		if err := o.wait(t, err); err != nil {
			return err
		}
	}
	return o.recordResult(ctx, ref, slot)
}

// madeBefore reports whether d is a disk this create made on an earlier
// attempt: it had recorded its slot, and the disk is not in the volume
// list the operation started from.
func (o *opState) madeBefore(d provider.Disk) bool {
	if o.op.Volume.Slot == "" {
		return false
	}
	_, known, err := o.r.s.State().Volume(nil, d.VolID)
	return err == nil && (known == nil || known.ModifyIndex > o.op.CreateIndex)
}

// recordResult records the volume now at slot as the operation's result.
func (o *opState) recordResult(ctx context.Context, ref provider.GuestRef, slot string) error {
	disks, err := o.r.p.Disks(ctx, ref)
	if err != nil {
		return err
	}
	d, ok := slotOf(disks, slot)
	if !ok {
		return fmt.Errorf("guest %d has no disk at %s after the change", ref.VMID, slot)
	}
	return o.update(&fsm.OperationUpdateRequest{VolumeResult: &d.VolID})
}

func (o *opState) volumeResize(ctx context.Context, ref provider.GuestRef, disks []provider.Disk) error {
	v := o.op.Volume
	d, ok := diskOf(disks, v.VolID)
	if !ok {
		return fmt.Errorf("guest %d has no disk %s: %w", ref.VMID, v.VolID, fsm.ErrNotFound)
	}
	if d.Unused() {
		return &fsm.FieldError{Field: "volid", Err: fmt.Errorf("%w: %s is detached (%s); attach it to resize it", fsm.ErrInvalid, v.VolID, d.Slot)}
	}
	if d.Size >= uint64(v.SizeGiB)<<30 {
		return nil
	}
	_ = o.step(fmt.Sprintf("resizing %s to %d GiB", d.Slot, v.SizeGiB))
	t, err := o.r.p.ResizeDisk(ctx, ref, d.Slot, v.SizeGiB)
	return o.wait(t, err)
}

func (o *opState) volumeAttach(ctx context.Context, ref provider.GuestRef, disks []provider.Disk) error {
	v := o.op.Volume
	d, ok := diskOf(disks, v.VolID)
	switch {
	case !ok:
		return fmt.Errorf("guest %d has no disk %s: %w", ref.VMID, v.VolID, fsm.ErrNotFound)
	case d.Slot == v.Slot:
		return nil
	case !d.Unused():
		return &fsm.FieldError{Field: "volid", Err: fmt.Errorf("%w: %s is attached at %s already", fsm.ErrConflict, v.VolID, d.Slot)}
	}
	if other, used := slotOf(disks, v.Slot); used {
		return &fsm.FieldError{Field: "slot", Err: fmt.Errorf("%w: slot %s holds %s", fsm.ErrConflict, v.Slot, other.VolID)}
	}
	_ = o.step("attaching at " + v.Slot)
	t, err := o.r.p.AttachDisk(ctx, ref, v.Slot, v.VolID)
	return o.wait(t, err)
}

// volumeDelete detaches a disk, then destroys it.
func (o *opState) volumeDelete(ctx context.Context, ref provider.GuestRef, disks []provider.Disk) error {
	v := o.op.Volume
	d, ok := diskOf(disks, v.VolID)
	if !ok {
		// Gone from the guest: remove it from its storage if it is there.
		_, known, err := o.r.s.State().Volume(nil, v.VolID)
		if err != nil || known == nil {
			return err
		}
		t, err := o.r.p.DeleteVolume(ctx, known.Node, v.VolID)
		if errors.Is(err, provider.ErrNotFound) {
			return nil
		}
		return o.wait(t, err)
	}
	if !d.Unused() {
		_ = o.step("detaching " + d.Slot)
		t, err := o.r.p.DetachDisk(ctx, ref, d.Slot)
		if err := o.wait(t, err); err != nil {
			return err
		}
		disks, err := o.r.p.Disks(ctx, ref)
		if err != nil {
			return err
		}
		if d, ok = diskOf(disks, v.VolID); !ok {
			return nil
		}
	}
	_ = o.step("destroying " + v.VolID)
	t, err := o.r.p.DetachDisk(ctx, ref, d.Slot)
	return o.wait(t, err)
}

// volumeMove copies a disk to another storage and switches the guest to
// the copy. When the copy fails the platform leaves the guest on its
// original disk; the operation checks that it does and says so.
func (o *opState) volumeMove(ctx context.Context, ref provider.GuestRef, disks []provider.Disk) error {
	v := o.op.Volume
	d, ok := diskOf(disks, v.VolID)
	if !ok {
		if v.Slot != "" {
			// Moved by an earlier attempt: the slot holds the copy.
			if moved, ok := slotOf(disks, v.Slot); ok && moved.Storage == v.Storage {
				return o.recordResult(ctx, ref, v.Slot)
			}
		}
		return fmt.Errorf("guest %d has no disk %s: %w", ref.VMID, v.VolID, fsm.ErrNotFound)
	}
	if d.Unused() {
		return &fsm.FieldError{Field: "volid", Err: fmt.Errorf("%w: %s is detached (%s); only attached disks move", fsm.ErrInvalid, v.VolID, d.Slot)}
	}
	slot := d.Slot
	if err := o.update(&fsm.OperationUpdateRequest{VolumeSlot: &slot}); err != nil {
		return err
	}
	live := ""
	if g, err := o.r.p.Guest(ctx, ref); err == nil && g.Status == "running" {
		live = " (live)"
	}
	_ = o.step(fmt.Sprintf("moving %s to %s%s", slot, v.Storage, live))
	t, err := o.r.p.MoveDisk(ctx, ref, slot, v.Storage, v.DeleteSource)
	if err := o.wait(t, err); err != nil {
		after, rerr := o.r.p.Disks(ctx, ref)
		if rerr != nil {
			return fmt.Errorf("%w; reading the guest's disks afterwards failed, check slot %s by hand: %v", err, slot, rerr)
		}
		if cur, ok := slotOf(after, slot); ok && cur.VolID == v.VolID {
			if o.op.Progress != "" {
				err = fmt.Errorf("%w (last progress: %s)", err, o.op.Progress)
			}
			return &diskKeptError{err: err, volid: v.VolID}
		}
		return fmt.Errorf("%w; slot %s no longer holds %s, check the guest by hand", err, slot, v.VolID)
	}
	return o.recordResult(ctx, ref, slot)
}

// restore creates a guest from a backup. A guest already there with the
// operation's VMID is refused, so a restore never overwrites a guest.
func (o *opState) restore() error {
	ctx, cancel := o.ctx()
	defer cancel()
	v := o.op.Volume
	_, b, err := o.r.s.State().Backup(nil, v.Archive)
	if err != nil {
		return err
	}
	if b == nil {
		return &fsm.FieldError{Field: "archive", Err: fmt.Errorf("%w: backup %s", fsm.ErrNotFound, v.Archive)}
	}
	node := o.op.Node
	if node == "" {
		node = b.Node
	}
	kind := provider.GuestKind(b.Kind)
	if kind == "" {
		kind = provider.KindVM
	}
	ref := provider.GuestRef{Node: node, VMID: o.op.VMID, Kind: kind}
	if o.op.Task != "" {
		// An earlier leader started the restore: follow it.
		return o.wait(provider.Task{ID: o.op.Task, Node: o.op.TaskNode}, nil)
	}
	if _, err := o.r.p.Guest(ctx, ref); err == nil {
		return &fsm.FieldError{Field: "vmid", Err: fmt.Errorf("%w: guest %d exists; a restore does not overwrite a guest", fsm.ErrConflict, ref.VMID)}
	} else if !errors.Is(err, provider.ErrNotFound) {
		return err
	}
	_ = o.step("restoring " + v.Archive + " to " + strings.TrimSpace(fmt.Sprintf("%s %d", node, ref.VMID)))
	t, err := o.r.p.RestoreBackup(ctx, ref, v.Archive, v.Storage)
	if err := o.wait(t, err); err != nil {
		// Proxmox leaves a VM without disks behind a failed restore.
		if _, gerr := o.r.p.Guest(ctx, ref); gerr != nil {
			return err
		}
		_ = o.step("removing the half-restored guest")
		dt, derr := o.r.p.DeleteGuest(ctx, ref)
		if derr = o.wait(dt, derr); derr != nil {
			return fmt.Errorf("%w; removing the half-restored guest %d failed, delete it by hand: %v", err, ref.VMID, derr)
		}
		return fmt.Errorf("%w; the half-restored guest %d was removed", err, ref.VMID)
	}
	o.r.s.kickSync()
	o.awaitInventory()
	return nil
}
