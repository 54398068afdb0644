package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/moxxie/moxxie/storage"
)

// Answers in the shapes of api/handlers_storage.go.
var (
	testStoragePool = map[string]any{"id": "pve1/local-lvm", "storage": "local-lvm", "nodes": []string{"pve1"}, "type": "lvmthin",
		"shared": false, "status": "available", "used": 85 << 30, "total": 100 << 30, "used_fraction": 0.85, "warn": 0.8,
		"critical": 0.9, "state": "warning", "days_until_full": 12.5}
	testVolume = map[string]any{"volid": "nfs:101/vm-101-disk-1.qcow2", "storage_id": "pve1/nfs", "node": "pve1", "storage": "nfs",
		"vmid": 101, "size": 8 << 30, "format": "qcow2", "content": "images", "modify_index": 7}
	testVolumeOp = map[string]any{"id": "op-1", "kind": "volume.move", "status": "pending", "vmid": 101, "node": "pve1",
		"volume":     map[string]any{"volid": "nfs:101/vm-101-disk-1.qcow2", "storage": "local-lvm", "delete_source": true},
		"created_at": "2026-01-02T03:04:05Z", "create_index": 9, "modify_index": 9}
	testStoragePolicy = map[string]any{"id": "daily", "kind": "backup", "schedule": "02:00", "selector": map[string]any{"tenant": "acme", "tags": []string{"db"}},
		"keep": map[string]any{"keep_daily": 7, "keep_weekly": 4}, "storage": "pbs", "mode": "snapshot", "last_slot": "2026-01-02T02:00:00Z",
		"last_run": "run-1", "skipped": 1, "created_at": "2026-01-01T00:00:00Z", "create_index": 3, "modify_index": 8,
		"next_run": "2026-01-03T02:00:00Z"}
	testPolicyRun = map[string]any{"id": "run-1", "kind": "backup.run", "status": "succeeded", "policy": "daily", "slot": "2026-01-02T02:00:00Z",
		"missed": 2, "stats": map[string]any{"total": 2, "succeeded": 1, "failed": 1, "pruned": 3}, "tenant": "acme"}
	testItem     = map[string]any{"run": "run-1", "vmid": 101, "node": "pve1", "kind": "qemu", "status": "failed", "error": "vzdump: timeout"}
	testSnapshot = map[string]any{"id": "101/mx-hourly-20260102T030000", "vmid": 101, "name": "mx-hourly-20260102T030000", "policy": "hourly",
		"run": "run-2", "time": "2026-01-02T03:00:00Z", "protected": true}
	testBackup = map[string]any{"volid": "local:backup/vzdump-qemu-101-2026_01_02-02_00_00.vma.zst", "storage_id": "pve1/local", "node": "pve1",
		"storage": "local", "vmid": 101, "kind": "qemu", "time": "2026-01-02T02:00:00Z", "size": 1 << 30, "policy": "daily", "run": "run-1",
		"platform_protected": true, "modify_index": 11}
	testCoverage = map[string]any{"guests": []any{
		map[string]any{"vmid": 101, "name": "web1", "policies": []string{"daily"}, "last_backup": "2026-01-02T02:00:00Z",
			"last_volid": "local:backup/vzdump-qemu-101-2026_01_02-02_00_00.vma.zst", "protected": true},
		map[string]any{"vmid": 102, "name": "dns1", "protected": false},
	}, "unprotected": []int{102}}
)

// The escaped paths of the test volume and backup.
const (
	testVolumePath = "/v1/storage/volumes/nfs:101%2Fvm-101-disk-1.qcow2"
	testBackupPath = "/v1/backups/local:backup%2Fvzdump-qemu-101-2026_01_02-02_00_00.vma.zst"
)

