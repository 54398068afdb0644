package proxmox

import (
	"context"
	"errors"
	"math"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/pvesim"
)

func TestDisksOf(t *testing.T) {
	cases := []struct {
		name string
		kind provider.GuestKind
		cfg  map[string]string
		want []provider.Disk
	}{
		{"vm", provider.KindVM, map[string]string{
			"scsi0":     "local-lvm:vm-100-disk-0,iothread=1,size=32G",
			"scsi10":    "local-lvm:vm-100-disk-2,size=1.5G",
			"scsi2":     "nfs-shared:100/vm-100-disk-1.qcow2,size=512M",
			"virtio1":   "file=local-lvm:vm-100-disk-3,size=1T",
			"efidisk0":  "local-lvm:vm-100-disk-4,efitype=4m,size=4M",
			"unused0":   "local-lvm:vm-100-disk-5",
			"ide0":      "none,media=cdrom",
			"ide1":      "local:iso/debian.iso,media=cdrom,size=631M",
			"ide2":      "local-lvm:vm-100-cloudinit,media=cdrom",
			"sata0":     "/dev/disk/by-id/ata-disk1,size=100G",
			"net0":      "virtio=BC:24:11:00:00:01,bridge=vmbr0",
			"scsihw":    "virtio-scsi-single",
			"scsi":      "local-lvm:vm-100-disk-9",
			"virtio01":  "local-lvm:vm-100-disk-8",
			"tpmstate0": "local-lvm:vm-100-disk-6,size=4M,version=v2.0",
		}, []provider.Disk{
			{Slot: "efidisk0", VolID: "local-lvm:vm-100-disk-4", Storage: "local-lvm", Size: 4 << 20},
			{Slot: "scsi0", VolID: "local-lvm:vm-100-disk-0", Storage: "local-lvm", Size: 32 << 30},
			{Slot: "scsi2", VolID: "nfs-shared:100/vm-100-disk-1.qcow2", Storage: "nfs-shared", Size: 512 << 20},
			{Slot: "scsi10", VolID: "local-lvm:vm-100-disk-2", Storage: "local-lvm", Size: 3 << 29},
			{Slot: "tpmstate0", VolID: "local-lvm:vm-100-disk-6", Storage: "local-lvm", Size: 4 << 20},
			{Slot: "unused0", VolID: "local-lvm:vm-100-disk-5", Storage: "local-lvm"},
			{Slot: "virtio1", VolID: "local-lvm:vm-100-disk-3", Storage: "local-lvm", Size: 1 << 40},
		}},
		{"container", provider.KindContainer, map[string]string{
			"rootfs":  "local-lvm:vm-200-disk-0,size=8G",
			"mp0":     "local-lvm:vm-200-disk-1,mp=/srv,backup=1,size=2G",
			"mp1":     "/mnt/host,mp=/data",
			"unused1": "local-lvm:vm-200-disk-2",
			"scsi0":   "local-lvm:vm-200-disk-3",
		}, []provider.Disk{
			{Slot: "mp0", VolID: "local-lvm:vm-200-disk-1", Storage: "local-lvm", Size: 2 << 30},
			{Slot: "rootfs", VolID: "local-lvm:vm-200-disk-0", Storage: "local-lvm", Size: 8 << 30},
			{Slot: "unused1", VolID: "local-lvm:vm-200-disk-2", Storage: "local-lvm"},
		}},
		{"none", provider.KindVM, map[string]string{"name": "x"}, []provider.Disk{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := disksOf(tc.kind, tc.cfg); !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("disks\n got: %+v\nwant: %+v", got, tc.want)
			}
		})
	}
}

// disksBySlot lists a guest's disks by slot.
func disksBySlot(t *testing.T, p *Provider, ref provider.GuestRef) map[string]provider.Disk {
	t.Helper()
	ds, err := p.Disks(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]provider.Disk{}
	for _, d := range ds {
		out[d.Slot] = d
	}
	return out
}

