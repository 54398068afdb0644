package pvesim_test

import (
	"context"
	"encoding/json"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/pvesim/schema"
)

// newBackupDirEnv is a simulator with the default seed and a backup
// storage "dr" in dir.
func newBackupDirEnv(t testing.TB, dir string) *testEnv {
	t.Helper()
	seed := pvesim.DefaultSeed()
	seed.BackupDirs = map[string]string{"dr": dir}
	return newTestEnv(t, pvesim.Config{Seed: seed})
}

// backupsOf lists the backups of vmid on storage dr, as node sees them.
func (e *testEnv) backupsOf(t testing.TB, node string, vmid int) []map[string]any {
	t.Helper()
	code, status, data := e.do(t, "GET", "/nodes/"+node+"/storage/dr/content", url.Values{"content": {"backup"}, "vmid": {itoa(vmid)}})
	if code != 200 {
		t.Fatalf("content of dr on %s: %s", node, status)
	}
	list, _ := data.([]any)
	out := make([]map[string]any, 0, len(list))
	for _, b := range list {
		out = append(out, b.(map[string]any))
	}
	return out
}

// archives lists the files of dir's dump directory that match pattern.
func archives(t testing.TB, dir, pattern string) []string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "dump", pattern))
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestBackupDir_SharedBetweenSimulators(t *testing.T) {
	dir := t.TempDir()
	x, y := newBackupDirEnv(t, dir), newBackupDirEnv(t, dir)
	ctx := context.Background()

	// A VM backed up at X, with the go-proxmox client.
	task, err := testNode(t, x.client, "pve1").Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{
		VMID: 100, Storage: "dr", Mode: "snapshot", Compress: "zstd", NotesTemplate: "{{guestname}} from {{node}}",
	})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)

	// Y lists it on every node at once, as X does.
	var volid string
	for _, node := range []string{"pve1", "pve2", "pve3"} {
		content := testStorageContent(t, y.client, node, "dr")
		if len(content) != 1 {
			t.Fatalf("dr on Y's %s: %v", node, content)
		}
		for id, v := range content {
			if !strings.HasPrefix(id, "dr:backup/vzdump-qemu-100-") || v.VMID != 100 || v.Format != "vma.zst" || v.Notes != "web-01 from pve1" || v.Size == 0 || v.Ctime == 0 {
				t.Fatalf("backup on Y: %s %+v", id, v)
			}
			volid = id
		}
	}
	if got := x.backupsOf(t, "pve1", 100); len(got) != 1 || got[0]["volid"] != volid {
		t.Fatalf("backups at X: %v", got)
	}
	if used := y.storageUsed(t, "pve2", "dr"); used == 0 {
		t.Fatal("dr's used space at Y is 0")
	}

	// Y restores it as VM 900 on another node and starts it.
	if exit, log := y.runTask(t, "POST", "/nodes/pve3/qemu", url.Values{"vmid": {"900"}, "archive": {volid}, "storage": {"local-lvm"}, "unique": {"1"}}); exit != "OK" {
		t.Fatalf("restore at Y: %s\n%s", exit, log)
	}
	conf := config(t, y.sim, 900)
	want := config(t, x.sim, 100)
	if conf["name"] != "web-01" || conf["ipconfig0"] != want["ipconfig0"] || conf["scsi0"] != "local-lvm:vm-900-disk-0,iothread=1,size=32G" {
		t.Fatalf("restored at Y: %v", conf)
	}
	if _, ok := testGuest(t, x.sim, 900); ok {
		t.Fatal("the restore at Y made a guest at X")
	}
	task, err = testVM(t, y.client, "pve3", 900).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if g, _ := testGuest(t, y.sim, 900); g.Status != "running" {
		t.Fatalf("VM 900 at Y after start: %+v", g)
	}

	// A protected container backup at X: Y sees the protection, and
	// refuses to delete it until it is lifted.
	if exit, log := x.runTask(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"200"}, "storage": {"dr"}, "compress": {"gzip"}, "protected": {"1"}}); exit != "OK" {
		t.Fatalf("vzdump at X: %s\n%s", exit, log)
	}
	cts := y.backupsOf(t, "pve2", 200)
	if len(cts) != 1 || cts[0]["protected"] != float64(1) || cts[0]["subtype"] != "lxc" || cts[0]["format"] != "tar.gz" {
		t.Fatalf("container backups at Y: %v", cts)
	}
	ctVolid := cts[0]["volid"].(string)
	if exit, log := y.runTask(t, "POST", "/nodes/pve2/lxc", url.Values{"vmid": {"901"}, "ostemplate": {ctVolid}, "restore": {"1"}, "storage": {"local-lvm"}}); exit != "OK" {
		t.Fatalf("container restore at Y: %s\n%s", exit, log)
	}
	if conf := config(t, y.sim, 901); conf["hostname"] != "dns-01" || conf["rootfs"] != "local-lvm:vm-901-disk-0,size=8G" {
		t.Fatalf("container restored at Y: %v", conf)
	}
	deletePath := "/nodes/pve2/storage/dr/content/" + url.PathEscape(ctVolid)
	if exit, _ := y.runTask(t, "DELETE", deletePath, nil); !strings.Contains(exit, "cannot remove protected volume") {
		t.Fatalf("delete of a protected backup at Y: %q", exit)
	}
	// Lifted on another host (pvesm set --protected 0 removes the file).
	if err := os.Remove(archives(t, dir, "vzdump-lxc-200-*.tar.gz.protected")[0]); err != nil {
		t.Fatal(err)
	}
	if cts := x.backupsOf(t, "pve1", 200); len(cts) != 1 || cts[0]["protected"] != nil {
		t.Fatalf("container backups at X after the protection was lifted: %v", cts)
	}
	if exit, log := y.runTask(t, "DELETE", deletePath, nil); exit != "OK" {
		t.Fatalf("delete at Y: %s\n%s", exit, log)
	}
	if cts := x.backupsOf(t, "pve1", 200); len(cts) != 0 {
		t.Fatalf("container backups at X after Y deleted them: %v", cts)
	}

	// A delete at X is gone at Y, files and all.
	if exit, log := x.runTask(t, "DELETE", "/nodes/pve1/storage/dr/content/"+url.PathEscape(volid), nil); exit != "OK" {
		t.Fatalf("delete at X: %s\n%s", exit, log)
	}
	if got := y.backupsOf(t, "pve3", 100); len(got) != 0 {
		t.Fatalf("backups at Y after X deleted them: %v", got)
	}
	if files := archives(t, dir, "*"); len(files) != 0 {
		t.Fatalf("files left in dump: %v", files)
	}
	if code, status, _ := y.do(t, "POST", "/nodes/pve1/qemu", url.Values{"vmid": {"902"}, "archive": {volid}}); code != 500 || !strings.Contains(status, "can't find file") {
		t.Fatalf("restore of a deleted backup at Y: %s", status)
	}
}

