package agent

import (
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"slices"
	"strings"
	"syscall"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/moxxie/moxxie/sdn"
)

// defaultVXLANPort is the IANA VXLAN port, used when a link names none
// (the kernel's own default is the legacy 8472).
const defaultVXLANPort = 4789

// ensureLink makes one plan link right: its kind and the attributes that
// need a new device, then MTU, alias, master, state, addresses and, for
// VXLAN, the forwarding entries of its peers.
func (p *pass) ensureLink(l sdn.Link) error {
	var (
		link netlink.Link
		err  error
	)
	switch l.Kind {
	case sdn.LinkBridge:
		link, err = p.ensureBridge(l)
	case sdn.LinkVXLAN:
		link, err = p.ensureVXLAN(l)
	case sdn.LinkVLAN:
		link, err = p.ensureVLAN(l)
	}
	if err != nil {
		return err
	}
	if err := p.ensureAttrs(l, link); err != nil {
		return err
	}
	if err := p.ensureAddrs(l, link); err != nil {
		return err
	}
	if l.Kind == sdn.LinkVXLAN {
		return p.ensureFDB(l, link)
	}
	return nil
}

// ensureBridge makes l a bridge with STP off and forward delay 0 (as
// ifupdown2's bridge_stp off and bridge_fd 0).
func (p *pass) ensureBridge(l sdn.Link) (netlink.Link, error) {
	link, created, err := p.converge(l, bridgeSpec(), func(cur netlink.Link) []string { return bridgeDiff(cur) })
	if err != nil || link == nil || created {
		return link, err
	}
	if o := p.bropts[link.Attrs().Index]; o.stp == 0 && o.delay == 0 {
		return link, nil
	}
	act := fmt.Sprintf("set stp off and forward delay 0 on %s", l.Name)
	return link, p.do(act, func() error { return p.k.setBridgeOptions(link.Attrs().Index) })
}

// ensureVXLAN makes l a VXLAN device with its VNI, local address and
// port, learning on and no multicast group. A device differing in any of
// these is deleted and created again: the kernel refuses a new VNI in
// place.
func (p *pass) ensureVXLAN(l sdn.Link) (netlink.Link, error) {
	var local netip.Addr
	if l.Local != "" {
		var err error
		if local, err = netip.ParseAddr(l.Local); err != nil {
			return nil, fmt.Errorf("%w: link %q: local %q", ErrInvalidPlan, l.Name, l.Local)
		}
		local = local.Unmap()
	}
	link, _, err := p.converge(l, vxlanSpec(l, local), func(cur netlink.Link) []string { return vxlanDiff(cur, l) })
	return link, err
}

// bridgeSpec creates a bridge with STP off and forward delay 0.
func bridgeSpec() newLink {
	return newLink{kind: "bridge", data: func(data *nl.RtAttr) {
		// The forward delay first: the kernel applies it before the STP
		// state, and STP is off on a new bridge.
		data.AddRtAttr(nl.IFLA_BR_FORWARD_DELAY, nl.Uint32Attr(0))
		data.AddRtAttr(nl.IFLA_BR_STP_STATE, nl.Uint32Attr(0))
	}}
}

// vxlanSpec creates l's VXLAN device with local address local (none when
// invalid): the attributes package netlink sends for a Vxlan with
// VxlanId, SrcAddr, Port and Learning set.
func vxlanSpec(l sdn.Link, local netip.Addr) newLink {
	return newLink{kind: "vxlan", data: func(data *nl.RtAttr) { vxlanData(data, l, local) }}
}

func vxlanData(data *nl.RtAttr, l sdn.Link, local netip.Addr) {
	data.AddRtAttr(nl.IFLA_VXLAN_ID, nl.Uint32Attr(uint32(l.VNI)))
	switch {
	case local.Is4():
		data.AddRtAttr(nl.IFLA_VXLAN_LOCAL, local.AsSlice())
	case local.Is6():
		data.AddRtAttr(nl.IFLA_VXLAN_LOCAL6, local.AsSlice())
	}
	data.AddRtAttr(nl.IFLA_VXLAN_TTL, nl.Uint8Attr(0))
	data.AddRtAttr(nl.IFLA_VXLAN_TOS, nl.Uint8Attr(0))
	data.AddRtAttr(nl.IFLA_VXLAN_LEARNING, nl.Uint8Attr(1))
	for _, off := range []int{nl.IFLA_VXLAN_PROXY, nl.IFLA_VXLAN_RSC, nl.IFLA_VXLAN_L2MISS, nl.IFLA_VXLAN_L3MISS,
		nl.IFLA_VXLAN_UDP_ZERO_CSUM6_TX, nl.IFLA_VXLAN_UDP_ZERO_CSUM6_RX} {
		data.AddRtAttr(off, nl.Uint8Attr(0))
	}
	port := make([]byte, 2)
	binary.BigEndian.PutUint16(port, uint16(vxlanPort(l)))
	data.AddRtAttr(nl.IFLA_VXLAN_PORT, port)
}