// hasVolume reports whether a storage on a node lists volid.
func hasVolume(t *testing.T, p *Provider, node, volid string) bool {
	t.Helper()
	storage, _, _ := strings.Cut(volid, ":")
	cs, err := p.StorageContent(context.Background(), node, storage, "")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.VolID == volid {
			return true
		}
	}
	return false
}

func TestSim_DiskLifecycle(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	wait := e.waitFor(t)
	for _, ref := range []provider.GuestRef{vm("pve1", 103), ct("pve2", 201)} {
		t.Run(string(ref.Kind), func(t *testing.T) {
			root, extra := "scsi0", "scsi1"
			if ref.Kind == provider.KindContainer {
				root, extra = "rootfs", "mp0"
			}
			ds := disksBySlot(t, e.p, ref)
			if len(ds) != 1 || ds[root].Storage != "local-lvm" || ds[root].Size == 0 {
				t.Fatalf("disks of a fresh guest: %+v", ds)
			}
			wait(e.p.AddDisk(ctx, ref, extra, "local-lvm", 4))
			added := disksBySlot(t, e.p, ref)[extra]
			if added.Size != 4<<30 || added.Storage != "local-lvm" {
				t.Fatalf("added disk %+v", added)
			}
			if _, err := e.p.AddDisk(ctx, ref, extra, "local-lvm", 4); !errors.Is(err, provider.ErrRejected) {
				t.Fatalf("adding at a used slot: %v", err)
			}
			wait(e.p.ResizeDisk(ctx, ref, extra, 6))
			wait(e.p.ResizeDisk(ctx, ref, extra, 6))
			if d := disksBySlot(t, e.p, ref)[extra]; d.Size != 6<<30 {
				t.Fatalf("after resizing to 6 GiB twice: %+v", d)
			}
			task, err := e.p.ResizeDisk(ctx, ref, extra, 2)
			if err == nil {
				_, err = e.p.WaitTask(ctx, task, nil)
			}
			if want := map[provider.GuestKind]error{provider.KindVM: provider.ErrTaskFailed, provider.KindContainer: provider.ErrRejected}[ref.Kind]; !errors.Is(err, want) || !strings.Contains(err.Error(), "shrink") {
				t.Fatalf("shrinking: %v, want %v", err, want)
			}
			wait(e.p.DetachDisk(ctx, ref, extra))
			ds = disksBySlot(t, e.p, ref)
			if _, ok := ds[extra]; ok || ds["unused0"].VolID != added.VolID || !ds["unused0"].Unused() {
				t.Fatalf("after detaching: %+v", ds)
			}
			again := map[provider.GuestKind]string{provider.KindVM: "virtio3", provider.KindContainer: "mp4"}[ref.Kind]
			wait(e.p.AttachDisk(ctx, ref, again, added.VolID))
			ds = disksBySlot(t, e.p, ref)
			if _, ok := ds["unused0"]; ok || ds[again].VolID != added.VolID || ds[again].Size != 6<<30 {
				t.Fatalf("after attaching at %s: %+v", again, ds)
			}
			wait(e.p.DetachDisk(ctx, ref, again))
			wait(e.p.DetachDisk(ctx, ref, "unused0"))
			if ds := disksBySlot(t, e.p, ref); len(ds) != 1 || hasVolume(t, e.p, ref.Node, added.VolID) {
				t.Fatalf("after destroying the detached disk: %+v", ds)
			}
		})
	}
}

