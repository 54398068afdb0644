package pvesim

import (
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// Disk resizes and moves, as qemu-server and pve-container do them.

// errModified is PVE::Tools::assert_if_modified's message for a digest
// that does not match the configuration.
const errModified = "detected modified configuration - file changed by other user? Try again."

// findVolume returns the volume volid names on node n and its store, or
// nils.
func findVolume(n *node, volid string) (*store, *volume) {
	sid, _, _ := strings.Cut(volid, ":")
	st := n.stores[sid]
	if st == nil {
		return nil, nil
	}
	return st, st.vols[volid]
}

// rewriteDisk returns disk option value with its volume replaced by volid
// and its size option set to size (left out when zero).
func rewriteDisk(value, volid string, size uint64) string {
	parts := strings.Split(value, ",")
	out := []string{volid}
	for i, p := range parts {
		k, _, hasVal := strings.Cut(p, "=")
		if i == 0 && (!hasVal || k == "file" || k == "volume") || k == "file" || k == "volume" || k == "size" {
			continue
		}
		out = append(out, p)
	}
	if size > 0 {
		out = append(out, "size="+formatSize(size))
	}
	return strings.Join(out, ",")
}

// flock takes g's configuration file lock for a worker, as lock_config
// does; a worker holding it already makes this one time out.
func flock(g *guest) error {
	if err := checkConfigLock(g); err != nil {
		return err
	}
	g.busy++
	return nil
}

// checkConfigLock fails like lock_config while another worker holds g's
// configuration file lock (a resize, a disk move, a clone reading g).
func checkConfigLock(g *guest) error {
	if g.busy > 0 {
		return fmt.Errorf("can't lock file '/var/lock/%s/lock-%d.conf' - got timeout", confDir(g.kind), g.vmid)
	}
	return nil
}

// inSnapshots reports whether a snapshot of g references volid.
func inSnapshots(g *guest, volid string) bool {
	for _, sn := range g.snaps {
		for _, d := range disks(g.kind, sn.vm) {
			if d.volid() == volid {
				return true
			}
		}
	}
	return false
}

// devicePath is the block device or file of a volume, as qemu-img and
// lvm name it.
func (s *Sim) devicePath(st *store, volid string) string {
	_, name, _ := strings.Cut(volid, ":")
	switch {
	case st.cfg.typ == "lvmthin":
		return "/dev/" + st.cfg.vgname + "/" + name
	case st.cfg.path != "":
		return st.cfg.path + "/images/" + name
	}
	return volid
}

// logFreed logs what removing a volume prints on its storage.
func logFreed(r *run, st *store, volid string) {
	if st.cfg.typ == "lvmthin" {
		_, name, _ := strings.Cut(volid, ":")
		r.logf("  Logical volume \"%s\" successfully removed.", name)
	}
}

// logAllocated logs what allocating a volume prints on its storage.
func logAllocated(r *run, st *store, v *volume) {
	if st.cfg.typ == "lvmthin" {
		r.logf("  Logical volume \"%s\" created.", volname(v))
		return
	}
	r.logf("Formatting '%s', fmt=%s size=%d", st.cfg.path+"/images/"+volname(v), v.format, v.size)
}

var resizeRe = regexp.MustCompile(`^(\+)?(\d+(?:\.\d+)?)([KMGT])?$`)

// newDiskSize is the size a resize request asks for, given the current
// size: absolute, or added with a leading "+".
func newDiskSize(req string, cur uint64) (uint64, error) {
	m := resizeRe.FindStringSubmatch(req)
	if m == nil {
		return 0, errors.New("invalid size string")
	}
	f, _ := strconv.ParseFloat(m[2], 64)
	f *= float64(map[string]uint64{"": 1, "K": 1 << 10, "M": mib, "G": gib, "T": 1 << 40}[m[3]])
	size := uint64(f)
	if m[1] != "" {
		size += cur
	}
	return size, nil
}

// resizeTarget is what a resize changes: the disk, its volume and the
// new size.
type resizeTarget struct {
	d    disk
	st   *store
	v    *volume
	size uint64
}

// checkResize makes the checks of a resize under the configuration lock,
// with Sim.mu held. A VM resize to the current size is not an error; it
// reports a zero resizeTarget.size.
func (s *Sim) checkResize(g *guest, key, sizeStr, digest string, skiplock bool) (resizeTarget, error) {
	var rt resizeTarget
	qemu := g.kind == kindQemu
	if digest != "" && digest != digestConf(g.conf) {
		if qemu {
			return rt, errors.New("checksum mismatch (file change by other user?)")
		}
		return rt, errf(errModified)
	}
	if g.lock() != "" && !skiplock {
		return rt, errLocked(g)
	}
	val, ok := g.conf[key]
	if !ok {
		return rt, fmt.Errorf("disk '%s' does not exist", key)
	}
	d, isVol := parseDisk(key, val)
	if qemu && d.cdrom {
		return rt, errors.New("you can't resize a cdrom")
	}
	if !isVol {
		return rt, fmt.Errorf("disk '%s' has no associated volume", key)
	}
	st, v := findVolume(g.node, d.volid())
	if v == nil {
		return rt, errf("Could not determine current size of volume '%s'", d.volid())
	}
	if !qemu && v.vmid != g.vmid {
		return rt, fmt.Errorf("can't resize mount point owned by another container (%d)", v.vmid)
	}
	size, err := newDiskSize(sizeStr, v.size)
	if err != nil {
		return rt, err
	}
	switch {
	case size < v.size && qemu:
		return rt, errors.New("shrinking disks is not supported")
	case size < v.size:
		return rt, errors.New("unable to shrink disk size")
	case size == v.size && qemu:
		return resizeTarget{d: d, st: st, v: v}, nil
	case size == v.size:
		return rt, errors.New("disk is already at specified size")
	}
	return resizeTarget{d: d, st: st, v: v, size: size}, nil
}

// resizeDisk serves PUT /nodes/{node}/{qemu,lxc}/{vmid}/resize: a resize
// task that grows a disk's volume (and its storage's usage) and records
// the new size in the configuration. A VM's request is checked in the
// task, a container's before it, as Proxmox does.
func (s *Sim) resizeDisk(q *req, kind string) (any, error) {
	key, sizeStr, digest, skiplock := q.str("disk"), q.str("size"), q.str("digest"), q.boolv("skiplock")
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kind)
	if err != nil {
		return nil, err
	}
	if kind == kindLXC {
		if _, err := s.checkResize(g, key, sizeStr, digest, false); err != nil {
			return nil, errf("%v", err)
		}
	}
	n := g.node
	return s.spawn(n.name, "resize", strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		var rt resizeTarget
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := flock(g); err != nil {
				return err
			}
			r.undo = func() { g.busy-- }
			rt, err = s.checkResize(g, key, sizeStr, digest, skiplock)
			return err
		})
		if err != nil {
			return err
		}
		if rt.size == 0 {
			// The size it has already: nothing to do.
			return r.locked(func() error {
				g.busy--
				return nil
			})
		}
		if err := r.sleep(1); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if rt.st.vols[rt.v.volid] != rt.v {
				return errf("Could not determine current size of volume '%s'", rt.v.volid)
			}
			grow := rt.size - rt.v.size
			if rt.st.used()+grow > rt.st.total {
				if rt.st.cfg.typ == "lvmthin" {
					return fmt.Errorf("command '/sbin/lvextend -L%dk %s/%s' failed: exit code 5", rt.size>>10, rt.st.cfg.vgname, rt.d.volname)
				}
				return fmt.Errorf("qemu-img: Could not resize file: No space left on device")
			}
			r.logf("%s", s.resizeLog(g, rt))
			rt.v.size = rt.size
			rt.v.used += grow
			g.conf[key] = rewriteDisk(g.conf[key], rt.d.volid(), rt.size)
			g.busy--
			return nil
		})
	}), nil
}

