package sdn

import (
	"cmp"
	"encoding/json"
	"errors"
	"reflect"
	"slices"
	"testing"
)

// intentReader builds an intent from fuzz bytes: each byte picks from a
// small vocabulary, so names, tags, addresses and prefixes collide often
// and both valid and invalid values appear. Past the end it reads zeros.
type intentReader struct{ b []byte }

func (r *intentReader) next() int {
	if len(r.b) == 0 {
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return int(c)
}

func pick[T any](r *intentReader, s ...T) T { return s[r.next()%len(s)] }

// mostly returns good most of the time and, for about one byte in eight,
// one of bad.
func mostly[T any](r *intentReader, good T, bad ...T) T {
	if c := r.next(); c >= 224 && len(bad) > 0 {
		return bad[c%len(bad)]
	}
	return good
}

func (r *intentReader) intent() Intent {
	var in Intent
	names := []string{"pve1", "pve2", "pve3", "pve4"}
	v6 := r.next()%4 == 0
	for i := range r.next() % 5 {
		addr := "10.0.0." + string(rune('1'+i))
		if v6 {
			addr = "2001:db8::" + string(rune('1'+i))
		}
		in.Hosts = append(in.Hosts, Host{
			Name:       mostly(r, names[i], "pve1", "pve_5"),
			Address:    mostly(r, addr, "10.0.0.1", "2001:db8::1", "fe80::1", "x"),
			Uplink:     pick(r, "eth0", "eth0", "bond0", "enp129s0f0np0", "enp129s0f0", "", "toolonginterface", "v1"),
			MTU:        pick(r, 0, 0, 9000, 1500, 1280, 576, 100),
			Management: pick(r, "", "", "", "vmbr0", "eth0.10", "eth1"),
		})
	}
	zoneIDs := []string{"z1", "z2", "z3", "vx"}
	for i := range r.next() % 5 {
		z := Zone{
			ID:   mostly(r, zoneIDs[i], "z1", "bad_id"),
			Type: mostly(r, pick(r, ZoneVXLAN, ZoneVLAN, ZoneSimple), "evpn", ""),
			MTU:  mostly(r, 0, 1400, 1450, 1500, 8950, 9000, 100),
			Pool: mostly(r, "", "pool"),
			Port: mostly(r, 0, 4789, 8472, 70000),
		}
		if mask := r.next(); mask&1 != 0 {
			for i, n := range names {
				if mask&(2<<i) != 0 {
					z.Nodes = append(z.Nodes, n)
				}
			}
		}
		in.Zones = append(in.Zones, z)
	}
	vnetIDs := []string{"v1", "v2", "web", "db", "lab", "dmz"}
	var vnets []string
	for i := range r.next() % 7 {
		v := Vnet{
			ID:     mostly(r, vnetIDs[i], "v1", "eth0", "vmbr0", "v_1", "longvnet1"),
			Zone:   "nope",
			Tenant: pick(r, "", "a", "b"),
		}
		if len(in.Zones) > 0 {
			z := in.Zones[r.next()%len(in.Zones)]
			v.Zone = z.ID
			switch z.Type {
			case ZoneVLAN:
				v.Tag = pick(r, 10, 20, 100, 4094)
			case ZoneVXLAN:
				v.Tag = pick(r, 100, 200, 300, 5000, 16777215)
			}
		}
		v.Tag = mostly(r, v.Tag, 0, -1, 4095, 1<<24)
		v.Tenant = mostly(r, v.Tenant, "Bad")
		in.Vnets = append(in.Vnets, v)
		vnets = append(vnets, v.ID)
	}
	nets := []Subnet{
		{CIDR: "10.1.0.0/24", Gateway: "10.1.0.1"},
		{CIDR: "10.2.0.0/24", Gateway: "10.2.0.254"},
		{CIDR: "fd00::/64", Gateway: "fd00::1"},
		{CIDR: "10.3.0.0/31", Gateway: "10.3.0.0"},
		{CIDR: "10.1.0.0/16", Gateway: "10.1.0.1"},
		{CIDR: "10.4.0.0/24"},
	}
	for i := range r.next() % 5 {
		s := pick(r, nets...)
		s.ID = mostly(r, "s"+string(rune('1'+i)), "s1", "S")
		s.Vnet = "v1"
		if len(vnets) > 0 {
			s.Vnet = vnets[r.next()%len(vnets)]
		}
		s.SNAT = s.Gateway != "" && pick(r, false, true)
		s.CIDR = mostly(r, s.CIDR, "10.1.0.5/24", "", "bad")
		s.Gateway = mostly(r, s.Gateway, "10.1.0.255", "10.9.0.1", "fd00::")
		s.PrefixID = pick(r, "", "p1")
		in.Subnets = append(in.Subnets, s)
	}
	sels := []string{"vnet:v1", "vnet:v2", "vnet:web", "tenant:a", "tenant:b", "vnet:gone"}
	for i := range r.next() % 4 {
		in.Allows = append(in.Allows, Allow{
			ID:   mostly(r, "a"+string(rune('1'+i)), "a1"),
			From: mostly(r, pick(r, sels...), "zone:z1"),
			To:   pick(r, sels...),
		})
	}
	return in
}

// reversed returns in with every slice reversed (copies).
func reversed(in Intent) Intent {
	rev := func(s []string) []string { s = slices.Clone(s); slices.Reverse(s); return s }
	out := Intent{
		Hosts:   slices.Clone(in.Hosts),
		Zones:   slices.Clone(in.Zones),
		Vnets:   slices.Clone(in.Vnets),
		Subnets: slices.Clone(in.Subnets),
		Allows:  slices.Clone(in.Allows),
	}
	for i := range out.Zones {
		out.Zones[i].Nodes = rev(out.Zones[i].Nodes)
	}
	slices.Reverse(out.Hosts)
	slices.Reverse(out.Zones)
	slices.Reverse(out.Vnets)
	slices.Reverse(out.Subnets)
	slices.Reverse(out.Allows)
	return out
}

// FuzzCompile compiles intents built from random bytes and checks that
// Compile never panics, is deterministic and independent of input order,
// fails only with an *Error naming a field, and returns well-formed plans
// that Diff and Equal treat consistently.
func FuzzCompile(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, data []byte) {
		r := &intentReader{b: data}
		in := r.intent()
		plans, err := Compile(in)
		again, err2 := Compile(in)
		if !reflect.DeepEqual(plans, again) || !reflect.DeepEqual(err, err2) {
			t.Fatalf("Compile is not deterministic: %v / %v", err, err2)
		}
		rplans, rerr := Compile(reversed(in))
		if (err == nil) != (rerr == nil) {
			t.Fatalf("reversed input: error %v, original %v", rerr, err)
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Field == "" || e.Msg == "" {
				t.Fatalf("error %v (%T) is not an *sdn.Error naming a field", err, err)
			}
			if plans != nil {
				t.Fatal("plans returned with an error")
			}
			return
		}
		if !reflect.DeepEqual(plans, rplans) {
			t.Fatal("reversed input compiled differently")
		}
		if len(plans) != len(in.Hosts) {
			t.Fatalf("%d plans for %d hosts", len(plans), len(in.Hosts))
		}
		for name, p := range plans {
			checkPlan(t, name, p)
			checkReach(t, in, name, p.Firewall)
		}
	})
}

