// Package provider is the seam between Moxxie and a virtualization
// platform. Everything above it (inventory sync, VM operations, DR) talks to
// a Provider; provider/proxmox implements it for Proxmox VE. A second
// platform is added by implementing Provider, without touching the rest.
//
// Methods that start work on the platform return a Task at once; WaitTask
// follows it to the end. Errors are wrapped so that callers can test them
// with errors.Is against the sentinels below.
package provider

import (
	"context"
	"errors"
	"time"
)

var (
	// ErrNotFound means the named node, guest, storage, snapshot or task does
	// not exist on the platform.
	ErrNotFound = errors.New("provider: not found")
	// ErrUnavailable means the platform could not be reached or answered
	// with a server error after retries; the caller may try again later.
	ErrUnavailable = errors.New("provider: platform unavailable")
	// ErrRejected means the platform refused the request as invalid (a
	// 4xx other than not found or unauthorized); retrying will not help.
	ErrRejected = errors.New("provider: request rejected")
	// ErrUnauthorized means the platform refused the credentials.
	ErrUnauthorized = errors.New("provider: unauthorized")
	// ErrTaskFailed means a platform task ended with an error exit status.
	ErrTaskFailed = errors.New("provider: task failed")
)

// GuestKind tells virtual machines from containers.
type GuestKind string

// Guest kinds.
const (
	KindVM        GuestKind = "qemu"
	KindContainer GuestKind = "lxc"
)

// GuestRef names one guest: the node it runs on, its numeric ID and kind.
type GuestRef struct {
	Node string    `json:"node"`
	VMID int       `json:"vmid"`
	Kind GuestKind `json:"kind"`
}

// ClusterInfo describes the platform cluster as a whole.
type ClusterInfo struct {
	Name    string `json:"name"`
	Quorate bool   `json:"quorate"`
	Version string `json:"version"`
	Nodes   int    `json:"nodes"`
}

// Node is one hypervisor host and the resources it has and uses.
type Node struct {
	Name    string  `json:"name"`
	Status  string  `json:"status"` // online, offline, unknown
	CPU     float64 `json:"cpu"`    // fraction of MaxCPU in use, 0..1
	MaxCPU  int     `json:"maxcpu"`
	Mem     uint64  `json:"mem"`
	MaxMem  uint64  `json:"maxmem"`
	Disk    uint64  `json:"disk"`
	MaxDisk uint64  `json:"maxdisk"`
	Uptime  uint64  `json:"uptime"`
}

// Guest is one virtual machine or container as the platform reports it.
type Guest struct {
	GuestRef
	Name     string   `json:"name"`
	Status   string   `json:"status"` // running, stopped, paused, ...
	Template bool     `json:"template"`
	Tags     []string `json:"tags,omitempty"`
	Pool     string   `json:"pool,omitempty"`
	CPU      float64  `json:"cpu"`
	MaxCPU   int      `json:"maxcpu"`
	Mem      uint64   `json:"mem"`
	MaxMem   uint64   `json:"maxmem"`
	Disk     uint64   `json:"disk"`
	MaxDisk  uint64   `json:"maxdisk"`
	Uptime   uint64   `json:"uptime"`
	Lock     string   `json:"lock,omitempty"`
}

// Storage is one storage as seen from one node.
type Storage struct {
	Node    string   `json:"node"`
	Name    string   `json:"storage"`
	Type    string   `json:"type"`
	Content []string `json:"content,omitempty"`
	Shared  bool     `json:"shared"`
	Status  string   `json:"status"` // available, unknown
	Used    uint64   `json:"used"`
	Total   uint64   `json:"total"`
}

// Inventory is one consistent read of everything a sync needs.
type Inventory struct {
	Nodes   []Node    `json:"nodes"`
	Guests  []Guest   `json:"guests"`
	Storage []Storage `json:"storage"`
}

// Content is one volume on a storage: a disk image, ISO, template or backup.
type Content struct {
	VolID   string    `json:"volid"`
	Format  string    `json:"format,omitempty"`
	Content string    `json:"content"` // images, iso, vztmpl, backup, rootdir
	Size    uint64    `json:"size"`
	VMID    int       `json:"vmid,omitempty"`
	Created time.Time `json:"ctime,omitzero"`
	Notes   string    `json:"notes,omitempty"`
	// Protected backups cannot be removed until protection is lifted.
	Protected bool `json:"protected,omitempty"`
}

// Disk is one disk of a guest as its configuration names it: an attached
// disk (scsi0, virtio1, rootfs, mp0, ...) or a detached one (unused0).
type Disk struct {
	// Slot is the configuration key, e.g. scsi1 or unused0.
	Slot string `json:"slot"`
	// VolID is the volume, e.g. local-lvm:vm-101-disk-1.
	VolID   string `json:"volid"`
	Storage string `json:"storage"`
	// Size is the size in bytes the configuration records; zero when it
	// records none (detached disks).
	Size uint64 `json:"size,omitempty"`
}

