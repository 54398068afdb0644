// Package sdn is Moxxie's network intent and its compiler: zones, vnets,
// subnets and allow rules go in, and a per-host plan comes out that names
// every link the host's agent must hold (type, name, master, VLAN or VNI,
// local address, peers, MTU, addresses) and the firewall that isolates
// tenants. It is pure: no I/O, no clock, and the same intent always
// compiles to the same plan, so plans can be stored, compared and diffed.
package sdn

// ZoneType is the kind of a zone: how its vnets reach the wire.
type ZoneType string

// Zone types, as Proxmox SDN names them.
const (
	// ZoneSimple is a bridge local to each host, with no uplink.
	ZoneSimple ZoneType = "simple"
	// ZoneVLAN is a bridge on a VLAN device of the host's uplink.
	ZoneVLAN ZoneType = "vlan"
	// ZoneVXLAN is a bridge with a VXLAN device whose unicast peers are
	// the other hosts of the zone.
	ZoneVXLAN ZoneType = "vxlan"
)

// Zone is a group of vnets of one type spanning a set of hosts.
type Zone struct {
	// ID names the zone: 1–8 characters, a letter then letters and digits.
	ID   string   `json:"id"`
	Type ZoneType `json:"type"`
	// MTU of the zone's vnets. Zero means derived: the smallest uplink MTU
	// of the zone's hosts, less the VXLAN overhead for vxlan zones (50
	// bytes over IPv4, 70 over IPv6), and 1500 for simple zones.
	MTU int `json:"mtu,omitempty"`
	// Nodes limits the zone to these hosts; empty means every host.
	Nodes []string `json:"nodes,omitempty"`
	// Pool is the IPAM VLAN group (vlan zones) or VNI pool (vxlan zones)
	// that vnets created without a tag take their tag from.
	Pool string `json:"pool,omitempty"`
	// Port is the VXLAN UDP port (vxlan zones); zero means 4789.
	Port int `json:"port,omitempty"`
}