func TestSim_DiskRefusedBeforeSending(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	before := e.sim.Requests()
	cases := []struct {
		name string
		call func() (provider.Task, error)
	}{
		{"add at a NIC", func() (provider.Task, error) { return e.p.AddDisk(ctx, vm("pve1", 103), "net1", "local-lvm", 4) }},
		{"add at unused", func() (provider.Task, error) { return e.p.AddDisk(ctx, vm("pve1", 103), "unused0", "local-lvm", 4) }},
		{"add a root disk to a container", func() (provider.Task, error) { return e.p.AddDisk(ctx, ct("pve2", 201), "rootfs", "local-lvm", 4) }},
		{"add nothing", func() (provider.Task, error) { return e.p.AddDisk(ctx, vm("pve1", 103), "scsi1", "local-lvm", 0) }},
		{"add without storage", func() (provider.Task, error) { return e.p.AddDisk(ctx, vm("pve1", 103), "scsi1", "", 4) }},
		{"attach no volume", func() (provider.Task, error) { return e.p.AttachDisk(ctx, vm("pve1", 103), "scsi1", "vm-103-disk-1") }},
		{"detach a container's root", func() (provider.Task, error) { return e.p.DetachDisk(ctx, ct("pve2", 201), "rootfs") }},
		{"resize unused", func() (provider.Task, error) { return e.p.ResizeDisk(ctx, vm("pve1", 103), "unused0", 40) }},
		{"move without storage", func() (provider.Task, error) { return e.p.MoveDisk(ctx, vm("pve1", 103), "scsi0", "", true) }},
		{"move a NIC", func() (provider.Task, error) { return e.p.MoveDisk(ctx, vm("pve1", 103), "net0", "nfs-shared", true) }},
		{"delete no volume", func() (provider.Task, error) { return e.p.DeleteVolume(ctx, "pve1", "backup/x.vma") }},
		{"delete without node", func() (provider.Task, error) { return e.p.DeleteVolume(ctx, "", "local:backup/x.vma") }},
		{"restore no volume", func() (provider.Task, error) { return e.p.RestoreBackup(ctx, vm("pve1", 950), "x", "") }},
		{"restore a container anywhere", func() (provider.Task, error) {
			return e.p.RestoreBackup(ctx, ct("pve1", 950), "local:backup/vzdump-lxc-200-2025_01_01-00_00_00.tar.zst", "")
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := tc.call(); !errors.Is(err, provider.ErrRejected) {
				t.Fatalf("error %v, want ErrRejected", err)
			}
		})
	}
	if n := e.sim.Requests() - before; n != 0 {
		t.Fatalf("%d requests for calls refused before sending", n)
	}
}

func TestSim_MoveDisk(t *testing.T) {
	cases := []struct {
		name         string
		ref          provider.GuestRef
		slot         string
		deleteSource bool
		failAt       map[string]int
		wantErr      error
		exit         string // in the error
		storage      string // of the slot afterwards
		unused       bool
	}{
		{"running vm, keep source", vm("pve1", 100), "scsi0", false, nil, nil, "", "nfs-shared", true},
		{"stopped vm, delete source", vm("pve1", 103), "scsi0", true, nil, nil, "", "nfs-shared", false},
		{"vm on the target already", vm("pve1", 9001), "scsi0", true, nil, nil, "", "nfs-shared", false},
		{"container", ct("pve2", 201), "rootfs", true, nil, nil, "", "nfs-shared", false},
		{"vm fails half-way", vm("pve1", 100), "scsi0", true, map[string]int{"qmmove": 50}, provider.ErrTaskFailed,
			"storage migration failed: block job (mirror) error", "local-lvm", false},
		{"container fails half-way", ct("pve2", 201), "rootfs", true, map[string]int{"move_volume": 50}, provider.ErrTaskFailed,
			"failed: exit code 11", "local-lvm", false},
		{"running container", ct("pve1", 200), "rootfs", true, nil, provider.ErrRejected,
			"cannot move volumes of a running container", "local-lvm", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newSimEnv(t, nil)
			e.sim.SetFaults(pvesim.Faults{FailTasksAt: tc.failAt})
			ctx := context.Background()
			src := disksBySlot(t, e.p, tc.ref)[tc.slot]
			task, err := e.p.MoveDisk(ctx, tc.ref, tc.slot, "nfs-shared", tc.deleteSource)
			if err == nil {
				_, err = e.p.WaitTask(ctx, task, nil)
			}
			if !errors.Is(err, tc.wantErr) && (err != nil || tc.wantErr != nil) || err != nil && !strings.Contains(err.Error(), tc.exit) {
				t.Fatalf("move: %v, want %v with %q", err, tc.wantErr, tc.exit)
			}
			ds := disksBySlot(t, e.p, tc.ref)
			if ds[tc.slot].Storage != tc.storage {
				t.Fatalf("%s on %s after the move, want %s", tc.slot, ds[tc.slot].Storage, tc.storage)
			}
			if u, ok := ds["unused0"]; ok != tc.unused || ok && u.VolID != src.VolID {
				t.Fatalf("unused0 = %+v, want the source: %v", u, tc.unused)
			}
			if moved := ds[tc.slot].VolID != src.VolID; hasVolume(t, e.p, tc.ref.Node, src.VolID) != (!moved || tc.unused) {
				t.Fatalf("source volume %s present: %v, moved: %v", src.VolID, !moved || tc.unused, moved)
			}
		})
	}
}