// Unused reports whether the disk is detached (an unusedN slot).
func (d Disk) Unused() bool { return len(d.Slot) > 6 && d.Slot[:6] == "unused" }

// Network is one host network interface or bridge.
type Network struct {
	Iface     string `json:"iface"`
	Type      string `json:"type"` // bridge, eth, bond, vlan, ...
	Active    bool   `json:"active"`
	Autostart bool   `json:"autostart"`
	CIDR      string `json:"cidr,omitempty"`
	Gateway   string `json:"gateway,omitempty"`
	Ports     string `json:"bridge_ports,omitempty"`
	VLANAware bool   `json:"bridge_vlan_aware,omitempty"`
	Comments  string `json:"comments,omitempty"`
}

// Snapshot is one guest snapshot.
type Snapshot struct {
	Name        string    `json:"name"`
	Description string    `json:"description,omitempty"`
	Parent      string    `json:"parent,omitempty"`
	Created     time.Time `json:"snaptime,omitzero"`
	VMState     bool      `json:"vmstate,omitempty"`
}

// NIC is one guest network interface: its bridge and VLAN tag, and the
// address configuration handed to cloud-init.
type NIC struct {
	Bridge  string `json:"bridge"`
	VLAN    int    `json:"vlan,omitempty"`
	Model   string `json:"model,omitempty"` // virtio when empty
	MAC     string `json:"mac,omitempty"`   // generated by the platform when empty
	IP      string `json:"ip,omitempty"`    // CIDR, e.g. 10.0.0.5/24; DHCP when empty
	Gateway string `json:"gw,omitempty"`
	// LinkDown disconnects the NIC (a drill's isolated copy); false
	// keeps the NIC's current link state.
	LinkDown bool `json:"link_down,omitempty"`
	// KeepIP leaves the address configuration the NIC has (a VM's
	// ipconfigN, a container NIC's ip and gw) as it is; IP and Gateway
	// must then be empty.
	KeepIP bool `json:"keep_ip,omitempty"`
	// None leaves its slot without a NIC, a gap in the numbering (net0
	// and net2 without net1); it takes no other field and cannot be last.
	None bool `json:"none,omitempty"`
}

// GuestSpec is the configuration applied to a new guest, or to a clone.
// Zero fields keep the template's (or the platform's) value.
type GuestSpec struct {
	Name        string   `json:"name,omitempty"`
	Cores       int      `json:"cores,omitempty"`
	MemoryMiB   int      `json:"memory,omitempty"`
	Tags        []string `json:"tags,omitempty"`
	Description string   `json:"description,omitempty"`
	NICs        []NIC    `json:"nics,omitempty"`
	Nameserver  string   `json:"nameserver,omitempty"`
	SearchDom   string   `json:"searchdomain,omitempty"`
	SSHKeys     []string `json:"sshkeys,omitempty"`
	CIUser      string   `json:"ciuser,omitempty"`
	Storage     string   `json:"storage,omitempty"` // target storage for disks
	DiskGiB     int      `json:"disk,omitempty"`    // size of a new guest's disk
	OSType      string   `json:"ostype,omitempty"`
	// OSTemplate is the volume a new container is made from, e.g.
	// local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst.
	OSTemplate string `json:"ostemplate,omitempty"`
	Pool       string `json:"pool,omitempty"`
}

// CloneSpec clones a template or guest into a new guest.
type CloneSpec struct {
	Source GuestRef  `json:"source"`
	NewID  int       `json:"newid"`
	Target string    `json:"target,omitempty"` // node; the source's when empty
	Full   bool      `json:"full"`
	Spec   GuestSpec `json:"spec"`
}

// BackupSpec describes one backup of one guest.
type BackupSpec struct {
	Storage  string `json:"storage"`
	Mode     string `json:"mode,omitempty"` // snapshot (default), suspend, stop
	Compress string `json:"compress,omitempty"`
	Notes    string `json:"notes,omitempty"`
}

// Task is a handle on asynchronous work on the platform.
type Task struct {
	ID   string `json:"id"` // the platform's task ID (a Proxmox UPID)
	Node string `json:"node"`
}

// TaskStatus is the state of a task at one moment.
type TaskStatus struct {
	Task
	Type      string    `json:"type"`
	Running   bool      `json:"running"`
	OK        bool      `json:"ok"`                    // finished without error
	Exit      string    `json:"exit_status,omitempty"` // "OK" or the error
	StartTime time.Time `json:"start_time,omitzero"`
	EndTime   time.Time `json:"end_time,omitzero"`
	LastLog   string    `json:"last_log,omitempty"` // the newest log line, for progress
}

