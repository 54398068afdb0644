package pvesim

import (
	"cmp"
	"crypto/sha1"
	"encoding/hex"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

func (s *Sim) storageEntry(st *store) map[string]any {
	used, total := st.used(), st.total
	return map[string]any{
		"storage": st.cfg.id, "type": st.cfg.typ, "content": strings.Join(st.cfg.content, ","),
		"shared": b2i(st.cfg.shared), "active": 1, "enabled": 1,
		"total": total, "used": used, "avail": total - min(used, total),
		"used_fraction": float64(used) / float64(max(total, 1)),
	}
}

func (s *Sim) listNodeStorage(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n := s.nodeByName[q.nodeName()]
	var wanted []string
	if c := q.str("content"); c != "" {
		wanted = strings.Split(c, ",")
	}
	out := []map[string]any{}
	for _, c := range s.storage {
		st := n.stores[c.id]
		if st == nil || (q.has("storage") && q.str("storage") != c.id) {
			continue
		}
		if len(wanted) > 0 && !slices.ContainsFunc(wanted, c.hasContent) {
			continue
		}
		if q.has("target") && q.str("target") != n.name && !c.shared {
			if tn := s.nodeByName[q.str("target")]; tn == nil || tn.stores[c.id] == nil {
				continue
			}
		}
		e := s.storageEntry(st)
		if q.boolv("format") {
			def := "raw"
			supported := []string{"raw"}
			if c.typ != "lvmthin" {
				def, supported = "qcow2", []string{"qcow2", "raw", "vmdk"}
			}
			e["formats"] = map[string]any{"default": def, "supported": supported}
		}
		out = append(out, e)
	}
	return out, nil
}

// nodeStore is the storage a /nodes/{node}/storage/{storage} request names.
// It is called with Sim.mu held.
func (s *Sim) nodeStore(q *req) (*store, error) {
	id := q.str("storage")
	if s.storageByID[id] == nil {
		return nil, errf("storage '%s' does not exist", id)
	}
	st := s.nodeByName[q.nodeName()].stores[id]
	if st == nil {
		return nil, errf("storage '%s' is not available on node '%s'", id, q.nodeName())
	}
	return st, nil
}

func (s *Sim) storageStatus(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, err := s.nodeStore(q)
	if err != nil {
		return nil, err
	}
	e := s.storageEntry(st)
	delete(e, "storage")
	delete(e, "used_fraction")
	return e, nil
}

func (s *Sim) storageContent(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, err := s.nodeStore(q)
	if err != nil {
		return nil, err
	}
	content := q.str("content")
	vmid := q.vmid()
	ids := sortedKeys(st.vols)
	out := make([]map[string]any, 0, len(ids))
	for _, id := range ids {
		v := st.vols[id]
		if (content != "" && v.content != content) || (q.has("vmid") && v.vmid != vmid) {
			continue
		}
		e := map[string]any{"volid": v.volid, "content": v.content, "format": v.format, "size": v.size, "ctime": v.ctime}
		if v.vmid != 0 {
			e["vmid"] = v.vmid
		}
		if v.parent != "" {
			e["parent"] = v.parent
		}
		if v.content == "images" || v.content == "rootdir" {
			e["used"] = v.used
		}
		if v.content == "backup" {
			e["subtype"] = v.subtype
			if v.notes != "" {
				e["notes"] = v.notes
			}
			if v.protected {
				e["protected"] = 1
			}
		}
		out = append(out, e)
	}
	return out, nil
}

func storageConfigEntry(c *storageConfig) map[string]any {
	e := map[string]any{"storage": c.id, "type": c.typ, "content": strings.Join(c.content, ",")}
	switch c.typ {
	case "dir":
		e["path"] = c.path
		e["prune-backups"] = "keep-all=1"
		if c.shared {
			e["shared"] = 1
		}
	case "lvmthin":
		e["vgname"] = c.vgname
		e["thinpool"] = c.thinpool
	case "nfs":
		e["server"] = c.server
		e["export"] = c.export
		e["path"] = c.path
		e["options"] = "vers=4.2"
		e["prune-backups"] = "keep-all=1"
	}
	h := sha1.Sum([]byte(fmt.Sprint(e)))
	e["digest"] = hex.EncodeToString(h[:])
	return e
}

func (s *Sim) listStorageConfig(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	out := []map[string]any{}
	for _, c := range s.storage {
		if q.has("type") && q.str("type") != c.typ {
			continue
		}
		out = append(out, storageConfigEntry(c))
	}
	return out, nil
}

func (s *Sim) getStorageConfig(q *req) (any, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c := s.storageByID[q.str("storage")]
	if c == nil {
		return nil, errf("storage '%s' does not exist", q.str("storage"))
	}
	return storageConfigEntry(c), nil
}

// vzdump serves POST /nodes/{node}/vzdump: a backup job of the named
// guests that live on this node.
func (s *Sim) vzdump(q *req) (any, error) {
	switch {
	case q.boolv("all") && q.has("vmid"):
		return nil, paramErr("all", "option conflicts with option 'vmid'")
	case q.has("exclude") && q.has("vmid"):
		return nil, paramErr("exclude", "option conflicts with option 'vmid'")
	case q.has("pool") && q.has("vmid"):
		return nil, paramErr("pool", "option conflicts with option 'vmid'")
	case !q.boolv("all") && !q.boolv("stop") && !q.has("pool") && !q.has("vmid"):
		return nil, paramErr("vmid", "property is missing")
	case q.has("pool"):
		return nil, errf("pool '%s' does not exist", q.str("pool"))
	}
	s.lock()
	defer s.unlock()
	n := s.nodeByName[q.nodeName()]
	var vmids []int
	if q.boolv("all") {
		excluded := map[int]bool{}
		for _, id := range strings.FieldsFunc(q.str("exclude"), func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
			excluded[atoiDefault(id, 0)] = true
		}
		for id := range n.guests {
			if !excluded[id] {
				vmids = append(vmids, id)
			}
		}
	} else {
		for _, f := range strings.FieldsFunc(q.str("vmid"), func(r rune) bool { return r == ',' || r == ' ' || r == ';' }) {
			id := atoiDefault(f, 0)
			if g := s.guests[id]; g == nil || g.node == n {
				vmids = append(vmids, id)
			}
		}
	}
	slices.Sort(vmids)
	vmids = slices.Compact(vmids)
	if len(vmids) == 0 {
		if q.boolv("all") {
			return s.spawn(n.name, "vzdump", "", q.user, 0.2, func(r *run) error {
				r.logf("INFO: starting new backup job: vzdump --all 1 --node %s", n.name)
				r.logf("INFO: Backup job finished successfully")
				return r.sleep(1)
			}), nil
		}
		// The guests live on other nodes: nothing to do here.
		return "OK", nil
	}
	id := ""
	if len(vmids) == 1 {
		id = strconv.Itoa(vmids[0])
	}
	opts := backupOptions{
		storage:   cmp.Or(q.str("storage"), "local"),
		mode:      cmp.Or(q.str("mode"), "snapshot"),
		compress:  q.str("compress"),
		notes:     q.str("notes-template"),
		protected: q.boolv("protected"),
	}
	cmdline := "vzdump"
	for _, id := range vmids {
		cmdline += " " + strconv.Itoa(id)
	}
	cmdline += " --storage " + opts.storage + " --mode " + opts.mode
	if opts.compress != "" {
		cmdline += " --compress " + opts.compress
	}
	cmdline += " --node " + n.name
	return s.spawn(n.name, "vzdump", id, q.user, float64(len(vmids)), func(r *run) error {
		r.logf("INFO: starting new backup job: %s", cmdline)
		failed := false
		for _, vmid := range vmids {
			if err := s.backupGuest(r, n, vmid, opts); err != nil {
				if err == errInterrupted {
					return err
				}
				r.logf("ERROR: Backup of VM %d failed - %v", vmid, err)
				failed = true
			}
		}
		if failed {
			r.logf("INFO: Backup job finished with errors")
			return fmt.Errorf("job errors")
		}
		r.logf("INFO: Backup job finished successfully")
		return nil
	}), nil
}

type backupOptions struct {
	storage, mode, compress, notes string
	protected                      bool
}

// backupGuest backs up one guest in a vzdump task.
func (s *Sim) backupGuest(r *run, n *node, vmid int, o backupOptions) error {
	var g *guest
	var st *store
	var size uint64
	var conf map[string]string
	err := r.locked(func() error {
		if st = n.stores[o.storage]; st == nil {
			return fmt.Errorf("could not get storage information for '%s': storage '%s' does not exist", o.storage, o.storage)
		}
		if !st.cfg.hasContent("backup") {
			return fmt.Errorf("can't use storage '%s' for backups - wrong content type", o.storage)
		}
		if g = s.guests[vmid]; g == nil || g.node != n {
			return fmt.Errorf("unable to find configuration file for VM %d on node '%s'", vmid, n.name)
		}
		if g.lock() != "" {
			return errLocked(g)
		}
		if err := checkConfigLock(g); err != nil {
			return err
		}
		for _, d := range disks(g.kind, g.conf) {
			if !d.cdrom && !isCloudInit(d.volname) && !strings.HasPrefix(d.key, "unused") {
				size += d.size / 100 * uint64(15+g.seed%30)
			}
		}
		// What vzdump stores: the configuration without its lock,
		// snapshot parent and detached disks.
		conf = cloneConf(g.conf)
		for k := range conf {
			if k == "lock" || k == "parent" || strings.HasPrefix(k, "unused") {
				delete(conf, k)
			}
		}
		g.conf["lock"] = "backup"
		r.undo = func() {
			if g.conf["lock"] == "backup" {
				delete(g.conf, "lock")
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	now := time.Now()
	ext := map[string]string{"": "", "0": "", "1": ".lzo", "lzo": ".lzo", "gzip": ".gz", "zstd": ".zst"}[o.compress]
	format := "vma" + ext
	if g.kind == kindLXC {
		format = "tar" + ext
	}
	file := fmt.Sprintf("vzdump-%s-%d-%s.%s", g.kind, vmid, now.Format("2006_01_02-15_04_05"), format)
	status := "stopped"
	if g.running {
		status = "running"
	}
	r.logf("INFO: Starting Backup of VM %d (%s)", vmid, g.kind)
	r.logf("INFO: Backup started at %s", now.Format("2006-01-02 15:04:05"))
	r.logf("INFO: status = %s", status)
	r.logf("INFO: backup mode: %s", o.mode)
	r.logf("INFO: ionice priority: 7")
	r.logf("INFO: creating vzdump archive '%s'", s.volumePath(o.storage+":backup/"+file))
	if err := r.transfer(1, size); err != nil {
		return err
	}
	err = r.locked(func() error {
		r.undo = nil
		if g.conf["lock"] == "backup" {
			delete(g.conf, "lock")
		}
		if r.inject {
			return fmt.Errorf("injected fault")
		}
		st.refresh()
		if st.used()+size > st.total {
			return fmt.Errorf("vma_queue_write: write error - No space left on device")
		}
		notes := strings.NewReplacer("{{guestname}}", g.name(), "{{vmid}}", strconv.Itoa(vmid),
			"{{node}}", n.name, "{{cluster}}", s.clusterName).Replace(o.notes)
		return st.saveBackup(&volume{volid: o.storage + ":backup/" + file, vmid: vmid, content: "backup", format: format,
			size: size, used: size, ctime: now.Unix(), notes: notes, subtype: g.kind, protected: o.protected, conf: conf})
	})
	if err != nil {
		return err
	}
	r.logf("INFO: archive file size: %s", humanBytes(size))
	r.logf("INFO: Finished Backup of VM %d (%s)", vmid, time.Since(now).Round(time.Second))
	return nil
}

// volumeUser names the guest configuration or snapshot that references
// volid, or returns "". It is called with Sim.mu held.
func (s *Sim) volumeUser(volid string) string {
	ids := make([]int, 0, len(s.guests))
	for id := range s.guests {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		g := s.guests[id]
		for _, d := range disks(g.kind, g.conf) {
			if d.volid() == volid {
				return fmt.Sprintf("%s %d (%s)", g.typeName(), g.vmid, d.key)
			}
		}
		for _, sn := range g.snaps {
			if sn.state == volid {
				return fmt.Sprintf("%s %d (state of snapshot '%s')", g.typeName(), g.vmid, sn.name)
			}
			for _, d := range disks(g.kind, sn.vm) {
				if d.volid() == volid {
					return fmt.Sprintf("%s %d (snapshot '%s')", g.typeName(), g.vmid, sn.name)
				}
			}
		}
	}
	return ""
}

// volumeOwnerRe finds the owning VMID in a volume name.
var volumeOwnerRe = regexp.MustCompile(`(?:^|/)(?:vm|base|vzdump-qemu|vzdump-lxc)-(\d+)-`)

// deleteVolume serves DELETE /nodes/{node}/storage/{storage}/content/{volume}:
// an imgdel task that removes a backup or a disk image, and its space
// from the storage. The volume is a full volume ID or a name on storage.
// Like Proxmox, the task refuses protected backups and base volumes that
// linked clones use; a missing volume is a warning on a directory and an
// error on LVM. Unlike Proxmox, which leaves that check to its web UI,
// it also refuses volumes a guest's configuration or snapshot references.
// With delay, it waits up to that many seconds for the task and answers
// null when the task has ended well.
func (s *Sim) deleteVolume(q *req) (any, error) {
	volume, storage := q.str("volume"), q.str("storage")
	volid := volume
	if sid, _, ok := strings.Cut(volume, ":"); ok {
		if storage != "" && sid != storage {
			return nil, paramErr("volume", "storage ID mismatch (%s != %s)", sid, storage)
		}
	} else if storage == "" {
		return nil, paramErr("volume", "no storage specified - incomplete volume ID")
	} else {
		volid = storage + ":" + volume
	}
	t, err := s.spawnDeleteVolume(q, volid)
	if err != nil {
		return nil, err
	}
	if !q.has("delay") {
		return t.upid, nil
	}
	timer := time.NewTimer(time.Duration(q.intv("delay", 1)) * time.Second)
	defer timer.Stop()
	select {
	case <-t.finished:
	case <-timer.C:
		return t.upid, nil
	case <-q.r.Context().Done():
		return t.upid, nil
	}
	if exit := t.state().exit; exit != "OK" && !strings.HasPrefix(exit, "WARNINGS") {
		return nil, errf("%s", exit)
	}
	return nil, nil
}

// spawnDeleteVolume starts the imgdel task of deleteVolume.
func (s *Sim) spawnDeleteVolume(q *req, volid string) (*task, error) {
	s.lock()
	defer s.unlock()
	n := s.nodeByName[q.nodeName()]
	sid, name, _ := strings.Cut(volid, ":")
	if s.storageByID[sid] == nil {
		return nil, errf("storage '%s' does not exist", sid)
	}
	st := n.stores[sid]
	if st == nil {
		return nil, errf("storage '%s' is not available on node '%s'", sid, n.name)
	}
	id := sid
	if m := volumeOwnerRe.FindStringSubmatch(name); m != nil {
		id = m[1] + "@" + sid
	}
	upid := s.spawn(n.name, "imgdel", id, q.user, 1, func(r *run) error {
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			st.refresh()
			v := st.vols[volid]
			switch {
			case v == nil && st.cfg.typ == "lvmthin":
				return fmt.Errorf("lvremove '%s/%s' error:   Failed to find logical volume \"%s/%s\"", st.cfg.vgname, name, st.cfg.vgname, name)
			case v == nil:
				r.warn("disk image '%s' does not exist", s.volumePath(volid))
				return nil
			case v.protected:
				return fmt.Errorf("cannot remove protected volume '%s' on '%s'", name, sid)
			}
			if user := s.volumeUser(volid); user != "" {
				return fmt.Errorf("volume '%s' is in use by %s", volid, user)
			}
			for _, other := range st.vols {
				if other.parent == name {
					return fmt.Errorf("base volume '%s' is still in use by linked clones", name)
				}
			}
			if err := st.removeVolume(volid); err != nil {
				return err
			}
			logFreed(r, st, volid)
			r.logf("Removed volume '%s'", volid)
			return nil
		})
	})
	return s.tasks.byUPID[upid], nil
}
