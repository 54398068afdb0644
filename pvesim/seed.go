package pvesim

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Seed describes the cluster a simulator starts with.
type Seed struct {
	// ClusterName names the cluster. Zero: "pvesim". A single node without
	// a cluster name is a standalone host (no cluster entry in
	// cluster/status), as on a real unclustered install.
	ClusterName string
	// Nodes is the number of nodes, named pve1..pveN. Zero: 3. Ignored
	// when NodeNames is set.
	Nodes int
	// NodeNames names the nodes explicitly.
	NodeNames []string
	// CPUs is the number of CPUs per node. Zero: 16.
	CPUs int
	// MemoryGiB is the memory per node. Zero: 128.
	MemoryGiB int
	// LocalGiB is the size of each node's "local" directory storage (ISOs,
	// container templates, backups). Zero: 100.
	LocalGiB int
	// LocalLVMGiB is the size of each node's "local-lvm" thin pool (disk
	// images, container volumes). Zero: 2048; grown when the generated
	// guests would not fit.
	LocalLVMGiB int
	// SharedStorage, when set, adds a shared NFS storage of that ID,
	// usable from every node (so guests on it can be cloned across nodes).
	SharedStorage string
	// SharedGiB is the size of the shared storage. Zero: 4096.
	SharedGiB int
	// BackupDirs adds a backup storage for each entry, by storage ID: a
	// directory storage shared by every node ("shared 1"), holding
	// backups only, whose path is the host directory the entry names.
	// Its backups live in files under <dir>/dump, laid out as vzdump lays
	// them out, so that simulators in one process or in several that name
	// the same directory under the same ID list, restore and delete each
	// other's backups, as two Proxmox clusters sharing a mount do. The
	// IDs local, local-lvm and SharedStorage are taken.
	BackupDirs map[string]string
	// BackupGiB is the size of each backup storage. Zero: 4096.
	BackupGiB int
	// Templates are the VM templates. Nil: StandardTemplates; an empty,
	// non-nil slice: none.
	Templates []SeedGuest
	// GuestList lists guests explicitly.
	GuestList []SeedGuest
	// Guests is the number of guests to generate, spread over the nodes
	// (about four in five VMs, the rest containers; most running, as long
	// as they fit in the node's memory).
	Guests int
	// GuestsPerNode generates this many guests on every node, when Guests
	// is zero.
	GuestsPerNode int
}

// SeedGuest is one guest of a Seed.
type SeedGuest struct {
	VMID      int
	Node      string // zero: the first node
	Type      string // "qemu" (zero) or "lxc"
	Name      string
	Running   bool
	Template  bool
	Cores     int    // zero: 2 for a VM, 1 for a container
	MemoryMiB int    // zero: 2048 for a VM, 512 for a container
	DiskGiB   int    // zero: 32 for a VM, 8 for a container
	Storage   string // zero: "local-lvm"
	Tags      []string
	Pool      string
	// Config holds extra configuration keys, or overrides of the
	// generated ones (e.g. "ipconfig0", "description").
	Config map[string]string
}

func (sd Seed) isZero() bool {
	return sd.ClusterName == "" && sd.Nodes == 0 && sd.NodeNames == nil && sd.CPUs == 0 &&
		sd.MemoryGiB == 0 && sd.LocalGiB == 0 && sd.LocalLVMGiB == 0 && sd.SharedStorage == "" &&
		sd.SharedGiB == 0 && sd.BackupDirs == nil && sd.BackupGiB == 0 && sd.Templates == nil &&
		sd.GuestList == nil && sd.Guests == 0 && sd.GuestsPerNode == 0
}

