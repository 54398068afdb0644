package pvesim_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/pvesim"
)

// do sends one API request with the token, parameters in the body for POST
// and PUT and in the query otherwise, and returns the status line and the
// decoded "data".
func (e *testEnv) do(t testing.TB, method, path string, params url.Values) (code int, status string, data any) {
	t.Helper()
	body := ""
	if method == "POST" || method == "PUT" {
		body = params.Encode()
	} else if len(params) > 0 {
		path += "?" + params.Encode()
	}
	code, status, raw := e.raw(t, method, "/api2/json"+path, body)
	var env struct{ Data any }
	_ = json.Unmarshal([]byte(raw), &env)
	return code, status, env.Data
}

// runTask sends a request that must start a task, waits for the task and
// returns its exit status and log.
func (e *testEnv) runTask(t testing.TB, method, path string, params url.Values) (exit, log string) {
	t.Helper()
	code, status, data := e.do(t, method, path, params)
	upid, _ := data.(string)
	if code != 200 || !strings.HasPrefix(upid, "UPID:") {
		t.Fatalf("%s %s %v: %s %v", method, path, params, status, data)
	}
	task := waitTask(t, newTestTask(e, upid))
	lines, err := task.Log(context.Background(), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	return task.ExitStatus, strings.Join(logLines(lines), "\n")
}

// storageUsed is the used space of a storage on a node.
func (e *testEnv) storageUsed(t testing.TB, node, storage string) uint64 {
	t.Helper()
	_, status, data := e.do(t, "GET", "/nodes/"+node+"/storage/"+storage+"/status", nil)
	m, ok := data.(map[string]any)
	if !ok {
		t.Fatalf("storage %s on %s: %s", storage, node, status)
	}
	used, _ := m["used"].(float64)
	return uint64(used)
}

// config reads a guest's configuration from the simulator's test hook.
func config(t testing.TB, sim *pvesim.Sim, vmid int) map[string]string {
	t.Helper()
	g, ok := testGuest(t, sim, vmid)
	if !ok {
		t.Fatalf("no guest %d", vmid)
	}
	return g.Config
}

func TestDisk_Resize(t *testing.T) {
	cases := []struct {
		name, path, disk, size string
		code                   int    // of the request
		exit                   string // of the task, when the request starts one
		wantSize               string // in the configuration afterwards
		grow                   uint64 // of local-lvm's used space
	}{
		{"vm absolute", "/nodes/pve1/qemu/103", "scsi0", "40G", 200, "OK", "size=40G", 8 << 30},
		{"vm relative", "/nodes/pve1/qemu/103", "scsi0", "+512M", 200, "OK", "size=33280M", 512 << 20},
		{"vm running", "/nodes/pve1/qemu/100", "scsi0", "+1G", 200, "OK", "size=33G", 1 << 30},
		{"vm same size", "/nodes/pve1/qemu/103", "scsi0", "32G", 200, "OK", "size=32G", 0},
		{"vm shrink", "/nodes/pve1/qemu/103", "scsi0", "16G", 200, "shrinking disks is not supported", "size=32G", 0},
		{"vm no such disk", "/nodes/pve1/qemu/103", "scsi7", "16G", 200, "disk 'scsi7' does not exist", "size=32G", 0},
		{"vm too big", "/nodes/pve1/qemu/103", "scsi0", "8T", 200, "failed: exit code 5", "size=32G", 0},
		{"ct", "/nodes/pve1/lxc/200", "rootfs", "+2G", 200, "OK", "size=10G", 2 << 30},
		{"ct shrink", "/nodes/pve1/lxc/200", "rootfs", "4G", 500, "", "size=8G", 0},
		{"ct same size", "/nodes/pve1/lxc/200", "rootfs", "8G", 500, "", "size=8G", 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, pvesim.Config{})
			before := e.storageUsed(t, "pve1", "local-lvm")
			params := url.Values{"disk": {tc.disk}, "size": {tc.size}}
			code, status, data := e.do(t, "PUT", tc.path+"/resize", params)
			if code != tc.code {
				t.Fatalf("PUT resize: %s %v, want %d", status, data, tc.code)
			}
			if code == 200 {
				upid, _ := data.(string)
				task := waitTask(t, newTestTask(e, upid))
				if task.Type != "resize" || !strings.Contains(task.ExitStatus, tc.exit) {
					t.Fatalf("task %s ended %q, want %q", task.Type, task.ExitStatus, tc.exit)
				}
			}
			vmid := atoi(t, tc.path[strings.LastIndexByte(tc.path, '/')+1:])
			key := tc.disk
			if tc.code != 200 || tc.exit != "OK" {
				key = map[bool]string{true: "rootfs", false: "scsi0"}[strings.Contains(tc.path, "lxc")]
			}
			if got := config(t, e.sim, vmid)[key]; !strings.Contains(got, tc.wantSize) {
				t.Errorf("%s = %q, want %s", key, got, tc.wantSize)
			}
			if got := e.storageUsed(t, "pve1", "local-lvm") - before; got != tc.grow {
				t.Errorf("local-lvm grew by %d, want %d", got, tc.grow)
			}
		})
	}
}

