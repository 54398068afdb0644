package pvesim_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestVM_CreateStartStopShutdownDelete(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	n := testNode(t, e.client, "pve2")

	task, err := n.NewVirtualMachine(ctx, 150,
		proxmox.VirtualMachineOption{Name: "name", Value: "new-vm"},
		proxmox.VirtualMachineOption{Name: "memory", Value: 1024},
		proxmox.VirtualMachineOption{Name: "cores", Value: 2},
		proxmox.VirtualMachineOption{Name: "scsihw", Value: "virtio-scsi-single"},
		proxmox.VirtualMachineOption{Name: "scsi0", Value: "local-lvm:16,iothread=1"},
		proxmox.VirtualMachineOption{Name: "net0", Value: "virtio,bridge=vmbr0,tag=10"},
		proxmox.VirtualMachineOption{Name: "tags", Value: "web,prod"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != "qmcreate" || task.ID != "150" || task.Node != "pve2" || task.User != testTokenID {
		t.Fatalf("UPID %s parsed as %+v", task.UPID, task)
	}
	waitTaskOK(t, task)

	v := testVM(t, e.client, "pve2", 150)
	cfg := v.VirtualMachineConfig
	if v.Status != "stopped" || cfg.Name != "new-vm" || *cfg.Cores != 2 || cfg.Memory != 1024 || cfg.Tags != "prod;web" ||
		cfg.SCSIs["scsi0"] != "local-lvm:vm-150-disk-0,iothread=1,size=16G" || cfg.Lock != "" {
		t.Fatalf("created VM: %+v config %+v", v, cfg)
	}
	if net := cfg.Nets["net0"]; !strings.HasPrefix(net, "virtio=BC:24:11:") || !strings.HasSuffix(net, ",bridge=vmbr0,tag=10") {
		t.Fatalf("net0 = %q, want a generated MAC", net)
	}
	// The disk is on the storage.
	content := testStorageContent(t, e.client, "pve2", "local-lvm")
	if content["local-lvm:vm-150-disk-0"] == nil {
		t.Fatalf("no disk in local-lvm: %v", content)
	}

	steps := []struct {
		name   string
		action func() (*proxmox.Task, error)
		status string
	}{
		{"start", func() (*proxmox.Task, error) { return v.Start(ctx) }, "running"},
		{"shutdown", func() (*proxmox.Task, error) { return v.Shutdown(ctx) }, "stopped"},
		{"start again", func() (*proxmox.Task, error) { return v.Start(ctx) }, "running"},
		{"stop", func() (*proxmox.Task, error) { return v.Stop(ctx) }, "stopped"},
	}
	for _, st := range steps {
		task, err := st.action()
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		waitTaskOK(t, task)
		if err := v.Ping(ctx); err != nil || v.Status != st.status {
			t.Fatalf("after %s: status %q (%v), want %q", st.name, v.Status, err, st.status)
		}
	}

	task, err = v.Delete(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if _, ok := testGuest(t, e.sim, 150); ok {
		t.Fatal("VM 150 still exists")
	}
	_, err = n.VirtualMachine(ctx, 150)
	wantErr(t, err, "500 Configuration file 'nodes/pve2/qemu-server/150.conf' does not exist")
	if content := testStorageContent(t, e.client, "pve2", "local-lvm"); content["local-lvm:vm-150-disk-0"] != nil {
		t.Fatal("disk of the deleted VM is still there")
	}
}

func testStorageContent(t testing.TB, c *proxmox.Client, nodeName, storage string) map[string]*proxmox.StorageContent {
	t.Helper()
	st, err := testNode(t, c, nodeName).Storage(context.Background(), storage)
	if err != nil {
		t.Fatal(err)
	}
	list, err := st.GetContent(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*proxmox.StorageContent{}
	for _, v := range list {
		out[v.Volid] = v
	}
	return out
}

func TestVM_Refusals(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	n := testNode(t, e.client, "pve1")

	// A running VM refuses to be deleted, synchronously.
	_, err := testVM(t, e.client, "pve1", 100).Delete(ctx, nil)
	wantErr(t, err, "500 VM 100 is running - destroy failed")

	// Starting a running VM fails in the task.
	task, err := testVM(t, e.client, "pve1", 100).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "VM 100 already running")

	// Creating over an existing VMID fails before the task.
	_, err = n.NewVirtualMachine(ctx, 100, proxmox.VirtualMachineOption{Name: "memory", Value: 512})
	wantErr(t, err, "500 unable to create VM 100 - VM 100 already exists on node 'pve1'")

	// A template does not start.
	task, err = testVM(t, e.client, "pve1", 9000).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "you can't start a vm if it's a template")

	// A locked VM refuses start (in the task) and config changes.
	if err := e.sim.UpdateGuest(103, func(g *pvesim.Guest) { g.Lock = "backup" }); err != nil {
		t.Fatal(err)
	}
	v := testVM(t, e.client, "pve1", 103)
	if v.Lock != "backup" {
		t.Fatalf("lock = %q", v.Lock)
	}
	task, err = v.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "VM is locked (backup)")
	err = v.ConfigSync(ctx, proxmox.VirtualMachineOption{Name: "memory", Value: 8192})
	wantErr(t, err, "500 VM is locked (backup)")

	// A missing VM, or one on another node.
	for _, path := range []string{"/nodes/pve1/qemu/999/status/current", "/nodes/pve2/qemu/100/config"} {
		code, status, body := e.raw(t, "GET", "/api2/json"+path, "")
		if code != 500 || !strings.Contains(status, "Configuration file 'nodes/") || !strings.Contains(status, "does not exist") ||
			!strings.Contains(body, `"data":null`) {
			t.Fatalf("GET %s: %s %s", path, status, body)
		}
	}
	// An unknown node fails the address lookup.
	code, status, _ := e.raw(t, "GET", "/api2/json/nodes/pve9/qemu", "")
	if code != 500 || status != "500 hostname lookup 'pve9' failed - failed to get address info for: pve9: Name or service not known" {
		t.Fatalf("unknown node: %s", status)
	}
	// Parameters are validated by the schema.
	code, status, body := e.raw(t, "POST", "/api2/json/nodes/pve1/qemu/103/config", "cores=many&bogus=1")
	if code != 400 || status != "400 Parameter verification failed." || !strings.Contains(body, `"cores":"type check ('integer') failed - got 'many'"`) ||
		!strings.Contains(body, `"bogus":"property is not defined in schema and the schema does not allow additional properties"`) {
		t.Fatalf("bad parameters: %s %s", status, body)
	}
}

func TestVM_CloneTemplate(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	tmpl := testVM(t, e.client, "pve1", 9000)

	cases := []struct {
		name   string
		opts   proxmox.VirtualMachineCloneOptions
		node   string
		disk   string
		errMsg string
	}{
		{"linked on the same node", proxmox.VirtualMachineCloneOptions{NewID: 300, Name: "app-1"}, "pve1", "local-lvm:base-9000-disk-0/vm-300-disk-0,iothread=1,size=3G", ""},
		{"full on the same node", proxmox.VirtualMachineCloneOptions{NewID: 301, Name: "app-2", Full: true}, "pve1", "local-lvm:vm-301-disk-0,iothread=1,size=3G", ""},
		{"to another node from local storage", proxmox.VirtualMachineCloneOptions{NewID: 303, Target: "pve2"}, "", "", "500 can't clone VM to node 'pve2' (VM uses local storage)"},
		{"full to shared storage on another node", proxmox.VirtualMachineCloneOptions{NewID: 303, Target: "pve2", Full: true, Storage: "nfs-shared"}, "", "", "500 can't clone VM to node 'pve2' (VM uses local storage)"},
		{"over an existing VMID", proxmox.VirtualMachineCloneOptions{NewID: 100}, "", "", "500 unable to create VM 100: config file already exists"},
		{"to an unknown node", proxmox.VirtualMachineCloneOptions{NewID: 304, Target: "pve7"}, "", "", "500 no such cluster node 'pve7'"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			opts := tc.opts
			_, task, err := tmpl.Clone(ctx, &opts)
			if tc.errMsg != "" {
				wantErr(t, err, tc.errMsg)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if task.Type != "qmclone" || task.ID != "9000" {
				t.Fatalf("task %+v", task)
			}
			waitTaskOK(t, task)
			c := testVM(t, e.client, tc.node, tc.opts.NewID)
			cfg := c.VirtualMachineConfig
			if cfg.Name != tc.opts.Name || cfg.SCSIs["scsi0"] != tc.disk || bool(cfg.Template) || cfg.Lock != "" ||
				cfg.IPConfigs["ipconfig0"] != "ip=dhcp" || cfg.CIUser != "debian" {
				t.Fatalf("clone config: %+v", cfg)
			}
			if cfg.IDEs["ide2"] != "local-lvm:vm-"+strconv.Itoa(tc.opts.NewID)+"-cloudinit,media=cdrom" {
				t.Fatalf("cloud-init drive %q", cfg.IDEs["ide2"])
			}
			if cfg.Nets["net0"] == tmpl.VirtualMachineConfig.Nets["net0"] || !strings.HasPrefix(cfg.Nets["net0"], "virtio=BC:24:11:") {
				t.Fatalf("clone net0 %q, template %q: want a new MAC", cfg.Nets["net0"], tmpl.VirtualMachineConfig.Nets["net0"])
			}
		})
	}

	// A template on shared storage clones to any node.
	_, task, err := testVM(t, e.client, "pve1", 9001).Clone(ctx, &proxmox.VirtualMachineCloneOptions{NewID: 310, Name: "u-1", Target: "pve3"})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if cfg := testVM(t, e.client, "pve3", 310).VirtualMachineConfig; cfg.SCSIs["scsi0"] != "nfs-shared:9001/base-9001-disk-0.qcow2/310/vm-310-disk-0.qcow2,iothread=1,size=4G" ||
		cfg.IDEs["ide2"] != "nfs-shared:310/vm-310-cloudinit.qcow2,media=cdrom" {
		t.Fatalf("clone on pve3: %+v %+v", cfg.SCSIs, cfg.IDEs)
	}

	// Configure the clone for cloud-init, then start it.
	c := testVM(t, e.client, "pve1", 300)
	task, err = c.Config(ctx,
		proxmox.VirtualMachineOption{Name: "ipconfig0", Value: "ip=10.0.20.5/24,gw=10.0.20.1"},
		proxmox.VirtualMachineOption{Name: "net0", Value: "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=20"},
		proxmox.VirtualMachineOption{Name: "cores", Value: 4},
		proxmox.VirtualMachineOption{Name: "delete", Value: "description,tags"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != "qmconfig" {
		t.Fatalf("config task %+v", task)
	}
	waitTaskOK(t, task)
	g, _ := testGuest(t, e.sim, 300)
	if g.Config["ipconfig0"] != "ip=10.0.20.5/24,gw=10.0.20.1" || g.Config["net0"] != "virtio=BC:24:11:AA:BB:CC,bridge=vmbr0,tag=20" ||
		g.Config["cores"] != "4" || g.Config["description"] != "" || len(g.Tags) != 0 {
		t.Fatalf("config after update: %+v", g.Config)
	}
	// The synchronous form.
	if err := c.ConfigSync(ctx, proxmox.VirtualMachineOption{Name: "memory", Value: 4096}); err != nil {
		t.Fatal(err)
	}
	if g, _ := testGuest(t, e.sim, 300); g.Config["memory"] != "4096" {
		t.Fatalf("memory %q", g.Config["memory"])
	}
	task, err = c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
}

func TestVM_MigrateSnapshotTemplate(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()

	// A running VM needs online; its local disk goes along.
	v := testVM(t, e.client, "pve1", 100)
	_, err := v.Migrate(ctx, &proxmox.VirtualMachineMigrateOptions{Target: "pve2"})
	wantErr(t, err, "500 can't migrate running VM without --online")
	_, err = v.Migrate(ctx, &proxmox.VirtualMachineMigrateOptions{Target: "pve1"})
	wantErr(t, err, "target is local node.")
	task, err := v.Migrate(ctx, &proxmox.VirtualMachineMigrateOptions{Target: "pve2", Online: true})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "can't live migrate attached local disks without with-local-disks option")
	task, err = v.Migrate(ctx, &proxmox.VirtualMachineMigrateOptions{Target: "pve2", Online: true, WithLocalDisks: true})
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != "qmigrate" {
		t.Fatalf("task %+v", task)
	}
	waitTaskOK(t, task)
	v = testVM(t, e.client, "pve2", 100)
	if v.Status != "running" || v.Lock != "" {
		t.Fatalf("migrated VM: %+v", v)
	}
	if testStorageContent(t, e.client, "pve2", "local-lvm")["local-lvm:vm-100-disk-0"] == nil ||
		testStorageContent(t, e.client, "pve1", "local-lvm")["local-lvm:vm-100-disk-0"] != nil {
		t.Fatal("the disk did not move with the VM")
	}

	// Snapshots: create two, roll back to the first, delete both.
	v = testVM(t, e.client, "pve1", 103)
	for _, name := range []string{"before", "after"} {
		task, err := v.NewSnapshot(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		waitTaskOK(t, task)
		if name == "before" {
			if err := v.ConfigSync(ctx, proxmox.VirtualMachineOption{Name: "memory", Value: 8192}); err != nil {
				t.Fatal(err)
			}
		}
	}
	task, err = v.NewSnapshot(ctx, "after")
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "snapshot name 'after' already used")
	snaps, err := v.Snapshots(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 3 || snaps[0].Name != "before" || snaps[1].Name != "after" || snaps[1].Parent != "before" ||
		snaps[2].Name != "current" || snaps[2].Parent != "after" {
		t.Fatalf("snapshots: %+v %+v %+v", snaps[0], snaps[1], snaps[2])
	}
	task, err = v.Snapshot("before").Rollback(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if g, _ := testGuest(t, e.sim, 103); g.Config["memory"] != "4096" || g.Config["parent"] != "before" {
		t.Fatalf("after rollback: %+v", g.Config)
	}
	for _, name := range []string{"after", "before"} {
		task, err := v.Snapshot(name).Delete(ctx)
		if err != nil {
			t.Fatal(err)
		}
		waitTaskOK(t, task)
	}
	_, err = v.Snapshot("nope").Rollback(ctx)
	wantErr(t, err, "500 snapshot 'nope' does not exist")

	// Convert to a template, then clone it linked.
	task, err = v.ConvertToTemplate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	v = testVM(t, e.client, "pve1", 103)
	if !bool(v.Template) || v.VirtualMachineConfig.SCSIs["scsi0"] != "local-lvm:base-103-disk-0,iothread=1,size=32G" {
		t.Fatalf("template: %+v %+v", v, v.VirtualMachineConfig.SCSIs)
	}
	_, err = v.ConvertToTemplate(ctx)
	wantErr(t, err, "you can't convert a template to a template")
}

func TestContainer_Lifecycle(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	n := testNode(t, e.client, "pve3")

	_, err := n.NewContainer(ctx, 250, proxmox.ContainerOption{Name: "ostemplate", Value: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"})
	wantErr(t, err, "storage 'local' does not support container directories")

	task, err := n.NewContainer(ctx, 250,
		proxmox.ContainerOption{Name: "ostemplate", Value: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst"},
		proxmox.ContainerOption{Name: "hostname", Value: "ct-250"},
		proxmox.ContainerOption{Name: "storage", Value: "local-lvm"},
		proxmox.ContainerOption{Name: "rootfs", Value: "8"},
		proxmox.ContainerOption{Name: "memory", Value: 1024},
		proxmox.ContainerOption{Name: "net0", Value: "name=eth0,bridge=vmbr0,ip=10.0.30.5/24,gw=10.0.30.1"},
	)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != "vzcreate" {
		t.Fatalf("task %+v", task)
	}
	waitTaskOK(t, task)
	c := testCT(t, e.client, "pve3", 250)
	cfg := c.ContainerConfig
	if c.Status != "stopped" || cfg.Hostname != "ct-250" || *cfg.Memory != 1024 || cfg.RootFS != "local-lvm:vm-250-disk-0,size=8G" ||
		cfg.OSType != "debian" || !bool(cfg.Unprivileged) || !strings.Contains(cfg.Nets["net0"], "hwaddr=BC:24:11:") {
		t.Fatalf("container %+v config %+v", c, cfg)
	}

	_, err = c.Stop(ctx)
	wantErr(t, err, "500 CT 250 not running")
	task, err = c.Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	_, err = c.Start(ctx)
	wantErr(t, err, "500 CT 250 already running")
	_, err = c.Delete(ctx, nil)
	wantErr(t, err, "500 unable to destroy CT 250 - container is running")
	task, err = c.Shutdown(ctx, false, 30)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)

	// Config is synchronous for containers.
	if _, err := c.Config(ctx, proxmox.ContainerOption{Name: "cores", Value: 2}, proxmox.ContainerOption{Name: "tags", Value: "db"}); err != nil {
		t.Fatal(err)
	}
	if g, _ := testGuest(t, e.sim, 250); g.Config["cores"] != "2" || g.Config["tags"] != "db" {
		t.Fatalf("config %+v", g.Config)
	}

	// Snapshot, clone, migrate, delete.
	task, err = c.NewSnapshot(ctx, "s1")
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	task, err = c.Snapshot("s1").Rollback(ctx, true)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if c := testCT(t, e.client, "pve3", 250); c.Status != "running" {
		t.Fatalf("rollback with start: %s", c.Status)
	}
	task, err = c.Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	task, err = c.Snapshot("s1").Delete(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)

	_, task, err = c.Clone(ctx, &proxmox.ContainerCloneOptions{NewID: 251, Hostname: "ct-251", Full: true})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if cl := testCT(t, e.client, "pve3", 251); cl.ContainerConfig.Hostname != "ct-251" || cl.ContainerConfig.RootFS != "local-lvm:vm-251-disk-0,size=8G" {
		t.Fatalf("clone %+v", cl.ContainerConfig)
	}

	task, err = c.Migrate(ctx, &proxmox.ContainerMigrateOptions{Target: "pve1"})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	c = testCT(t, e.client, "pve1", 250)
	task, err = c.Delete(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	if _, ok := testGuest(t, e.sim, 250); ok {
		t.Fatal("CT 250 still exists")
	}
}
