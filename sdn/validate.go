package sdn

import (
	"fmt"
	"net/netip"
	"strings"
)

// Limits and defaults of the intent and of plans.
const (
	// MaxIDLen is the longest zone or vnet ID, as in Proxmox SDN.
	MaxIDLen = 8
	// MaxIfnameLen is the longest Linux interface name (IFNAMSIZ - 1).
	MaxIfnameLen = 15
	// MinMTU and MaxMTU bound every MTU the intent sets.
	MinMTU = 576
	MaxMTU = 65535
	// DefaultMTU is the MTU of an uplink that states none and of simple
	// zones.
	DefaultMTU = 1500
	// DefaultVXLANPort is the IANA VXLAN UDP port, used when a zone sets
	// none.
	DefaultVXLANPort = 4789
	// VXLANOverhead4 and VXLANOverhead6 are what VXLAN encapsulation adds
	// to a frame: the outer IPv4 (20) or IPv6 (40) header, UDP (8), VXLAN
	// (8) and the inner Ethernet header (14).
	VXLANOverhead4 = 50
	VXLANOverhead6 = 70
	// MaxVLAN is the highest VLAN ID; MaxVNI the highest VXLAN VNI.
	MaxVLAN = 4094
	MaxVNI  = 1<<24 - 1

	maxNameLen     = 63
	maxRefLen      = 128
	maxAliasLen    = 256
	maxDescription = 1024
)

// Selector kinds of an Allow rule.
const (
	selectorVnet   = "vnet"
	selectorTenant = "tenant"
)

// ValidID reports whether s is a valid zone or vnet ID: 1–8 characters, a
// letter then letters and digits, as Proxmox's pve-sdn-zone-id and vnet
// IDs. A vnet ID is its bridge's name on every host.
func ValidID(s string) bool {
	if s == "" || len(s) > MaxIDLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case i > 0 && '0' <= c && c <= '9':
		default:
			return false
		}
	}
	return true
}

// ValidIfname reports whether s is a name Linux accepts for an interface
// and this package takes: 1–15 printable ASCII characters other than '/'
// and ':', and not "." or "..".
func ValidIfname(s string) bool {
	if s == "" || len(s) > MaxIfnameLen || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '/' || c == ':' {
			return false
		}
	}
	return true
}

// ValidNodeName reports whether s is a valid Proxmox node name: a DNS
// label of letters, digits and '-', at most 63 characters, neither
// starting nor ending with '-'.
func ValidNodeName(s string) bool {
	if s == "" || len(s) > maxNameLen || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-':
		default:
			return false
		}
	}
	return true
}

// validName reports whether s is a short name as the rest of Moxxie takes
// for tenants, pools and IDs: 1–63 lower-case letters, digits, '-', '_'
// and '.', starting with a letter or digit.
func validName(s string) bool {
	if s == "" || len(s) > maxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case i > 0 && (c == '-' || c == '_' || c == '.'):
		default:
			return false
		}
	}
	return true
}

// hasControl reports whether s holds an ASCII control character.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' || r == 0x7f })
}

func checkID(field, what, s string) error {
	if s == "" {
		return errorf(field, "%s ID is required", what)
	}
	if !ValidID(s) {
		return errorf(field, "%s ID %q must be 1-%d letters and digits, starting with a letter", what, s, MaxIDLen)
	}
	return nil
}

func checkName(field, what, s string) error {
	if s == "" {
		return errorf(field, "%s is required", what)
	}
	if !validName(s) {
		return errorf(field, "%s %q must be 1-%d lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", what, s, maxNameLen)
	}
	return nil
}

func checkMTU(field string, mtu int) error {
	if mtu != 0 && (mtu < MinMTU || mtu > MaxMTU) {
		return errorf(field, "MTU %d is outside %d..%d", mtu, MinMTU, MaxMTU)
	}
	return nil
}

