package agent

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/moxxie/moxxie/sdn"
)

// testHost is a namespace standing for a Proxmox host: eth0 on the
// underlay 192.0.2.0/24, managed by its own Kernel.
type testHost struct {
	ns    string
	addr  string
	k     *Kernel
	h     *netlink.Handle
	guest string // the guest namespace on its bridge
}

// underlay creates n hosts whose eth0 are joined by a bridge in a
// namespace of their own, addresses 192.0.2.1..n.
func underlay(t *testing.T, n int) []*testHost {
	t.Helper()
	u := newNS(t, "ul")
	ipn(t, u, "link", "add", "ul", "type", "bridge")
	ipn(t, u, "link", "set", "ul", "up")
	hosts := make([]*testHost, n)
	for i := range hosts {
		ns := newNS(t, fmt.Sprintf("h%d", i+1))
		port := fmt.Sprintf("p%d", i+1)
		addr := fmt.Sprintf("192.0.2.%d", i+1)
		ipn(t, u, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", ns)
		ipn(t, u, "link", "set", port, "master", "ul", "up")
		ipn(t, ns, "addr", "add", addr+"/24", "dev", "eth0")
		ipn(t, ns, "link", "set", "eth0", "up")
		k := newKernel(t, KernelConfig{Netns: ns, Management: "eth0", ProtectAddrs: addrs(addr)})
		hosts[i] = &testHost{ns: ns, addr: addr, k: k, h: handle(t, ns)}
	}
	return hosts
}

// vxlanPlan is the plan of hosts[i] for one vxlan vnet v1 spanning all
// hosts.
func vxlanPlan(hosts []*testHost, i, vni, mtu int) sdn.Plan {
	var peers []string
	for j, h := range hosts {
		if j != i {
			peers = append(peers, h.addr)
		}
	}
	return sdn.Plan{
		Host: fmt.Sprintf("h%d", i+1),
		Links: []sdn.Link{
			{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: mtu},
			{Name: "vxlan_v1", Kind: sdn.LinkVXLAN, Alias: "moxxie:v1", Vnet: "v1", Master: "v1",
				VNI: vni, Local: hosts[i].addr, Port: 4789, Peers: peers, MTU: mtu},
		},
	}
}

// applyAll applies each host's plan from planOf and returns the actions
// by host.
func applyAll(t *testing.T, hosts []*testHost, planOf func(i int) sdn.Plan) [][]string {
	t.Helper()
	out := make([][]string, len(hosts))
	for i, h := range hosts {
		out[i] = apply(t, h.k, planOf(i))
	}
	return out
}

// pingAll checks every guest reaches every other guest.
func pingAll(t *testing.T, hosts []*testHost) {
	t.Helper()
	for i, a := range hosts {
		for j := range hosts {
			if i != j {
				mustPing(t, a.guest, fmt.Sprintf("10.10.0.%d", j+1))
			}
		}
	}
}

// checkVXLANHost checks a host holds bridge v1 and vxlan_v1 as planned.
func checkVXLANHost(t *testing.T, hosts []*testHost, i, vni, mtu int) {
	t.Helper()
	h := hosts[i]
	br := link(t, h.h, "v1")
	if br.Type() != "bridge" || br.Attrs().Alias != "moxxie:v1" || br.Attrs().MTU != mtu || br.Attrs().Flags&net.FlagUp == 0 {
		t.Errorf("%s: v1 = %s alias %q mtu %d flags %v", h.ns, br.Type(), br.Attrs().Alias, br.Attrs().MTU, br.Attrs().Flags)
	}
	detail := ipn(t, h.ns, "-d", "link", "show", "v1")
	if !strings.Contains(detail, "forward_delay 0 ") || !strings.Contains(detail, "stp_state 0 ") {
		t.Errorf("%s: v1 should have stp off and forward delay 0:\n%s", h.ns, detail)
	}
	l := link(t, h.h, "vxlan_v1")
	vx, ok := l.(*netlink.Vxlan)
	if !ok {
		t.Fatalf("%s: vxlan_v1 is a %s", h.ns, l.Type())
	}
	if vx.VxlanId != vni || vx.Port != 4789 || !vx.Learning || vx.SrcAddr.String() != h.addr || vx.MTU != mtu {
		t.Errorf("%s: vxlan_v1 vni %d port %d learning %v local %s mtu %d", h.ns, vx.VxlanId, vx.Port, vx.Learning, vx.SrcAddr, vx.MTU)
	}
	if vx.MasterIndex != br.Attrs().Index || vx.Flags&net.FlagUp == 0 {
		t.Errorf("%s: vxlan_v1 master %d (v1 is %d) flags %v", h.ns, vx.MasterIndex, br.Attrs().Index, vx.Flags)
	}
	want := vxlanPlan(hosts, i, vni, mtu).Links[1].Peers
	if got := fdbPeers(t, h.ns, "vxlan_v1"); !slices.Equal(got, want) {
		t.Errorf("%s: fdb peers %v, want %v", h.ns, got, want)
	}
}

// TestKernel_VXLANThreeHosts applies a vxlan vnet on three hosts joined
// by an underlay; their guests reach each other. A second Apply changes
// nothing; a new VNI recreates the VXLAN devices; a new MTU is set in
// place.
func TestKernel_VXLANThreeHosts(t *testing.T) {
	needRoot(t)
	needVXLAN(t)
	hosts := underlay(t, 3)

	acts := applyAll(t, hosts, func(i int) sdn.Plan { return vxlanPlan(hosts, i, 100, 1450) })
	// New links are created complete: up, with MTU, alias and master.
	wantFirst := []string{"create bridge v1", "create vxlan vxlan_v1"}
	for i, a := range acts {
		want := slices.Clone(wantFirst)
		for _, p := range vxlanPlan(hosts, i, 100, 1450).Links[1].Peers {
			want = append(want, "add fdb "+p+" to vxlan_v1")
		}
		if !slices.Equal(a, want) {
			t.Errorf("host %d actions:\n got %q\nwant %q", i+1, a, want)
		}
	}
	for i, h := range hosts {
		checkVXLANHost(t, hosts, i, 100, 1450)
		h.guest = guest(t, h.ns, "tap1", "v1", fmt.Sprintf("10.10.0.%d/24", i+1), "")
	}
	pingAll(t, hosts)

	t.Run("SecondApplyNoAction", func(t *testing.T) {
		before := indexes(t, hosts, "v1", "vxlan_v1", "tap1")
		stops := make([]func() []netlink.LinkUpdate, len(hosts))
		for i, h := range hosts {
			stops[i] = events(t, h.ns)
		}
		acts := applyAll(t, hosts, func(i int) sdn.Plan { return vxlanPlan(hosts, i, 100, 1450) })
		for i, a := range acts {
			if len(a) != 0 {
				t.Errorf("host %d: second Apply took actions %q", i+1, a)
			}
			if ev := stops[i](); len(ev) != 0 {
				t.Errorf("host %d: second Apply caused link changes: %s", i+1, describe(ev))
			}
			drift, err := hosts[i].k.Verify(vxlanPlan(hosts, i, 100, 1450))
			if err != nil || len(drift) != 0 {
				t.Errorf("host %d: Verify = %q, %v; want no drift", i+1, drift, err)
			}
		}
		if after := indexes(t, hosts, "v1", "vxlan_v1", "tap1"); !slices.Equal(before, after) {
			t.Errorf("ifindexes changed: %v -> %v", before, after)
		}
	})

	t.Run("VNIChangeRecreates", func(t *testing.T) {
		before := indexes(t, hosts, "v1", "vxlan_v1", "tap1")
		acts := applyAll(t, hosts, func(i int) sdn.Plan { return vxlanPlan(hosts, i, 200, 1450) })
		for i, a := range acts {
			want := []string{"recreate vxlan_v1: vni 100 -> 200"}
			for _, p := range vxlanPlan(hosts, i, 200, 1450).Links[1].Peers {
				want = append(want, "add fdb "+p+" to vxlan_v1")
			}
			if !slices.Equal(a, want) {
				t.Errorf("host %d actions:\n got %q\nwant %q", i+1, a, want)
			}
			checkVXLANHost(t, hosts, i, 200, 1450)
		}
		after := indexes(t, hosts, "v1", "vxlan_v1", "tap1")
		for i := range hosts {
			if after[3*i] != before[3*i] || after[3*i+2] != before[3*i+2] {
				t.Errorf("host %d: bridge or guest port recreated: %v -> %v", i+1, before, after)
			}
			if after[3*i+1] == before[3*i+1] {
				t.Errorf("host %d: vxlan_v1 kept ifindex %d; want a new device", i+1, after[3*i+1])
			}
		}
		pingAll(t, hosts)
	})

	t.Run("MTUChangeInPlace", func(t *testing.T) {
		before := indexes(t, hosts, "v1", "vxlan_v1", "tap1")
		stop := events(t, hosts[0].ns)
		acts := applyAll(t, hosts, func(i int) sdn.Plan { return vxlanPlan(hosts, i, 200, 1400) })
		for i, a := range acts {
			want := []string{"set mtu of v1 to 1400", "set mtu of vxlan_v1 to 1400"}
			if !slices.Equal(a, want) {
				t.Errorf("host %d actions:\n got %q\nwant %q", i+1, a, want)
			}
			checkVXLANHost(t, hosts, i, 200, 1400)
		}
		for _, u := range stop() {
			if u.Header.Type == unix.RTM_DELLINK || u.Link.Attrs().Flags&net.FlagUp == 0 {
				t.Errorf("MTU change set a link down or deleted it: %s", describe([]netlink.LinkUpdate{u}))
			}
		}
		if after := indexes(t, hosts, "v1", "vxlan_v1", "tap1"); !slices.Equal(before, after) {
			t.Errorf("ifindexes changed: %v -> %v", before, after)
		}
		pingAll(t, hosts)
	})

	t.Run("PeerRemoved", func(t *testing.T) {
		plan := vxlanPlan(hosts, 0, 200, 1400)
		plan.Links[1].Peers = []string{"192.0.2.2"}
		got := apply(t, hosts[0].k, plan)
		if want := []string{"delete fdb 192.0.2.3 from vxlan_v1"}; !slices.Equal(got, want) {
			t.Errorf("actions %q, want %q", got, want)
		}
		if peers := fdbPeers(t, hosts[0].ns, "vxlan_v1"); !slices.Equal(peers, []string{"192.0.2.2"}) {
			t.Errorf("fdb peers %v", peers)
		}
	})

	t.Run("EmptyPlanDeletesManagedOnly", func(t *testing.T) {
		got := apply(t, hosts[0].k, sdn.Plan{Host: "h1", Links: []sdn.Link{}})
		if want := []string{"delete vxlan vxlan_v1", "delete bridge v1"}; !slices.Equal(got, want) {
			t.Errorf("actions %q, want %q", got, want)
		}
		for _, name := range []string{"eth0", "tap1", "lo"} {
			link(t, hosts[0].h, name)
		}
		if _, err := hosts[0].h.LinkByName("v1"); err == nil {
			t.Error("v1 still exists")
		}
	})
}

// indexes returns the ifindex of each named link on each host.
func indexes(t *testing.T, hosts []*testHost, names ...string) []int {
	t.Helper()
	var out []int
	for _, h := range hosts {
		for _, n := range names {
			out = append(out, link(t, h.h, n).Attrs().Index)
		}
	}
	return out
}

// TestKernel_UnmanagedLinks checks the agent never takes over or deletes
// a link without its alias, the management interface or a link holding a
// protected address.
func TestKernel_UnmanagedLinks(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "own")
	h := handle(t, ns)
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	ipn(t, ns, "addr", "add", "192.0.2.1/24", "dev", "eth0")
	ipn(t, ns, "link", "add", "mgmt1", "type", "bridge")
	ipn(t, ns, "addr", "add", "198.51.100.1/24", "dev", "mgmt1")
	ipn(t, ns, "link", "add", "v1", "type", "bridge") // named like a plan link, no alias
	ipn(t, ns, "link", "add", "keep0", "type", "bridge")
	ipn(t, ns, "link", "add", "stale0", "type", "bridge")
	ipn(t, ns, "link", "set", "stale0", "alias", "moxxie:gone")
	// Marked as Moxxie's, but protected: never deleted.
	ipn(t, ns, "link", "set", "eth0", "alias", "moxxie:eth0")
	ipn(t, ns, "link", "set", "mgmt1", "alias", "moxxie:mgmt1")
	k := newKernel(t, KernelConfig{Netns: ns, Management: "eth0", ProtectAddrs: addrs("198.51.100.1")})
	v1 := link(t, h, "v1")

	bridge := func(name string) sdn.Plan {
		return sdn.Plan{Host: "h", Links: []sdn.Link{{Name: name, Kind: sdn.LinkBridge, Alias: "moxxie:" + name, Vnet: name, MTU: 1500}}}
	}
	_, err := k.Apply(context.Background(), bridge("v1"))
	if !errors.Is(err, ErrUnmanaged) || !strings.Contains(err.Error(), `link "v1" exists and is not managed by moxxie`) {
		t.Fatalf("Apply over an unmanaged v1: err = %v; want ErrUnmanaged naming v1", err)
	}
	t.Logf("unmanaged collision: %v", err)
	if got := link(t, h, "v1"); got.Attrs().Index != v1.Attrs().Index || got.Attrs().Alias != "" || got.Attrs().Flags&net.FlagUp != 0 {
		t.Errorf("unmanaged v1 was touched: index %d alias %q flags %v", got.Attrs().Index, got.Attrs().Alias, got.Attrs().Flags)
	}
	if _, err := h.LinkByName("stale0"); err != nil {
		t.Errorf("a refused plan still deleted stale0: %v", err)
	}

	for _, name := range []string{"eth0", "mgmt1"} {
		_, err := k.Apply(context.Background(), bridge(name))
		if !errors.Is(err, ErrProtected) {
			t.Errorf("Apply naming %s: err = %v; want ErrProtected", name, err)
		}
		t.Logf("protected: %v", err)
	}

	acts := apply(t, k, sdn.Plan{Host: "h", Links: []sdn.Link{}})
	if want := []string{"delete bridge stale0"}; !slices.Equal(acts, want) {
		t.Errorf("empty plan: actions %q, want %q", acts, want)
	}
	for _, name := range []string{"eth0", "mgmt1", "v1", "keep0"} {
		link(t, h, name)
	}
	got := ipn(t, ns, "addr", "show", "dev", "eth0")
	if !strings.Contains(got, "192.0.2.1/24") {
		t.Errorf("eth0 lost its address:\n%s", got)
	}
}

