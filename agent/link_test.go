package agent

import (
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netlink/nl"
	"golang.org/x/sys/unix"

	"github.com/moxxie/moxxie/sdn"
)

func TestVXLANDiff(t *testing.T) {
	l := sdn.Link{Name: "vxlan_v1", Kind: sdn.LinkVXLAN, VNI: 100, Local: "192.0.2.1", Port: 4789}
	ok := func() *netlink.Vxlan {
		return &netlink.Vxlan{VxlanId: 100, SrcAddr: net.ParseIP("192.0.2.1"), Port: 4789, Learning: true}
	}
	cases := []struct {
		name string
		cur  netlink.Link
		l    sdn.Link
		want []string
	}{
		{"same", ok(), l, nil},
		{"default port", ok(), func() sdn.Link { l := l; l.Port = 0; return l }(), nil},
		{"vni", func() netlink.Link { v := ok(); v.VxlanId = 200; return v }(), l, []string{"vni 200 -> 100"}},
		{"local", func() netlink.Link { v := ok(); v.SrcAddr = net.ParseIP("192.0.2.9"); return v }(), l, []string{"local 192.0.2.9 -> 192.0.2.1"}},
		{"no local", func() netlink.Link { v := ok(); v.SrcAddr = nil; return v }(), l, []string{"local none -> 192.0.2.1"}},
		{"port", func() netlink.Link { v := ok(); v.Port = 8472; return v }(), l, []string{"port 8472 -> 4789"}},
		{"learning", func() netlink.Link { v := ok(); v.Learning = false; return v }(), l, []string{"learning off -> on"}},
		{"group", func() netlink.Link { v := ok(); v.Group = net.ParseIP("239.1.1.1"); return v }(), l, []string{"group 239.1.1.1 -> none"}},
		{"kind", &netlink.Bridge{}, l, []string{"kind bridge -> vxlan"}},
	}
	for _, c := range cases {
		if got := vxlanDiff(c.cur, c.l); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestVLANDiff(t *testing.T) {
	l := sdn.Link{Name: "eth0.100", Kind: sdn.LinkVLAN, Parent: "eth0", VLAN: 100}
	mk := func(id, parent int, proto netlink.VlanProtocol) *netlink.Vlan {
		v := &netlink.Vlan{VlanId: id, VlanProtocol: proto}
		v.ParentIndex = parent
		return v
	}
	cases := []struct {
		name string
		cur  netlink.Link
		want []string
	}{
		{"same", mk(100, 2, netlink.VLAN_PROTOCOL_8021Q), nil},
		{"tag", mk(200, 2, netlink.VLAN_PROTOCOL_8021Q), []string{"vlan 200 -> 100"}},
		{"parent", mk(100, 3, netlink.VLAN_PROTOCOL_8021Q), []string{"parent -> eth0"}},
		{"protocol", mk(100, 2, netlink.VLAN_PROTOCOL_8021AD), []string{"protocol 802.1ad -> 802.1Q"}},
		{"kind", &netlink.Bridge{}, []string{"kind bridge -> vlan"}},
	}
	for _, c := range cases {
		if got := vlanDiff(c.cur, l, 2); !slices.Equal(got, c.want) {
			t.Errorf("%s: %q, want %q", c.name, got, c.want)
		}
	}
}

func TestCheckPlan(t *testing.T) {
	br := func(name, alias string) sdn.Link {
		return sdn.Link{Name: name, Kind: sdn.LinkBridge, Alias: alias}
	}
	for _, links := range [][]sdn.Link{
		{br("", "moxxie:x")},
		{br("averyveryverylongname", "moxxie:x")},
		{br("v1", "moxxie:v1"), br("v1", "moxxie:v1")},
		{br("v1", "v1")},
		{{Name: "v1", Kind: "macvlan", Alias: "moxxie:v1"}},
		{{Name: "vx", Kind: sdn.LinkVXLAN, Alias: "moxxie:v1", VNI: 5, Master: "vmbr0"}},
		{br("v1", "moxxie:v1"), {Name: "vx", Kind: sdn.LinkVXLAN, Alias: "moxxie:v1", Master: "v1"}},
		{br("v1", "moxxie:v1"), {Name: "e.5", Kind: sdn.LinkVLAN, Alias: "moxxie:v1", Master: "v1", VLAN: 5}},
		{br("v1", "moxxie:v1"), {Name: "e.0", Kind: sdn.LinkVLAN, Alias: "moxxie:v1", Master: "v1", Parent: "e", VLAN: 4095}},
	} {
		if err := checkPlan(sdn.Plan{Links: links}); !errors.Is(err, ErrInvalidPlan) {
			t.Errorf("%+v: err = %v, want ErrInvalidPlan", links, err)
		}
	}
	if err := checkPlan(sdn.Plan{Links: []sdn.Link{br("v1", "moxxie:v1")}}); err != nil {
		t.Error(err)
	}
}

func TestOrdered(t *testing.T) {
	links := []sdn.Link{{Name: "vxlan_a", Kind: sdn.LinkVXLAN}, {Name: "b", Kind: sdn.LinkBridge}, {Name: "a", Kind: sdn.LinkBridge}}
	var names []string
	for _, l := range ordered(links) {
		names = append(names, l.Name)
	}
	if want := []string{"b", "a", "vxlan_a"}; !slices.Equal(names, want) {
		t.Errorf("%v, want %v", names, want)
	}
}

func TestNewKernel_NFTDefault(t *testing.T) {
	k, err := NewKernel(KernelConfig{})
	if err != nil {
		t.Skipf("no netlink here: %v", err)
	}
	defer k.Close()
	if !slices.Equal(k.cfg.NFT, []string{"nft"}) {
		t.Errorf("NFT = %q", k.cfg.NFT)
	}
	if err := k.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	if _, err := k.Verify(sdn.Plan{}); err == nil {
		t.Error("Verify after Close succeeded")
	}
}

// TestCreateRequest checks the one request that creates a link: up, with
// name, MTU, parent and master, and its kind's attributes. (The test
// kernel has no VLAN devices, so the VLAN request is checked here only.)
func TestCreateRequest(t *testing.T) {
	type attrs map[uint16][]byte
	parse := func(b []byte) attrs {
		t.Helper()
		as, err := nl.ParseRouteAttr(b)
		if err != nil {
			t.Fatal(err)
		}
		m := attrs{}
		for _, a := range as {
			m[a.Attr.Type] = a.Value
		}
		return m
	}
	u32 := func(v uint32) []byte { return nl.Uint32Attr(v) }
	be16 := func(v uint16) []byte { return binary.BigEndian.AppendUint16(nil, v) }
	cases := []struct {
		name       string
		l          sdn.Link
		spec       newLink
		master     int
		want, data attrs
	}{{
		name: "vlan",
		l:    sdn.Link{Name: "eth0.100", Kind: sdn.LinkVLAN, Parent: "eth0", VLAN: 100, MTU: 1500},
		spec: vlanSpec(sdn.Link{VLAN: 100}, 7), master: 3,
		want: attrs{unix.IFLA_IFNAME: []byte("eth0.100\x00"), unix.IFLA_MTU: u32(1500), unix.IFLA_LINK: u32(7), unix.IFLA_MASTER: u32(3)},
		data: attrs{nl.IFLA_VLAN_ID: nl.Uint16Attr(100), nl.IFLA_VLAN_PROTOCOL: be16(0x8100)},
	}, {
		name: "vxlan",
		l:    sdn.Link{Name: "vxlan_v1", Kind: sdn.LinkVXLAN, VNI: 100, MTU: 1450},
		spec: vxlanSpec(sdn.Link{VNI: 100, Port: 4790}, netip.MustParseAddr("192.0.2.1")), master: 4,
		want: attrs{unix.IFLA_IFNAME: []byte("vxlan_v1\x00"), unix.IFLA_MTU: u32(1450), unix.IFLA_MASTER: u32(4)},
		data: attrs{nl.IFLA_VXLAN_ID: u32(100), nl.IFLA_VXLAN_LOCAL: {192, 0, 2, 1}, nl.IFLA_VXLAN_PORT: be16(4790),
			nl.IFLA_VXLAN_LEARNING: {1}, nl.IFLA_VXLAN_L2MISS: {0}},
	}, {
		name: "bridge",
		l:    sdn.Link{Name: "v1", Kind: sdn.LinkBridge, MTU: 9000},
		spec: bridgeSpec(),
		want: attrs{unix.IFLA_IFNAME: []byte("v1\x00"), unix.IFLA_MTU: u32(9000)},
		data: attrs{nl.IFLA_BR_FORWARD_DELAY: u32(0), nl.IFLA_BR_STP_STATE: u32(0)},
	}}
	for _, c := range cases {
		b := createRequest(c.l, c.spec, c.master).Serialize()
		hdr, msg := b[:unix.SizeofNlMsghdr], b[unix.SizeofNlMsghdr:]
		flags := nl.NativeEndian().Uint16(hdr[6:8])
		if want := uint16(unix.NLM_F_REQUEST | unix.NLM_F_CREATE | unix.NLM_F_EXCL | unix.NLM_F_ACK); flags != want {
			t.Errorf("%s: flags %#x, want %#x", c.name, flags, want)
		}
		ifi := nl.DeserializeIfInfomsg(msg)
		if ifi.Flags&unix.IFF_UP == 0 || ifi.Change&unix.IFF_UP == 0 {
			t.Errorf("%s: not created up: flags %#x change %#x", c.name, ifi.Flags, ifi.Change)
		}
		got := parse(msg[unix.SizeofIfInfomsg:])
		for typ, v := range c.want {
			if !slices.Equal(got[typ], v) {
				t.Errorf("%s: attribute %d = %v, want %v", c.name, typ, got[typ], v)
			}
		}
		if _, ok := got[unix.IFLA_LINK]; ok && c.want[unix.IFLA_LINK] == nil {
			t.Errorf("%s: has a parent", c.name)
		}
		if _, ok := got[unix.IFLA_MASTER]; ok && c.want[unix.IFLA_MASTER] == nil {
			t.Errorf("%s: has a master", c.name)
		}
		info := parse(got[unix.IFLA_LINKINFO])
		if kind := string(info[nl.IFLA_INFO_KIND]); kind != c.spec.kind {
			t.Errorf("%s: kind %q", c.name, kind)
		}
		data := parse(info[nl.IFLA_INFO_DATA])
		for typ, v := range c.data {
			if !slices.Equal(data[typ], v) {
				t.Errorf("%s: data attribute %d = %v, want %v", c.name, typ, data[typ], v)
			}
		}
	}
	// The bridge's forward delay comes before its STP state.
	data, err := infoData(createRequest(cases[2].l, bridgeSpec(), 0).Serialize()[unix.SizeofNlMsghdr:])
	if err != nil || len(data) != 2 || data[0].Attr.Type != nl.IFLA_BR_FORWARD_DELAY {
		t.Errorf("bridge data %v, %v: want the forward delay first", data, err)
	}
}
