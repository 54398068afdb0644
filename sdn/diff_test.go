package sdn

import (
	"reflect"
	"testing"
)

func TestDiff(t *testing.T) {
	br := bridge("v1", 1450)
	vx := vxlan("v1", 100, "10.0.0.1", 4789, 1450, "10.0.0.2", "10.0.0.3")
	fw := Firewall{Bridges: []string{"v1", "v2", "v3"}, Groups: [][]string{{"v1", "v2"}}, Allowed: pairs("v1", "v3")}
	cases := []struct {
		name     string
		old, new Plan
		want     []Change
	}{
		{"empty", Plan{}, Plan{}, nil},
		{"same", Plan{Host: "h", Links: []Link{br, vx}, Firewall: fw}, Plan{Host: "h", Version: 3, Links: []Link{br, vx}, Firewall: fw}, nil},
		{"nil and empty lists", Plan{Links: []Link{bridge("v1", 1500)}}, Plan{Links: []Link{{
			Name: "v1", Kind: LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500, Addresses: []string{}, Peers: []string{},
		}}, Firewall: Firewall{Bridges: []string{}}}, nil},
		{"add", Plan{}, Plan{Links: []Link{vx, br}}, []Change{
			{Op: OpAdd, Object: ObjectLink, Name: "v1", Fields: []string{"kind: bridge", "alias: moxxie:v1", "vnet: v1", "mtu: 1450"}},
			{Op: OpAdd, Object: ObjectLink, Name: "vxlan_v1", Fields: []string{
				"kind: vxlan", "alias: moxxie:v1", "vnet: v1", "master: v1", "vni: 100", "local: 10.0.0.1",
				"port: 4789", "peers: [10.0.0.2 10.0.0.3]", "mtu: 1450",
			}},
		}},
		{"remove", Plan{Links: []Link{br, vx}}, Plan{Links: []Link{br}}, []Change{
			{Op: OpRemove, Object: ObjectLink, Name: "vxlan_v1"},
		}},
		{"change", Plan{Links: []Link{br, vx}}, Plan{Links: []Link{
			bridge("v1", 1400, "10.1.0.1/24"),
			vxlan("v1", 200, "10.0.0.1", 4789, 1400, "10.0.0.2", "10.0.0.4"),
		}}, []Change{
			{Op: OpChange, Object: ObjectLink, Name: "v1", Fields: []string{"mtu: 1450 -> 1400", "addresses: [] -> [10.1.0.1/24]"}},
			{Op: OpChange, Object: ObjectLink, Name: "vxlan_v1", Fields: []string{
				"vni: 100 -> 200", "peers: [10.0.0.2 10.0.0.3] -> [10.0.0.2 10.0.0.4]", "mtu: 1450 -> 1400",
			}},
		}},
		{"kind change", Plan{Links: []Link{vlanLink("eth0.10", "v1", "eth0", 10, 1500)}}, Plan{Links: []Link{
			{Name: "eth0.10", Kind: LinkBridge, Alias: "moxxie:v1", Vnet: "v1", MTU: 1500},
		}}, []Change{
			{Op: OpChange, Object: ObjectLink, Name: "eth0.10", Fields: []string{
				"kind: vlan -> bridge", `master: v1 -> ""`, `parent: eth0 -> ""`, "vlan: 10 -> 0",
			}},
		}},
		{"firewall add", Plan{}, Plan{Firewall: fw}, []Change{
			{Op: OpAdd, Object: ObjectFirewall, Name: "firewall", Fields: []string{"bridges: +v1 +v2 +v3", "groups: +[v1 v2]", "allowed: +v1>v3"}},
		}},
		{"firewall remove", Plan{Firewall: fw}, Plan{}, []Change{
			{Op: OpRemove, Object: ObjectFirewall, Name: "firewall", Fields: []string{"bridges: -v1 -v2 -v3", "groups: -[v1 v2]", "allowed: -v1>v3"}},
		}},
		{"firewall change", Plan{Firewall: fw}, Plan{Firewall: Firewall{
			Bridges: []string{"v1", "v3", "v4"},
			Groups:  [][]string{{"v1", "v4"}},
			Allowed: pairs("v1", "v3", "v3", "v1"),
			SNAT:    []SNAT{{Source: "10.1.0.0/24", Out: "eth0"}},
		}}, []Change{
			{Op: OpChange, Object: ObjectFirewall, Name: "firewall", Fields: []string{
				"bridges: +v4 -v2", "group v1: +v4 -v2", "allowed: +v3>v1", "snat: +10.1.0.0/24>eth0",
			}},
		}},
		{"groups: one gains a bridge, one goes, one comes", Plan{Firewall: Firewall{
			Bridges: []string{"a1", "a2", "a3", "b1", "b2", "c1", "c2"},
			Groups:  [][]string{{"a1", "a2", "a3"}, {"b1", "b2"}, {"c1", "c2"}},
		}}, Plan{Firewall: Firewall{
			Bridges: []string{"a1", "a2", "a3", "a4", "b1", "b2", "c1", "c2", "d1", "d2"},
			Groups:  [][]string{{"a1", "a2", "a3", "a4"}, {"c1", "c2"}, {"d1", "d2"}},
			Allowed: pairs("b1", "b2"),
		}}, []Change{
			{Op: OpChange, Object: ObjectFirewall, Name: "firewall", Fields: []string{
				"bridges: +a4 +d1 +d2", "groups: +[d1 d2] -[b1 b2]", "group a1: +a4", "allowed: +b1>b2",
			}},
		}},
		{"groups: a split pairs the larger part", Plan{Firewall: Firewall{
			Bridges: []string{"a1", "a2", "a3"},
			Groups:  [][]string{{"a1", "a2", "a3"}},
		}}, Plan{Firewall: Firewall{
			Bridges: []string{"a1", "a2", "a3", "b1"},
			Groups:  [][]string{{"a1", "b1"}, {"a2", "a3"}},
		}}, []Change{
			{Op: OpChange, Object: ObjectFirewall, Name: "firewall", Fields: []string{
				"bridges: +b1", "groups: +[a1 b1]", "group a2: -a1",
			}},
		}},
		{"links then firewall, by name", Plan{Links: []Link{bridge("b", 1500), bridge("y", 1500)}}, Plan{
			Links:    []Link{bridge("a", 1500), bridge("b", 1400), bridge("z", 1500)},
			Firewall: Firewall{Bridges: []string{"a"}},
		}, []Change{
			{Op: OpAdd, Object: ObjectLink, Name: "a", Fields: []string{"kind: bridge", "alias: moxxie:a", "vnet: a", "mtu: 1500"}},
			{Op: OpChange, Object: ObjectLink, Name: "b", Fields: []string{"mtu: 1500 -> 1400"}},
			{Op: OpRemove, Object: ObjectLink, Name: "y"},
			{Op: OpAdd, Object: ObjectLink, Name: "z", Fields: []string{"kind: bridge", "alias: moxxie:z", "vnet: z", "mtu: 1500"}},
			{Op: OpAdd, Object: ObjectFirewall, Name: "firewall", Fields: []string{"bridges: +a"}},
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := Diff(c.old, c.new)
			if !reflect.DeepEqual(got, c.want) {
				t.Fatalf("Diff =\n%#v\nwant\n%#v", got, c.want)
			}
		})
	}
}

