package pvesim_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestStorage_ListStatusContent(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	n := testNode(t, e.client, "pve1")
	storages, err := n.Storages(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]*proxmox.Storage{}
	for _, s := range storages {
		got[s.Name] = s
	}
	if s := got["local"]; s == nil || s.Type != "dir" || s.Content != "backup,iso,vztmpl" || s.Enabled != 1 || s.Active != 1 || s.Total == 0 {
		t.Fatalf("local %+v", s)
	}
	if s := got["local-lvm"]; s == nil || s.Type != "lvmthin" || s.Content != "images,rootdir" || s.Used == 0 || s.Shared != 0 {
		t.Fatalf("local-lvm %+v", s)
	}
	if s := got["nfs-shared"]; s == nil || s.Type != "nfs" || s.Shared != 1 {
		t.Fatalf("nfs-shared %+v", s)
	}
	iso, err := n.StorageISO(ctx)
	if err != nil || iso.Name != "local" {
		t.Fatalf("ISO storage %v, %v", iso, err)
	}
	tmpl, err := n.VzTmpl(ctx, "debian-12-standard_12.7-1_amd64.tar.zst", "local")
	if err != nil || tmpl.Format != "tzst" {
		t.Fatalf("container template %+v, %v", tmpl, err)
	}

	content := testStorageContent(t, e.client, "pve1", "local-lvm")
	if v := content["local-lvm:base-9000-disk-0"]; v == nil || v.VMID != 9000 || v.Size != 3<<30 || v.Format != "raw" {
		t.Fatalf("template disk %+v", v)
	}
	if v := content["local-lvm:vm-100-disk-0"]; v == nil || v.Size != 32<<30 {
		t.Fatalf("VM 100 disk %+v", v)
	}

	cs, err := e.client.ClusterStorages(ctx)
	if err != nil || len(cs) != 3 || cs[1].Storage != "local-lvm" || cs[1].Thinpool != "data" {
		t.Fatalf("cluster storage %+v, %v", cs, err)
	}
	if _, err := e.client.ClusterStorage(ctx, "nope"); err == nil || !strings.Contains(err.Error(), "storage 'nope' does not exist") {
		t.Fatalf("unknown storage: %v", err)
	}
	_, err = n.Storage(ctx, "nope")
	wantErr(t, err, "500 storage 'nope' does not exist")
}

func TestStorage_VzdumpAndBackups(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	n := testNode(t, e.client, "pve1")

	task, err := n.Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{
		VMID: 100, Storage: "local", Mode: "snapshot", Compress: "zstd", NotesTemplate: "{{guestname}} on {{node}}",
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != "vzdump" || task.ID != "100" {
		t.Fatalf("task %+v", task)
	}
	waitTaskOK(t, task)
	log, _ := task.Log(ctx, 0, 0)
	if !strings.Contains(strings.Join(logLines(log), "\n"), "INFO: Finished Backup of VM 100") {
		t.Fatalf("log %v", log)
	}
	if g, _ := testGuest(t, e.sim, 100); g.Lock != "" || g.Status != "running" {
		t.Fatalf("guest after backup %+v", g)
	}

	// Two guests at once, one on another node (skipped), to shared storage.
	task, err = n.Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{Storage: "nfs-shared", Mode: "snapshot", Compress: "gzip"})
	if task != nil || err == nil {
		t.Fatalf("vzdump without vmid or all: %v", err)
	}
	wantErr(t, err, "property is missing")
	code, _, body := e.raw(t, "POST", "/api2/json/nodes/pve1/vzdump", "vmid=200,101&storage=nfs-shared&compress=gzip")
	if code != 200 {
		t.Fatalf("vzdump: %s", body)
	}
	var upid struct{ Data string }
	_ = json.Unmarshal([]byte(body), &upid)
	waitTaskOK(t, proxmox.NewTask(proxmox.UPID(upid.Data), e.client))

	local := testStorageContent(t, e.client, "pve1", "local")
	var backups []*proxmox.StorageContent
	for id, v := range local {
		if strings.HasPrefix(id, "local:backup/") {
			backups = append(backups, v)
		}
	}
	if len(backups) != 1 || backups[0].VMID != 100 || backups[0].Notes != "web-01 on pve1" || backups[0].Format != "vma.zst" ||
		!strings.HasPrefix(backups[0].Volid, "local:backup/vzdump-qemu-100-") || backups[0].Size == 0 {
		t.Fatalf("backups on local: %+v", backups)
	}
	shared := testStorageContent(t, e.client, "pve2", "nfs-shared")
	found := false
	for id, v := range shared {
		if strings.HasPrefix(id, "nfs-shared:backup/vzdump-lxc-200-") && v.Format == "tar.gz" {
			found = true
		}
		if strings.Contains(id, "-101-") {
			t.Fatalf("VM 101 lives on pve2 and was backed up by pve1: %s", id)
		}
	}
	if !found {
		t.Fatalf("no container backup on the shared storage: %v", shared)
	}

	// Only guests of this node: a job for another node's guest does nothing.
	_, _, body = e.raw(t, "POST", "/api2/json/nodes/pve1/vzdump", "vmid=101")
	if body != `{"data":"OK"}` {
		t.Fatalf("vzdump of a guest elsewhere: %s", body)
	}

	// A locked guest fails the job.
	if err := e.sim.UpdateGuest(103, func(g *pvesim.Guest) { g.Lock = "migrate" }); err != nil {
		t.Fatal(err)
	}
	task, err = n.Vzdump(ctx, &proxmox.VirtualMachineBackupOptions{VMID: 103})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "job errors")
}

func logLines(m proxmox.Log) []string {
	out := make([]string, len(m))
	for i := range out {
		out[i] = m[i]
	}
	return out
}
