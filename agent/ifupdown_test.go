package agent_test

// This file holds the agent's yardstick: Proxmox VE's own way of applying
// SDN. Proxmox renders /etc/network/interfaces.d/sdn and runs ifupdown2's
// `ifreload -a`; renderInterfaces renders a plan the same way, and the tests
// below apply one plan with ifupdown2 in one network namespace and with the
// agent in another, read both back over netlink and demand the same links.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/moxxie/moxxie/agent"
	"github.com/moxxie/moxxie/sdn"
)

// ifupdownOptions says how renderInterfaces renders what a plan leaves open.
type ifupdownOptions struct {
	// Version is the SDN configuration version Proxmox writes as the
	// first line ("#version:N").
	Version uint64
	// LocalTunnelIP writes `vxlan-local-tunnelip` on VXLAN devices that
	// know their local address. Proxmox's VXLAN zone never writes it (it
	// uses the local address only to drop itself from the peers); its
	// EVPN zone does. Off, ifupdown2 leaves the device without a local
	// address, while the agent always sets the plan's.
	LocalTunnelIP bool
	// VLANBridge is the bridge of a VLAN zone (Proxmox's zone option
	// "bridge"), not VLAN-aware, whose only port is the plan's VLAN
	// parent; "" means vmbr0.
	VLANBridge string
}

// renderInterfaces renders plan as Proxmox VE's SDN writes
// /etc/network/interfaces.d/sdn (pve-network, PVE::Network::SDN::Zones
// generate_etc_network_config and the zone plugins' generate_sdn_config):
// a version line, then one "auto X / iface X" stanza per interface sorted
// by name, options tab-indented in the plugins' order.
//
// A bridge without ports is a simple zone's vnet; one with a VXLAN port is
// a VXLAN zone's; one with a VLAN port a VLAN zone's on a non-VLAN-aware
// bridge, which Proxmox builds as vnet <- ln_/pr_ veth pair <- bridge
// <VLANBridge>v<tag> <- <uplink>.<tag>. The plan's MTU is always written, as
// Proxmox does for a zone with an MTU set. Not rendered: the vnet's alias
// (the plan's Alias is the agent's mark, not the vnet's description), the
// simple zone's hwaddress (Proxmox's random MAC) and its SNAT post-up
// iptables lines (the agent's firewall does SNAT).
func renderInterfaces(plan sdn.Plan, o ifupdownOptions) string {
	if o.VLANBridge == "" {
		o.VLANBridge = "vmbr0"
	}
	config := map[string][]string{}
	// add keeps the first definition of an interface, as the plugins'
	// `push(...) if !$config->{$iface}` do.
	add := func(name string, opts ...string) {
		if _, ok := config[name]; !ok {
			config[name] = opts
		}
	}
	ports := map[string][]sdn.Link{}
	for _, l := range plan.Links {
		if l.Master != "" {
			ports[l.Master] = append(ports[l.Master], l)
		}
	}
	mtu := func(l sdn.Link) []string {
		if l.MTU == 0 {
			return nil
		}
		return []string{"mtu " + strconv.Itoa(l.MTU)}
	}
	for _, l := range plan.Links {
		switch l.Kind {
		case sdn.LinkBridge:
			var opts []string
			v4, v6 := false, false
			for _, a := range l.Addresses {
				opts = append(opts, "address "+a)
				p, err := netip.ParsePrefix(a)
				if err != nil {
					continue
				}
				if p.Addr().Is4() {
					v4 = true
					if p.Bits() == 32 {
						// SimplePlugin routes a /32 subnet to its vnet.
						opts = append(opts, "up ip route add "+p.Masked().String()+" dev "+l.Name)
					}
				} else {
					v6 = true
				}
			}
			ps := ports[l.Name]
			var names []string
			for _, p := range ps {
				switch p.Kind {
				case sdn.LinkVLAN:
					names = append(names, "ln_"+l.Name)
				default:
					names = append(names, p.Name)
				}
			}
			if len(names) == 0 {
				names = []string{"none"}
			}
			opts = append(opts, "bridge_ports "+strings.Join(names, " "), "bridge_stp off", "bridge_fd 0")
			opts = append(opts, mtu(l)...)
			if len(ps) == 0 {
				// SimplePlugin: forwarding on for a vnet with a gateway.
				if v4 {
					opts = append(opts, "ip-forward on")
				}
				if v6 {
					opts = append(opts, "ip6-forward on")
				}
			}
			add(l.Name, opts...)
		case sdn.LinkVXLAN:
			opts := []string{"vxlan-id " + strconv.Itoa(l.VNI)}
			if o.LocalTunnelIP && l.Local != "" {
				opts = append(opts, "vxlan-local-tunnelip "+l.Local)
			}
			for _, p := range l.Peers {
				if p != l.Local {
					opts = append(opts, "vxlan_remoteip "+p)
				}
			}
			if l.Port != 0 && l.Port != 4789 {
				opts = append(opts, "vxlan-port "+strconv.Itoa(l.Port))
			}
			opts = append(opts, mtu(l)...)
			add(l.Name, opts...)
		case sdn.LinkVLAN:
			// VlanPlugin, bridge not VLAN-aware and not OVS.
			ln, pr := "ln_"+l.Master, "pr_"+l.Master
			add(ln, append([]string{"link-type veth", "veth-peer-name " + pr}, mtu(l)...)...)
			add(pr, append([]string{"link-type veth", "veth-peer-name " + ln}, mtu(l)...)...)
			// "bridge_ports $bridge_ports $vnet_uplinkpeer" where
			// $bridge_ports is " <port>.<tag>" per port of the bridge: two
			// spaces, as Proxmox writes it.
			bridgePorts := " " + l.Parent + "." + strconv.Itoa(l.VLAN)
			add(o.VLANBridge+"v"+strconv.Itoa(l.VLAN),
				append([]string{"bridge_ports " + bridgePorts + " " + pr, "bridge_stp off", "bridge_fd 0"}, mtu(l)...)...)
		}
	}
	names := make([]string, 0, len(config))
	for name := range config {
		names = append(names, name)
	}
	slices.Sort(names)
	var b strings.Builder
	fmt.Fprintf(&b, "#version:%d\n", o.Version)
	for _, name := range names {
		fmt.Fprintf(&b, "\nauto %s\niface %s\n", name, name)
		for _, opt := range config[name] {
			fmt.Fprintf(&b, "\t%s\n", opt)
		}
	}
	return b.String()
}

