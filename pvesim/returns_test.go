package pvesim_test

import (
	"context"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/pvesim/schema"
)

// TestReturns_MatchSchema calls every route once with realistic arguments
// and checks the answer's "data" against the route's "returns" in the
// schema (required members present, JSON types right).
func TestReturns_MatchSchema(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	sch := schema.Load()

	// Something to read: a snapshot, SDN objects, a task.
	task, err := testVM(t, e.client, "pve1", 103).NewSnapshot(ctx, "snap1")
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	task, err = testCT(t, e.client, "pve1", 200).NewSnapshot(ctx, "snap1")
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	for _, body := range []string{"zone=z1&type=vlan&bridge=vmbr0"} {
		if code, _, b := e.raw(t, "POST", "/api2/json/cluster/sdn/zones", body); code != 200 {
			t.Fatal(b)
		}
	}
	if code, _, b := e.raw(t, "POST", "/api2/json/cluster/sdn/vnets", "vnet=v1&zone=z1&tag=5"); code != 200 {
		t.Fatal(b)
	}
	upid := string(task.UPID)

	// One concrete call per route, in Routes order; writes last so that
	// reads see the seed.
	// One call per route: reads first, then writes in an order that keeps
	// each one possible.
	calls := []struct {
		route      pvesim.Route
		path, body string
	}{
		{pvesim.Route{Method: "GET", Path: "/version"}, "/version", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/status"}, "/cluster/status", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/resources"}, "/cluster/resources", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/nextid"}, "/cluster/nextid", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/tasks"}, "/cluster/tasks", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/sdn/zones"}, "/cluster/sdn/zones?pending=1", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/sdn/zones/{zone}"}, "/cluster/sdn/zones/z1", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/sdn/vnets"}, "/cluster/sdn/vnets?pending=1", ""},
		{pvesim.Route{Method: "GET", Path: "/cluster/sdn/vnets/{vnet}"}, "/cluster/sdn/vnets/v1", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes"}, "/nodes", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/status"}, "/nodes/pve1/status", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/network"}, "/nodes/pve1/network", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/qemu"}, "/nodes/pve1/qemu?full=1", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/qemu/{vmid}/status/current"}, "/nodes/pve1/qemu/100/status/current", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/qemu/{vmid}/config"}, "/nodes/pve1/qemu/9000/config", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/qemu/{vmid}/snapshot"}, "/nodes/pve1/qemu/103/snapshot", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/lxc"}, "/nodes/pve1/lxc", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/lxc/{vmid}/status/current"}, "/nodes/pve1/lxc/200/status/current", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/lxc/{vmid}/config"}, "/nodes/pve1/lxc/200/config", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/lxc/{vmid}/snapshot"}, "/nodes/pve1/lxc/200/snapshot", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/storage"}, "/nodes/pve1/storage?format=1", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/storage/{storage}/status"}, "/nodes/pve1/storage/local-lvm/status", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/storage/{storage}/content"}, "/nodes/pve1/storage/local/content", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/tasks"}, "/nodes/pve1/tasks?source=all", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/tasks/{upid}/status"}, "/nodes/pve1/tasks/" + upid + "/status", ""},
		{pvesim.Route{Method: "GET", Path: "/nodes/{node}/tasks/{upid}/log"}, "/nodes/pve1/tasks/" + upid + "/log", ""},
		{pvesim.Route{Method: "GET", Path: "/storage"}, "/storage", ""},
		{pvesim.Route{Method: "GET", Path: "/storage/{storage}"}, "/storage/nfs-shared", ""},
		{pvesim.Route{Method: "POST", Path: "/access/ticket"}, "/access/ticket", "username=root@pam&password=" + url.QueryEscape(testPassword)},
		{pvesim.Route{Method: "POST", Path: "/cluster/sdn/zones"}, "/cluster/sdn/zones", "zone=z2&type=simple"},
		{pvesim.Route{Method: "PUT", Path: "/cluster/sdn/zones/{zone}"}, "/cluster/sdn/zones/z1", "mtu=1400"},
		{pvesim.Route{Method: "DELETE", Path: "/cluster/sdn/zones/{zone}"}, "/cluster/sdn/zones/z2", ""},
		{pvesim.Route{Method: "POST", Path: "/cluster/sdn/vnets"}, "/cluster/sdn/vnets", "vnet=v2&zone=z1&tag=6"},
		{pvesim.Route{Method: "PUT", Path: "/cluster/sdn/vnets/{vnet}"}, "/cluster/sdn/vnets/v1", "alias=one"},
		{pvesim.Route{Method: "DELETE", Path: "/cluster/sdn/vnets/{vnet}"}, "/cluster/sdn/vnets/v2", ""},
		{pvesim.Route{Method: "PUT", Path: "/cluster/sdn"}, "/cluster/sdn", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu"}, "/nodes/pve1/qemu", "vmid=700&memory=512&scsi0=local-lvm:1&net0=virtio,bridge=vmbr0"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/status/start"}, "/nodes/pve1/qemu/103/status/start", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/status/stop"}, "/nodes/pve1/qemu/100/status/stop", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/status/shutdown"}, "/nodes/pve3/qemu/102/status/shutdown", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/config"}, "/nodes/pve2/qemu/104/config", "cores=3"},
		{pvesim.Route{Method: "PUT", Path: "/nodes/{node}/qemu/{vmid}/config"}, "/nodes/pve2/qemu/104/config", "memory=2048"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/clone"}, "/nodes/pve1/qemu/9000/clone", "newid=701&name=c1"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/migrate"}, "/nodes/pve1/qemu/9001/migrate", "target=pve2"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/snapshot"}, "/nodes/pve1/qemu/103/snapshot", "snapname=snap2&description=two"},
		{pvesim.Route{Method: "DELETE", Path: "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}"}, "/nodes/pve1/qemu/103/snapshot/snap2", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/snapshot/{snapname}/rollback"}, "/nodes/pve1/qemu/103/snapshot/snap1/rollback", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc"}, "/nodes/pve1/lxc", "vmid=702&ostemplate=local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst&storage=local-lvm"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/status/start"}, "/nodes/pve2/lxc/201/status/start", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/status/stop"}, "/nodes/pve3/lxc/202/status/stop", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/status/shutdown"}, "/nodes/pve1/lxc/200/status/shutdown", ""},
		{pvesim.Route{Method: "PUT", Path: "/nodes/{node}/lxc/{vmid}/config"}, "/nodes/pve2/lxc/201/config", "cores=2"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/clone"}, "/nodes/pve1/lxc/200/clone", "newid=703&snapname=snap1"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/migrate"}, "/nodes/pve2/lxc/201/migrate", "target=pve3&restart=1"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/snapshot"}, "/nodes/pve1/lxc/200/snapshot", "snapname=snap2"},
		{pvesim.Route{Method: "DELETE", Path: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}"}, "/nodes/pve1/lxc/200/snapshot/snap2", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/snapshot/{snapname}/rollback"}, "/nodes/pve1/lxc/200/snapshot/snap1/rollback", ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/vzdump"}, "/nodes/pve1/vzdump", "vmid=100&storage=local&compress=zstd"},
		{pvesim.Route{Method: "PUT", Path: "/nodes/{node}/lxc/{vmid}/resize"}, "/nodes/pve3/lxc/202/resize", "disk=rootfs&size=%2B1G"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/lxc/{vmid}/move_volume"}, "/nodes/pve3/lxc/202/move_volume", "volume=rootfs&storage=nfs-shared&delete=1"},
		{pvesim.Route{Method: "PUT", Path: "/nodes/{node}/qemu/{vmid}/resize"}, "/nodes/pve1/qemu/103/resize", "disk=scsi0&size=40G"},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/move_disk"}, "/nodes/pve1/qemu/103/move_disk", "disk=scsi0&storage=nfs-shared"},
		{pvesim.Route{Method: "DELETE", Path: "/nodes/{node}/storage/{storage}/content/{volume}"}, "/nodes/pve1/storage/local/content/" + url.PathEscape("local:iso/ubuntu-24.04.1-live-server-amd64.iso"), ""},
		{pvesim.Route{Method: "POST", Path: "/nodes/{node}/qemu/{vmid}/template"}, "/nodes/pve2/qemu/104/template", ""},
		{pvesim.Route{Method: "DELETE", Path: "/nodes/{node}/qemu/{vmid}"}, "/nodes/pve2/qemu/104", ""},
		{pvesim.Route{Method: "DELETE", Path: "/nodes/{node}/lxc/{vmid}"}, "/nodes/pve3/lxc/202", "force=1"},
		{pvesim.Route{Method: "DELETE", Path: "/nodes/{node}/tasks/{upid}"}, "/nodes/pve1/tasks/" + upid, ""},
	}
	covered := map[pvesim.Route]bool{}
	for _, c := range calls {
		covered[c.route] = true
	}
	for _, r := range e.sim.Routes() {
		if !covered[r] {
			t.Errorf("no call for %s %s", r.Method, r.Path)
		}
	}
	for _, c := range calls {
		r := c.route
		t.Run(r.Method+" "+r.Path, func(t *testing.T) {
			ep, _, ok := sch.Lookup(r.Method, r.Path)
			if !ok {
				t.Fatal("route not in the schema")
			}
			path, body := c.path, c.body
			if r.Method == "DELETE" && body != "" {
				path, body = path+"?"+body, ""
			}
			code, status, raw := e.raw(t, r.Method, "/api2/json"+path, body)
			if code != 200 {
				t.Fatalf("%s %s: %s %s", r.Method, path, status, raw)
			}
			var res struct{ Data any }
			dec := json.NewDecoder(strings.NewReader(raw))
			if err := dec.Decode(&res); err != nil {
				t.Fatal(err)
			}
			probs := ep.CheckReturns(res.Data)
			if r.Path == "/cluster/nextid" {
				// Proxmox answers the ID as a string though its schema
				// says integer; go-proxmox decodes it into a string.
				probs = nil
				if _, ok := res.Data.(string); !ok {
					t.Fatalf("next ID %v is not a string", res.Data)
				}
			}
			for _, p := range probs {
				t.Errorf("%s: %s", path, p)
			}
			if s, ok := res.Data.(string); ok && strings.HasPrefix(s, "UPID:") {
				waitTask(t, newTestTask(e, s))
			}
		})
	}
}