// DefaultSeed is a small realistic cluster: three nodes pve1..pve3 with a
// shared NFS storage, a few running and stopped VMs and containers, and the
// two standard templates.
func DefaultSeed() Seed {
	return Seed{
		ClusterName:   "pvesim",
		Nodes:         3,
		SharedStorage: "nfs-shared",
		GuestList: []SeedGuest{
			{VMID: 100, Node: "pve1", Name: "web-01", Running: true, Tags: []string{"prod", "web"},
				Config: map[string]string{"ipconfig0": "ip=10.0.10.21/24,gw=10.0.10.1", "net0": "virtio,bridge=vmbr0,tag=10"}},
			{VMID: 101, Node: "pve2", Name: "web-02", Running: true, Tags: []string{"prod", "web"},
				Config: map[string]string{"ipconfig0": "ip=10.0.10.22/24,gw=10.0.10.1", "net0": "virtio,bridge=vmbr0,tag=10"}},
			{VMID: 102, Node: "pve3", Name: "db-01", Running: true, Cores: 4, MemoryMiB: 8192, DiskGiB: 100, Tags: []string{"prod", "db"}},
			{VMID: 103, Node: "pve1", Name: "build-01", Cores: 4, MemoryMiB: 4096, Tags: []string{"ci"}},
			{VMID: 104, Node: "pve2", Name: "win-test", MemoryMiB: 4096, DiskGiB: 64, Config: map[string]string{"ostype": "win11"}},
			{VMID: 200, Node: "pve1", Type: "lxc", Name: "dns-01", Running: true, Tags: []string{"infra"}},
			{VMID: 201, Node: "pve2", Type: "lxc", Name: "proxy-01", MemoryMiB: 1024},
			{VMID: 202, Node: "pve3", Type: "lxc", Name: "monitor-01", Running: true, MemoryMiB: 2048, DiskGiB: 16, Tags: []string{"infra"}},
		},
	}
}

// StandardTemplates are the templates a Seed gets when it names none: VM
// 9000 "debian-12-cloud" on the first node's local-lvm and VM 9001
// "ubuntu-24.04-cloud" on the shared storage (or the first node's
// local-lvm when there is none), both with a cloud-init drive.
func StandardTemplates(firstNode, sharedStorage string) []SeedGuest {
	ubuntuStorage := "local-lvm"
	if sharedStorage != "" {
		ubuntuStorage = sharedStorage
	}
	return []SeedGuest{
		{VMID: 9000, Node: firstNode, Name: "debian-12-cloud", Template: true, MemoryMiB: 2048, DiskGiB: 3,
			Tags: []string{"template"}, Config: map[string]string{"description": "Debian 12 generic cloud image", "ciuser": "debian"}},
		{VMID: 9001, Node: firstNode, Name: "ubuntu-24.04-cloud", Template: true, MemoryMiB: 2048, DiskGiB: 4, Storage: ubuntuStorage,
			Tags: []string{"template"}, Config: map[string]string{"description": "Ubuntu 24.04 LTS cloud image", "ciuser": "ubuntu"}},
	}
}

// seedISOs and seedCTTemplates are on every node's local storage.
var (
	seedISOs = map[string]uint64{
		"debian-12.8.0-amd64-netinst.iso":      631 * mib,
		"ubuntu-24.04.1-live-server-amd64.iso": 2664 * mib,
	}
	seedCTTemplates = map[string]uint64{
		"debian-12-standard_12.7-1_amd64.tar.zst":     120 * mib,
		"ubuntu-24.04-standard_24.04-2_amd64.tar.zst": 141 * mib,
	}
)

