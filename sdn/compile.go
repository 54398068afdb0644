package sdn

import (
	"cmp"
	"net/netip"
	"slices"
	"strconv"
)

// Compile turns an intent into the plan of every host in in.Hosts, keyed
// by host name. A host no zone reaches gets an empty plan (Links an empty,
// non-nil slice). The intent is validated whole first: every object with
// the Validate functions, then the references between them, so the first
// error found (in the order hosts, zones, vnets, subnets, allows, each by
// ID) is returned as an *Error whose Field is the path in the intent
// ("zones[z1].mtu", "vnets[v1].tag", "hosts[pve1].uplink"). The result
// does not depend on the order of the input slices.
//
// Every vnet of a zone is a bridge named by the vnet ID on each host of
// the zone (the zone's Nodes that are enrolled, or every host when Nodes
// is empty). A vxlan vnet adds the port vxlan_<vnet> with the vnet's tag
// as VNI, the host's address as local address, the zone's port (4789 by
// default) and the addresses of the zone's other hosts as peers (none on
// a zone of one host). A vlan vnet adds the port <uplink>.<tag>, or
// vl_<vnet> when that would pass 15 characters, on the host's uplink.
//
// The MTU of a zone's bridges and ports is the zone's MTU when set; else,
// in a vxlan zone, the smallest uplink MTU of its hosts (1500 when a host
// states none) less 50 bytes (IPv4 underlay) or 70 (IPv6); in a vlan zone
// that smallest MTU; in a simple zone 1500. A vxlan zone's MTU above what
// the underlay carries, or a vlan zone's above the smallest uplink MTU, is
// refused.
//
// In simple zones, the host holds each subnet's gateway on the vnet's
// bridge ("10.1.0.1/24") and masquerades subnets marked SNAT out of its
// uplink; gateways and SNAT of subnets in vlan and vxlan zones are left to
// the routers of those networks, as in Proxmox. Simple-zone subnets with
// gateways that overlap on one host are refused.
//
// The firewall of a host allows routed traffic from bridge a to bridge b
// when both vnets have the same tenant (no tenant counts as one tenant)
// or an Allow rule's From matches a and its To matches b. The bridges of
// one tenant on the host form one of its Groups (when there are at least
// two), and Allowed holds only the pairs of different tenants that allow
// rules open, so the firewall grows with the vnets and the rules, not
// with the square of the vnets.
//
// Refused besides invalid objects: duplicate IDs or host names, two hosts
// with one address, references to missing zones or vnets, a vlan or vxlan
// vnet without a tag, a VNI used twice (across all zones), a VLAN ID used
// twice in a zone or twice on one host's uplink, a vxlan zone whose hosts
// mix IPv4 and IPv6, a vlan vnet on a host without uplink, and a link
// whose name would pass 15 characters, collide with another, or be the
// host's uplink or management interface.
func Compile(in Intent) (map[string]Plan, error) {
	c, err := newCompiler(in)
	if err != nil {
		return nil, err
	}
	plans := make(map[string]Plan, len(c.hosts))
	for _, h := range c.hosts {
		p, err := c.plan(h)
		if err != nil {
			return nil, err
		}
		plans[h.Name] = p
	}
	return plans, nil
}

// host is an enrolled host with its parsed address.
type host struct {
	Host
	addr netip.Addr
}

// subnet is a subnet with its parsed prefix and gateway.
type subnet struct {
	Subnet
	prefix  netip.Prefix
	gateway netip.Addr // invalid when the subnet has none
}

// zone is a zone with what Compile derives from its hosts.
type zone struct {
	Zone
	hosts map[string]bool // names of the zone's enrolled hosts
	mtu   int
	port  int
}

// compiler holds a validated intent, sorted and indexed.
type compiler struct {
	hosts   []host           // by name
	zones   map[string]*zone // by ID
	vnets   []Vnet           // by ID
	vnetIdx map[string]int   // vnet ID -> index in vnets
	subnets map[string][]subnet
	allows  []Allow // by ID
}

