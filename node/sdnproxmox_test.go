package node

import (
	"cmp"
	"context"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/provider/proxmox"
	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/sdn"
)

// sdnSim is a Proxmox VE simulator with the real provider in front of it,
// counting the SDN applies it receives.
type sdnSim struct {
	p provider.Provider

	mu      sync.Mutex
	applies int // PUT /cluster/sdn requests; guarded by mu
}

func newSDNSim(t *testing.T) *sdnSim {
	t.Helper()
	sim, err := pvesim.New(pvesim.Config{
		Tokens:       map[string]string{testSimTokenID: testSimSecret},
		TaskDuration: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &sdnSim{}
	h := sim.Handler()
	ts := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.TrimSuffix(r.URL.Path, "/") == "/api2/json/cluster/sdn" {
			e.mu.Lock()
			e.applies++
			e.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		ts.Close()
		sim.Close()
	})
	sum := sha256.Sum256(ts.Certificate().Raw)
	var fp []string
	for _, b := range sum {
		fp = append(fp, fmt.Sprintf("%02X", b))
	}
	e.p, err = proxmox.New(proxmox.Config{
		URL: ts.URL, TokenID: testSimTokenID, TokenSecret: testSimSecret,
		Fingerprint: strings.Join(fp, ":"), TaskPoll: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *sdnSim) applyCount() int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.applies
}

// sync runs syncProxmoxSDN and fails the test on an error.
func (e *sdnSim) sync(t *testing.T, in sdn.Intent, owned func(string) bool) []string {
	t.Helper()
	acts, err := syncProxmoxSDN(context.Background(), e.p, in, owned)
	if err != nil {
		t.Fatalf("sync: %v (actions %q)", err, acts)
	}
	return acts
}

// state returns Proxmox's zones and vnets.
func (e *sdnSim) state(t *testing.T) ([]provider.SDNZone, []provider.SDNVnet) {
	t.Helper()
	ctx := context.Background()
	zs, err := e.p.SDNZones(ctx)
	if err != nil {
		t.Fatal(err)
	}
	vs, err := e.p.SDNVnets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return zs, vs
}

func wantActions(t *testing.T, got []string, want ...string) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("actions\n got %q\nwant %q", got, want)
	}
}

func testSDNHosts() []sdn.Host {
	return []sdn.Host{
		{Name: "pve1", Address: "10.0.0.11", Uplink: "vmbr0"},
		{Name: "pve2", Address: "10.0.0.12", Uplink: "vmbr0", MTU: 9000},
		{Name: "pve3", Address: "10.0.0.13", Uplink: "vmbr0"},
	}
}

