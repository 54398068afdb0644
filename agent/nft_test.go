package agent

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/sdn"
)

func TestRenderFirewall(t *testing.T) {
	fw := sdn.Firewall{
		Bridges: []string{"v1", "v2", "v3", "v4", "v5"},
		Groups:  [][]string{{"v1", "v2"}, {"v3", "v4"}},
		Allowed: []sdn.Pair{{In: "v1", Out: "v3"}, {In: "v5", Out: "v1"}},
		SNAT:    []sdn.SNAT{{Source: "10.1.0.0/24", Out: "eth0"}, {Source: "fd00:1::5/64", Out: "bond0"}},
	}
	got, err := renderFirewall(fw)
	if err != nil {
		t.Fatal(err)
	}
	want := `table inet moxxie {
	comment "managed by moxxie-agent"
	set vnets {
		type ifname
		elements = { "v1", "v2", "v3", "v4", "v5" }
	}

	set g0 {
		type ifname
		elements = { "v1", "v2" }
	}

	set g1 {
		type ifname
		elements = { "v3", "v4" }
	}

	set allowed {
		type ifname . ifname
		elements = { "v1" . "v1", "v1" . "v3", "v2" . "v2", "v3" . "v3", "v4" . "v4", "v5" . "v1", "v5" . "v5" }
	}

	chain forward {
		type filter hook forward priority filter; policy accept;
		ct state established,related accept
		iifname . oifname @allowed accept
		iifname @g0 oifname @g0 accept
		iifname @g1 oifname @g1 accept
		iifname @vnets oifname @vnets drop
	}

	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		ip saddr 10.1.0.0/24 oifname "eth0" masquerade
		ip6 saddr fd00:1::/64 oifname "bond0" masquerade
	}
}
`
	if got != want {
		t.Errorf("render:\n%s\nwant:\n%s", got, want)
	}
}

func TestRenderFirewall_Invalid(t *testing.T) {
	for _, fw := range []sdn.Firewall{
		{Bridges: []string{`v"1`}},
		{Bridges: []string{"v1"}, Allowed: []sdn.Pair{{In: "v1", Out: ""}}},
		{Bridges: []string{"v1", "v2"}, Groups: [][]string{{"v1", "v 2"}}},
		{SNAT: []sdn.SNAT{{Source: "10.1.0.0", Out: "eth0"}}},
		{SNAT: []sdn.SNAT{{Source: "10.1.0.0/24", Out: "eth0; drop"}}},
	} {
		if _, err := renderFirewall(fw); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("%+v: err = %v, want ErrInvalidPlan", fw, err)
		}
	}
}

func TestSameTable(t *testing.T) {
	listed := "table inet moxxie {\n\tset vnets {\n\t\ttype ifname\n\t\telements = { \"v1\",\n\t\t\t     \"v2\" }\n\t}\n\n}\n"
	rendered := "table inet moxxie {\n\tset vnets {\n\t\ttype ifname\n\t\telements = { \"v1\", \"v2\" }\n\t}\n}\n"
	if !sameTable(listed, rendered) {
		t.Error("tables differing only in whitespace compare unequal")
	}
	if sameTable(listed, strings.Replace(rendered, "v2", "v3", 1)) {
		t.Error("different tables compare equal")
	}
	// nft lists a large set's elements in its own order.
	listed = "set g0 {\n\t\ttype ifname\n\t\telements = { \"v2\",\n\t\t\t\"v10\", \"v1\" }\n\t}\n\tset allowed {\n\t\telements = { \"v2\" . \"v2\", \"v1\" . \"v1\" }\n\t}"
	rendered = "set g0 {\n\t\ttype ifname\n\t\telements = { \"v1\", \"v10\", \"v2\" }\n\t}\n\tset allowed {\n\t\telements = { \"v1\" . \"v1\", \"v2\" . \"v2\" }\n\t}"
	if !sameTable(listed, rendered) {
		t.Error("tables differing only in the order of set elements compare unequal")
	}
	if sameTable(listed, strings.Replace(rendered, `"v1" . "v1"`, `"v1" . "v2"`, 1)) {
		t.Error("different set elements compare equal")
	}
}

