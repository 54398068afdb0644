package pvesim_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestSDN_ZonesVnetsApply(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	cl := testCluster(t, e)

	zones := []struct {
		name string
		opts proxmox.SDNZoneOptions
	}{
		{"simple", proxmox.SDNZoneOptions{Name: "simple1", Type: "simple"}},
		{"vlan", proxmox.SDNZoneOptions{Name: "vlan1", Type: "vlan", Bridge: "vmbr0"}},
		{"vxlan", proxmox.SDNZoneOptions{Name: "vx1", Type: "vxlan", Peers: "10.0.0.11,10.0.0.12,10.0.0.13", MTU: 1450}},
	}
	for _, tc := range zones {
		opts := tc.opts
		if err := cl.NewSDNZone(ctx, &opts); err != nil {
			t.Fatalf("zone %s: %v", tc.name, err)
		}
	}
	vnets := []struct {
		name string
		opts proxmox.VNetOptions
	}{
		{"in simple", proxmox.VNetOptions{Name: "vnsimple", Zone: "simple1"}},
		{"in vlan", proxmox.VNetOptions{Name: "vnvlan", Zone: "vlan1", Tag: 20, Alias: "tenant acme"}},
		{"in vxlan", proxmox.VNetOptions{Name: "vnvx", Zone: "vx1", Tag: 100000}},
	}
	for _, tc := range vnets {
		opts := tc.opts
		if err := cl.NewSDNVNet(ctx, &opts); err != nil {
			t.Fatalf("vnet %s: %v", tc.name, err)
		}
	}
	// Refused creations. The create handlers check the properties against
	// the plugin's options before they take the SDN lock (a plain 500);
	// what fails under the lock is prefixed, and a parameter exception
	// raised there becomes its text, status included, in a 500.
	for _, tc := range []struct {
		name, path, form string
		msg              string
	}{
		{"vlan zone without bridge", "zones", "zone=vlan2&type=vlan", "missing value for required option 'bridge'\n"},
		{"peers in a vlan zone", "zones", "zone=vlan2&type=vlan&bridge=vmbr0&peers=10.0.0.1", "unexpected property 'peers'\n"},
		{"vxlan zone without peers", "zones", "zone=vx2&type=vxlan", "create sdn zone object failed: 400 Parameter verification failed.\n" +
			"fabric: must have exactly one of peers / fabric defined\npeers: must have exactly one of peers / fabric defined\n"},
		{"duplicate zone", "zones", "zone=simple1&type=simple", "create sdn zone object failed: sdn zone object ID 'simple1' already defined\n"},
		{"tag in simple", "vnets", "vnet=vnbad&zone=simple1&tag=5", "create sdn vnet object failed: 400 Parameter verification failed.\ntag: vlan tag is not allowed on simple zone\n"},
		{"no tag in vlan", "vnets", "vnet=vnbad&zone=vlan1", "tag: missing vlan tag\n"},
		{"same tag in zone", "vnets", "vnet=vnbad&zone=vlan1&tag=20", "tag: tag 20 already exist in vnet vnvlan\n"},
		{"unknown zone", "vnets", "vnet=vnbad&zone=nozone", "zone: zone 'nozone' does not exist\n"},
	} {
		code, status, body := e.raw(t, "POST", "/api2/json/cluster/sdn/"+tc.path, tc.form)
		var res struct{ Message string }
		_ = json.Unmarshal([]byte(body), &res)
		first, _, _ := strings.Cut(res.Message, "\n")
		if code != 500 || !strings.Contains(res.Message, tc.msg) || status != "500 "+first {
			t.Errorf("%s: %s %s, want 500 with %q", tc.name, status, body, tc.msg)
		}
	}

	// Pending until applied.
	_, _, body := e.raw(t, "GET", "/api2/json/cluster/sdn/zones?pending=1", "")
	var pending struct{ Data []map[string]any }
	_ = json.Unmarshal([]byte(body), &pending)
	if len(pending.Data) != 3 || pending.Data[0]["state"] != "new" || pending.Data[0]["zone"] != "simple1" {
		t.Fatalf("pending zones %s", body)
	}
	_, _, body = e.raw(t, "GET", "/api2/json/cluster/sdn/vnets?running=1", "")
	if body != `{"data":[]}` {
		t.Fatalf("running vnets before apply: %s", body)
	}
	if rs, _ := cl.Resources(ctx, "sdn"); len(rs) != 3 {
		t.Fatalf("%d sdn resources before apply", len(rs))
	}

	task, err := cl.SDNApply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if task.Type != "reloadnetworkall" {
		t.Fatalf("task %+v", task)
	}
	waitTaskOK(t, task)

	z, err := cl.SDNZone(ctx, "vx1")
	if err != nil || z.Type != "vxlan" || z.MTU != 1450 || len(z.Peers) != 3 {
		t.Fatalf("zone vx1 %+v, %v", z, err)
	}
	vs, err := cl.SDNVNets(ctx)
	if err != nil || len(vs) != 3 {
		t.Fatalf("vnets %+v, %v", vs, err)
	}
	v, err := cl.SDNVNet(ctx, "vnvlan")
	if err != nil || v.Zone != "vlan1" || v.Tag != 20 || v.Alias != "tenant acme" {
		t.Fatalf("vnet %+v, %v", v, err)
	}
	rs, _ := cl.Resources(ctx, "sdn")
	if len(rs) != 12 {
		t.Fatalf("%d sdn resources after apply, want 4 zones on 3 nodes", len(rs))
	}
	// Vnets are listed with the node's interfaces only when asked for.
	for query, want := range map[string]string{
		"":                  "eno1,vmbr0",
		"?type=any_bridge":  "vmbr0,vnsimple,vnvlan,vnvx",
		"?type=vnet":        "vnsimple,vnvlan,vnvx",
		"?type=include_sdn": "eno1,vmbr0,vnsimple,vnvlan,vnvx",
	} {
		if got := ifaces(t, e, "pve2", query); got != want {
			t.Fatalf("interfaces%s on pve2: %s, want %s", query, got, want)
		}
	}

	// Change and delete, pending again until applied.
	// go-proxmox's UpdateSDNVNet sends the whole object, "type" included,
	// which the PUT does not take; Proxmox refuses it the same way.
	v.Alias = "renamed"
	wantErr(t, cl.UpdateSDNVNet(ctx, v), `"type":"property is not defined in schema`)
	if code, _, body := e.raw(t, "PUT", "/api2/json/cluster/sdn/vnets/vnvlan", "alias=renamed"); code != 200 {
		t.Fatalf("update vnet: %s", body)
	}
	if err := cl.DeleteSDNZone(ctx, "vlan1"); err == nil || !strings.Contains(err.Error(), "zone vlan1 is used by vnet vnvlan") {
		t.Fatalf("delete used zone: %v", err)
	}
	if err := cl.DeleteSDNVNet(ctx, "vnvx"); err != nil {
		t.Fatal(err)
	}
	_, _, body = e.raw(t, "GET", "/api2/json/cluster/sdn/vnets?pending=1", "")
	var pendingVnets struct{ Data []map[string]any }
	_ = json.Unmarshal([]byte(body), &pendingVnets)
	states := map[string]any{}
	for _, d := range pendingVnets.Data {
		states[d["vnet"].(string)] = d["state"]
	}
	if states["vnsimple"] != nil || states["vnvlan"] != "changed" || states["vnvx"] != "deleted" {
		t.Fatalf("pending vnets %s", body)
	}
	_, err = cl.SDNZone(ctx, "nozone")
	wantErr(t, err, "sdn 'nozone' does not exist")
}

