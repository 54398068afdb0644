package pvesim

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// JSON types of the non-string keys of a guest configuration, from the
// returns of GET /nodes/{node}/{qemu,lxc}/{vmid}/config in the schema.
var (
	qemuBoolKeys = set("acpi", "allow-ksm", "autostart", "ciupgrade", "freeze", "keephugepages", "kvm",
		"localtime", "numa", "onboot", "protection", "reboot", "tablet", "tdf", "template")
	qemuIntKeys = set("balloon", "cores", "cpuunits", "migrate_speed", "shares", "smp", "snaptime",
		"sockets", "vcpus")
	qemuNumberKeys = set("cpulimit", "migrate_downtime")
	lxcBoolKeys    = set("console", "debug", "onboot", "protection", "template", "unprivileged")
	lxcIntKeys     = set("cores", "cpuunits", "memory", "swap", "tty")
	lxcNumberKeys  = set("cpulimit")
)

func set(keys ...string) map[string]bool {
	m := make(map[string]bool, len(keys))
	for _, k := range keys {
		m[k] = true
	}
	return m
}

// confJSON renders a configuration with the JSON types the API uses:
// booleans as 0/1, integers and numbers as JSON numbers, the rest as strings.
func confJSON(kind string, conf map[string]string) map[string]any {
	bools, ints, nums := qemuBoolKeys, qemuIntKeys, qemuNumberKeys
	if kind == kindLXC {
		bools, ints, nums = lxcBoolKeys, lxcIntKeys, lxcNumberKeys
	}
	out := make(map[string]any, len(conf)+1)
	for k, v := range conf {
		switch {
		case bools[k]:
			out[k] = b2i(boolValue(v))
		case ints[k]:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				out[k] = n
			} else {
				out[k] = v
			}
		case nums[k]:
			if f, err := strconv.ParseFloat(v, 64); err == nil {
				out[k] = f
			} else {
				out[k] = v
			}
		case k == "cipassword":
			out[k] = "**********"
		default:
			out[k] = v
		}
	}
	return out
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// volname is the part of a volume ID after "storage:".
func volname(v *volume) string {
	_, name, _ := strings.Cut(v.volid, ":")
	return name
}

// nextDiskIndex is the lowest N such that no volume of vmid on st is named
// disk-N.
func nextDiskIndex(st *store, vmid int) int {
	used := map[int]bool{}
	marker := fmt.Sprintf("-%d-disk-", vmid)
	for _, v := range st.vols {
		if v.vmid != vmid {
			continue
		}
		name := v.volid[strings.LastIndexByte(v.volid, '/')+1:]
		if i := strings.Index(name, marker); i >= 0 {
			rest := name[i+len(marker):]
			if j := strings.IndexByte(rest, '.'); j >= 0 {
				rest = rest[:j]
			}
			if n, err := strconv.Atoi(rest); err == nil {
				used[n] = true
			}
		}
	}
	n := 0
	for used[n] {
		n++
	}
	return n
}

// imageName is the volume name of disk idx of vmid on a storage of type typ:
// "vm-100-disk-0" on LVM, "100/vm-100-disk-0.qcow2" on a file storage.
func imageName(typ string, vmid, idx int, base bool, kind string) (name, format string) {
	prefix := "vm"
	if base {
		prefix = "base"
	}
	stem := fmt.Sprintf("%s-%d-disk-%d", prefix, vmid, idx)
	if typ == "lvmthin" {
		return stem, "raw"
	}
	if kind == kindLXC {
		return fmt.Sprintf("%d/%s.raw", vmid, stem), "raw"
	}
	return fmt.Sprintf("%d/%s.qcow2", vmid, stem), "qcow2"
}

func imageContent(kind string) string {
	if kind == kindLXC {
		return "rootdir"
	}
	return "images"
}

// newImage creates a new disk volume for g on st, without a space check.
func (s *Sim) newImage(st *store, g *guest, size uint64) *volume {
	return s.newImageAt(st, g, nextDiskIndex(st, g.vmid), size)
}

// newImageAt creates disk idx of g on st.
func (s *Sim) newImageAt(st *store, g *guest, idx int, size uint64) *volume {
	name, format := imageName(st.cfg.typ, g.vmid, idx, false, g.kind)
	v := &volume{volid: st.cfg.id + ":" + name, vmid: g.vmid, content: imageContent(g.kind), format: format,
		size: size, used: size, ctime: time.Now().Unix()}
	st.addVolume(v)
	return v
}