func TestSyncProxmoxSDN_CreateUpdateDelete(t *testing.T) {
	e := newSDNSim(t)
	in := sdn.Intent{
		Zones: []sdn.Zone{
			{ID: "s1", Type: sdn.ZoneSimple, Nodes: []string{"pve2", "pve1"}},
			{ID: "vl", Type: sdn.ZoneVLAN},
			{ID: "vx", Type: sdn.ZoneVXLAN},
		},
		Vnets: []sdn.Vnet{
			{ID: "v1", Zone: "s1", Alias: "web tier #1"},
			{ID: "v2", Zone: "vl", Tag: 20},
			{ID: "v3", Zone: "vx", Tag: 5000},
		},
		Hosts: testSDNHosts(),
	}
	acts := e.sync(t, in, nil)
	wantActions(t, acts,
		"create zone s1 (simple)", "create zone vl (vlan)", "create zone vx (vxlan)",
		"create vnet v1 in s1", "create vnet v2 in vl", "create vnet v3 in vx", "apply")
	zs, vs := e.state(t)
	wantZones := []provider.SDNZone{
		{ID: "s1", Type: "simple", MTU: 1500, Nodes: []string{"pve1", "pve2"}},
		{ID: "vl", Type: "vlan", MTU: 1500, Nodes: []string{"pve1", "pve2", "pve3"}, Bridge: "vmbr0"},
		{ID: "vx", Type: "vxlan", MTU: 1450, Nodes: []string{"pve1", "pve2", "pve3"}, Peers: []string{"10.0.0.11", "10.0.0.12", "10.0.0.13"}},
	}
	wantVnets := []provider.SDNVnet{
		{ID: "v1", Zone: "s1", Alias: "moxxie:v1 web tier _1"},
		{ID: "v2", Zone: "vl", Tag: 20, Alias: "moxxie:v2"},
		{ID: "v3", Zone: "vx", Tag: 5000, Alias: "moxxie:v3"},
	}
	if !reflect.DeepEqual(zs, wantZones) || !reflect.DeepEqual(vs, wantVnets) {
		t.Fatalf("Proxmox holds\n%+v\n%+v\nwant\n%+v\n%+v", zs, vs, wantZones, wantVnets)
	}
	if n := e.applyCount(); n != 1 {
		t.Fatalf("%d applies, want 1", n)
	}

	// Nothing differs: no change, no apply.
	wantActions(t, e.sync(t, in, nil))
	if n := e.applyCount(); n != 1 {
		t.Fatalf("%d applies after a sync without change, want 1", n)
	}

	// Changes, and a zone and vnets gone from the intent.
	in.Hosts[2].Address = "10.0.0.23"
	in.Zones = []sdn.Zone{{ID: "vl", Type: sdn.ZoneVLAN}, {ID: "vx", Type: sdn.ZoneVXLAN, MTU: 1400, Port: 4790}}
	in.Vnets = []sdn.Vnet{{ID: "v2", Zone: "vl", Tag: 21, Alias: "acme"}}
	wantActions(t, e.sync(t, in, nil),
		"delete vnet v1", "delete vnet v3",
		"update zone vx: mtu 1450 -> 1400, peers [10.0.0.11 10.0.0.12 10.0.0.13] -> [10.0.0.11 10.0.0.12 10.0.0.23], port 0 -> 4790",
		`update vnet v2: tag 20 -> 21, alias "moxxie:v2" -> "moxxie:v2 acme"`,
		"delete zone s1", "apply")
	zs, vs = e.state(t)
	wantZones = []provider.SDNZone{
		wantZones[1],
		{ID: "vx", Type: "vxlan", MTU: 1400, Nodes: []string{"pve1", "pve2", "pve3"}, Peers: []string{"10.0.0.11", "10.0.0.12", "10.0.0.23"}, Port: 4790},
	}
	wantVnets = []provider.SDNVnet{{ID: "v2", Zone: "vl", Tag: 21, Alias: "moxxie:v2 acme"}}
	if !reflect.DeepEqual(zs, wantZones) || !reflect.DeepEqual(vs, wantVnets) {
		t.Fatalf("Proxmox holds\n%+v\n%+v\nwant\n%+v\n%+v", zs, vs, wantZones, wantVnets)
	}
	wantActions(t, e.sync(t, in, nil))
	if n := e.applyCount(); n != 2 {
		t.Fatalf("%d applies, want 2", n)
	}
}

func TestSyncProxmoxSDN_OperatorObjects(t *testing.T) {
	e := newSDNSim(t)
	ctx := context.Background()
	// What an operator made in Proxmox: a zone with an unmarked vnet, an
	// empty zone, and a vnet named like one of the intent's.
	for _, z := range []provider.SDNZone{{ID: "opz", Type: "simple"}, {ID: "ope", Type: "simple"}} {
		if err := e.p.CreateSDNZone(ctx, z); err != nil {
			t.Fatal(err)
		}
	}
	for _, v := range []provider.SDNVnet{{ID: "opv", Zone: "opz", Alias: "office"}, {ID: "v2", Zone: "opz"}} {
		if err := e.p.CreateSDNVnet(ctx, v); err != nil {
			t.Fatal(err)
		}
	}
	// They are pending, which is not Moxxie's to apply.
	wantActions(t, e.sync(t, sdn.Intent{}, nil))
	task, err := e.p.ApplySDN(ctx)
	if err == nil {
		_, err = e.p.WaitTask(ctx, task, nil)
	}
	if err != nil {
		t.Fatal(err)
	}
	before, beforeV := e.state(t)

	in := sdn.Intent{
		Zones: []sdn.Zone{{ID: "z1", Type: sdn.ZoneSimple}},
		Vnets: []sdn.Vnet{{ID: "v1", Zone: "z1"}, {ID: "v2", Zone: "z1"}},
		Hosts: testSDNHosts(),
	}
	acts, err := syncProxmoxSDN(ctx, e.p, in, nil)
	if err == nil || !strings.Contains(err.Error(), "vnet v2: Proxmox has a vnet of that name that is not Moxxie's") {
		t.Fatalf("sync with a name taken by the operator: %v", err)
	}
	wantActions(t, acts, "create zone z1 (simple)", "create vnet v1 in z1", "apply")

	// The intent emptied: Moxxie's objects go, the operator's stay.
	wantActions(t, e.sync(t, sdn.Intent{Hosts: testSDNHosts()}, nil), "delete vnet v1", "delete zone z1", "apply")
	zs, vs := e.state(t)
	if !reflect.DeepEqual(zs, before) || !reflect.DeepEqual(vs, beforeV) {
		t.Fatalf("Proxmox holds\n%+v\n%+v\nwant the operator's\n%+v\n%+v", zs, vs, before, beforeV)
	}
}