func storageFake(t *testing.T) *fake {
	answers := map[string]func() (int, any){
		"GET /v1/storage/pools":                           func() (int, any) { return 200, map[string]any{"pools": []any{testStoragePool}} },
		"GET /v1/storage/pools/pve1%2Flocal-lvm":          func() (int, any) { return 200, testStoragePool },
		"PUT /v1/storage/thresholds/local-lvm":            func() (int, any) { return 200, map[string]any{"storage": "local-lvm", "warn": 0.7, "critical": 0.95} },
		"GET /v1/storage/volumes":                         func() (int, any) { return 200, map[string]any{"volumes": []any{testVolume}} },
		"POST /v1/storage/volumes":                        func() (int, any) { return 202, testVolumeOp },
		"GET " + testVolumePath:                           func() (int, any) { return 200, testVolume },
		"DELETE " + testVolumePath:                        func() (int, any) { return 202, testVolumeOp },
		"POST " + testVolumePath + "/resize":              func() (int, any) { return 202, testVolumeOp },
		"POST " + testVolumePath + "/attach":              func() (int, any) { return 202, testVolumeOp },
		"POST " + testVolumePath + "/detach":              func() (int, any) { return 202, testVolumeOp },
		"POST " + testVolumePath + "/move":                func() (int, any) { return 202, testVolumeOp },
		"GET /v1/policies/backups":                        func() (int, any) { return 200, map[string]any{"policies": []any{testStoragePolicy}} },
		"POST /v1/policies/backups":                       func() (int, any) { return 201, testStoragePolicy },
		"GET /v1/policies/snapshots/daily":                func() (int, any) { return 404, nil },
		"GET /v1/policies/backups/daily":                  func() (int, any) { return 200, testStoragePolicy },
		"PUT /v1/policies/backups/daily":                  func() (int, any) { return 200, testStoragePolicy },
		"DELETE /v1/policies/backups/daily":               func() (int, any) { return 200, testStoragePolicy },
		"GET /v1/policies/backups/daily/runs":             func() (int, any) { return 200, map[string]any{"operations": []any{testPolicyRun}} },
		"GET /v1/operations/run-1":                        func() (int, any) { return 200, testPolicyRun },
		"GET /v1/operations/run-1/items":                  func() (int, any) { return 200, map[string]any{"items": []any{testItem}} },
		"GET /v1/storage/snapshots":                       func() (int, any) { return 200, map[string]any{"snapshots": []any{testSnapshot}} },
		"POST /v1/storage/snapshots/101/mx%20x/protect":   func() (int, any) { return 200, testSnapshot },
		"POST /v1/storage/snapshots/101/mx%20x/unprotect": func() (int, any) { return 200, testSnapshot },
		"GET /v1/backups":                                 func() (int, any) { return 200, map[string]any{"backups": []any{testBackup}} },
		"GET /v1/backups/coverage":                        func() (int, any) { return 200, testCoverage },
		"GET " + testBackupPath:                           func() (int, any) { return 200, testBackup },
		"POST " + testBackupPath + "/restore":             func() (int, any) { return 202, testVolumeOp },
		"POST " + testBackupPath + "/protect":             func() (int, any) { return 200, testBackup },
		"POST " + testBackupPath + "/unprotect":           func() (int, any) { return 200, testBackup },
	}
	return newFake(t, func(w http.ResponseWriter, r *http.Request) {
		key := r.Method + " " + r.URL.EscapedPath()
		answer, ok := answers[key]
		if !ok {
			writeErr(w, 404, "not_found", "no route "+key, "")
			return
		}
		switch status, body := answer(); body {
		case nil:
			writeErr(w, status, "not_found", "backup policy daily is not a snapshot policy", "id")
		default:
			writeJSON(w, status, body)
		}
	})
}