// SDNZone is one zone of the platform's software-defined network: a
// group of virtual networks of one type spanning a set of nodes. The
// fields are those of the edited configuration, which holds changes that
// are not applied yet (see SDN.ApplySDN).
type SDNZone struct {
	ID string `json:"zone"`
	// Type is simple, vlan or vxlan for the zones Moxxie writes; others
	// (qinq, evpn, ...) are reported as the platform names them.
	Type string `json:"type"`
	// MTU of the zone's vnets; zero leaves it to the platform.
	MTU int `json:"mtu,omitempty"`
	// Nodes the zone is deployed on, sorted; empty means every node.
	Nodes []string `json:"nodes,omitempty"`
	// Bridge carries the VLANs of a vlan zone.
	Bridge string `json:"bridge,omitempty"`
	// Peers are the underlay addresses of a vxlan zone's nodes, sorted.
	Peers []string `json:"peers,omitempty"`
	// Port is a vxlan zone's UDP port; zero means the default, 4789.
	Port int `json:"vxlan_port,omitempty"`
	// Pending tells how the zone differs from the running (applied)
	// configuration: "" when it does not, else "new", "changed" or
	// "deleted". A deleted zone is gone from the edited configuration
	// and is reported with its running fields.
	Pending string `json:"pending,omitempty"`
}

// SDNVnet is one virtual network of the platform's software-defined
// network: a bridge on every node of its zone.
type SDNVnet struct {
	ID   string `json:"vnet"`
	Zone string `json:"zone"`
	// Tag is the VLAN ID (vlan zones) or VNI (vxlan zones); zero in
	// simple zones.
	Tag int `json:"tag,omitempty"`
	// Alias is a free description the platform shows with the vnet.
	Alias string `json:"alias,omitempty"`
	// Pending is as for SDNZone.
	Pending string `json:"pending,omitempty"`
}

// SDN is the platform's own software-defined network configuration.
// Changes are made to an edited configuration and take effect on the
// nodes only when applied, all at once.
type SDN interface {
	// SDNZones lists the zones of the edited configuration, and the
	// zones deleted from it but still running, sorted by ID.
	SDNZones(ctx context.Context) ([]SDNZone, error)
	// CreateSDNZone adds a zone to the edited configuration.
	CreateSDNZone(ctx context.Context, zone SDNZone) error
	// UpdateSDNZone makes zone zone.ID hold zone's fields, clearing those
	// zone leaves empty; properties SDNZone does not have are kept. The
	// type cannot change.
	UpdateSDNZone(ctx context.Context, zone SDNZone) error
	// DeleteSDNZone removes a zone that no vnet uses.
	DeleteSDNZone(ctx context.Context, id string) error
	// SDNVnets lists the vnets like SDNZones lists the zones.
	SDNVnets(ctx context.Context) ([]SDNVnet, error)
	// CreateSDNVnet adds a vnet to the edited configuration.
	CreateSDNVnet(ctx context.Context, vnet SDNVnet) error
	// UpdateSDNVnet makes vnet vnet.ID hold vnet's fields, clearing those
	// vnet leaves empty.
	UpdateSDNVnet(ctx context.Context, vnet SDNVnet) error
	// DeleteSDNVnet removes a vnet.
	DeleteSDNVnet(ctx context.Context, id string) error
	// ApplySDN makes the edited configuration the running one and starts
	// deploying it to every node.
	ApplySDN(ctx context.Context) (Task, error)
}