// twoTenants is a host with three simple-zone vnets, each with a gateway
// and a guest, and ip_forward on: v1 and v2 of tenant a, v3 of tenant b.
type twoTenants struct {
	ns         string
	k          *Kernel
	g1, g2, g3 string
}

func newTwoTenants(t *testing.T) *twoTenants {
	t.Helper()
	ns := newNS(t, "fw")
	ipn(t, ns, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0p")
	run(t, "ip", "netns", "exec", ns, "sysctl", "-q", "-w", "net.ipv4.ip_forward=1")
	k := newKernel(t, KernelConfig{Netns: ns, Management: "eth0"})
	tt := &twoTenants{ns: ns, k: k}
	apply(t, k, tt.plan(nil))
	tt.g1 = guest(t, ns, "tap1", "v1", "10.1.0.2/24", "10.1.0.1")
	tt.g2 = guest(t, ns, "tap2", "v2", "10.2.0.2/24", "10.2.0.1")
	tt.g3 = guest(t, ns, "tap3", "v3", "10.3.0.2/24", "10.3.0.1")
	return tt
}

func (tt *twoTenants) plan(fw *sdn.Firewall) sdn.Plan {
	p := sdn.Plan{Host: "h", Links: []sdn.Link{
		{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500, Addresses: []string{"10.1.0.1/24"}},
		{Name: "v2", Kind: sdn.LinkBridge, Alias: "moxxie:v2", Vnet: "v2", MTU: 1500, Addresses: []string{"10.2.0.1/24"}},
		{Name: "v3", Kind: sdn.LinkBridge, Alias: "moxxie:v3", Vnet: "v3", MTU: 1500, Addresses: []string{"10.3.0.1/24"}},
	}}
	if fw != nil {
		p.Firewall = *fw
	}
	return p
}

// TestKernel_FirewallIsolation routes between two tenants' vnets on one
// host: open without a firewall; with one, open within tenant a's group
// and dropped between the tenants; open again in the directions Allowed
// names.
func TestKernel_FirewallIsolation(t *testing.T) {
	needRoot(t)
	needNFT(t)
	tt := newTwoTenants(t)
	mustPing(t, tt.g1, "10.3.0.2") // routed, no firewall yet

	fw := sdn.Firewall{
		Bridges: []string{"v1", "v2", "v3"},
		Groups:  [][]string{{"v1", "v2"}},
		SNAT:    []sdn.SNAT{{Source: "10.1.0.0/24", Out: "eth0"}},
	}
	if acts := apply(t, tt.k, tt.plan(&fw)); !slices.Equal(acts, []string{"create firewall"}) {
		t.Errorf("actions %q", acts)
	}
	mustPing(t, tt.g1, "10.1.0.1") // its own gateway
	mustPing(t, tt.g1, "10.2.0.2") // same tenant, both ways
	mustPing(t, tt.g2, "10.1.0.2")
	for _, g := range []string{tt.g1, tt.g2} {
		mustNotPing(t, g, "10.3.0.2")
	}
	mustNotPing(t, tt.g3, "10.1.0.2")
	mustNotPing(t, tt.g3, "10.2.0.2")
	listing := run(t, "ip", "netns", "exec", tt.ns, "nft", "list", "table", "inet", "moxxie")
	for _, want := range []string{`ip saddr 10.1.0.0/24 oifname "eth0" masquerade`, "iifname @g0 oifname @g0 accept"} {
		if !strings.Contains(listing, want) {
			t.Errorf("no %q in:\n%s", want, listing)
		}
	}
	if acts := apply(t, tt.k, tt.plan(&fw)); len(acts) != 0 {
		t.Errorf("second Apply: %q", acts)
	}
	// A new agent process reads the table as nft lists it and finds it
	// equal to its rendering.
	fresh := newKernel(t, KernelConfig{Netns: tt.ns, Management: "eth0"})
	if drift, err := fresh.Verify(tt.plan(&fw)); err != nil || len(drift) != 0 {
		t.Errorf("Verify from a fresh Kernel = %q, %v", drift, err)
	}

	fw.Allowed = []sdn.Pair{{In: "v3", Out: "v1"}}
	if acts := apply(t, tt.k, tt.plan(&fw)); !slices.Equal(acts, []string{"replace firewall"}) {
		t.Errorf("actions %q", acts)
	}
	mustPing(t, tt.g3, "10.1.0.2") // v3 -> v1 allowed, replies established
	mustNotPing(t, tt.g1, "10.3.0.2")
	mustNotPing(t, tt.g3, "10.2.0.2") // not the rest of the group

	fw.Allowed = append(fw.Allowed, sdn.Pair{In: "v1", Out: "v3"})
	apply(t, tt.k, tt.plan(&fw))
	mustPing(t, tt.g3, "10.1.0.2")
	mustPing(t, tt.g1, "10.3.0.2")
	mustNotPing(t, tt.g2, "10.3.0.2")

	// A table edited or deleted by hand is drift. Apply trusts the table
	// it last wrote and does not list it again; Verify (which the agent
	// runs before each Apply and on every resync) lists it, reports the
	// drift, and the next Apply puts the table back.
	run(t, "ip", "netns", "exec", tt.ns, "nft", "flush", "chain", "inet", "moxxie", "forward")
	if acts := apply(t, tt.k, tt.plan(&fw)); len(acts) != 0 {
		t.Errorf("Apply after a hand edit, before Verify: actions %q, want none (it does not list the table)", acts)
	}
	if drift, err := tt.k.Verify(tt.plan(&fw)); err != nil || !slices.Equal(drift, []string{"replace firewall"}) {
		t.Errorf("Verify after a hand edit = %q, %v", drift, err)
	}
	if acts := apply(t, tt.k, tt.plan(&fw)); !slices.Equal(acts, []string{"replace firewall"}) {
		t.Errorf("Apply after a hand edit: actions %q", acts)
	}
	mustNotPing(t, tt.g2, "10.3.0.2")
	run(t, "ip", "netns", "exec", tt.ns, "nft", "delete", "table", "inet", "moxxie")
	if drift, err := tt.k.Verify(tt.plan(&fw)); err != nil || !slices.Equal(drift, []string{"create firewall"}) {
		t.Errorf("Verify after the table was deleted = %q, %v", drift, err)
	}
	if acts := apply(t, tt.k, tt.plan(&fw)); !slices.Equal(acts, []string{"create firewall"}) {
		t.Errorf("Apply after the table was deleted: actions %q", acts)
	}
	mustNotPing(t, tt.g2, "10.3.0.2")

	if acts := apply(t, tt.k, tt.plan(nil)); !slices.Equal(acts, []string{"delete firewall"}) {
		t.Errorf("empty firewall: actions %q", acts)
	}
	if out, err := runOut("ip", "netns", "exec", tt.ns, "nft", "list", "table", "inet", "moxxie"); err == nil {
		t.Errorf("table still there:\n%s", out)
	}
	mustPing(t, tt.g2, "10.3.0.2")
}

// TestKernel_NoNFT checks a missing nft fails only a plan with a
// firewall.
func TestKernel_NoNFT(t *testing.T) {
	needRoot(t)
	ns := newNS(t, "nonft")
	k := newKernel(t, KernelConfig{Netns: ns, NFT: []string{"/nonexistent/nft"}})
	plan := sdn.Plan{Host: "h", Links: []sdn.Link{{Name: "v1", Kind: sdn.LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500}}}
	apply(t, k, plan)
	plan.Firewall.Bridges = []string{"v1"}
	if _, err := k.Apply(t.Context(), plan); !errors.Is(err, ErrNoNFT) {
		t.Errorf("err = %v, want ErrNoNFT", err)
	}
}
