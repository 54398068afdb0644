package sdn

import (
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// realistic is a four-host intent: a vxlan zone over three hosts with
// jumbo and standard uplinks, a single-host vxlan zone, a vlan zone on two
// hosts (one with a long uplink name), a simple zone on one host, two
// tenants, one allow rule, and a host in no zone.
func realistic() Intent {
	return Intent{
		Hosts: []Host{
			{Name: "pve3", Address: "10.0.0.3", Uplink: "enp129s0f0np0", MTU: 9000},
			{Name: "pve1", Address: "10.0.0.1", Uplink: "eth0", MTU: 9000, Management: "vmbr0"},
			{Name: "pve2", Address: "10.0.0.2", Uplink: "eth0"},
			{Name: "pve4", Address: "10.0.0.4", Uplink: "eth0"},
		},
		Zones: []Zone{
			{ID: "vx", Type: ZoneVXLAN, Nodes: []string{"pve1", "pve2", "pve3"}},
			{ID: "edge", Type: ZoneVXLAN, Nodes: []string{"pve1"}, Port: 8472},
			{ID: "vl", Type: ZoneVLAN, Nodes: []string{"pve3", "pve1", "pve9"}},
			{ID: "loc", Type: ZoneSimple, Nodes: []string{"pve2"}},
		},
		Vnets: []Vnet{
			{ID: "web", Zone: "vx", Tag: 100, Tenant: "acme"},
			{ID: "other", Zone: "vx", Tag: 300, Tenant: "beta"},
			{ID: "edge1", Zone: "edge", Tag: 5000, Tenant: "beta"},
			{ID: "db", Zone: "vl", Tag: 100, Tenant: "acme"},
			{ID: "lab", Zone: "loc"},
		},
		Subnets: []Subnet{
			{ID: "lab6", Vnet: "lab", CIDR: "fd00:10::/64", Gateway: "fd00:10::1"},
			{ID: "lab4", Vnet: "lab", CIDR: "192.168.10.0/24", Gateway: "192.168.10.1", SNAT: true},
			{ID: "web4", Vnet: "web", CIDR: "10.20.0.0/24", Gateway: "10.20.0.1", SNAT: true},
			{ID: "lab9", Vnet: "lab", CIDR: "192.168.99.0/24"},
		},
		Allows: []Allow{
			{ID: "betaweb", From: "tenant:beta", To: "vnet:web"},
			{ID: "dangling", From: "vnet:gone", To: "tenant:nobody"},
		},
	}
}

func bridge(name string, mtu int, addrs ...string) Link {
	return Link{Name: name, Kind: LinkBridge, Alias: AliasPrefix + name, Vnet: name, MTU: mtu, Addresses: addrs}
}

func vxlan(vnet string, vni int, local string, port, mtu int, peers ...string) Link {
	return Link{
		Name: "vxlan_" + vnet, Kind: LinkVXLAN, Alias: AliasPrefix + vnet, Vnet: vnet, Master: vnet,
		VNI: vni, Local: local, Port: port, Peers: peers, MTU: mtu,
	}
}

func vlanLink(name, vnet, parent string, vlan, mtu int) Link {
	return Link{
		Name: name, Kind: LinkVLAN, Alias: AliasPrefix + vnet, Vnet: vnet, Master: vnet,
		Parent: parent, VLAN: vlan, MTU: mtu,
	}
}

func pairs(s ...string) []Pair {
	var out []Pair
	for i := 0; i < len(s); i += 2 {
		out = append(out, Pair{In: s[i], Out: s[i+1]})
	}
	return out
}

func TestCompileRealistic(t *testing.T) {
	want := map[string]Plan{
		"pve1": {
			Host: "pve1",
			Links: []Link{
				bridge("db", 9000),
				bridge("edge1", 8950),
				bridge("other", 1450),
				bridge("web", 1450),
				vlanLink("eth0.100", "db", "eth0", 100, 9000),
				vxlan("edge1", 5000, "10.0.0.1", 8472, 8950), // alone in its zone: no peers
				vxlan("other", 300, "10.0.0.1", 4789, 1450, "10.0.0.2", "10.0.0.3"),
				vxlan("web", 100, "10.0.0.1", 4789, 1450, "10.0.0.2", "10.0.0.3"),
			},
			Firewall: Firewall{
				Bridges: []string{"db", "edge1", "other", "web"},
				Groups:  [][]string{{"db", "web"}, {"edge1", "other"}},
				Allowed: pairs("edge1", "web", "other", "web"),
			},
		},
		"pve2": {
			Host: "pve2",
			Links: []Link{
				bridge("lab", 1500, "192.168.10.1/24", "fd00:10::1/64"),
				bridge("other", 1450),
				bridge("web", 1450),
				vxlan("other", 300, "10.0.0.2", 4789, 1450, "10.0.0.1", "10.0.0.3"),
				vxlan("web", 100, "10.0.0.2", 4789, 1450, "10.0.0.1", "10.0.0.3"),
			},
			Firewall: Firewall{
				Bridges: []string{"lab", "other", "web"},
				Allowed: pairs("other", "web"),
				SNAT:    []SNAT{{Source: "192.168.10.0/24", Out: "eth0"}},
			},
		},
		"pve3": {
			Host: "pve3",
			Links: []Link{
				bridge("db", 9000),
				bridge("other", 1450),
				bridge("web", 1450),
				vlanLink("vl_db", "db", "enp129s0f0np0", 100, 9000), // enp129s0f0np0.100 is 17 characters
				vxlan("other", 300, "10.0.0.3", 4789, 1450, "10.0.0.1", "10.0.0.2"),
				vxlan("web", 100, "10.0.0.3", 4789, 1450, "10.0.0.1", "10.0.0.2"),
			},
			Firewall: Firewall{
				Bridges: []string{"db", "other", "web"},
				Groups:  [][]string{{"db", "web"}},
				Allowed: pairs("other", "web"),
			},
		},
		"pve4": {Host: "pve4", Links: []Link{}},
	}
	got, err := Compile(realistic())
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		for h := range want {
			if !reflect.DeepEqual(got[h], want[h]) {
				g, _ := json.MarshalIndent(got[h], "", "  ")
				w, _ := json.MarshalIndent(want[h], "", "  ")
				t.Errorf("plan of %s:\n%s\nwant:\n%s", h, g, w)
			}
		}
		t.FailNow()
	}
	if got["pve4"].Links == nil {
		t.Error("an empty plan's Links is nil, want an empty slice")
	}
	b, err := json.Marshal(got["pve4"])
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"host":"pve4","version":0,"links":[],"firewall":{}}`; string(b) != want {
		t.Errorf("empty plan JSON = %s, want %s", b, want)
	}
}

// TestCompileOrderIndependent checks that permuting every input slice
// changes nothing.
func TestCompileOrderIndependent(t *testing.T) {
	in := realistic()
	want, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	slices.Reverse(in.Hosts)
	slices.Reverse(in.Zones)
	slices.Reverse(in.Vnets)
	slices.Reverse(in.Subnets)
	slices.Reverse(in.Allows)
	got, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatal("reversed input compiled differently")
	}
}

// TestCompileJSONRoundTrip checks that a stored plan (JSON) is Equal to a
// fresh compile, so an unchanged intent is seen as no change.
func TestCompileJSONRoundTrip(t *testing.T) {
	plans, err := Compile(realistic())
	if err != nil {
		t.Fatal(err)
	}
	for h, p := range plans {
		b, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var q Plan
		if err := json.Unmarshal(b, &q); err != nil {
			t.Fatal(err)
		}
		q.Version = 7
		if !Equal(p, q) {
			t.Errorf("%s: plan differs after a JSON round trip: %v", h, Diff(p, q))
		}
	}
}

func TestCompileIPv6Underlay(t *testing.T) {
	in := Intent{
		Hosts: []Host{
			{Name: "a", Address: "2001:DB8:0::1", Uplink: "eth0"},
			{Name: "b", Address: "2001:db8::2", Uplink: "eth0", MTU: 9000},
		},
		Zones: []Zone{{ID: "z", Type: ZoneVXLAN}},
		Vnets: []Vnet{{ID: "v", Zone: "z", Tag: 7}},
	}
	plans, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []Link{bridge("v", 1430), vxlan("v", 7, "2001:db8::1", 4789, 1430, "2001:db8::2")}
	if got := plans["a"].Links; !reflect.DeepEqual(got, want) {
		t.Fatalf("links of a = %+v, want %+v", got, want)
	}
	if got := plans["b"].Links[1].Peers; !reflect.DeepEqual(got, []string{"2001:db8::1"}) {
		t.Fatalf("peers of b = %v, want the normalized address of a", got)
	}

	in.Zones[0].MTU = 1430
	if _, err := Compile(in); err != nil {
		t.Fatalf("MTU 1430 over an IPv6 underlay of 1500: %v", err)
	}
	in.Zones[0].MTU = 1450
	_, err = Compile(in)
	checkField(t, err, "zones[z].mtu", "1430")
	checkField(t, err, "zones[z].mtu", "IPv6 takes 70 bytes")
}

func TestCompileMTU(t *testing.T) {
	hosts := []Host{
		{Name: "a", Address: "10.0.0.1", Uplink: "eth0", MTU: 9000},
		{Name: "b", Address: "10.0.0.2", Uplink: "eth0", MTU: 9216},
	}
	cases := []struct {
		name  string
		zone  Zone
		mtu   int
		field string
		msg   string
	}{
		{"vxlan derived", Zone{ID: "z", Type: ZoneVXLAN}, 8950, "", ""},
		{"vxlan set", Zone{ID: "z", Type: ZoneVXLAN, MTU: 1500}, 1500, "", ""},
		{"vxlan at limit", Zone{ID: "z", Type: ZoneVXLAN, MTU: 8950}, 8950, "", ""},
		{"vxlan over", Zone{ID: "z", Type: ZoneVXLAN, MTU: 8951}, 0, "zones[z].mtu", "exceeds 8950"},
		{"vlan derived", Zone{ID: "z", Type: ZoneVLAN}, 9000, "", ""},
		{"vlan set", Zone{ID: "z", Type: ZoneVLAN, MTU: 1500}, 1500, "", ""},
		{"vlan over", Zone{ID: "z", Type: ZoneVLAN, MTU: 9216}, 0, "zones[z].mtu", "host a"},
		{"vlan one host", Zone{ID: "z", Type: ZoneVLAN, MTU: 9216, Nodes: []string{"b"}}, 9216, "", ""},
		{"simple derived", Zone{ID: "z", Type: ZoneSimple}, 1500, "", ""},
		{"simple set", Zone{ID: "z", Type: ZoneSimple, MTU: 65000}, 65000, "", ""},
		{"no hosts", Zone{ID: "z", Type: ZoneVXLAN, MTU: 65000, Nodes: []string{"c"}}, 0, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tag := 10
			if c.zone.Type == ZoneSimple {
				tag = 0
			}
			in := Intent{Hosts: hosts, Zones: []Zone{c.zone}, Vnets: []Vnet{{ID: "v", Zone: "z", Tag: tag}}}
			plans, err := Compile(in)
			checkField(t, err, c.field, c.msg)
			if err != nil {
				return
			}
			for _, p := range plans {
				for _, l := range p.Links {
					if l.MTU != c.mtu {
						t.Errorf("%s on %s: MTU %d, want %d", l.Name, p.Host, l.MTU, c.mtu)
					}
				}
			}
		})
	}
}

func TestCompileVLANNames(t *testing.T) {
	cases := []struct {
		uplink string
		tag    int
		want   string
	}{
		{"eth0", 10, "eth0.10"},
		{"bond0", 4094, "bond0.4094"},
		{"enp129s0f0", 4094, "enp129s0f0.4094"}, // exactly 15
		{"enp129s0f0n", 4094, "vl_v"},           // 16
		{"enp129s0f0np0", 1, "enp129s0f0np0.1"}, // exactly 15
		{"enp129s0f0np0", 10, "vl_v"},
	}
	for _, c := range cases {
		in := Intent{
			Hosts: []Host{{Name: "a", Address: "10.0.0.1", Uplink: c.uplink}},
			Zones: []Zone{{ID: "z", Type: ZoneVLAN}},
			Vnets: []Vnet{{ID: "v", Zone: "z", Tag: c.tag}},
		}
		plans, err := Compile(in)
		if err != nil {
			t.Fatal(err)
		}
		want := vlanLink(c.want, "v", c.uplink, c.tag, 1500)
		if got := plans["a"].Links[1]; !reflect.DeepEqual(got, want) {
			t.Errorf("uplink %s tag %d: %+v, want %+v", c.uplink, c.tag, got, want)
		}
	}
}

// base is a small valid intent the error cases change.
func base() Intent {
	return Intent{
		Hosts: []Host{
			{Name: "pve1", Address: "10.0.0.1", Uplink: "eth0"},
			{Name: "pve2", Address: "10.0.0.2", Uplink: "eth0"},
		},
		Zones: []Zone{
			{ID: "vx", Type: ZoneVXLAN},
			{ID: "vl", Type: ZoneVLAN},
			{ID: "s", Type: ZoneSimple},
		},
		Vnets: []Vnet{
			{ID: "v1", Zone: "vx", Tag: 100},
			{ID: "v2", Zone: "vl", Tag: 10},
			{ID: "v3", Zone: "s"},
		},
		Subnets: []Subnet{
			{ID: "s1", Vnet: "v3", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1", SNAT: true},
		},
	}
}

func TestCompileErrors(t *testing.T) {
	cases := []struct {
		name  string
		edit  func(in *Intent)
		field string
		msg   string
	}{
		{"base", func(*Intent) {}, "", ""},
		{"host twice", func(in *Intent) {
			in.Hosts = append(in.Hosts, Host{Name: "pve1", Address: "10.0.0.9"})
		}, "hosts[pve1].name", "twice"},
		{"address twice", func(in *Intent) { in.Hosts[1].Address = "10.0.0.1" }, "hosts[pve2].address", "host pve1"},
		{"address twice, spelled differently", func(in *Intent) {
			in.Hosts[0].Address, in.Hosts[1].Address = "2001:db8::1", "2001:DB8:0::1"
		}, "hosts[pve2].address", "2001:db8::1"},
		{"invalid host", func(in *Intent) { in.Hosts[0].MTU = 100 }, "hosts[pve1].mtu", "100"},
		{"uplink over 15", func(in *Intent) { in.Hosts[1].Uplink = "enp129s0f0np0abc" }, "hosts[pve2].uplink", "15"},
		{"invalid zone", func(in *Intent) { in.Zones[1].Port = 4789 }, "zones[vl].port", "vxlan"},
		{"zone twice", func(in *Intent) {
			in.Zones = append(in.Zones, Zone{ID: "vx", Type: ZoneVXLAN})
		}, "zones[vx].id", "twice"},
		{"zone missing", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "v9", Zone: "nope"})
		}, "vnets[v9].zone", `"nope"`},
		{"zone missing, bad id", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "v_9", Zone: "nope"})
		}, "vnets[v_9].id", "v_9"},
		{"zone empty", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "v9"})
		}, "vnets[v9].zone", "required"},
		{"invalid vnet", func(in *Intent) { in.Vnets[1].Tag = 5000 }, "vnets[v2].tag", "1..4094"},
		{"vnet twice", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "v1", Zone: "vx", Tag: 101})
		}, "vnets[v1].id", "twice"},
		{"VNI twice across zones", func(in *Intent) {
			in.Zones = append(in.Zones, Zone{ID: "vx2", Type: ZoneVXLAN, Nodes: []string{"pve2"}})
			in.Vnets = append(in.Vnets, Vnet{ID: "v4", Zone: "vx2", Tag: 100})
		}, "vnets[v4].tag", "VNI 100 of vnet v4 is already vnet v1's (zone vx)"},
		{"VLAN twice in a zone", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "v5", Zone: "vl", Tag: 10})
		}, "vnets[v5].tag", "already vnet v2's in zone vl"},
		{"VLAN twice on an uplink", func(in *Intent) {
			in.Zones = append(in.Zones, Zone{ID: "vl2", Type: ZoneVLAN, Nodes: []string{"pve2"}})
			in.Vnets = append(in.Vnets, Vnet{ID: "v6", Zone: "vl2", Tag: 10})
		}, "vnets[v6].tag", "uplink eth0 of host pve2 is already vnet v2's"},
		{"VLAN twice on a long uplink", func(in *Intent) {
			in.Hosts[1].Uplink = "enp129s0f0np0"
			in.Zones = append(in.Zones, Zone{ID: "vl2", Type: ZoneVLAN, Nodes: []string{"pve2"}})
			in.Vnets = append(in.Vnets, Vnet{ID: "v6", Zone: "vl2", Tag: 10})
		}, "vnets[v6].tag", "already vnet v2's"},
		{"VLAN twice on hosts apart", func(in *Intent) {
			in.Zones = append(in.Zones, Zone{ID: "vl2", Type: ZoneVLAN, Nodes: []string{"pve3"}})
			in.Hosts = append(in.Hosts, Host{Name: "pve3", Address: "10.0.0.3", Uplink: "eth1"})
			in.Zones[1].Nodes = []string{"pve1", "pve2"}
			in.Vnets = append(in.Vnets, Vnet{ID: "v6", Zone: "vl2", Tag: 10})
		}, "", ""},
		{"VNI not yet assigned", func(in *Intent) {
			in.Zones[0].Pool = "vnis"
			in.Vnets = append(in.Vnets, Vnet{ID: "v7", Zone: "vx"})
		}, "vnets[v7].tag", "no VNI yet"},
		{"VLAN not yet assigned", func(in *Intent) {
			in.Zones[1].Pool = "vlans"
			in.Vnets = append(in.Vnets, Vnet{ID: "v7", Zone: "vl"})
		}, "vnets[v7].tag", "no VLAN ID yet"},
		{"invalid subnet", func(in *Intent) { in.Subnets[0].Gateway = "10.1.0.255" }, "subnets[s1].gateway", "broadcast"},
		{"subnet twice", func(in *Intent) {
			in.Subnets = append(in.Subnets, Subnet{ID: "s1", Vnet: "v1", CIDR: "10.9.0.0/24"})
		}, "subnets[s1].id", "twice"},
		{"subnet vnet missing", func(in *Intent) {
			in.Subnets = append(in.Subnets, Subnet{ID: "s9", Vnet: "v9", CIDR: "10.9.0.0/24"})
		}, "subnets[s9].vnet", `"v9"`},
		{"subnet unresolved", func(in *Intent) {
			in.Subnets = append(in.Subnets, Subnet{ID: "s9", Vnet: "v1", PrefixID: "p1"})
		}, "subnets[s9].cidr", "prefix p1"},
		{"routed subnets overlap", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "v8", Zone: "s"})
			in.Subnets = append(in.Subnets, Subnet{ID: "s2", Vnet: "v8", CIDR: "10.1.0.0/16", Gateway: "10.1.0.1"})
		}, "subnets[s2].cidr", "overlaps 10.1.0.0/24 of subnet s1"},
		{"routed subnets overlap on one vnet", func(in *Intent) {
			in.Subnets = append(in.Subnets, Subnet{ID: "s2", Vnet: "v3", CIDR: "10.1.0.128/25", Gateway: "10.1.0.129"})
		}, "subnets[s2].cidr", "overlaps"},
		{"subnets overlap on different hosts", func(in *Intent) {
			in.Zones = append(in.Zones, Zone{ID: "s2", Type: ZoneSimple, Nodes: []string{"pve2"}})
			in.Zones[2].Nodes = []string{"pve1"}
			in.Vnets = append(in.Vnets, Vnet{ID: "v8", Zone: "s2"})
			in.Subnets = append(in.Subnets, Subnet{ID: "s2", Vnet: "v8", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"})
		}, "", ""},
		{"subnets overlap without gateway", func(in *Intent) {
			in.Subnets = append(in.Subnets, Subnet{ID: "s2", Vnet: "v3", CIDR: "10.1.0.0/24"})
		}, "", ""},
		{"subnets overlap in overlay zones", func(in *Intent) {
			in.Subnets = append(in.Subnets,
				Subnet{ID: "s2", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
				Subnet{ID: "s3", Vnet: "v2", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"})
		}, "", ""},
		{"invalid allow", func(in *Intent) {
			in.Allows = []Allow{{ID: "a1", From: "zone:vx", To: "vnet:v1"}}
		}, "allows[a1].from", "zone:vx"},
		{"allow twice", func(in *Intent) {
			in.Allows = []Allow{{ID: "a1", From: "vnet:v2", To: "vnet:v1"}, {ID: "a1", From: "vnet:v1", To: "vnet:v2"}}
		}, "allows[a1].id", "twice"},
		{"vlan without uplink", func(in *Intent) { in.Hosts[1].Uplink = "" }, "hosts[pve2].uplink", "VLAN 10 of vnet v2"},
		{"snat without uplink", func(in *Intent) {
			in.Hosts[0].Uplink = ""
			in.Zones[1].Nodes = []string{"pve2"}
		}, "hosts[pve1].uplink", "masquerade subnet s1"},
		{"no uplink, nothing needs one", func(in *Intent) {
			in.Hosts[0].Uplink = ""
			in.Zones[1].Nodes = []string{"pve2"}
			in.Subnets[0].SNAT = false
		}, "", ""},
		{"bridge named like the uplink", func(in *Intent) {
			in.Vnets = append(in.Vnets, Vnet{ID: "eth0", Zone: "s"})
		}, "vnets[eth0].id", "host pve1's uplink"},
		{"bridge named like the management interface", func(in *Intent) {
			in.Hosts[1].Management = "vmbr0"
			in.Vnets = append(in.Vnets, Vnet{ID: "vmbr0", Zone: "s"})
		}, "vnets[vmbr0].id", "host pve2's management interface"},
		{"VXLAN device named like the uplink", func(in *Intent) {
			in.Hosts[0].Uplink = "vxlan_v1"
		}, "vnets[v1].id", "link vxlan_v1 of vnet v1 would be host pve1's uplink"},
		{"VLAN device is the management interface", func(in *Intent) {
			in.Hosts[0].Management = "eth0.10"
		}, "vnets[v2].tag", "link eth0.10 of vnet v2 would be host pve1's management interface"},
		{"vxlan zone mixes families", func(in *Intent) {
			in.Hosts[1].Address = "2001:db8::2"
		}, "hosts[pve2].address", "mixes IPv4 and IPv6"},
		{"mixed families outside vxlan zones", func(in *Intent) {
			in.Hosts[1].Address = "2001:db8::2"
			in.Zones[0].Nodes = []string{"pve1"}
		}, "", ""},
		{"vxlan MTU over the underlay", func(in *Intent) { in.Zones[0].MTU = 1500 }, "zones[vx].mtu", "exceeds 1450"},
		{"vlan MTU over the uplink", func(in *Intent) { in.Zones[1].MTU = 1504 }, "zones[vl].mtu", "exceeds 1500"},
		{"nodes name a host not enrolled", func(in *Intent) { in.Zones[0].Nodes = []string{"pve1", "pve7"} }, "", ""},
		{"allow names what does not exist", func(in *Intent) {
			in.Allows = []Allow{{ID: "a1", From: "vnet:gone", To: "tenant:nobody"}}
		}, "", ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := base()
			c.edit(&in)
			_, err := Compile(in)
			checkField(t, err, c.field, c.msg)
		})
	}
}

func TestCompileSingleHostVXLAN(t *testing.T) {
	in := Intent{
		Hosts: []Host{{Name: "solo", Address: "10.0.0.1"}},
		Zones: []Zone{{ID: "z", Type: ZoneVXLAN}},
		Vnets: []Vnet{{ID: "v", Zone: "z", Tag: 1}},
	}
	plans, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	l := plans["solo"].Links[1]
	if l.Kind != LinkVXLAN || l.Peers != nil {
		t.Fatalf("vxlan link of a single-host zone = %+v, want no peers", l)
	}
}

func TestCompileNodesExcludeHost(t *testing.T) {
	in := base()
	in.Zones[0].Nodes = []string{"pve2"}
	plans, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range plans["pve1"].Links {
		if l.Vnet == "v1" {
			t.Errorf("pve1 holds %s of vnet v1, whose zone excludes it", l.Name)
		}
	}
	if slices.Contains(plans["pve1"].Firewall.Bridges, "v1") {
		t.Error("pve1's firewall lists bridge v1")
	}
	var vx Link
	for _, l := range plans["pve2"].Links {
		if l.Name == "vxlan_v1" {
			vx = l
		}
	}
	if vx.Name == "" || vx.Peers != nil {
		t.Errorf("pve2's vxlan_v1 = %+v, want a link without peers", vx)
	}
}

func TestCompileFirewall(t *testing.T) {
	hosts := []Host{{Name: "h", Address: "10.0.0.1", Uplink: "eth0"}}
	zones := []Zone{{ID: "s", Type: ZoneSimple}}
	vnets := []Vnet{
		{ID: "a1", Zone: "s", Tenant: "a"},
		{ID: "a2", Zone: "s", Tenant: "a"},
		{ID: "b1", Zone: "s", Tenant: "b"},
		{ID: "n1", Zone: "s"},
		{ID: "n2", Zone: "s"},
	}
	cases := []struct {
		name   string
		allows []Allow
		want   []Pair
	}{
		{"tenants only", nil, nil},
		{"vnet to vnet, one direction", []Allow{{ID: "r", From: "vnet:b1", To: "vnet:a1"}}, pairs("b1", "a1")},
		{"tenant to tenant", []Allow{{ID: "r", From: "tenant:a", To: "tenant:b"}}, pairs("a1", "b1", "a2", "b1")},
		{"tenant to vnet without tenant", []Allow{{ID: "r", From: "tenant:b", To: "vnet:n1"}}, pairs("b1", "n1")},
		{"both ways, twice", []Allow{
			{ID: "r1", From: "vnet:a1", To: "vnet:b1"},
			{ID: "r2", From: "vnet:b1", To: "vnet:a1"},
			{ID: "r3", From: "tenant:a", To: "vnet:b1"},
		}, pairs("a1", "b1", "a2", "b1", "b1", "a1")},
		{"within a group: nothing beyond it", []Allow{
			{ID: "r1", From: "vnet:a1", To: "vnet:a2"},
			{ID: "r2", From: "tenant:a", To: "vnet:a1"},
		}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			plans, err := Compile(Intent{Hosts: hosts, Zones: zones, Vnets: vnets, Allows: c.allows})
			if err != nil {
				t.Fatal(err)
			}
			fw := plans["h"].Firewall
			if want := []string{"a1", "a2", "b1", "n1", "n2"}; !reflect.DeepEqual(fw.Bridges, want) {
				t.Errorf("bridges = %v, want %v", fw.Bridges, want)
			}
			// b1 is its tenant's only bridge here: no group of one.
			if want := [][]string{{"a1", "a2"}, {"n1", "n2"}}; !reflect.DeepEqual(fw.Groups, want) {
				t.Errorf("groups = %v, want %v", fw.Groups, want)
			}
			if !reflect.DeepEqual(fw.Allowed, c.want) {
				t.Errorf("allowed = %v, want %v", fw.Allowed, c.want)
			}
		})
	}
}

func TestCompileSNAT(t *testing.T) {
	in := Intent{
		Hosts: []Host{{Name: "h", Address: "10.0.0.1", Uplink: "bond0"}},
		Zones: []Zone{{ID: "s", Type: ZoneSimple}, {ID: "x", Type: ZoneVXLAN}},
		Vnets: []Vnet{{ID: "a", Zone: "s"}, {ID: "b", Zone: "s"}, {ID: "c", Zone: "x", Tag: 9}},
		Subnets: []Subnet{
			{ID: "s4", Vnet: "b", CIDR: "10.9.0.0/24", Gateway: "10.9.0.1", SNAT: true},
			{ID: "s3", Vnet: "a", CIDR: "10.10.0.0/24", Gateway: "10.10.0.1", SNAT: true},
			{ID: "s2", Vnet: "a", CIDR: "fd00::/64", Gateway: "fd00::1", SNAT: true},
			{ID: "s1", Vnet: "a", CIDR: "10.11.0.0/24", Gateway: "10.11.0.1"},
			{ID: "s5", Vnet: "c", CIDR: "10.12.0.0/24", Gateway: "10.12.0.1", SNAT: true},
		},
	}
	plans, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	want := []SNAT{{"10.10.0.0/24", "bond0"}, {"10.9.0.0/24", "bond0"}, {"fd00::/64", "bond0"}}
	if got := plans["h"].Firewall.SNAT; !reflect.DeepEqual(got, want) {
		t.Errorf("SNAT = %v, want %v", got, want)
	}
	wantAddrs := []string{"10.10.0.1/24", "10.11.0.1/24", "fd00::1/64"}
	if got := plans["h"].Links[0].Addresses; !reflect.DeepEqual(got, wantAddrs) {
		t.Errorf("addresses of a = %v, want %v", got, wantAddrs)
	}
	if got := plans["h"].Links[2].Addresses; got != nil {
		t.Errorf("vxlan vnet c's bridge holds %v, want no addresses", got)
	}
}

func TestCompileEmpty(t *testing.T) {
	plans, err := Compile(Intent{})
	if err != nil || len(plans) != 0 {
		t.Fatalf("Compile(empty) = %v, %v", plans, err)
	}
	plans, err = Compile(Intent{Hosts: []Host{{Name: "h", Address: "10.0.0.1"}}})
	if err != nil {
		t.Fatal(err)
	}
	if p := plans["h"]; p.Host != "h" || p.Links == nil || len(p.Links) != 0 || !reflect.DeepEqual(p.Firewall, Firewall{}) {
		t.Fatalf("plan of a host in no zone = %+v", p)
	}
}

// TestCompileFirewallGroups checks the firewall of many vnets of one
// tenant stays small: one group, no pairs, and one more vnet is one more
// member of the group in the diff.
func TestCompileFirewallGroups(t *testing.T) {
	in := Intent{
		Hosts: []Host{{Name: "h", Address: "10.0.0.1"}},
		Zones: []Zone{{ID: "z", Type: ZoneVXLAN}},
	}
	for i := range 200 {
		in.Vnets = append(in.Vnets, Vnet{ID: fmt.Sprintf("vn%03d", i), Zone: "z", Tag: 1000 + i, Tenant: "acme"})
	}
	plans, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	fw := plans["h"].Firewall
	if len(fw.Groups) != 1 || !slices.Equal(fw.Groups[0], fw.Bridges) || len(fw.Bridges) != 200 || fw.Allowed != nil {
		t.Fatalf("firewall: %d bridges, groups %d, %d allowed pairs; want one group of all 200 and no pairs",
			len(fw.Bridges), len(fw.Groups), len(fw.Allowed))
	}
	b, err := json.Marshal(fw)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 4096 {
		t.Errorf("firewall is %d bytes of JSON", len(b))
	}
	in.Vnets = append(in.Vnets, Vnet{ID: "vn200", Zone: "z", Tag: 1200, Tenant: "acme"})
	after, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	var fwChange []string
	for _, c := range Diff(plans["h"], after["h"]) {
		if c.Object == ObjectFirewall {
			fwChange = c.Fields
		}
	}
	if want := []string{"bridges: +vn200", "group vn000: +vn200"}; !slices.Equal(fwChange, want) {
		t.Errorf("firewall change %q, want %q", fwChange, want)
	}
}