func TestSim_BackupDeleteRestore(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	wait := e.waitFor(t)
	wait(e.p.Backup(ctx, vm("pve1", 103), provider.BackupSpec{Storage: "local", Compress: "zstd", Notes: "{{guestname}} nightly"}))
	// A protected backup: BackupSpec has no flag for it, vzdump has.
	var upid string
	if err := e.p.client.Post(ctx, "/nodes/pve1/vzdump", map[string]any{"vmid": "200", "storage": "local", "protected": 1}, &upid); err != nil {
		t.Fatal(err)
	}
	wait(taskOf(upid, "pve1"), nil)
	backups, err := e.p.StorageContent(ctx, "pve1", "local", "backup")
	if err != nil {
		t.Fatal(err)
	}
	byVMID := map[int]provider.Content{}
	for _, b := range backups {
		byVMID[b.VMID] = b
	}
	vmb, ctb := byVMID[103], byVMID[200]
	if len(backups) != 2 || vmb.Notes != "build-01 nightly" || vmb.Protected || !ctb.Protected || vmb.Size == 0 || vmb.Created.IsZero() {
		t.Fatalf("backups %+v", backups)
	}

	cases := []struct {
		name    string
		call    func() (provider.Task, error)
		wantErr error
		check   func(t *testing.T)
	}{
		{"restore a vm", func() (provider.Task, error) { return e.p.RestoreBackup(ctx, vm("pve1", 910), vmb.VolID, "nfs-shared") }, nil,
			func(t *testing.T) {
				if d := disksBySlot(t, e.p, vm("pve1", 910))["scsi0"]; d.Storage != "nfs-shared" || d.Size != 32<<30 {
					t.Fatalf("restored disk %+v", d)
				}
				g, err := e.p.Guest(ctx, vm("pve1", 910))
				if err != nil || g.Name != "build-01" || g.Lock != "" {
					t.Fatalf("restored guest %+v %v", g, err)
				}
			}},
		{"restore a vm to its storages", func() (provider.Task, error) { return e.p.RestoreBackup(ctx, vm("pve1", 911), vmb.VolID, "") }, nil,
			func(t *testing.T) {
				if d := disksBySlot(t, e.p, vm("pve1", 911))["scsi0"]; d.VolID != "local-lvm:vm-911-disk-0" {
					t.Fatalf("restored disk %+v", d)
				}
			}},
		{"restore over an existing guest", func() (provider.Task, error) { return e.p.RestoreBackup(ctx, vm("pve1", 103), vmb.VolID, "") },
			provider.ErrRejected, nil},
		{"restore a container", func() (provider.Task, error) {
			return e.p.RestoreBackup(ctx, ct("pve1", 912), ctb.VolID, "local-lvm")
		}, nil, func(t *testing.T) {
			if d := disksBySlot(t, e.p, ct("pve1", 912))["rootfs"]; d.VolID != "local-lvm:vm-912-disk-0" {
				t.Fatalf("restored disk %+v", d)
			}
		}},
		{"delete a protected backup", func() (provider.Task, error) { return e.p.DeleteVolume(ctx, "pve1", ctb.VolID) }, provider.ErrTaskFailed,
			func(t *testing.T) {
				if !hasVolume(t, e.p, "pve1", ctb.VolID) {
					t.Fatal("the protected backup is gone")
				}
			}},
		{"delete a backup", func() (provider.Task, error) { return e.p.DeleteVolume(ctx, "pve1", vmb.VolID) }, nil,
			func(t *testing.T) {
				if hasVolume(t, e.p, "pve1", vmb.VolID) {
					t.Fatal("the backup is still there")
				}
			}},
		{"delete a disk in use", func() (provider.Task, error) { return e.p.DeleteVolume(ctx, "pve1", "local-lvm:vm-103-disk-0") },
			provider.ErrTaskFailed, nil},
		{"delete on a storage that does not exist", func() (provider.Task, error) { return e.p.DeleteVolume(ctx, "pve1", "nope:vm-103-disk-0") },
			provider.ErrNotFound, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			task, err := tc.call()
			if err == nil {
				_, err = e.p.WaitTask(ctx, task, nil)
			}
			if !errors.Is(err, tc.wantErr) && (err != nil || tc.wantErr != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if tc.check != nil {
				tc.check(t)
			}
		})
	}
}

