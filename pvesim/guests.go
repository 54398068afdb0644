package pvesim

import (
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"
)

func confDir(kind string) string {
	if kind == kindLXC {
		return "lxc"
	}
	return "qemu-server"
}

func typeName(kind string) string {
	if kind == kindLXC {
		return "CT"
	}
	return "VM"
}

// taskType is the worker type of an operation on a guest of kind, e.g.
// "qmstart" or "vzstart".
func taskType(kind, op string) string {
	switch {
	case kind == kindLXC:
		return "vz" + op
	case op == "migrate":
		return "qmigrate"
	}
	return "qm" + op
}

// errNoConfig is how Proxmox fails for a guest whose configuration is not
// on the node a request names.
func errNoConfig(node, kind string, vmid int) *apiError {
	return errf("Configuration file 'nodes/%s/%s/%d.conf' does not exist", node, confDir(kind), vmid)
}

func errLocked(g *guest) *apiError {
	return errf("%s is locked (%s)", g.typeName(), g.lock())
}

// findGuest returns the guest a /nodes/{node}/{kind}/{vmid} request names.
// It is called with Sim.mu held.
func (s *Sim) findGuest(q *req, kind string) (*guest, error) {
	n := s.nodeByName[q.nodeName()]
	g := n.guests[q.vmid()]
	if g == nil || g.kind != kind {
		return nil, errNoConfig(n.name, kind, q.vmid())
	}
	return g, nil
}

// current reports whether g is still the guest registered under its VMID
// on node n (an administrator may have removed or moved it meanwhile).
func (s *Sim) current(g *guest, n *node) error {
	if s.guests[g.vmid] != g || g.node != n {
		return errNoConfig(n.name, g.kind, g.vmid)
	}
	return nil
}

// guestEntry is a guest as the per-node lists and status/current show it.
func (s *Sim) guestEntry(g *guest, now time.Time) map[string]any {
	cpu, mem := g.usage(now)
	uptime := g.uptime(now)
	e := map[string]any{
		"vmid": g.vmid, "name": g.name(), "status": "stopped", "cpus": g.cpus(), "cpu": cpu,
		"maxmem": g.maxmem(), "mem": mem, "maxdisk": g.bootDiskSize(), "disk": 0, "uptime": uptime,
		"netin": uptime * 1200, "netout": uptime * 800, "diskread": uptime * 4096, "diskwrite": uptime * 2048,
	}
	if g.running {
		e["status"] = "running"
	}
	if g.template() {
		e["template"] = 1
	}
	if t := g.conf["tags"]; t != "" {
		e["tags"] = t
	}
	if l := g.lock(); l != "" {
		e["lock"] = l
	}
	if g.kind == kindLXC {
		e["type"] = "lxc"
		e["maxswap"] = uint64(atoiDefault(g.conf["swap"], 512)) * mib
		e["swap"] = 0
		if g.running {
			e["disk"] = g.bootDiskSize() / 100 * uint64(20+g.seed%50)
		}
	} else if g.running {
		e["pid"] = 10000 + int(g.seed%50000)
	}
	return e
}