func TestSyncProxmoxSDN_Owned(t *testing.T) {
	e := newSDNSim(t)
	in := sdn.Intent{Zones: []sdn.Zone{{ID: "ez", Type: sdn.ZoneVXLAN}}, Hosts: testSDNHosts()}
	wantActions(t, e.sync(t, in, nil), "create zone ez (vxlan)", "apply")
	in.Zones = nil
	// An empty zone cannot be told from an operator's without owned.
	wantActions(t, e.sync(t, in, nil))
	other := func(id string) bool { return id == "other" }
	wantActions(t, e.sync(t, in, other))
	ours := func(id string) bool { return id == "ez" }
	wantActions(t, e.sync(t, in, ours), "delete zone ez", "apply")
	if zs, _ := e.state(t); len(zs) != 0 {
		t.Fatalf("zones left: %+v", zs)
	}
}

func TestSyncProxmoxSDN_PendingFromEarlierRun(t *testing.T) {
	e := newSDNSim(t)
	ctx := context.Background()
	in := sdn.Intent{
		Zones: []sdn.Zone{{ID: "z1", Type: sdn.ZoneSimple}},
		Vnets: []sdn.Vnet{{ID: "v1", Zone: "z1"}},
		Hosts: testSDNHosts(),
	}
	want, _ := proxmoxSDNFor(in)
	// An earlier run wrote the objects and stopped before applying.
	if err := e.p.CreateSDNZone(ctx, want.zones["z1"]); err != nil {
		t.Fatal(err)
	}
	if err := e.p.CreateSDNVnet(ctx, want.vnets["v1"]); err != nil {
		t.Fatal(err)
	}
	wantActions(t, e.sync(t, in, nil), "apply")
	if zs, vs := e.state(t); zs[0].Pending != "" || vs[0].Pending != "" {
		t.Fatalf("still pending: %+v %+v", zs, vs)
	}
	// An operator's pending change is not Moxxie's to apply.
	if err := e.p.CreateSDNZone(ctx, provider.SDNZone{ID: "opz", Type: "simple"}); err != nil {
		t.Fatal(err)
	}
	wantActions(t, e.sync(t, in, nil))
	if n := e.applyCount(); n != 1 {
		t.Fatalf("%d applies, want 1", n)
	}
}

