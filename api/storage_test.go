package api

import (
	"context"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
	_ "time/tzdata" // the zones of TestStorage_PolicyTimezone on any test machine

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/storage"
)

// The volumes and backups of the tenant world: acme's guests are 101 and
// 103, globex's 102 and 104.
const (
	acmeDisk     = "local-lvm:vm-101-disk-0"
	globexDisk   = "local-lvm:vm-102-disk-0"
	acmeDisk103  = "local-lvm:vm-103-disk-0"
	acmeNFSDisk  = "nfs:103/vm-103-disk-1.qcow2"
	globexDisk04 = "local-lvm:vm-104-disk-0"
	acmeBackup   = "local:backup/vzdump-qemu-101-2026_01_01-02_00_00.vma.zst"
	globexBackup = "local:backup/vzdump-qemu-102-2026_01_01-02_00_00.vma.zst"
)

// esc escapes a volume ID for a path, as the client does.
func esc(volid string) string { return url.PathEscape(volid) }

// mustApply applies cmd as the leader's loops would, stamped with its
// clock, and returns the FSM's value.
func (ts *testServer) mustApply(cmd fsm.Command) any {
	ts.t.Helper()
	cmd.Meta().Now = ts.b.Now().UnixNano()
	res, _, err := ts.b.Apply(context.Background(), cmd)
	if err != nil || res.Err != nil {
		ts.t.Fatalf("apply %T: %v %v", cmd, err, res.Err)
	}
	return res.Value
}

// addStorage gives the tenant world its storage: three pools, disks and
// backups of a guest of each tenant, a snapshot and a backup policy of
// each tenant, and a run of each snapshot policy that made a snapshot.
func (w *tenantWorld) addStorage() {
	w.t.Helper()
	w.mustApply(&fsm.InventorySyncRequest{Storage: []fsm.InvStorage{
		{ID: "pve1/local-lvm", Node: "pve1", Storage: "local-lvm", Type: "lvmthin", Content: []string{"images", "rootdir"},
			Status: "available", Used: 40 << 30, Total: 100 << 30},
		{ID: "pve1/local", Node: "pve1", Storage: "local", Type: "dir", Content: []string{"backup", "iso"},
			Status: "available", Used: 85 << 30, Total: 100 << 30},
		{ID: "pve1/nfs", Node: "pve1", Storage: "nfs", Type: "nfs", Shared: true, Content: []string{"images", "backup"},
			Status: "available", Used: 1 << 40, Total: 4 << 40},
	}})
	vol := func(volid string, vmid int, gib uint64) fsm.Volume {
		stor, _, _ := strings.Cut(volid, ":")
		return fsm.Volume{VolID: volid, StorageID: "pve1/" + stor, Node: "pve1", Storage: stor, VMID: vmid, Size: gib << 30, Format: "raw", Content: "images"}
	}
	backup := func(volid string, vmid int) fsm.Backup {
		return fsm.Backup{VolID: volid, StorageID: "pve1/local", Node: "pve1", Storage: "local", VMID: vmid, Kind: fsm.GuestKindVM,
			Time: fsm.Timestamp(time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC).UnixNano()), Size: 1 << 30, Format: "vma.zst"}
	}
	w.mustApply(&fsm.StorageSyncRequest{
		StorageIDs: []string{"pve1/local", "pve1/local-lvm", "pve1/nfs"},
		Volumes: []fsm.Volume{vol(acmeDisk, 101, 4), vol(globexDisk, 102, 4), vol(acmeDisk103, 103, 8), vol(acmeNFSDisk, 103, 2),
			vol(globexDisk04, 104, 4)},
		Backups: []fsm.Backup{backup(acmeBackup, 101), backup(globexBackup, 102)},
	})
	for i, tenant := range []string{"acme", "globex"} {
		w.create("/v1/policies/snapshots", `{"id":"`+tenant+`-hourly","schedule":"hourly","selector":{"tenant":"`+tenant+`"},"keep":{"keep_last":3}}`, "id")
		w.create("/v1/policies/backups", `{"id":"`+tenant+`-nightly","schedule":"02:00","selector":{"tenant":"`+tenant+`","tags":["db"]},"storage":"local"}`, "id")
		vmid := 101 + i
		w.b.advance(time.Minute)
		run := w.mustApply(&fsm.PolicyTickRequest{Policy: tenant + "-hourly", Slot: fsm.Timestamp(w.b.Now().UnixNano()),
			Run: &fsm.Operation{ID: newID(), Tenant: tenant}, Items: []fsm.RunItem{{VMID: vmid, Node: "pve1", Kind: fsm.GuestKindVM}}}).(*fsm.Operation)
		name := "mx-" + tenant + "-hourly-20260102T0300"
		w.mustApply(&fsm.RunItemUpdateRequest{Run: run.ID, VMID: vmid, Status: fsm.ItemSucceeded, Name: name})
		w.id["run "+tenant] = run.ID
		w.id["snapshot "+tenant] = fsm.SnapshotID(vmid, name)
	}
}