// TestKernel_AddressesExact checks a managed bridge holds exactly the
// plan's addresses, keeping the kernel's IPv6 link-local one, and that a
// managed link of the wrong kind is recreated.
func TestKernel_AddressesExact(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "addr")
	h := handle(t, ns)
	k := newKernel(t, KernelConfig{Netns: ns})
	plan := sdn.Plan{Host: "h", Links: []sdn.Link{{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500,
		Addresses: []string{"10.1.0.1/24", "fd00:1::1/64"}}}}
	apply(t, k, plan)
	ipn(t, ns, "addr", "add", "10.9.9.9/24", "dev", "v1")
	ipn(t, ns, "addr", "del", "10.1.0.1/24", "dev", "v1")
	acts := apply(t, k, plan)
	if want := []string{"delete address 10.9.9.9/24 from v1", "add address 10.1.0.1/24 to v1"}; !slices.Equal(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
	got := ipn(t, ns, "addr", "show", "dev", "v1")
	for _, want := range []string{"10.1.0.1/24", "fd00:1::1/64", "fe80::"} {
		if !strings.Contains(got, want) {
			t.Errorf("v1 lacks %s:\n%s", want, got)
		}
	}
	if acts := apply(t, k, plan); len(acts) != 0 {
		t.Errorf("third Apply: %q", acts)
	}

	// A managed link of another kind under a plan name is recreated.
	ipn(t, ns, "link", "add", "v2", "type", "veth", "peer", "name", "v2p")
	ipn(t, ns, "link", "set", "v2", "alias", "moxxie:v2")
	plan.Links = append(plan.Links, sdn.Link{Name: "v2", Kind: sdn.LinkBridge, Alias: "moxxie:v2", Vnet: "v2", MTU: 1500})
	acts = apply(t, k, plan)
	if want := []string{"recreate v2: kind veth -> bridge"}; !slices.Equal(acts, want) {
		t.Errorf("actions %q, want %q", acts, want)
	}
	if l := link(t, h, "v2"); l.Type() != "bridge" {
		t.Errorf("v2 is a %s", l.Type())
	}
}

