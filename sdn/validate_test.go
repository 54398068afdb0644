package sdn

import (
	"strings"
	"testing"
)

func TestValidID(t *testing.T) {
	cases := map[string]bool{
		"v":         true,
		"v1":        true,
		"vnet1234":  true,
		"VNet1":     true,
		"vnet12345": false, // 9 characters
		"":          false,
		"1v":        false,
		"v-1":       false,
		"v_1":       false,
		"v.1":       false,
		"vé":        false,
	}
	for s, want := range cases {
		if got := ValidID(s); got != want {
			t.Errorf("ValidID(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidIfname(t *testing.T) {
	cases := map[string]bool{
		"eth0":             true,
		"enp129s0f0np0":    true,
		"bond0.100":        true,
		"vxlan_vnet1234":   true,
		"abcdefghijklmno":  true,  // 15
		"abcdefghijklmnop": false, // 16
		"":                 false,
		".":                false,
		"..":               false,
		"a/b":              false,
		"a:b":              false,
		"a b":              false,
		"a\tb":             false,
		"é":                false,
	}
	for s, want := range cases {
		if got := ValidIfname(s); got != want {
			t.Errorf("ValidIfname(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidNodeName(t *testing.T) {
	cases := map[string]bool{
		"pve1":                  true,
		"PVE-node-01":           true,
		"1pve":                  true,
		"p":                     true,
		strings.Repeat("a", 63): true,
		strings.Repeat("a", 64): false,
		"":                      false,
		"-pve":                  false,
		"pve-":                  false,
		"pve.example.com":       false,
		"pve_1":                 false,
	}
	for s, want := range cases {
		if got := ValidNodeName(s); got != want {
			t.Errorf("ValidNodeName(%q) = %v, want %v", s, got, want)
		}
	}
}

func TestValidateZone(t *testing.T) {
	cases := []struct {
		name  string
		z     Zone
		field string
		msg   string
	}{
		{"simple", Zone{ID: "z1", Type: ZoneSimple}, "", ""},
		{"simple mtu", Zone{ID: "z1", Type: ZoneSimple, MTU: 9000}, "", ""},
		{"vlan pool", Zone{ID: "z1", Type: ZoneVLAN, Pool: "vlans", Nodes: []string{"pve1", "pve2"}}, "", ""},
		{"vxlan port", Zone{ID: "z1", Type: ZoneVXLAN, Port: 8472, Pool: "vnis"}, "", ""},
		{"mtu bounds", Zone{ID: "z1", Type: ZoneVXLAN, MTU: 576}, "", ""},
		{"mtu max", Zone{ID: "z1", Type: ZoneVXLAN, MTU: 65535}, "", ""},
		{"no id", Zone{Type: ZoneSimple}, "id", "required"},
		{"bad id", Zone{ID: "zone_1", Type: ZoneSimple}, "id", `"zone_1"`},
		{"long id", Zone{ID: "zone12345", Type: ZoneSimple}, "id", "1-8"},
		{"no type", Zone{ID: "z1"}, "type", "required"},
		{"bad type", Zone{ID: "z1", Type: "evpn"}, "type", `"evpn"`},
		{"mtu low", Zone{ID: "z1", Type: ZoneSimple, MTU: 575}, "mtu", "575"},
		{"mtu high", Zone{ID: "z1", Type: ZoneSimple, MTU: 65536}, "mtu", "65536"},
		{"mtu negative", Zone{ID: "z1", Type: ZoneSimple, MTU: -1}, "mtu", "-1"},
		{"bad node", Zone{ID: "z1", Type: ZoneSimple, Nodes: []string{"pve 1"}}, "nodes", `"pve 1"`},
		{"twice node", Zone{ID: "z1", Type: ZoneSimple, Nodes: []string{"pve1", "pve1"}}, "nodes", "twice"},
		{"simple pool", Zone{ID: "z1", Type: ZoneSimple, Pool: "p"}, "pool", "simple"},
		{"bad pool", Zone{ID: "z1", Type: ZoneVLAN, Pool: "Bad Pool"}, "pool", `"Bad Pool"`},
		{"vlan port", Zone{ID: "z1", Type: ZoneVLAN, Port: 4789}, "port", "vxlan"},
		{"port high", Zone{ID: "z1", Type: ZoneVXLAN, Port: 65536}, "port", "65536"},
		{"port negative", Zone{ID: "z1", Type: ZoneVXLAN, Port: -1}, "port", "-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkField(t, ValidateZone(c.z), c.field, c.msg)
		})
	}
}

func TestValidateVnet(t *testing.T) {
	simple := Zone{ID: "s", Type: ZoneSimple}
	vlan := Zone{ID: "vl", Type: ZoneVLAN}
	vlanPool := Zone{ID: "vl", Type: ZoneVLAN, Pool: "vlans"}
	vx := Zone{ID: "vx", Type: ZoneVXLAN}
	vxPool := Zone{ID: "vx", Type: ZoneVXLAN, Pool: "vnis"}
	cases := []struct {
		name  string
		v     Vnet
		z     Zone
		field string
		msg   string
	}{
		{"simple", Vnet{ID: "v1", Zone: "s", Tenant: "acme", Alias: "web tier"}, simple, "", ""},
		{"simple tag", Vnet{ID: "v1", Zone: "s", Tag: 5}, simple, "tag", "no tag"},
		{"vlan", Vnet{ID: "v1", Zone: "vl", Tag: 1}, vlan, "", ""},
		{"vlan max", Vnet{ID: "v1", Zone: "vl", Tag: 4094}, vlan, "", ""},
		{"vlan 4095", Vnet{ID: "v1", Zone: "vl", Tag: 4095}, vlan, "tag", "1..4094"},
		{"vlan negative", Vnet{ID: "v1", Zone: "vl", Tag: -3}, vlan, "tag", "-3"},
		{"vlan no tag no pool", Vnet{ID: "v1", Zone: "vl"}, vlan, "tag", "no pool"},
		{"vlan no tag pool", Vnet{ID: "v1", Zone: "vl"}, vlanPool, "", ""},
		{"vxlan", Vnet{ID: "v1", Zone: "vx", Tag: 16777215}, vx, "", ""},
		{"vxlan vni high", Vnet{ID: "v1", Zone: "vx", Tag: 16777216}, vx, "tag", "1..16777215"},
		{"vxlan no tag no pool", Vnet{ID: "v1", Zone: "vx"}, vx, "tag", "VNI"},
		{"vxlan no tag pool", Vnet{ID: "v1", Zone: "vx"}, vxPool, "", ""},
		{"no id", Vnet{Zone: "s"}, simple, "id", "required"},
		{"long id", Vnet{ID: "vnet12345", Zone: "s"}, simple, "id", "vnet12345"},
		{"id with dash", Vnet{ID: "v-1", Zone: "s"}, simple, "id", "v-1"},
		{"no zone", Vnet{ID: "v1"}, simple, "zone", "required"},
		{"other zone", Vnet{ID: "v1", Zone: "x"}, simple, "zone", `"x"`},
		{"bad zone type", Vnet{ID: "v1", Zone: "q"}, Zone{ID: "q", Type: "evpn"}, "zone", "type"},
		{"bad tenant", Vnet{ID: "v1", Zone: "s", Tenant: "Acme"}, simple, "tenant", `"Acme"`},
		{"long alias", Vnet{ID: "v1", Zone: "s", Alias: strings.Repeat("a", 257)}, simple, "alias", "257"},
		{"control alias", Vnet{ID: "v1", Zone: "s", Alias: "a\nb"}, simple, "alias", "control"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkField(t, ValidateVnet(c.v, c.z), c.field, c.msg)
		})
	}
}

func TestValidateSubnet(t *testing.T) {
	cases := []struct {
		name  string
		s     Subnet
		field string
		msg   string
	}{
		{"v4", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.1.0.1", SNAT: true}, "", ""},
		{"v4 last usable", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.1.0.254"}, "", ""},
		{"v4 no gateway", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24"}, "", ""},
		{"v4 /31 network", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/31", Gateway: "10.1.0.0"}, "", ""},
		{"v4 /31 last", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/31", Gateway: "10.1.0.1"}, "", ""},
		{"v4 /32", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.7/32", Gateway: "10.1.0.7"}, "", ""},
		{"v6", Subnet{ID: "s1", Vnet: "v1", CIDR: "2001:db8::/64", Gateway: "2001:db8::1"}, "", ""},
		{"v6 all ones", Subnet{ID: "s1", Vnet: "v1", CIDR: "2001:db8::/64", Gateway: "2001:db8::ffff:ffff:ffff:ffff"}, "", ""},
		{"v6 /127", Subnet{ID: "s1", Vnet: "v1", CIDR: "2001:db8::/127", Gateway: "2001:db8::"}, "", ""},
		{"prefix only", Subnet{ID: "s1", Vnet: "v1", PrefixID: "p-123", Gateway: "10.1.0.1"}, "", ""},
		{"prefix and cidr", Subnet{ID: "s1", Vnet: "v1", PrefixID: "p-123", CIDR: "10.1.0.0/24"}, "", ""},
		{"no id", Subnet{Vnet: "v1", CIDR: "10.1.0.0/24"}, "id", "required"},
		{"bad id", Subnet{ID: "S 1", Vnet: "v1", CIDR: "10.1.0.0/24"}, "id", `"S 1"`},
		{"no vnet", Subnet{ID: "s1", CIDR: "10.1.0.0/24"}, "vnet", "required"},
		{"bad vnet", Subnet{ID: "s1", Vnet: "v_1", CIDR: "10.1.0.0/24"}, "vnet", "v_1"},
		{"bad prefix id", Subnet{ID: "s1", Vnet: "v1", PrefixID: "p\x00"}, "prefix_id", "prefix"},
		{"neither", Subnet{ID: "s1", Vnet: "v1"}, "cidr", "CIDR or a prefix ID"},
		{"bad cidr", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0"}, "cidr", `"10.1.0.0"`},
		{"host bits", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.5/24"}, "cidr", "10.1.0.0/24"},
		{"zoned", Subnet{ID: "s1", Vnet: "v1", CIDR: "fe80::%eth0/64"}, "cidr", "fe80"},
		{"mapped", Subnet{ID: "s1", Vnet: "v1", CIDR: "::ffff:10.1.0.0/120"}, "cidr", "IPv4-mapped"},
		{"bad gateway", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.1.0"}, "gateway", `"10.1.0"`},
		{"gateway outside", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.2.0.1"}, "gateway", "outside"},
		{"gateway family", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "2001:db8::1"}, "gateway", "family"},
		{"gateway network", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.1.0.0"}, "gateway", "network address"},
		{"gateway broadcast", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "10.1.0.255"}, "gateway", "broadcast"},
		{"gateway /30 broadcast", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.4/30", Gateway: "10.1.0.7"}, "gateway", "broadcast"},
		{"gateway v6 anycast", Subnet{ID: "s1", Vnet: "v1", CIDR: "2001:db8::/64", Gateway: "2001:db8::"}, "gateway", "network address"},
		{"gateway zoned", Subnet{ID: "s1", Vnet: "v1", CIDR: "2001:db8::/64", Gateway: "2001:db8::1%eth0"}, "gateway", "zone"},
		{"gateway mapped", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", Gateway: "::ffff:10.1.0.1"}, "gateway", "IPv4-mapped"},
		{"snat without gateway", Subnet{ID: "s1", Vnet: "v1", CIDR: "10.1.0.0/24", SNAT: true}, "snat", "gateway"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkField(t, ValidateSubnet(c.s), c.field, c.msg)
		})
	}
}

func TestValidateAllow(t *testing.T) {
	cases := []struct {
		name  string
		a     Allow
		field string
		msg   string
	}{
		{"vnets", Allow{ID: "a1", From: "vnet:v1", To: "vnet:v2"}, "", ""},
		{"tenants", Allow{ID: "a1", From: "tenant:acme", To: "tenant:shared-svc"}, "", ""},
		{"mixed", Allow{ID: "a1", From: "tenant:acme", To: "vnet:dns", Description: "DNS for acme"}, "", ""},
		{"no id", Allow{From: "vnet:v1", To: "vnet:v2"}, "id", "required"},
		{"no from", Allow{ID: "a1", To: "vnet:v2"}, "from", "required"},
		{"no to", Allow{ID: "a1", From: "vnet:v2"}, "to", "required"},
		{"bare", Allow{ID: "a1", From: "v1", To: "vnet:v2"}, "from", `"v1"`},
		{"bad kind", Allow{ID: "a1", From: "vnet:v1", To: "zone:z1"}, "to", `"zone:z1"`},
		{"bad vnet", Allow{ID: "a1", From: "vnet:v_1", To: "vnet:v2"}, "from", "v_1"},
		{"empty vnet", Allow{ID: "a1", From: "vnet:", To: "vnet:v2"}, "from", "vnet:"},
		{"empty tenant", Allow{ID: "a1", From: "vnet:v1", To: "tenant:"}, "to", "tenant:"},
		{"same", Allow{ID: "a1", From: "tenant:acme", To: "tenant:acme"}, "to", "both"},
		{"long description", Allow{ID: "a1", From: "vnet:v1", To: "vnet:v2", Description: strings.Repeat("x", 1025)}, "description", "1025"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkField(t, ValidateAllow(c.a), c.field, c.msg)
		})
	}
}

func TestValidateHost(t *testing.T) {
	cases := []struct {
		name  string
		h     Host
		field string
		msg   string
	}{
		{"full", Host{Name: "pve1", Address: "192.0.2.1", Uplink: "bond0", MTU: 9000, Management: "vmbr0"}, "", ""},
		{"v6", Host{Name: "pve1", Address: "2001:db8::1"}, "", ""},
		{"loopback", Host{Name: "pve1", Address: "127.0.0.1"}, "", ""},
		{"mtu min", Host{Name: "pve1", Address: "192.0.2.1", MTU: 576}, "", ""},
		{"no name", Host{Address: "192.0.2.1"}, "name", "required"},
		{"bad name", Host{Name: "pve_1", Address: "192.0.2.1"}, "name", `"pve_1"`},
		{"fqdn", Host{Name: "pve1.example.com", Address: "192.0.2.1"}, "name", "pve1.example.com"},
		{"no address", Host{Name: "pve1"}, "address", "required"},
		{"bad address", Host{Name: "pve1", Address: "pve1.example.com"}, "address", "not an IP"},
		{"zoned", Host{Name: "pve1", Address: "2001:db8::1%eth0"}, "address", "zone"},
		{"mapped", Host{Name: "pve1", Address: "::ffff:192.0.2.1"}, "address", "IPv4-mapped"},
		{"unspecified", Host{Name: "pve1", Address: "0.0.0.0"}, "address", "unspecified"},
		{"unspecified v6", Host{Name: "pve1", Address: "::"}, "address", "unspecified"},
		{"multicast", Host{Name: "pve1", Address: "239.1.1.1"}, "address", "multicast"},
		{"link-local", Host{Name: "pve1", Address: "fe80::1"}, "address", "link-local"},
		{"long uplink", Host{Name: "pve1", Address: "192.0.2.1", Uplink: "enp129s0f0np0v12"}, "uplink", "15"},
		{"bad uplink", Host{Name: "pve1", Address: "192.0.2.1", Uplink: "eth 0"}, "uplink", `"eth 0"`},
		{"bad management", Host{Name: "pve1", Address: "192.0.2.1", Management: "a/b"}, "management", `"a/b"`},
		{"mtu low", Host{Name: "pve1", Address: "192.0.2.1", MTU: 100}, "mtu", "100"},
		{"mtu high", Host{Name: "pve1", Address: "192.0.2.1", MTU: 70000}, "mtu", "70000"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			checkField(t, ValidateHost(c.h), c.field, c.msg)
		})
	}
}

func TestLastAddr(t *testing.T) {
	cases := map[string]string{
		"10.0.0.0/8":     "10.255.255.255",
		"10.1.0.0/24":    "10.1.0.255",
		"10.1.0.4/30":    "10.1.0.7",
		"0.0.0.0/0":      "255.255.255.255",
		"192.0.2.7/32":   "192.0.2.7",
		"172.16.0.0/12":  "172.31.255.255",
		"192.168.0.0/17": "192.168.127.255",
	}
	for p, want := range cases {
		pfx, err := parseCIDR(p)
		if err != nil {
			t.Fatal(err)
		}
		if got := lastAddr(pfx).String(); got != want {
			t.Errorf("lastAddr(%s) = %s, want %s", p, got, want)
		}
	}
}