// byID sorts a copy of s by the key key returns.
func byID[T any](s []T, key func(T) string) []T {
	s = slices.Clone(s)
	slices.SortStableFunc(s, func(a, b T) int { return cmp.Compare(key(a), key(b)) })
	return s
}

func newCompiler(in Intent) (*compiler, error) {
	c := &compiler{
		zones:   make(map[string]*zone, len(in.Zones)),
		vnetIdx: make(map[string]int, len(in.Vnets)),
		subnets: make(map[string][]subnet),
	}
	if err := c.addHosts(in.Hosts); err != nil {
		return nil, err
	}
	if err := c.addZones(in.Zones); err != nil {
		return nil, err
	}
	if err := c.addVnets(in.Vnets); err != nil {
		return nil, err
	}
	if err := c.addSubnets(in.Subnets); err != nil {
		return nil, err
	}
	if err := c.addAllows(in.Allows); err != nil {
		return nil, err
	}
	return c, nil
}

func hostPath(name string) string { return "hosts[" + name + "]" }
func zonePath(id string) string   { return "zones[" + id + "]" }
func vnetPath(id string) string   { return "vnets[" + id + "]" }

func (c *compiler) addHosts(hosts []Host) error {
	byAddr := make(map[netip.Addr]string, len(hosts))
	for i, h := range byID(hosts, func(h Host) string { return h.Name }) {
		if err := ValidateHost(h); err != nil {
			return within(hostPath(h.Name), err)
		}
		if i > 0 && c.hosts[i-1].Name == h.Name {
			return errorf(hostPath(h.Name)+".name", "host %s is enrolled twice", h.Name)
		}
		a, _ := parseHostAddr(h.Address) // valid: ValidateHost parsed it
		if other, ok := byAddr[a]; ok {
			return errorf(hostPath(h.Name)+".address", "address %s of host %s is also host %s's", a, h.Name, other)
		}
		byAddr[a] = h.Name
		c.hosts = append(c.hosts, host{Host: h, addr: a})
	}
	return nil
}

func (c *compiler) addZones(zones []Zone) error {
	for _, z := range byID(zones, func(z Zone) string { return z.ID }) {
		if err := ValidateZone(z); err != nil {
			return within(zonePath(z.ID), err)
		}
		if c.zones[z.ID] != nil {
			return errorf(zonePath(z.ID)+".id", "zone ID %s is used twice", z.ID)
		}
		zz := &zone{Zone: z, hosts: make(map[string]bool)}
		nodes := make(map[string]bool, len(z.Nodes))
		for _, n := range z.Nodes {
			nodes[n] = true
		}
		var members []host
		for _, h := range c.hosts {
			if len(z.Nodes) == 0 || nodes[h.Name] {
				zz.hosts[h.Name] = true
				members = append(members, h)
			}
		}
		if err := zz.derive(members); err != nil {
			return err
		}
		c.zones[z.ID] = zz
	}
	return nil
}

// derive sets the zone's MTU and port from its hosts (sorted by name),
// checking that they can carry it.
func (z *zone) derive(members []host) error {
	z.port = z.Port
	if z.Type == ZoneVXLAN && z.port == 0 {
		z.port = DefaultVXLANPort
	}
	minMTU, minHost := DefaultMTU, ""
	for _, h := range members {
		mtu := cmp.Or(h.MTU, DefaultMTU)
		if minHost == "" || mtu < minMTU {
			minMTU, minHost = mtu, h.Name
		}
	}
	switch z.Type {
	case ZoneSimple:
		z.mtu = cmp.Or(z.MTU, DefaultMTU)
	case ZoneVLAN:
		if minHost != "" && z.MTU > minMTU {
			return errorf(zonePath(z.ID)+".mtu", "MTU %d of vlan zone %s exceeds %d, the uplink MTU of its host %s", z.MTU, z.ID, minMTU, minHost)
		}
		z.mtu = cmp.Or(z.MTU, minMTU)
	case ZoneVXLAN:
		overhead, family := VXLANOverhead4, "IPv4"
		for _, h := range members {
			if h.addr.Is4() != members[0].addr.Is4() {
				return errorf(hostPath(h.Name)+".address", "vxlan zone %s mixes IPv4 and IPv6 underlay addresses: host %s has %s, host %s has %s", z.ID, members[0].Name, members[0].addr, h.Name, h.addr)
			}
		}
		if len(members) > 0 && members[0].addr.Is6() {
			overhead, family = VXLANOverhead6, "IPv6"
		}
		limit := minMTU - overhead
		if minHost != "" && z.MTU > limit {
			return errorf(zonePath(z.ID)+".mtu", "MTU %d of vxlan zone %s exceeds %d: the uplink MTU of its host %s is %d and VXLAN over %s takes %d bytes", z.MTU, z.ID, limit, minHost, minMTU, family, overhead)
		}
		z.mtu = cmp.Or(z.MTU, limit)
	}
	return nil
}