// TestKernel_VLAN applies a VLAN device on an uplink, where the kernel has
// 802.1Q devices.
func TestKernel_VLAN(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "vlan")
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	if out, err := runOut("ip", "-n", ns, "link", "add", "link", "eth0", "name", "vlchk", "type", "vlan", "id", "5"); err != nil {
		if strings.Contains(out, "Unknown device type") {
			t.Skipf("kernel test: this kernel has no 8021q VLAN devices (ip link add type vlan: %s)", strings.TrimSpace(out))
		}
		t.Fatalf("ip link add type vlan: %v: %s", err, out)
	}
	ipn(t, ns, "link", "del", "vlchk")
	h := handle(t, ns)
	k := newKernel(t, KernelConfig{Netns: ns, Management: "eth0"})
	plan := func(tag int) sdn.Plan {
		return sdn.Plan{Host: "h", Links: []sdn.Link{
			{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500},
			{Name: "eth0.100", Kind: sdn.LinkVLAN, Alias: "moxxie:v1", Vnet: "v1", Master: "v1", Parent: "eth0", VLAN: tag, MTU: 1500},
		}}
	}
	apply(t, k, plan(100))
	vl, ok := link(t, h, "eth0.100").(*netlink.Vlan)
	if !ok || vl.VlanId != 100 || vl.ParentIndex != link(t, h, "eth0").Attrs().Index || vl.MasterIndex != link(t, h, "v1").Attrs().Index {
		t.Fatalf("eth0.100 = %+v", vl)
	}
	if acts := apply(t, k, plan(100)); len(acts) != 0 {
		t.Errorf("second Apply: %q", acts)
	}
	acts := apply(t, k, plan(200))
	if len(acts) == 0 || acts[0] != "recreate eth0.100: vlan 100 -> 200" {
		t.Errorf("actions %q", acts)
	}
}

