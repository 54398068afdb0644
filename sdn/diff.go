package sdn

import (
	"cmp"
	"fmt"
	"slices"
	"strconv"
	"strings"
)

// Objects a Change is about.
const (
	ObjectLink     = "link"
	ObjectFirewall = "firewall"
)

// String returns the pair as "in>out".
func (p Pair) String() string { return p.In + ">" + p.Out }

// String returns the rule as "source>out".
func (s SNAT) String() string { return s.Source + ">" + s.Out }

// attr is one attribute of a link, rendered.
type attr struct {
	name, value string
	set         bool // the attribute is not its zero value
}

// attrs returns the attributes of l in a fixed order; Name is the key and
// is left out.
func attrs(l Link) []attr {
	str := func(name, v string) attr { return attr{name, v, v != ""} }
	num := func(name string, v int) attr { return attr{name, strconv.Itoa(v), v != 0} }
	list := func(name string, v []string) attr { return attr{name, fmt.Sprint(nonNil(v)), len(v) > 0} }
	return []attr{
		str("kind", string(l.Kind)),
		str("alias", l.Alias),
		str("vnet", l.Vnet),
		str("master", l.Master),
		str("parent", l.Parent),
		num("vlan", l.VLAN),
		num("vni", l.VNI),
		str("local", l.Local),
		num("port", l.Port),
		list("peers", l.Peers),
		num("mtu", l.MTU),
		list("addresses", l.Addresses),
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// Diff returns the changes that turn host plan old into new, ignoring
// Host and Version: for each link name in either plan, OpAdd (Fields the
// new link's attributes that are set, as "kind: bridge", "mtu: 1450"),
// OpRemove (no Fields) or OpChange (Fields each attribute that differs as
// "name: old -> new", lists as "[a b]", an empty string as ""), sorted by
// link name; then, if the firewalls differ, one firewall change whose
// Fields give what its sets gain and lose ("bridges: +v4", "allowed:
// +v1>v2 -v3>v1"; SNAT rules as "source>out"), groups as groupChanges
// describes them ("group v1: +v4", "groups: +[v5 v6]"). The firewall
// change is OpAdd when old's firewall is empty, OpRemove when new's is,
// else OpChange. Nil and empty lists are alike. The result is nil when
// the plans hold the same links and firewall.
func Diff(old, new Plan) []Change {
	var out []Change
	before := make(map[string]Link, len(old.Links))
	for _, l := range old.Links {
		before[l.Name] = l
	}
	after := make(map[string]Link, len(new.Links))
	for _, l := range new.Links {
		after[l.Name] = l
	}
	for name, l := range after {
		o, ok := before[name]
		if !ok {
			var fields []string
			for _, a := range attrs(l) {
				if a.set {
					fields = append(fields, a.name+": "+a.value)
				}
			}
			out = append(out, Change{Op: OpAdd, Object: ObjectLink, Name: name, Fields: fields})
			continue
		}
		if fields := linkChanges(o, l); len(fields) > 0 {
			out = append(out, Change{Op: OpChange, Object: ObjectLink, Name: name, Fields: fields})
		}
	}
	for name := range before {
		if _, ok := after[name]; !ok {
			out = append(out, Change{Op: OpRemove, Object: ObjectLink, Name: name})
		}
	}
	slices.SortFunc(out, func(a, b Change) int { return cmp.Compare(a.Name, b.Name) })
	if fields := firewallChanges(old.Firewall, new.Firewall); len(fields) > 0 {
		op := OpChange
		switch {
		case old.Firewall.empty():
			op = OpAdd
		case new.Firewall.empty():
			op = OpRemove
		}
		out = append(out, Change{Op: op, Object: ObjectFirewall, Name: ObjectFirewall, Fields: fields})
	}
	return out
}

// Equal reports whether p and q are plans of the same host holding the
// same links and firewall; Version is ignored, and nil and empty lists
// are alike.
func Equal(p, q Plan) bool {
	return p.Host == q.Host && len(Diff(p, q)) == 0
}

// linkChanges lists the attributes that differ between two links.
func linkChanges(o, n Link) []string {
	var fields []string
	oa, na := attrs(o), attrs(n)
	for i := range oa {
		if oa[i].value != na[i].value {
			fields = append(fields, fmt.Sprintf("%s: %s -> %s", oa[i].name, quoteEmpty(oa[i].value), quoteEmpty(na[i].value)))
		}
	}
	return fields
}

func quoteEmpty(s string) string {
	if s == "" {
		return `""`
	}
	return s
}

func (f Firewall) empty() bool {
	return len(f.Bridges) == 0 && len(f.Groups) == 0 && len(f.Allowed) == 0 && len(f.SNAT) == 0
}

// firewallChanges lists what each set of the firewall gains and loses.
func firewallChanges(o, n Firewall) []string {
	var fields []string
	add := func(name string, o, n []string) {
		if d := setDiff(o, n); d != "" {
			fields = append(fields, name+": "+d)
		}
	}
	add("bridges", o.Bridges, n.Bridges)
	fields = append(fields, groupChanges(o.Groups, n.Groups)...)
	add("allowed", strs(o.Allowed), strs(n.Allowed))
	add("snat", strs(o.SNAT), strs(n.SNAT))
	return fields
}

// groupChanges describes how the groups of a firewall change. A new group
// that shares bridges with an old one is that group changed, shown by the
// smallest bridge the two share and the members it gains and loses
// ("group v1: +v4 -v3"), so a large group gaining one bridge reads as
// one; the others are groups that appear or go, listed whole ("groups:
// +[v5 v6] -[v7 v8]"). Old and new groups are paired by the most shared
// bridges first.
func groupChanges(o, n [][]string) []string {
	type match struct{ i, j, shared int } // new group i, old group j
	var ms []match
	for i, g := range n {
		for j, h := range o {
			if k := len(intersect(g, h)); k > 0 {
				ms = append(ms, match{i, j, k})
			}
		}
	}
	slices.SortStableFunc(ms, func(a, b match) int { return cmp.Compare(b.shared, a.shared) })
	pairedNew := make(map[int]int, len(n)) // new group -> old group
	pairedOld := make(map[int]bool, len(o))
	for _, m := range ms {
		if _, ok := pairedNew[m.i]; ok || pairedOld[m.j] {
			continue
		}
		pairedNew[m.i], pairedOld[m.j] = m.j, true
	}
	var changed, whole []string
	for i, g := range n {
		j, ok := pairedNew[i]
		if !ok {
			whole = append(whole, "+"+groupString(g))
			continue
		}
		if d := setDiff(o[j], g); d != "" {
			changed = append(changed, "group "+intersect(g, o[j])[0]+": "+d)
		}
	}
	for j, h := range o {
		if !pairedOld[j] {
			whole = append(whole, "-"+groupString(h))
		}
	}
	slices.Sort(changed)
	slices.Sort(whole) // "+" sorts before "-"
	if len(whole) > 0 {
		changed = append([]string{"groups: " + strings.Join(whole, " ")}, changed...)
	}
	return changed
}

// intersect returns the elements of a also in b, sorted.
func intersect(a, b []string) []string {
	in := make(map[string]bool, len(b))
	for _, v := range b {
		in[v] = true
	}
	var out []string
	for _, v := range a {
		if in[v] {
			out = append(out, v)
		}
	}
	slices.Sort(out)
	return out
}

// groupString renders a group as "[v1 v2]", its members sorted.
func groupString(g []string) string {
	return "[" + strings.Join(slices.Sorted(slices.Values(g)), " ") + "]"
}

func strs[T fmt.Stringer](s []T) []string {
	out := make([]string, len(s))
	for i, v := range s {
		out[i] = v.String()
	}
	return out
}

// setDiff returns "+x +y -z": the elements of n missing from o, then those
// of o missing from n, each sorted; "" when the sets are equal.
func setDiff(o, n []string) string {
	in := func(s []string) map[string]bool {
		m := make(map[string]bool, len(s))
		for _, v := range s {
			m[v] = true
		}
		return m
	}
	om, nm := in(o), in(n)
	var plus, minus []string
	for v := range nm {
		if !om[v] {
			plus = append(plus, "+"+v)
		}
	}
	for v := range om {
		if !nm[v] {
			minus = append(minus, "-"+v)
		}
	}
	slices.Sort(plus)
	slices.Sort(minus)
	return strings.Join(append(plus, minus...), " ")
}

// FormatDiff renders the changes of one host for people, one line each
// under a "host:" heading:
//
//	pve1:
//	  + link v1 (bridge, mtu 1450)
//	  ~ link vxlan_v1: vni: 100 -> 200; peers: [a b] -> [a c]
//	  - link old
//	  ~ firewall: allowed: +v1>v2
//
// An added link shows its kind, master, VLAN or VNI, port, peers, MTU and
// addresses. With no changes it returns "pve1: no changes\n".
func FormatDiff(host string, ch []Change) string {
	var b strings.Builder
	if len(ch) == 0 {
		fmt.Fprintf(&b, "%s: no changes\n", host)
		return b.String()
	}
	fmt.Fprintf(&b, "%s:\n", host)
	for _, c := range ch {
		sym := "~"
		switch c.Op {
		case OpAdd:
			sym = "+"
		case OpRemove:
			sym = "-"
		}
		fmt.Fprintf(&b, "  %s %s", sym, c.Object)
		if c.Object != ObjectFirewall {
			fmt.Fprintf(&b, " %s", c.Name)
		}
		switch {
		case c.Op == OpAdd && c.Object == ObjectLink:
			if s := summary(c.Fields); s != "" {
				fmt.Fprintf(&b, " (%s)", s)
			}
		case len(c.Fields) > 0 && (c.Op == OpChange || c.Object == ObjectFirewall):
			fmt.Fprintf(&b, ": %s", strings.Join(c.Fields, "; "))
		}
		b.WriteByte('\n')
	}
	return b.String()
}

// summary renders the fields of an added link briefly: "bridge, mtu 1450".
func summary(fields []string) string {
	var parts []string
	for _, f := range fields {
		name, value, _ := strings.Cut(f, ": ")
		switch name {
		case "kind":
			parts = append(parts, value)
		case "alias", "vnet", "local", "parent":
			// Implied by the name and the host; left out to stay short.
		default:
			parts = append(parts, name+" "+value)
		}
	}
	return strings.Join(parts, ", ")
}
