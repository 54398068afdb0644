package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zone of TestStorage_PolicyCommands on any test machine

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/fsm"
)

// The disks and backups addStorage gives the platform.
const (
	webDisk    = "local-lvm:vm-101-disk-0"
	dbDisk     = "local-lvm:vm-103-disk-0"
	dbDataDisk = "local:103/vm-103-disk-1.qcow2"
	webBackup  = "local:backup/vzdump-qemu-101-2025_05_31-02_00_00.vma.zst"
)

// addStorage lists disks of guests 101 and 103 and a backup of 101 on
// pve1's storages, as a storage sync would.
func (p *platformAPI) addStorage(t *testing.T) {
	t.Helper()
	vol := func(volid string, vmid int, gib uint64, format string) fsm.Volume {
		stor, _, _ := strings.Cut(volid, ":")
		return fsm.Volume{VolID: volid, StorageID: "pve1/" + stor, Node: "pve1", Storage: stor, VMID: vmid, Size: gib << 30, Format: format, Content: "images"}
	}
	p.mustApply(t, &fsm.StorageSyncRequest{
		StorageIDs: []string{"pve1/local", "pve1/local-lvm"},
		Volumes:    []fsm.Volume{vol(webDisk, 101, 32, "raw"), vol(dbDisk, 103, 32, "raw"), vol(dbDataDisk, 103, 16, "qcow2")},
		Backups: []fsm.Backup{{VolID: webBackup, StorageID: "pve1/local", Node: "pve1", Storage: "local", VMID: 101, Kind: fsm.GuestKindVM,
			Time: fsm.Timestamp(time.Date(2025, 5, 31, 2, 0, 0, 0, time.UTC).UnixNano()), Size: 3 << 29, Format: "vma.zst"}},
	})
}