// sysctl reads a sysctl of namespace ns ("net.ipv4.conf.v1.forwarding").
func sysctl(t *testing.T, ns, name string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "ip", "netns", "exec", ns, "sysctl", "-n", name))
}

// TestKernel_Forwarding checks the bridges' forwarding sysctls follow
// their addresses, as ifupdown2 sets them, in a namespace that forwards by
// default: on for a bridge with addresses, off for one without. A value
// changed by hand is drift that Verify reports and Apply puts back.
func TestKernel_Forwarding(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "fwd")
	run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1", "net.ipv6.conf.all.forwarding=1")
	k := newKernel(t, KernelConfig{Netns: ns})
	plan := sdn.Plan{Host: "h", Links: []sdn.Link{
		{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500, Addresses: []string{"10.1.0.1/24"}},
		{Name: "v2", Kind: sdn.LinkBridge, Alias: "moxxie:v2", Vnet: "v2", MTU: 1500},
	}}
	acts := apply(t, k, plan)
	want := []string{"set ipv4 forwarding of v2 to 0", "set ipv6 forwarding of v2 to 0"}
	if got := acts[len(acts)-2:]; !slices.Equal(got, want) {
		t.Errorf("actions end in %q, want %q", got, want)
	}
	check := func(v1, v2 string) {
		t.Helper()
		for _, fam := range []string{"ipv4", "ipv6"} {
			if got := sysctl(t, ns, "net."+fam+".conf.v1.forwarding"); got != v1 {
				t.Errorf("%s forwarding of v1 = %s, want %s", fam, got, v1)
			}
			if got := sysctl(t, ns, "net."+fam+".conf.v2.forwarding"); got != v2 {
				t.Errorf("%s forwarding of v2 = %s, want %s", fam, got, v2)
			}
		}
	}
	check("1", "0")
	if acts := apply(t, k, plan); len(acts) != 0 {
		t.Errorf("second Apply: %q", acts)
	}

	run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv6.conf.v1.forwarding=0", "net.ipv4.conf.v2.forwarding=1")
	want = []string{"set ipv6 forwarding of v1 to 1", "set ipv4 forwarding of v2 to 0"}
	if drift, err := k.Verify(plan); err != nil || !slices.Equal(drift, want) {
		t.Errorf("Verify = %q, %v; want %q", drift, err, want)
	}
	if acts := apply(t, k, plan); !slices.Equal(acts, want) {
		t.Errorf("Apply = %q, want %q", acts, want)
	}
	check("1", "0")

	// Addresses gone: forwarding off.
	plan.Links[0].Addresses = nil
	want = []string{"delete address 10.1.0.1/24 from v1", "set ipv4 forwarding of v1 to 0", "set ipv6 forwarding of v1 to 0"}
	if acts := apply(t, k, plan); !slices.Equal(acts, want) {
		t.Errorf("Apply = %q, want %q", acts, want)
	}
	check("0", "0")
}