// FuzzParseDiskValue checks the disk option parser on any input: sizes
// written as Proxmox writes them read exactly, no size is made up from
// NaN, infinities or overflow, and a disk it accepts names a volume on a
// storage.
func FuzzParseDiskValue(f *testing.F) {
	for _, s := range []string{
		"local-lvm:vm-100-disk-0,iothread=1,size=32G", "none,media=cdrom", "local:iso/x.iso,media=cdrom,size=1G",
		"local-lvm:vm-100-cloudinit,media=cdrom", "/dev/sdb,size=10G", "file=ceph:vm-1-disk-1,size=4194304K",
		"a:b,size=NaN", "a:b,size=InfT", "a:b,size=1e300G", "a:b,size=-1M", "a:b,size=16777216T", "a:b,size=0x10",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, value string) {
		volid, size, ok := parseDiskValue(value)
		if ok {
			storage, name, found := strings.Cut(volid, ":")
			if !found || storage == "" || name == "" || strings.HasPrefix(volid, "/") {
				t.Fatalf("parseDiskValue(%q) = %q: not a volume on a storage", value, volid)
			}
		}
		var last uint64
		for p := range strings.SplitSeq(value, ",") {
			k, s, _ := strings.Cut(p, "=")
			if k != "size" {
				continue
			}
			got := parseSize(s)
			last = got
			num, unit := s, uint64(1)
			if i := len(s) - 1; i >= 0 {
				if shift := strings.IndexByte("KMGT", s[i]&^0x20); shift >= 0 {
					num, unit = s[:i], 1<<(10*(shift+1))
				}
			}
			if n, err := strconv.ParseUint(num, 10, 64); err == nil && n <= 1<<53/unit {
				if got != n*unit {
					t.Fatalf("parseSize(%q) = %d, want %d", s, got, n*unit)
				}
				continue
			}
			if v, err := strconv.ParseFloat(num, 64); got != 0 && (err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 || v*float64(unit) >= 1<<64) {
				t.Fatalf("parseSize(%q) = %d, want 0", s, got)
			}
		}
		if ok && size != last {
			t.Fatalf("parseDiskValue(%q) size %d, want the last size's, %d", value, size, last)
		}
	})
}