// Plans built by hand the way sdn.Compile builds them: bridge = vnet ID,
// VXLAN device vxlan_<vnet>, alias AliasPrefix + vnet, bridges sorted by
// name, then their ports sorted by name.

func simpleVnet(id string, mtu int, addrs ...string) []sdn.Link {
	return []sdn.Link{{Name: id, Kind: sdn.LinkBridge, Alias: sdn.AliasPrefix + id, Vnet: id, MTU: mtu, Addresses: addrs}}
}

func vxlanVnet(id string, vni int, local string, port, mtu int, peers ...string) []sdn.Link {
	return []sdn.Link{
		{Name: id, Kind: sdn.LinkBridge, Alias: sdn.AliasPrefix + id, Vnet: id, MTU: mtu},
		{Name: "vxlan_" + id, Kind: sdn.LinkVXLAN, Alias: sdn.AliasPrefix + id, Vnet: id, Master: id,
			VNI: vni, Local: local, Port: port, Peers: peers, MTU: mtu},
	}
}

func vlanVnet(id string, tag int, uplink string, mtu int) []sdn.Link {
	return []sdn.Link{
		{Name: id, Kind: sdn.LinkBridge, Alias: sdn.AliasPrefix + id, Vnet: id, MTU: mtu},
		{Name: uplink + "." + strconv.Itoa(tag), Kind: sdn.LinkVLAN, Alias: sdn.AliasPrefix + id, Vnet: id,
			Master: id, Parent: uplink, VLAN: tag, MTU: mtu},
	}
}

func makePlan(host string, vnets ...[]sdn.Link) sdn.Plan {
	var bridges, ports []sdn.Link
	for _, v := range vnets {
		for _, l := range v {
			if l.Kind == sdn.LinkBridge {
				bridges = append(bridges, l)
			} else {
				ports = append(ports, l)
			}
		}
	}
	byName := func(a, b sdn.Link) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(bridges, byName)
	slices.SortFunc(ports, byName)
	return sdn.Plan{Host: host, Links: append(append([]sdn.Link{}, bridges...), ports...)}
}

func TestRenderInterfaces(t *testing.T) {
	tests := []struct {
		name string
		plan sdn.Plan
		opts ifupdownOptions
		want string
	}{{
		name: "simple",
		plan: makePlan("pve1",
			simpleVnet("s1", 1500, "10.1.0.1/24", "2001:db8:1::1/64"),
			simpleVnet("s2", 9000, "10.9.0.1/32"),
			simpleVnet("s3", 1500)),
		opts: ifupdownOptions{Version: 7},
		want: `#version:7

auto s1
iface s1
	address 10.1.0.1/24
	address 2001:db8:1::1/64
	bridge_ports none
	bridge_stp off
	bridge_fd 0
	mtu 1500
	ip-forward on
	ip6-forward on

auto s2
iface s2
	address 10.9.0.1/32
	up ip route add 10.9.0.1/32 dev s2
	bridge_ports none
	bridge_stp off
	bridge_fd 0
	mtu 9000
	ip-forward on

auto s3
iface s3
	bridge_ports none
	bridge_stp off
	bridge_fd 0
	mtu 1500
`,
	}, {
		name: "vxlan",
		plan: makePlan("pve1",
			vxlanVnet("vx1", 100, "192.0.2.1", 4789, 1450, "192.0.2.2", "192.0.2.3"),
			vxlanVnet("vx2", 200, "192.0.2.1", 4790, 1400, "192.0.2.3")),
		opts: ifupdownOptions{Version: 3},
		want: `#version:3

auto vx1
iface vx1
	bridge_ports vxlan_vx1
	bridge_stp off
	bridge_fd 0
	mtu 1450

auto vx2
iface vx2
	bridge_ports vxlan_vx2
	bridge_stp off
	bridge_fd 0
	mtu 1400

auto vxlan_vx1
iface vxlan_vx1
	vxlan-id 100
	vxlan_remoteip 192.0.2.2
	vxlan_remoteip 192.0.2.3
	mtu 1450

auto vxlan_vx2
iface vxlan_vx2
	vxlan-id 200
	vxlan_remoteip 192.0.2.3
	vxlan-port 4790
	mtu 1400
`,
	}, {
		name: "vxlan with local tunnel ip and a gateway",
		plan: func() sdn.Plan {
			v := vxlanVnet("vx1", 100, "192.0.2.1", 4789, 1450, "192.0.2.1", "192.0.2.2")
			v[0].Addresses = []string{"10.2.0.1/24"}
			return makePlan("pve1", v)
		}(),
		opts: ifupdownOptions{Version: 1, LocalTunnelIP: true},
		want: `#version:1

auto vx1
iface vx1
	address 10.2.0.1/24
	bridge_ports vxlan_vx1
	bridge_stp off
	bridge_fd 0
	mtu 1450

auto vxlan_vx1
iface vxlan_vx1
	vxlan-id 100
	vxlan-local-tunnelip 192.0.2.1
	vxlan_remoteip 192.0.2.2
	mtu 1450
`,
	}, {
		name: "vlan",
		plan: makePlan("pve1", vlanVnet("v100", 100, "eth0", 1500), vlanVnet("v200", 200, "eth0", 9000)),
		opts: ifupdownOptions{Version: 2},
		want: `#version:2

auto ln_v100
iface ln_v100
	link-type veth
	veth-peer-name pr_v100
	mtu 1500

auto ln_v200
iface ln_v200
	link-type veth
	veth-peer-name pr_v200
	mtu 9000

auto pr_v100
iface pr_v100
	link-type veth
	veth-peer-name ln_v100
	mtu 1500

auto pr_v200
iface pr_v200
	link-type veth
	veth-peer-name ln_v200
	mtu 9000

auto v100
iface v100
	bridge_ports ln_v100
	bridge_stp off
	bridge_fd 0
	mtu 1500

auto v200
iface v200
	bridge_ports ln_v200
	bridge_stp off
	bridge_fd 0
	mtu 9000

auto vmbr0v100
iface vmbr0v100
	bridge_ports  eth0.100 pr_v100
	bridge_stp off
	bridge_fd 0
	mtu 1500

auto vmbr0v200
iface vmbr0v200
	bridge_ports  eth0.200 pr_v200
	bridge_stp off
	bridge_fd 0
	mtu 9000
`,
	}, {
		name: "empty",
		plan: sdn.Plan{Host: "pve1", Links: []sdn.Link{}},
		opts: ifupdownOptions{Version: 4},
		want: "#version:4\n",
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := renderInterfaces(tt.plan, tt.opts)
			if got != tt.want {
				t.Errorf("renderInterfaces:\n%s\nwant:\n%s", got, tt.want)
			}
		})
	}
}