func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// build creates the cluster described by sd.
func (s *Sim) build(sd Seed) error {
	names := slices.Clone(sd.NodeNames)
	if len(names) == 0 {
		for i := 1; i <= orDefault(sd.Nodes, 3); i++ {
			names = append(names, "pve"+strconv.Itoa(i))
		}
	}
	s.clusterName = sd.ClusterName
	if s.clusterName == "" && len(names) > 1 {
		s.clusterName = "pvesim"
	}
	now := time.Now()
	local := &storageConfig{id: "local", typ: "dir", content: []string{"backup", "iso", "vztmpl"}, path: "/var/lib/vz"}
	lvm := &storageConfig{id: "local-lvm", typ: "lvmthin", content: []string{"images", "rootdir"}, vgname: "pve", thinpool: "data"}
	s.storage = []*storageConfig{local, lvm}
	var shared *store
	if sd.SharedStorage != "" {
		if sd.SharedStorage == "local" || sd.SharedStorage == "local-lvm" {
			return fmt.Errorf("pvesim: shared storage ID %q is taken", sd.SharedStorage)
		}
		cfg := &storageConfig{id: sd.SharedStorage, typ: "nfs", content: []string{"backup", "images", "iso", "rootdir"},
			shared: true, server: "10.0.0.5", export: "/export/pve", path: "/mnt/pve/" + sd.SharedStorage}
		s.storage = append(s.storage, cfg)
		shared = &store{cfg: cfg, total: uint64(orDefault(sd.SharedGiB, 4096)) * gib, vols: map[string]*volume{}}
	}
	backups, err := s.addBackupDirs(sd, []string{"local", "local-lvm", sd.SharedStorage})
	if err != nil {
		return err
	}
	s.backupStores = backups
	for _, c := range s.storage {
		s.storageByID[c.id] = c
	}
	for i, name := range names {
		if s.nodeByName[name] != nil {
			return fmt.Errorf("pvesim: duplicate node %q", name)
		}
		n := &node{
			name:     name,
			id:       i + 1,
			ip:       fmt.Sprintf("10.0.%d.%d", i/240, 11+i%240),
			online:   true,
			maxcpu:   orDefault(sd.CPUs, 16),
			maxmem:   uint64(orDefault(sd.MemoryGiB, 128)) * gib,
			bootTime: now.Add(-time.Duration(20+i) * 24 * time.Hour),
			guests:   map[int]*guest{},
			stores:   map[string]*store{},
		}
		ls := &store{cfg: local, total: uint64(orDefault(sd.LocalGiB, 100)) * gib, base: 6 * gib, vols: map[string]*volume{}}
		for f, size := range seedISOs {
			ls.addVolume(&volume{volid: "local:iso/" + f, content: "iso", format: "iso", size: size, used: size, ctime: n.bootTime.Unix()})
		}
		for f, size := range seedCTTemplates {
			ls.addVolume(&volume{volid: "local:vztmpl/" + f, content: "vztmpl", format: "tzst", size: size, used: size, ctime: n.bootTime.Unix()})
		}
		n.stores["local"] = ls
		n.stores["local-lvm"] = &store{cfg: lvm, total: uint64(orDefault(sd.LocalLVMGiB, 2048)) * gib, vols: map[string]*volume{}}
		if shared != nil {
			n.stores[shared.cfg.id] = shared
		}
		for _, st := range backups {
			n.stores[st.cfg.id] = st
		}
		s.nodes = append(s.nodes, n)
		s.nodeByName[name] = n
	}
	templates := sd.Templates
	if templates == nil {
		templates = StandardTemplates(names[0], sd.SharedStorage)
	}
	for _, list := range [][]SeedGuest{templates, sd.GuestList} {
		for _, sg := range list {
			if err := s.seedGuest(sg, now); err != nil {
				return err
			}
		}
	}
	count := sd.Guests
	if count == 0 {
		count = sd.GuestsPerNode * len(names)
	}
	s.generate(count, now)
	// The seed is fiction: grow the thin pools until what it put there fits.
	for _, n := range s.nodes {
		st := n.stores["local-lvm"]
		if u := st.used(); u > st.total*4/5 {
			st.total = (u*5/4/gib + 1) * gib
		}
	}
	return nil
}

// generate adds count guests spread round-robin over the nodes.
func (s *Sim) generate(count int, now time.Time) {
	tags := []string{"prod", "dev", "staging", "web", "db", "batch", "infra"}
	committed := map[*node]uint64{}
	for _, n := range s.nodes {
		committed[n] = n.committedMem()
	}
	vmid := 100
	for i := 0; i < count; i++ {
		for s.guests[vmid] != nil {
			vmid++
		}
		n := s.nodes[i%len(s.nodes)]
		sg := SeedGuest{VMID: vmid, Node: n.name}
		if s.randIntN(5) == 0 {
			sg.Type = kindLXC
			sg.Name = fmt.Sprintf("ct-%05d", vmid)
			sg.MemoryMiB = 256 << s.randIntN(3)
			sg.Cores = 1 + s.randIntN(2)
			sg.DiskGiB = 4 << s.randIntN(2)
		} else {
			sg.Name = fmt.Sprintf("vm-%05d", vmid)
			sg.MemoryMiB = 512 << s.randIntN(4)
			sg.Cores = 1 << s.randIntN(3)
			sg.DiskGiB = 8 << s.randIntN(3)
		}
		if s.randIntN(2) == 0 {
			sg.Tags = []string{tags[s.randIntN(len(tags))]}
		}
		mem := uint64(sg.MemoryMiB) * mib
		sg.Running = s.randIntN(10) < 7 && n.hostMem()+committed[n]+mem <= n.maxmem
		if sg.Running {
			committed[n] += mem
		}
		// seedGuest cannot fail here: the node, VMID and storage are valid.
		_ = s.seedGuest(sg, now)
		vmid++
	}
}

