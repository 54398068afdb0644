package storage

import (
	"encoding/json"
	"testing"
)

func TestCoverage(t *testing.T) {
	policies := []PolicySelector{
		{ID: "web", Selector: Selector{Tags: []string{"web"}}},
		{ID: "off", Selector: Selector{All: true}, Disabled: true},
		{ID: "all", Selector: Selector{All: true}},
		{ID: "acme", Selector: Selector{Tenant: "acme"}},
		{ID: "pinned", Selector: Selector{VMIDs: []int{102, 103}}},
	}
	backups := []BackupRecord{
		{VMID: 101, Time: utc(t, "2026-03-01T02:00:00Z"), VolID: "pbs:backup/vm/101/2026-03-01T02:00:00Z", Policy: "web"},
		{VMID: 101, Time: utc(t, "2026-03-02T02:00:00Z"), VolID: "pbs:backup/vm/101/2026-03-02T02:00:00Z", Policy: "web"},
		{VMID: 101, Time: utc(t, "2026-02-28T02:00:00Z"), VolID: "pbs:backup/vm/101/2026-02-28T02:00:00Z"},
		{VMID: 105, Time: utc(t, "2026-03-02T02:00:00Z"), VolID: "local:backup/vzdump-qemu-105-a.vma.zst"},
		{VMID: 105, Time: utc(t, "2026-03-02T02:00:00Z"), VolID: "local:backup/vzdump-qemu-105-b.vma.zst"},
		{VMID: 103, Time: utc(t, "2026-03-02T02:00:00Z"), VolID: "local:backup/vzdump-qemu-103.vma.zst"},
		{VMID: 999, Time: utc(t, "2026-03-02T02:00:00Z"), VolID: "local:backup/vzdump-qemu-999.vma.zst"},
	}
	got, err := json.Marshal(Coverage(testGuests(), policies, backups))
	if err != nil {
		t.Fatal(err)
	}
	want := `[` +
		`{"vmid":101,"name":"web1","node":"pve1","tenant":"acme","policies":["acme","all","web"],"last_backup":"2026-03-02T02:00:00Z","last_volid":"pbs:backup/vm/101/2026-03-02T02:00:00Z","protected":true},` +
		`{"vmid":102,"name":"db1","node":"pve1","tenant":"globex","policies":["all","pinned","web"],"protected":true},` +
		`{"vmid":104,"name":"files","node":"pve2","tenant":"acme","policies":["acme","all"],"protected":true},` +
		`{"vmid":105,"name":"cache","node":"pve2","policies":["all"],"last_backup":"2026-03-02T02:00:00Z","last_volid":"local:backup/vzdump-qemu-105-b.vma.zst","protected":true}` +
		`]`
	if string(got) != want {
		t.Errorf("Coverage:\n got %s\nwant %s", got, want)
	}
	if got := Coverage(nil, policies, backups); len(got) != 0 {
		t.Errorf("Coverage without guests = %v", got)
	}
	unprotected := Coverage(testGuests(), policies[:1], nil)
	if e := unprotected[3]; e.VMID != 105 || e.Protected || e.Policies != nil || !e.LastBackup.IsZero() {
		t.Errorf("Coverage of a guest no policy selects = %+v", e)
	}
}