func (w *tenantWorld) storageListCases() []listCase {
	return []listCase{
		{"/v1/storage/volumes", "volumes", []string{"101", "103", "103"}, false},
		{"/v1/storage/volumes?vmid=102", "volumes", nil, false},
		{"/v1/storage/snapshots", "snapshots", []string{w.id["snapshot acme"]}, false},
		{"/v1/storage/snapshots?policy=globex-hourly", "snapshots", nil, false},
		{"/v1/backups", "backups", []string{"101"}, false},
		{"/v1/policies/snapshots", "policies", []string{"acme-hourly"}, false},
		{"/v1/policies/backups", "policies", []string{"acme-nightly"}, false},
	}
}

func (w *tenantWorld) storageGetCases() []getCase {
	return []getCase{
		{"/v1/storage/volumes/" + acmeDisk, "/v1/storage/volumes/" + globexDisk, "volid"},
		{"/v1/backups/" + esc(acmeBackup), "/v1/backups/" + esc(globexBackup), "volid"},
		{"/v1/policies/snapshots/acme-hourly", "/v1/policies/snapshots/globex-hourly", "id"},
		{"/v1/policies/snapshots/acme-hourly/runs", "/v1/policies/snapshots/globex-hourly/runs", "id"},
		{"/v1/policies/backups/acme-nightly", "/v1/policies/backups/globex-nightly", "id"},
		{"/v1/policies/backups/acme-nightly/runs", "/v1/policies/backups/globex-nightly/runs", "id"},
		{"/v1/operations/" + w.id["run acme"] + "/items", "/v1/operations/" + w.id["run globex"] + "/items", "id"},
	}
}

// finishOps marks every active operation succeeded, as the leader's
// runner would once done, so that its guest takes the next one.
func (w *tenantWorld) finishOps() {
	w.t.Helper()
	_, ops, err := w.b.State().Operations(nil, true)
	if err != nil {
		w.t.Fatal(err)
	}
	done := fsm.OpSucceeded
	for _, op := range ops {
		w.mustApply(&fsm.OperationUpdateRequest{ID: op.ID, Status: &done})
	}
}

func TestStorage_Pools(t *testing.T) {
	w := newTenantWorld(t)
	var pools StoragePoolList
	w.call("GET", "/v1/storage/pools", "", 200, &pools)
	var ids []string
	for _, p := range pools.Pools {
		ids = append(ids, p.ID+"="+p.State)
	}
	if want := []string{"nfs=ok", "pve1/local=warning", "pve1/local-lvm=ok"}; !slices.Equal(ids, want) {
		t.Fatalf("pools %v, want %v", ids, want)
	}
	var p fsm.StoragePool
	w.call("GET", "/v1/storage/pools/pve1%2Flocal-lvm", "", 200, &p)
	if p.ID != "pve1/local-lvm" || p.Warn != fsm.DefaultPoolWarn || p.Critical != fsm.DefaultPoolCritical || p.Fraction != 0.4 {
		t.Fatalf("pool %+v", p)
	}
	wantError(t, w.do("GET", "/v1/storage/pools/pve9%2Flocal", ""), 404, CodeNotFound, "id")

	var set fsm.PoolSettings
	w.call("PUT", "/v1/storage/thresholds/local-lvm", `{"warn":0.3,"critical":0.5}`, 200, &set)
	if set.Storage != "local-lvm" || set.Warn != 0.3 || set.Critical != 0.5 {
		t.Fatalf("settings %+v", set)
	}
	w.call("GET", "/v1/storage/pools/pve1%2Flocal-lvm", "", 200, &p)
	if p.State != "warning" || p.Warn != 0.3 {
		t.Fatalf("pool after thresholds %+v", p)
	}
	for _, c := range []struct {
		path, body string
		status     int
		code       string
		field      string
	}{
		{"/v1/storage/thresholds/local-lvm", `{"warn":0.95,"critical":0.9}`, 400, CodeInvalidRequest, "warn"},
		{"/v1/storage/thresholds/local-lvm", `{"warn":0.8,"critical":1.5}`, 400, CodeInvalidRequest, "critical"},
		{"/v1/storage/thresholds/local-lvm", `{"warn":0.8}`, 400, CodeInvalidRequest, "critical"},
		{"/v1/storage/thresholds/ceph", `{"warn":0.8,"critical":0.9}`, 404, CodeNotFound, "storage"},
		{"/v1/storage/thresholds/x", `{"warn":0.8,"critical":0.9}`, 400, CodeInvalidRequest, "storage"},
	} {
		wantError(t, w.do("PUT", c.path, c.body), c.status, c.code, c.field)
	}
	// Pools are the cluster's: tenant tokens read none.
	wantError(t, w.do("GET", "/v1/storage/pools", "", w.as(auth.RoleTenantAdmin, "acme")...), 403, CodeForbidden, "")
}