func TestSyncProxmoxSDN_TypeChange(t *testing.T) {
	e := newSDNSim(t)
	ctx := context.Background()
	in := sdn.Intent{
		Zones: []sdn.Zone{{ID: "zt", Type: sdn.ZoneVLAN}},
		Vnets: []sdn.Vnet{{ID: "vt", Zone: "zt", Tag: 100}},
		Hosts: testSDNHosts(),
	}
	e.sync(t, in, nil)
	in.Zones[0].Type = sdn.ZoneVXLAN
	wantActions(t, e.sync(t, in, nil),
		"delete vnet vt", "delete zone zt (type vlan -> vxlan)", "create zone zt (vxlan)", "create vnet vt in zt", "apply")
	zs, vs := e.state(t)
	if len(zs) != 1 || zs[0].Type != "vxlan" || len(vs) != 1 || vs[0].Zone != "zt" || vs[0].Tag != 100 {
		t.Fatalf("Proxmox holds %+v %+v", zs, vs)
	}

	// An operator's vnet in the zone blocks the change.
	if err := e.p.CreateSDNVnet(ctx, provider.SDNVnet{ID: "opv", Zone: "zt", Tag: 7}); err != nil {
		t.Fatal(err)
	}
	in.Zones[0].Type = sdn.ZoneSimple
	in.Vnets[0].Tag = 0
	acts, err := syncProxmoxSDN(ctx, e.p, in, nil)
	if err == nil || !strings.Contains(err.Error(), "zone zt: cannot change its type from vxlan to simple in Proxmox: vnets opv are not Moxxie's") {
		t.Fatalf("type change with an operator's vnet: %v", err)
	}
	// opv was pending from its creation, but it is not Moxxie's.
	wantActions(t, acts)
	if zs2, vs2 := e.state(t); zs2[0].Type != "vxlan" || len(vs2) != 2 {
		t.Fatalf("Proxmox holds %+v %+v", zs2, vs2)
	}
}

func TestSyncProxmoxSDN_HeldZoneAndTagChain(t *testing.T) {
	e := newSDNSim(t)
	in := sdn.Intent{
		Zones: []sdn.Zone{{ID: "vl", Type: sdn.ZoneVLAN}, {ID: "sz", Type: sdn.ZoneSimple}},
		Vnets: []sdn.Vnet{{ID: "va", Zone: "vl", Tag: 10}, {ID: "vb", Zone: "vl", Tag: 11}, {ID: "vc", Zone: "sz"}},
		Hosts: testSDNHosts(),
	}
	e.sync(t, in, nil)

	// A tag moves from vb to va while vb takes a new one: va's update
	// only succeeds once vb's is done.
	in.Vnets[0].Tag, in.Vnets[1].Tag = 11, 12
	wantActions(t, e.sync(t, in, nil), "update vnet vb: tag 11 -> 12", "update vnet va: tag 10 -> 11", "apply")

	// Hosts with different uplinks cannot share a Proxmox vlan zone: it
	// is left as it is, with its vnets, and the rest is synced.
	in.Hosts[1].Uplink = "vmbr1"
	in.Vnets = append(in.Vnets[:2], sdn.Vnet{ID: "vd", Zone: "sz"})
	acts, err := syncProxmoxSDN(context.Background(), e.p, in, nil)
	if err == nil || !strings.Contains(err.Error(), `zone vl: a Proxmox vlan zone has one bridge for all its nodes, and its hosts' uplinks are ["vmbr0" "vmbr1"]`) {
		t.Fatalf("vlan zone with two uplinks: %v", err)
	}
	wantActions(t, acts, "delete vnet vc", "create vnet vd in sz", "apply")
	_, vs := e.state(t)
	var ids []string
	for _, v := range vs {
		ids = append(ids, fmt.Sprintf("%s/%s/%d", v.ID, v.Zone, v.Tag))
	}
	if got := strings.Join(ids, " "); got != "va/vl/11 vb/vl/12 vd/sz/0" {
		t.Fatalf("vnets %s", got)
	}
}