// allocImage creates a new disk volume of size bytes for vmid on st, or
// fails like the storage plugin when the storage is full.
func (s *Sim) allocImage(st *store, g *guest, size uint64) (*volume, error) {
	if st.used()+size > st.total {
		name, _ := imageName(st.cfg.typ, g.vmid, nextDiskIndex(st, g.vmid), false, g.kind)
		if st.cfg.typ == "lvmthin" {
			return nil, fmt.Errorf("lvcreate '%s/%s' error:   Insufficient free space: %d extents needed, but only %d available",
				st.cfg.vgname, name, size/(4*mib), (st.total-min(st.used(), st.total))/(4*mib))
		}
		return nil, fmt.Errorf("unable to create image: qemu-img: %s/images/%s: Could not resize file: No space left on device", st.cfg.path, name)
	}
	return s.newImage(st, g, size), nil
}

// newCloudInit creates g's cloud-init drive volume on st.
func (s *Sim) newCloudInit(st *store, g *guest) *volume {
	name, format := fmt.Sprintf("vm-%d-cloudinit", g.vmid), "raw"
	if st.cfg.typ != "lvmthin" {
		name, format = fmt.Sprintf("%d/vm-%d-cloudinit.qcow2", g.vmid, g.vmid), "qcow2"
	}
	v := &volume{volid: st.cfg.id + ":" + name, vmid: g.vmid, content: "images", format: format,
		size: 4 * mib, used: 4 * mib, ctime: time.Now().Unix()}
	st.addVolume(v)
	return v
}

func isCloudInit(volname string) bool { return strings.Contains(volname, "-cloudinit") }

// isBaseVolume reports whether a volume is a template's base volume (and
// not a linked clone of one), which linked clones can be made from.
func isBaseVolume(volname string) bool {
	return strings.HasPrefix(volname[strings.LastIndexByte(volname, '/')+1:], "base-")
}

// templateDisks turns g's disks into base volumes, as converting to a
// template does: vm-9000-disk-0 becomes base-9000-disk-0.
func (s *Sim) templateDisks(g *guest) {
	for _, d := range disks(g.kind, g.conf) {
		if d.cdrom || isCloudInit(d.volname) || isBaseVolume(d.volname) {
			continue
		}
		st := g.node.stores[d.storage]
		if st == nil {
			continue
		}
		v := st.vols[d.volid()]
		if v == nil {
			continue
		}
		newName := strings.Replace(d.volname, fmt.Sprintf("vm-%d-disk-", g.vmid), fmt.Sprintf("base-%d-disk-", g.vmid), 1)
		delete(st.vols, v.volid)
		v.volid = d.storage + ":" + newName
		st.addVolume(v)
		g.conf[d.key] = strings.Replace(g.conf[d.key], d.volname, newName, 1)
	}
}

var netModels = set("virtio", "e1000", "e1000e", "rtl8139", "vmxnet3", "i82551", "i82557b", "i82559er", "ne2k_isa", "ne2k_pci", "pcnet")

// addMACs gives every network device without a MAC address a random one,
// as Proxmox does on create and update.
func (s *Sim) addMACs(kind string, conf map[string]string) {
	for k, v := range conf {
		if !strings.HasPrefix(k, "net") || !isDigits(k[3:]) {
			continue
		}
		conf[k] = s.withMAC(kind, v)
	}
}

func (s *Sim) withMAC(kind, v string) string {
	parts := strings.Split(v, ",")
	if kind == kindLXC {
		for _, p := range parts {
			if strings.HasPrefix(p, "hwaddr=") {
				return v
			}
		}
		return v + ",hwaddr=" + s.randomMAC()
	}
	for i, p := range parts {
		key, val, hasVal := strings.Cut(p, "=")
		switch {
		case key == "macaddr":
			return v
		case key == "model" && hasVal:
			// "model=virtio,macaddr=..." form; add macaddr when missing below.
			continue
		case netModels[key]:
			if hasVal && val != "" {
				return v
			}
			parts[i] = key + "=" + s.randomMAC()
			return strings.Join(parts, ",")
		}
	}
	return v + ",macaddr=" + s.randomMAC()
}