// reaches reports whether fw lets routed traffic from bridge a reach
// bridge b: both in one group, or the pair allowed.
func reaches(fw Firewall, a, b string) bool {
	for _, g := range fw.Groups {
		if slices.Contains(g, a) && slices.Contains(g, b) {
			return true
		}
	}
	return slices.Contains(fw.Allowed, Pair{In: a, Out: b})
}

// checkReach checks fw lets bridge a reach bridge b exactly when the
// intent says: the vnets have one tenant, or an allow rule matches.
func checkReach(t *testing.T, in Intent, name string, fw Firewall) {
	t.Helper()
	tenant := make(map[string]string, len(in.Vnets))
	for _, v := range in.Vnets {
		tenant[v.ID] = v.Tenant
	}
	match := func(sel, vnet string) bool {
		return sel == "vnet:"+vnet || sel == "tenant:"+tenant[vnet]
	}
	for _, a := range fw.Bridges {
		for _, b := range fw.Bridges {
			if a == b {
				continue
			}
			want := tenant[a] == tenant[b]
			for _, r := range in.Allows {
				want = want || match(r.From, a) && match(r.To, b)
			}
			if got := reaches(fw, a, b); got != want {
				t.Fatalf("%s: %s reaches %s: %v, want %v (firewall %+v)", name, a, b, got, want, fw)
			}
		}
	}
}