func (s *Sim) listGuests(q *req, kind string) (any, error) {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodeByName[q.nodeName()]
	ids := make([]int, 0, len(n.guests))
	for id, g := range n.guests {
		if g.kind == kind {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		e := s.guestEntry(n.guests[id], now)
		if kind == kindQemu && q.boolv("full") && n.guests[id].running {
			e["qmpstatus"] = "running"
			e["running-machine"] = "pc-i440fx-9.2+pve1"
			e["running-qemu"] = "9.2.0"
		}
		out = append(out, e)
	}
	return out, nil
}

func (s *Sim) guestStatus(q *req, kind string) (any, error) {
	now := time.Now()
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	e := s.guestEntry(g, now)
	e["ha"] = map[string]any{"managed": 0}
	if kind == kindQemu {
		if strings.Contains(g.conf["agent"], "1") {
			e["agent"] = 1
		}
		if g.running {
			e["qmpstatus"] = "running"
			e["running-machine"] = "pc-i440fx-9.2+pve1"
			e["running-qemu"] = "9.2.0"
		} else {
			e["qmpstatus"] = "stopped"
		}
	}
	return e, nil
}

// configParams are request parameters of create and config calls that are
// not configuration keys.
var configParams = set("node", "vmid", "delete", "digest", "revert", "skiplock", "force", "background_delay",
	"storage", "start", "pool", "archive", "unique", "bwlimit", "live-restore", "ha-managed",
	"import-working-storage", "ostemplate", "password", "ssh-public-keys", "restore", "ignore-unpack-errors")

// normalizeValue adjusts a configuration value the way Proxmox writes it.
func (s *Sim) normalizeValue(kind, key, value string) string {
	switch {
	case key == "tags":
		return normalizeTags(value)
	case strings.HasPrefix(key, "net") && isDigits(key[3:]):
		return s.withMAC(kind, value)
	case key == "cipassword":
		return "$5$pvesim$" + strings.Repeat("x", 43)
	}
	return value
}

func (s *Sim) createGuest(q *req, kind string) (any, error) {
	if q.has("archive") || q.boolv("restore") {
		return s.restoreGuest(q, kind)
	}
	vmid := q.vmid()
	s.lock()
	defer s.unlock()
	n := s.nodeByName[q.nodeName()]
	emsg := fmt.Sprintf("unable to create %s %d -", typeName(kind), vmid)
	defStorage := q.str("storage")
	if kind == kindLXC && defStorage == "" {
		defStorage = "local"
	}
	conf := map[string]string{}
	var allocs []diskAlloc
	for _, k := range sortedKeys(q.params) {
		if configParams[k] {
			continue
		}
		v := q.str(k)
		if v == "" {
			continue
		}
		if kind == kindLXC && (k == "rootfs" || strings.HasPrefix(k, "mp")) && newDiskRe.MatchString("x:"+v) {
			v = defStorage + ":" + v
		}
		if a, ok := parseDiskAlloc(kind, k, v); ok {
			allocs = append(allocs, a)
			continue
		}
		conf[k] = s.normalizeValue(kind, k, v)
	}
	if kind == kindLXC {
		if _, ok := conf["rootfs"]; !ok && !slices.ContainsFunc(allocs, func(a diskAlloc) bool { return a.key == "rootfs" }) {
			allocs = append(allocs, diskAlloc{key: "rootfs", storage: defStorage, size: 4 * gib})
		}
		for _, a := range allocs {
			st := n.stores[a.storage]
			if st == nil {
				return nil, errf("storage '%s' does not exist", a.storage)
			}
			if !st.cfg.hasContent("rootdir") {
				return nil, paramErr("storage", "storage '%s' does not support container directories", a.storage)
			}
		}
	} else {
		for _, a := range allocs {
			st := n.stores[a.storage]
			if st == nil {
				return nil, errf("storage '%s' does not exist", a.storage)
			}
			if !st.cfg.hasContent("images") {
				return nil, paramErr("storage", "storage '%s' does not support vm images", a.storage)
			}
		}
	}
	if old := s.guests[vmid]; old != nil {
		return nil, errf("%s %s %d already exists on node '%s'", emsg, old.typeName(), vmid, old.node.name)
	}
	if kind == kindQemu {
		if _, ok := conf["smbios1"]; !ok {
			conf["smbios1"] = "uuid=" + s.randomUUID()
		}
		if _, ok := conf["vmgenid"]; !ok {
			conf["vmgenid"] = s.randomUUID()
		}
		conf["meta"] = fmt.Sprintf("creation-qemu=9.2.0,ctime=%d", time.Now().Unix())
	} else {
		if _, ok := conf["arch"]; !ok {
			conf["arch"] = "amd64"
		}
		if _, ok := conf["unprivileged"]; !ok {
			conf["unprivileged"] = "1"
		}
		if _, ok := conf["ostype"]; !ok {
			conf["ostype"] = ostypeOf(q.str("ostemplate"))
		}
	}
	conf["lock"] = "create"
	g := &guest{vmid: vmid, kind: kind, node: n, conf: conf, pool: q.str("pool"), seed: guestSeed(vmid), sim: s}
	s.guests[vmid] = g
	n.guests[vmid] = g
	startAfter := q.boolv("start")
	ostemplate := q.str("ostemplate")

	upid := s.spawn(n.name, taskType(kind, "create"), strconv.Itoa(vmid), q.user, 1, func(r *run) error {
		r.undo = func() {
			if s.guests[vmid] == g {
				s.removeGuest(g)
			}
		}
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if kind == kindLXC {
				if err := s.checkVolume(n, ostemplate, "vztmpl"); err != nil {
					return fmt.Errorf("%s %w", emsg, err)
				}
			}
			for _, a := range allocs {
				val, err := s.allocDisk(g, a)
				if err != nil {
					return fmt.Errorf("%s %w", emsg, err)
				}
				g.conf[a.key] = val
				if d, ok := parseDisk(a.key, val); ok {
					if n.stores[d.storage].cfg.typ == "lvmthin" {
						r.logf("  Logical volume \"%s\" created.", d.volname)
					} else {
						r.logf("Formatting '%s', fmt=%s size=%d", d.volname, strings.TrimPrefix(path.Ext(d.volname), "."), d.size)
					}
				}
			}
			if _, ok := g.conf["boot"]; !ok && kind == kindQemu {
				g.conf["boot"] = defaultBootOrder(g.conf)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if kind == kindLXC {
			r.logf("extracting archive '%s'", s.volumePath(ostemplate))
			r.logf("Total bytes read: 521902080 (498MiB, 118MiB/s)")
			r.logf("Detected container architecture: amd64")
			r.logf("Creating SSH host key 'ssh_host_ed25519_key' - this may take some time ...")
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		if err := r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			delete(g.conf, "lock")
			return nil
		}); err != nil {
			return err
		}
		if startAfter {
			r.logf("Execute autostart")
			if err := r.locked(func() error { return s.powerOn(r, g, n) }); err != nil {
				r.warn("%v", err)
			}
		}
		return nil
	})
	return upid, nil
}

// ostypeOf guesses a container OS type from its template file name.
func ostypeOf(template string) string {
	name := template[strings.LastIndexByte(template, '/')+1:]
	for _, os := range []string{"debian", "ubuntu", "alpine", "centos", "fedora", "archlinux", "opensuse", "gentoo", "nixos", "devuan"} {
		if strings.HasPrefix(name, os) {
			return os
		}
	}
	return "unmanaged"
}

// defaultBootOrder lists the disks and NICs of a new VM as Proxmox does.
func defaultBootOrder(conf map[string]string) string {
	var order []string
	for _, k := range sortedKeys(conf) {
		if (isDiskKey(kindQemu, k) && !strings.HasPrefix(k, "unused") && !strings.HasPrefix(k, "efidisk") &&
			!strings.HasPrefix(k, "tpmstate")) || (strings.HasPrefix(k, "net") && isDigits(k[3:])) {
			if d, ok := parseDisk(k, conf[k]); ok && isCloudInit(d.volname) {
				continue
			}
			order = append(order, k)
		}
	}
	slices.SortStableFunc(order, func(a, b string) int {
		return b2i(strings.HasPrefix(a, "net")) - b2i(strings.HasPrefix(b, "net"))
	})
	if len(order) == 0 {
		return "order=net0"
	}
	return "order=" + strings.Join(order, ";")
}

// checkVolume checks that volid exists on n with content ct.
func (s *Sim) checkVolume(n *node, volid, ct string) error {
	sid, _, ok := strings.Cut(volid, ":")
	st := n.stores[sid]
	if !ok || st == nil {
		return fmt.Errorf("storage '%s' does not exist", sid)
	}
	v := st.vols[volid]
	if v == nil || v.content != ct {
		return fmt.Errorf("volume '%s' does not exist", volid)
	}
	return nil
}

// volumePath is the file system path of a volume on a directory storage.
func (s *Sim) volumePath(volid string) string {
	sid, name, _ := strings.Cut(volid, ":")
	if c := s.storageByID[sid]; c != nil && c.path != "" {
		if ct, file, ok := strings.Cut(name, "/"); ok {
			dir := map[string]string{"vztmpl": "template/cache", "iso": "template/iso", "backup": "dump"}[ct]
			if dir != "" {
				return c.path + "/" + dir + "/" + file
			}
		}
	}
	return volid
}

// powerOn starts g on n, failing like QEMU or LXC when the node lacks the
// memory or CPUs. It is called with Sim.mu held.
func (s *Sim) powerOn(r *run, g *guest, n *node) error {
	if err := s.current(g, n); err != nil {
		return err
	}
	if g.running {
		if g.kind == kindLXC {
			return fmt.Errorf("CT %d already running", g.vmid)
		}
		return fmt.Errorf("VM %d already running", g.vmid)
	}
	if g.kind == kindQemu && g.cpus() > n.maxcpu {
		return fmt.Errorf("MAX %d vcpus allowed per VM on this node", n.maxcpu)
	}
	if n.hostMem()+n.committedMem()+g.maxmem() > n.maxmem {
		if g.kind == kindLXC {
			r.logf("lxc-start: %d: ../src/lxc/cgroups/cgfsng.c: cgroup memory limit exceeds available memory", g.vmid)
			return fmt.Errorf("startup for container '%d' failed", g.vmid)
		}
		r.logf("kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory")
		return fmt.Errorf("start failed: QEMU exited with code 1")
	}
	g.running = true
	g.started = time.Now()
	return nil
}

func (s *Sim) startGuest(q *req, kind string) (any, error) {
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if kind == kindLXC && g.running {
		return nil, errf("CT %d already running", g.vmid)
	}
	n := g.node
	skiplock := q.boolv("skiplock")
	return s.spawn(n.name, taskType(kind, "start"), strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if g.template() {
				if kind == kindLXC {
					return fmt.Errorf("you can't start a CT if it's a template")
				}
				return fmt.Errorf("you can't start a vm if it's a template")
			}
			if g.lock() != "" && !skiplock {
				return errLocked(g)
			}
			if g.running && kind == kindQemu {
				return fmt.Errorf("VM %d already running", g.vmid)
			}
			return nil
		})
		if err != nil {
			return err
		}
		if kind == kindQemu {
			if _, ok := g.conf["ide2"]; ok && strings.Contains(g.conf["ide2"], "cloudinit") {
				r.logf("generating cloud-init ISO")
			}
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error { return s.powerOn(r, g, n) })
	}), nil
}

