package pvesim

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Backup storages in a directory shared between simulators (Seed.BackupDirs).
//
// Two Proxmox clusters that mount the same directory and configure it
// under the same storage ID (a dir storage with "shared 1", or a PBS
// datastore) see each other's backups: disaster recovery between sites
// rests on that. A simulator's state lives in memory, so a
// directory-backed backup storage keeps its backups in files instead,
// laid out as vzdump lays them out:
//
//	<dir>/dump/vzdump-qemu-100-2026_11_26-09_00_00.vma.zst            the archive
//	<dir>/dump/vzdump-qemu-100-2026_11_26-09_00_00.vma.zst.notes      its notes
//	<dir>/dump/vzdump-qemu-100-2026_11_26-09_00_00.vma.zst.protected  empty; present when protected
//
// The archive holds the JSON of an archiveFile: what a restore needs.
// Every change to a backup volume writes through to the files (saveBackup,
// removeVolume), each file replaced by a rename in the same directory so
// that a reader in another process never sees half of one. Every request
// that reads or changes storage content, restores a guest or reports
// storage usage first rescans the directories (syncBackups), as do the
// tasks that add or remove a backup when they commit: another simulator's
// change shows in the next request. Files that cannot be read or parsed
// are skipped.

// backupDir is the directory of a directory-backed backup storage.
type backupDir struct {
	path string // the storage's path; backups are in path/dump
	// cache holds the archives read so far, by file name, so that a
	// rescan reads only new or replaced ones. Guarded by Sim.mu.
	cache map[string]cachedArchive
}

// cachedArchive is an archive file as last read.
type cachedArchive struct {
	size  int64
	mtime time.Time
	vol   *volume
}

// archiveFile is the content of a backup archive in a backup directory.
type archiveFile struct {
	VMID    int               `json:"vmid"`
	Subtype string            `json:"subtype"` // qemu or lxc
	Format  string            `json:"format"`  // vma.zst, tar.gz, ...
	Size    uint64            `json:"size"`    // the size the storage reports, in bytes
	CTime   int64             `json:"ctime"`
	Conf    map[string]string `json:"conf"` // the guest's configuration, which a restore recreates
}

const (
	backupDirPerm  = 0o750
	backupFilePerm = 0o640
)

// archiveNameRe matches the name of a vzdump archive, as PVE::Storage
// parses it: guest type, VMID, time and format.
var archiveNameRe = regexp.MustCompile(`^vzdump-(qemu|lxc)-(\d+)-\d{4}_\d{2}_\d{2}-\d{2}_\d{2}_\d{2}\.((?:vma|tar)(?:\.(?:gz|lzo|zst))?)$`)

// storageIDRe is Proxmox's pve-storage-id format.
var storageIDRe = regexp.MustCompile(`(?i)^[a-z][a-z0-9\-_.]*[a-z0-9]$`)

// addBackupDirs adds the directory-backed backup storages of sd to the
// storage configuration, each seen by every node (as shared storage is,
// once build has made the nodes), and reads what their directories hold.
// taken lists the storage IDs already in use.
func (s *Sim) addBackupDirs(sd Seed, taken []string) ([]*store, error) {
	var stores []*store
	for _, id := range sortedKeys(sd.BackupDirs) {
		if slices.Contains(taken, id) {
			return nil, fmt.Errorf("pvesim: backup storage ID %q is taken", id)
		}
		if !storageIDRe.MatchString(id) {
			return nil, fmt.Errorf("pvesim: backup storage ID %q is not a storage ID", id)
		}
		if sd.BackupDirs[id] == "" {
			return nil, fmt.Errorf("pvesim: backup storage %q has no directory", id)
		}
		path, err := filepath.Abs(sd.BackupDirs[id])
		if err != nil {
			return nil, fmt.Errorf("pvesim: backup storage %q: %w", id, err)
		}
		d := &backupDir{path: path, cache: map[string]cachedArchive{}}
		if err := os.MkdirAll(d.dump(), backupDirPerm); err != nil {
			return nil, fmt.Errorf("pvesim: backup storage %q: %w", id, err)
		}
		cfg := &storageConfig{id: id, typ: "dir", content: []string{"backup"}, shared: true, path: path}
		s.storage = append(s.storage, cfg)
		st := &store{cfg: cfg, total: uint64(orDefault(sd.BackupGiB, 4096)) * gib, vols: map[string]*volume{}, dir: d}
		st.refresh()
		stores = append(stores, st)
	}
	return stores, nil
}

// dump is the directory the backups are in.
func (d *backupDir) dump() string { return filepath.Join(d.path, "dump") }