func TestProxmoxSDNFor(t *testing.T) {
	hosts := []sdn.Host{
		{Name: "h1", Address: "fd00::1", Uplink: "br0", MTU: 9000},
		{Name: "h2", Address: "fd00::2", Uplink: "br0", MTU: 1600},
	}
	in := sdn.Intent{
		Zones: []sdn.Zone{
			{ID: "vx", Type: sdn.ZoneVXLAN, Port: 4789},
			{ID: "vl", Type: sdn.ZoneVLAN, Nodes: []string{"h1"}},
			{ID: "s", Type: sdn.ZoneSimple, MTU: 9000},
			{ID: "gone", Type: sdn.ZoneSimple, Nodes: []string{"h9"}},
		},
		Vnets: []sdn.Vnet{
			{ID: "v1", Zone: "s", Tag: 5, Alias: "Ünïcode & \"quotes\"\n"},
			{ID: "v2", Zone: "gone"},
			{ID: "v3", Zone: "vx", Tag: 9, Alias: strings.Repeat("x", 300)},
		},
		Hosts: hosts,
	}
	want, errs := proxmoxSDNFor(in)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	wantZones := map[string]provider.SDNZone{
		"vx": {ID: "vx", Type: "vxlan", MTU: 1530, Nodes: []string{"h1", "h2"}, Peers: []string{"fd00::1", "fd00::2"}},
		"vl": {ID: "vl", Type: "vlan", MTU: 9000, Nodes: []string{"h1"}, Bridge: "br0"},
		"s":  {ID: "s", Type: "simple", MTU: 9000, Nodes: []string{"h1", "h2"}},
	}
	if !reflect.DeepEqual(want.zones, wantZones) {
		t.Fatalf("zones\n got %+v\nwant %+v", want.zones, wantZones)
	}
	if v := want.vnets["v1"]; v.Tag != 0 || v.Alias != `moxxie:v1 _n_code _ _quotes__` {
		t.Fatalf("vnet v1 %+v", v)
	}
	if _, ok := want.vnets["v2"]; ok {
		t.Fatal("a vnet of a zone without hosts is written")
	}
	if v := want.vnets["v3"]; len(v.Alias) != 256 || !strings.HasPrefix(v.Alias, "moxxie:v3 xxx") {
		t.Fatalf("vnet v3 alias %q (%d)", v.Alias, len(v.Alias))
	}
}

// TestProxmoxSDNFor_MatchesCompile holds the mirror to the plans the
// agents apply: the same MTU on every vnet's bridge, the same VXLAN port,
// and peers that are the zone's hosts.
func TestProxmoxSDNFor_MatchesCompile(t *testing.T) {
	hosts := []sdn.Host{
		{Name: "pve1", Address: "10.0.0.11", Uplink: "eth0", MTU: 9000},
		{Name: "pve2", Address: "10.0.0.12", Uplink: "eth0", MTU: 1600},
		{Name: "pve3", Address: "10.0.0.13", Uplink: "eth0"},
	}
	in := sdn.Intent{
		Zones: []sdn.Zone{
			{ID: "sz", Type: sdn.ZoneSimple},
			{ID: "vl", Type: sdn.ZoneVLAN, Nodes: []string{"pve1", "pve2"}},
			{ID: "vx", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2"}, Port: 4790},
			{ID: "vy", Type: sdn.ZoneVXLAN, MTU: 1400},
		},
		Vnets: []sdn.Vnet{
			{ID: "v1", Zone: "sz"}, {ID: "v2", Zone: "vl", Tag: 10},
			{ID: "v3", Zone: "vx", Tag: 100}, {ID: "v4", Zone: "vy", Tag: 101},
		},
		Hosts: hosts,
	}
	plans, err := sdn.Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	want, errs := proxmoxSDNFor(in)
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	checked := 0
	for host, plan := range plans {
		for _, l := range plan.Links {
			v := want.vnets[l.Vnet]
			z := want.zones[v.Zone]
			if !slices.Contains(z.Nodes, host) {
				t.Errorf("host %s holds %s of zone %s, which Proxmox deploys on %v", host, l.Name, v.Zone, z.Nodes)
			}
			if l.MTU != z.MTU {
				t.Errorf("host %s: link %s has MTU %d, Proxmox zone %s %d", host, l.Name, l.MTU, z.ID, z.MTU)
			}
			if l.Kind == sdn.LinkVXLAN {
				if port := cmp.Or(z.Port, sdn.DefaultVXLANPort); l.Port != port {
					t.Errorf("host %s: %s has port %d, Proxmox %d", host, l.Name, l.Port, port)
				}
				for _, peer := range append([]string{l.Local}, l.Peers...) {
					if !slices.Contains(z.Peers, peer) {
						t.Errorf("host %s: %s has peer %s, not among Proxmox's %v", host, l.Name, peer, z.Peers)
					}
				}
				if len(l.Peers)+1 != len(z.Peers) {
					t.Errorf("host %s: %s has peers %v, Proxmox %v", host, l.Name, l.Peers, z.Peers)
				}
			}
			checked++
		}
	}
	if checked < 10 {
		t.Fatalf("only %d links checked", checked)
	}
}