func (s *Sim) stopGuest(q *req, kind string, shutdown bool) (any, error) {
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if kind == kindLXC && !g.running {
		return nil, errf("CT %d not running", g.vmid)
	}
	n := g.node
	op := "stop"
	if shutdown {
		op = "shutdown"
	}
	skiplock := q.boolv("skiplock")
	return s.spawn(n.name, taskType(kind, op), strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		if err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if kind == kindQemu && g.lock() != "" && !skiplock {
				return errLocked(g)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if kind == kindLXC && !g.running {
				return fmt.Errorf("CT %d not running", g.vmid)
			}
			g.running = false
			return nil
		})
	}), nil
}

func (s *Sim) getConfig(q *req, kind string) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	conf := g.conf
	if name := q.str("snapshot"); name != "" {
		sn := g.snapshot(name)
		if sn == nil {
			return nil, errf("snapshot '%s' does not exist", name)
		}
		conf = sn.conf
	}
	out := confJSON(kind, conf)
	out["digest"] = digestConf(conf)
	return out, nil
}

func (g *guest) snapshot(name string) *snapshot {
	for _, sn := range g.snaps {
		if sn.name == name {
			return sn
		}
	}
	return nil
}

// configChange is a parsed config update: keys to set, disks to allocate,
// keys to delete.
type configChange struct {
	set    map[string]string
	allocs []diskAlloc
	delete []string
}