// requireNetRoot skips tb unless it runs as root with ip(8), network
// namespaces and VXLAN, and, with ifupdown2 set, ifreload and
// /etc/network/ifupdown2.
func requireNetRoot(tb testing.TB, ifupdown2 bool) {
	tb.Helper()
	if os.Geteuid() != 0 {
		tb.Skip("needs root: creates network namespaces, bridges and VXLAN devices")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		tb.Skip("needs ip(8) from iproute2: ", err)
	}
	if ifupdown2 {
		if _, err := exec.LookPath("ifreload"); err != nil {
			tb.Skip("needs ifupdown2's ifreload: ", err)
		}
		if _, err := os.Stat("/etc/network/ifupdown2"); err != nil {
			tb.Skip("needs ifupdown2's configuration in /etc/network/ifupdown2: ", err)
		}
	}
	sweepNetns()
	name := fmt.Sprintf("mxifu-%d-probe", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Skipf("needs network namespaces: ip netns add: %v: %s", err, out)
	}
	defer exec.Command("ip", "netns", "del", name).Run()
	err := inNetns(name, func() error {
		return netlink.LinkAdd(&netlink.Vxlan{LinkAttrs: netlink.LinkAttrs{Name: "vxprobe"}, VxlanId: 1, Port: 4789})
	})
	if err != nil {
		tb.Skip("needs VXLAN devices in network namespaces: ", err)
	}
}

// sweepNetns deletes the namespaces, and their /etc/netns entries, that
// runs killed before their cleanup left behind.
func sweepNetns() {
	dirs, _ := filepath.Glob("/etc/netns/mxifu-*")
	nss, _ := filepath.Glob("/run/netns/mxifu-*")
	for _, p := range append(dirs, nss...) {
		name := filepath.Base(p)
		pid, _, _ := strings.Cut(strings.TrimPrefix(name, "mxifu-"), "-")
		if _, err := os.Stat("/proc/" + pid); err == nil {
			continue // its run is alive
		}
		exec.Command("ip", "netns", "del", name).Run()
		os.RemoveAll(filepath.Join("/etc/netns", name))
	}
}

var netnsSeq atomic.Int64

// newNetns creates an empty network namespace with a unique name and
// deletes it, and any /etc/netns entry of it, when tb ends.
func newNetns(tb testing.TB) string {
	tb.Helper()
	name := fmt.Sprintf("mxifu-%d-%d", os.Getpid(), netnsSeq.Add(1))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		tb.Fatalf("ip netns add %s: %v: %s", name, err, out)
	}
	tb.Cleanup(func() {
		if out, err := exec.Command("ip", "netns", "del", name).CombinedOutput(); err != nil {
			tb.Errorf("ip netns del %s: %v: %s", name, err, out)
		}
		if err := os.RemoveAll(filepath.Join("/etc/netns", name)); err != nil {
			tb.Errorf("remove /etc/netns/%s: %v", name, err)
		}
	})
	return name
}

// inNetns runs fn on a thread switched into the named namespace. fn must
// not start goroutines.
func inNetns(name string, fn func() error) error {
	target, err := netns.GetFromName(name)
	if err != nil {
		return fmt.Errorf("open netns %s: %w", name, err)
	}
	defer target.Close()
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return err
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("enter netns %s: %w", name, err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked: Go ends it with this goroutine.
		return fmt.Errorf("leave netns %s: %w", name, err)
	}
	runtime.UnlockOSThread()
	return ferr
}

// ifupdown2NS is a network namespace that ifupdown2 configures, as Proxmox
// configures a host: a rendered interfaces file, then `ifreload -a`.
type ifupdown2NS struct {
	name string
	// etc is /etc/netns/<name>/network, which `ip netns exec` mounts over
	// /etc/network.
	etc string
	// state is ifupdown2's state_dir, private to the namespace so runs
	// never see the host's or another namespace's interfaces.
	state string
	opts  ifupdownOptions
}

