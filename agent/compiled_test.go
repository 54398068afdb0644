package agent

import (
	"fmt"
	"testing"

	"github.com/moxxie/moxxie/sdn"
)

// TestKernel_CompiledPlans applies what sdn.Compile makes of an intent
// with a vxlan vnet over three hosts and two simple vnets of different
// tenants: guests of the vxlan vnet reach each other across hosts, the
// tenants' simple vnets do not route to each other, and a second Apply
// changes nothing.
func TestKernel_CompiledPlans(t *testing.T) {
	needRoot(t)
	needVXLAN(t)
	needNFT(t)
	hosts := underlay(t, 3)
	in := sdn.Intent{
		Zones: []sdn.Zone{{ID: "zx", Type: sdn.ZoneVXLAN}, {ID: "zs", Type: sdn.ZoneSimple}},
		Vnets: []sdn.Vnet{
			{ID: "vx1", Zone: "zx", Tag: 100, Tenant: "a"},
			{ID: "s1", Zone: "zs", Tenant: "a"},
			{ID: "s2", Zone: "zs", Tenant: "b"},
		},
		Subnets: []sdn.Subnet{
			{ID: "n1", Vnet: "s1", PrefixID: "p1", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1", SNAT: true},
			{ID: "n2", Vnet: "s2", PrefixID: "p2", CIDR: "10.2.0.0/24", Gateway: "10.2.0.1"},
		},
	}
	for i, h := range hosts {
		run(t, "ip", "netns", "exec", h.ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
		in.Hosts = append(in.Hosts, sdn.Host{Name: fmt.Sprintf("h%d", i+1), Address: h.addr, Uplink: "eth0", Management: "eth0"})
	}
	plans, err := sdn.Compile(in)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	for i, h := range hosts {
		apply(t, h.k, plans[fmt.Sprintf("h%d", i+1)])
		h.guest = guest(t, h.ns, "tap1", "vx1", fmt.Sprintf("10.10.0.%d/24", i+1), "")
	}
	pingAll(t, hosts)

	g1 := guest(t, hosts[0].ns, "tap2", "s1", "10.1.0.2/24", "10.1.0.1")
	g2 := guest(t, hosts[0].ns, "tap3", "s2", "10.2.0.2/24", "10.2.0.1")
	mustPing(t, g1, "10.1.0.1")
	mustPing(t, g2, "10.2.0.1")
	mustNotPing(t, g1, "10.2.0.2")
	mustNotPing(t, g2, "10.1.0.2")

	for i, h := range hosts {
		if acts := apply(t, h.k, plans[fmt.Sprintf("h%d", i+1)]); len(acts) != 0 {
			t.Errorf("h%d: second Apply: %q", i+1, acts)
		}
	}

	in.Allows = []sdn.Allow{{ID: "a1", From: "tenant:a", To: "tenant:b"}}
	if plans, err = sdn.Compile(in); err != nil {
		t.Fatalf("Compile: %v", err)
	}
	apply(t, hosts[0].k, plans["h1"])
	mustPing(t, g1, "10.2.0.2")
	mustNotPing(t, g2, "10.1.0.2")
}