func atoi(t testing.TB, s string) int {
	t.Helper()
	var n int
	if err := json.Unmarshal([]byte(s), &n); err != nil {
		t.Fatalf("%q is not a number", s)
	}
	return n
}

func TestDisk_MoveVM(t *testing.T) {
	cases := []struct {
		name     string
		vmid     int
		params   url.Values
		faults   pvesim.Faults
		exit     string
		logs     []string // in the task log
		notLogs  []string
		moved    bool
		unused   bool // the source stays as unused0
		lvmDelta int64
	}{
		{"stopped, delete source", 103, url.Values{"delete": {"1"}}, pvesim.Faults{}, "OK",
			[]string{"create full clone of drive scsi0 (local-lvm:vm-103-disk-0)", "transferred 32.0 GiB of 32.0 GiB (100.00%)",
				"removing source volume 'local-lvm:vm-103-disk-0' after successful copy"},
			[]string{"drive mirror"}, true, false, -32 << 30},
		{"running, keep source", 100, nil, pvesim.Faults{}, "OK",
			[]string{"drive mirror is starting for drive-scsi0", "drive-scsi0: transferred 16.0 GiB of 32.0 GiB (50.00%) in",
				"(100.00%) in 0s, ready", "drive-scsi0: Completed successfully.", "adding source volume 'local-lvm:vm-100-disk-0' as 'unused0' to config"},
			nil, true, true, 0},
		{"stopped, fails half-way", 103, url.Values{"delete": {"1"}}, pvesim.Faults{FailTasksAt: map[string]int{"qmmove": 50}},
			"storage migration failed: copy failed: command '/usr/bin/qemu-img convert -p -n -f raw -O qcow2 /dev/pve/vm-103-disk-0 zeroinit:/mnt/pve/nfs-shared/images/103/vm-103-disk-0.qcow2' failed: exit code 1",
			[]string{"transferred 16.0 GiB of 32.0 GiB (50.00%)"}, []string{"(75.00%)"}, false, false, 0},
		{"running, fails at 30%", 100, nil, pvesim.Faults{FailTasksAt: map[string]int{"qmmove": 30}},
			"storage migration failed: block job (mirror) error: drive-scsi0: Input/output error (io-status: ok)",
			[]string{"(30.00%)", "drive-scsi0: Cancelling block job"}, []string{"(50.00%)", "ready"}, false, false, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, pvesim.Config{Faults: tc.faults})
			node := map[int]string{100: "pve1", 103: "pve1"}[tc.vmid]
			path := "/nodes/" + node + "/qemu/" + itoa(tc.vmid)
			lvm, nfs := e.storageUsed(t, node, "local-lvm"), e.storageUsed(t, node, "nfs-shared")
			src := config(t, e.sim, tc.vmid)["scsi0"]
			params := url.Values{"disk": {"scsi0"}, "storage": {"nfs-shared"}}
			for k, v := range tc.params {
				params[k] = v
			}
			exit, log := e.runTask(t, "POST", path+"/move_disk", params)
			if exit != tc.exit {
				t.Fatalf("task ended %q, want %q; log:\n%s", exit, tc.exit, log)
			}
			for _, l := range tc.logs {
				if !strings.Contains(log, l) {
					t.Errorf("log lacks %q:\n%s", l, log)
				}
			}
			for _, l := range tc.notLogs {
				if strings.Contains(log, l) {
					t.Errorf("log has %q:\n%s", l, log)
				}
			}
			conf := config(t, e.sim, tc.vmid)
			wantDisk := src
			if tc.moved {
				wantDisk = "nfs-shared:" + itoa(tc.vmid) + "/vm-" + itoa(tc.vmid) + "-disk-0.qcow2,iothread=1,size=32G"
			}
			if conf["scsi0"] != wantDisk {
				t.Errorf("scsi0 = %q, want %q", conf["scsi0"], wantDisk)
			}
			if got := conf["unused0"]; (got != "") != tc.unused {
				t.Errorf("unused0 = %q, want it set: %v", got, tc.unused)
			}
			if conf["lock"] != "" {
				t.Errorf("lock %q after the move", conf["lock"])
			}
			if got := int64(e.storageUsed(t, node, "local-lvm") - lvm); got != tc.lvmDelta {
				t.Errorf("local-lvm used changed by %d, want %d", got, tc.lvmDelta)
			}
			nfsDelta := e.storageUsed(t, node, "nfs-shared") - nfs
			if want := map[bool]uint64{true: 32 << 30, false: 0}[tc.moved]; nfsDelta != want {
				t.Errorf("nfs-shared used grew by %d, want %d", nfsDelta, want)
			}
		})
	}
}