// ensureVLAN makes l an 802.1Q device on its parent, which must exist.
// A device with another VLAN ID or parent is deleted and created again.
func (p *pass) ensureVLAN(l sdn.Link) (netlink.Link, error) {
	parent := p.links[l.Parent]
	if parent == nil {
		return nil, fmt.Errorf("vlan %s: parent %q not found", l.Name, l.Parent)
	}
	diff := func(cur netlink.Link) []string { return vlanDiff(cur, l, parent.Attrs().Index) }
	link, _, err := p.converge(l, vlanSpec(l, parent.Attrs().Index), diff)
	return link, err
}

// vlanSpec creates l's 802.1Q device on the link with ifindex parent.
func vlanSpec(l sdn.Link, parent int) newLink {
	return newLink{kind: "vlan", parent: parent, data: func(data *nl.RtAttr) {
		data.AddRtAttr(nl.IFLA_VLAN_ID, nl.Uint16Attr(uint16(l.VLAN)))
		proto := make([]byte, 2)
		binary.BigEndian.PutUint16(proto, uint16(netlink.VLAN_PROTOCOL_8021Q))
		data.AddRtAttr(nl.IFLA_VLAN_PROTOCOL, proto)
	}}
}

func vxlanPort(l sdn.Link) int {
	if l.Port == 0 {
		return defaultVXLANPort
	}
	return l.Port
}

// newLink is what creating a link needs beyond the plan's link: its kind
// as the kernel names it, its parent's ifindex (VLAN devices) and the
// kind's attributes.
type newLink struct {
	kind   string
	parent int
	data   func(*nl.RtAttr)
}

// converge returns the link named l.Name, creating it as spec says when
// it is missing, or deleting and creating it when diff names attributes
// that cannot change in place. created says whether it is new. A new link
// is complete: up, with its MTU, alias and master. In a dry run a link
// that would be created is returned as nil.
func (p *pass) converge(l sdn.Link, spec newLink, diff func(netlink.Link) []string) (link netlink.Link, created bool, err error) {
	cur := p.links[l.Name]
	var act string
	switch {
	case cur == nil:
		act = fmt.Sprintf("create %s %s", l.Kind, l.Name)
	default:
		why := diff(cur)
		if len(why) == 0 {
			return cur, false, nil
		}
		act = fmt.Sprintf("recreate %s: %s", l.Name, strings.Join(why, ", "))
	}
	master := 0
	if l.Master != "" {
		switch m := p.links[l.Master]; {
		case m != nil:
			master = m.Attrs().Index
		case !p.dry:
			return nil, false, fmt.Errorf("%s: master %q not found", act, l.Master)
		}
	}
	err = p.do(act, func() error {
		if cur != nil {
			if err := p.k.h.LinkDel(cur); err != nil {
				return fmt.Errorf("delete: %w", err)
			}
		}
		return p.k.create(l, spec, master)
	})
	delete(p.links, l.Name)
	p.created[l.Name] = true
	if err != nil || p.dry {
		return nil, true, err
	}
	link, err = p.k.h.LinkByName(l.Name)
	if err != nil {
		return nil, true, fmt.Errorf("%s: %w", act, err)
	}
	p.links[l.Name] = link
	return link, true, nil
}