func TestStorage_Requests(t *testing.T) {
	f := storageFake(t)
	c := f.client(t, Config{})
	ctx := context.Background()
	volid := "nfs:101/vm-101-disk-1.qcow2"
	backup := "local:backup/vzdump-qemu-101-2026_01_02-02_00_00.vma.zst"
	policy := StoragePolicyRequest{ID: "daily", Schedule: "02:00", Selector: storage.Selector{Tenant: "acme", Tags: []string{"db"}},
		Keep: storage.Keep{Daily: 7, Weekly: 4}, Storage: "pbs"}
	policyBody := `{"id": "daily", "schedule": "02:00", "selector": {"tenant": "acme", "tags": ["db"]},
		"keep": {"keep_daily": 7, "keep_weekly": 4}, "storage": "pbs"}`
	wo := &WriteOptions{IdempotencyKey: "k1"}

	for _, tc := range []struct {
		name string
		call func() (any, error)
		// req is METHOD path?query, the path unescaped; body the JSON
		// sent, compared as values (empty: none).
		req, body string
		check     func(t *testing.T, v any)
	}{
		{"pools", func() (any, error) {
			v, _, err := c.StoragePools(ctx, &QueryOptions{Index: 5, Wait: time.Second})
			return v, err
		},
			"GET /v1/storage/pools?index=5&wait=1s", "", func(t *testing.T, v any) {
				l := v.([]StoragePool)
				if len(l) != 1 || l[0].State != PoolWarning || l[0].Fraction != 0.85 || l[0].DaysUntilFull == nil || *l[0].DaysUntilFull != 12.5 {
					t.Errorf("%+v", l)
				}
			}},
		{"pool", func() (any, error) { v, _, err := c.StoragePool(ctx, "pve1/local-lvm", nil); return v, err },
			"GET /v1/storage/pools/pve1/local-lvm", "", nil},
		{"thresholds", func() (any, error) {
			v, _, err := c.SetStorageThresholds(ctx, "local-lvm", 0.7, 0.95, wo)
			return v, err
		},
			"PUT /v1/storage/thresholds/local-lvm", `{"warn": 0.7, "critical": 0.95}`, func(t *testing.T, v any) {
				if p := v.(*PoolThresholds); p.Storage != "local-lvm" || p.Critical != 0.95 {
					t.Errorf("%+v", p)
				}
			}},
		{"volumes", func() (any, error) {
			v, _, err := c.Volumes(ctx, VolumeFilter{VMID: 101, Node: "pve1", Storage: "nfs"}, nil)
			return v, err
		}, "GET /v1/storage/volumes?node=pve1&storage=nfs&vmid=101", "", func(t *testing.T, v any) {
			if l := v.([]Volume); len(l) != 1 || l[0].VolID != volid || l[0].Size != 8<<30 {
				t.Errorf("%+v", l)
			}
		}},
		{"volume", func() (any, error) { v, _, err := c.Volume(ctx, volid, nil); return v, err }, "GET /v1/storage/volumes/" + volid, "", nil},
		{"create", func() (any, error) {
			v, _, err := c.CreateVolume(ctx, VolumeCreateRequest{VMID: 101, Storage: "nfs", SizeGiB: 8}, wo)
			return v, err
		}, "POST /v1/storage/volumes", `{"vmid": 101, "storage": "nfs", "size_gib": 8}`, func(t *testing.T, v any) {
			if op := v.(*Operation); op.ID != "op-1" || op.Kind != OpVolumeMove || !op.Active() || op.Volume == nil || !op.Volume.DeleteSource {
				t.Errorf("%+v", op)
			}
		}},
		{"create in a slot", func() (any, error) {
			v, _, err := c.CreateVolume(ctx, VolumeCreateRequest{VMID: 101, Storage: "nfs", SizeGiB: 8, Slot: "virtio2"}, nil)
			return v, err
		}, "POST /v1/storage/volumes", `{"vmid": 101, "storage": "nfs", "size_gib": 8, "slot": "virtio2"}`, nil},
		{"resize", func() (any, error) { v, _, err := c.ResizeVolume(ctx, volid, 16, nil); return v, err },
			"POST /v1/storage/volumes/" + volid + "/resize", `{"size_gib": 16}`, nil},
		{"attach", func() (any, error) { v, _, err := c.AttachVolume(ctx, volid, "scsi3", nil); return v, err },
			"POST /v1/storage/volumes/" + volid + "/attach", `{"slot": "scsi3"}`, nil},
		{"detach", func() (any, error) { v, _, err := c.DetachVolume(ctx, volid, nil); return v, err },
			"POST /v1/storage/volumes/" + volid + "/detach", "", nil},
		{"move", func() (any, error) { v, _, err := c.MoveVolume(ctx, volid, "local-lvm", false, nil); return v, err },
			"POST /v1/storage/volumes/" + volid + "/move", `{"storage": "local-lvm", "delete_source": true}`, nil},
		{"move keeping the source", func() (any, error) { v, _, err := c.MoveVolume(ctx, volid, "local-lvm", true, nil); return v, err },
			"POST /v1/storage/volumes/" + volid + "/move", `{"storage": "local-lvm", "delete_source": false}`, nil},
		{"delete", func() (any, error) { v, _, err := c.DeleteVolume(ctx, volid, nil); return v, err },
			"DELETE /v1/storage/volumes/" + volid, "", nil},
		{"policies", func() (any, error) { v, _, err := c.StoragePolicies(ctx, PolicyKindBackup, nil); return v, err },
			"GET /v1/policies/backups", "", func(t *testing.T, v any) {
				l := v.([]StoragePolicy)
				if len(l) != 1 || l[0].ID != "daily" || l[0].Kind != PolicyKindBackup || l[0].Keep.Weekly != 4 || l[0].Selector.Tenant != "acme" ||
					l[0].Skipped != 1 || !l[0].NextRun.Equal(time.Date(2026, 1, 3, 2, 0, 0, 0, time.UTC)) || l[0].LastRun != "run-1" {
					t.Errorf("%+v", l)
				}
			}},
		{"policy", func() (any, error) { v, _, err := c.StoragePolicy(ctx, PolicyKindBackup, "daily", nil); return v, err },
			"GET /v1/policies/backups/daily", "", nil},
		{"policy create", func() (any, error) {
			v, _, err := c.CreateStoragePolicy(ctx, PolicyKindBackup, policy, wo)
			return v, err
		},
			"POST /v1/policies/backups", policyBody, nil},
		{"policy update", func() (any, error) {
			v, _, err := c.UpdateStoragePolicy(ctx, PolicyKindBackup, policy, nil)
			return v, err
		},
			"PUT /v1/policies/backups/daily", policyBody, nil},
		{"policy delete", func() (any, error) {
			v, _, err := c.DeleteStoragePolicy(ctx, PolicyKindBackup, "daily", nil)
			return v, err
		},
			"DELETE /v1/policies/backups/daily", "", nil},
		{"runs", func() (any, error) {
			v, _, err := c.StoragePolicyRuns(ctx, PolicyKindBackup, "daily", nil)
			return v, err
		},
			"GET /v1/policies/backups/daily/runs", "", func(t *testing.T, v any) {
				l := v.([]Operation)
				if len(l) != 1 || l[0].Policy != "daily" || l[0].Missed != 2 || l[0].Stats == nil || l[0].Stats.Pruned != 3 || l[0].Slot.IsZero() {
					t.Errorf("%+v", l)
				}
			}},
		{"run", func() (any, error) { v, _, err := c.Operation(ctx, "run-1", nil); return v, err }, "GET /v1/operations/run-1", "", nil},
		{"items", func() (any, error) { v, _, err := c.RunItems(ctx, "run-1", nil); return v, err },
			"GET /v1/operations/run-1/items", "", func(t *testing.T, v any) {
				if l := v.([]RunItem); len(l) != 1 || l[0].Status != OpFailed || l[0].Error != "vzdump: timeout" {
					t.Errorf("%+v", l)
				}
			}},
		{"snapshots", func() (any, error) {
			v, _, err := c.PolicySnapshots(ctx, SnapshotFilter{Policy: "hourly", VMID: 101}, nil)
			return v, err
		}, "GET /v1/storage/snapshots?policy=hourly&vmid=101", "", func(t *testing.T, v any) {
			if l := v.([]PolicySnapshot); len(l) != 1 || !l[0].Protected || l[0].Time.IsZero() {
				t.Errorf("%+v", l)
			}
		}},
		{"protect a snapshot", func() (any, error) { v, _, err := c.ProtectSnapshot(ctx, 101, "mx x", true, nil); return v, err },
			"POST /v1/storage/snapshots/101/mx x/protect", "", nil},
		{"unprotect a snapshot", func() (any, error) { v, _, err := c.ProtectSnapshot(ctx, 101, "mx x", false, nil); return v, err },
			"POST /v1/storage/snapshots/101/mx x/unprotect", "", nil},
		{"backups", func() (any, error) {
			v, _, err := c.Backups(ctx, BackupFilter{VMID: 101, Policy: "daily", Storage: "local"}, &QueryOptions{Stale: true})
			return v, err
		}, "GET /v1/backups?policy=daily&stale=true&storage=local&vmid=101", "", func(t *testing.T, v any) {
			if l := v.([]Backup); len(l) != 1 || l[0].VolID != backup || !l[0].PlatformProtected || l[0].Protected || l[0].Run != "run-1" {
				t.Errorf("%+v", l)
			}
		}},
		{"backup", func() (any, error) { v, _, err := c.Backup(ctx, backup, nil); return v, err }, "GET /v1/backups/" + backup, "", nil},
		{"restore", func() (any, error) {
			v, _, err := c.RestoreBackup(ctx, backup, BackupRestoreRequest{VMID: 9001, Node: "pve2"}, wo)
			return v, err
		}, "POST /v1/backups/" + backup + "/restore", `{"vmid": 9001, "node": "pve2"}`, nil},
		{"protect a backup", func() (any, error) { v, _, err := c.ProtectBackup(ctx, backup, true, nil); return v, err },
			"POST /v1/backups/" + backup + "/protect", "", nil},
		{"unprotect a backup", func() (any, error) { v, _, err := c.ProtectBackup(ctx, backup, false, nil); return v, err },
			"POST /v1/backups/" + backup + "/unprotect", "", nil},
		{"coverage", func() (any, error) { v, _, err := c.BackupCoverage(ctx, false, nil); return v, err },
			"GET /v1/backups/coverage", "", func(t *testing.T, v any) {
				cov := v.(*BackupCoverage)
				if len(cov.Guests) != 2 || !cov.Guests[0].Protected || cov.Guests[0].LastBackup.IsZero() || len(cov.Unprotected) != 1 {
					t.Errorf("%+v", cov)
				}
			}},
		{"coverage of the unprotected", func() (any, error) { v, _, err := c.BackupCoverage(ctx, true, nil); return v, err },
			"GET /v1/backups/coverage?unprotected=true", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := len(f.requests())
			v, err := tc.call()
			if err != nil {
				t.Fatal(err)
			}
			reqs := f.requests()[n:]
			if len(reqs) != 1 {
				t.Fatalf("%d requests", len(reqs))
			}
			r := reqs[0]
			if got := joinQuery(r.method+" "+r.path, r.query); got != tc.req {
				t.Errorf("request %q, want %q", got, tc.req)
			}
			// Every write carries an Idempotency-Key: the one given, or a
			// random one.
			key := r.header.Get("Idempotency-Key")
			if (r.method == http.MethodGet) != (key == "") {
				t.Errorf("%s with Idempotency-Key %q", r.method, key)
			}
			if tc.body == "" && len(r.body) != 0 {
				t.Errorf("body %s, want none", r.body)
			} else if tc.body != "" {
				checkBody(t, r.body, tc.body)
			}
			if tc.check != nil {
				tc.check(t, v)
			}
		})
	}

	// A policy of the other kind is not found.
	_, _, err := c.StoragePolicy(ctx, PolicyKindSnapshot, "daily", nil)
	var ae *APIError
	if !errors.As(err, &ae) || !IsNotFound(err) || ae.Field != "id" {
		t.Fatalf("error %#v", err)
	}
}

// joinQuery returns line with query appended after a '?' when there is
// one.
func joinQuery(line, query string) string {
	if query == "" {
		return line
	}
	return line + "?" + query
}