func newIfupdown2NS(tb testing.TB, opts ifupdownOptions) *ifupdown2NS {
	tb.Helper()
	n := &ifupdown2NS{name: newNetns(tb), opts: opts, state: tb.TempDir()}
	n.etc = filepath.Join("/etc/netns", n.name, "network")
	if err := os.MkdirAll(n.etc, 0o755); err != nil {
		tb.Fatal(err)
	}
	// ifupdown2 keeps its lock files in /run/network.
	if err := os.MkdirAll("/run/network", 0o755); err != nil {
		tb.Fatal(err)
	}
	if err := os.CopyFS(filepath.Join(n.etc, "ifupdown2"), os.DirFS("/etc/network/ifupdown2")); err != nil {
		tb.Fatalf("copy /etc/network/ifupdown2: %v", err)
	}
	conf := filepath.Join(n.etc, "ifupdown2", "ifupdown2.conf")
	b, err := os.ReadFile(conf)
	if err != nil {
		tb.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(string(b)) {
		if !strings.HasPrefix(l, "state_dir=") {
			lines = append(lines, l)
		}
	}
	lines = append(lines, "\nstate_dir="+n.state+"/\n")
	if err := os.WriteFile(conf, []byte(strings.Join(lines, "")), 0o644); err != nil {
		tb.Fatal(err)
	}
	return n
}

// apply renders plan into the namespace's interfaces file and runs
// `ifreload -a` in it.
func (n *ifupdown2NS) apply(ctx context.Context, plan sdn.Plan) error {
	n.opts.Version++
	if err := os.WriteFile(filepath.Join(n.etc, "interfaces"), []byte(renderInterfaces(plan, n.opts)), 0o644); err != nil {
		return err
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "ip", "netns", "exec", n.name, "ifreload", "-a")
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("ifreload -a in %s: %w: %s", n.name, err, stderr.Bytes())
	}
	return nil
}