func (s *Sim) parseConfigChange(q *req, kind string) (configChange, error) {
	c := configChange{set: map[string]string{}}
	for _, k := range strings.FieldsFunc(q.str("delete"), func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == 0 }) {
		if q.has(k) {
			return c, paramErr("delete", "conflicting values for option '%s'", k)
		}
		if k == "rootfs" && kind == kindLXC {
			return c, paramErr("delete", "unable to delete required option '%s'", k)
		}
		c.delete = append(c.delete, k)
	}
	for _, k := range sortedKeys(q.params) {
		if configParams[k] {
			continue
		}
		v := q.str(k)
		if v == "" {
			continue
		}
		if a, ok := parseDiskAlloc(kind, k, v); ok {
			c.allocs = append(c.allocs, a)
			continue
		}
		c.set[k] = s.normalizeValue(kind, k, v)
	}
	if len(c.set) == 0 && len(c.allocs) == 0 && len(c.delete) == 0 && !q.has("revert") {
		return c, errf("no options specified")
	}
	return c, nil
}

// applyConfig applies c to g with Sim.mu held. Either all of c is applied
// or, on error, nothing.
func (s *Sim) applyConfig(g *guest, c configChange) error {
	for _, a := range c.allocs {
		if err := checkAllocStorage(g.node, g.kind, a); err != nil {
			return err
		}
	}
	// An existing volume set as a disk must exist; it gets its size
	// recorded, and the unusedN entry that named it goes, as Proxmox
	// does when a detached disk is attached again.
	attach := map[string]string{}
	for k, v := range c.set {
		d, ok := parseDisk(k, v)
		if !isDiskKey(g.kind, k) || strings.HasPrefix(k, "unused") || !ok || d.cdrom {
			continue
		}
		_, vol := findVolume(g.node, d.volid())
		if vol == nil {
			return fmt.Errorf("volume '%s' does not exist", d.volid())
		}
		if d.size == 0 {
			v = rewriteDisk(v, d.volid(), vol.size)
		}
		attach[k] = v
	}
	var done []disk
	newVals := map[string]string{}
	for _, a := range c.allocs {
		val, err := s.allocDisk(g, a)
		if err != nil {
			for _, d := range done {
				s.freeVolume(g, d)
			}
			return err
		}
		d, _ := parseDisk(a.key, val)
		done = append(done, d)
		newVals[a.key] = val
	}
	conf := g.conf
	detach := func(key string) {
		old, ok := conf[key]
		if !ok {
			return
		}
		delete(conf, key)
		d, isVol := parseDisk(key, old)
		switch {
		case !isDiskKey(g.kind, key) || !isVol || d.cdrom && !isCloudInit(d.volname):
		case strings.HasPrefix(key, "unused") || isCloudInit(d.volname):
			s.freeVolume(g, d)
		default:
			conf[nextUnused(conf)] = d.volid()
		}
	}
	for _, k := range c.delete {
		detach(k)
	}
	for k, v := range newVals {
		detach(k)
		conf[k] = v
	}
	for k, v := range c.set {
		if isDiskKey(g.kind, k) {
			if old, ok := parseDisk(k, conf[k]); ok {
				if nd, ok := parseDisk(k, v); !ok || nd.volid() != old.volid() {
					detach(k)
				}
			}
		}
		if av, ok := attach[k]; ok {
			v = av
			d, _ := parseDisk(k, v)
			for uk, uv := range conf {
				if ud, ok := parseDisk(uk, uv); ok && strings.HasPrefix(uk, "unused") && ud.volid() == d.volid() {
					delete(conf, uk)
				}
			}
		}
		conf[k] = v
	}
	return nil
}

// updateConfig serves PUT config (both kinds, synchronous) and POST config
// (qemu, as a qmconfig task).
func (s *Sim) updateConfig(q *req, kind string, async bool) (any, error) {
	c, err := s.parseConfigChange(q, kind)
	if err != nil {
		return nil, err
	}
	skiplock := q.boolv("skiplock")
	digest := q.str("digest")
	check := func(g *guest) error {
		if digest != "" && digest != digestConf(g.conf) {
			return errf("checksum mismatch (file change by other user?)")
		}
		if g.lock() != "" && !skiplock {
			return errLocked(g)
		}
		return nil
	}
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if !async {
		if err := check(g); err != nil {
			return nil, err
		}
		if err := s.applyConfig(g, c); err != nil {
			return nil, errf("%v", err)
		}
		return nil, nil
	}
	n := g.node
	return s.spawn(n.name, "qmconfig", strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := check(g); err != nil {
				return err
			}
			for k, v := range c.set {
				r.logf("update VM %d: -%s %s", g.vmid, k, v)
			}
			return s.applyConfig(g, c)
		})
	}), nil
}

// cloneDisk is one disk of a clone: the source disk and how to copy it.
type cloneDisk struct {
	src     disk
	storage string // target storage
	linked  bool
	ci      bool
}