func TestDisk_MoveRefusals(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	if exit, log := e.runTask(t, "POST", "/nodes/pve1/qemu/103/snapshot", url.Values{"snapname": {"s1"}}); exit != "OK" {
		t.Fatalf("snapshot: %s\n%s", exit, log)
	}
	cases := []struct {
		name, path string
		params     url.Values
		code       int
		want       string
	}{
		{"same storage", "/nodes/pve1/qemu/103/move_disk", url.Values{"disk": {"scsi0"}, "storage": {"local-lvm"}}, 500,
			"you can't move to the same storage with same format"},
		{"snapshots and delete", "/nodes/pve1/qemu/103/move_disk", url.Values{"disk": {"scsi0"}, "storage": {"nfs-shared"}, "delete": {"1"}}, 500,
			"you can't move a disk with snapshots and delete the source"},
		{"no such disk", "/nodes/pve1/qemu/103/move_disk", url.Values{"disk": {"virtio3"}, "storage": {"nfs-shared"}}, 500,
			"disk 'virtio3' does not exist"},
		{"storage without images", "/nodes/pve1/qemu/103/move_disk", url.Values{"disk": {"scsi0"}, "storage": {"local"}}, 400,
			"Parameter verification failed."},
		{"neither storage nor target", "/nodes/pve1/qemu/103/move_disk", url.Values{"disk": {"scsi0"}}, 400,
			"Parameter verification failed."},
		{"running container", "/nodes/pve1/lxc/200/move_volume", url.Values{"volume": {"rootfs"}, "storage": {"nfs-shared"}}, 500,
			"cannot move volumes of a running container"},
		{"unused volume", "/nodes/pve2/lxc/201/move_volume", url.Values{"volume": {"unused0"}, "storage": {"nfs-shared"}}, 500,
			"cannot move volume 'unused0', only configured volumes can be moved to another storage"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, status, _ := e.do(t, "POST", tc.path, tc.params)
			if code != tc.code || !strings.Contains(status, tc.want) {
				t.Fatalf("%s, want %d %s", status, tc.code, tc.want)
			}
		})
	}
}

func TestDisk_MoveContainer(t *testing.T) {
	cases := []struct {
		name   string
		params url.Values
		faults pvesim.Faults
		exit   string
		rootfs string // prefix of rootfs afterwards
		unused bool
	}{
		{"keep source", nil, pvesim.Faults{}, "OK", "nfs-shared:201/vm-201-disk-0.raw,size=8G", true},
		{"delete source", url.Values{"delete": {"1"}}, pvesim.Faults{}, "OK", "nfs-shared:201/vm-201-disk-0.raw,size=8G", false},
		{"fails half-way", url.Values{"delete": {"1"}}, pvesim.Faults{FailTasksAt: map[string]int{"move_volume": 50}},
			"failed: exit code 11", "local-lvm:vm-201-disk-0,size=8G", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, pvesim.Config{Faults: tc.faults})
			nfs := e.storageUsed(t, "pve2", "nfs-shared")
			params := url.Values{"volume": {"rootfs"}, "storage": {"nfs-shared"}}
			for k, v := range tc.params {
				params[k] = v
			}
			exit, log := e.runTask(t, "POST", "/nodes/pve2/lxc/201/move_volume", params)
			if !strings.Contains(exit, tc.exit) {
				t.Fatalf("task ended %q, want %q\n%s", exit, tc.exit, log)
			}
			conf := config(t, e.sim, 201)
			if conf["rootfs"] != tc.rootfs || (conf["unused0"] != "") != tc.unused || conf["lock"] != "" {
				t.Fatalf("config after the move: rootfs %q unused0 %q lock %q", conf["rootfs"], conf["unused0"], conf["lock"])
			}
			grew := e.storageUsed(t, "pve2", "nfs-shared") - nfs
			if want := map[bool]uint64{true: 8 << 30, false: 0}[tc.exit == "OK"]; grew != want {
				t.Fatalf("nfs-shared grew by %d, want %d", grew, want)
			}
		})
	}
}