// finishOperations ends every active operation as the runner would:
// succeeded, with result as the volume it made.
func (p *platformAPI) finishOperations(t *testing.T, result string) {
	t.Helper()
	_, ops, err := p.fsm.State().Operations(nil, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range ops {
		p.mustApply(t, &fsm.OperationUpdateRequest{ID: op.ID, Status: ptr(fsm.OpSucceeded), Step: ptr("done"), VolumeResult: ptr(result)})
	}
}

// waitActiveOperation waits until an operation is active and returns it.
func (p *platformAPI) waitActiveOperation(t *testing.T) *fsm.Operation {
	t.Helper()
	for {
		ws := memdb.NewWatchSet()
		_, ops, err := p.fsm.State().Operations(ws, true)
		if err != nil {
			t.Fatal(err)
		}
		if len(ops) > 0 {
			return ops[0]
		}
		ws.Watch(nil)
	}
}

func TestStorage_Pools(t *testing.T) {
	p := newPlatformAPI(t)
	out, _ := p.cli(t, 0, "storage", "pool", "list")
	p.checkCall(t, "GET /v1/storage/pools")
	want := `ID              TYPE     NODES  USED                    STATE  FULL IN
pve1/local      dir      pve1   7 GiB / 94 GiB (7%)     ok     -
pve1/local-lvm  lvmthin  pve1   41 GiB / 350 GiB (12%)  ok     -
pve2/local-lvm  lvmthin  pve2   72 GiB / 350 GiB (21%)  ok     -
`
	if out != want {
		t.Errorf("pool list:\n%s\nwant:\n%s", out, want)
	}

	out, _ = p.cli(t, 0, "storage", "pool", "thresholds", "local-lvm", "--warn", "0.1", "--critical", "0.2")
	call, body, key := p.lastCall()
	if call != "PUT /v1/storage/thresholds/local-lvm" || key == "" {
		t.Errorf("thresholds request %q key %q", call, key)
	}
	checkJSON(t, "thresholds body", body, `{"warn": 0.1, "critical": 0.2}`)
	if out != "Storage local-lvm: warning at 10%, critical at 20%\n" {
		t.Errorf("thresholds: %q", out)
	}

	out, _ = p.cli(t, 0, "storage", "pool", "get", "pve2/local-lvm")
	p.checkCall(t, "GET /v1/storage/pools/pve2/local-lvm")
	want = `ID:          pve2/local-lvm
Storage:     local-lvm
Type:        lvmthin
Shared:      no
Nodes:       pve2
Content:     images, rootdir
Status:      available
Used:        72 GiB / 350 GiB (21%)
State:       critical
Thresholds:  warning at 10%, critical at 20%
Full in:     -
`
	if out != want {
		t.Errorf("pool get:\n%s\nwant:\n%s", out, want)
	}
	if got := plain(oneErrorLine(t, p.cliErr(t, "storage", "pool", "thresholds", "local-lvm", "--warn", "0.9", "--critical", "0.8"))); !strings.HasPrefix(got, "400 invalid_request: warn 0.90 is above critical 0.80") {
		t.Errorf("bad thresholds: %q", got)
	}
}

func TestStorage_VolumeCommands(t *testing.T) {
	p := newPlatformAPI(t)
	p.addStorage(t)
	out, _ := p.cli(t, 0, "storage", "volume", "list", "--vmid", "103")
	p.checkCall(t, "GET /v1/storage/volumes?vmid=103")
	want := `VOLID                          VMID  NODE  STORAGE    SIZE    FORMAT
local-lvm:vm-103-disk-0        103   pve1  local-lvm  32 GiB  raw
local:103/vm-103-disk-1.qcow2  103   pve1  local      16 GiB  qcow2
`
	if out != want {
		t.Errorf("volume list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "storage", "volume", "get", dbDataDisk)
	if !strings.Contains(out, "Volume:   local:103/vm-103-disk-1.qcow2\n") || !strings.Contains(out, "Size:     16 GiB\n") {
		t.Errorf("volume get:\n%s", out)
	}

	for _, c := range []struct {
		args       []string
		call, body string
	}{
		{[]string{"create", "--vmid", "103", "--storage", "local-lvm", "--size-gib", "8", "--slot", "scsi2"},
			"POST /v1/storage/volumes", `{"vmid": 103, "storage": "local-lvm", "size_gib": 8, "slot": "scsi2"}`},
		{[]string{"resize", dbDisk, "--size-gib", "40"}, "POST /v1/storage/volumes/" + dbDisk + "/resize", `{"size_gib": 40}`},
		{[]string{"attach", dbDataDisk, "--slot", "virtio1"}, "POST /v1/storage/volumes/" + dbDataDisk + "/attach", `{"slot": "virtio1"}`},
		{[]string{"detach", dbDataDisk}, "POST /v1/storage/volumes/" + dbDataDisk + "/detach", ``},
		{[]string{"move", dbDisk, "--storage", "local"}, "POST /v1/storage/volumes/" + dbDisk + "/move", `{"storage": "local", "delete_source": true}`},
		{[]string{"move", dbDisk, "--storage", "local", "--keep-source"}, "POST /v1/storage/volumes/" + dbDisk + "/move", `{"storage": "local", "delete_source": false}`},
		{[]string{"delete", dbDataDisk, "--idempotency-key", "del-1"}, "DELETE /v1/storage/volumes/" + dbDataDisk, ``},
	} {
		t.Run(c.args[0], func(t *testing.T) {
			out, stderr := p.cli(t, 0, append([]string{"storage", "volume"}, c.args...)...)
			call, body, key := p.lastCall()
			if call != c.call || key == "" {
				t.Errorf("request %q key %q, want %q", call, key, c.call)
			}
			if c.body == "" && body != "" {
				t.Errorf("body %s, want none", body)
			} else if c.body != "" {
				checkJSON(t, "body", body, c.body)
			}
			if !strings.Contains(out, "Status:    pending\n") || !strings.Contains(out, "VMID:      103\n") || !strings.Contains(out, "\nVolume:  ") {
				t.Errorf("output:\n%s", out)
			}
			if !strings.HasPrefix(stderr, "Follow it with: moxxiectl operation wait ") {
				t.Errorf("stderr %q", stderr)
			}
			p.finishOperations(t, "")
		})
	}
	if _, key := p.findCall(t, "DELETE /v1/storage/volumes/"+dbDataDisk); key != "del-1" {
		t.Errorf("idempotency key %q", key)
	}

	// --wait follows the operation to its end and shows what it made.
	done := make(chan [2]string, 1)
	go func() {
		out, stderr, _ := runCLI(t, p.env(), "storage", "volume", "create", "--vmid", "101", "--storage", "local-lvm", "--size-gib", "4", "--wait")
		done <- [2]string{out, stderr}
	}()
	op := p.waitActiveOperation(t)
	p.finishOperations(t, "local-lvm:vm-101-disk-1")
	res := <-done
	if !strings.Contains(res[0], "Status:    succeeded\n") || !strings.Contains(res[0], "Result:    local-lvm:vm-101-disk-1\n") ||
		!strings.Contains(res[0], "Volume:    4 GiB, on local-lvm, 4 GiB reserved\n") {
		t.Errorf("create --wait:\n%s", res[0])
	}
	if !strings.HasSuffix(res[1], "volume.create 101 succeeded: done\n") || strings.Contains(res[1], "Follow it") {
		t.Errorf("create --wait stderr %q", res[1])
	}
	out, _ = p.cli(t, 0, "operation", "get", op.ID, "-o", "json")
	if !strings.Contains(out, `"kind": "volume.create"`) {
		t.Errorf("operation %s", out)
	}

	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"create", "--vmid", "103", "--storage", "local-lvm"}, "needs --size-gib"},
		{[]string{"resize", dbDisk}, "needs --size-gib"},
		{[]string{"attach", dbDisk}, "needs --slot"},
		{[]string{"move", dbDisk}, "needs --storage"},
		{[]string{"delete"}, "needs VOLID"},
	} {
		if _, stderr, code := runCLI(t, p.env(), append([]string{"storage", "volume"}, c.args...)...); code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%v: exit %d, stderr %q", c.args, code, stderr)
		}
	}
	if got := plain(oneErrorLine(t, p.cliErr(t, "storage", "volume", "resize", dbDisk, "--size-gib", "16"))); !strings.HasPrefix(got, "400 invalid_request: disks only grow") {
		t.Errorf("shrink: %q", got)
	}
}