// ValidateZone checks a zone on its own: its ID, type, MTU (0 or
// 576..65535), nodes (valid, distinct node names), pool (vlan and vxlan
// zones only) and port (vxlan zones only, 0 or 1..65535). It returns nil
// or an *Error naming the field.
func ValidateZone(z Zone) error {
	if err := checkID("id", "zone", z.ID); err != nil {
		return err
	}
	switch z.Type {
	case ZoneSimple, ZoneVLAN, ZoneVXLAN:
	case "":
		return errorf("type", "zone type is required: simple, vlan or vxlan")
	default:
		return errorf("type", "zone type %q is not simple, vlan or vxlan", z.Type)
	}
	if err := checkMTU("mtu", z.MTU); err != nil {
		return err
	}
	seen := make(map[string]bool, len(z.Nodes))
	for _, n := range z.Nodes {
		if !ValidNodeName(n) {
			return errorf("nodes", "%q is not a node name", n)
		}
		if seen[n] {
			return errorf("nodes", "node %q is listed twice", n)
		}
		seen[n] = true
	}
	if z.Pool != "" {
		if z.Type == ZoneSimple {
			return errorf("pool", "a simple zone has no tags and takes no pool")
		}
		if err := checkName("pool", "pool", z.Pool); err != nil {
			return err
		}
	}
	if z.Port != 0 {
		if z.Type != ZoneVXLAN {
			return errorf("port", "only vxlan zones have a UDP port, not %s zones", z.Type)
		}
		if z.Port < 1 || z.Port > 65535 {
			return errorf("port", "UDP port %d is outside 1..65535", z.Port)
		}
	}
	return nil
}

// ValidateVnet checks a vnet against its zone z: its ID, that its Zone is
// z.ID, its tag for z's type (0 in simple zones; a VLAN ID 1..4094 in vlan
// zones; a VNI 1..16777215 in vxlan zones), its tenant and alias. A zero
// tag passes in a vlan or vxlan zone with a pool, which assigns one when
// the vnet is stored; Compile refuses a vnet still without a tag. It
// returns nil or an *Error naming the field.
func ValidateVnet(v Vnet, z Zone) error {
	if err := checkID("id", "vnet", v.ID); err != nil {
		return err
	}
	if v.Zone == "" {
		return errorf("zone", "zone is required")
	}
	if v.Zone != z.ID {
		return errorf("zone", "vnet %s names zone %q, not %q", v.ID, v.Zone, z.ID)
	}
	switch z.Type {
	case ZoneSimple:
		if v.Tag != 0 {
			return errorf("tag", "vnet %s is in simple zone %s, which takes no tag, not %d", v.ID, z.ID, v.Tag)
		}
	case ZoneVLAN:
		if err := checkTag(v, z, "VLAN ID", MaxVLAN); err != nil {
			return err
		}
	case ZoneVXLAN:
		if err := checkTag(v, z, "VNI", MaxVNI); err != nil {
			return err
		}
	default:
		return errorf("zone", "zone %s has no valid type (%q)", z.ID, z.Type)
	}
	if v.Tenant != "" {
		if err := checkName("tenant", "tenant", v.Tenant); err != nil {
			return err
		}
	}
	if len(v.Alias) > maxAliasLen {
		return errorf("alias", "alias is %d bytes, at most %d allowed", len(v.Alias), maxAliasLen)
	}
	if hasControl(v.Alias) {
		return errorf("alias", "alias holds a control character")
	}
	return nil
}

// checkTag checks the tag of vnet v in the vlan or vxlan zone z.
func checkTag(v Vnet, z Zone, what string, maxTag int) error {
	if v.Tag == 0 {
		if z.Pool == "" {
			return errorf("tag", "vnet %s needs a %s (1..%d): %s zone %s has no pool to take one from", v.ID, what, maxTag, z.Type, z.ID)
		}
		return nil
	}
	if v.Tag < 1 || v.Tag > maxTag {
		return errorf("tag", "%s %d is outside 1..%d", what, v.Tag, maxTag)
	}
	return nil
}