func (c *compiler) addVnets(vnets []Vnet) error {
	vnis := make(map[int]Vnet)
	vlans := make(map[string]map[int]Vnet) // zone -> VLAN ID -> vnet
	for _, v := range byID(vnets, func(v Vnet) string { return v.ID }) {
		path := vnetPath(v.ID)
		z := c.zones[v.Zone]
		if z == nil {
			if err := checkID("id", "vnet", v.ID); err != nil {
				return within(path, err)
			}
			if v.Zone == "" {
				return errorf(path+".zone", "zone is required")
			}
			return errorf(path+".zone", "zone %q of vnet %s does not exist", v.Zone, v.ID)
		}
		if err := ValidateVnet(v, z.Zone); err != nil {
			return within(path, err)
		}
		if _, dup := c.vnetIdx[v.ID]; dup {
			return errorf(path+".id", "vnet ID %s is used twice", v.ID)
		}
		switch z.Type {
		case ZoneVXLAN:
			if v.Tag == 0 {
				return errorf(path+".tag", "vnet %s has no VNI yet", v.ID)
			}
			if o, ok := vnis[v.Tag]; ok {
				return errorf(path+".tag", "VNI %d of vnet %s is already vnet %s's (zone %s)", v.Tag, v.ID, o.ID, o.Zone)
			}
			vnis[v.Tag] = v
		case ZoneVLAN:
			if v.Tag == 0 {
				return errorf(path+".tag", "vnet %s has no VLAN ID yet", v.ID)
			}
			if vlans[v.Zone] == nil {
				vlans[v.Zone] = make(map[int]Vnet)
			}
			if o, ok := vlans[v.Zone][v.Tag]; ok {
				return errorf(path+".tag", "VLAN ID %d of vnet %s is already vnet %s's in zone %s", v.Tag, v.ID, o.ID, v.Zone)
			}
			vlans[v.Zone][v.Tag] = v
		}
		c.vnetIdx[v.ID] = len(c.vnets)
		c.vnets = append(c.vnets, v)
	}
	return nil
}

func (c *compiler) addSubnets(subnets []Subnet) error {
	seen := make(map[string]bool, len(subnets))
	for _, s := range byID(subnets, func(s Subnet) string { return s.ID }) {
		path := "subnets[" + s.ID + "]"
		if err := ValidateSubnet(s); err != nil {
			return within(path, err)
		}
		if seen[s.ID] {
			return errorf(path+".id", "subnet ID %s is used twice", s.ID)
		}
		seen[s.ID] = true
		if _, ok := c.vnetIdx[s.Vnet]; !ok {
			return errorf(path+".vnet", "vnet %q of subnet %s does not exist", s.Vnet, s.ID)
		}
		if s.CIDR == "" {
			return errorf(path+".cidr", "subnet %s has no CIDR: prefix %s is not resolved", s.ID, s.PrefixID)
		}
		p, _ := parseCIDR(s.CIDR) // valid: ValidateSubnet parsed it
		ss := subnet{Subnet: s, prefix: p}
		if s.Gateway != "" {
			ss.gateway, _ = netip.ParseAddr(s.Gateway)
		}
		c.subnets[s.Vnet] = append(c.subnets[s.Vnet], ss)
	}
	return nil
}