func TestStorage_PolicyCommands(t *testing.T) {
	for _, c := range []struct {
		cmd, kind, path string
		extra           []string
		body            string
	}{
		{"snapshot", fsm.PolicyKindSnapshot, "/v1/policies/snapshots", nil,
			`{"id": "db", "schedule": "*/15", "selector": {"tenant": "acme", "tags": ["db", "pg"]}, "keep": {"keep_last": 4, "keep_daily": 7}, "repeat_missed": true}`},
		{"backup", fsm.PolicyKindBackup, "/v1/policies/backups", []string{"--storage", "local", "--mode", "stop", "--compress", "zstd"},
			`{"id": "db", "schedule": "*/15", "selector": {"tenant": "acme", "tags": ["db", "pg"]}, "keep": {"keep_last": 4, "keep_daily": 7}, "repeat_missed": true,
			"storage": "local", "mode": "stop", "compress": "zstd"}`},
	} {
		t.Run(c.cmd, func(t *testing.T) {
			p := newPlatformAPI(t)
			p.mustApply(t, &fsm.TenantCreateRequest{Tenant: fsm.Tenant{ID: "acme"}})
			policy := func(args ...string) []string { return append([]string{c.cmd, "policy"}, args...) }

			out, _ := p.cli(t, 0, policy(append([]string{"create", "db", "--schedule", "*/15", "--tenant", "acme", "--tags", "db,pg",
				"--keep-last", "4", "--keep-daily", "7", "--repeat-missed"}, c.extra...)...)...)
			call, body, _ := p.lastCall()
			if call != "POST "+c.path {
				t.Errorf("create request %q", call)
			}
			checkJSON(t, "create body", body, c.body)
			for _, line := range []string{"ID:             db\n", "Kind:           " + c.kind + "\n", "Schedule:       */15 (UTC)\n",
				"Selector:       tenant acme, tags db,pg\n", "Keep:           last 4, daily 7\n", "Repeat missed:  yes\n", "Next run:       2025-06-01T12:15:00Z\n"} {
				if !strings.Contains(out, line) {
					t.Errorf("create output lacks %q:\n%s", line, out)
				}
			}

			// update changes only what it is told and sends the policy whole;
			// selector flags replace the selector.
			out, _ = p.cli(t, 0, policy("update", "db", "--keep-daily", "14", "--vmids", "101,103", "--disabled", "--timezone", "Europe/Berlin")...)
			call, body, _ = p.lastCall()
			var sent map[string]any
			if err := json.Unmarshal([]byte(body), &sent); err != nil || call != "PUT "+c.path+"/db" || sent["schedule"] != "*/15" ||
				sent["disabled"] != true || sent["repeat_missed"] != true || sent["timezone"] != "Europe/Berlin" {
				t.Errorf("update %q body %s", call, body)
			}
			if !strings.Contains(out, "Schedule:       */15 (Europe/Berlin)\n") {
				t.Errorf("update output lacks the schedule's zone:\n%s", out)
			}
			checkJSON(t, "selector", mustMarshal(t, sent["selector"]), `{"vmids": [101, 103]}`)
			checkJSON(t, "keep", mustMarshal(t, sent["keep"]), `{"keep_last": 4, "keep_daily": 14}`)
			if _, stderr, code := runCLI(t, p.env(), policy("update", "db")...); code != exitUsage || !strings.Contains(stderr, "nothing to update") {
				t.Errorf("empty update: exit %d, stderr %q", code, stderr)
			}

			out, _ = p.cli(t, 0, policy("list")...)
			want := `ID  SCHEDULE  SELECTOR       KEEP              NEXT RUN  LAST RUN
db  */15      vmids 101,103  last 4, daily 14  disabled  -
`
			if out != want {
				t.Errorf("list:\n%s\nwant:\n%s", out, want)
			}

			// A run, as the leader records one, and its guests.
			run := p.mustApply(t, &fsm.PolicyTickRequest{Policy: "db", Slot: fsm.Timestamp(time.Date(2025, 6, 1, 12, 15, 0, 0, time.UTC).UnixNano()), Missed: 2,
				Run: &fsm.Operation{ID: "0190a0b0-0000-7000-8000-000000000001"}, Items: []fsm.RunItem{
					{VMID: 101, Node: "pve1", Kind: fsm.GuestKindVM}, {VMID: 103, Node: "pve2", Kind: fsm.GuestKindVM}}}).(*fsm.Operation)
			p.mustApply(t, &fsm.RunItemUpdateRequest{Run: run.ID, VMID: 103, Status: fsm.ItemFailed, Error: "guest is locked (backup)"})
			out, _ = p.cli(t, 0, policy("runs", "db")...)
			p.checkCall(t, "GET "+c.path+"/db/runs")
			want = `RUN                                   STATUS   SLOT                  MISSED  GUESTS  OK  FAILED  PRUNED  FINISHED
0190a0b0-0000-7000-8000-000000000001  pending  2025-06-01T12:15:00Z  2       2       0   1       0       -
`
			if out != want {
				t.Errorf("runs:\n%s\nwant:\n%s", out, want)
			}
			out, _ = p.cli(t, 0, policy("items", run.ID)...)
			want = `VMID  NODE  STATUS   ` + strings.ToUpper(c.cmd) + `  FINISHED              ERROR
101   pve1  pending  -` + strings.Repeat(" ", len(c.cmd)+1) + `-                     -
103   pve2  failed   -` + strings.Repeat(" ", len(c.cmd)+1) + `2025-06-01T12:00:14Z  guest is locked (backup)
`
			if out != want {
				t.Errorf("items:\n%s\nwant:\n%s", out, want)
			}
			if got := oneErrorLine(t, p.cliErr(t, policy("delete", "db")...)); !strings.Contains(got, "409 conflict: policy db has run "+run.ID+" in progress") {
				t.Errorf("delete with a run in progress: %q", got)
			}
			p.mustApply(t, &fsm.OperationUpdateRequest{ID: run.ID, Status: ptr(fsm.OpFailed), Error: &fsm.OpError{Code: "failed", Message: "1 of 2 guests failed"}})
			out, _ = p.cli(t, 0, policy("delete", "db")...)
			p.checkCall(t, "DELETE "+c.path+"/db")
			if out != "Policy db deleted\n" {
				t.Errorf("delete: %q", out)
			}
			if got := plain(oneErrorLine(t, p.cliErr(t, policy("get", "db")...))); !strings.HasPrefix(got, "404 not_found:") {
				t.Errorf("get after delete: %q", got)
			}
		})
	}
}