func TestStorage_VolumeOperations(t *testing.T) {
	w := newTenantWorld(t)
	vols := "/v1/storage/volumes"
	for _, c := range []struct {
		name, method, path, body string
		kind                     string
		want                     fsm.VolumeSpec
	}{
		{"create", "POST", vols, `{"vmid":103,"storage":"local-lvm","size_gib":4,"slot":"scsi3"}`, fsm.OpVolumeCreate,
			fsm.VolumeSpec{Slot: "scsi3", Storage: "local-lvm", SizeGiB: 4, ReserveGiB: 4}},
		{"create in the next free slot", "POST", vols, `{"vmid":103,"storage":"nfs","size_gib":1}`, fsm.OpVolumeCreate,
			fsm.VolumeSpec{Storage: "nfs", SizeGiB: 1, ReserveGiB: 1}},
		{"resize", "POST", vols + "/" + acmeDisk103 + "/resize", `{"size_gib":12}`, fsm.OpVolumeResize,
			fsm.VolumeSpec{VolID: acmeDisk103, SizeGiB: 12, ReserveGiB: 4}},
		{"attach", "POST", vols + "/" + esc(acmeNFSDisk) + "/attach", `{"slot":"virtio1"}`, fsm.OpVolumeAttach,
			fsm.VolumeSpec{VolID: acmeNFSDisk, Slot: "virtio1"}},
		{"detach without a body", "POST", vols + "/" + esc(acmeNFSDisk) + "/detach", ``, fsm.OpVolumeDetach,
			fsm.VolumeSpec{VolID: acmeNFSDisk}},
		{"detach", "POST", vols + "/" + esc(acmeNFSDisk) + "/detach", `{}`, fsm.OpVolumeDetach,
			fsm.VolumeSpec{VolID: acmeNFSDisk}},
		{"move deletes the source by default", "POST", vols + "/" + acmeDisk103 + "/move", `{"storage":"nfs"}`, fsm.OpVolumeMove,
			fsm.VolumeSpec{VolID: acmeDisk103, Storage: "nfs", DeleteSource: true}},
		{"move keeping the source", "POST", vols + "/" + acmeDisk103 + "/move", `{"storage":"nfs","delete_source":false}`, fsm.OpVolumeMove,
			fsm.VolumeSpec{VolID: acmeDisk103, Storage: "nfs"}},
		{"delete", "DELETE", vols + "/" + esc(acmeNFSDisk), ``, fsm.OpVolumeDelete,
			fsm.VolumeSpec{VolID: acmeNFSDisk}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var op fsm.Operation
			w.call(c.method, c.path, c.body, 202, &op, "Idempotency-Key", c.name)
			if op.Kind != c.kind || op.VMID != 103 || op.Node != "pve1" || op.Tenant != "acme" || op.Status != fsm.OpPending ||
				op.Volume == nil || *op.Volume != c.want {
				t.Fatalf("operation %+v volume %+v, want %+v", op, op.Volume, c.want)
			}
			// A retry with the key answers the first operation.
			var again fsm.Operation
			rec := w.call(c.method, c.path, c.body, 202, &again, "Idempotency-Key", c.name)
			if again.ID != op.ID || rec.Header.Get("Idempotent-Replayed") != "true" {
				t.Fatalf("retry answered %s (replayed %q), want %s", again.ID, rec.Header.Get("Idempotent-Replayed"), op.ID)
			}
			w.finishOps()
		})
	}
}