// syncBackups rescans every directory-backed backup storage, so that what
// other simulators changed there shows. It takes Sim.mu; the epoch stays,
// as a rescan changes no guest.
func (s *Sim) syncBackups() {
	if len(s.backupStores) == 0 {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, st := range s.backupStores {
		st.refresh()
	}
}

// syncingBackups wraps a handler that reads or changes backup volumes so
// that the backup directories are rescanned first.
func (s *Sim) syncingBackups(h handler) handler {
	return func(q *req) (any, error) {
		s.syncBackups()
		return h(q)
	}
}

// refresh reloads the backup volumes of a directory-backed store from its
// directory; other stores are left alone. A directory that cannot be read
// leaves the volumes as they were. It is called with Sim.mu held.
func (st *store) refresh() {
	d := st.dir
	if d == nil {
		return
	}
	entries, err := os.ReadDir(d.dump())
	if err != nil {
		return
	}
	present := make(map[string]bool, len(entries))
	for _, e := range entries {
		present[e.Name()] = true
	}
	vols := make(map[string]*volume, len(entries))
	cache := make(map[string]cachedArchive, len(entries))
	for _, e := range entries {
		name := e.Name()
		m := archiveNameRe.FindStringSubmatch(name)
		if m == nil || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if err != nil {
			continue // removed meanwhile
		}
		c, ok := d.cache[name]
		if !ok || c.size != info.Size() || !c.mtime.Equal(info.ModTime()) {
			v, err := readArchive(filepath.Join(d.dump(), name), st.cfg.id+":backup/"+name, m)
			if err != nil {
				continue
			}
			c = cachedArchive{size: info.Size(), mtime: info.ModTime(), vol: v}
		}
		v := c.vol
		v.protected = present[name+".protected"]
		v.notes = ""
		if present[name+".notes"] {
			if b, err := os.ReadFile(filepath.Join(d.dump(), name+".notes")); err == nil {
				v.notes = string(b)
			}
		}
		vols[v.volid] = v
		cache[name] = c
	}
	st.vols, d.cache = vols, cache
}

// readArchive reads the archive file at path, named as m matched, into a
// backup volume volid. The file must agree with its name.
func readArchive(path, volid string, m []string) (*volume, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var a archiveFile
	if err := json.Unmarshal(b, &a); err != nil {
		return nil, err
	}
	if strconv.Itoa(a.VMID) != m[2] || a.Subtype != m[1] || a.Format != m[3] {
		return nil, fmt.Errorf("%s: archive of %s %d (%s) under another name", path, a.Subtype, a.VMID, a.Format)
	}
	return &volume{volid: volid, vmid: a.VMID, content: "backup", format: a.Format, size: a.Size, used: a.Size,
		ctime: a.CTime, subtype: a.Subtype, conf: a.Conf}, nil
}

// saveBackup adds backup volume v to st, or records a change of its notes
// or protection. On a directory-backed store it writes the files first:
// notes and protection before the archive, so that a simulator that sees
// the archive sees them too. It is called with Sim.mu held.
func (st *store) saveBackup(v *volume) error {
	if d := st.dir; d != nil {
		path, err := d.archivePath(v.volid)
		if err != nil {
			return err
		}
		if v.notes != "" {
			err = writeFileAtomic(path+".notes", []byte(v.notes))
		} else {
			err = removeIfExists(path + ".notes")
		}
		if err != nil {
			return err
		}
		if v.protected {
			err = writeFileAtomic(path+".protected", nil)
		} else {
			err = removeIfExists(path + ".protected")
		}
		if err != nil {
			return err
		}
		b, err := json.Marshal(archiveFile{VMID: v.vmid, Subtype: v.subtype, Format: v.format, Size: v.size, CTime: v.ctime, Conf: v.conf})
		if err != nil {
			return err
		}
		if err := writeFileAtomic(path, b); err != nil {
			return err
		}
	}
	st.addVolume(v)
	return nil
}

// removeVolume removes volume volid from st. On a directory-backed store
// it removes the volume's files first: the archive, then its notes and
// protection. It is called with Sim.mu held.
func (st *store) removeVolume(volid string) error {
	if d := st.dir; d != nil {
		path, err := d.archivePath(volid)
		if err != nil {
			return err
		}
		for _, p := range []string{path, path + ".notes", path + ".protected"} {
			if err := removeIfExists(p); err != nil {
				return err
			}
		}
	}
	delete(st.vols, volid)
	return nil
}

// archivePath is the file of backup volume volid.
func (d *backupDir) archivePath(volid string) (string, error) {
	_, name, _ := strings.Cut(volid, ":")
	file, ok := strings.CutPrefix(name, "backup/")
	if !ok || !archiveNameRe.MatchString(file) {
		return "", fmt.Errorf("'%s' is not a backup archive", volid)
	}
	return filepath.Join(d.dump(), file), nil
}

// writeFileAtomic replaces the file at path with data: it writes a
// temporary file in the same directory (its name starts with a dot, so
// rescans ignore it) and renames it over path.
func writeFileAtomic(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Chmod(backupFilePerm)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
	}
	return err
}

// removeIfExists removes the file at path; a missing file is no error.
func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}
