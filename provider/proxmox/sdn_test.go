package proxmox

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/moxxie/moxxie/provider"
)

func TestSim_SDN(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	p := e.p
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}

	zones := []provider.SDNZone{
		{ID: "s1", Type: "simple", MTU: 1500, Nodes: []string{"pve2", "pve1"}},
		{ID: "vl1", Type: "vlan", Bridge: "vmbr0"},
		{ID: "vx1", Type: "vxlan", MTU: 1450, Peers: []string{"10.0.0.12", "10.0.0.11"}, Port: 4790},
	}
	for _, z := range zones {
		must(p.CreateSDNZone(ctx, z))
	}
	vnets := []provider.SDNVnet{
		{ID: "v1", Zone: "s1", Alias: "moxxie:v1 tenant acme"},
		{ID: "v2", Zone: "vl1", Tag: 20},
		{ID: "v3", Zone: "vx1", Tag: 100000},
	}
	for _, v := range vnets {
		must(p.CreateSDNVnet(ctx, v))
	}

	gotZones, err := p.SDNZones(ctx)
	must(err)
	wantZones := []provider.SDNZone{
		{ID: "s1", Type: "simple", MTU: 1500, Nodes: []string{"pve1", "pve2"}, Pending: "new"},
		{ID: "vl1", Type: "vlan", Bridge: "vmbr0", Pending: "new"},
		{ID: "vx1", Type: "vxlan", MTU: 1450, Peers: []string{"10.0.0.11", "10.0.0.12"}, Port: 4790, Pending: "new"},
	}
	if !reflect.DeepEqual(gotZones, wantZones) {
		t.Fatalf("zones\n got %+v\nwant %+v", gotZones, wantZones)
	}
	gotVnets, err := p.SDNVnets(ctx)
	must(err)
	for i := range vnets {
		vnets[i].Pending = "new"
	}
	if !reflect.DeepEqual(gotVnets, vnets) {
		t.Fatalf("vnets\n got %+v\nwant %+v", gotVnets, vnets)
	}

	st := e.waitFor(t)(p.ApplySDN(ctx))
	if st.Type != "reloadnetworkall" || !st.OK {
		t.Fatalf("apply task %+v", st)
	}
	gotZones, err = p.SDNZones(ctx)
	must(err)
	for _, z := range gotZones {
		if z.Pending != "" {
			t.Fatalf("zone %s still pending after apply: %+v", z.ID, z)
		}
	}

	// An update sends what differs and deletes what the zone leaves
	// empty; one with nothing to change sends nothing.
	puts := e.count("PUT", "/cluster/sdn/zones/s1")
	must(p.UpdateSDNZone(ctx, provider.SDNZone{ID: "s1", Type: "simple", MTU: 1500, Nodes: []string{"pve1", "pve2"}}))
	if n := e.count("PUT", "/cluster/sdn/zones/s1"); n != puts {
		t.Fatalf("an update without change sent %d PUTs", n-puts)
	}
	must(p.UpdateSDNZone(ctx, provider.SDNZone{ID: "s1", Type: "simple", Nodes: []string{"pve3"}}))
	must(p.UpdateSDNZone(ctx, provider.SDNZone{ID: "vx1", Type: "vxlan", MTU: 1400, Peers: []string{"10.0.0.13"}}))
	must(p.UpdateSDNVnet(ctx, provider.SDNVnet{ID: "v1", Zone: "s1"}))
	must(p.UpdateSDNVnet(ctx, provider.SDNVnet{ID: "v2", Zone: "vl1", Tag: 21, Alias: "moxxie:v2"}))
	must(p.DeleteSDNVnet(ctx, "v3"))

	gotZones, err = p.SDNZones(ctx)
	must(err)
	wantZones = []provider.SDNZone{
		{ID: "s1", Type: "simple", Nodes: []string{"pve3"}, Pending: "changed"},
		{ID: "vl1", Type: "vlan", Bridge: "vmbr0"},
		{ID: "vx1", Type: "vxlan", MTU: 1400, Peers: []string{"10.0.0.13"}, Pending: "changed"},
	}
	if !reflect.DeepEqual(gotZones, wantZones) {
		t.Fatalf("zones after update\n got %+v\nwant %+v", gotZones, wantZones)
	}
	gotVnets, err = p.SDNVnets(ctx)
	must(err)
	wantVnets := []provider.SDNVnet{
		{ID: "v1", Zone: "s1", Pending: "changed"},
		{ID: "v2", Zone: "vl1", Tag: 21, Alias: "moxxie:v2", Pending: "changed"},
		// Deleted but still running: listed with its running values.
		{ID: "v3", Zone: "vx1", Tag: 100000, Pending: "deleted"},
	}
	if !reflect.DeepEqual(gotVnets, wantVnets) {
		t.Fatalf("vnets after update\n got %+v\nwant %+v", gotVnets, wantVnets)
	}
	e.waitFor(t)(p.ApplySDN(ctx))
	gotVnets, err = p.SDNVnets(ctx)
	must(err)
	if len(gotVnets) != 2 || gotVnets[0].Pending != "" || gotVnets[1].Pending != "" {
		t.Fatalf("vnets after the second apply: %+v", gotVnets)
	}
}

func TestSim_SDNErrors(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	p := e.p
	if err := p.CreateSDNZone(ctx, provider.SDNZone{ID: "z1", Type: "vlan", Bridge: "vmbr0"}); err != nil {
		t.Fatal(err)
	}
	if err := p.CreateSDNVnet(ctx, provider.SDNVnet{ID: "v1", Zone: "z1", Tag: 10}); err != nil {
		t.Fatal(err)
	}
	posts := e.count("POST", "/cluster/sdn/zones")
	for _, tc := range []struct {
		name string
		err  error
		want error
	}{
		{"vlan zone without bridge", p.CreateSDNZone(ctx, provider.SDNZone{ID: "z2", Type: "vlan"}), provider.ErrRejected},
		{"vxlan zone without peers", p.CreateSDNZone(ctx, provider.SDNZone{ID: "z2", Type: "vxlan"}), provider.ErrRejected},
		{"peers in a simple zone", p.CreateSDNZone(ctx, provider.SDNZone{ID: "z2", Type: "simple", Peers: []string{"10.0.0.1"}}), provider.ErrRejected},
		{"existing zone", p.CreateSDNZone(ctx, provider.SDNZone{ID: "z1", Type: "simple"}), provider.ErrRejected},
		{"type change", p.UpdateSDNZone(ctx, provider.SDNZone{ID: "z1", Type: "simple"}), provider.ErrRejected},
		{"missing zone", p.UpdateSDNZone(ctx, provider.SDNZone{ID: "nozone", Type: "simple"}), provider.ErrNotFound},
		{"zone in use", p.DeleteSDNZone(ctx, "z1"), provider.ErrRejected},
		{"same tag", p.CreateSDNVnet(ctx, provider.SDNVnet{ID: "v2", Zone: "z1", Tag: 10}), provider.ErrRejected},
		{"missing vnet", p.DeleteSDNVnet(ctx, "novnet"), provider.ErrNotFound},
		{"vnet without zone", p.CreateSDNVnet(ctx, provider.SDNVnet{ID: "v3"}), provider.ErrRejected},
	} {
		if !errors.Is(tc.err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, tc.err, tc.want)
		}
	}
	// Only the creation of an existing zone reached Proxmox; the others
	// were refused before sending.
	if n := e.count("POST", "/cluster/sdn/zones") - posts; n != 1 {
		t.Errorf("%d zone creations sent, want 1 (the existing zone)", n)
	}
}
