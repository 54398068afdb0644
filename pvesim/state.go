package pvesim

import (
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"hash/fnv"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
)

const (
	kindQemu = "qemu"
	kindLXC  = "lxc"

	mib = 1 << 20
	gib = 1 << 30
)

// node is one simulated Proxmox VE host. All fields are guarded by Sim.mu.
type node struct {
	name     string
	id       int // corosync node id, from 1
	ip       string
	online   bool
	maxcpu   int
	maxmem   uint64
	bootTime time.Time
	guests   map[int]*guest
	stores   map[string]*store // storage instances usable on this node, by storage ID
}

// hostMem is the memory the host itself uses, whatever runs on it.
func (n *node) hostMem() uint64 { return 1536*mib + n.maxmem/50 }

// committedMem is the memory promised to running guests (their maxmem).
func (n *node) committedMem() uint64 {
	var sum uint64
	for _, g := range n.guests {
		if g.running {
			sum += g.maxmem()
		}
	}
	return sum
}

// usage reports the node's CPU fraction and used memory.
func (n *node) usage(now time.Time) (cpu float64, mem uint64) {
	mem = n.hostMem()
	cpu = 0.01
	for _, g := range n.guests {
		if g.running {
			gc, gm := g.usage(now)
			mem += gm
			cpu += gc * float64(g.cpus()) / float64(n.maxcpu)
		}
	}
	return min(cpu, 1), min(mem, n.maxmem)
}

// storageConfig is one entry of the cluster-wide storage.cfg.
type storageConfig struct {
	id       string
	typ      string   // dir, lvmthin, nfs
	content  []string // sorted content types
	shared   bool
	path     string // dir, nfs
	vgname   string // lvmthin
	thinpool string // lvmthin
	server   string // nfs
	export   string // nfs
}

func (c *storageConfig) hasContent(ct string) bool { return slices.Contains(c.content, ct) }

// store is one storage instance: a local storage on one node, or a shared
// storage seen by every node.
type store struct {
	cfg   *storageConfig
	total uint64
	base  uint64             // space used by other things (the host's root filesystem)
	vols  map[string]*volume // by volid
	dir   *backupDir         // set for a backup storage in a directory (Seed.BackupDirs)
}

func (st *store) addVolume(v *volume) { st.vols[v.volid] = v }

func (st *store) used() uint64 {
	sum := st.base
	for _, v := range st.vols {
		sum += v.used + v.snapUsed
	}
	return sum
}

// volume is one volume on a store: a disk image, ISO, container template or backup.
type volume struct {
	volid     string
	vmid      int
	content   string // images, rootdir, iso, vztmpl, backup
	format    string
	size      uint64
	used      uint64
	snapUsed  uint64 // space the snapshots of the volume use
	parent    string // base volume name of a linked clone
	ctime     int64
	notes     string
	subtype   string // qemu or lxc, for backups
	protected bool   // for backups
	// conf is a backup's copy of the guest's configuration, which a
	// restore recreates.
	conf map[string]string
}

// snapshot is one guest snapshot.
type snapshot struct {
	name        string
	parent      string
	description string
	snaptime    int64
	vmstate     bool
	vm          map[string]string // the guest's configuration when it was taken
	conf        map[string]string // the snapshot section as GET config?snapshot= shows it
	usage       map[string]uint64 // space the snapshot uses, by volume ID of the disks it covers
	state       string            // the volume ID of its saved VM state, when vmstate
}

// guest is one virtual machine or container. All fields are guarded by Sim.mu.
type guest struct {
	vmid    int
	kind    string
	node    *node
	conf    map[string]string
	snaps   []*snapshot
	running bool
	started time.Time
	pool    string
	busy    int // holders of a shared config lock (a clone reading this guest)
	seed    uint32
	sim     *Sim

	cache atomic.Pointer[derived] // values derived from conf; may be filled under the read lock
}