func TestDisk_DetachAttach(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	path := "/nodes/pve1/qemu/103/config"
	lvm := func() uint64 { return e.storageUsed(t, "pve1", "local-lvm") }
	before := lvm()
	if exit, _ := e.runTask(t, "POST", path, url.Values{"scsi1": {"local-lvm:4,iothread=1"}}); exit != "OK" {
		t.Fatalf("add disk: %s", exit)
	}
	if got := config(t, e.sim, 103)["scsi1"]; got != "local-lvm:vm-103-disk-1,iothread=1,size=4G" {
		t.Fatalf("scsi1 = %q", got)
	}
	if lvm()-before != 4<<30 {
		t.Fatalf("local-lvm grew by %d for a 4 GiB disk", lvm()-before)
	}
	if exit, _ := e.runTask(t, "POST", path, url.Values{"delete": {"scsi1"}}); exit != "OK" {
		t.Fatalf("detach: %s", exit)
	}
	conf := config(t, e.sim, 103)
	if _, ok := conf["scsi1"]; ok || conf["unused0"] != "local-lvm:vm-103-disk-1" {
		t.Fatalf("after detaching: scsi1 %q unused0 %q", conf["scsi1"], conf["unused0"])
	}
	if code, status, _ := e.do(t, "PUT", path, url.Values{"scsi2": {"local-lvm:vm-103-disk-1"}}); code != 200 {
		t.Fatalf("attach: %s", status)
	}
	conf = config(t, e.sim, 103)
	if _, ok := conf["unused0"]; ok || conf["scsi2"] != "local-lvm:vm-103-disk-1,size=4G" {
		t.Fatalf("after attaching: scsi2 %q unused0 %q", conf["scsi2"], conf["unused0"])
	}
	if code, status, _ := e.do(t, "PUT", path, url.Values{"scsi3": {"local-lvm:vm-103-disk-9"}}); code != 500 || !strings.Contains(status, "does not exist") {
		t.Fatalf("attaching a missing volume: %s", status)
	}
	for _, key := range []string{"scsi2", "unused0"} {
		if code, status, _ := e.do(t, "PUT", path, url.Values{"delete": {key}}); code != 200 {
			t.Fatalf("delete %s: %s", key, status)
		}
	}
	if _, ok := testStorageContent(t, e.client, "pve1", "local-lvm")["local-lvm:vm-103-disk-1"]; ok || lvm() != before {
		t.Fatalf("the deleted unused disk is still there (local-lvm used %d, was %d)", lvm(), before)
	}
}