func TestEqual(t *testing.T) {
	p := Plan{Host: "h", Version: 1, Links: []Link{bridge("v1", 1500)}}
	q := Plan{Host: "h", Version: 2, Links: []Link{bridge("v1", 1500)}}
	if !Equal(p, q) {
		t.Error("plans differing only in Version are not Equal")
	}
	q.Host = "g"
	if Equal(p, q) {
		t.Error("plans of different hosts are Equal")
	}
	q.Host = "h"
	q.Links[0].MTU = 1400
	if Equal(p, q) {
		t.Error("plans differing in an MTU are Equal")
	}
}

func TestDiffCompiled(t *testing.T) {
	in := realistic()
	before, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	in.Vnets[0].Tag = 101                  // web: VNI 100 -> 101
	in.Hosts[2].MTU = 9000                 // pve2: vx becomes 8950
	in.Zones[2].Nodes = []string{"pve3"}   // vl leaves pve1
	in.Allows = in.Allows[1:]              // beta no longer reaches web
	in.Subnets[1].Gateway = "192.168.10.2" // lab4's gateway moves
	after, err := Compile(in)
	if err != nil {
		t.Fatal(err)
	}
	got := FormatDiff("pve1", Diff(before["pve1"], after["pve1"]))
	want := `pve1:
  - link db
  - link eth0.100
  ~ link other: mtu: 1450 -> 8950
  ~ link vxlan_other: mtu: 1450 -> 8950
  ~ link vxlan_web: vni: 100 -> 101; mtu: 1450 -> 8950
  ~ link web: mtu: 1450 -> 8950
  ~ firewall: bridges: -db; groups: -[db web]; allowed: -edge1>web -other>web
`
	if got != want {
		t.Errorf("pve1:\n%s\nwant:\n%s", got, want)
	}
	got = FormatDiff("pve2", Diff(before["pve2"], after["pve2"]))
	want = `pve2:
  ~ link lab: addresses: [192.168.10.1/24 fd00:10::1/64] -> [192.168.10.2/24 fd00:10::1/64]
  ~ link other: mtu: 1450 -> 8950
  ~ link vxlan_other: mtu: 1450 -> 8950
  ~ link vxlan_web: vni: 100 -> 101; mtu: 1450 -> 8950
  ~ link web: mtu: 1450 -> 8950
  ~ firewall: allowed: -other>web
`
	if got != want {
		t.Errorf("pve2:\n%s\nwant:\n%s", got, want)
	}
	if got := FormatDiff("pve4", Diff(before["pve4"], after["pve4"])); got != "pve4: no changes\n" {
		t.Errorf("pve4: %q", got)
	}
}