func TestStorage_VolumeRefusals(t *testing.T) {
	w := newTenantWorld(t)
	vols := "/v1/storage/volumes"
	admin := w.as(auth.RoleTenantAdmin, "acme")
	user := w.as(auth.RoleTenantUser, "acme")
	wantStatus(t, w.do("PATCH", "/v1/tenants/acme", `{"quota":{"guests":10,"disk_gib":24}}`), 200)
	for _, c := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, field              string
	}{
		{"no guest", "POST", vols, `{"storage":"local-lvm","size_gib":1}`, nil, 400, CodeInvalidRequest, "vmid"},
		{"unknown guest", "POST", vols, `{"vmid":555,"storage":"local-lvm","size_gib":1}`, nil, 404, CodeNotFound, "vmid"},
		{"bad size", "POST", vols, `{"vmid":103,"storage":"local-lvm","size_gib":0}`, nil, 400, CodeInvalidRequest, "size_gib"},
		{"bad slot", "POST", vols, `{"vmid":103,"storage":"local-lvm","size_gib":1,"slot":"scsi99"}`, nil, 400, CodeInvalidRequest, "slot"},
		{"bad storage", "POST", vols, `{"vmid":103,"storage":"-","size_gib":1}`, nil, 400, CodeInvalidRequest, "storage"},
		{"unknown field", "POST", vols, `{"vmid":103,"storage":"local-lvm","size_gib":1,"size":1}`, nil, 400, CodeInvalidRequest, "size"},
		{"a template's disks", "POST", vols, `{"vmid":9000,"storage":"local-lvm","size_gib":1}`, nil, 400, CodeInvalidRequest, "vmid"},
		{"over the disk quota", "POST", vols, `{"vmid":103,"storage":"local-lvm","size_gib":5}`, nil, 409, CodeQuotaExceeded, "quota"},
		{"guest busy", "POST", vols, `{"vmid":101,"storage":"local-lvm","size_gib":1}`, nil, 409, CodeConflict, "vmid"},
		{"another tenant's guest", "POST", vols, `{"vmid":104,"storage":"local-lvm","size_gib":1}`, admin, 404, CodeNotFound, "vmid"},
		{"tenant user", "POST", vols, `{"vmid":103,"storage":"local-lvm","size_gib":1}`, user, 403, CodeForbidden, ""},
		{"not a volume ID", "POST", vols + "/disk0/resize", `{"size_gib":20}`, nil, 400, CodeInvalidRequest, "volid"},
		{"unknown volume", "POST", vols + "/local-lvm:vm-103-disk-9/resize", `{"size_gib":20}`, nil, 404, CodeNotFound, "volid"},
		{"another tenant's volume", "POST", vols + "/" + globexDisk04 + "/resize", `{"size_gib":20}`, admin, 404, CodeNotFound, "volid"},
		{"disks only grow", "POST", vols + "/" + acmeDisk103 + "/resize", `{"size_gib":8}`, nil, 400, CodeInvalidRequest, "size_gib"},
		{"attach needs a slot", "POST", vols + "/" + esc(acmeNFSDisk) + "/attach", `{}`, nil, 400, CodeInvalidRequest, "slot"},
		{"move to where it is", "POST", vols + "/" + acmeDisk103 + "/move", `{"storage":"local-lvm"}`, nil, 400, CodeInvalidRequest, "storage"},
		{"move needs a storage", "POST", vols + "/" + acmeDisk103 + "/move", `{}`, nil, 400, CodeInvalidRequest, "storage"},
		{"detach takes no fields", "POST", vols + "/" + acmeDisk103 + "/detach", `{"slot":"scsi0"}`, nil, 400, CodeInvalidRequest, "slot"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, w.do(c.method, c.path, c.body, c.hdr...), c.status, c.code, c.field)
		})
	}
	// Without a platform, no operation is recorded.
	w.b.platform = ""
	var er ErrorResponse
	mustJSON(t, wantStatus(t, w.do("DELETE", vols+"/"+acmeDisk103, ""), 503), &er)
	if er.Error.Code != CodeNoPlatform {
		t.Fatalf("without a platform: %+v", er.Error)
	}
}

func TestStorage_VolumeReads(t *testing.T) {
	w := newTenantWorld(t)
	var l VolumeList
	w.call("GET", "/v1/storage/volumes?storage=nfs", "", 200, &l)
	if len(l.Volumes) != 1 || l.Volumes[0].VolID != acmeNFSDisk {
		t.Fatalf("nfs volumes %+v", l.Volumes)
	}
	w.call("GET", "/v1/storage/volumes?vmid=103&node=pve1", "", 200, &l)
	if len(l.Volumes) != 2 {
		t.Fatalf("volumes of 103 %+v", l.Volumes)
	}
	w.call("GET", "/v1/storage/volumes?node=pve2", "", 200, &l)
	if l.Volumes == nil || len(l.Volumes) != 0 {
		t.Fatalf("volumes of pve2 %+v", l.Volumes)
	}
	var v fsm.Volume
	w.call("GET", "/v1/storage/volumes/"+esc(acmeNFSDisk), "", 200, &v)
	if v.VMID != 103 || v.Storage != "nfs" {
		t.Fatalf("volume %+v", v)
	}
	wantError(t, w.do("GET", "/v1/storage/volumes?vmid=1", ""), 400, CodeInvalidRequest, "vmid")
	wantError(t, w.do("GET", "/v1/storage/volumes/nfs", ""), 400, CodeInvalidRequest, "volid")

	// A blocking read returns when a sync changes the volumes.
	idx := w.do("GET", "/v1/storage/volumes", "").Header().Get("X-Moxxie-Index")
	out, started := blockingGet(w.testServer, "/v1/storage/volumes?vmid=104&index="+idx+"&wait=30s")
	<-started
	w.mustApply(&fsm.StorageSyncRequest{StorageIDs: []string{"pve1/nfs"}, Volumes: []fsm.Volume{
		{VolID: "nfs:104/vm-104-disk-1.qcow2", StorageID: "pve1/nfs", Node: "pve1", Storage: "nfs", VMID: 104, Size: 1 << 30, Content: "images"},
	}})
	mustJSON(t, wantStatus(t, <-out, 200), &l)
	if len(l.Volumes) != 2 || l.Volumes[1].VolID != "nfs:104/vm-104-disk-1.qcow2" {
		t.Fatalf("after the sync %+v", l.Volumes)
	}
}