// seedGuest creates one guest of the seed, with its volumes.
func (s *Sim) seedGuest(sg SeedGuest, now time.Time) error {
	if sg.VMID < 100 || sg.VMID > 999999999 {
		return fmt.Errorf("pvesim: seed guest VMID %d out of range", sg.VMID)
	}
	if s.guests[sg.VMID] != nil {
		return fmt.Errorf("pvesim: duplicate seed guest VMID %d", sg.VMID)
	}
	n := s.nodes[0]
	if sg.Node != "" {
		if n = s.nodeByName[sg.Node]; n == nil {
			return fmt.Errorf("pvesim: seed guest %d on unknown node %q", sg.VMID, sg.Node)
		}
	}
	kind := kindQemu
	switch sg.Type {
	case "", kindQemu:
	case kindLXC:
		kind = kindLXC
	default:
		return fmt.Errorf("pvesim: seed guest %d has unknown type %q", sg.VMID, sg.Type)
	}
	storage := sg.Storage
	if storage == "" {
		storage = "local-lvm"
	}
	st := n.stores[storage]
	content := "images"
	if kind == kindLXC {
		content = "rootdir"
	}
	if st == nil || !st.cfg.hasContent(content) {
		return fmt.Errorf("pvesim: seed guest %d: storage %q does not hold %s on node %q", sg.VMID, storage, content, n.name)
	}
	g := &guest{vmid: sg.VMID, kind: kind, node: n, conf: map[string]string{}, pool: sg.Pool, seed: guestSeed(sg.VMID), sim: s}
	c := g.conf
	defDisk := 32
	if kind == kindLXC {
		defDisk = 8
	}
	size := uint64(orDefault(sg.DiskGiB, defDisk)) * gib
	if kind == kindLXC {
		c["arch"] = "amd64"
		c["hostname"] = sg.Name
		c["memory"] = strconv.Itoa(orDefault(sg.MemoryMiB, 512))
		c["swap"] = "512"
		c["cores"] = strconv.Itoa(orDefault(sg.Cores, 1))
		c["ostype"] = "debian"
		c["unprivileged"] = "1"
		c["features"] = "nesting=1"
		c["net0"] = "name=eth0,bridge=vmbr0,hwaddr=" + s.randomMAC() + ",ip=dhcp,type=veth"
		v := s.newImageAt(st, g, 0, size)
		c["rootfs"] = storage + ":" + volname(v) + ",size=" + formatSize(size)
	} else {
		if sg.Name != "" {
			c["name"] = sg.Name
		}
		c["memory"] = strconv.Itoa(orDefault(sg.MemoryMiB, 2048))
		c["cores"] = strconv.Itoa(orDefault(sg.Cores, 2))
		c["sockets"] = "1"
		c["cpu"] = "x86-64-v2-AES"
		c["ostype"] = "l26"
		c["scsihw"] = "virtio-scsi-single"
		c["boot"] = "order=scsi0;net0"
		c["net0"] = "virtio=" + s.randomMAC() + ",bridge=vmbr0,firewall=1"
		c["smbios1"] = "uuid=" + s.randomUUID()
		c["vmgenid"] = s.randomUUID()
		c["meta"] = fmt.Sprintf("creation-qemu=9.2.0,ctime=%d", now.Unix()-int64(s.randIntN(90*86400)))
		v := s.newImageAt(st, g, 0, size)
		c["scsi0"] = storage + ":" + volname(v) + ",iothread=1,size=" + formatSize(size)
		if sg.Template {
			c["agent"] = "enabled=1"
			c["serial0"] = "socket"
			c["vga"] = "serial0"
			c["ipconfig0"] = "ip=dhcp"
			ci := s.newCloudInit(st, g)
			c["ide2"] = storage + ":" + volname(ci) + ",media=cdrom"
		}
	}
	if len(sg.Tags) > 0 {
		c["tags"] = strings.Join(sg.Tags, ";")
	}
	for k, v := range sg.Config {
		c[k] = v
	}
	s.addMACs(kind, c)
	if sg.Template {
		c["template"] = "1"
		s.templateDisks(g)
	}
	if sg.Running && !sg.Template {
		g.running = true
		g.started = now.Add(-time.Duration(1+g.seed%(30*24)) * time.Hour)
	}
	s.guests[g.vmid] = g
	n.guests[g.vmid] = g
	return nil
}

// randomUUID returns a random RFC 4122 version 4 UUID from the simulator's
// seeded source.
func (s *Sim) randomUUID() string {
	s.randMu.Lock()
	defer s.randMu.Unlock()
	a, b := s.rnd.Uint64(), s.rnd.Uint64()
	a = a&^0xf000 | 0x4000
	b = b&^(0xc<<60) | 0x8<<60
	return fmt.Sprintf("%08x-%04x-%04x-%04x-%012x", a>>32, (a>>16)&0xffff, a&0xffff, b>>48, b&0xffffffffffff)
}
