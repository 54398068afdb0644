package pvesim

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Restores from vzdump backups, as qmrestore and pct restore do them. A
// backup volume made by the simulator's vzdump holds the guest's
// configuration as it was; a restore recreates it with new volumes for
// its disks.

// restoreDisk is one disk of a backed-up configuration and the volume a
// restore creates for it.
type restoreDisk struct {
	key     string
	src     disk
	storage string
	vol     *volume
}

// restoreGuest serves POST /nodes/{node}/qemu with archive= and POST
// /nodes/{node}/lxc with restore=1: a qmrestore or vzrestore task that
// recreates guest vmid from a backup volume, its disks on storage (for a
// VM, the backed-up storages when storage is empty; for a container,
// "local" then, as pct does). An existing guest is refused unless force
// is set; it is then replaced, its volumes destroyed.
//
// A restore that fails leaves what Proxmox leaves: a VM with the
// placeholder configuration "memory: 128" (its old volumes destroyed
// when it replaced one), no container at all.
func (s *Sim) restoreGuest(q *req, kind string) (any, error) {
	vmid := q.vmid()
	archive := q.str("archive")
	storage := q.str("storage")
	if kind == kindLXC {
		archive = q.str("ostemplate")
		if storage == "" {
			storage = "local"
		}
	}
	emsg := fmt.Sprintf("unable to restore %s %d -", typeName(kind), vmid)
	if kind == kindQemu {
		for _, k := range sortedKeys(q.params) {
			if isDiskKey(kindQemu, k) && !strings.HasPrefix(k, "unused") {
				return nil, paramErr(k, "option conflicts with option 'archive'")
			}
		}
	}
	force, unique, startAfter, pool := q.boolv("force"), q.boolv("unique"), q.boolv("start"), q.str("pool")
	s.lock()
	defer s.unlock()
	n := s.nodeByName[q.nodeName()]
	old := s.guests[vmid]
	if old != nil {
		switch {
		case !force || old.node != n || old.kind != kind:
			return nil, errf("%s %s %d already exists on node '%s'", emsg, old.typeName(), vmid, old.node.name)
		case old.lock() != "":
			return nil, errf("%s %s", emsg, errLocked(old).msg)
		case boolValue(old.conf["protection"]):
			return nil, errf("%s protection mode enabled", emsg)
		case kind == kindLXC && old.running:
			return nil, errf("can't overwrite running container")
		}
	}
	_, backup := findVolume(n, archive)
	if backup == nil || backup.content != "backup" {
		return nil, errf("can't find file '%s'", archive)
	}
	if backup.subtype != kind {
		return nil, errf("%s archive '%s' is not a %s backup", emsg, archive, map[string]string{kindQemu: "VM", kindLXC: "container"}[kind])
	}
	if storage != "" {
		if err := s.checkTargetStorage(n, storage, imageContent(kind)); err != nil {
			return nil, asAPIError(err)
		}
	}
	g := old
	if g == nil {
		g = &guest{vmid: vmid, kind: kind, node: n, conf: map[string]string{}, seed: guestSeed(vmid), sim: s}
		s.guests[vmid] = g
		n.guests[vmid] = g
	}
	g.conf["lock"] = "create"
	return s.spawn(n.name, taskType(kind, "restore"), strconv.Itoa(vmid), q.user, 1, func(r *run) error {
		var plan []restoreDisk
		var total uint64
		err := r.locked(func() error {
			r.undo = func() { s.failRestore(r, g, n, plan) }
			if err := s.current(g, n); err != nil {
				return err
			}
			if kind == kindQemu && g.running {
				return fmt.Errorf("%s vm is running", emsg)
			}
			var err error
			plan, total, err = s.planRestore(r, g, backup, storage)
			return err
		})
		if err != nil {
			return err
		}
		if err := s.extractBackup(r, g, backup, total); err != nil {
			return err
		}
		err = r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			conf := cloneConf(backup.conf)
			for _, d := range plan {
				size := d.vol.size
				if isCloudInit(d.vol.volid) {
					size = 0
				}
				conf[d.key] = rewriteDisk(conf[d.key], d.vol.volid, size)
			}
			if unique {
				s.replaceMACs(kind, conf)
			}
			g.conf, g.snaps = conf, nil
			if pool != "" {
				g.pool = pool
			}
			if g.template() {
				r.warn("Convert to template.")
				s.templateDisks(g)
			}
			if kind == kindQemu {
				r.logf("rescan volumes...")
			} else {
				r.logf("merging backed-up and given configuration..")
			}
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

// planRestore destroys the volumes of the configuration a restore
// replaces and allocates the volumes of the backed-up disks, on storage
// or, when empty, on the storage each disk was on. It is called with
// Sim.mu held.
func (s *Sim) planRestore(r *run, g *guest, backup *volume, storage string) ([]restoreDisk, uint64, error) {
	n := g.node
	if g.kind == kindQemu {
		r.logf("restore vma archive: %s | vma extract -v -r /var/tmp/vzdumptmp%d.fifo - /var/tmp/vzdumptmp%d",
			s.decompressCmd(backup), r.t.pid, r.t.pid)
		r.logf("CFG: size: %d name: qemu-server.conf", 64*len(backup.conf))
	} else {
		r.logf("recovering backed-up configuration from '%s'", backup.volid)
	}
	var plan []restoreDisk
	var total uint64
	for i, d := range disks(g.kind, backup.conf) {
		if strings.HasPrefix(d.key, "unused") || d.cdrom && !isCloudInit(d.volname) {
			continue
		}
		target := storage
		if target == "" {
			target = d.storage
		}
		plan = append(plan, restoreDisk{key: d.key, src: d, storage: target})
		if g.kind == kindQemu && !isCloudInit(d.volname) {
			r.logf("DEV: dev_id=%d size: %d devname: drive-%s", i+1, d.size, d.key)
		}
	}
	if g.kind == kindQemu {
		r.logf("CTIME: %s", time.Unix(backup.ctime, 0).Format("Mon Jan _2 15:04:05 2006"))
	}
	for _, d := range plan {
		if err := s.checkTargetStorage(n, d.storage, imageContent(g.kind)); err != nil {
			return plan, 0, err
		}
	}
	// Like Proxmox, the configuration being replaced is emptied and its
	// volumes destroyed before the new ones are allocated.
	for _, d := range disks(g.kind, g.conf) {
		if d.cdrom && !isCloudInit(d.volname) {
			continue
		}
		if st, v := findVolume(n, d.volid()); v != nil && v.vmid == g.vmid {
			delete(st.vols, v.volid)
			logFreed(r, st, v.volid)
		}
	}
	g.conf, g.snaps = map[string]string{"lock": "create"}, nil
	if g.kind == kindQemu {
		g.conf["memory"] = "128"
	}
	for i := range plan {
		d := &plan[i]
		st := n.stores[d.storage]
		if isCloudInit(d.src.volname) {
			d.vol = s.newCloudInit(st, g)
			continue
		}
		v, err := s.allocImage(st, g, d.src.size)
		if err != nil {
			return plan, 0, err
		}
		d.vol = v
		total += v.size
		logAllocated(r, st, v)
		if g.kind == kindQemu {
			r.logf("new volume ID is '%s'", v.volid)
			r.logf("map 'drive-%s' to '%s' (write zeros = 0)", d.key, s.devicePath(st, v.volid))
		} else {
			r.logf("Creating filesystem with %d 4k blocks and %d inodes", v.size/4096, v.size/16384)
		}
	}
	return plan, total, nil
}

// extractBackup copies the backup's data into the restored volumes,
// logging like vma extract or tar.
func (s *Sim) extractBackup(r *run, g *guest, backup *volume, total uint64) error {
	if g.kind == kindQemu {
		return r.copyData(1, total, func(done, _ uint64, pct float64, elapsed time.Duration) string {
			return fmt.Sprintf("progress %d%% (read %d bytes, duration %d sec)", int(pct), done, int(elapsed.Round(time.Second)/time.Second))
		}, func() error {
			r.logf("vma: restore failed - short vma extent (2801664 < 3801600)")
			return fmt.Errorf("command 'set -o pipefail && %s | vma extract -v -r /var/tmp/vzdumptmp%d.fifo - /var/tmp/vzdumptmp%d' failed: exit code 133",
				s.decompressCmd(backup), r.t.pid, r.t.pid)
		})
	}
	r.logf("restoring '%s' now..", backup.volid)
	used := backup.size
	err := r.copyData(1, used, func(done, total uint64, pct float64, _ time.Duration) string {
		return fmt.Sprintf("transferred %s of %s (%.2f%%)", humanBytes(done), humanBytes(total), pct)
	}, func() error {
		r.logf("tar: ./var/log/journal: Cannot write: Input/output error")
		return fmt.Errorf("unable to restore CT %d - command 'lxc-usernsexec -m u:0:100000:65536 -m g:0:100000:65536 -- tar xpf - --zstd --totals --one-file-system -p --sparse --numeric-owner --acls --xattrs --xattrs-include=user.* --xattrs-include=security.capability --warning=no-file-ignored --warning=no-xattr-write -C /var/lib/lxc/%d/rootfs --skip-old-files --anchored --exclude ./dev/*' failed: exit code 2",
			g.vmid, g.vmid)
	})
	if err != nil {
		return err
	}
	r.logf("Total bytes read: %d (%s, 120MiB/s)", used, strings.ReplaceAll(humanBytes(used), " ", ""))
	return nil
}

// decompressCmd is the command that decompresses a backup file.
func (s *Sim) decompressCmd(backup *volume) string {
	path := s.volumePath(backup.volid)
	switch {
	case strings.HasSuffix(backup.format, ".zst"):
		return "zstd -q -d -c " + path
	case strings.HasSuffix(backup.format, ".gz"):
		return "zcat " + path
	case strings.HasSuffix(backup.format, ".lzo"):
		return "lzop -d -c " + path
	}
	return "cat " + path
}

// failRestore cleans up after a failed restore, with Sim.mu held: the new
// volumes are destroyed; a VM keeps its placeholder configuration, a
// container is removed.
func (s *Sim) failRestore(r *run, g *guest, n *node, plan []restoreDisk) {
	for _, d := range plan {
		if d.vol == nil {
			continue
		}
		if st := n.stores[d.storage]; st != nil && st.vols[d.vol.volid] == d.vol {
			delete(st.vols, d.vol.volid)
			logFreed(r, st, d.vol.volid)
		}
	}
	if s.guests[g.vmid] != g {
		return
	}
	if g.kind == kindLXC && len(plan) > 0 && plan[0].vol != nil {
		s.removeGuest(g)
		return
	}
	delete(g.conf, "lock")
	if g.kind == kindQemu {
		r.warn("error before or during data restore, some or all disks were not completely restored. VM %d state is NOT cleaned up.", g.vmid)
	}
}