// replaceMACs gives every network device a new MAC address, as a clone does.
func (s *Sim) replaceMACs(kind string, conf map[string]string) {
	for k, v := range conf {
		if !strings.HasPrefix(k, "net") || !isDigits(k[3:]) {
			continue
		}
		parts := strings.Split(v, ",")
		out := parts[:0]
		for _, p := range parts {
			key, _, _ := strings.Cut(p, "=")
			switch {
			case kind == kindLXC && key == "hwaddr", key == "macaddr":
				continue
			case kind == kindQemu && netModels[key]:
				p = key
			}
			out = append(out, p)
		}
		conf[k] = s.withMAC(kind, strings.Join(out, ","))
	}
}

// normalizeTags dedups and sorts a tag list and joins it with ";", as
// Proxmox stores tags with the default tag style.
func normalizeTags(s string) string {
	tags := splitTags(s)
	slices.Sort(tags)
	return strings.Join(slices.Compact(tags), ";")
}

var newDiskRe = regexp.MustCompile(`^([A-Za-z][A-Za-z0-9\-_.]*):(\d+(?:\.\d+)?)$`)

// diskAlloc is a disk option asking for a new volume: "local-lvm:32".
type diskAlloc struct {
	key     string
	storage string
	size    uint64 // bytes; 0 with cloudinit
	ci      bool
	opts    []string // the other options, e.g. "iothread=1"
}

// parseDiskAlloc reports whether value asks for a new volume.
func parseDiskAlloc(kind, key, value string) (diskAlloc, bool) {
	if !isDiskKey(kind, key) || strings.HasPrefix(key, "unused") {
		return diskAlloc{}, false
	}
	parts := strings.Split(value, ",")
	first, opts := parts[0], []string{}
	for _, p := range parts[1:] {
		k, v, _ := strings.Cut(p, "=")
		if k == "volume" || k == "file" {
			first = v
			continue
		}
		if k == "size" {
			continue
		}
		opts = append(opts, p)
	}
	if k, v, ok := strings.Cut(first, "="); ok && (k == "volume" || k == "file") {
		first = v
	}
	if st, rest, ok := strings.Cut(first, ":"); ok && rest == "cloudinit" && kind == kindQemu {
		return diskAlloc{key: key, storage: st, ci: true, opts: opts}, true
	}
	m := newDiskRe.FindStringSubmatch(first)
	if m == nil {
		return diskAlloc{}, false
	}
	gb, _ := strconv.ParseFloat(m[2], 64)
	return diskAlloc{key: key, storage: m[1], size: uint64(gb * gib), opts: opts}, true
}

// checkAllocStorage checks what a real create checks before it forks: the
// storage exists on the node and holds the guest's kind of volume.
func checkAllocStorage(n *node, kind string, a diskAlloc) error {
	st := n.stores[a.storage]
	if st == nil {
		return fmt.Errorf("storage '%s' does not exist", a.storage)
	}
	if kind == kindLXC && !st.cfg.hasContent("rootdir") {
		return fmt.Errorf("storage '%s' does not support container directories", a.storage)
	}
	if kind == kindQemu && !st.cfg.hasContent("images") {
		return fmt.Errorf("storage '%s' does not support vm images", a.storage)
	}
	return nil
}

// allocDisk allocates the volume a asks for and returns the option value
// that now names it.
func (s *Sim) allocDisk(g *guest, a diskAlloc) (string, error) {
	st := g.node.stores[a.storage]
	if err := checkAllocStorage(g.node, g.kind, a); err != nil {
		return "", err
	}
	if a.ci {
		v := s.newCloudInit(st, g)
		return strings.Join(append([]string{v.volid}, "media=cdrom"), ","), nil
	}
	v, err := s.allocImage(st, g, a.size)
	if err != nil {
		return "", err
	}
	opts := append(slices.Clone(a.opts), "size="+formatSize(a.size))
	slices.Sort(opts)
	return strings.Join(append([]string{v.volid}, opts...), ","), nil
}

// freeVolume destroys the volume a disk names, if g owns it.
func (s *Sim) freeVolume(g *guest, d disk) {
	st := g.node.stores[d.storage]
	if st == nil {
		return
	}
	if v := st.vols[d.volid()]; v != nil && v.vmid == g.vmid {
		delete(st.vols, v.volid)
	}
}

// nextUnused is the lowest free unusedN key.
func nextUnused(conf map[string]string) string {
	for i := 0; ; i++ {
		k := "unused" + strconv.Itoa(i)
		if _, ok := conf[k]; !ok {
			return k
		}
	}
}