// resetLinks deletes every link of the namespace but lo, and ifupdown2's
// saved state: an empty host again.
func resetLinks(tb testing.TB, name, stateDir string) {
	tb.Helper()
	err := inNetns(name, func() error {
		links, err := netlink.LinkList()
		if err != nil {
			return err
		}
		// Ports first, then the rest: deleting a bridge with ports would
		// release them one by one.
		for _, ports := range []bool{true, false} {
			for _, l := range links {
				if l.Attrs().Name == "lo" || (l.Attrs().MasterIndex != 0) != ports {
					continue
				}
				if err := netlink.LinkDel(l); err != nil {
					return fmt.Errorf("delete %s: %w", l.Attrs().Name, err)
				}
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
	if stateDir != "" {
		entries, err := os.ReadDir(stateDir)
		if err != nil {
			tb.Fatal(err)
		}
		for _, e := range entries {
			if err := os.RemoveAll(filepath.Join(stateDir, e.Name())); err != nil {
				tb.Fatal(err)
			}
		}
	}
}

// netState is what a namespace holds, link name -> attribute -> value, as
// far as a plan decides it.
type netState map[string]map[string]string

// readNetState reads every link of the named namespace but lo over
// netlink: kind, admin up, MTU, master, VLAN parent and ID, VXLAN
// attributes (VNI, local, group, port, source ports, learning, TTL,
// ageing, ...), bridge STP state and forward delay, bridge port flags,
// addresses (not link-local), all-zero-MAC forwarding entries and the
// forwarding sysctls. Aliases and MAC addresses are not read: the agent
// marks its links, and MACs are random.
func readNetState(name string) (netState, error) {
	st := netState{}
	err := inNetns(name, func() error {
		var links []netlink.Link
		var err error
		for range 5 {
			if links, err = netlink.LinkList(); !errors.Is(err, netlink.ErrDumpInterrupted) {
				break
			}
		}
		if err != nil {
			return fmt.Errorf("list links: %w", err)
		}
		names := map[int]string{}
		for _, l := range links {
			names[l.Attrs().Index] = l.Attrs().Name
		}
		for _, l := range links {
			a := l.Attrs()
			if a.Name == "lo" {
				continue
			}
			m := map[string]string{
				"kind":   l.Type(),
				"up":     strconv.FormatBool(a.Flags&net.FlagUp != 0),
				"mtu":    strconv.Itoa(a.MTU),
				"master": names[a.MasterIndex],
			}
			switch l := l.(type) {
			case *netlink.Vxlan:
				m["vni"] = strconv.Itoa(l.VxlanId)
				m["local"] = ipString(l.SrcAddr)
				m["group"] = ipString(l.Group)
				m["dev"] = names[l.VtepDevIndex]
				m["dstport"] = strconv.Itoa(l.Port)
				m["srcport"] = fmt.Sprintf("%d-%d", l.PortLow, l.PortHigh)
				m["learning"] = strconv.FormatBool(l.Learning)
				m["ttl"] = strconv.Itoa(l.TTL)
				m["tos"] = strconv.Itoa(l.TOS)
				m["ageing"] = strconv.Itoa(l.Age)
				m["limit"] = strconv.Itoa(l.Limit)
				m["flags"] = fmt.Sprintf("proxy=%t l2miss=%t l3miss=%t rsc=%t udpcsum=%t gbp=%t external=%t",
					l.Proxy, l.L2miss, l.L3miss, l.RSC, l.UDPCSum, l.GBP, l.FlowBased)
				var fdb []string
				neighs, err := netlink.NeighList(a.Index, unix.AF_BRIDGE)
				if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
					return fmt.Errorf("fdb of %s: %w", a.Name, err)
				}
				for _, n := range neighs {
					if n.HardwareAddr.String() != "00:00:00:00:00:00" {
						continue
					}
					e := fmt.Sprintf("dst %s state %#x flags %#x", ipString(n.IP), n.State, n.Flags)
					if n.VNI != 0 {
						e += fmt.Sprintf(" vni %d", n.VNI)
					}
					if n.Vlan != 0 {
						e += fmt.Sprintf(" vlan %d", n.Vlan)
					}
					fdb = append(fdb, e)
				}
				slices.Sort(fdb)
				m["fdb"] = strings.Join(fdb, ", ")
			case *netlink.Vlan:
				m["parent"] = names[a.ParentIndex]
				m["vlan"] = strconv.Itoa(l.VlanId)
				m["vlan_protocol"] = l.VlanProtocol.String()
			case *netlink.Bridge:
				m["vlan_filtering"] = fmt.Sprint(deref(l.VlanFiltering))
				m["ageing_time"] = fmt.Sprint(deref(l.AgeingTime))
				m["mcast_snooping"] = fmt.Sprint(deref(l.MulticastSnooping))
			}
			addrs, err := netlink.AddrList(l, netlink.FAMILY_ALL)
			if err != nil && !errors.Is(err, netlink.ErrDumpInterrupted) {
				return fmt.Errorf("addresses of %s: %w", a.Name, err)
			}
			var as []string
			for _, ad := range addrs {
				if ad.Scope == unix.RT_SCOPE_LINK {
					continue
				}
				as = append(as, ad.IPNet.String())
			}
			slices.Sort(as)
			m["addresses"] = strings.Join(as, " ")
			for _, fam := range []string{"ipv4", "ipv6"} {
				b, err := os.ReadFile("/proc/sys/net/" + fam + "/conf/" + a.Name + "/forwarding")
				if err != nil {
					return err
				}
				m[fam+"_forwarding"] = strings.TrimSpace(string(b))
			}
			st[a.Name] = m
		}
		return readRawLinkInfo(st)
	})
	return st, err
}

// readRawLinkInfo adds what package netlink does not parse: bridge STP
// state and forward delay, and bridge port flags.
func readRawLinkInfo(st netState) error {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if err != nil {
		return fmt.Errorf("dump links: %w", err)
	}
	for _, msg := range msgs {
		attrs, err := nl.ParseRouteAttr(msg[unix.SizeofIfInfomsg:])
		if err != nil {
			return err
		}
		var name string
		var info []byte
		for _, at := range attrs {
			switch at.Attr.Type {
			case unix.IFLA_IFNAME:
				name = string(bytes.TrimRight(at.Value, "\x00"))
			case unix.IFLA_LINKINFO:
				info = at.Value
			}
		}
		m, ok := st[name]
		if !ok || info == nil {
			continue
		}
		infos, err := nl.ParseRouteAttr(info)
		if err != nil {
			return err
		}
		var kind, slaveKind string
		var data, slaveData []byte
		for _, at := range infos {
			switch at.Attr.Type {
			case nl.IFLA_INFO_KIND:
				kind = string(bytes.TrimRight(at.Value, "\x00"))
			case nl.IFLA_INFO_DATA:
				data = at.Value
			case nl.IFLA_INFO_SLAVE_KIND:
				slaveKind = string(bytes.TrimRight(at.Value, "\x00"))
			case nl.IFLA_INFO_SLAVE_DATA:
				slaveData = at.Value
			}
		}
		if kind == "bridge" && data != nil {
			ds, err := nl.ParseRouteAttr(data)
			if err != nil {
				return err
			}
			for _, d := range ds {
				switch d.Attr.Type {
				case nl.IFLA_BR_STP_STATE:
					m["stp_state"] = strconv.Itoa(int(nl.NativeEndian().Uint32(d.Value)))
				case nl.IFLA_BR_FORWARD_DELAY:
					m["forward_delay"] = strconv.Itoa(int(nl.NativeEndian().Uint32(d.Value)))
				}
			}
		}
		if slaveKind == "bridge" && slaveData != nil {
			ds, err := nl.ParseRouteAttr(slaveData)
			if err != nil {
				return err
			}
			for _, d := range ds {
				switch d.Attr.Type {
				case nl.IFLA_BRPORT_LEARNING:
					m["port_learning"] = strconv.Itoa(int(d.Value[0]))
				case nl.IFLA_BRPORT_UNICAST_FLOOD:
					m["port_unicast_flood"] = strconv.Itoa(int(d.Value[0]))
				case nl.IFLA_BRPORT_NEIGH_SUPPRESS:
					m["port_neigh_suppress"] = strconv.Itoa(int(d.Value[0]))
				}
			}
		}
	}
	return nil
}

func ipString(ip net.IP) string {
	if len(ip) == 0 || ip.IsUnspecified() {
		return ""
	}
	return ip.String()
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

// String lists the state one attribute a line, sorted.
func (s netState) String() string {
	var b strings.Builder
	for _, name := range slices.Sorted(maps.Keys(s)) {
		fmt.Fprintf(&b, "%s:\n", name)
		for _, k := range slices.Sorted(maps.Keys(s[name])) {
			fmt.Fprintf(&b, "    %s: %s\n", k, s[name][k])
		}
	}
	return b.String()
}

// diffNetState lists the differences between two states, an attribute a
// line ("vxlan_vx1: mtu: 1450 != 1400"), skipping the attributes in
// ignore.
func diffNetState(a, b netState, ignore ...string) []string {
	var diffs []string
	names := map[string]bool{}
	for n := range a {
		names[n] = true
	}
	for n := range b {
		names[n] = true
	}
	for _, name := range slices.Sorted(maps.Keys(names)) {
		la, oka := a[name]
		lb, okb := b[name]
		switch {
		case !oka:
			diffs = append(diffs, fmt.Sprintf("%s: missing != present (%s)", name, lb["kind"]))
			continue
		case !okb:
			diffs = append(diffs, fmt.Sprintf("%s: present (%s) != missing", name, la["kind"]))
			continue
		}
		keys := map[string]bool{}
		for k := range la {
			keys[k] = true
		}
		for k := range lb {
			keys[k] = true
		}
		for _, k := range slices.Sorted(maps.Keys(keys)) {
			if slices.Contains(ignore, k) {
				continue
			}
			if la[k] != lb[k] {
				diffs = append(diffs, fmt.Sprintf("%s: %s: %q != %q", name, k, la[k], lb[k]))
			}
		}
	}
	return diffs
}

// testHosts are four hosts on one underlay; the tests apply pve1's plans.
func testHosts() []sdn.Host {
	var hs []sdn.Host
	for i := 1; i <= 4; i++ {
		hs = append(hs, sdn.Host{Name: fmt.Sprintf("pve%d", i), Address: fmt.Sprintf("192.0.2.%d", i), Uplink: "eth0"})
	}
	return hs
}

// compilePlan compiles in and returns host pve1's plan.
func compilePlan(tb testing.TB, in sdn.Intent) sdn.Plan {
	tb.Helper()
	in.Hosts = testHosts()
	plans, err := sdn.Compile(in)
	if err != nil {
		tb.Fatalf("compile: %v", err)
	}
	return plans["pve1"]
}

// equivalenceStep is one plan TestIfupdown2Equivalence applies to both
// namespaces in turn.
type equivalenceStep struct {
	name string
	in   sdn.Intent
	// stuck marks a change ifupdown2 cannot make on a running host: the
	// agent is then compared with ifupdown2 applying the plan to an empty
	// namespace.
	stuck string
}

func equivalenceSteps() []equivalenceStep {
	simple := sdn.Zone{ID: "zs", Type: sdn.ZoneSimple}
	subnets := []sdn.Subnet{
		{ID: "s1v4", Vnet: "s1", PrefixID: "p4", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		{ID: "s1v6", Vnet: "s1", PrefixID: "p6", CIDR: "2001:db8:1::/64", Gateway: "2001:db8:1::1"},
	}
	vnets := []sdn.Vnet{
		{ID: "s1", Zone: "zs"},
		{ID: "vx1", Zone: "za", Tag: 100},
		{ID: "vx2", Zone: "za", Tag: 200},
		{ID: "vx3", Zone: "zb", Tag: 300},
	}
	return []equivalenceStep{{
		name: "create",
		in: sdn.Intent{
			Zones: []sdn.Zone{simple,
				{ID: "za", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2", "pve3"}},
				{ID: "zb", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve3"}, Port: 4790, MTU: 1400}},
			Vnets:   vnets,
			Subnets: subnets,
		},
	}, {
		name: "change peers and mtu",
		in: sdn.Intent{
			Zones: []sdn.Zone{simple,
				{ID: "za", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2", "pve4"}},
				{ID: "zb", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve3"}, Port: 4790, MTU: 1300}},
			Vnets:   vnets,
			Subnets: subnets,
		},
	}, {
		name: "remove and add",
		in: sdn.Intent{
			Zones: []sdn.Zone{simple,
				{ID: "za", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2", "pve4"}}},
			Vnets: []sdn.Vnet{
				{ID: "s1", Zone: "zs"},
				{ID: "vx1", Zone: "za", Tag: 100},
				{ID: "vx4", Zone: "za", Tag: 400},
			},
			Subnets: subnets[:1],
		},
	}, {
		name: "change vni",
		in: sdn.Intent{
			Zones: []sdn.Zone{simple,
				{ID: "za", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2", "pve4"}}},
			Vnets: []sdn.Vnet{
				{ID: "s1", Zone: "zs"},
				{ID: "vx1", Zone: "za", Tag: 150},
				{ID: "vx4", Zone: "za", Tag: 400},
			},
			Subnets: subnets[:1],
		},
		stuck: "ifupdown2 3.0 cannot change a running VXLAN device's VNI",
	}}
}

// agentNS is a network namespace the agent's Kernel configures.
type agentNS struct {
	name string
	k    *agent.Kernel
}

func newAgentNS(tb testing.TB) *agentNS {
	tb.Helper()
	a := &agentNS{name: newNetns(tb)}
	a.open(tb)
	tb.Cleanup(func() { a.k.Close() })
	return a
}

// open starts a new Kernel on the namespace, as a restarted agent would.
func (a *agentNS) open(tb testing.TB) {
	tb.Helper()
	if a.k != nil {
		a.k.Close()
	}
	k, err := agent.NewKernel(agent.KernelConfig{Netns: a.name})
	if err != nil {
		tb.Fatal(err)
	}
	a.k = k
}

func (a *agentNS) apply(ctx context.Context, plan sdn.Plan) error {
	_, err := a.k.Apply(ctx, plan)
	return err
}

func TestIfupdown2Equivalence(t *testing.T) {
	requireNetRoot(t, true)
	for _, mode := range []struct {
		name string
		opts ifupdownOptions
		// ipForward turns forwarding on for the whole namespace first,
		// as on a host that routes (net.ipv4.ip_forward=1).
		ipForward bool
		ignore    []string
	}{
		// Exactly as Proxmox writes it: no local address, which the
		// agent sets by design.
		{name: "proxmox", ignore: []string{"local"}},
		{name: "local-tunnelip", opts: ifupdownOptions{LocalTunnelIP: true}, ipForward: true},
	} {
		t.Run(mode.name, func(t *testing.T) {
			ifu := newIfupdown2NS(t, mode.opts)
			ag := newAgentNS(t)
			if mode.ipForward {
				setForwarding(t, ifu.name)
				setForwarding(t, ag.name)
			}
			for _, step := range equivalenceSteps() {
				plan := compilePlan(t, step.in)
				ref := ifu
				err := ifu.apply(t.Context(), plan)
				switch {
				case step.stuck != "":
					t.Logf("%s: ifupdown2 on the running namespace: %v (expected: %s)", step.name, err, step.stuck)
					ref = newIfupdown2NS(t, mode.opts)
					if mode.ipForward {
						setForwarding(t, ref.name)
					}
					if err := ref.apply(t.Context(), plan); err != nil {
						t.Fatalf("%s: ifupdown2 from empty: %v", step.name, err)
					}
				case err != nil:
					t.Fatalf("%s: ifupdown2: %v", step.name, err)
				}
				if err := ag.apply(t.Context(), plan); err != nil {
					t.Fatalf("%s: agent: %v", step.name, err)
				}
				want, err := readNetState(ref.name)
				if err != nil {
					t.Fatal(err)
				}
				got, err := readNetState(ag.name)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffNetState(want, got, mode.ignore...); len(d) > 0 {
					t.Errorf("%s: the agent's links differ from ifupdown2's (ifupdown2 != agent):\n  %s\n"+
						"ifupdown2 (%s):\n%s\nagent (%s):\n%s\ninterfaces:\n%s",
						step.name, strings.Join(d, "\n  "), ref.name, want, ag.name, got,
						renderInterfaces(plan, ref.opts))
				}
				// Both have converged: running again changes nothing.
				if actions, err := ag.k.Apply(t.Context(), plan); err != nil || len(actions) > 0 {
					t.Errorf("%s: agent: second Apply: %q, %v; want no action", step.name, actions, err)
				}
				if step.stuck != "" {
					continue
				}
				if err := ifu.apply(t.Context(), plan); err != nil {
					t.Fatalf("%s: ifupdown2 again: %v", step.name, err)
				}
				again, err := readNetState(ifu.name)
				if err != nil {
					t.Fatal(err)
				}
				if d := diffNetState(want, again); len(d) > 0 {
					t.Errorf("%s: a second ifreload changed (first != second):\n  %s", step.name, strings.Join(d, "\n  "))
				}
			}
		})
	}
}

// setForwarding turns IPv4 and IPv6 forwarding on for all interfaces of
// the named namespace, present and future.
func setForwarding(tb testing.TB, name string) {
	tb.Helper()
	err := inNetns(name, func() error {
		for _, f := range []string{"/proc/sys/net/ipv4/ip_forward", "/proc/sys/net/ipv6/conf/all/forwarding"} {
			if err := os.WriteFile(f, []byte("1\n"), 0o644); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		tb.Fatal(err)
	}
}

// planState is what a plan asks of a namespace, in readNetState's terms;
// with local false, VXLAN local addresses are left out.
func planState(plan sdn.Plan, local bool) netState {
	st := netState{}
	for _, l := range plan.Links {
		m := map[string]string{
			"kind":      string(l.Kind),
			"up":        "true",
			"mtu":       strconv.Itoa(l.MTU),
			"master":    l.Master,
			"addresses": strings.Join(l.Addresses, " "),
		}
		switch l.Kind {
		case sdn.LinkBridge:
			m["stp_state"], m["forward_delay"] = "0", "0"
		case sdn.LinkVXLAN:
			m["vni"] = strconv.Itoa(l.VNI)
			m["dstport"] = strconv.Itoa(l.Port)
			m["learning"] = "true"
			if local {
				m["local"] = l.Local
			}
			var fdb []string
			for _, p := range l.Peers {
				// As `bridge fdb append ... self permanent`: iproute2 adds
				// NUD_NOARP to every static entry.
				fdb = append(fdb, fmt.Sprintf("dst %s state %#x flags %#x", p, netlink.NUD_PERMANENT|netlink.NUD_NOARP, netlink.NTF_SELF))
			}
			slices.Sort(fdb)
			m["fdb"] = strings.Join(fdb, ", ")
		case sdn.LinkVLAN:
			m["parent"], m["vlan"] = l.Parent, strconv.Itoa(l.VLAN)
		}
		st[l.Name] = m
	}
	return st
}

// missingFrom lists what of want st lacks or holds otherwise.
func missingFrom(st, want netState) []string {
	var d []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		got, ok := st[name]
		if !ok {
			d = append(d, name+": missing")
			continue
		}
		for _, k := range slices.Sorted(maps.Keys(want[name])) {
			if got[k] != want[name][k] {
				d = append(d, fmt.Sprintf("%s: %s: %q, want %q", name, k, got[k], want[name][k]))
			}
		}
	}
	for _, name := range slices.Sorted(maps.Keys(st)) {
		if _, ok := want[name]; !ok {
			d = append(d, name+": not in the plan")
		}
	}
	return d
}

// TestIfupdown2Realizes checks the yardstick itself: ifupdown2, given the
// rendered plans, holds what the plans say.
func TestIfupdown2Realizes(t *testing.T) {
	requireNetRoot(t, true)
	for _, local := range []bool{false, true} {
		t.Run(fmt.Sprintf("local-tunnelip=%t", local), func(t *testing.T) {
			ifu := newIfupdown2NS(t, ifupdownOptions{LocalTunnelIP: local})
			for _, step := range equivalenceSteps() {
				plan := compilePlan(t, step.in)
				err := ifu.apply(t.Context(), plan)
				if step.stuck != "" {
					// Then from an empty namespace.
					t.Logf("%s: on the running namespace: %v (expected: %s)", step.name, err, step.stuck)
					ifu = newIfupdown2NS(t, ifupdownOptions{LocalTunnelIP: local})
					err = ifu.apply(t.Context(), plan)
				}
				if err != nil {
					t.Fatalf("%s: %v", step.name, err)
				}
				st, err := readNetState(ifu.name)
				if err != nil {
					t.Fatal(err)
				}
				if d := missingFrom(st, planState(plan, local)); len(d) > 0 {
					t.Errorf("%s: ifupdown2 does not hold the plan:\n  %s\nholds:\n%s\ninterfaces:\n%s",
						step.name, strings.Join(d, "\n  "), st, renderInterfaces(plan, ifu.opts))
				}
			}
		})
	}
}

// benchPlans returns host pve1's plan with 200 vxlan vnets (vn000 to
// vn199, VNIs 1000 to 1199) and the same plan with vnet vn000 changed:
// its MTU (1450 -> 1400) and its peers (pve2, pve3 -> pve2, pve4). vn000
// has a zone of its own so that only it changes.
func benchPlans(tb testing.TB) (base, changed sdn.Plan) {
	tb.Helper()
	in := func(mtu int, nodes ...string) sdn.Intent {
		in := sdn.Intent{Zones: []sdn.Zone{
			{ID: "zbig", Type: sdn.ZoneVXLAN, Nodes: []string{"pve1", "pve2", "pve3"}},
			{ID: "zone0", Type: sdn.ZoneVXLAN, Nodes: nodes, MTU: mtu},
		}}
		for i := range 200 {
			z := "zbig"
			if i == 0 {
				z = "zone0"
			}
			in.Vnets = append(in.Vnets, sdn.Vnet{ID: fmt.Sprintf("vn%03d", i), Zone: z, Tag: 1000 + i})
		}
		return in
	}
	base = compilePlan(tb, in(1450, "pve1", "pve2", "pve3"))
	changed = compilePlan(tb, in(1400, "pve1", "pve2", "pve4"))
	if n := len(base.Links); n != 400 {
		tb.Fatalf("plan has %d links, want 400", n)
	}
	return base, changed
}

// benchApplier is one way of applying plans to a namespace under test.
type benchApplier struct {
	name string
	// setup prepares a namespace, returns its name, apply, and reset,
	// which empties the namespace (outside the timer).
	setup func(b *testing.B) (ns string, apply func(sdn.Plan) error, reset func())
}

func benchAppliers() []benchApplier {
	return []benchApplier{{
		name: "agent",
		setup: func(b *testing.B) (string, func(sdn.Plan) error, func()) {
			requireNetRoot(b, false)
			a := newAgentNS(b)
			apply := func(p sdn.Plan) error { return a.apply(b.Context(), p) }
			reset := func() {
				resetLinks(b, a.name, "")
				if out, err := exec.Command("ip", "netns", "exec", a.name, "nft", "flush", "ruleset").CombinedOutput(); err != nil {
					b.Logf("nft flush ruleset: %v: %s", err, out)
				}
				a.open(b) // a fresh agent: nothing remembered
			}
			return a.name, apply, reset
		},
	}, {
		name: "ifupdown2",
		setup: func(b *testing.B) (string, func(sdn.Plan) error, func()) {
			requireNetRoot(b, true)
			n := newIfupdown2NS(b, ifupdownOptions{})
			apply := func(p sdn.Plan) error { return n.apply(b.Context(), p) }
			return n.name, apply, func() { resetLinks(b, n.name, n.state) }
		},
	}}
}

// checkMTU fails b unless link name holds mtu.
func checkMTU(b *testing.B, ns, name string, mtu int) {
	b.Helper()
	err := inNetns(ns, func() error {
		l, err := netlink.LinkByName(name)
		if err != nil {
			return err
		}
		if l.Attrs().MTU != mtu {
			return fmt.Errorf("%s has MTU %d, want %d", name, l.Attrs().MTU, mtu)
		}
		return nil
	})
	if err != nil {
		b.Fatal(err)
	}
}

// BenchmarkConverge200 brings an empty namespace to a plan of 200 vxlan
// vnets (400 links and 400 forwarding entries). The agent's time is one
// Apply of a Kernel started on the empty namespace, firewall included (one
// nft transaction); ifupdown2's is rendering the interfaces file and
// `ifreload -a`, as Proxmox's SDN reload does. Creating the namespace is
// not timed.
func BenchmarkConverge200(b *testing.B) {
	base, _ := benchPlans(b)
	for _, ap := range benchAppliers() {
		b.Run(ap.name, func(b *testing.B) {
			ns, apply, reset := ap.setup(b)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				reset()
				b.StartTimer()
				if err := apply(base); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				checkMTU(b, ns, "vxlan_vn199", 1450)
				b.StartTimer()
			}
		})
	}
}

// BenchmarkChangeOne applies, on a namespace holding 200 vxlan vnets, a
// plan in which one vnet differs (MTU and one peer), alternating between
// the two plans.
func BenchmarkChangeOne(b *testing.B) {
	base, changed := benchPlans(b)
	for _, ap := range benchAppliers() {
		b.Run(ap.name, func(b *testing.B) {
			ns, apply, _ := ap.setup(b)
			if err := apply(base); err != nil {
				b.Fatal(err)
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				plan, mtu := changed, 1400
				if i%2 == 1 {
					plan, mtu = base, 1450
				}
				if err := apply(plan); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				checkMTU(b, ns, "vxlan_vn000", mtu)
				b.StartTimer()
			}
		})
	}
}