// TestKernel_FDBState checks forwarding entries in another state than
// `bridge fdb append ... self permanent` gives (an older agent's
// NUD_PERMANENT without NUD_NOARP) are drift, fixed in place.
func TestKernel_FDBState(t *testing.T) {
	needRoot(t)
	needVXLAN(t)
	ns := newNS(t, "fdb")
	h := handle(t, ns)
	k := newKernel(t, KernelConfig{Netns: ns})
	plan := sdn.Plan{Host: "h", Links: []sdn.Link{
		{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1450},
		{Name: "vxlan_v1", Kind: sdn.LinkVXLAN, Alias: "moxxie:v1", Vnet: "v1", Master: "v1",
			VNI: 100, Local: "192.0.2.1", Port: 4789, MTU: 1450},
	}}
	apply(t, k, plan)
	vx := link(t, h, "vxlan_v1")
	for _, peer := range []string{"192.0.2.2", "192.0.2.3"} {
		err := h.NeighAppend(&netlink.Neigh{LinkIndex: vx.Attrs().Index, Family: unix.AF_BRIDGE, State: netlink.NUD_PERMANENT,
			Flags: netlink.NTF_SELF, IP: net.ParseIP(peer).To4(), HardwareAddr: zeroMAC})
		if err != nil {
			t.Fatal(err)
		}
	}
	states := func() []int {
		t.Helper()
		ns, err := h.NeighList(vx.Attrs().Index, unix.AF_BRIDGE)
		if err != nil {
			t.Fatal(err)
		}
		var out []int
		for _, n := range ns {
			if slices.Equal(n.HardwareAddr, zeroMAC) {
				out = append(out, n.State)
			}
		}
		return out
	}
	if got := states(); !slices.Equal(got, []int{0x80, 0x80}) {
		t.Fatalf("states %#x, want 0x80 twice", got)
	}
	plan.Links[1].Peers = []string{"192.0.2.2", "192.0.2.3"}
	want := []string{"set state of fdb entries of vxlan_v1 to 0xc0 (was 0x80)"}
	if drift, err := k.Verify(plan); err != nil || !slices.Equal(drift, want) {
		t.Errorf("Verify = %q, %v; want %q", drift, err, want)
	}
	if acts := apply(t, k, plan); !slices.Equal(acts, want) {
		t.Errorf("Apply = %q, want %q", acts, want)
	}
	if got := states(); !slices.Equal(got, []int{0xc0, 0xc0}) {
		t.Errorf("states %#x, want 0xc0 twice", got)
	}
	if got := fdbPeers(t, ns, "vxlan_v1"); !slices.Equal(got, plan.Links[1].Peers) {
		t.Errorf("fdb peers %v", got)
	}
	if acts := apply(t, k, plan); len(acts) != 0 {
		t.Errorf("second Apply: %q", acts)
	}
}