func TestStorage_Policies(t *testing.T) {
	w := newTenantWorld(t)
	snaps := "/v1/policies/snapshots"
	var p StoragePolicyView
	w.call("POST", snaps, `{"id":"web","description":"web tier","schedule":"*/15","selector":{"tags":["web","db"]},
		"keep":{"keep_last":4,"keep_daily":7},"repeat_missed":true}`, 201, &p)
	now := w.b.Now()
	if p.Kind != fsm.PolicyKindSnapshot || p.Schedule != "*/15" || p.Keep != (storage.Keep{Last: 4, Daily: 7}) || !p.RepeatMissed ||
		!slices.Equal(p.Selector.Tags, []string{"db", "web"}) || p.CreatedAt == 0 {
		t.Fatalf("created %+v", p)
	}
	if d := p.NextRun.Sub(now); d <= 0 || d > 15*time.Minute || p.NextRun.Minute()%15 != 0 {
		t.Fatalf("next_run %v at %v", p.NextRun, now)
	}

	// Read, change and send back whole, read-only fields included.
	body := string(wantStatus(t, w.do("GET", snaps+"/web", ""), 200))
	w.call("PUT", snaps+"/web", strings.Replace(body, `"*/15"`, `"mon..fri 02:00"`, 1), 200, &p)
	if p.Schedule != "mon..fri 02:00" || p.Description != "web tier" || p.NextRun.Hour() != 2 {
		t.Fatalf("replaced %+v", p)
	}
	var bare StoragePolicyView
	w.call("PUT", snaps+"/web", `{"schedule":"daily","selector":{"all":true},"disabled":true}`, 200, &bare)
	if bare.ID != "web" || bare.Description != "" || !bare.NextRun.IsZero() || !bare.Disabled || bare.CreatedAt != p.CreatedAt {
		t.Fatalf("replaced without id %+v", bare)
	}

	// A backup policy defaults to snapshot mode.
	var bp StoragePolicyView
	w.call("POST", "/v1/policies/backups", `{"id":"nightly","schedule":"02:00","selector":{"vmids":[101,103]},"storage":"local","compress":"zstd"}`, 201, &bp)
	if bp.Kind != fsm.PolicyKindBackup || bp.Mode != "snapshot" || bp.Storage != "local" || bp.Compress != "zstd" {
		t.Fatalf("backup policy %+v", bp)
	}
	var list StoragePolicyList
	w.call("GET", snaps, "", 200, &list)
	if len(list.Policies) != 3 || list.Policies[2].ID != "web" {
		t.Fatalf("snapshot policies %+v", list.Policies)
	}

	for _, c := range []struct {
		name, method, path, body string
		status                   int
		code, field              string
	}{
		{"exists", "POST", snaps, `{"id":"web","schedule":"daily","selector":{"all":true}}`, 409, CodeConflict, "id"},
		{"bad id", "POST", snaps, `{"id":"Web","schedule":"daily","selector":{"all":true}}`, 400, CodeInvalidRequest, "id"},
		{"bad schedule", "POST", snaps, `{"id":"x","schedule":"mon..fry","selector":{"all":true}}`, 400, CodeInvalidRequest, "schedule"},
		{"no selector", "POST", snaps, `{"id":"x","schedule":"daily","selector":{}}`, 400, CodeInvalidRequest, "selector"},
		{"all and more", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"all":true,"tags":["a"]}}`, 400, CodeInvalidRequest, "selector.all"},
		{"negative keep", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"all":true},"keep":{"keep_daily":-1}}`, 400, CodeInvalidRequest, "keep"},
		{"unknown tenant", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"tenant":"initech"}}`, 404, CodeNotFound, "selector.tenant"},
		{"storage on a snapshot policy", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"all":true},"storage":"local"}`, 400, CodeInvalidRequest, "storage"},
		{"backup without storage", "POST", "/v1/policies/backups", `{"id":"x","schedule":"daily","selector":{"all":true}}`, 400, CodeInvalidRequest, "storage"},
		{"bad mode", "POST", "/v1/policies/backups", `{"id":"x","schedule":"daily","selector":{"all":true},"storage":"local","mode":"fast"}`, 400, CodeInvalidRequest, "mode"},
		{"kind of the other path", "POST", snaps, `{"id":"x","kind":"backup","schedule":"daily","selector":{"all":true}}`, 400, CodeInvalidRequest, "kind"},
		{"rename", "PUT", snaps + "/web", `{"id":"web2","schedule":"daily","selector":{"all":true}}`, 400, CodeInvalidRequest, "id"},
		{"replace a missing one", "PUT", snaps + "/nope", `{"schedule":"daily","selector":{"all":true}}`, 404, CodeNotFound, "id"},
		{"a backup policy on the snapshot path", "GET", snaps + "/nightly", ``, 404, CodeNotFound, "id"},
		{"its runs", "GET", snaps + "/nightly/runs", ``, 404, CodeNotFound, "id"},
		{"replaced there", "PUT", snaps + "/nightly", `{"schedule":"daily","selector":{"all":true}}`, 404, CodeNotFound, "id"},
		{"deleted there", "DELETE", snaps + "/nightly", ``, 404, CodeNotFound, "id"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, w.do(c.method, c.path, c.body), c.status, c.code, c.field)
		})
	}

	// Runs, newest first; a policy with a run in progress is not deleted.
	var runs [2]string
	for i := range runs {
		w.b.advance(time.Hour)
		run := w.mustApply(&fsm.PolicyTickRequest{Policy: "nightly", Slot: fsm.Timestamp(w.b.Now().UnixNano()),
			Run: &fsm.Operation{ID: newID()}, Items: []fsm.RunItem{{VMID: 101, Node: "pve1", Kind: fsm.GuestKindVM}}}).(*fsm.Operation)
		runs[i] = run.ID
		if i == 0 {
			w.mustApply(&fsm.RunItemUpdateRequest{Run: run.ID, VMID: 101, Status: fsm.ItemFailed, Error: "vzdump failed"})
			done := fsm.OpFailed
			w.mustApply(&fsm.OperationUpdateRequest{ID: run.ID, Status: &done, Error: &fsm.OpError{Code: "failed", Message: "1 of 1 failed"}})
		}
	}
	var ops OperationList
	w.call("GET", "/v1/policies/backups/nightly/runs", "", 200, &ops)
	if len(ops.Operations) != 2 || ops.Operations[0].ID != runs[1] || ops.Operations[1].ID != runs[0] || ops.Operations[0].Kind != fsm.OpBackupRun {
		t.Fatalf("runs %+v, want %v newest first", ops.Operations, runs)
	}
	var items RunItemList
	w.call("GET", "/v1/operations/"+runs[0]+"/items", "", 200, &items)
	if len(items.Items) != 1 || items.Items[0].Status != fsm.ItemFailed || items.Items[0].Error != "vzdump failed" {
		t.Fatalf("items %+v", items.Items)
	}
	wantError(t, w.do("GET", "/v1/operations/"+w.id["op acme"]+"/items", ""), 404, CodeNotFound, "id")
	wantError(t, w.do("DELETE", "/v1/policies/backups/nightly", ""), 409, CodeConflict, "id")

	// A delete answers the policy as it was; a retry with its key replays.
	var gone StoragePolicyView
	w.call("DELETE", snaps+"/web", "", 200, &gone, "Idempotency-Key", "del-web")
	if gone.ID != "web" || gone.Schedule != "daily" {
		t.Fatalf("deleted %+v", gone)
	}
	rec := w.do("DELETE", snaps+"/web", "", "Idempotency-Key", "del-web")
	if wantStatus(t, rec, 200); rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatal("a retried delete was not replayed")
	}
	wantError(t, w.do("DELETE", snaps+"/web", ""), 404, CodeNotFound, "id")
}