// create adds link l as spec says, with master (an ifindex, 0 for none),
// in one request: up, with its MTU and master. It marks the link Moxxie's
// at once: the kernel ignores an alias given at creation, so it is set
// right after, by name, and the link is deleted again if that fails.
func (k *Kernel) create(l sdn.Link, spec newLink, master int) error {
	req := createRequest(l, spec, master)
	req.Sockets = k.raw
	if _, err := req.Execute(unix.NETLINK_ROUTE, 0); err != nil {
		return err
	}
	if err := k.byName(unix.RTM_NEWLINK, 0, l.Name, nl.NewRtAttr(unix.IFLA_IFALIAS, []byte(l.Alias))); err != nil {
		err = fmt.Errorf("set alias: %w", err)
		if derr := k.byName(unix.RTM_DELLINK, 0, l.Name); derr != nil {
			return fmt.Errorf("%w (and deleting it again: %v)", err, derr)
		}
		return err
	}
	return nil
}

// createRequest is the RTM_NEWLINK request that creates link l as spec
// says, up, with its MTU and master (an ifindex, 0 for none).
func createRequest(l sdn.Link, spec newLink, master int) *nl.NetlinkRequest {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_CREATE|unix.NLM_F_EXCL|unix.NLM_F_ACK)
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Flags, msg.Change = unix.IFF_UP, unix.IFF_UP
	req.AddData(msg)
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(l.Name)))
	if l.MTU > 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MTU, nl.Uint32Attr(uint32(l.MTU))))
	}
	if spec.parent != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_LINK, nl.Uint32Attr(uint32(spec.parent))))
	}
	if master != 0 {
		req.AddData(nl.NewRtAttr(unix.IFLA_MASTER, nl.Uint32Attr(uint32(master))))
	}
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated(spec.kind))
	spec.data(info.AddRtAttr(nl.IFLA_INFO_DATA, nil))
	req.AddData(info)
	return req
}

// byName sends a link request of type typ for the link called name, with
// attrs, and waits for the kernel's answer.
func (k *Kernel) byName(typ, flags int, name string, attrs ...*nl.RtAttr) error {
	req := nl.NewNetlinkRequest(typ, flags|unix.NLM_F_ACK)
	req.Sockets = k.raw
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	req.AddData(nl.NewRtAttr(unix.IFLA_IFNAME, nl.ZeroTerminated(name)))
	for _, a := range attrs {
		req.AddData(a)
	}
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// bridgeDiff says why cur cannot serve as a plan bridge.
func bridgeDiff(cur netlink.Link) []string {
	if cur.Type() != "bridge" {
		return []string{fmt.Sprintf("kind %s -> bridge", cur.Type())}
	}
	return nil
}

// vxlanDiff lists the attributes of cur that differ from l and cannot
// change in place.
func vxlanDiff(cur netlink.Link, l sdn.Link) []string {
	vx, ok := cur.(*netlink.Vxlan)
	if !ok {
		return []string{fmt.Sprintf("kind %s -> vxlan", cur.Type())}
	}
	var why []string
	if vx.VxlanId != l.VNI {
		why = append(why, fmt.Sprintf("vni %d -> %d", vx.VxlanId, l.VNI))
	}
	if have := ipString(vx.SrcAddr); have != canonIP(l.Local) {
		why = append(why, fmt.Sprintf("local %s -> %s", orNone(have), orNone(l.Local)))
	}
	if vx.Port != vxlanPort(l) {
		why = append(why, fmt.Sprintf("port %d -> %d", vx.Port, vxlanPort(l)))
	}
	if !vx.Learning {
		why = append(why, "learning off -> on")
	}
	if g := ipString(vx.Group); g != "" {
		why = append(why, fmt.Sprintf("group %s -> none", g))
	}
	return why
}

// vlanDiff lists the attributes of cur that differ from l and cannot
// change in place; parent is the index of l's parent.
func vlanDiff(cur netlink.Link, l sdn.Link, parent int) []string {
	v, ok := cur.(*netlink.Vlan)
	if !ok {
		return []string{fmt.Sprintf("kind %s -> vlan", cur.Type())}
	}
	var why []string
	if v.VlanId != l.VLAN {
		why = append(why, fmt.Sprintf("vlan %d -> %d", v.VlanId, l.VLAN))
	}
	if v.ParentIndex != parent {
		why = append(why, fmt.Sprintf("parent -> %s", l.Parent))
	}
	if v.VlanProtocol != netlink.VLAN_PROTOCOL_8021Q && v.VlanProtocol != netlink.VLAN_PROTOCOL_UNKNOWN {
		why = append(why, fmt.Sprintf("protocol %s -> 802.1Q", v.VlanProtocol))
	}
	return why
}

func ipString(ip net.IP) string {
	a, ok := netip.AddrFromSlice(ip)
	if !ok || a.IsUnspecified() {
		return ""
	}
	return a.Unmap().String()
}

func canonIP(s string) string {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return s
	}
	return a.Unmap().String()
}

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// ensureAttrs sets MTU, alias and master where they differ and brings the
// link up if it is down. A link already right is not touched, nor one a
// dry run would create: it is created with all of them.
func (p *pass) ensureAttrs(l sdn.Link, link netlink.Link) error {
	if link == nil {
		return nil
	}
	a := link.Attrs()
	if l.MTU > 0 && a.MTU != l.MTU {
		act := fmt.Sprintf("set mtu of %s to %d", l.Name, l.MTU)
		if err := p.do(act, func() error { return p.k.h.LinkSetMTU(link, l.MTU) }); err != nil {
			return err
		}
	}
	if a.Alias != l.Alias {
		act := fmt.Sprintf("set alias of %s to %q", l.Name, l.Alias)
		if err := p.do(act, func() error { return p.k.h.LinkSetAlias(link, l.Alias) }); err != nil {
			return err
		}
	}
	if err := p.ensureMaster(l, link, a.MasterIndex); err != nil {
		return err
	}
	if a.Flags&net.FlagUp != 0 {
		return nil
	}
	return p.do(fmt.Sprintf("set %s up", l.Name), func() error { return p.k.h.LinkSetUp(link) })
}