func (s *Sim) cloneGuest(q *req, kind string) (any, error) {
	newid := atoiDefault(q.str("newid"), 0)
	s.lock()
	defer s.unlock()
	src, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	n := src.node
	target := q.str("target")
	if target == n.name || target == "localhost" {
		target = ""
	}
	var tnode *node
	if target != "" {
		if tnode = s.nodeByName[target]; tnode == nil {
			return nil, errf("no such cluster node '%s'", target)
		}
	}
	storage := q.str("storage")
	if storage != "" {
		st := n.stores[storage]
		if st == nil {
			return nil, errf("storage '%s' does not exist", storage)
		}
		if !st.cfg.hasContent(imageContent(kind)) {
			if kind == kindLXC {
				return nil, paramErr("storage", "storage '%s' does not support container directories", storage)
			}
			return nil, paramErr("storage", "storage '%s' does not support vm images", storage)
		}
		if tnode != nil && !st.cfg.shared {
			return nil, errf("can't clone to non-shared storage '%s'", storage)
		}
	}
	if src.lock() != "" {
		return nil, errLocked(src)
	}
	srcConf := src.conf
	if name := q.str("snapname"); name != "" {
		sn := src.snapshot(name)
		if sn == nil {
			return nil, errf("snapshot '%s' does not exist", name)
		}
		srcConf = sn.vm
	}
	full := !src.template()
	if q.has("full") {
		full = q.boolv("full")
	}
	if !full && storage != "" {
		return nil, errf("parameter 'storage' not allowed for linked clones")
	}
	if !full && q.has("format") {
		return nil, errf("parameter 'format' not allowed for linked clones")
	}
	if kind == kindLXC && full && src.running && q.str("snapname") == "" {
		return nil, errf("Full clone of a running container is only possible from a snapshot")
	}
	var cds []cloneDisk
	// Like check_storage_access_clone: the clone may go to another node
	// only if every source volume (CD-ROMs included) is on shared storage,
	// whatever storage a full clone writes to.
	shared := true
	var total uint64
	for _, d := range disks(kind, srcConf) {
		if strings.HasPrefix(d.key, "unused") {
			continue
		}
		st := n.stores[d.storage]
		if st == nil {
			return nil, errf("storage '%s' does not exist", d.storage)
		}
		if !st.cfg.shared {
			shared = false
		}
		if d.cdrom && !isCloudInit(d.volname) {
			continue
		}
		cd := cloneDisk{src: d, storage: d.storage, ci: isCloudInit(d.volname)}
		switch {
		case cd.ci:
		case full:
			if storage != "" {
				cd.storage = storage
			}
			total += d.size
		default:
			if !isBaseVolume(d.volname) {
				return nil, errf("Linked clone feature is not supported for drive '%s'", d.key)
			}
			cd.linked = true
		}
		cds = append(cds, cd)
	}
	if tnode != nil && !shared {
		return nil, errf("can't clone %s to node '%s' (%s uses local storage)", typeName(kind), target, typeName(kind))
	}
	if old := s.guests[newid]; old != nil {
		if kind == kindLXC {
			return nil, errf("unable to create CT %d - CT %d already exists on node '%s'", newid, newid, old.node.name)
		}
		return nil, errf("unable to create VM %d: config file already exists", newid)
	}

	conf := map[string]string{}
	for k, v := range srcConf {
		switch {
		case k == "parent", k == "snaptime", k == "vmstate", k == "snapstate", k == "runningcpu", k == "runningmachine",
			k == "template", k == "lock", isDiskKey(kind, k):
		default:
			conf[k] = v
		}
	}
	for _, d := range disks(kind, srcConf) {
		if d.cdrom && !isCloudInit(d.volname) {
			conf[d.key] = srcConf[d.key]
		}
	}
	s.replaceMACs(kind, conf)
	if kind == kindQemu {
		if name := q.str("name"); name != "" {
			conf["name"] = name
		} else {
			conf["name"] = "Copy-of-VM-" + strings.TrimPrefix(src.name(), "VM ")
		}
		conf["smbios1"] = "uuid=" + s.randomUUID()
		if _, ok := conf["vmgenid"]; ok {
			conf["vmgenid"] = s.randomUUID()
		}
	} else if h := q.str("hostname"); h != "" {
		conf["hostname"] = h
	}
	if d := q.str("description"); d != "" {
		conf["description"] = d
	}
	conf["lock"] = "clone"
	g := &guest{vmid: newid, kind: kind, node: n, conf: conf, pool: q.str("pool"), seed: guestSeed(newid), sim: s}
	s.guests[newid] = g
	n.guests[newid] = g
	src.busy++
	weight := 1.0
	if full {
		weight = 3
	}
	return s.spawn(n.name, taskType(kind, "clone"), strconv.Itoa(src.vmid), q.user, weight, func(r *run) error {
		r.undo = func() {
			src.busy--
			if s.guests[newid] == g {
				s.removeGuest(g)
			}
		}
		for _, cd := range cds {
			var v *volume
			err := r.locked(func() error {
				if err := s.current(g, n); err != nil {
					return err
				}
				nv, err := s.cloneVolume(g, n, cd)
				if err != nil {
					return err
				}
				v = nv
				val := v.volid
				if _, opts, ok := strings.Cut(srcConf[cd.src.key], ","); cd.ci {
					val += ",media=cdrom"
				} else if ok {
					val += "," + opts
				}
				g.conf[cd.src.key] = val
				return nil
			})
			if err != nil {
				return fmt.Errorf("%s%w", failPrefix(r.t.typ), err)
			}
			switch {
			case cd.ci:
			case cd.linked:
				r.logf("create linked clone of drive %s (%s)", cd.src.key, cd.src.volid())
			default:
				r.logf("create full clone of drive %s (%s)", cd.src.key, cd.src.volid())
				if n.stores[cd.storage].cfg.typ == "lvmthin" {
					r.logf("  Logical volume \"%s\" created.", volname(v))
				}
				if err := r.transfer(float64(cd.src.size)/float64(max(total, 1)), cd.src.size); err != nil {
					return err
				}
			}
		}
		if total == 0 {
			if err := r.sleep(1); err != nil {
				return err
			}
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			src.busy--
			delete(g.conf, "lock")
			if tnode != nil {
				delete(n.guests, newid)
				g.node = tnode
				tnode.guests[newid] = g
			}
			return nil
		})
	}), nil
}