// resizeLog is what the tools print when a volume grows.
func (s *Sim) resizeLog(g *guest, rt resizeTarget) string {
	var lines []string
	if rt.st.cfg.typ == "lvmthin" {
		lv := rt.st.cfg.vgname + "/" + rt.d.volname
		lines = append(lines,
			fmt.Sprintf("  Size of logical volume %s changed from %s (%d extents) to %s (%d extents).",
				lv, lvmSize(rt.v.size), rt.v.size/(4*mib), lvmSize(rt.size), rt.size/(4*mib)),
			fmt.Sprintf("  Logical volume %s successfully resized.", lv))
	} else if g.kind == kindQemu {
		lines = append(lines, "Image resized.")
	}
	if g.kind == kindLXC {
		dev := s.devicePath(rt.st, rt.d.volid())
		lines = append(lines, "resize2fs 1.47.2 (1-Jan-2025)",
			fmt.Sprintf("Resizing the filesystem on %s to %d (4k) blocks.", dev, rt.size/4096),
			fmt.Sprintf("The filesystem on %s is now %d (4k) blocks long.", dev, rt.size/4096))
	}
	return strings.Join(lines, "\n")
}

// lvmSize prints a size as lvm does, "32.00 GiB".
func lvmSize(b uint64) string {
	return fmt.Sprintf("%.2f GiB", float64(b)/gib)
}