func (c *compiler) addAllows(allows []Allow) error {
	for i, a := range byID(allows, func(a Allow) string { return a.ID }) {
		path := "allows[" + a.ID + "]"
		if err := ValidateAllow(a); err != nil {
			return within(path, err)
		}
		if i > 0 && c.allows[i-1].ID == a.ID {
			return errorf(path+".id", "allow ID %s is used twice", a.ID)
		}
		c.allows = append(c.allows, a)
	}
	return nil
}

// vlanKey is a VLAN on a parent link.
type vlanKey struct {
	parent string
	vlan   int
}

// plan compiles the plan of host h.
func (c *compiler) plan(h host) (Plan, error) {
	p := Plan{Host: h.Name, Links: []Link{}}
	var (
		bridges, ports []Link
		vnets          []Vnet
		owner          = make(map[string]string) // link name -> vnet
		vlans          = make(map[vlanKey]string)
		routed         []subnet // simple-zone subnets with a gateway
	)
	claim := func(v Vnet, name, field string) error {
		if len(name) > MaxIfnameLen {
			return errorf(vnetPath(v.ID)+"."+field, "link name %s of vnet %s is longer than %d characters", name, v.ID, MaxIfnameLen)
		}
		if name == h.Uplink || name == h.Management {
			what := "uplink"
			if name != h.Uplink {
				what = "management interface"
			}
			return errorf(vnetPath(v.ID)+"."+field, "link %s of vnet %s would be host %s's %s", name, v.ID, h.Name, what)
		}
		if o, ok := owner[name]; ok {
			return errorf(vnetPath(v.ID)+"."+field, "link name %s of vnet %s is already vnet %s's on host %s", name, v.ID, o, h.Name)
		}
		owner[name] = v.ID
		return nil
	}
	for _, v := range c.vnets {
		z := c.zones[v.Zone]
		if !z.hosts[h.Name] {
			continue
		}
		vnets = append(vnets, v)
		alias := AliasPrefix + v.ID
		br := Link{Name: v.ID, Kind: LinkBridge, Alias: alias, Vnet: v.ID, MTU: z.mtu}
		if err := claim(v, br.Name, "id"); err != nil {
			return Plan{}, err
		}
		switch z.Type {
		case ZoneSimple:
			for _, s := range c.subnets[v.ID] {
				if !s.gateway.IsValid() {
					continue
				}
				br.Addresses = append(br.Addresses, netip.PrefixFrom(s.gateway, s.prefix.Bits()).String())
				routed = append(routed, s)
			}
			slices.Sort(br.Addresses)
		case ZoneVXLAN:
			port := Link{
				Name: "vxlan_" + v.ID, Kind: LinkVXLAN, Alias: alias, Vnet: v.ID, Master: v.ID,
				VNI: v.Tag, Local: h.addr.String(), Port: z.port, Peers: c.peers(z, h), MTU: z.mtu,
			}
			if err := claim(v, port.Name, "id"); err != nil {
				return Plan{}, err
			}
			ports = append(ports, port)
		case ZoneVLAN:
			if h.Uplink == "" {
				return Plan{}, errorf(hostPath(h.Name)+".uplink", "host %s has no uplink to carry VLAN %d of vnet %s (zone %s)", h.Name, v.Tag, v.ID, v.Zone)
			}
			k := vlanKey{h.Uplink, v.Tag}
			if o, ok := vlans[k]; ok {
				return Plan{}, errorf(vnetPath(v.ID)+".tag", "VLAN ID %d of vnet %s on uplink %s of host %s is already vnet %s's", v.Tag, v.ID, h.Uplink, h.Name, o)
			}
			vlans[k] = v.ID
			name := h.Uplink + "." + strconv.Itoa(v.Tag)
			if len(name) > MaxIfnameLen {
				name = "vl_" + v.ID
			}
			port := Link{
				Name: name, Kind: LinkVLAN, Alias: alias, Vnet: v.ID, Master: v.ID,
				Parent: h.Uplink, VLAN: v.Tag, MTU: z.mtu,
			}
			if err := claim(v, port.Name, "tag"); err != nil {
				return Plan{}, err
			}
			ports = append(ports, port)
		}
		bridges = append(bridges, br)
	}
	if err := checkOverlaps(h, routed); err != nil {
		return Plan{}, err
	}
	slices.SortFunc(bridges, func(a, b Link) int { return cmp.Compare(a.Name, b.Name) })
	slices.SortFunc(ports, func(a, b Link) int { return cmp.Compare(a.Name, b.Name) })
	p.Links = append(append(p.Links, bridges...), ports...)
	fw, err := c.firewall(h, vnets, routed)
	if err != nil {
		return Plan{}, err
	}
	p.Firewall = fw
	return p, nil
}