// TestStorage_PolicyTimezone: a policy's schedule runs in its time zone,
// next_run says when; zones are checked by form and by existence,
// naming the field, and nothing is written for a bad one.
func TestStorage_PolicyTimezone(t *testing.T) {
	w := newTenantWorld(t)
	var p StoragePolicyView
	w.call("POST", "/v1/policies/backups", `{"id":"nightly","schedule":"02:00","timezone":"Asia/Tokyo","selector":{"all":true},"storage":"local"}`, 201, &p)
	tokyo, err := time.LoadLocation("Asia/Tokyo")
	if err != nil {
		t.Fatal(err)
	}
	if at := p.NextRun.In(tokyo); p.Timezone != "Asia/Tokyo" || at.Hour() != 2 || at.Minute() != 0 || p.NextRun.UTC().Hour() != 17 {
		t.Fatalf("policy %+v: next_run %s, want 02:00 in Tokyo (17:00 UTC)", p, p.NextRun)
	}
	var got StoragePolicyView
	w.call("GET", "/v1/policies/backups/nightly", "", 200, &got)
	if got.Timezone != "Asia/Tokyo" || !got.NextRun.Equal(p.NextRun) {
		t.Fatalf("read back %+v", got)
	}
	for _, c := range []struct{ name, zone string }{
		{"unknown zone", "Mars/Olympus_Mons"},
		{"a path", "../../etc/passwd"},
		{"each server's own", "Local"},
		{"lower case", "asia/tokyo"},
	} {
		t.Run(c.name, func(t *testing.T) {
			body := `{"id":"x","schedule":"daily","selector":{"all":true},"timezone":"` + c.zone + `"}`
			wantError(t, w.do("POST", "/v1/policies/snapshots", body), 400, CodeInvalidRequest, "timezone")
			wantError(t, w.do("GET", "/v1/policies/snapshots/x", ""), 404, CodeNotFound, "id")
		})
	}
}