// ValidateSubnet checks a subnet on its own: its ID and vnet, that CIDR
// is a canonical prefix (no host bits, no IPv6 zone, IPv4 not written as
// IPv4-mapped IPv6), and that the gateway is an address of the same family
// inside it that is neither its network address (below /31 for IPv4, /127
// for IPv6, where it is the subnet-router anycast address) nor, for IPv4
// below /31, its broadcast address. CIDR may be empty while PrefixID is
// set, as the store resolves it; the gateway is then checked on its own.
// SNAT needs a gateway. It returns nil or an *Error naming the field.
func ValidateSubnet(s Subnet) error {
	if err := checkName("id", "subnet ID", s.ID); err != nil {
		return err
	}
	if err := checkID("vnet", "vnet", s.Vnet); err != nil {
		return err
	}
	if len(s.PrefixID) > maxRefLen || hasControl(s.PrefixID) {
		return errorf("prefix_id", "prefix ID %q is not an IPAM prefix ID", s.PrefixID)
	}
	var (
		pfx    netip.Prefix
		hasPfx bool
	)
	if s.CIDR == "" {
		if s.PrefixID == "" {
			return errorf("cidr", "a subnet needs a CIDR or a prefix ID")
		}
	} else {
		var err error
		if pfx, err = parseCIDR(s.CIDR); err != nil {
			return &Error{Field: "cidr", Msg: err.Error()}
		}
		hasPfx = true
	}
	if s.Gateway != "" {
		gw, err := netip.ParseAddr(s.Gateway)
		switch {
		case err != nil:
			return errorf("gateway", "gateway %q is not an IP address", s.Gateway)
		case gw.Zone() != "":
			return errorf("gateway", "gateway %q carries an IPv6 zone", s.Gateway)
		case gw.Is4In6():
			return errorf("gateway", "gateway %q is IPv4-mapped IPv6; write it as IPv4", s.Gateway)
		}
		if hasPfx {
			if err := checkGateway(gw, pfx); err != nil {
				return err
			}
		}
	}
	if s.SNAT && s.Gateway == "" {
		return errorf("snat", "SNAT needs a gateway: a host masquerades only a subnet it routes")
	}
	return nil
}

// parseCIDR parses a canonical prefix, refusing IPv6 zones, IPv4-mapped
// IPv6 and host bits.
func parseCIDR(s string) (netip.Prefix, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("CIDR %q is not a prefix such as 10.1.0.0/24", s)
	}
	if p.Addr().Is4In6() {
		return netip.Prefix{}, fmt.Errorf("CIDR %q is IPv4-mapped IPv6; write it as IPv4", s)
	}
	if m := p.Masked(); m != p {
		return netip.Prefix{}, fmt.Errorf("CIDR %q has host bits set; the network is %s", s, m)
	}
	return p, nil
}

// checkGateway checks that gw may be the gateway of the prefix p.
func checkGateway(gw netip.Addr, p netip.Prefix) error {
	if gw.Is4() != p.Addr().Is4() {
		return errorf("gateway", "gateway %s is not of the address family of %s", gw, p)
	}
	if !p.Contains(gw) {
		return errorf("gateway", "gateway %s is outside %s", gw, p)
	}
	small := 31
	if gw.Is6() {
		small = 127
	}
	if p.Bits() >= small {
		return nil
	}
	if gw == p.Addr() {
		return errorf("gateway", "gateway %s is the network address of %s", gw, p)
	}
	if gw.Is4() && gw == lastAddr(p) {
		return errorf("gateway", "gateway %s is the broadcast address of %s", gw, p)
	}
	return nil
}