// Vnet is a virtual network: one bridge on every host of its zone.
type Vnet struct {
	// ID is the bridge name on every host: 1–8 characters, a letter then
	// letters and digits, as in Proxmox.
	ID   string `json:"id"`
	Zone string `json:"zone"`
	// Tag is the VLAN ID (vlan zones, 1–4094) or the VNI (vxlan zones,
	// 1–16777215); zero in simple zones.
	Tag    int    `json:"tag,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	// Alias is a free description, as Proxmox's vnet alias.
	Alias string `json:"alias,omitempty"`
}

// Subnet is an IP network on a vnet, taken from an IPAM prefix.
type Subnet struct {
	// ID names the subnet.
	ID   string `json:"id"`
	Vnet string `json:"vnet"`
	// PrefixID is the IPAM prefix the subnet is; CIDR is that prefix,
	// resolved when the subnet is stored ("10.1.0.0/24").
	PrefixID string `json:"prefix_id"`
	CIDR     string `json:"cidr"`
	// Gateway is the address the host holds on the vnet's bridge in
	// simple zones ("10.1.0.1"); empty for none.
	Gateway string `json:"gateway,omitempty"`
	// SNAT masquerades traffic from the subnet leaving through the
	// host's uplink.
	SNAT bool `json:"snat,omitempty"`
}

// Allow lets traffic routed from one vnet or tenant reach another. Without
// one, a tenant's vnets reach only the same tenant's vnets. From and To are
// "vnet:<id>" or "tenant:<name>"; a rule allows one direction, and replies
// pass as established traffic.
type Allow struct {
	ID          string `json:"id"`
	From        string `json:"from"`
	To          string `json:"to"`
	Description string `json:"description,omitempty"`
}

// Host is a Proxmox host running moxxie-agent, as it enrolled.
type Host struct {
	// Name is the host's name (the Proxmox node name).
	Name string `json:"name"`
	// Address is the host's underlay address: the VXLAN local address
	// and the peer address other hosts send to.
	Address string `json:"address"`
	// Uplink is the interface carrying VLAN-tagged traffic and the
	// underlay (e.g. "eth0" or "bond0"); it is never changed.
	Uplink string `json:"uplink,omitempty"`
	// MTU is the uplink's MTU; zero means 1500.
	MTU int `json:"mtu,omitempty"`
	// Management is the interface holding the host's management address;
	// the agent never changes or deletes it.
	Management string `json:"management,omitempty"`
}

// Intent is everything the operator asked for: the input of Compile.
type Intent struct {
	Zones   []Zone   `json:"zones"`
	Vnets   []Vnet   `json:"vnets"`
	Subnets []Subnet `json:"subnets"`
	Allows  []Allow  `json:"allows"`
	Hosts   []Host   `json:"hosts"`
}

// LinkKind is the type of a kernel link in a plan.
type LinkKind string

// Link kinds a plan holds.
const (
	LinkBridge LinkKind = "bridge"
	LinkVXLAN  LinkKind = "vxlan"
	LinkVLAN   LinkKind = "vlan"
)

// AliasPrefix starts the alias of every link Moxxie manages; the agent
// never changes or deletes a link whose alias does not start with it.
const AliasPrefix = "moxxie:"

// Link is one kernel link a host must hold, exactly.
type Link struct {
	// Name is the interface name, at most 15 characters.
	Name string   `json:"name"`
	Kind LinkKind `json:"kind"`
	// Alias marks the link as Moxxie's: AliasPrefix + the vnet ID.
	Alias string `json:"alias"`
	// Vnet is the vnet the link serves.
	Vnet string `json:"vnet"`
	// Master is the bridge the link is a port of; empty for bridges.
	Master string `json:"master,omitempty"`
	// Parent is the link a VLAN device sits on (the host's uplink).
	Parent string `json:"parent,omitempty"`
	// VLAN is the VLAN ID of a vlan link.
	VLAN int `json:"vlan,omitempty"`
	// VNI, Local, Port and Peers describe a vxlan link: its VNI, the
	// local underlay address, the UDP port and the unicast peers,
	// programmed as all-zero-MAC forwarding entries (sorted).
	VNI   int      `json:"vni,omitempty"`
	Local string   `json:"local,omitempty"`
	Port  int      `json:"port,omitempty"`
	Peers []string `json:"peers,omitempty"`
	MTU   int      `json:"mtu"`
	// Addresses are the link's addresses in CIDR form ("10.1.0.1/24"),
	// sorted.
	Addresses []string `json:"addresses,omitempty"`
}

// Pair is a routed direction between two vnet bridges: traffic coming in
// on In may leave on Out.
type Pair struct {
	In  string `json:"in"`
	Out string `json:"out"`
}

// SNAT masquerades traffic from Source leaving through Out.
type SNAT struct {
	Source string `json:"source"`
	Out    string `json:"out"`
}

// Firewall is the isolation of a host's vnets: routed traffic between two
// bridges in Bridges is dropped unless both bridges are in one of Groups,
// its (in, out) pair is in Allowed, or it belongs to an established flow.
// The agent renders it as one nftables table of its own.
type Firewall struct {
	// Bridges are the host's vnet bridges, sorted.
	Bridges []string `json:"bridges,omitempty"`
	// Groups are sets of bridges that reach each other in every
	// direction: the bridges of one tenant on the host (bridges of vnets
	// without a tenant form one group too). Each group is sorted and
	// holds at least two bridges, and the groups are sorted; a bridge is
	// in at most one group.
	Groups [][]string `json:"groups,omitempty"`
	// Allowed are the permitted directions that Groups do not already
	// permit, from allow rules, sorted by In then Out.
	Allowed []Pair `json:"allowed,omitempty"`
	// SNAT rules, sorted by Source.
	SNAT []SNAT `json:"snat,omitempty"`
}

// Plan is what one host must hold: its links in creation order (every
// link after the links it refers to: bridges, then their ports) and its
// firewall.
type Plan struct {
	Host string `json:"host"`
	// Version is the rollout version the plan belongs to; Compile leaves
	// it zero and the store sets it.
	Version  uint64   `json:"version"`
	Links    []Link   `json:"links"`
	Firewall Firewall `json:"firewall"`
}

// ChangeOp is what a change does to a link or the firewall.
type ChangeOp string

// Change operations.
const (
	OpAdd    ChangeOp = "add"
	OpChange ChangeOp = "change"
	OpRemove ChangeOp = "remove"
)

// Change is one difference between two plans of a host.
type Change struct {
	Op ChangeOp `json:"op"`
	// Object is "link" or "firewall".
	Object string `json:"object"`
	// Name is the link's name, or "firewall".
	Name string `json:"name"`
	// Fields names the attributes that differ, for OpChange
	// ("mtu: 1500 -> 1450", "vni: 100 -> 200"); for an added link, its
	// attributes that are set ("kind: bridge", "mtu: 1450"); for the
	// firewall, what its sets gain and lose ("allowed: +v1>v2 -v2>v3",
	// "group v1: +v4", "groups: +[v5 v6]").
	Fields []string `json:"fields,omitempty"`
}