// peers returns the addresses of the hosts of vxlan zone z other than h,
// sorted, or nil when there are none.
func (c *compiler) peers(z *zone, h host) []string {
	var out []string
	for _, o := range c.hosts {
		if o.Name != h.Name && z.hosts[o.Name] {
			out = append(out, o.addr.String())
		}
	}
	slices.Sort(out)
	return out
}

// checkOverlaps refuses two subnets whose gateways host h holds if their
// prefixes overlap: the host could not route both.
func checkOverlaps(h host, routed []subnet) error {
	s := byID(routed, func(s subnet) string { return s.ID })
	for i := range s {
		for j := range i {
			if s[i].prefix.Overlaps(s[j].prefix) {
				return errorf("subnets["+s[i].ID+"].cidr", "%s of subnet %s (vnet %s) overlaps %s of subnet %s (vnet %s), both routed by host %s", s[i].prefix, s[i].ID, s[i].Vnet, s[j].prefix, s[j].ID, s[j].Vnet, h.Name)
			}
		}
	}
	return nil
}

// firewall compiles the firewall of host h, whose vnets are vnets (by ID)
// and whose simple-zone subnets with a gateway are routed.
func (c *compiler) firewall(h host, vnets []Vnet, routed []subnet) (Firewall, error) {
	var fw Firewall
	tenants := make(map[string][]string)
	for _, v := range vnets {
		fw.Bridges = append(fw.Bridges, v.ID)
		tenants[v.Tenant] = append(tenants[v.Tenant], v.ID)
	}
	for _, g := range tenants {
		if len(g) >= 2 {
			slices.Sort(g)
			fw.Groups = append(fw.Groups, g)
		}
	}
	slices.SortFunc(fw.Groups, slices.Compare)
	if len(c.allows) > 0 {
		for _, a := range vnets {
			for _, b := range vnets {
				if a.Tenant != b.Tenant && c.ruleAllows(a, b) {
					fw.Allowed = append(fw.Allowed, Pair{In: a.ID, Out: b.ID})
				}
			}
		}
	}
	for _, s := range routed {
		if !s.SNAT {
			continue
		}
		if h.Uplink == "" {
			return Firewall{}, errorf(hostPath(h.Name)+".uplink", "host %s has no uplink to masquerade subnet %s (vnet %s) out of", h.Name, s.ID, s.Vnet)
		}
		fw.SNAT = append(fw.SNAT, SNAT{Source: s.prefix.String(), Out: h.Uplink})
	}
	slices.Sort(fw.Bridges)
	slices.SortFunc(fw.Allowed, func(x, y Pair) int {
		return cmp.Or(cmp.Compare(x.In, y.In), cmp.Compare(x.Out, y.Out))
	})
	slices.SortFunc(fw.SNAT, func(x, y SNAT) int {
		return cmp.Or(cmp.Compare(x.Source, y.Source), cmp.Compare(x.Out, y.Out))
	})
	return fw, nil
}

// ruleAllows reports whether an allow rule lets routed traffic from vnet
// a reach vnet b.
func (c *compiler) ruleAllows(a, b Vnet) bool {
	for _, r := range c.allows {
		if matches(r.From, a) && matches(r.To, b) {
			return true
		}
	}
	return false
}

// matches reports whether the selector sel (valid) matches vnet v.
func matches(sel string, v Vnet) bool {
	kind, name, _ := parseSelector(sel)
	switch kind {
	case selectorVnet:
		return name == v.ID
	case selectorTenant:
		return name == v.Tenant
	}
	return false
}