func TestStorage_DeleteVolume(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	content := func(node, storage string) string { return "/nodes/" + node + "/storage/" + storage + "/content/" }
	backup := func(vmid int, protected bool) string {
		t.Helper()
		params := url.Values{"vmid": {itoa(vmid)}, "storage": {"local"}, "compress": {"zstd"}}
		if protected {
			params.Set("protected", "1")
		}
		if exit, log := e.runTask(t, "POST", "/nodes/pve1/vzdump", params); exit != "OK" {
			t.Fatalf("vzdump: %s\n%s", exit, log)
		}
		_, _, data := e.do(t, "GET", "/nodes/pve1/storage/local/content", url.Values{"content": {"backup"}, "vmid": {itoa(vmid)}})
		list, _ := data.([]any)
		if len(list) != 1 {
			t.Fatalf("backups of %d: %v", vmid, data)
		}
		b := list[0].(map[string]any)
		if (b["protected"] == float64(1)) != protected {
			t.Fatalf("backup %v, want protected %v", b, protected)
		}
		return b["volid"].(string)
	}
	plain, protected := backup(103, false), backup(200, true)
	// An image no configuration names any more.
	if err := e.sim.UpdateGuest(103, func(g *pvesim.Guest) { g.Config["unused0"] = "local-lvm:vm-103-disk-7" }); err != nil {
		t.Fatal(err)
	}
	if exit, _ := e.runTask(t, "POST", "/nodes/pve1/qemu/103/config", url.Values{"scsi5": {"local-lvm:1"}}); exit != "OK" {
		t.Fatal(exit)
	}
	if err := e.sim.UpdateGuest(103, func(g *pvesim.Guest) { delete(g.Config, "scsi5"); delete(g.Config, "unused0") }); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name, path string
		params     url.Values
		code       int
		exit       string
		gone       string // the volume that is gone afterwards
	}{
		{"backup", content("pve1", "local") + url.PathEscape(plain), nil, 200, "OK", plain},
		{"protected backup", content("pve1", "local") + url.PathEscape(protected), nil, 200,
			"cannot remove protected volume '" + strings.TrimPrefix(protected, "local:") + "' on 'local'", ""},
		{"attached disk", content("pve1", "local-lvm") + url.PathEscape("local-lvm:vm-103-disk-0"), nil, 200,
			"volume 'local-lvm:vm-103-disk-0' is in use by VM 103 (scsi0)", ""},
		{"orphaned image by name", content("pve1", "local-lvm") + "vm-103-disk-1", url.Values{"delay": {"5"}}, 200, "", "local-lvm:vm-103-disk-1"},
		{"missing on lvm", content("pve1", "local-lvm") + "vm-103-disk-8", nil, 200, "Failed to find logical volume", ""},
		{"missing on a directory", content("pve1", "local") + "iso%2Fnone.iso", nil, 200, "WARNINGS: 1", ""},
		{"storage mismatch", content("pve1", "local") + url.PathEscape("local-lvm:vm-103-disk-0"), nil, 400, "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			used := e.storageUsed(t, "pve1", "local")
			code, status, data := e.do(t, "DELETE", tc.path, tc.params)
			if code != tc.code {
				t.Fatalf("DELETE %s: %s, want %d", tc.path, status, tc.code)
			}
			if upid, ok := data.(string); ok {
				task := waitTask(t, newTestTask(e, upid))
				if task.Type != "imgdel" || !strings.Contains(task.ExitStatus, tc.exit) {
					t.Fatalf("%s task ended %q, want %q", task.Type, task.ExitStatus, tc.exit)
				}
			} else if code == 200 && data != nil {
				t.Fatalf("answer %v, want a UPID or null", data)
			}
			if tc.gone == "" {
				return
			}
			sid, _, _ := strings.Cut(tc.gone, ":")
			if _, ok := testStorageContent(t, e.client, "pve1", sid)[tc.gone]; ok {
				t.Fatalf("%s is still there", tc.gone)
			}
			if sid == "local" && e.storageUsed(t, "pve1", "local") >= used {
				t.Fatal("local's used space did not drop")
			}
		})
	}
}