// checkPlan checks the invariants of a compiled plan.
func checkPlan(t *testing.T, name string, p Plan) {
	t.Helper()
	if p.Host != name || p.Version != 0 || p.Links == nil {
		t.Fatalf("plan of %s: host %q, version %d, links nil %v", name, p.Host, p.Version, p.Links == nil)
	}
	seen := make(map[string]bool)
	var bridges, ports []string
	for _, l := range p.Links {
		if !ValidIfname(l.Name) || seen[l.Name] {
			t.Fatalf("%s: bad or repeated link name %q", name, l.Name)
		}
		seen[l.Name] = true
		if l.Alias != AliasPrefix+l.Vnet || l.MTU <= 0 {
			t.Fatalf("%s: link %+v", name, l)
		}
		switch l.Kind {
		case LinkBridge:
			if len(ports) > 0 || l.Name != l.Vnet || l.Master != "" {
				t.Fatalf("%s: bridge %+v out of place", name, l)
			}
			bridges = append(bridges, l.Name)
		case LinkVXLAN, LinkVLAN:
			if !slices.Contains(bridges, l.Master) || l.Master != l.Vnet {
				t.Fatalf("%s: port %s's master %q is not a bridge before it", name, l.Name, l.Master)
			}
			if l.Kind == LinkVXLAN && (l.VNI < 1 || l.VNI > MaxVNI || slices.Contains(l.Peers, l.Local) || !slices.IsSorted(l.Peers)) {
				t.Fatalf("%s: vxlan %+v", name, l)
			}
			if l.Kind == LinkVLAN && (l.VLAN < 1 || l.VLAN > MaxVLAN || l.Parent == "") {
				t.Fatalf("%s: vlan %+v", name, l)
			}
			ports = append(ports, l.Name)
		default:
			t.Fatalf("%s: link kind %q", name, l.Kind)
		}
		if !slices.IsSorted(l.Addresses) {
			t.Fatalf("%s: addresses of %s not sorted", name, l.Name)
		}
	}
	if !slices.IsSorted(bridges) || !slices.IsSorted(ports) {
		t.Fatalf("%s: links not in order: %v then %v", name, bridges, ports)
	}
	fw := p.Firewall
	if !slices.Equal(fw.Bridges, bridges) {
		t.Fatalf("%s: firewall bridges %v, links %v", name, fw.Bridges, bridges)
	}
	grouped := make(map[string]int)
	for i, g := range fw.Groups {
		if len(g) < 2 || !slices.IsSorted(g) {
			t.Fatalf("%s: group %v", name, g)
		}
		for _, b := range g {
			if _, ok := grouped[b]; ok || !slices.Contains(bridges, b) {
				t.Fatalf("%s: bridge %s of group %v is in another group or not a bridge", name, b, g)
			}
			grouped[b] = i
		}
	}
	if !slices.IsSortedFunc(fw.Groups, slices.Compare) {
		t.Fatalf("%s: groups not sorted: %v", name, fw.Groups)
	}
	for _, pr := range fw.Allowed {
		if pr.In == pr.Out || !slices.Contains(bridges, pr.In) || !slices.Contains(bridges, pr.Out) {
			t.Fatalf("%s: allowed pair %v", name, pr)
		}
		if gi, ok := grouped[pr.In]; ok {
			if gj, ok := grouped[pr.Out]; ok && gi == gj {
				t.Fatalf("%s: allowed pair %v within group %v", name, pr, fw.Groups[gi])
			}
		}
	}
	if !slices.IsSortedFunc(fw.Allowed, func(a, b Pair) int {
		return cmp.Or(cmp.Compare(a.In, b.In), cmp.Compare(a.Out, b.Out))
	}) || !slices.IsSortedFunc(fw.SNAT, func(a, b SNAT) int { return cmp.Compare(a.Source, b.Source) }) {
		t.Fatalf("%s: firewall not sorted: %+v", name, fw)
	}
	if d := Diff(p, p); d != nil {
		t.Fatalf("%s: Diff of a plan with itself: %v", name, d)
	}
	adds := Diff(Plan{}, p)
	for _, c := range adds {
		if c.Op != OpAdd {
			t.Fatalf("%s: Diff from nothing holds %v", name, c)
		}
	}
	if want := len(p.Links); len(adds) != want && len(adds) != want+1 {
		t.Fatalf("%s: %d changes from nothing for %d links", name, len(adds), want)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var q Plan
	if err := json.Unmarshal(b, &q); err != nil {
		t.Fatal(err)
	}
	if !Equal(p, q) {
		t.Fatalf("%s: plan differs after a JSON round trip: %v", name, Diff(p, q))
	}
	_ = FormatDiff(name, adds)
}