// ensureMaster enslaves a port to its bridge, or frees a plan bridge
// someone enslaved.
func (p *pass) ensureMaster(l sdn.Link, link netlink.Link, have int) error {
	if l.Master == "" {
		if have == 0 {
			return nil
		}
		return p.do(fmt.Sprintf("set %s nomaster", l.Name), func() error { return p.k.h.LinkSetNoMaster(link) })
	}
	want := 0
	if m := p.links[l.Master]; m != nil {
		want = m.Attrs().Index
	} else if !p.dry {
		return fmt.Errorf("set master of %s: bridge %q not found", l.Name, l.Master)
	}
	if want != 0 && have == want {
		return nil
	}
	act := fmt.Sprintf("set master of %s to %s", l.Name, l.Master)
	return p.do(act, func() error { return p.k.h.LinkSetMasterByIndex(link, want) })
}

// ensureAddrs gives a managed link exactly the plan's addresses. IPv6 and
// IPv4 link-local addresses the kernel assigns are left alone unless the
// plan names them.
func (p *pass) ensureAddrs(l sdn.Link, link netlink.Link) error {
	want := make(map[netip.Prefix]bool, len(l.Addresses))
	for _, s := range l.Addresses {
		pfx, err := netip.ParsePrefix(s)
		if err != nil {
			return fmt.Errorf("%w: link %q: address %q", ErrInvalidPlan, l.Name, s)
		}
		want[pfx] = true
	}
	have := map[netip.Prefix]bool{}
	if link != nil && !p.created[l.Name] {
		for _, pfx := range p.addrs[link.Attrs().Index] {
			have[pfx] = true
		}
	}
	for _, pfx := range sortedPrefixes(have) {
		if want[pfx] || pfx.Addr().IsLinkLocalUnicast() {
			continue
		}
		act := fmt.Sprintf("delete address %s from %s", pfx, l.Name)
		if err := p.do(act, func() error { return p.k.h.AddrDel(link, nlAddr(pfx)) }); err != nil {
			return err
		}
	}
	for _, pfx := range sortedPrefixes(want) {
		if have[pfx] {
			continue
		}
		act := fmt.Sprintf("add address %s to %s", pfx, l.Name)
		if err := p.do(act, func() error { return p.k.h.AddrAdd(link, nlAddr(pfx)) }); err != nil {
			return err
		}
	}
	return nil
}

func prefixOf(a netlink.Addr) (netip.Prefix, bool) {
	if a.IPNet == nil {
		return netip.Prefix{}, false
	}
	ip, ok := netip.AddrFromSlice(a.IP)
	if !ok {
		return netip.Prefix{}, false
	}
	ones, _ := a.Mask.Size()
	return netip.PrefixFrom(ip.Unmap(), ones), true
}

