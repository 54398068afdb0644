package fsm

import (
	"fmt"
	"net/netip"
	"strings"
	"time"

	"github.com/moxxie/moxxie/ipam"
)

// Limits of IPAM requests.
const (
	// MaxAllocateCount bounds the addresses one allocation may ask for.
	MaxAllocateCount = 4096
	maxNameLen       = 63
	maxDescription   = 1024
	// MaxZoneTTL is the longest TTL a zone may set, in seconds.
	MaxZoneTTL = 86400
	// DefaultZoneTTL is the TTL of a zone's records unless it sets one.
	DefaultZoneTTL = 60
)

// ValidName checks a short name such as a VRF, tenant or pool name: lower
// case letters, digits, '-', '_' and '.', starting with a letter or digit,
// at most 63 characters.
func ValidName(s string) bool {
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

// MaxQuarantine is the longest ipam.quarantine the API takes: a released
// address comes back within a month, so that a typo (1000000h) does not
// keep every released address out of use for good.
const MaxQuarantine = 30 * 24 * time.Hour

// CheckSetting checks the value of a setting Moxxie itself reads; other
// settings may hold anything. ipam.quarantine must be a Go duration from
// zero to MaxQuarantine; audit.retention see ParseAuditRetention.
func CheckSetting(key, value string) error {
	if key == quarantineSetKey {
		d, err := time.ParseDuration(value)
		if err != nil || d < 0 {
			return fmt.Errorf("%s must be a duration such as 10m or 0s, not %q", key, value)
		}
		if d > MaxQuarantine {
			return fmt.Errorf("%s must be at most %s (30 days), not %s", key, MaxQuarantine, value)
		}
	}
	if key == AuditRetentionKey {
		if _, err := ParseAuditRetention(value); err != nil {
			return err
		}
	}
	return nil
}

func checkName(field, s string) error {
	if !ValidName(s) {
		return fieldErrf(field, ErrInvalid, "%s %q must be 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", field, s)
	}
	return nil
}

func checkOptionalName(field, s string) error {
	if s == "" {
		return nil
	}
	return checkName(field, s)
}

func checkDescription(s string) error {
	if len(s) > maxDescription {
		return fieldErrf("description", ErrInvalid, "description is %d bytes, at most %d allowed", len(s), maxDescription)
	}
	return nil
}

func checkID(field, s string) error {
	if s == "" {
		return fieldErrf(field, ErrInvalid, "%s is required", field)
	}
	if len(s) > 128 {
		return fieldErrf(field, ErrInvalid, "%s is longer than 128 characters", field)
	}
	return nil
}

// normalHostname checks a DNS name and returns it in lower case without a
// trailing dot; the empty name stays empty.
func normalHostname(field, s string) (string, error) {
	if s == "" {
		return "", nil
	}
	if err := ipam.ValidHostname(s); err != nil {
		return "", fieldErr(field, err)
	}
	return strings.ToLower(strings.TrimSuffix(s, ".")), nil
}

func checkOwner(s string) error {
	if s == "" {
		return nil
	}
	if err := ipam.ValidOwner(s); err != nil {
		return fieldErr("owner", err)
	}
	return nil
}

func checkAddressStatus(s string) error {
	switch s {
	case AddressActive, AddressReserved, AddressDeprecated:
		return nil
	}
	if s == "" {
		return fieldErrf("status", ErrInvalid, "status cannot be cleared: give active, reserved or deprecated")
	}
	return fieldErrf("status", ErrInvalid, "status %q must be active, reserved or deprecated", s)
}

func defaultVRF(s string) string {
	if s == "" {
		return DefaultVRF
	}
	return s
}

// Validate checks the VRF.
func (r *VRFCreateRequest) Validate() error {
	if err := checkName("id", r.VRF.ID); err != nil {
		return err
	}
	if err := checkOptionalName("tenant", r.VRF.Tenant); err != nil {
		return err
	}
	return checkDescription(r.VRF.Description)
}

// Validate fills in the default VRF and status and checks the prefix: it
// must be canonical, and a container can be neither a pool nor have a
// gateway.
func (r *PrefixCreateRequest) Validate() error {
	p := &r.Prefix
	if err := checkID("id", p.ID); err != nil {
		return err
	}
	pfx, err := ipam.ParsePrefix(p.Prefix)
	if err != nil {
		return fieldErr("prefix", err)
	}
	p.Prefix = pfx.String()
	p.VRF = defaultVRF(p.VRF)
	if err := checkName("vrf", p.VRF); err != nil {
		return err
	}
	if p.Status == "" {
		p.Status = PrefixActive
	}
	switch p.Status {
	case PrefixActive:
	case PrefixContainer:
		if p.IsPool {
			return fieldErrf("is_pool", ErrInvalid, "a container cannot be a pool: only active prefixes hold addresses")
		}
		if p.Gateway != "" {
			return fieldErrf("gateway", ErrInvalid, "a container has no gateway: only active prefixes hold addresses")
		}
	default:
		return fieldErrf("status", ErrInvalid, "status %q must be active or container", p.Status)
	}
	if p.Gateway != "" {
		gw, err := ipam.ParseAddr(p.Gateway)
		if err != nil {
			return fieldErr("gateway", err)
		}
		p.Gateway = gw.String()
		if !linkLocalGateway(pfx, gw) {
			sp := ipam.AddrSpace(pfx, p.IsPool)
			if _, err := sp.KeyOf(gw); err != nil {
				return fieldErr("gateway", err)
			}
			if err := checkID("gateway_id", r.GatewayID); err != nil {
				return err
			}
		}
	}
	if err := checkTenantProject(p.Tenant, p.Project); err != nil {
		return err
	}
	return checkDescription(p.Description)
}

// checkTenantProject checks an object's tenant and project names: a
// project needs its tenant.
func checkTenantProject(tenant, project string) error {
	if err := checkOptionalName("tenant", tenant); err != nil {
		return err
	}
	if err := checkOptionalName("project", project); err != nil {
		return err
	}
	if project != "" && tenant == "" {
		return fieldErrf("project", ErrInvalid, "a project needs its tenant")
	}
	return nil
}

// Validate checks the changed fields.
func (r *PrefixUpdateRequest) Validate() error {
	if r.Tenant != nil {
		if err := checkOptionalName("tenant", *r.Tenant); err != nil {
			return err
		}
	}
	if r.Project != nil {
		if err := checkOptionalName("project", *r.Project); err != nil {
			return err
		}
	}
	if r.Description != nil {
		return checkDescription(*r.Description)
	}
	return nil
}

// Validate checks the requested length and the child's fields.
func (r *PrefixAllocateRequest) Validate() error {
	if r.Bits < 1 || r.Bits > 128 {
		return fieldErrf("prefix_length", ErrInvalid, "prefix_length %d must be 1-32 in an IPv4 container, 1-128 in an IPv6 one", r.Bits)
	}
	c := &r.Child
	if err := checkID("id", c.ID); err != nil {
		return err
	}
	if c.Status == "" {
		c.Status = PrefixActive
	}
	switch c.Status {
	case PrefixActive, PrefixContainer:
	default:
		return fieldErrf("status", ErrInvalid, "status %q must be active or container", c.Status)
	}
	if c.IsPool && c.Status == PrefixContainer {
		return fieldErrf("is_pool", ErrInvalid, "a container cannot be a pool: only active prefixes hold addresses")
	}
	if err := checkTenantProject(c.Tenant, c.Project); err != nil {
		return err
	}
	return checkDescription(c.Description)
}

// Validate checks that the range's ends are addresses in order.
func (r *IPRangeCreateRequest) Validate() error {
	g := &r.Range
	if err := checkID("id", g.ID); err != nil {
		return err
	}
	start, err := ipam.ParseAddr(g.Start)
	if err != nil {
		return fieldErr("start_address", err)
	}
	end, err := ipam.ParseAddr(g.End)
	if err != nil {
		return fieldErr("end_address", err)
	}
	if start.Is4() != end.Is4() {
		return fieldErrf("end_address", ipam.ErrFamily, "%s and %s are of different families", start, end)
	}
	if end.Less(start) {
		return fieldErrf("end_address", ipam.ErrInvalidRange, "end_address %s is before start_address %s", end, start)
	}
	g.Start, g.End = start.String(), end.String()
	return checkDescription(g.Description)
}

// Validate fills in the defaults (count 1, status active, VRF global) and
// checks the descriptive fields.
func (r *AddressAllocateRequest) Validate() error {
	if r.Count == 0 {
		r.Count = 1
	}
	if r.Count < 1 || r.Count > MaxAllocateCount {
		return fieldErrf("count", ipam.ErrInvalidCount, "count %d must be 1-%d", r.Count, MaxAllocateCount)
	}
	if len(r.IDs) != r.Count {
		return fieldErrf("ids", ErrInvalid, "%d IDs for %d addresses", len(r.IDs), r.Count)
	}
	for _, id := range r.IDs {
		if err := checkID("id", id); err != nil {
			return err
		}
	}
	if err := distinctIDs(r.IDs); err != nil {
		return err
	}
	if r.Address != "" {
		a, err := ipam.ParseAddr(r.Address)
		if err != nil {
			return fieldErr("address", err)
		}
		r.Address = a.String()
		if r.Count != 1 {
			return fieldErrf("count", ipam.ErrInvalidCount, "count must be 1 when an address is requested")
		}
	} else if r.PrefixID == "" {
		return fieldErrf("address", ErrInvalid, "address is required")
	}
	if r.PrefixID == "" {
		r.VRF = defaultVRF(r.VRF)
		if err := checkName("vrf", r.VRF); err != nil {
			return err
		}
	}
	if r.Status == "" {
		r.Status = AddressActive
	}
	if err := checkAddressStatus(r.Status); err != nil {
		return err
	}
	name, err := normalHostname("dns_name", r.DNSName)
	if err != nil {
		return err
	}
	r.DNSName = name
	if err := checkOptionalName("tenant", r.Tenant); err != nil {
		return err
	}
	if err := checkOptionalName("project", r.Project); err != nil {
		return err
	}
	if r.Project != "" && r.Tenant == "" {
		return fieldErrf("project", ErrInvalid, "a project needs its tenant")
	}
	if err := checkOwner(r.Owner); err != nil {
		return err
	}
	return checkDescription(r.Description)
}

// Validate checks the changed fields.
func (r *AddressUpdateRequest) Validate() error {
	if r.Status != nil {
		if err := checkAddressStatus(*r.Status); err != nil {
			return err
		}
	}
	if r.DNSName != nil {
		name, err := normalHostname("dns_name", *r.DNSName)
		if err != nil {
			return err
		}
		r.DNSName = &name
	}
	return checkChanges(r.Tenant, r.Project, r.Owner, r.Description)
}

// checkChanges checks the tenant, project, owner and description an update
// gives (nil: left as they are; "" clears one).
func checkChanges(tenant, project, owner, description *string) error {
	if tenant != nil {
		if err := checkOptionalName("tenant", *tenant); err != nil {
			return err
		}
	}
	if project != nil {
		if err := checkOptionalName("project", *project); err != nil {
			return err
		}
	}
	if owner != nil {
		if err := checkOwner(*owner); err != nil {
			return err
		}
	}
	if description != nil {
		return checkDescription(*description)
	}
	return nil
}

// Validate checks the pool's kind, name and ranges.
func (r *PoolCreateRequest) Validate() error {
	p := &r.Pool
	if err := checkID("id", p.ID); err != nil {
		return err
	}
	if err := checkName("name", p.Name); err != nil {
		return err
	}
	if _, err := poolSpace(p); err != nil {
		return err
	}
	if err := checkOptionalName("tenant", p.Tenant); err != nil {
		return err
	}
	return checkDescription(p.Description)
}

// Validate checks the fields the update gives.
func (r *PoolUpdateRequest) Validate() error {
	if r.Tenant != nil {
		if err := checkOptionalName("tenant", *r.Tenant); err != nil {
			return err
		}
	}
	if r.Name != nil {
		if err := checkName("name", *r.Name); err != nil {
			return err
		}
	}
	if r.Ranges != nil {
		if len(*r.Ranges) == 0 {
			return fieldErrf("ranges", ErrInvalid, "an empty list holds no IDs")
		}
		if _, err := poolSpace(&Pool{Kind: r.Kind, Ranges: *r.Ranges}); err != nil {
			return err
		}
	}
	if r.Description != nil {
		return checkDescription(*r.Description)
	}
	return nil
}

// poolSpace returns the allocation space of a pool.
func poolSpace(p *Pool) (ipam.Space, error) {
	var sp ipam.Space
	var err error
	check, space := ipam.ValidVLANRange, ipam.VLANSpace
	switch p.Kind {
	case PoolVLAN:
	case PoolVNI:
		check, space = ipam.ValidVNIRange, ipam.VNISpace
	default:
		return sp, fieldErrf("kind", ErrInvalid, "kind %q must be vlan or vni", p.Kind)
	}
	// Each range alone first, in the order given, so that the error
	// names the one at fault; what is left is ranges that overlap.
	for i, r := range p.Ranges {
		if err := check(r); err != nil {
			return sp, fieldErr(idRangeField(i, r, check), err)
		}
	}
	if sp, err = space(p.Ranges...); err != nil {
		return sp, fieldErr(overlapField(p.Ranges), err)
	}
	return sp, nil
}

// overlapField names the first range, in the order given, that overlaps
// one before it.
func overlapField(ranges []ipam.IDRange) string {
	for j, b := range ranges {
		for _, a := range ranges[:j] {
			if a.First <= b.Last && b.First <= a.Last {
				return fmt.Sprintf("ranges[%d]", j)
			}
		}
	}
	return "ranges"
}

// idRangeField names the member of ranges[i] that check refuses: the
// first or last number when it is outside the kind's numbers, or the
// range when it ends before it starts.
func idRangeField(i int, r ipam.IDRange, check func(ipam.IDRange) error) string {
	field := fmt.Sprintf("ranges[%d]", i)
	switch {
	case check(ipam.IDRange{First: r.First, Last: r.First}) != nil:
		return field + ".first"
	case check(ipam.IDRange{First: r.Last, Last: r.Last}) != nil:
		return field + ".last"
	}
	return field
}

// Validate checks the requested number, if any, and the fields.
func (r *IDAllocateRequest) Validate() error {
	switch r.Kind {
	case PoolVLAN:
		if r.Number != 0 {
			if err := ipam.ValidVLAN(r.Number); err != nil {
				return fieldErr("vid", err)
			}
		}
	case PoolVNI:
		if r.Number != 0 {
			if err := ipam.ValidVNI(r.Number); err != nil {
				return fieldErr("vni", err)
			}
		}
	default:
		return fieldErrf("kind", ErrInvalid, "kind %q must be vlan or vni", r.Kind)
	}
	a := &r.Allocation
	if err := checkID("id", a.ID); err != nil {
		return err
	}
	if a.Name != "" && !ValidName(a.Name) {
		return fieldErrf("name", ErrInvalid, "name %q must be 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", a.Name)
	}
	if err := checkTenantProject(a.Tenant, a.Project); err != nil {
		return err
	}
	if err := checkOwner(a.Owner); err != nil {
		return err
	}
	return checkDescription(a.Description)
}

// Validate checks the kind and the fields the update gives.
func (r *IDUpdateRequest) Validate() error {
	if r.Kind != PoolVLAN && r.Kind != PoolVNI {
		return fieldErrf("kind", ErrInvalid, "kind %q must be vlan or vni", r.Kind)
	}
	if r.Name != nil && *r.Name != "" && !ValidName(*r.Name) {
		return fieldErrf("name", ErrInvalid, "name %q must be 1-63 lower-case letters, digits, '-', '_' or '.', starting with a letter or digit", *r.Name)
	}
	return checkChanges(r.Tenant, r.Project, r.Owner, r.Description)
}

// ReverseTreeName reports whether the normalized DNS name is arpa, or in
// the reverse trees in-addr.arpa and ip6.arpa, where Moxxie serves only
// the PTR records it makes from prefixes and addresses. home.arpa (RFC
// 8375) and the like are forward names.
func ReverseTreeName(name string) bool {
	return name == "arpa" || name == "in-addr.arpa" || name == "ip6.arpa" ||
		strings.HasSuffix(name, ".in-addr.arpa") || strings.HasSuffix(name, ".ip6.arpa")
}

// Validate checks the zone's name and TTL and fills in the default TTL.
// Validate checks the fields the update gives, as a creation would.
func (r *ZoneUpdateRequest) Validate() error {
	if r.TTL != nil && (*r.TTL == 0 || *r.TTL > MaxZoneTTL) {
		return fieldErrf("ttl", ErrInvalid, "ttl %d must be 1 to %d", *r.TTL, MaxZoneTTL)
	}
	if r.Description != nil {
		return checkDescription(*r.Description)
	}
	return nil
}

func (r *ZoneCreateRequest) Validate() error {
	z := &r.Zone
	name, err := normalHostname("name", z.ID)
	if err != nil {
		return err
	}
	if name == "" {
		return fieldErrf("name", ErrInvalid, "name is required")
	}
	if ReverseTreeName(name) {
		// A forward zone there would answer for the reverse mapping of
		// every address.
		return fieldErrf("name", ErrInvalid, "reverse zones come from the prefixes; %s cannot be created", name)
	}
	z.ID = name
	if z.TTL == 0 {
		z.TTL = DefaultZoneTTL
	}
	if z.TTL > MaxZoneTTL {
		return fieldErrf("ttl", ErrInvalid, "ttl %d must be at most %d", z.TTL, MaxZoneTTL)
	}
	if err := checkOptionalName("tenant", z.Tenant); err != nil {
		return err
	}
	return checkDescription(z.Description)
}

// distinctIDs refuses an ID listed twice. The API makes them increasing,
// which is checked first, without a set.
func distinctIDs(ids []string) error {
	increasing := true
	for i := 1; i < len(ids) && increasing; i++ {
		increasing = ids[i-1] < ids[i]
	}
	if increasing {
		return nil
	}
	seen := make(map[string]bool, len(ids))
	for _, id := range ids {
		if seen[id] {
			return fieldErrf("ids", ErrInvalid, "ID %s is listed twice", id)
		}
		seen[id] = true
	}
	return nil
}

// linkLocalGateway reports whether gw is an IPv6 link-local gateway of
// the IPv6 prefix pfx, as routers announce themselves: an address of
// fe80::/64 (RFC 4291, 2.5.6) but its subnet-router anycast fe80::, for a
// prefix outside fe80::/10. It is kept as the prefix's gateway but not
// reserved, since it is no address of the prefix.
func linkLocalGateway(pfx netip.Prefix, gw netip.Addr) bool {
	return pfx.Addr().Is6() && !linkLocalNet.Contains(pfx.Addr()) &&
		linkLocal64.Contains(gw) && gw != linkLocal64.Addr()
}

var (
	linkLocalNet = netip.MustParsePrefix("fe80::/10")
	linkLocal64  = netip.MustParsePrefix("fe80::/64")
)