// cloneVolume creates the volume of one disk of clone g.
func (s *Sim) cloneVolume(g *guest, n *node, cd cloneDisk) (*volume, error) {
	st := n.stores[cd.storage]
	switch {
	case cd.ci:
		return s.newCloudInit(st, g), nil
	case cd.linked:
		src := st.vols[cd.src.volid()]
		idx := nextDiskIndex(st, g.vmid)
		name, format := imageName(st.cfg.typ, g.vmid, idx, false, g.kind)
		base := cd.src.volname
		name = base + "/" + name
		size := cd.src.size
		if src != nil {
			size = src.size
		}
		v := &volume{volid: cd.storage + ":" + name, vmid: g.vmid, content: imageContent(g.kind), format: format,
			size: size, used: size / 50, parent: base, ctime: time.Now().Unix()}
		st.addVolume(v)
		return v, nil
	}
	return s.allocImage(st, g, cd.src.size)
}

func (s *Sim) deleteGuest(q *req, kind string) (any, error) {
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if boolValue(g.conf["protection"]) {
		return nil, errf("can't remove %s %d - protection mode enabled", typeName(kind), g.vmid)
	}
	force := q.boolv("force")
	skiplock := q.boolv("skiplock")
	if kind == kindQemu && g.running {
		return nil, errf("VM %d is running - destroy failed", g.vmid)
	}
	if kind == kindLXC {
		if g.lock() != "" {
			return nil, errLocked(g)
		}
		if g.running && !force {
			return nil, errf("unable to destroy CT %d - container is running", g.vmid)
		}
	}
	n := g.node
	return s.spawn(n.name, taskType(kind, "destroy"), strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		var oldLock string
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := checkConfigLock(g); err != nil {
				return err
			}
			if g.lock() != "" && !skiplock {
				return errLocked(g)
			}
			if g.running {
				if kind == kindQemu || !force {
					return fmt.Errorf("%s %d is running - destroy failed", typeName(kind), g.vmid)
				}
				r.logf("forced to stop CT %d before destroying!", g.vmid)
				g.running = false
			}
			oldLock = g.lock()
			g.conf["lock"] = "destroyed"
			r.undo = func() {
				if oldLock == "" {
					delete(g.conf, "lock")
				} else {
					g.conf["lock"] = oldLock
				}
			}
			for _, d := range disks(kind, g.conf) {
				if !d.cdrom || isCloudInit(d.volname) {
					if st := n.stores[d.storage]; st != nil && st.cfg.typ == "lvmthin" {
						r.logf("  Logical volume \"%s\" successfully removed.", d.volname)
					}
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if s.guests[g.vmid] == g {
				s.removeGuest(g)
			}
			return nil
		})
	}), nil
}

func (s *Sim) migrateGuest(q *req, kind string) (any, error) {
	target := q.str("target")
	s.lock()
	defer s.unlock()
	n := s.nodeByName[q.nodeName()]
	if target == n.name {
		return nil, paramErr("target", "target is local node.")
	}
	tnode := s.nodeByName[target]
	if tnode == nil {
		return nil, errf("no such cluster node '%s'", target)
	}
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if g.lock() != "" {
		return nil, errLocked(g)
	}
	online := q.boolv("online")
	restart := kind == kindLXC && q.boolv("restart")
	if g.running {
		switch {
		case kind == kindQemu && !online:
			return nil, errf("can't migrate running VM without --online")
		case kind == kindLXC && !online && !restart:
			return nil, errf("can't migrate running container without --online or --restart")
		case kind == kindLXC && online && !restart:
			return nil, errf("lxc live migration is currently not implemented")
		}
	}
	withLocal := q.boolv("with-local-disks")
	var local []disk
	var total uint64
	for _, d := range disks(kind, g.conf) {
		if d.cdrom && !isCloudInit(d.volname) {
			continue
		}
		if st := n.stores[d.storage]; st != nil && !st.cfg.shared {
			local = append(local, d)
			total += d.size
		}
	}
	return s.spawn(n.name, taskType(kind, "migrate"), strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		prefix := failPrefix(r.t.typ)
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := checkConfigLock(g); err != nil {
				return err
			}
			if g.lock() != "" {
				return errLocked(g)
			}
			if g.running && kind == kindQemu && len(local) > 0 && !withLocal {
				return fmt.Errorf("%scan't live migrate attached local disks without with-local-disks option", prefix)
			}
			for _, d := range local {
				if tnode.stores[d.storage] == nil {
					return fmt.Errorf("%sstorage '%s' is not available on node '%s'", prefix, d.storage, target)
				}
			}
			g.conf["lock"] = "migrate"
			r.undo = func() {
				if g.conf["lock"] == "migrate" {
					delete(g.conf, "lock")
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		r.logf("%s starting migration of %s %d to node '%s' (%s)", time.Now().Format("2006-01-02 15:04:05"), typeName(kind), g.vmid, target, tnode.ip)
		for _, d := range local {
			r.logf("found local disk '%s' (attached)", d.volid())
		}
		if total > 0 {
			if err := r.transfer(1, total); err != nil {
				return err
			}
		} else if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if !tnode.online {
				return fmt.Errorf("%sCan't connect to destination address using public key", prefix)
			}
			if g.running && tnode.hostMem()+tnode.committedMem()+g.maxmem() > tnode.maxmem {
				r.logf("kvm: cannot set up guest memory 'pc.ram': Cannot allocate memory")
				return fmt.Errorf("%sstart failed: QEMU exited with code 1", prefix)
			}
			for _, d := range local {
				tst := tnode.stores[d.storage]
				if v := n.stores[d.storage].vols[d.volid()]; v != nil && tst.used()+v.used > tst.total {
					return fmt.Errorf("%sstorage migration for '%s' to storage '%s' failed - no space left", prefix, d.volid(), d.storage)
				}
			}
			for _, d := range local {
				sst, tst := n.stores[d.storage], tnode.stores[d.storage]
				if v := sst.vols[d.volid()]; v != nil {
					delete(sst.vols, v.volid)
					tst.addVolume(v)
				}
			}
			delete(n.guests, g.vmid)
			g.node = tnode
			tnode.guests[g.vmid] = g
			delete(g.conf, "lock")
			if g.running {
				g.started = time.Now()
			}
			r.logf("migration finished successfully (duration %s)", time.Since(r.t.start).Round(time.Second))
			return nil
		})
	}), nil
}