// derived holds values computed from a guest's configuration, valid while
// Sim.epoch has not changed (no write since). Large clusters read them for
// every guest on every cluster/resources.
type derived struct {
	epoch    uint64
	name     string
	cpus     int
	memMiB   int
	maxdisk  uint64
	template bool
	lock     string
	tags     string
}

// derived returns g's derived values, computing them when a write may have
// changed them. It is called with Sim.mu held (read or write).
func (g *guest) derived() *derived {
	epoch := g.sim.epoch
	if d := g.cache.Load(); d != nil && d.epoch == epoch {
		return d
	}
	d := &derived{epoch: epoch, name: g.computeName(), cpus: g.computeCPUs(), memMiB: g.computeMemMiB(),
		maxdisk: g.computeBootDiskSize(), template: boolValue(g.conf["template"]), lock: g.conf["lock"], tags: g.conf["tags"]}
	g.cache.Store(d)
	return d
}

func (g *guest) typeName() string {
	if g.kind == kindLXC {
		return "CT"
	}
	return "VM"
}

func (g *guest) nameKey() string {
	if g.kind == kindLXC {
		return "hostname"
	}
	return "name"
}

func (g *guest) name() string { return g.derived().name }

func (g *guest) computeName() string {
	if n := g.conf[g.nameKey()]; n != "" {
		return n
	}
	if g.kind == kindLXC {
		return "CT" + strconv.Itoa(g.vmid)
	}
	return "VM " + strconv.Itoa(g.vmid)
}

func (g *guest) template() bool { return g.derived().template }

func (g *guest) lock() string { return g.derived().lock }

// memMiB is the configured memory in MiB (qemu memory may be "current=N").
func (g *guest) memMiB() int { return g.derived().memMiB }

func (g *guest) computeMemMiB() int {
	v := g.conf["memory"]
	if v == "" {
		return 512
	}
	if i := strings.Index(v, "current="); i >= 0 {
		v = v[i+len("current="):]
	}
	if i := strings.IndexByte(v, ','); i >= 0 {
		v = v[:i]
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 512
	}
	return n
}

func (g *guest) maxmem() uint64 { return uint64(g.memMiB()) * mib }

func (g *guest) cpus() int { return g.derived().cpus }

func (g *guest) computeCPUs() int {
	if g.kind == kindLXC {
		if c := atoiDefault(g.conf["cores"], 0); c > 0 {
			return min(c, g.node.maxcpu)
		}
		return g.node.maxcpu
	}
	if v := atoiDefault(g.conf["vcpus"], 0); v > 0 {
		return v
	}
	return atoiDefault(g.conf["sockets"], 1) * atoiDefault(g.conf["cores"], 1)
}

// usage reports a running guest's CPU fraction and used memory: stable
// per guest, so repeated reads agree.
func (g *guest) usage(time.Time) (cpu float64, mem uint64) {
	if !g.running {
		return 0, 0
	}
	cpu = 0.01 + float64(g.seed%13)/100
	mem = g.maxmem() / 100 * uint64(40+g.seed%40)
	return cpu, mem
}

func (g *guest) uptime(now time.Time) uint64 {
	if !g.running {
		return 0
	}
	return uint64(max(now.Sub(g.started), 0) / time.Second)
}

// disk is one volume-backed disk in a guest's configuration.
type disk struct {
	key     string // scsi0, rootfs, mp0, unused0, ...
	storage string
	volname string
	size    uint64
	cdrom   bool
}

func (d disk) volid() string { return d.storage + ":" + d.volname }

var qemuDiskPrefixes = []string{"scsi", "virtio", "sata", "ide", "efidisk", "tpmstate", "unused"}
var lxcDiskPrefixes = []string{"rootfs", "mp", "unused"}

// isDiskKey reports whether key names a disk of a guest of kind.
func isDiskKey(kind, key string) bool {
	prefixes := qemuDiskPrefixes
	if kind == kindLXC {
		prefixes = lxcDiskPrefixes
	}
	for _, p := range prefixes {
		if key == p {
			return true
		}
		if rest, ok := strings.CutPrefix(key, p); ok && rest != "" && isDigits(rest) {
			return true
		}
	}
	return false
}