func TestFormatDiff(t *testing.T) {
	ch := Diff(Plan{Links: []Link{bridge("old", 1500), vxlan("v1", 100, "10.0.0.1", 4789, 1450)}}, Plan{
		Links: []Link{
			bridge("v1", 1450, "10.1.0.1/24"),
			vxlan("v1", 200, "10.0.0.1", 4789, 1450, "10.0.0.2"),
			vlanLink("eth0.10", "v2", "eth0", 10, 1500),
		},
		Firewall: Firewall{Bridges: []string{"v1"}, SNAT: []SNAT{{Source: "10.1.0.0/24", Out: "eth0"}}},
	})
	want := `pve1:
  + link eth0.10 (vlan, master v2, vlan 10, mtu 1500)
  - link old
  + link v1 (bridge, mtu 1450, addresses [10.1.0.1/24])
  ~ link vxlan_v1: vni: 100 -> 200; peers: [] -> [10.0.0.2]
  + firewall: bridges: +v1; snat: +10.1.0.0/24>eth0
`
	if got := FormatDiff("pve1", ch); got != want {
		t.Errorf("FormatDiff =\n%s\nwant\n%s", got, want)
	}
	if got := FormatDiff("pve1", nil); got != "pve1: no changes\n" {
		t.Errorf("FormatDiff(nil) = %q", got)
	}
	hand := []Change{
		{Op: OpAdd, Object: ObjectLink, Name: "bare"},
		{Op: OpChange, Object: ObjectLink, Name: "nofields"},
		{Op: OpRemove, Object: ObjectFirewall, Name: "firewall"},
	}
	want = "h:\n  + link bare\n  ~ link nofields\n  - firewall\n"
	if got := FormatDiff("h", hand); got != want {
		t.Errorf("FormatDiff(hand-made) = %q, want %q", got, want)
	}
}