// moveSource is the disk a move copies, checked.
type moveSource struct {
	d           disk
	st          *store
	v           *volume
	snapshotted bool
}

// bothParamsErr is raise_param_exc naming storage and target-vmid.
func bothParamsErr(msg string) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: "Parameter verification failed.",
		errs: map[string]string{"storage": msg, "target-vmid": msg}}
}

// checkMoveDisk makes move_disk's checks ($load_and_check_move) with
// Sim.mu held.
func (s *Sim) checkMoveDisk(g *guest, key, storage, format, digest string, del bool) (moveSource, error) {
	var ms moveSource
	if g.lock() != "" {
		return ms, errLocked(g)
	}
	if digest != "" && digest != digestConf(g.conf) {
		return ms, errf(errModified)
	}
	val, ok := g.conf[key]
	if !ok {
		return ms, fmt.Errorf("disk '%s' does not exist", key)
	}
	d, isVol := parseDisk(key, val)
	if !isVol {
		return ms, fmt.Errorf("disk '%s' has no associated volume", key)
	}
	if d.cdrom && !isCloudInit(d.volname) {
		return ms, errors.New("you can't move a cdrom")
	}
	st, v := findVolume(g.node, d.volid())
	if v == nil {
		return ms, fmt.Errorf("volume '%s' does not exist", d.volid())
	}
	if d.storage == storage && (format == "" || format == v.format) {
		return ms, errors.New("you can't move to the same storage with same format")
	}
	if err := s.checkTargetStorage(g.node, storage, "images"); err != nil {
		return ms, err
	}
	snapshotted := inSnapshots(g, d.volid())
	if snapshotted && del {
		return ms, errors.New("you can't move a disk with snapshots and delete the source")
	}
	return moveSource{d: d, st: st, v: v, snapshotted: snapshotted}, nil
}

// checkTargetStorage checks that storage exists, is available on n and
// holds content ct, failing like storage_check_enabled and the content
// checks.
func (s *Sim) checkTargetStorage(n *node, storage, ct string) error {
	if s.storageByID[storage] == nil {
		return fmt.Errorf("storage '%s' does not exist", storage)
	}
	st := n.stores[storage]
	if st == nil {
		return fmt.Errorf("storage '%s' is not available on node '%s'", storage, n.name)
	}
	if !st.cfg.hasContent(ct) {
		return &contentError{storage: storage, content: ct}
	}
	return nil
}

// contentError means a storage does not hold the content a volume needs;
// API handlers report it as a parameter error on "storage".
type contentError struct{ storage, content string }

func (e *contentError) Error() string {
	if e.content == "rootdir" {
		return fmt.Sprintf("storage '%s' does not support container directories", e.storage)
	}
	return fmt.Sprintf("storage '%s' does not support vm images", e.storage)
}