// TestStorage_PolicyRunNow: a policy runs now, disabled or not, over the
// guests it selects now; a second run waits for the first (409); a retry
// with the same key answers the first run; a tenant runs only its own.
func TestStorage_PolicyRunNow(t *testing.T) {
	w := newTenantWorld(t)
	var p StoragePolicyView
	w.call("POST", "/v1/policies/backups", `{"id":"acme-db","schedule":"02:00","selector":{"tenant":"acme"},"storage":"local","disabled":true}`, 201, &p)
	var run fsm.Operation
	w.call("POST", "/v1/policies/backups/acme-db/run", "", 202, &run, "Idempotency-Key", "run-1")
	if run.Kind != fsm.OpBackupRun || run.Policy != "acme-db" || run.Status != fsm.OpPending || run.Stats == nil || run.Stats.Total != 2 || run.Tenant != "acme" {
		t.Fatalf("run %+v", run)
	}
	var items RunItemList
	w.call("GET", "/v1/operations/"+run.ID+"/items", "", 200, &items)
	if len(items.Items) != 2 || items.Items[0].VMID != 101 || items.Items[1].VMID != 103 {
		t.Fatalf("items %+v: want the tenant's guests 101 and 103", items.Items)
	}
	var again fsm.Operation
	rec := w.do("POST", "/v1/policies/backups/acme-db/run", "", "Idempotency-Key", "run-1")
	if mustJSON(t, wantStatus(t, rec, 202), &again); again.ID != run.ID || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("retried run %+v, want %s replayed", again, run.ID)
	}
	wantError(t, w.do("POST", "/v1/policies/backups/acme-db/run", ""), 409, CodeConflict, "policy")
	wantError(t, w.do("POST", "/v1/policies/backups/nope/run", ""), 404, CodeNotFound, "id")
	wantError(t, w.do("POST", "/v1/policies/snapshots/acme-db/run", ""), 404, CodeNotFound, "id")
	wantError(t, w.do("POST", "/v1/policies/backups/acme-db/run", "", w.as(auth.RoleTenantAdmin, "globex")...), 404, CodeNotFound, "id")
	var got StoragePolicyView
	w.call("GET", "/v1/policies/backups/acme-db", "", 200, &got)
	if got.ActiveRun != run.ID || got.LastRun != run.ID || !got.Disabled {
		t.Fatalf("policy after the run %+v", got)
	}
}