func nlAddr(pfx netip.Prefix) *netlink.Addr {
	a := pfx.Addr()
	return &netlink.Addr{IPNet: &net.IPNet{IP: a.AsSlice(), Mask: net.CIDRMask(pfx.Bits(), a.BitLen())}}
}

func sortedPrefixes(m map[netip.Prefix]bool) []netip.Prefix {
	out := make([]netip.Prefix, 0, len(m))
	for p := range m {
		out = append(out, p)
	}
	slices.SortFunc(out, func(a, b netip.Prefix) int {
		if c := a.Addr().Compare(b.Addr()); c != 0 {
			return c
		}
		return a.Bits() - b.Bits()
	})
	return out
}

// zeroMAC is the all-zero MAC of the default forwarding entries that send
// unknown and broadcast traffic to every VXLAN peer.
var zeroMAC = net.HardwareAddr{0, 0, 0, 0, 0, 0}

// fdbState is the state of the agent's forwarding entries: permanent and
// without ARP, as iproute2 marks every static entry (`bridge fdb append
// ... self permanent`) and ifupdown2's entries are.
const fdbState = netlink.NUD_PERMANENT | netlink.NUD_NOARP

// ensureFDB makes a VXLAN device's all-zero-MAC forwarding entries name
// exactly the plan's peers (bridge fdb append 00:00:00:00:00:00 dev X dst
// PEER self permanent), in state fdbState. Entries the device learned are
// left alone. The kernel keeps one state for all the destinations of a
// MAC, and appending a destination sets it: entries in another state (an
// older agent's) are fixed by appending a kept peer again, unless a new
// peer is appended anyway.
func (p *pass) ensureFDB(l sdn.Link, link netlink.Link) error {
	want := make(map[netip.Addr]bool, len(l.Peers))
	for _, s := range l.Peers {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fmt.Errorf("%w: link %q: peer %q", ErrInvalidPlan, l.Name, s)
		}
		want[a.Unmap()] = true
	}
	have := map[netip.Addr]bool{}
	state := fdbState
	if link != nil && !p.created[l.Name] {
		for _, n := range p.fdb[link.Attrs().Index] {
			if a, ok := netip.AddrFromSlice(n.IP); ok {
				have[a.Unmap()] = true
				state = n.State
			}
		}
	}
	var kept []netip.Addr
	for _, a := range sortedAddrs(have) {
		if want[a] {
			kept = append(kept, a)
			continue
		}
		act := fmt.Sprintf("delete fdb %s from %s", a, l.Name)
		if err := p.do(act, func() error { return p.k.h.NeighDel(fdbEntry(link, a)) }); err != nil {
			return err
		}
	}
	added := false
	for _, a := range sortedAddrs(want) {
		if have[a] {
			continue
		}
		added = true
		act := fmt.Sprintf("add fdb %s to %s", a, l.Name)
		if err := p.do(act, func() error { return p.k.h.NeighAppend(fdbEntry(link, a)) }); err != nil {
			return err
		}
	}
	if state == fdbState || added || len(kept) == 0 {
		return nil
	}
	act := fmt.Sprintf("set state of fdb entries of %s to %#x (was %#x)", l.Name, fdbState, state)
	return p.do(act, func() error { return p.k.h.NeighAppend(fdbEntry(link, kept[0])) })
}

func fdbEntry(link netlink.Link, dst netip.Addr) *netlink.Neigh {
	return &netlink.Neigh{
		LinkIndex:    link.Attrs().Index,
		Family:       unix.AF_BRIDGE,
		State:        fdbState,
		Flags:        netlink.NTF_SELF,
		IP:           dst.AsSlice(),
		HardwareAddr: zeroMAC,
	}
}

func sortedAddrs(m map[netip.Addr]bool) []netip.Addr {
	out := make([]netip.Addr, 0, len(m))
	for a := range m {
		out = append(out, a)
	}
	slices.SortFunc(out, func(a, b netip.Addr) int { return a.Compare(b) })
	return out
}