// Snapshots.

func (s *Sim) listSnapshots(q *req, kind string) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	out := make([]map[string]any, 0, len(g.snaps)+1)
	for _, sn := range g.snaps {
		e := map[string]any{"name": sn.name, "snaptime": sn.snaptime, "description": sn.description}
		if kind == kindQemu {
			e["vmstate"] = b2i(sn.vmstate)
		}
		if sn.parent != "" {
			e["parent"] = sn.parent
		}
		out = append(out, e)
	}
	cur := map[string]any{"name": "current", "digest": digestConf(g.conf), "running": b2i(g.running),
		"description": "You are here!"}
	if p := g.conf["parent"]; p != "" {
		cur["parent"] = p
	}
	return append(out, cur), nil
}

// checkSnapshotStorage fails like Proxmox when a disk is on a storage (or in
// a format) that cannot take snapshots.
func (s *Sim) checkSnapshotStorage(g *guest) error {
	for _, d := range disks(g.kind, g.conf) {
		if d.cdrom || isCloudInit(d.volname) || strings.HasPrefix(d.key, "unused") {
			continue
		}
		st := g.node.stores[d.storage]
		if st == nil {
			continue
		}
		if st.cfg.typ != "lvmthin" && !strings.HasSuffix(d.volname, ".qcow2") {
			return fmt.Errorf("snapshot feature is not available")
		}
	}
	return nil
}

func (s *Sim) createSnapshot(q *req, kind string) (any, error) {
	name := q.str("snapname")
	if name == "current" {
		return nil, errf("unable to use snapshot name 'current' (reserved name)")
	}
	if strings.EqualFold(name, "pending") {
		return nil, errf("unable to use snapshot name 'pending' (reserved name)")
	}
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	n := g.node
	vmstate := kind == kindQemu && q.boolv("vmstate")
	desc := q.str("description")
	return s.spawn(n.name, taskType(kind, "snapshot"), strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := checkConfigLock(g); err != nil {
				return err
			}
			if g.lock() != "" {
				return errLocked(g)
			}
			if g.snapshot(name) != nil {
				return fmt.Errorf("snapshot name '%s' already used", name)
			}
			if err := s.checkSnapshotStorage(g); err != nil {
				return err
			}
			g.conf["lock"] = "snapshot"
			r.undo = func() {
				if g.conf["lock"] == "snapshot" {
					delete(g.conf, "lock")
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, d := range disks(kind, g.conf) {
			if !d.cdrom && !strings.HasPrefix(d.key, "unused") && !isCloudInit(d.volname) {
				r.logf("snapshotting '%s' (%s)", d.key, d.volid())
				if st := n.stores[d.storage]; st != nil && st.cfg.typ == "lvmthin" {
					r.logf("  Logical volume \"snap_%s_%s\" created.", d.volname, name)
				}
			}
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			delete(g.conf, "lock")
			sn := &snapshot{name: name, parent: g.conf["parent"], description: desc, snaptime: time.Now().Unix(),
				vmstate: vmstate && g.running, vm: cloneConf(g.conf)}
			delete(sn.vm, "parent")
			s.chargeSnapshot(g, sn)
			// The snapshot section of a config file: the guest's
			// config then, with the snapshot's own keys.
			sc := cloneConf(sn.vm)
			sc["snaptime"] = strconv.FormatInt(sn.snaptime, 10)
			setOrDelete(sc, "parent", sn.parent)
			setOrDelete(sc, "description", desc)
			if sn.state != "" {
				sc["vmstate"] = sn.state
			}
			sn.conf = sc
			g.snaps = append(g.snaps, sn)
			g.conf["parent"] = name
			return nil
		})
	}), nil
}