// moveDisk serves POST /nodes/{node}/qemu/{vmid}/move_disk to another
// storage: a qmmove task that allocates the target volume, copies the
// disk (a drive mirror while the VM runs, qemu-img convert otherwise),
// switches the configuration to the copy and removes the source
// (delete=1) or keeps it as unusedN. A copy that fails removes the
// target volume and leaves the configuration on the source, as
// qemu-server does. Reassigning a disk to another VM (target-vmid) is
// not simulated.
func (s *Sim) moveDisk(q *req) (any, error) {
	key, storage, format, digest := q.str("disk"), q.str("storage"), q.str("format"), q.str("digest")
	del := q.boolv("delete")
	switch {
	case q.has("target-vmid") && storage != "":
		return nil, bothParamsErr("either set 'storage' or 'target-vmid', but not both")
	case q.has("target-vmid"):
		return nil, errf("reassigning a disk to another VM is not supported by the simulator")
	case storage == "":
		return nil, bothParamsErr("both 'storage' and 'target-vmid' missing, either needs to be set")
	}
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kindQemu)
	if err != nil {
		return nil, err
	}
	if _, err := s.checkMoveDisk(g, key, storage, format, digest, del); err != nil {
		return nil, asAPIError(err)
	}
	n := g.node
	return s.spawn(n.name, "qmmove", strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		var ms moveSource
		var target *volume
		var running bool
		tst := n.stores[storage]
		err := r.locked(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			if err := flock(g); err != nil {
				return err
			}
			r.undo = func() {
				g.busy--
				if target != nil && tst.vols[target.volid] == target {
					delete(tst.vols, target.volid)
					logFreed(r, tst, target.volid)
				}
			}
			if ms, err = s.checkMoveDisk(g, key, storage, format, digest, del); err != nil {
				return err
			}
			running = g.running
			r.logf("copying volume '%s' from current storage '%s' to target storage '%s'", ms.d.volid(), ms.d.storage, storage)
			if ms.snapshotted {
				r.warn("moving disk with snapshots, snapshots will not be moved!")
			}
			r.logf("create full clone of drive %s (%s)", key, ms.d.volid())
			if isCloudInit(ms.d.volname) {
				target = s.newCloudInit(tst, g)
			} else if target, err = s.allocImage(tst, g, ms.v.size); err != nil {
				return fmt.Errorf("storage migration failed: %w", err)
			}
			logAllocated(r, tst, target)
			r.logf("allocated target volume '%s'", target.volid)
			return nil
		})
		if err != nil {
			return err
		}
		if err := s.copyDisk(r, key, ms, tst, target, running); err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			cur, _ := parseDisk(key, g.conf[key])
			if cur.volid() != ms.d.volid() {
				return fmt.Errorf("storage migration failed: disk '%s' changed during the move", key)
			}
			size := target.size
			if isCloudInit(ms.d.volname) {
				size = 0
			}
			g.conf[key] = rewriteDisk(g.conf[key], target.volid, size)
			if !del {
				unused := nextUnused(g.conf)
				g.conf[unused] = ms.d.volid()
				r.logf("adding source volume '%s' as '%s' to config", ms.d.volid(), unused)
			}
			if g.template() {
				s.templateDisks(g)
			}
			g.busy--
			if del {
				r.logf("removing source volume '%s' after successful copy", ms.d.volid())
				if ms.st.vols[ms.v.volid] == ms.v {
					delete(ms.st.vols, ms.v.volid)
					logFreed(r, ms.st, ms.v.volid)
				}
			}
			return nil
		})
	}), nil
}

// copyDisk copies a VM disk in a qmmove task, logging like a drive mirror
// when the VM runs and like qemu-img convert when it does not.
func (s *Sim) copyDisk(r *run, key string, ms moveSource, tst *store, target *volume, running bool) error {
	job := "drive-" + key
	if isCloudInit(ms.d.volname) {
		return r.sleep(1)
	}
	if !running {
		return r.copyData(1, ms.v.size, func(done, total uint64, pct float64, _ time.Duration) string {
			return fmt.Sprintf("transferred %s of %s (%.2f%%)", humanBytes(done), humanBytes(total), pct)
		}, func() error {
			return fmt.Errorf("storage migration failed: copy failed: command '/usr/bin/qemu-img convert -p -n -f %s -O %s %s zeroinit:%s' failed: exit code 1",
				ms.v.format, target.format, s.devicePath(ms.st, ms.v.volid), s.devicePath(tst, target.volid))
		})
	}
	r.logf("drive mirror is starting for %s", job)
	err := r.copyData(1, ms.v.size, func(done, total uint64, pct float64, elapsed time.Duration) string {
		line := fmt.Sprintf("%s: transferred %s of %s (%.2f%%) in %s", job, humanBytes(done), humanBytes(total), pct, renderDuration(elapsed))
		if done == total {
			line += ", ready"
		}
		return line
	}, func() error {
		r.logf("%s: Cancelling block job", job)
		r.logf("%s: Done.", job)
		return fmt.Errorf("storage migration failed: block job (mirror) error: %s: Input/output error (io-status: ok)", job)
	})
	if errors.Is(err, errInterrupted) {
		r.logf("%s: Cancelling block job", job)
		r.logf("%s: Done.", job)
		return fmt.Errorf("storage migration failed: mirroring error: %w", err)
	}
	if err != nil {
		return err
	}
	r.logf("all 'mirror' jobs are ready")
	r.logf("%s: Completing block job...", job)
	r.logf("%s: Completed successfully.", job)
	r.logf("%s: mirror-job finished", job)
	return nil
}

// renderDuration prints a duration as PVE::Tools::render_duration does
// for short ones: "5s", "1m 5s".
func renderDuration(d time.Duration) string {
	secs := int(d.Round(time.Second) / time.Second)
	if secs < 60 {
		return strconv.Itoa(secs) + "s"
	}
	return fmt.Sprintf("%dm %ds", secs/60, secs%60)
}

// asAPIError turns an error of a request's checks into its answer: a
// storage without the content is a parameter error, anything else a 500.
func asAPIError(err error) *apiError {
	var ae *apiError
	if errors.As(err, &ae) {
		return ae
	}
	var ce *contentError
	if errors.As(err, &ce) {
		return paramErr("storage", "%s", ce.Error())
	}
	return errf("%v", err)
}