// removeStale deletes managed links the plan no longer names, ports
// before bridges. Protected links are never deleted, even when they carry
// Moxxie's alias; other links (guests' tap devices on a plan bridge) are
// left alone.
func (p *pass) removeStale(plan sdn.Plan) error {
	keep := planNames(plan)
	var stale []netlink.Link
	for name, link := range p.links {
		if keep[name] || !managed(link) {
			continue
		}
		if why, ok := p.guarded[name]; ok {
			p.k.log.Warn("not deleting a protected link", "link", name, "reason", why)
			continue
		}
		stale = append(stale, link)
	}
	slices.SortFunc(stale, func(a, b netlink.Link) int {
		ab, bb := a.Type() == "bridge", b.Type() == "bridge"
		if ab != bb {
			if ab {
				return 1
			}
			return -1
		}
		return strings.Compare(a.Attrs().Name, b.Attrs().Name)
	})
	for _, link := range stale {
		act := fmt.Sprintf("delete %s %s", link.Type(), link.Attrs().Name)
		if err := p.do(act, func() error { return p.k.h.LinkDel(link) }); err != nil {
			return err
		}
		delete(p.links, link.Attrs().Name)
	}
	return nil
}

// bridgeOpts are a bridge's STP state and forward delay (in hundredths
// of a second), which package netlink does not parse.
type bridgeOpts struct {
	stp, delay uint32
}

// linkDump lists the namespace's links, as LinkList does, and the options
// of its bridges by ifindex, from one dump.
func (k *Kernel) linkDump() ([]netlink.Link, map[int]bridgeOpts, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETLINK, unix.NLM_F_DUMP)
	req.Sockets = k.raw
	req.AddData(nl.NewIfInfomsg(unix.AF_UNSPEC))
	msgs, execErr := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWLINK)
	if execErr != nil && !errors.Is(execErr, netlink.ErrDumpInterrupted) {
		return nil, nil, execErr
	}
	links := make([]netlink.Link, 0, len(msgs))
	opts := map[int]bridgeOpts{}
	for _, m := range msgs {
		link, err := netlink.LinkDeserialize(nil, m)
		if err != nil {
			return nil, nil, err
		}
		links = append(links, link)
		if link.Type() != "bridge" {
			continue
		}
		data, err := infoData(m)
		if err != nil {
			return nil, nil, err
		}
		var o bridgeOpts
		for _, a := range data {
			switch a.Attr.Type {
			case nl.IFLA_BR_STP_STATE:
				o.stp = nl.NativeEndian().Uint32(a.Value)
			case nl.IFLA_BR_FORWARD_DELAY:
				o.delay = nl.NativeEndian().Uint32(a.Value)
			}
		}
		opts[link.Attrs().Index] = o
	}
	return links, opts, execErr
}

// infoData returns the kind-specific attributes (IFLA_INFO_DATA) of an
// RTM_NEWLINK message.
func infoData(m []byte) ([]syscall.NetlinkRouteAttr, error) {
	if len(m) < unix.SizeofIfInfomsg {
		return nil, fmt.Errorf("short link message")
	}
	attrs, err := nl.ParseRouteAttr(m[unix.SizeofIfInfomsg:])
	if err != nil {
		return nil, err
	}
	for _, a := range attrs {
		if a.Attr.Type != unix.IFLA_LINKINFO {
			continue
		}
		info, err := nl.ParseRouteAttr(a.Value)
		if err != nil {
			return nil, err
		}
		for _, i := range info {
			if i.Attr.Type == nl.IFLA_INFO_DATA {
				return nl.ParseRouteAttr(i.Value)
			}
		}
	}
	return nil, nil
}

// setBridgeOptions turns STP off, then sets the forward delay to 0: the
// kernel accepts a delay under 2 s only with STP off.
func (k *Kernel) setBridgeOptions(index int) error {
	if err := k.setBridgeAttr(index, nl.IFLA_BR_STP_STATE, 0); err != nil {
		return fmt.Errorf("stp off: %w", err)
	}
	if err := k.setBridgeAttr(index, nl.IFLA_BR_FORWARD_DELAY, 0); err != nil {
		return fmt.Errorf("forward delay 0: %w", err)
	}
	return nil
}

func (k *Kernel) setBridgeAttr(index int, attr uint16, val uint32) error {
	req := nl.NewNetlinkRequest(unix.RTM_NEWLINK, unix.NLM_F_ACK)
	req.Sockets = k.raw
	msg := nl.NewIfInfomsg(unix.AF_UNSPEC)
	msg.Index = int32(index)
	req.AddData(msg)
	info := nl.NewRtAttr(unix.IFLA_LINKINFO, nil)
	info.AddRtAttr(nl.IFLA_INFO_KIND, nl.NonZeroTerminated("bridge"))
	data := info.AddRtAttr(nl.IFLA_INFO_DATA, nil)
	data.AddRtAttr(int(attr), nl.Uint32Attr(val))
	req.AddData(info)
	_, err := req.Execute(unix.NETLINK_ROUTE, 0)
	return err
}