func mustMarshal(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestStorage_SnapshotCommands(t *testing.T) {
	p := newPlatformAPI(t)
	p.cli(t, 0, "snapshot", "policy", "create", "hourly", "--schedule", "hourly", "--vmids", "101", "--keep-last", "3")
	run := p.mustApply(t, &fsm.PolicyTickRequest{Policy: "hourly", Slot: fsm.Timestamp(time.Date(2025, 6, 1, 13, 0, 0, 0, time.UTC).UnixNano()),
		Run: &fsm.Operation{ID: "0190a0b0-0000-7000-8000-000000000002"}, Items: []fsm.RunItem{{VMID: 101, Node: "pve1", Kind: fsm.GuestKindVM}}}).(*fsm.Operation)
	p.mustApply(t, &fsm.RunItemUpdateRequest{Run: run.ID, VMID: 101, Status: fsm.ItemSucceeded, Name: "mx-hourly-20250601T130000"})

	out, _ := p.cli(t, 0, "snapshot", "list", "--policy", "hourly")
	p.checkCall(t, "GET /v1/storage/snapshots?policy=hourly")
	want := `VMID  NAME                       POLICY  TIME                  PROTECTED
101   mx-hourly-20250601T130000  hourly  2025-06-01T13:00:00Z  no
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "snapshot", "protect", "101", "mx-hourly-20250601T130000")
	p.checkCall(t, "POST /v1/storage/snapshots/101/mx-hourly-20250601T130000/protect")
	if out != "Snapshot mx-hourly-20250601T130000 of guest 101: protected yes\n" {
		t.Errorf("protect: %q", out)
	}
	out, _ = p.cli(t, 0, "snapshot", "unprotect", "101", "mx-hourly-20250601T130000", "-o", "json")
	var s map[string]any
	if err := json.Unmarshal([]byte(out), &s); err != nil || s["id"] != "101/mx-hourly-20250601T130000" || s["protected"] != nil {
		t.Errorf("unprotect json: %s", out)
	}
	if _, stderr, code := runCLI(t, p.env(), "snapshot", "protect", "101"); code != exitUsage || !strings.Contains(stderr, "needs VMID NAME") {
		t.Errorf("protect without a name: exit %d, stderr %q", code, stderr)
	}
	// The state snapshot commands are still there.
	out, _, _ = runCLI(t, nil, "snapshot", "--help")
	for _, sub := range []string{"save", "restore", "inspect", "policy", "list", "protect", "unprotect"} {
		if !strings.Contains(out, "\n  "+sub+" ") {
			t.Errorf("snapshot --help lacks %s:\n%s", sub, out)
		}
	}
}

func TestStorage_BackupCommands(t *testing.T) {
	p := newPlatformAPI(t)
	p.addStorage(t)
	p.mustApply(t, &fsm.TenantCreateRequest{Tenant: fsm.Tenant{ID: "acme"}})
	p.cli(t, 0, "backup", "policy", "create", "nightly", "--schedule", "02:00", "--tenant", "acme", "--storage", "local")

	out, _ := p.cli(t, 0, "backup", "list", "--vmid", "101")
	p.checkCall(t, "GET /v1/backups?vmid=101")
	want := `VOLID                                                     VMID  TIME                  SIZE     POLICY  PROTECTED
local:backup/vzdump-qemu-101-2025_05_31-02_00_00.vma.zst  101   2025-05-31T02:00:00Z  1.5 GiB  -       no
`
	if out != want {
		t.Errorf("list:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "backup", "protect", webBackup)
	p.checkCall(t, "POST /v1/backups/"+webBackup+"/protect")
	if out != "Backup "+webBackup+": protected yes\n" {
		t.Errorf("protect: %q", out)
	}
	out, _ = p.cli(t, 0, "backup", "get", webBackup)
	if !strings.Contains(out, "Protected:  yes\n") || !strings.Contains(out, "Size:       1.5 GiB\n") {
		t.Errorf("get:\n%s", out)
	}

	out, _ = p.cli(t, 0, "backup", "coverage")
	p.checkCall(t, "GET /v1/backups/coverage")
	want = `VMID  NAME  NODE  TENANT  POLICIES  LAST BACKUP
101   web1  pve1  acme    nightly   2025-05-31T02:00:00Z
102   dns1  pve2  -       none      never
103   db1   pve2  acme    nightly   never

1 guest without a backup policy
`
	if out != want {
		t.Errorf("coverage:\n%s\nwant:\n%s", out, want)
	}
	out, _ = p.cli(t, 0, "backup", "coverage", "--unprotected", "-o", "json")
	p.checkCall(t, "GET /v1/backups/coverage?unprotected=true")
	var cov struct {
		Guests      []struct{ VMID int }
		Unprotected []int
	}
	if err := json.Unmarshal([]byte(out), &cov); err != nil || len(cov.Guests) != 1 || cov.Guests[0].VMID != 102 || len(cov.Unprotected) != 1 {
		t.Errorf("coverage json: %s", out)
	}

	out, _ = p.cli(t, 0, "backup", "restore", webBackup, "--vmid", "120", "--node", "pve2", "--storage", "local-lvm")
	call, body, key := p.lastCall()
	if call != "POST /v1/backups/"+webBackup+"/restore" || key == "" {
		t.Errorf("restore %q key %q", call, key)
	}
	checkJSON(t, "restore body", body, `{"vmid": 120, "node": "pve2", "storage": "local-lvm"}`)
	if !strings.Contains(out, "Kind:      backup.restore\n") || !strings.Contains(out, "Node:      pve2\n") ||
		!strings.Contains(out, "Volume:    backup "+webBackup+", to local-lvm\n") {
		t.Errorf("restore:\n%s", out)
	}
	if got := plain(oneErrorLine(t, p.cliErr(t, "backup", "restore", webBackup, "--vmid", "103"))); !strings.HasPrefix(got, "409 conflict: guest 103 exists") {
		t.Errorf("restore onto a guest: %q", got)
	}
	if _, stderr, code := runCLI(t, p.env(), "backup", "restore", webBackup); code != exitUsage || !strings.Contains(stderr, "needs --vmid") {
		t.Errorf("restore without --vmid: exit %d, stderr %q", code, stderr)
	}
}

func TestNextRunIn(t *testing.T) {
	at := client.Time{Time: time.Date(2025, 6, 1, 17, 0, 0, 0, time.UTC)}
	for _, tc := range []struct {
		p    client.StoragePolicy
		want string
	}{
		{client.StoragePolicy{NextRun: at}, "2025-06-01T17:00:00Z"},
		{client.StoragePolicy{StoragePolicyRequest: client.StoragePolicyRequest{Timezone: "Asia/Tokyo"}, NextRun: at}, "2025-06-01T17:00:00Z (2025-06-02 02:00:00 JST)"},
		{client.StoragePolicy{StoragePolicyRequest: client.StoragePolicyRequest{Timezone: "Nowhere/Else"}, NextRun: at}, "2025-06-01T17:00:00Z"},
		{client.StoragePolicy{StoragePolicyRequest: client.StoragePolicyRequest{Timezone: "Asia/Tokyo", Disabled: true}, NextRun: at}, "disabled"},
	} {
		if got := nextRunIn(&tc.p); got != tc.want {
			t.Errorf("%+v: %q, want %q", tc.p, got, tc.want)
		}
	}
}

// TestStorage_PolicyRun runs a policy now through the real API: the run
// over the guests it selects, then a 409 while it is in progress.
func TestStorage_PolicyRun(t *testing.T) {
	p := newPlatformAPI(t)
	p.cli(t, 0, "snapshot", "policy", "create", "db", "--schedule", "02:00", "--vmids", "101", "--disabled")
	out, _ := p.cli(t, 0, "snapshot", "policy", "run", "db", "--idempotency-key", "run-db")
	call, body, _ := p.lastCall()
	if call != "POST /v1/policies/snapshots/db/run" || body != "" {
		t.Errorf("run request %q %q", call, body)
	}
	for _, want := range []string{"snapshot.run", "pending", "db"} {
		if !strings.Contains(out, want) {
			t.Errorf("run output lacks %q:\n%s", want, out)
		}
	}
	if got := oneErrorLine(t, p.cliErr(t, "snapshot", "policy", "run", "db")); !strings.Contains(got, "409 conflict: policy db has run") {
		t.Errorf("a second run: %q", got)
	}
}