func TestRestore(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	backupOf := func(node string, vmid int) string {
		t.Helper()
		params := url.Values{"vmid": {itoa(vmid)}, "storage": {"nfs-shared"}, "notes-template": {"{{guestname}}"}}
		if exit, log := e.runTask(t, "POST", "/nodes/"+node+"/vzdump", params); exit != "OK" {
			t.Fatalf("vzdump: %s\n%s", exit, log)
		}
		_, _, data := e.do(t, "GET", "/nodes/"+node+"/storage/nfs-shared/content", url.Values{"content": {"backup"}, "vmid": {itoa(vmid)}})
		list, _ := data.([]any)
		if len(list) != 1 {
			t.Fatalf("backups of %d: %v", vmid, data)
		}
		b := list[0].(map[string]any)
		for _, k := range []string{"volid", "vmid", "ctime", "notes", "size", "format", "subtype"} {
			if b[k] == nil {
				t.Fatalf("backup lacks %s: %v", k, b)
			}
		}
		return b["volid"].(string)
	}
	vmBackup, ctBackup := backupOf("pve1", 103), backupOf("pve2", 201)
	want103 := config(t, e.sim, 103)

	cases := []struct {
		name, path string
		params     url.Values
		faults     pvesim.Faults
		code       int
		exit       string
		vmid       int
		check      func(t *testing.T, conf map[string]string, ok bool)
	}{
		{"vm to a new id", "/nodes/pve1/qemu", url.Values{"vmid": {"900"}, "archive": {vmBackup}, "storage": {"local-lvm"}}, pvesim.Faults{}, 200, "OK", 900,
			func(t *testing.T, conf map[string]string, ok bool) {
				if conf["scsi0"] != "local-lvm:vm-900-disk-0,iothread=1,size=32G" || conf["name"] != want103["name"] || conf["net0"] != want103["net0"] {
					t.Fatalf("restored config %v", conf)
				}
			}},
		{"vm on its old storage", "/nodes/pve1/qemu", url.Values{"vmid": {"901"}, "archive": {vmBackup}, "unique": {"1"}}, pvesim.Faults{}, 200, "OK", 901,
			func(t *testing.T, conf map[string]string, ok bool) {
				if conf["scsi0"] != "local-lvm:vm-901-disk-0,iothread=1,size=32G" || conf["net0"] == want103["net0"] {
					t.Fatalf("restored config %v", conf)
				}
			}},
		{"vm over an existing one", "/nodes/pve1/qemu", url.Values{"vmid": {"103"}, "archive": {vmBackup}}, pvesim.Faults{}, 500, "", 103, nil},
		{"vm over an existing one, forced", "/nodes/pve1/qemu", url.Values{"vmid": {"103"}, "archive": {vmBackup}, "force": {"1"}}, pvesim.Faults{}, 200, "OK", 103,
			func(t *testing.T, conf map[string]string, ok bool) {
				if conf["scsi0"] != want103["scsi0"] {
					t.Fatalf("scsi0 = %q, want %q", conf["scsi0"], want103["scsi0"])
				}
			}},
		{"vm fails half-way", "/nodes/pve1/qemu", url.Values{"vmid": {"902"}, "archive": {vmBackup}}, pvesim.Faults{FailTasksAt: map[string]int{"qmrestore": 50}},
			200, "vma extract", 902,
			func(t *testing.T, conf map[string]string, ok bool) {
				if !ok || len(conf) != 1 || conf["memory"] != "128" {
					t.Fatalf("after a failed restore: %v %v", ok, conf)
				}
			}},
		{"container", "/nodes/pve2/lxc", url.Values{"vmid": {"903"}, "ostemplate": {ctBackup}, "restore": {"1"}, "storage": {"local-lvm"}}, pvesim.Faults{}, 200, "OK", 903,
			func(t *testing.T, conf map[string]string, ok bool) {
				if conf["rootfs"] != "local-lvm:vm-903-disk-0,size=8G" || conf["hostname"] != "proxy-01" {
					t.Fatalf("restored config %v", conf)
				}
			}},
		{"container to local", "/nodes/pve2/lxc", url.Values{"vmid": {"904"}, "ostemplate": {ctBackup}, "restore": {"1"}}, pvesim.Faults{}, 400, "", 904, nil},
		{"container fails", "/nodes/pve2/lxc", url.Values{"vmid": {"905"}, "ostemplate": {ctBackup}, "restore": {"1"}, "storage": {"local-lvm"}},
			pvesim.Faults{FailTasksAt: map[string]int{"vzrestore": 50}}, 200, "unable to restore CT 905", 905,
			func(t *testing.T, conf map[string]string, ok bool) {
				if ok {
					t.Fatalf("a failed container restore left %v", conf)
				}
			}},
		{"wrong kind", "/nodes/pve2/lxc", url.Values{"vmid": {"906"}, "ostemplate": {vmBackup}, "restore": {"1"}, "storage": {"local-lvm"}}, pvesim.Faults{}, 500, "", 906, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e.sim.SetFaults(tc.faults)
			defer e.sim.SetFaults(pvesim.Faults{})
			lvm := e.storageUsed(t, "pve1", "local-lvm")
			code, status, data := e.do(t, "POST", tc.path, tc.params)
			if code != tc.code {
				t.Fatalf("POST %s: %s %v, want %d", tc.path, status, data, tc.code)
			}
			if upid, ok := data.(string); ok {
				task := waitTask(t, newTestTask(e, upid))
				if !strings.HasSuffix(task.Type, "restore") || !strings.Contains(task.ExitStatus, tc.exit) {
					t.Fatalf("%s task ended %q, want %q", task.Type, task.ExitStatus, tc.exit)
				}
			}
			if tc.check != nil {
				g, ok := testGuest(t, e.sim, tc.vmid)
				tc.check(t, g.Config, ok)
			}
			if tc.exit != "OK" && tc.path == "/nodes/pve1/qemu" && e.storageUsed(t, "pve1", "local-lvm") != lvm {
				t.Fatal("a refused or failed restore changed local-lvm's usage")
			}
		})
	}
}

