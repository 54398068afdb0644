package agent

import (
	"errors"
	"net"
	"slices"
	"testing"

	"github.com/vishvananda/netlink"

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