// moveVolume serves POST /nodes/{node}/lxc/{vmid}/move_volume to another
// storage: the container (which must be stopped) is locked ("disk"), a
// move_volume task allocates the target volume, copies the files,
// switches the configuration and removes the source (delete=1) or keeps
// it as unusedN. A copy that fails removes the target volume. Moving a
// volume to another container (target-vmid) is not simulated.
func (s *Sim) moveVolume(q *req) (any, error) {
	key, storage, digest := q.str("volume"), q.str("storage"), q.str("digest")
	del := q.boolv("delete")
	switch {
	case q.has("target-vmid") && storage != "":
		return nil, errf("either set storage or target-vmid, but not both")
	case q.has("target-vmid"):
		return nil, errf("moving a volume to another container is not supported by the simulator")
	case storage == "":
		return nil, bothParamsErr("both 'storage' and 'target-vmid' missing, either needs to be set")
	}
	s.lock()
	defer s.unlock()
	g, err := s.findGuest(q, kindLXC)
	if err != nil {
		return nil, err
	}
	if g.lock() != "" {
		return nil, errLocked(g)
	}
	if g.running {
		return nil, errf("cannot move volumes of a running container")
	}
	if strings.HasPrefix(key, "unused") {
		return nil, errf("cannot move volume '%s', only configured volumes can be moved to another storage", key)
	}
	d, isVol := parseDisk(key, g.conf[key])
	if !isVol {
		if _, ok := g.conf[key]; !ok {
			return nil, errf("mount point '%s' does not exist", key)
		}
		return nil, errf("cannot copy volumes of type bind")
	}
	if del && inSnapshots(g, d.volid()) {
		return nil, errf("you can't move a volume with snapshots and delete the source")
	}
	if digest != "" && digest != digestConf(g.conf) {
		return nil, errf(errModified)
	}
	g.conf["lock"] = "disk"
	n := g.node
	return s.spawn(n.name, "move_volume", strconv.Itoa(g.vmid), q.user, 1, func(r *run) error {
		var target *volume
		var tst, sst *store
		var src *volume
		err := r.locked(func() error {
			r.undo = func() {
				if target != nil && tst.vols[target.volid] == target {
					delete(tst.vols, target.volid)
					logFreed(r, tst, target.volid)
				}
				if g.conf["lock"] == "disk" {
					delete(g.conf, "lock")
				}
			}
			if err := s.current(g, n); err != nil {
				return err
			}
			if sst, src = findVolume(n, d.volid()); src == nil {
				return fmt.Errorf("volume '%s' does not exist", d.volid())
			}
			if err := s.checkTargetStorage(n, storage, "rootdir"); err != nil {
				return err
			}
			tst = n.stores[storage]
			var err error
			if target, err = s.allocImage(tst, g, src.size); err != nil {
				return err
			}
			logAllocated(r, tst, target)
			r.logf("Creating filesystem with %d 4k blocks and %d inodes", target.size/4096, target.size/16384)
			return nil
		})
		if err != nil {
			return err
		}
		copyDir := fmt.Sprintf("/var/lib/lxc/%d/.copy-volume-", g.vmid)
		err = r.copyData(1, src.size/100*uint64(20+g.seed%50), func(done, total uint64, pct float64, _ time.Duration) string {
			return fmt.Sprintf("transferred %s of %s (%.2f%%)", humanBytes(done), humanBytes(total), pct)
		}, func() error {
			r.logf("rsync: [receiver] write failed on \"%s1/var/log/journal\": Input/output error (5)", copyDir)
			r.logf("rsync error: error in file IO (code 11) at receiver.c(380) [receiver=3.2.7]")
			return fmt.Errorf("command 'rsync --stats -X -A --numeric-ids -aH --whole-file --sparse --one-file-system '--bwlimit=0' %s2/ %s1' failed: exit code 11", copyDir, copyDir)
		})
		if err != nil {
			return err
		}
		return r.commit(func() error {
			if err := s.current(g, n); err != nil {
				return err
			}
			g.conf[key] = rewriteDisk(g.conf[key], target.volid, target.size)
			if !del {
				g.conf[nextUnused(g.conf)] = d.volid()
			}
			delete(g.conf, "lock")
			if del && sst.vols[src.volid] == src {
				delete(sst.vols, src.volid)
				logFreed(r, sst, src.volid)
			}
			return nil
		})
	}), nil
}
