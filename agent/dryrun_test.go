package agent

import (
	"slices"
	"testing"

	"github.com/moxxie/moxxie/sdn"
)

// dryPlan is a host with a vxlan vnet holding a gateway, and a firewall.
func dryPlan(vni int) sdn.Plan {
	return sdn.Plan{Host: "h", Links: []sdn.Link{
		{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1450, Addresses: []string{"10.1.0.1/24"}},
		{Name: "vxlan_v1", Kind: sdn.LinkVXLAN, Alias: "moxxie:v1", Vnet: "v1", Master: "v1",
			VNI: vni, Local: "192.0.2.1", Port: 4789, Peers: []string{"192.0.2.2", "192.0.2.3"}, MTU: 1450},
	}, Firewall: sdn.Firewall{Bridges: []string{"v1"}}}
}

// TestKernel_DryRun checks a dry-run Kernel changes nothing and returns
// exactly the actions a real Apply then takes.
func TestKernel_DryRun(t *testing.T) {
	needRoot(t)
	needVXLAN(t)
	needNFT(t)
	ns := newNS(t, "dry")
	h := handle(t, ns)
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	ipn(t, ns, "addr", "add", "192.0.2.1/24", "dev", "eth0")
	dry := newKernel(t, KernelConfig{Netns: ns, DryRun: true})
	real := newKernel(t, KernelConfig{Netns: ns})

	linksBefore, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"create bridge v1", "add address 10.1.0.1/24 to v1", "create vxlan vxlan_v1",
		"add fdb 192.0.2.2 to vxlan_v1", "add fdb 192.0.2.3 to vxlan_v1",
		"set ipv4 forwarding of v1 to 1", "set ipv6 forwarding of v1 to 1",
		"create firewall",
	}
	got := apply(t, dry, dryPlan(100))
	if !slices.Equal(got, want) {
		t.Errorf("dry run:\n got %q\nwant %q", got, want)
	}
	linksAfter, err := h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	if len(linksAfter) != len(linksBefore) {
		t.Errorf("dry run changed the links: %d -> %d", len(linksBefore), len(linksAfter))
	}
	if out, err := runOut("ip", "netns", "exec", ns, "nft", "list", "table", "inet", "moxxie"); err == nil {
		t.Errorf("dry run created the firewall:\n%s", out)
	}
	if got := apply(t, real, dryPlan(100)); !slices.Equal(got, want) {
		t.Errorf("real Apply after the dry run:\n got %q\nwant %q", got, want)
	}

	// A new VNI: the dry run names the recreation and leaves the device.
	vx := link(t, h, "vxlan_v1").Attrs().Index
	want = []string{
		"recreate vxlan_v1: vni 100 -> 200", "add fdb 192.0.2.2 to vxlan_v1", "add fdb 192.0.2.3 to vxlan_v1",
	}
	if got := apply(t, dry, dryPlan(200)); !slices.Equal(got, want) {
		t.Errorf("dry run:\n got %q\nwant %q", got, want)
	}
	if l := link(t, h, "vxlan_v1"); l.Attrs().Index != vx {
		t.Errorf("dry run recreated vxlan_v1")
	}
	if drift, err := real.Verify(dryPlan(200)); err != nil || !slices.Equal(drift, want) {
		t.Errorf("Verify = %q, %v; want %q", drift, err, want)
	}
	if got := apply(t, real, dryPlan(200)); !slices.Equal(got, want) {
		t.Errorf("real Apply:\n got %q\nwant %q", got, want)
	}
	if got := apply(t, dry, sdn.Plan{Host: "h", Links: []sdn.Link{}}); !slices.Equal(got, []string{"delete vxlan vxlan_v1", "delete bridge v1", "delete firewall"}) {
		t.Errorf("dry run of an empty plan: %q", got)
	}
	link(t, h, "v1")
}