// parseDisk parses a disk value such as "local-lvm:vm-100-disk-0,size=32G".
// It reports false for values that name no volume (e.g. "none,media=cdrom").
func parseDisk(key, value string) (disk, bool) {
	d := disk{key: key}
	parts := strings.Split(value, ",")
	first := parts[0]
	if k, v, ok := strings.Cut(first, "="); ok && (k == "file" || k == "volume") {
		first = v
	}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		switch k {
		case "size":
			d.size = parseSize(v)
		case "media":
			d.cdrom = v == "cdrom"
		case "file", "volume":
			first = v
		}
	}
	st, vol, ok := strings.Cut(first, ":")
	if !ok || st == "" || vol == "" {
		return d, false
	}
	d.storage, d.volname = st, vol
	return d, true
}

// disks lists the guest's volume-backed disks, in key order.
func disks(kind string, conf map[string]string) []disk {
	var out []disk
	for _, k := range sortedKeys(conf) {
		if !isDiskKey(kind, k) {
			continue
		}
		if d, ok := parseDisk(k, conf[k]); ok {
			out = append(out, d)
		}
	}
	return out
}

// bootDiskSize is the size Proxmox reports as maxdisk: the root filesystem
// of a container, the boot (or first) disk of a VM.
func (g *guest) bootDiskSize() uint64 { return g.derived().maxdisk }

func (g *guest) computeBootDiskSize() uint64 {
	if g.kind == kindLXC {
		d, _ := parseDisk("rootfs", g.conf["rootfs"])
		return d.size
	}
	if order, ok := strings.CutPrefix(g.conf["boot"], "order="); ok {
		for _, k := range strings.Split(order, ";") {
			if d, ok := parseDisk(k, g.conf[k]); ok && !d.cdrom {
				return d.size
			}
		}
	}
	for _, p := range []string{"scsi0", "virtio0", "sata0", "ide0"} {
		if d, ok := parseDisk(p, g.conf[p]); ok && !d.cdrom {
			return d.size
		}
	}
	return 0
}

// digest is the SHA-1 of the configuration as Proxmox writes it.
func digestConf(conf map[string]string) string {
	h := sha1.New()
	for _, k := range sortedKeys(conf) {
		fmt.Fprintf(h, "%s: %s\n", k, conf[k])
	}
	return hex.EncodeToString(h.Sum(nil))
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

func cloneConf(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

func isDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func atoiDefault(s string, def int) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return def
	}
	return n
}

// boolValue parses a Proxmox boolean the way the API does.
func boolValue(s string) bool {
	switch strings.ToLower(s) {
	case "1", "true", "yes", "on":
		return true
	}
	return false
}

// parseSize parses a Proxmox disk size such as "32G", "512M" or "4096"
// (bytes); anything else, NaN, infinities and sizes of 2^64 bytes or more
// read as zero.
func parseSize(s string) uint64 {
	if s == "" {
		return 0
	}
	mult := uint64(1)
	switch s[len(s)-1] {
	case 'K', 'k':
		mult = 1 << 10
	case 'M', 'm':
		mult = mib
	case 'G', 'g':
		mult = gib
	case 'T', 't':
		mult = 1 << 40
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || !(f >= 0 && f*float64(mult) < 1<<64) { // NaN fails both
		return 0
	}
	return uint64(f * float64(mult))
}

// formatSize prints a size the way Proxmox writes it into a disk option.
func formatSize(b uint64) string {
	switch {
	case b%gib == 0:
		return strconv.FormatUint(b/gib, 10) + "G"
	case b%mib == 0:
		return strconv.FormatUint(b/mib, 10) + "M"
	case b%(1<<10) == 0:
		return strconv.FormatUint(b>>10, 10) + "K"
	}
	return strconv.FormatUint(b, 10)
}

func guestSeed(vmid int) uint32 {
	h := fnv.New32a()
	fmt.Fprint(h, vmid)
	return h.Sum32()
}