// lastAddr returns the last address of the IPv4 prefix p.
func lastAddr(p netip.Prefix) netip.Addr {
	a := p.Addr().As4()
	n := uint32(a[0])<<24 | uint32(a[1])<<16 | uint32(a[2])<<8 | uint32(a[3])
	n |= uint32(1)<<(32-p.Bits()) - 1
	return netip.AddrFrom4([4]byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)})
}

// ValidateAllow checks an allow rule on its own: its ID, that From and To
// are selectors ("vnet:<id>" with a valid vnet ID, or "tenant:<name>")
// and that they differ. A selector naming a vnet or tenant that does not
// exist is valid and matches nothing. It returns nil or an *Error naming
// the field.
func ValidateAllow(a Allow) error {
	if err := checkName("id", "allow ID", a.ID); err != nil {
		return err
	}
	if err := checkSelector("from", a.From); err != nil {
		return err
	}
	if err := checkSelector("to", a.To); err != nil {
		return err
	}
	if a.From == a.To {
		return errorf("to", "from and to are both %q: the rule would allow nothing", a.From)
	}
	if len(a.Description) > maxDescription {
		return errorf("description", "description is %d bytes, at most %d allowed", len(a.Description), maxDescription)
	}
	return nil
}

// parseSelector splits an allow selector into its kind and name.
func parseSelector(s string) (kind, name string, ok bool) {
	kind, name, ok = strings.Cut(s, ":")
	if !ok {
		return "", "", false
	}
	switch kind {
	case selectorVnet:
		return kind, name, ValidID(name)
	case selectorTenant:
		return kind, name, validName(name)
	}
	return "", "", false
}

func checkSelector(field, s string) error {
	if s == "" {
		return errorf(field, "%s is required: vnet:<id> or tenant:<name>", field)
	}
	if _, _, ok := parseSelector(s); !ok {
		return errorf(field, "%s %q is not vnet:<id> or tenant:<name>", field, s)
	}
	return nil
}

// ValidateHost checks a host as it enrols: its name (a Proxmox node name),
// its underlay address (an IP address that is not unspecified, multicast,
// link-local, IPv4-mapped or zoned), its uplink and management interface
// names (empty or valid interface names of at most 15 characters) and its
// MTU (0 or 576..65535). It returns nil or an *Error naming the field.
func ValidateHost(h Host) error {
	if h.Name == "" {
		return errorf("name", "host name is required")
	}
	if !ValidNodeName(h.Name) {
		return errorf("name", "host name %q is not a node name: letters, digits and '-', at most %d", h.Name, maxNameLen)
	}
	if _, err := parseHostAddr(h.Address); err != nil {
		return &Error{Field: "address", Msg: err.Error()}
	}
	if h.Uplink != "" && !ValidIfname(h.Uplink) {
		return errorf("uplink", "uplink %q is not an interface name of at most %d characters", h.Uplink, MaxIfnameLen)
	}
	if h.Management != "" && !ValidIfname(h.Management) {
		return errorf("management", "management interface %q is not an interface name of at most %d characters", h.Management, MaxIfnameLen)
	}
	return checkMTU("mtu", h.MTU)
}

// parseHostAddr parses a host's underlay address.
func parseHostAddr(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, fmt.Errorf("address is required")
	}
	a, err := netip.ParseAddr(s)
	switch {
	case err != nil:
		return a, fmt.Errorf("address %q is not an IP address", s)
	case a.Zone() != "":
		return a, fmt.Errorf("address %q carries an IPv6 zone", s)
	case a.Is4In6():
		return a, fmt.Errorf("address %q is IPv4-mapped IPv6; write it as IPv4", s)
	case a.IsUnspecified():
		return a, fmt.Errorf("address %s is unspecified", s)
	case a.IsMulticast():
		return a, fmt.Errorf("address %s is multicast", s)
	case a.IsLinkLocalUnicast():
		return a, fmt.Errorf("address %s is link-local; the underlay needs a routable address", s)
	}
	return a, nil
}