func TestStorage_TenantPolicies(t *testing.T) {
	w := newTenantWorld(t)
	admin := w.as(auth.RoleTenantAdmin, "acme")
	snaps := "/v1/policies/snapshots"
	var p StoragePolicyView
	w.call("POST", snaps, `{"id":"mine","schedule":"daily","selector":{"tags":["db"]}}`, 201, &p, admin...)
	if p.Selector.Tenant != "acme" {
		t.Fatalf("a tenant's policy %+v", p)
	}
	w.call("PUT", snaps+"/mine", `{"schedule":"hourly","selector":{"vmids":[103]}}`, 200, &p, admin...)
	if p.Selector.Tenant != "acme" || !slices.Equal(p.Selector.VMIDs, []int{103}) {
		t.Fatalf("a tenant's policy replaced %+v", p)
	}
	for _, c := range []struct {
		name, method, path, body string
		hdr                      []string
		status                   int
		code, field              string
	}{
		{"for another tenant", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"tenant":"globex"}}`, admin, 403, CodeForbidden, "selector.tenant"},
		{"every guest", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"all":true}}`, admin, 403, CodeForbidden, "selector.all"},
		{"another tenant's guest", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"vmids":[103,104]}}`, admin, 404, CodeNotFound, "selector.vmids"},
		{"another tenant's policy", "PUT", snaps + "/globex-hourly", `{"schedule":"daily","selector":{"tags":["db"]}}`, admin, 404, CodeNotFound, "id"},
		{"a cluster policy", "DELETE", "/v1/policies/backups/everything", ``, admin, 404, CodeNotFound, "id"},
		{"a user writes none", "POST", snaps, `{"id":"x","schedule":"daily","selector":{"tags":["db"]}}`, w.as(auth.RoleTenantUser, "acme"), 403, CodeForbidden, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			w.create("/v1/policies/backups", `{"id":"everything","schedule":"daily","selector":{"all":true},"storage":"local"}`, "id")
			wantError(t, w.do(c.method, c.path, c.body, c.hdr...), c.status, c.code, c.field)
			wantStatus(t, w.do("DELETE", "/v1/policies/backups/everything", ""), 200)
		})
	}
	wantStatus(t, w.do("DELETE", snaps+"/mine", "", admin...), 200)
}

func TestStorage_SnapshotsAndBackups(t *testing.T) {
	w := newTenantWorld(t)
	admin := w.as(auth.RoleTenantAdmin, "acme")
	var snaps SnapshotList
	w.call("GET", "/v1/storage/snapshots?policy=globex-hourly&vmid=102", "", 200, &snaps)
	if len(snaps.Snapshots) != 1 || snaps.Snapshots[0].ID != w.id["snapshot globex"] || snaps.Snapshots[0].Run != w.id["run globex"] {
		t.Fatalf("snapshots %+v", snaps.Snapshots)
	}
	var s fsm.PolicySnapshot
	w.call("POST", "/v1/storage/snapshots/101/mx-acme-hourly-20260102T0300/protect", "", 200, &s, admin...)
	if !s.Protected || s.VMID != 101 {
		t.Fatalf("protected %+v", s)
	}
	var u fsm.PolicySnapshot
	w.call("POST", "/v1/storage/snapshots/101/mx-acme-hourly-20260102T0300/unprotect", "", 200, &u)
	if u.Protected || u.ID != s.ID {
		t.Fatalf("unprotected %+v", u)
	}
	wantError(t, w.do("POST", "/v1/storage/snapshots/102/mx-globex-hourly-20260102T0300/protect", "", admin...), 404, CodeNotFound, "name")
	wantError(t, w.do("POST", "/v1/storage/snapshots/101/by-hand/protect", ""), 404, CodeNotFound, "name")

	var bl BackupList
	w.call("GET", "/v1/backups?storage=local&vmid=102", "", 200, &bl)
	if len(bl.Backups) != 1 || bl.Backups[0].VolID != globexBackup {
		t.Fatalf("backups %+v", bl.Backups)
	}
	w.call("GET", "/v1/backups?policy=acme-nightly", "", 200, &bl)
	if len(bl.Backups) != 0 {
		t.Fatalf("backups of a policy that made none %+v", bl.Backups)
	}
	var b fsm.Backup
	w.call("POST", "/v1/backups/"+esc(acmeBackup)+"/protect", "", 200, &b, admin...)
	if !b.Protected || b.VolID != acmeBackup {
		t.Fatalf("protected %+v", b)
	}
	w.call("GET", "/v1/backups/"+esc(acmeBackup), "", 200, &b)
	if !b.Protected {
		t.Fatalf("read back %+v", b)
	}
	wantError(t, w.do("POST", "/v1/backups/"+esc(globexBackup)+"/unprotect", "", admin...), 404, CodeNotFound, "volid")

	restore := "/v1/backups/" + esc(acmeBackup) + "/restore"
	var op fsm.Operation
	w.call("POST", restore, `{"vmid":120,"storage":"local-lvm"}`, 202, &op, admin...)
	if op.Kind != fsm.OpBackupRestore || op.VMID != 120 || op.Node != "pve1" || op.Tenant != "acme" ||
		op.Volume == nil || op.Volume.Archive != acmeBackup || op.Volume.Storage != "local-lvm" {
		t.Fatalf("restore %+v %+v", op, op.Volume)
	}
	w.call("POST", "/v1/backups/"+esc(globexBackup)+"/restore", `{"vmid":121}`, 202, &op)
	if op.Tenant != "globex" {
		t.Fatalf("an admin's restore belongs to the backup's tenant: %+v", op)
	}
	for _, c := range []struct {
		name, path, body string
		hdr              []string
		status           int
		code, field      string
	}{
		{"no vmid", restore, `{}`, nil, 400, CodeInvalidRequest, "vmid"},
		{"unknown node", restore, `{"vmid":122,"node":"pve7"}`, nil, 400, CodeInvalidRequest, "node"},
		{"a guest has the VMID", restore, `{"vmid":103}`, nil, 409, CodeConflict, "vmid"},
		{"bad storage", restore, `{"vmid":122,"storage":"-"}`, nil, 400, CodeInvalidRequest, "storage"},
		{"unknown backup", "/v1/backups/local:backup%2Fnone.vma.zst/restore", `{"vmid":122}`, nil, 404, CodeNotFound, "volid"},
		{"another tenant's backup", "/v1/backups/" + esc(globexBackup) + "/restore", `{"vmid":122}`, admin, 404, CodeNotFound, "volid"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantError(t, w.do("POST", c.path, c.body, c.hdr...), c.status, c.code, c.field)
		})
	}
}

func TestStorage_Coverage(t *testing.T) {
	w := newTenantWorld(t)
	w.mustApply(&fsm.InventorySyncRequest{Guests: []fsm.InvGuest{
		{VMID: 103, Kind: fsm.GuestKindVM, Node: "pve1", Name: "vm103", Status: "running", Tags: []string{"db"}, Tenant: "acme", MaxCPU: 2, MaxMem: 2 << 30, MaxDisk: 10 << 30},
	}})
	var cov BackupCoverage
	w.call("GET", "/v1/backups/coverage", "", 200, &cov)
	var got []string
	for _, e := range cov.Guests {
		got = append(got, e.Name+":"+strings.Join(e.Policies, ",")+":"+e.LastVolID)
	}
	want := []string{"vm101::" + acmeBackup, "vm102::" + globexBackup, "vm103:acme-nightly:", "vm104::"}
	if !slices.Equal(got, want) || !slices.Equal(cov.Unprotected, []int{101, 102, 104}) {
		t.Fatalf("coverage %q unprotected %v, want %q", got, cov.Unprotected, want)
	}
	w.call("GET", "/v1/backups/coverage?unprotected", "", 200, &cov)
	if len(cov.Guests) != 3 || cov.Guests[0].VMID != 101 || cov.Guests[0].LastBackup.IsZero() {
		t.Fatalf("unprotected coverage %+v", cov.Guests)
	}
	// A disabled policy protects nothing.
	w.call("PUT", "/v1/policies/backups/acme-nightly", `{"schedule":"02:00","selector":{"tenant":"acme","tags":["db"]},"storage":"local","disabled":true}`, 200, nil)
	w.call("GET", "/v1/backups/coverage", "", 200, &cov, w.as(auth.RoleTenantViewer, "acme")...)
	if len(cov.Guests) != 2 || !slices.Equal(cov.Unprotected, []int{101, 103}) {
		t.Fatalf("a tenant's coverage %+v", cov)
	}
	wantError(t, w.do("GET", "/v1/backups/coverage?unprotected=maybe", ""), 400, CodeInvalidRequest, "unprotected")
}