func TestBackupDir_FileLayout(t *testing.T) {
	dir := t.TempDir()
	e := newBackupDirEnv(t, dir)
	for _, params := range []url.Values{
		{"vmid": {"100"}, "storage": {"dr"}, "compress": {"zstd"}, "notes-template": {"{{guestname}}"}},
		{"vmid": {"200"}, "storage": {"dr"}, "protected": {"1"}},
	} {
		if exit, log := e.runTask(t, "POST", "/nodes/pve1/vzdump", params); exit != "OK" {
			t.Fatalf("vzdump %v: %s\n%s", params, exit, log)
		}
	}

	info, err := os.Stat(filepath.Join(dir, "dump"))
	if err != nil || info.Mode().Perm() != 0o750 {
		t.Fatalf("dump directory: %v, %v", info, err)
	}
	vm := archives(t, dir, "vzdump-qemu-100-*.vma.zst")
	ct := archives(t, dir, "vzdump-lxc-200-*.tar")
	if len(vm) != 1 || len(ct) != 1 {
		t.Fatalf("archives %v %v", vm, ct)
	}
	if all := archives(t, dir, "*"); len(all) != 4 {
		t.Fatalf("dump holds %v, want two archives, one notes file, one protected file", all)
	}
	for _, f := range []string{vm[0], vm[0] + ".notes", ct[0], ct[0] + ".protected"} {
		if info, err := os.Stat(f); err != nil || info.Mode().Perm() != 0o640 {
			t.Fatalf("%s: %v, %v", f, info, err)
		}
	}
	if b, _ := os.ReadFile(vm[0] + ".notes"); string(b) != "web-01" {
		t.Fatalf("notes %q", b)
	}
	if b, _ := os.ReadFile(ct[0] + ".protected"); len(b) != 0 {
		t.Fatalf("protected file holds %q", b)
	}
	var a struct {
		VMID    int               `json:"vmid"`
		Subtype string            `json:"subtype"`
		Format  string            `json:"format"`
		Size    uint64            `json:"size"`
		CTime   int64             `json:"ctime"`
		Conf    map[string]string `json:"conf"`
	}
	b, err := os.ReadFile(vm[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &a); err != nil {
		t.Fatalf("archive %s: %v", b, err)
	}
	if a.VMID != 100 || a.Subtype != "qemu" || a.Format != "vma.zst" || a.Size == 0 || a.CTime == 0 || a.Conf["name"] != "web-01" || a.Conf["lock"] != "" {
		t.Fatalf("archive %+v", a)
	}
	_, _, data := e.do(t, "GET", "/nodes/pve1/storage/dr/content", nil)
	if list, _ := data.([]any); len(list) != 2 {
		t.Fatalf("content %v", data)
	}

	// Notes written on another host show; files that are not archives,
	// or archives that do not parse or disagree with their name, are
	// skipped.
	if err := os.WriteFile(vm[0]+".notes", []byte("edited elsewhere"), 0o600); err != nil {
		t.Fatal(err)
	}
	for name, content := range map[string]string{
		"vzdump-qemu-555-2026_01_01-00_00_00.vma.zst":       "not json",
		"vzdump-qemu-556-2026_01_01-00_00_00.vma":           `{"vmid":100,"subtype":"qemu","format":"vma"}`,
		"vzdump-qemu-557-2026_01_01-00_00_00.log":           "INFO: starting",
		".vzdump-qemu-558-2026_01_01-00_00_00.vma.tmp12345": `{"vmid":558,"subtype":"qemu","format":"vma"}`,
	} {
		if err := os.WriteFile(filepath.Join(dir, "dump", name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	got := e.backupsOf(t, "pve2", 100)
	if len(got) != 1 || got[0]["notes"] != "edited elsewhere" {
		t.Fatalf("backups of 100 %v", got)
	}
	_, _, data = e.do(t, "GET", "/nodes/pve2/storage/dr/content", nil)
	if list, _ := data.([]any); len(list) != 2 {
		t.Fatalf("content with foreign files: %v", data)
	}
}

func TestBackupDir_StorageConfig(t *testing.T) {
	dir := t.TempDir()
	e := newBackupDirEnv(t, dir)
	ctx := context.Background()
	cs, err := e.client.ClusterStorage(ctx, "dr")
	if err != nil {
		t.Fatal(err)
	}
	if cs.Type != "dir" || cs.Path != dir || cs.Shared != 1 || cs.Content != "backup" {
		t.Fatalf("storage dr %+v", cs)
	}
	all, err := e.client.ClusterStorages(ctx)
	if err != nil || len(all) != 4 || all[3].Storage != "dr" {
		t.Fatalf("storage.cfg %+v, %v", all, err)
	}
	for _, node := range []string{"pve1", "pve2", "pve3"} {
		st, err := testNode(t, e.client, node).Storage(ctx, "dr")
		if err != nil {
			t.Fatal(err)
		}
		if st.Type != "dir" || st.Shared != 1 || st.Content != "backup" || st.Total != 4096<<30 {
			t.Fatalf("dr on %s: %+v", node, st)
		}
	}
	// Backups only: no disks there.
	code, status, _ := e.do(t, "POST", "/nodes/pve1/qemu/103/move_disk", url.Values{"disk": {"scsi0"}, "storage": {"dr"}})
	if code == 200 {
		t.Fatalf("a disk moved to the backup storage: %s", status)
	}
}

func TestBackupDir_RefusesTakenIDs(t *testing.T) {
	dir := t.TempDir()
	for _, id := range []string{"local", "local-lvm", "nfs-shared", "-bad"} {
		seed := pvesim.DefaultSeed()
		seed.BackupDirs = map[string]string{id: dir}
		if sim, err := pvesim.New(pvesim.Config{Seed: seed}); err == nil {
			sim.Close()
			t.Fatalf("backup storage %q accepted", id)
		}
	}
	seed := pvesim.DefaultSeed()
	seed.BackupDirs = map[string]string{"dr": ""}
	_, err := pvesim.New(pvesim.Config{Seed: seed})
	wantErr(t, err, "has no directory")
	seed.BackupDirs = map[string]string{"local": dir}
	_, err = pvesim.New(pvesim.Config{Seed: seed})
	wantErr(t, err, `backup storage ID "local" is taken`)
}

// backupHelperEnv names the backup directory a re-executed test binary
// backs VM 100 up to (TestBackupDir_OtherProcess).
const backupHelperEnv = "PVESIM_TEST_BACKUP_DIR"

func TestBackupDir_OtherProcess(t *testing.T) {
	if dir := os.Getenv(backupHelperEnv); dir != "" {
		// The other process: back VM 100 up and exit.
		e := newBackupDirEnv(t, dir)
		if exit, log := e.runTask(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"dr"}, "notes-template": {"from afar"}}); exit != "OK" {
			t.Fatalf("vzdump: %s\n%s", exit, log)
		}
		return
	}
	dir := t.TempDir()
	e := newBackupDirEnv(t, dir)
	cmd := exec.Command(os.Args[0], "-test.run=^TestBackupDir_OtherProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), backupHelperEnv+"="+dir)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the other process: %v\n%s", err, out)
	}
	got := e.backupsOf(t, "pve2", 100)
	if len(got) != 1 || got[0]["notes"] != "from afar" {
		t.Fatalf("backups made by another process: %v", got)
	}
	if exit, log := e.runTask(t, "POST", "/nodes/pve2/qemu", url.Values{"vmid": {"900"}, "archive": {got[0]["volid"].(string)}, "storage": {"local-lvm"}}); exit != "OK" {
		t.Fatalf("restore: %s\n%s", exit, log)
	}
}

func TestBackupDir_MatchesSchema(t *testing.T) {
	e := newBackupDirEnv(t, t.TempDir())
	if exit, log := e.runTask(t, "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"dr"}, "notes-template": {"n"}, "protected": {"1"}}); exit != "OK" {
		t.Fatalf("vzdump: %s\n%s", exit, log)
	}
	sch := schema.Load()
	for _, c := range []struct{ template, path, want string }{
		{"/storage", "/storage", `"storage":"dr"`},
		{"/storage/{storage}", "/storage/dr", `"shared":1`},
		{"/nodes/{node}/storage", "/nodes/pve2/storage?content=backup", `"storage":"dr"`},
		{"/nodes/{node}/storage/{storage}/status", "/nodes/pve2/storage/dr/status", `"content":"backup"`},
		{"/nodes/{node}/storage/{storage}/content", "/nodes/pve2/storage/dr/content", `"protected":1`},
		{"/cluster/resources", "/cluster/resources?type=storage", `"id":"storage/pve3/dr"`},
	} {
		ep, _, ok := sch.Lookup("GET", c.template)
		if !ok {
			t.Fatalf("GET %s not in the schema", c.template)
		}
		code, status, raw := e.raw(t, "GET", "/api2/json"+c.path, "")
		if code != 200 {
			t.Fatalf("GET %s: %s", c.path, status)
		}
		var res struct{ Data any }
		if err := json.Unmarshal([]byte(raw), &res); err != nil {
			t.Fatal(err)
		}
		for _, p := range ep.CheckReturns(res.Data) {
			t.Errorf("GET %s: %s", c.path, p)
		}
		if !strings.Contains(raw, c.want) {
			t.Errorf("GET %s lacks %s: %s", c.path, c.want, raw)
		}
	}
}