// Provider is what Moxxie needs from a virtualization platform.
type Provider interface {
	// Name is the provider's kind, e.g. "proxmox".
	Name() string

	// Cluster describes the platform cluster.
	Cluster(ctx context.Context) (ClusterInfo, error)
	// Inventory reads nodes, guests and storage in as few requests as the
	// platform allows.
	Inventory(ctx context.Context) (Inventory, error)
	// Nodes lists the hosts.
	Nodes(ctx context.Context) ([]Node, error)
	// Guest reads one guest's current state.
	Guest(ctx context.Context, ref GuestRef) (Guest, error)
	// GuestConfig reads one guest's configuration as key/value pairs.
	GuestConfig(ctx context.Context, ref GuestRef) (map[string]string, error)
	// NextID returns a free guest ID.
	NextID(ctx context.Context) (int, error)

	// CreateGuest creates a new guest from spec on ref.Node with ref.VMID.
	CreateGuest(ctx context.Context, ref GuestRef, spec GuestSpec) (Task, error)
	// CloneGuest clones spec.Source to spec.NewID.
	CloneGuest(ctx context.Context, spec CloneSpec) (Task, error)
	// ConfigureGuest applies spec to an existing guest.
	ConfigureGuest(ctx context.Context, ref GuestRef, spec GuestSpec) (Task, error)
	// SetGuestConfig sets configuration keys of an existing guest to the
	// platform's own values (e.g. net0 as a property string) and deletes
	// the keys of del it has.
	SetGuestConfig(ctx context.Context, ref GuestRef, set map[string]string, del []string) (Task, error)
	// StartGuest starts a guest.
	StartGuest(ctx context.Context, ref GuestRef) (Task, error)
	// StopGuest stops a guest at once, like pulling the plug.
	StopGuest(ctx context.Context, ref GuestRef) (Task, error)
	// ShutdownGuest asks the guest OS to shut down, stopping it after
	// timeout if it has not (zero: the platform's default).
	ShutdownGuest(ctx context.Context, ref GuestRef, timeout time.Duration) (Task, error)
	// DeleteGuest destroys a stopped guest and its disks.
	DeleteGuest(ctx context.Context, ref GuestRef) (Task, error)
	// MigrateGuest moves a guest to target; online for a running guest.
	MigrateGuest(ctx context.Context, ref GuestRef, target string, online bool) (Task, error)

	// Snapshots lists a guest's snapshots.
	Snapshots(ctx context.Context, ref GuestRef) ([]Snapshot, error)
	// CreateSnapshot takes a snapshot named name.
	CreateSnapshot(ctx context.Context, ref GuestRef, name, description string) (Task, error)
	// DeleteSnapshot removes a snapshot.
	DeleteSnapshot(ctx context.Context, ref GuestRef, name string) (Task, error)
	// RollbackSnapshot returns the guest to a snapshot.
	RollbackSnapshot(ctx context.Context, ref GuestRef, name string) (Task, error)

	// Backup starts a backup of one guest.
	Backup(ctx context.Context, ref GuestRef, spec BackupSpec) (Task, error)
	// StorageContent lists the volumes on one storage of one node, of one
	// content type when content is not empty.
	StorageContent(ctx context.Context, node, storage, content string) ([]Content, error)
	// DeleteVolume removes a volume (a backup, or a disk no guest
	// references) from a storage.
	DeleteVolume(ctx context.Context, node, volid string) (Task, error)
	// RestoreBackup creates guest ref from a backup volume, its disks on
	// storage: for a VM the backup's storages when empty; a container needs
	// one. The guest must not exist. A failed restore may leave a VM with
	// no disks behind, which must be deleted before the VMID is used again.
	RestoreBackup(ctx context.Context, ref GuestRef, volid, storage string) (Task, error)
	// RestoreBackupOver restores a backup over the existing, stopped
	// guest ref (Proxmox's force): its disks are replaced. Restoring the
	// same backup again gives the same guest, so it may be repeated.
	RestoreBackupOver(ctx context.Context, ref GuestRef, volid, storage string) (Task, error)

	// Disks lists a guest's disks, attached and detached, sorted by slot.
	// CD-ROM drives and cloud-init drives are not disks.
	Disks(ctx context.Context, ref GuestRef) ([]Disk, error)
	// AddDisk allocates a new disk of sizeGiB on storage and attaches it at
	// slot (e.g. scsi1).
	AddDisk(ctx context.Context, ref GuestRef, slot, storage string, sizeGiB int) (Task, error)
	// AttachDisk attaches an existing volume of the guest (a detached disk)
	// at slot.
	AttachDisk(ctx context.Context, ref GuestRef, slot, volid string) (Task, error)
	// DetachDisk detaches the disk at slot; it stays on its storage as an
	// unusedN disk of the guest. Detaching an unusedN slot destroys the
	// volume.
	DetachDisk(ctx context.Context, ref GuestRef, slot string) (Task, error)
	// ResizeDisk grows the disk at slot to sizeGiB; disks cannot shrink.
	ResizeDisk(ctx context.Context, ref GuestRef, slot string, sizeGiB int) (Task, error)
	// MoveDisk copies the disk at slot to storage (live when the guest
	// runs) and switches the guest to the copy; with deleteSource the old
	// volume is removed afterwards, else it stays as an unusedN disk. A
	// move that fails leaves the guest on its original volume.
	MoveDisk(ctx context.Context, ref GuestRef, slot, storage string, deleteSource bool) (Task, error)

	// Networks lists a node's network interfaces.
	Networks(ctx context.Context, node string) ([]Network, error)

	// TaskStatus reads a task's state.
	TaskStatus(ctx context.Context, task Task) (TaskStatus, error)
	// WaitTask polls a task until it ends or ctx is done, calling progress
	// (when not nil) on every change. A task that ends with an error
	// returns its status and an error wrapping ErrTaskFailed.
	WaitTask(ctx context.Context, task Task, progress func(TaskStatus)) (TaskStatus, error)

	// SDN manages the platform's software-defined network configuration.
	SDN
}