// ifaces returns the names of a node's network interfaces, listed with
// query, comma-separated.
func ifaces(t *testing.T, e *testEnv, node, query string) string {
	t.Helper()
	code, _, body := e.raw(t, "GET", "/api2/json/nodes/"+node+"/network"+query, "")
	if code != 200 {
		t.Fatalf("network of %s: %d %s", node, code, body)
	}
	var res struct{ Data []map[string]any }
	if err := json.Unmarshal([]byte(body), &res); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, d := range res.Data {
		names = append(names, d["iface"].(string))
	}
	return strings.Join(names, ",")
}

// TestSDN_UpdatesAndNodes covers what updates may set and delete, as
// SectionConfig's check_config and delete_from_config allow, and zones
// limited to some nodes.
func TestSDN_UpdatesAndNodes(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	cl := testCluster(t, e)
	put := func(path, body string) (int, string) {
		t.Helper()
		code, _, resp := e.raw(t, "PUT", "/api2/json/cluster/sdn/"+path, body)
		return code, resp
	}
	if err := cl.NewSDNZone(ctx, &proxmox.SDNZoneOptions{Name: "vl", Type: "vlan", Bridge: "vmbr0", MTU: 1500, Nodes: "pve1,pve2"}); err != nil {
		t.Fatal(err)
	}
	if err := cl.NewSDNVNet(ctx, &proxmox.VNetOptions{Name: "v10", Zone: "vl", Tag: 10, Alias: "ten"}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path, body string
		code       int
		msg        string
	}{
		{"zones/vl", "delete=mtu", 200, ""},
		{"zones/vl", "delete=bridge", 500, "update sdn zone object failed: unable to delete required option 'bridge'"},
		{"zones/vl", "delete=peers", 500, "update sdn zone object failed: no such option 'peers'"},
		{"zones/vl", "peers=10.0.0.1", 500, "update sdn zone object failed: unexpected property 'peers'"},
		{"zones/vl", "mtu=1400&delete=mtu", 500, "update sdn zone object failed: cannot set and delete property 'mtu' at the same time!"},
		{"vnets/v10", "delete=alias,tag", 500, "update sdn vnet object failed: 400 Parameter verification failed."},
		{"vnets/v10", "delete=zone", 500, "update sdn vnet object failed: unable to delete required option 'zone'"},
		{"vnets/v10", "delete=alias", 200, ""},
	} {
		code, body := put(tc.path, tc.body)
		if code != tc.code || !strings.Contains(body, tc.msg) {
			t.Errorf("PUT %s %s: %d %s, want %d %q", tc.path, tc.body, code, body, tc.code, tc.msg)
		}
	}
	z, err := cl.SDNZone(ctx, "vl")
	if err != nil || z.MTU != 0 || z.Type != "vlan" {
		t.Fatalf("zone vl %+v, %v", z, err)
	}
	v, err := cl.SDNVNet(ctx, "v10")
	if err != nil || v.Alias != "" || v.Tag != 10 {
		t.Fatalf("vnet v10 %+v, %v", v, err)
	}

	task, err := cl.SDNApply(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
	// The zone is on pve1 and pve2 only.
	for node, want := range map[string]string{"pve1": "v10,vmbr0", "pve3": "vmbr0"} {
		if got := ifaces(t, e, node, "?type=any_bridge"); got != want {
			t.Errorf("bridges on %s: %s, want %s", node, got, want)
		}
	}
	rs, err := cl.Resources(ctx, "sdn")
	if err != nil {
		t.Fatal(err)
	}
	var zones []string
	for _, r := range rs {
		zones = append(zones, r.ID)
	}
	if got := strings.Join(zones, " "); got != "sdn/pve1/localnetwork sdn/pve1/vl sdn/pve2/localnetwork sdn/pve2/vl sdn/pve3/localnetwork" {
		t.Errorf("sdn resources: %s", got)
	}
}