func (s *Sim) deleteSnapshot(q *req, kind string) (any, error) {
	name := q.str("snapname")
	force := q.boolv("force")
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	n := g.node
	return s.spawn(n.name, taskType(kind, "delsnapshot"), strconv.Itoa(g.vmid), q.user, 0.5, func(r *run) error {
		if err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := checkConfigLock(g); err != nil {
				return err
			}
			if g.lock() != "" && !force {
				return errLocked(g)
			}
			if g.snapshot(name) == nil {
				return fmt.Errorf("snapshot '%s' does not exist", name)
			}
			return nil
		}); err != nil {
			return err
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			sn := g.snapshot(name)
			if sn == nil {
				return fmt.Errorf("snapshot '%s' does not exist", name)
			}
			for _, other := range g.snaps {
				if other.parent == name {
					other.parent = sn.parent
					setOrDelete(other.conf, "parent", sn.parent)
				}
			}
			if g.conf["parent"] == name {
				setOrDelete(g.conf, "parent", sn.parent)
			}
			g.snaps = slices.DeleteFunc(g.snaps, func(x *snapshot) bool { return x == sn })
			s.releaseSnapshot(g, sn)
			return nil
		})
	}), nil
}

func setOrDelete(m map[string]string, k, v string) {
	if v == "" {
		delete(m, k)
	} else {
		m[k] = v
	}
}

func (s *Sim) rollbackSnapshot(q *req, kind string) (any, error) {
	name := q.str("snapname")
	startAfter := q.boolv("start")
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if g.snapshot(name) == nil {
		return nil, errf("snapshot '%s' does not exist", name)
	}
	n := g.node
	return s.spawn(n.name, taskType(kind, "rollback"), strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		if err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := checkConfigLock(g); err != nil {
				return err
			}
			if g.lock() != "" {
				return errLocked(g)
			}
			if g.snapshot(name) == nil {
				return fmt.Errorf("snapshot '%s' does not exist", name)
			}
			g.conf["lock"] = "rollback"
			r.undo = func() {
				if g.conf["lock"] == "rollback" {
					delete(g.conf, "lock")
				}
			}
			return nil
		}); err != nil {
			return err
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		err := r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			sn := g.snapshot(name)
			if sn == nil {
				return fmt.Errorf("snapshot '%s' does not exist", name)
			}
			g.running = sn.vmstate && g.running
			conf := cloneConf(sn.vm)
			conf["parent"] = name
			g.conf = conf
			return nil
		})
		if err != nil || !startAfter {
			return err
		}
		if err := r.locked(func() error { return s.powerOn(r, g, n) }); err != nil {
			r.warn("%v", err)
		}
		return nil
	}), nil
}

func (s *Sim) templateGuest(q *req) (any, error) {
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kindQemu)
	if err != nil {
		return nil, err
	}
	check := func() error {
		switch {
		case g.lock() != "":
			return errLocked(g)
		case len(g.snaps) > 0:
			return errf("unable to create template, because VM contains snapshots")
		case g.template():
			return errf("you can't convert a template to a template")
		case g.running:
			return errf("you can't convert a VM to template if VM is running")
		}
		return nil
	}
	if err := check(); err != nil {
		return nil, err
	}
	n := g.node
	return s.spawn(n.name, "qmtemplate", strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		for _, d := range disks(kindQemu, g.conf) {
			if !d.cdrom && !isCloudInit(d.volname) && !strings.HasPrefix(d.key, "unused") {
				if st := n.stores[d.storage]; st != nil && st.cfg.typ == "lvmthin" {
					r.logf("  Renamed \"%s\" to \"%s\" in volume group \"pve\"", d.volname,
						strings.Replace(d.volname, "vm-", "base-", 1))
				}
			}
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := check(); err != nil {
				return err
			}
			g.conf["template"] = "1"
			s.templateDisks(g)
			return nil
		})
	}), nil
}

// snapshotShare is the fraction of a disk's size a snapshot is charged
// on its storage: the blocks the guest has written since.
const snapshotShare = 100

// chargeSnapshot makes the storage of g's disks pay for snapshot sn, and
// saves the VM state of a vmstate snapshot in a volume as Proxmox does
// (vm-100-state-NAME, twice the memory and 500 MiB, on the storage of the
// first disk). It is called with Sim.mu held.
func (s *Sim) chargeSnapshot(g *guest, sn *snapshot) {
	sn.usage = map[string]uint64{}
	var first *store
	for _, d := range disks(g.kind, g.conf) {
		if d.cdrom || isCloudInit(d.volname) || strings.HasPrefix(d.key, "unused") {
			continue
		}
		st, v := findVolume(g.node, d.volid())
		if v == nil {
			continue
		}
		if first == nil {
			first = st
		}
		share := v.size / snapshotShare
		v.snapUsed += share
		sn.usage[v.volid] += share
	}
	if !sn.vmstate || first == nil {
		return
	}
	name := fmt.Sprintf("vm-%d-state-%s", g.vmid, sn.name)
	if first.cfg.typ != "lvmthin" {
		name = fmt.Sprintf("%d/%s.raw", g.vmid, name)
	}
	size := uint64(g.memMiB()*2+500) * mib
	v := &volume{volid: first.cfg.id + ":" + name, vmid: g.vmid, content: "images", format: "raw",
		size: size, used: size, ctime: sn.snaptime}
	first.addVolume(v)
	sn.state = v.volid
}

// releaseSnapshot gives back what chargeSnapshot took for a deleted
// snapshot. It is called with Sim.mu held.
func (s *Sim) releaseSnapshot(g *guest, sn *snapshot) {
	for volid, share := range sn.usage {
		if _, v := findVolume(g.node, volid); v != nil {
			v.snapUsed -= min(share, v.snapUsed)
		}
	}
	if st, v := findVolume(g.node, sn.state); v != nil {
		delete(st.vols, v.volid)
	}
}