func TestSnapshot_StorageUsage(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	before := e.storageUsed(t, "pve1", "local-lvm")
	if exit, _ := e.runTask(t, "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"s1"}, "vmstate": {"1"}, "description": {"before"}}); exit != "OK" {
		t.Fatal(exit)
	}
	_, _, data := e.do(t, "GET", "/nodes/pve1/qemu/100/snapshot", nil)
	list, _ := data.([]any)
	s1, _ := list[0].(map[string]any)
	if s1["name"] != "s1" || s1["vmstate"] != float64(1) || s1["description"] != "before" || s1["snaptime"] == nil {
		t.Fatalf("snapshot list %v", data)
	}
	state := "local-lvm:vm-100-state-s1"
	if _, ok := testStorageContent(t, e.client, "pve1", "local-lvm")[state]; !ok {
		t.Fatalf("no VM state volume %s", state)
	}
	// 1% of the 32 GiB disk and twice the 2 GiB memory plus 500 MiB.
	if grew := e.storageUsed(t, "pve1", "local-lvm") - before; grew != 32<<30/100+(2*2048+500)<<20 {
		t.Fatalf("local-lvm grew by %d with a snapshot", grew)
	}
	if exit, _ := e.runTask(t, "DELETE", "/nodes/pve1/storage/local-lvm/content/"+url.PathEscape(state), nil); !strings.Contains(exit, "in use by VM 100") {
		t.Fatalf("deleting the state of a snapshot: %s", exit)
	}
	if exit, _ := e.runTask(t, "DELETE", "/nodes/pve1/qemu/100/snapshot/s1", nil); exit != "OK" {
		t.Fatal(exit)
	}
	if after := e.storageUsed(t, "pve1", "local-lvm"); after != before {
		t.Fatalf("local-lvm used %d after deleting the snapshot, was %d", after, before)
	}
}

func itoa(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

// waitLog polls a running task's log until a line contains want.
func (e *testEnv) waitLog(t testing.TB, upid, want string) {
	t.Helper()
	task := newTestTask(e, upid)
	for {
		lines, err := task.Log(context.Background(), 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(strings.Join(logLines(lines), "\n"), want) {
			return
		}
		if err := task.Ping(context.Background()); err != nil || task.IsCompleted {
			t.Fatalf("task %s ended without logging %q", upid, want)
		}
	}
}

func TestDisk_MoveHoldsConfigLock(t *testing.T) {
	cases := []struct {
		name, method, path string
		params             url.Values
	}{
		{"snapshot", "POST", "/nodes/pve1/qemu/100/snapshot", url.Values{"snapname": {"during"}}},
		{"resize", "PUT", "/nodes/pve1/qemu/100/resize", url.Values{"disk": {"scsi0"}, "size": {"+1G"}}},
		{"backup", "POST", "/nodes/pve1/vzdump", url.Values{"vmid": {"100"}, "storage": {"local"}}},
		{"second move", "POST", "/nodes/pve1/qemu/100/move_disk", url.Values{"disk": {"scsi0"}, "storage": {"nfs-shared"}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, pvesim.Config{})
			e.sim.SetFaults(pvesim.Faults{SlowTasks: time.Minute})
			code, status, data := e.do(t, "POST", "/nodes/pve1/qemu/100/move_disk", url.Values{"disk": {"scsi0"}, "storage": {"nfs-shared"}})
			move, _ := data.(string)
			if code != 200 {
				t.Fatalf("move: %s", status)
			}
			e.waitLog(t, move, "drive mirror is starting")
			e.sim.SetFaults(pvesim.Faults{})
			exit, log := e.runTask(t, tc.method, tc.path, tc.params)
			if exit == "OK" || !strings.Contains(log, "can't lock file '/var/lock/qemu-server/lock-100.conf' - got timeout") {
				t.Fatalf("%s during a move ended %q:\n%s", tc.name, exit, log)
			}
		})
	}
}