// Netconf attributes and indexes (linux/netconf.h), which package unix
// lacks.
const (
	netconfaIfindex     = 1
	netconfaForwarding  = 2
	netconfIndexDefault = -2
)

// ipFamilies are the address families whose forwarding a bridge's
// addresses decide, with their names under /proc/sys/net.
var ipFamilies = []struct {
	af   int
	name string
}{{unix.AF_INET, "ipv4"}, {unix.AF_INET6, "ipv6"}}

// forwarding reads the forwarding flag of every link of the namespace in
// address family af, by ifindex, with one netconf dump; the index
// netconfIndexDefault is the value new links start with. A link without
// configuration in af (IPv6 is off on a link whose MTU is under 1280) is
// missing.
func (k *Kernel) forwarding(af int) (map[int]bool, error) {
	req := nl.NewNetlinkRequest(unix.RTM_GETNETCONF, unix.NLM_F_DUMP)
	req.Sockets = k.raw
	req.RawData = []byte{byte(af), 0, 0, 0} // struct netconfmsg, padded
	msgs, err := req.Execute(unix.NETLINK_ROUTE, unix.RTM_NEWNETCONF)
	if err != nil {
		return nil, err
	}
	out := make(map[int]bool, len(msgs))
	for _, m := range msgs {
		if len(m) < 4 {
			continue
		}
		attrs, err := nl.ParseRouteAttr(m[4:])
		if err != nil {
			return nil, err
		}
		index, on, haveIndex, haveOn := 0, false, false, false
		for _, a := range attrs {
			if len(a.Value) < 4 {
				continue
			}
			switch a.Attr.Type {
			case netconfaIfindex:
				index, haveIndex = int(int32(nl.NativeEndian().Uint32(a.Value))), true
			case netconfaForwarding:
				on, haveOn = nl.NativeEndian().Uint32(a.Value) != 0, true
			}
		}
		if haveIndex && haveOn {
			out[index] = on
		}
	}
	return out, nil
}

// ensureForwarding sets the IPv4 and IPv6 forwarding sysctls of every
// plan bridge as ifupdown2 does: on when the bridge has addresses, off
// when it has none. A bridge a dry run would create is seen with the
// values new links take.
func (p *pass) ensureForwarding(plan sdn.Plan) error {
	var have [2]map[int]bool
	for i, fam := range ipFamilies {
		m, err := dump(func() (map[int]bool, error) { return p.k.forwarding(fam.af) })
		if err != nil {
			return fmt.Errorf("read %s forwarding: %w", fam.name, err)
		}
		have[i] = m
	}
	type write struct{ act, path, value string }
	var writes []write
	for _, l := range plan.Links {
		if l.Kind != sdn.LinkBridge {
			continue
		}
		want := len(l.Addresses) > 0
		for i, fam := range ipFamilies {
			var on, ok bool
			if link := p.links[l.Name]; link != nil {
				on, ok = have[i][link.Attrs().Index]
			} else {
				on, ok = have[i][netconfIndexDefault]
				ok = ok && (fam.af != unix.AF_INET6 || l.MTU == 0 || l.MTU >= ipv6MinMTU)
			}
			if !ok || on == want {
				continue
			}
			value := "0"
			if want {
				value = "1"
			}
			writes = append(writes, write{
				act:   fmt.Sprintf("set %s forwarding of %s to %s", fam.name, l.Name, value),
				path:  "/proc/sys/net/" + fam.name + "/conf/" + l.Name + "/forwarding",
				value: value,
			})
		}
	}
	if len(writes) == 0 {
		return nil
	}
	run := func() error {
		for _, w := range writes {
			if err := p.do(w.act, func() error { return os.WriteFile(w.path, []byte(w.value+"\n"), 0o644) }); err != nil { // #nosec G306 -- writes an existing /proc/sys file, whose mode the kernel owns
				return err
			}
		}
		return nil
	}
	if p.dry {
		return run()
	}
	return p.k.inNetns(run)
}

// ipv6MinMTU is the smallest MTU of a link with IPv6.
const ipv6MinMTU = 1280
