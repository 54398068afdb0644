package fsm

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/sdn"
)

// SDN intent: zones, vnets, subnets and allow rules as the operator asked
// for them, and the hosts that enrolled to carry them. Each object wraps
// its sdn type and adds its history, embedded so the JSON stays flat.
// Nothing here takes effect on a host until an apply compiles the intent
// into plans (sdn_rollout.go).
//
// A vnet in a vlan or vxlan zone with a pool takes its tag from that IPAM
// VLAN group or VNI pool, as an IDAllocation owned by "sdn:vnet/<id>" and
// charged to the vnet's tenant: the tag counts against the tenant's vlans
// or vnis quota like any other allocation.

// Table names of SDN.
const (
	tableSDNZones    = "sdn_zones"
	tableSDNVnets    = "sdn_vnets"
	tableSDNSubnets  = "sdn_subnets"
	tableSDNAllows   = "sdn_allows"
	tableSDNHosts    = "sdn_hosts"
	tableSDNPlans    = "sdn_plans"
	tableSDNRollouts = "sdn_rollouts"
)

// SDNZone is a stored zone.
type SDNZone struct {
	sdn.Zone
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// SDNVnet is a stored vnet. AllocationID is the IPAM IDAllocation its tag
// came from, when its zone has a pool.
type SDNVnet struct {
	sdn.Vnet
	AllocationID string    `json:"allocation_id,omitempty"`
	CreateIndex  uint64    `json:"create_index"`
	ModifyIndex  uint64    `json:"modify_index"`
	CreatedAt    Timestamp `json:"created_at"`
	UpdatedAt    Timestamp `json:"updated_at"`
}

// SDNSubnet is a stored subnet; its CIDR is its IPAM prefix's.
type SDNSubnet struct {
	sdn.Subnet
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// SDNAllow is a stored allow rule.
type SDNAllow struct {
	sdn.Allow
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// SDNHost is an enrolled host. EnrolledAt is when it last enrolled;
// CreatedAt when it first did.
type SDNHost struct {
	sdn.Host
	EnrolledAt  Timestamp `json:"enrolled_at"`
	CreateIndex uint64    `json:"create_index"`
	ModifyIndex uint64    `json:"modify_index"`
	CreatedAt   Timestamp `json:"created_at"`
	UpdatedAt   Timestamp `json:"updated_at"`
}

// sdnHostRow is what the hosts table stores: a host and its rollout state,
// changed together and written as one snapshot record.
type sdnHostRow struct {
	Name  string
	Host  SDNHost
	State SDNHostState
}

// SDNZonePutRequest creates (Create) or replaces a zone. With TagRules a
// vlan zone is refused nodes that would put two of its vnets' VLAN IDs on
// a host's uplink beside the same ID of another vlan zone's vnet (earlier
// versions left that to the rollout, which then refused every plan).
type SDNZonePutRequest struct {
	WriteMeta
	Zone     sdn.Zone
	Create   bool
	TagRules bool `codec:",omitempty"`
}

// needsRules is set when the zone's nodes are checked against the VLAN
// IDs of other vlan zones.
func (r *SDNZonePutRequest) needsRules() bool {
	return r.TagRules && r.Zone.Type == sdn.ZoneVLAN && !r.Create
}

// SDNZoneDeleteRequest deletes a zone no vnet is in.
type SDNZoneDeleteRequest struct {
	WriteMeta
	ID string
}

// SDNVnetPutRequest creates (Create) or replaces a vnet. A vnet without a
// tag in a vlan or vxlan zone takes the lowest free one from the zone's
// pool, as the allocation AllocationID (stamped by the leader); replacing
// a vnet without a tag keeps the tag it has. With TagRules a vnet's VLAN
// ID is unique on the uplinks of every host its zone shares with another
// vlan zone, not only within its zone, and a vnet of a vxlan zone without
// a pool takes no VNI that a VNI pool holds, which the pool would hand
// out again (earlier versions allowed both).
type SDNVnetPutRequest struct {
	WriteMeta
	Vnet         sdn.Vnet
	Create       bool
	AllocationID string
	TagRules     bool `codec:",omitempty"`
}

// needsRules is set when the vnet's tag is checked against other zones'
// vnets and the VNI pools.
func (r *SDNVnetPutRequest) needsRules() bool { return r.TagRules }

// SDNVnetDeleteRequest deletes a vnet no subnet is on and releases its tag.
type SDNVnetDeleteRequest struct {
	WriteMeta
	ID string
}

// SDNSubnetPutRequest creates (Create) or replaces a subnet. Its CIDR is
// filled in from its IPAM prefix.
type SDNSubnetPutRequest struct {
	WriteMeta
	Subnet sdn.Subnet
	Create bool
}

// SDNSubnetDeleteRequest deletes a subnet.
type SDNSubnetDeleteRequest struct {
	WriteMeta
	ID string
}

// SDNAllowPutRequest creates (Create) or replaces an allow rule.
type SDNAllowPutRequest struct {
	WriteMeta
	Allow  sdn.Allow
	Create bool
}

// SDNAllowDeleteRequest deletes an allow rule.
type SDNAllowDeleteRequest struct {
	WriteMeta
	ID string
}

// SDNHostPutRequest enrols a host, or updates an enrolled one.
type SDNHostPutRequest struct {
	WriteMeta
	Host sdn.Host
}

// SDNHostDeleteRequest forgets a host and its plans.
type SDNHostDeleteRequest struct {
	WriteMeta
	Name string
}

// Type returns SDNZonePutType.
func (*SDNZonePutRequest) Type() MessageType { return SDNZonePutType }

// Type returns SDNZoneDeleteType.
func (*SDNZoneDeleteRequest) Type() MessageType { return SDNZoneDeleteType }

// Type returns SDNVnetPutType.
func (*SDNVnetPutRequest) Type() MessageType { return SDNVnetPutType }

// Type returns SDNVnetDeleteType.
func (*SDNVnetDeleteRequest) Type() MessageType { return SDNVnetDeleteType }

// Type returns SDNSubnetPutType.
func (*SDNSubnetPutRequest) Type() MessageType { return SDNSubnetPutType }

// Type returns SDNSubnetDeleteType.
func (*SDNSubnetDeleteRequest) Type() MessageType { return SDNSubnetDeleteType }

// Type returns SDNAllowPutType.
func (*SDNAllowPutRequest) Type() MessageType { return SDNAllowPutType }

// Type returns SDNAllowDeleteType.
func (*SDNAllowDeleteRequest) Type() MessageType { return SDNAllowDeleteType }

// Type returns SDNHostPutType.
func (*SDNHostPutRequest) Type() MessageType { return SDNHostPutType }

// Type returns SDNHostDeleteType.
func (*SDNHostDeleteRequest) Type() MessageType { return SDNHostDeleteType }

// sdnErr turns an sdn validation or compile error into a FieldError with
// ErrInvalid (400) naming the same field.
func sdnErr(err error) error {
	if err == nil {
		return nil
	}
	var se *sdn.Error
	if errors.As(err, &se) {
		return fieldErrf(se.Field, ErrInvalid, "%s", se.Msg)
	}
	return fieldErrf("", ErrInvalid, "%v", err)
}

// Validate checks the zone on its own.
func (r *SDNZonePutRequest) Validate() error { return sdnErr(sdn.ValidateZone(r.Zone)) }

// Validate checks what does not depend on the zone; Apply checks the rest.
func (r *SDNVnetPutRequest) Validate() error {
	if !sdn.ValidID(r.Vnet.ID) {
		return fieldErrf("id", ErrInvalid, "vnet ID %q must be 1-%d characters, a letter then letters and digits", r.Vnet.ID, sdn.MaxIDLen)
	}
	if r.Vnet.Zone == "" {
		return fieldErrf("zone", ErrInvalid, "zone is required")
	}
	if err := checkOptionalName("tenant", r.Vnet.Tenant); err != nil {
		return err
	}
	if r.AllocationID != "" {
		return checkID("allocation_id", r.AllocationID)
	}
	return nil
}

// Validate checks the subnet on its own; Apply resolves its CIDR and
// checks it again.
func (r *SDNSubnetPutRequest) Validate() error { return sdnErr(sdn.ValidateSubnet(r.Subnet)) }

// Validate checks the rule.
func (r *SDNAllowPutRequest) Validate() error { return sdnErr(sdn.ValidateAllow(r.Allow)) }

// Validate checks the host.
func (r *SDNHostPutRequest) Validate() error { return sdnErr(sdn.ValidateHost(r.Host)) }

// putCheck refuses a create of an object that exists (409 on id) or an
// update of one that does not (404).
func putCheck(create, exists bool, what, id string) error {
	switch {
	case create && exists:
		return fieldErrf("id", ErrConflict, "%s %s already exists", what, id)
	case !create && !exists:
		return notFound(what, id)
	}
	return nil
}

// first returns the object of table whose id index is id, or nil.
func first[T any](txn *memdb.Txn, table, id string) (*T, error) {
	raw, err := txn.First(table, "id", id)
	if err != nil || raw == nil {
		return nil, err
	}
	return raw.(*T), nil
}

// --- zones ------------------------------------------------------------

// zonePoolKind is the IPAM pool kind a zone's vnets take tags from.
func zonePoolKind(t sdn.ZoneType) string {
	if t == sdn.ZoneVXLAN {
		return PoolVNI
	}
	return PoolVLAN
}

func applySDNZonePut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNZonePutRequest)
	old, err := first[SDNZone](txn, tableSDNZones, req.Zone.ID)
	if err != nil {
		return nil, err
	}
	if err := putCheck(req.Create, old != nil, "zone", req.Zone.ID); err != nil {
		return nil, err
	}
	if old != nil && old.Type != req.Zone.Type {
		if raw, err := txn.First(tableSDNVnets, "zone", old.ID); err != nil {
			return nil, err
		} else if raw != nil {
			return nil, fieldErrf("type", ErrConflict, "zone %s still has vnets, such as %s; its type cannot change", old.ID, raw.(*SDNVnet).ID)
		}
	}
	if req.Zone.Pool != "" {
		if _, err := getPool(txn, zonePoolKind(req.Zone.Type), req.Zone.Pool); err != nil {
			return nil, fieldErr("pool", err)
		}
	}
	if req.TagRules && old != nil && req.Zone.Type == sdn.ZoneVLAN {
		if err := checkZoneVLANs(txn, old, &SDNZone{Zone: req.Zone}); err != nil {
			return nil, err
		}
	}
	z := SDNZone{Zone: req.Zone, CreateIndex: index, ModifyIndex: index, CreatedAt: Timestamp(req.Now), UpdatedAt: Timestamp(req.Now)}
	if old != nil {
		z.CreateIndex, z.CreatedAt = old.CreateIndex, old.CreatedAt
	}
	if err := insert(txn, tableSDNZones, index, &z); err != nil {
		return nil, err
	}
	return &z, nil
}

func applySDNZoneDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNZoneDeleteRequest)
	z, err := lookup[SDNZone](txn, tableSDNZones, "zone", req.ID)
	if err != nil {
		return nil, err
	}
	if raw, err := txn.First(tableSDNVnets, "zone", z.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "zone %s still has vnets, such as %s; delete them first", z.ID, raw.(*SDNVnet).ID)
	}
	if err := remove(txn, tableSDNZones, index, z); err != nil {
		return nil, err
	}
	return z, nil
}

// --- vnets ------------------------------------------------------------

func applySDNVnetPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNVnetPutRequest)
	v := req.Vnet
	old, err := first[SDNVnet](txn, tableSDNVnets, v.ID)
	if err != nil {
		return nil, err
	}
	if err := putCheck(req.Create, old != nil, "vnet", v.ID); err != nil {
		return nil, err
	}
	z, err := first[SDNZone](txn, tableSDNZones, v.Zone)
	if err != nil {
		return nil, err
	}
	if z == nil {
		return nil, fieldErr("zone", notFound("zone", v.Zone))
	}
	// Replacing a vnet without naming a tag keeps its tag.
	if v.Tag == 0 && z.Type != sdn.ZoneSimple && old != nil && old.Zone == v.Zone && old.Tag != 0 {
		v.Tag = old.Tag
	}
	if err := sdnErr(sdn.ValidateVnet(v, z.Zone)); err != nil {
		return nil, err
	}
	// The rules of TagRules hold for a tag the put brings to the zone, not
	// for one the vnet has there already (which an earlier version may
	// have let it take): an unrelated change must not be refused for it.
	brings := req.TagRules && (old == nil || old.Zone != v.Zone || old.Tag != v.Tag)
	used, err := usedTags(txn, v.ID, z, brings)
	if err != nil {
		return nil, err
	}
	if other, ok := used[v.Tag]; ok && v.Tag != 0 {
		return nil, fieldErrf("tag", ErrConflict, "%s %d is already the tag of vnet %s", tagNoun(z.Type), v.Tag, other)
	}
	if brings && z.Type == sdn.ZoneVXLAN && z.Pool == "" && v.Tag != 0 {
		if p, err := vniPoolHolding(txn, v.Tag); err != nil {
			return nil, err
		} else if p != nil {
			return nil, fieldErrf("tag", ErrConflict, "VNI %d lies in VNI pool %s, which would hand it out again: put the vnet in a zone that takes its VNIs from that pool, or give it a VNI outside every pool", v.Tag, p.Name)
		}
	}
	out := SDNVnet{Vnet: v, CreateIndex: index, ModifyIndex: index, CreatedAt: Timestamp(req.Now), UpdatedAt: Timestamp(req.Now)}
	pool := ""
	if z.Type != sdn.ZoneSimple {
		pool = z.Pool
	}
	// With TagRules, a vnet that changes tenant alone keeps its tag's
	// allocation (its ID, and a name or description given through IPAM),
	// which moves to the new tenant; earlier versions made a new one.
	var keep *IDAllocation
	if req.TagRules && old != nil && old.Zone == v.Zone && old.Tag == v.Tag && old.Tenant != v.Tenant && old.AllocationID != "" {
		if keep, err = first[IDAllocation](txn, tableIDAllocs, old.AllocationID); err != nil {
			return nil, err
		}
	}
	switch {
	case old != nil && old.Zone == v.Zone && old.Tag == v.Tag && old.Tenant == v.Tenant:
		// The tag's allocation changes only with the vnet's zone, tag or
		// tenant, not when the zone's pool does.
		out.CreateIndex, out.CreatedAt, out.AllocationID = old.CreateIndex, old.CreatedAt, old.AllocationID
	case keep != nil:
		out.CreateIndex, out.CreatedAt, out.AllocationID = old.CreateIndex, old.CreatedAt, keep.ID
		moved := *keep
		moved.Tenant, moved.Project = v.Tenant, ""
		if err := moveHolding(txn, index, itemNoun(keep.Kind), strconv.Itoa(keep.Number), keep.holding(), moved.holding(), false); err != nil {
			return nil, err
		}
		moved.ModifyIndex, moved.UpdatedAt = index, Timestamp(req.Now)
		if err := insert(txn, tableIDAllocs, index, &moved); err != nil {
			return nil, err
		}
	default:
		var oldAlloc *IDAllocation
		if old != nil {
			out.CreateIndex, out.CreatedAt = old.CreateIndex, old.CreatedAt
			if old.AllocationID != "" {
				if oldAlloc, err = first[IDAllocation](txn, tableIDAllocs, old.AllocationID); err != nil {
					return nil, err
				}
			}
		}
		// An allocation released through IPAM before that was refused is
		// gone already.
		if oldAlloc != nil {
			if _, err := releaseID(txn, index, oldAlloc); err != nil {
				return nil, err
			}
		}
		if pool != "" {
			id := req.AllocationID
			if id == "" && oldAlloc != nil {
				id = oldAlloc.ID
			}
			if id == "" {
				return nil, fieldErrf("allocation_id", ErrInvalid, "a vnet that takes its tag from pool %s needs an allocation ID", pool)
			}
			a, err := claimVnetTag(txn, index, req.Now, z, v, id, used)
			if err != nil {
				return nil, err
			}
			out.Tag, out.AllocationID = a.Number, a.ID
		}
	}
	if err := insert(txn, tableSDNVnets, index, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// tagNoun names a zone type's tag.
func tagNoun(t sdn.ZoneType) string {
	if t == sdn.ZoneVXLAN {
		return "VNI"
	}
	return "VLAN ID"
}

// usedTags returns the tags a vnet other than id may not share with a
// vnet of zone z, with the vnet holding each: every VNI of a vxlan zone,
// or the VLAN IDs of z and, with uplinks, of the vlan zones that share a
// host with z (a host has one uplink, which carries them all).
func usedTags(txn *memdb.Txn, id string, z *SDNZone, uplinks bool) (map[int]string, error) {
	used := map[int]string{}
	if z.Type == sdn.ZoneSimple {
		return used, nil
	}
	zones := map[string]*SDNZone{}
	it, err := txn.Get(tableSDNVnets, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		o := raw.(*SDNVnet)
		if o.ID == id || o.Tag == 0 {
			continue
		}
		oz, ok := zones[o.Zone]
		if !ok {
			if oz, err = first[SDNZone](txn, tableSDNZones, o.Zone); err != nil {
				return nil, err
			}
			zones[o.Zone] = oz
		}
		if oz == nil {
			continue
		}
		switch {
		case z.Type == sdn.ZoneVXLAN && oz.Type == sdn.ZoneVXLAN,
			z.Type == sdn.ZoneVLAN && o.Zone == z.ID,
			z.Type == sdn.ZoneVLAN && uplinks && oz.Type == sdn.ZoneVLAN && shareHost(z, oz):
			used[o.Tag] = o.ID
		}
	}
	return used, nil
}

// shareHost reports whether zones a and b may have a host in common: one
// of them is on every host, or their nodes meet.
func shareHost(a, b *SDNZone) bool {
	return len(a.Nodes) == 0 || len(b.Nodes) == 0 || slices.ContainsFunc(a.Nodes, func(n string) bool { return slices.Contains(b.Nodes, n) })
}

// checkZoneVLANs refuses the nodes of z, vlan zone old changed, under
// which one of its vnets would come to share its VLAN ID with a vnet of
// another vlan zone on a host's uplink. Such pairs that share a host under
// old's nodes already (left by an earlier version) are not its doing.
func checkZoneVLANs(txn *memdb.Txn, old, z *SDNZone) error {
	it, err := txn.Get(tableSDNVnets, "zone", z.ID)
	if err != nil {
		return err
	}
	var vnets []*SDNVnet
	for raw := it.Next(); raw != nil; raw = it.Next() {
		vnets = append(vnets, raw.(*SDNVnet))
	}
	if len(vnets) == 0 {
		return nil
	}
	used := map[int]string{} // of the vnets of the other vlan zones on z's hosts
	all, err := txn.Get(tableSDNVnets, "id")
	if err != nil {
		return err
	}
	for raw := all.Next(); raw != nil; raw = all.Next() {
		o := raw.(*SDNVnet)
		if o.Zone == z.ID || o.Tag == 0 {
			continue
		}
		if oz, err := first[SDNZone](txn, tableSDNZones, o.Zone); err != nil {
			return err
		} else if oz != nil && oz.Type == sdn.ZoneVLAN && shareHost(z, oz) && !shareHost(old, oz) {
			used[o.Tag] = o.ID
		}
	}
	for _, v := range vnets {
		if other, ok := used[v.Tag]; ok {
			return fieldErrf("nodes", ErrConflict, "on these nodes VLAN ID %d of vnet %s would share a host's uplink with vnet %s of another zone; give the vnet another tag first", v.Tag, v.ID, other)
		}
	}
	return nil
}

// vniPoolHolding returns the VNI pool whose ranges hold vni, or nil.
func vniPoolHolding(txn *memdb.Txn, vni int) (*Pool, error) {
	it, err := txn.Get(tablePools, "id")
	if err != nil {
		return nil, err
	}
	for raw := it.Next(); raw != nil; raw = it.Next() {
		p := raw.(*Pool)
		if p.Kind != PoolVNI {
			continue
		}
		if slices.ContainsFunc(p.Ranges, func(r ipam.IDRange) bool { return r.First <= vni && vni <= r.Last }) {
			return p, nil
		}
	}
	return nil, nil
}

// claimVnetTag takes the tag of vnet v from the pool of its zone z as
// allocation id: v.Tag when set, else the lowest free number no other vnet
// uses (see usedTags). It charges the allocation to v's tenant, so the
// tenant's vlans or vnis quota applies.
func claimVnetTag(txn *memdb.Txn, index uint64, now int64, z *SDNZone, v sdn.Vnet, id string, used map[int]string) (*IDAllocation, error) {
	p, err := getPool(txn, zonePoolKind(z.Type), z.Pool)
	if err != nil {
		return nil, fieldErr("pool", err)
	}
	if raw, err := txn.First(tableIDAllocs, "id", id); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("allocation_id", ErrConflict, "allocation %s already exists", id)
	}
	spID := poolSpaceID(p.ID)
	base, err := poolSpace(p)
	if err != nil {
		return nil, err
	}
	sp := loadSpace(txn, spID, base)
	runs := txnRuns{txn, spID}
	var k ipam.Key
	if v.Tag != 0 {
		k = ipam.IntKey(uint64(v.Tag))
		if err := sp.Claim(runs, k); err != nil {
			return nil, fieldErr("tag", err)
		}
	} else {
		// Numbers other vnets hold without the pool knowing are passed
		// over: claimed while looking, released after.
		var skipped []ipam.Key
		for {
			keys, err := sp.NextFree(runs, 1)
			if ex := (*ipam.ExhaustedError)(nil); errors.As(err, &ex) {
				msg := fmt.Sprintf("%s in %s %s of zone %s", ex, poolNoun(p.Kind), p.Name, z.ID)
				if len(skipped) > 0 {
					msg += fmt.Sprintf(", passing over %d that vnets of other zones hold", len(skipped))
				}
				return nil, fieldErr("tag", &kindError{kind: ex, msg: msg})
			}
			if err != nil {
				return nil, fieldErr("tag", err)
			}
			n, _ := keys[0].Uint64()
			if _, taken := used[int(n)]; !taken {
				k = keys[0]
				break
			}
			skipped = append(skipped, keys[0])
		}
		for _, s := range skipped {
			if err := sp.Release(runs, s); err != nil {
				return nil, fmt.Errorf("fsm: release %v: %w", s, err)
			}
		}
	}
	if err := saveSpace(txn, index, spID, sp); err != nil {
		return nil, err
	}
	n, _ := k.Uint64()
	a := &IDAllocation{
		ID: id, Kind: p.Kind, PoolID: p.ID, Number: int(n), Tenant: v.Tenant,
		Owner: "sdn:vnet/" + v.ID, Description: "tag of SDN vnet " + v.ID,
		CreateIndex: index, CreatedAt: Timestamp(now),
	}
	if ValidName(v.ID) {
		a.Name = v.ID
	}
	if err := charge(txn, index, a.holding(), true); err != nil {
		return nil, err
	}
	if err := insert(txn, tableIDAllocs, index, a); err != nil {
		return nil, err
	}
	return a, nil
}

func applySDNVnetDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNVnetDeleteRequest)
	v, err := lookup[SDNVnet](txn, tableSDNVnets, "vnet", req.ID)
	if err != nil {
		return nil, err
	}
	if raw, err := txn.First(tableSDNSubnets, "vnet", v.ID); err != nil {
		return nil, err
	} else if raw != nil {
		return nil, fieldErrf("id", ErrConflict, "vnet %s still has subnets, such as %s; delete them first", v.ID, raw.(*SDNSubnet).ID)
	}
	if v.AllocationID != "" {
		a, err := first[IDAllocation](txn, tableIDAllocs, v.AllocationID)
		if err != nil {
			return nil, err
		}
		// An allocation released through IPAM before that was refused is
		// gone already.
		if a != nil {
			if _, err := releaseID(txn, index, a); err != nil {
				return nil, err
			}
		}
	}
	if err := remove(txn, tableSDNVnets, index, v); err != nil {
		return nil, err
	}
	return v, nil
}

// --- subnets ----------------------------------------------------------

func applySDNSubnetPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNSubnetPutRequest)
	s := req.Subnet
	old, err := first[SDNSubnet](txn, tableSDNSubnets, s.ID)
	if err != nil {
		return nil, err
	}
	if err := putCheck(req.Create, old != nil, "subnet", s.ID); err != nil {
		return nil, err
	}
	if v, err := first[SDNVnet](txn, tableSDNVnets, s.Vnet); err != nil {
		return nil, err
	} else if v == nil {
		return nil, fieldErr("vnet", notFound("vnet", s.Vnet))
	}
	p, err := first[Prefix](txn, tablePrefixes, s.PrefixID)
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, fieldErr("prefix_id", notFound("prefix", s.PrefixID))
	}
	if s.CIDR != "" && s.CIDR != p.Prefix {
		return nil, fieldErrf("cidr", ErrInvalid, "cidr %s is not %s, the prefix of %s", s.CIDR, p.Prefix, p.ID)
	}
	s.CIDR = p.Prefix
	if err := sdnErr(sdn.ValidateSubnet(s)); err != nil {
		return nil, err
	}
	if raw, err := txn.First(tableSDNSubnets, "prefix", s.PrefixID); err != nil {
		return nil, err
	} else if raw != nil && raw.(*SDNSubnet).ID != s.ID {
		return nil, fieldErrf("prefix_id", ErrConflict, "prefix %s is already subnet %s", s.PrefixID, raw.(*SDNSubnet).ID)
	}
	out := SDNSubnet{Subnet: s, CreateIndex: index, ModifyIndex: index, CreatedAt: Timestamp(req.Now), UpdatedAt: Timestamp(req.Now)}
	if old != nil {
		out.CreateIndex, out.CreatedAt = old.CreateIndex, old.CreatedAt
	}
	if err := insert(txn, tableSDNSubnets, index, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func applySDNSubnetDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	return removeByID[SDNSubnet](txn, index, tableSDNSubnets, "subnet", c.(*SDNSubnetDeleteRequest).ID)
}

// --- allow rules ------------------------------------------------------

func applySDNAllowPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNAllowPutRequest)
	old, err := first[SDNAllow](txn, tableSDNAllows, req.Allow.ID)
	if err != nil {
		return nil, err
	}
	if err := putCheck(req.Create, old != nil, "allow rule", req.Allow.ID); err != nil {
		return nil, err
	}
	out := SDNAllow{Allow: req.Allow, CreateIndex: index, ModifyIndex: index, CreatedAt: Timestamp(req.Now), UpdatedAt: Timestamp(req.Now)}
	if old != nil {
		out.CreateIndex, out.CreatedAt = old.CreateIndex, old.CreatedAt
	}
	if err := insert(txn, tableSDNAllows, index, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

func applySDNAllowDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	return removeByID[SDNAllow](txn, index, tableSDNAllows, "allow rule", c.(*SDNAllowDeleteRequest).ID)
}

// --- hosts ------------------------------------------------------------

func applySDNHostPut(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNHostPutRequest)
	old, err := first[sdnHostRow](txn, tableSDNHosts, req.Host.Name)
	if err != nil {
		return nil, err
	}
	now := Timestamp(req.Now)
	row := sdnHostRow{
		Name:  req.Host.Name,
		Host:  SDNHost{Host: req.Host, EnrolledAt: now, CreateIndex: index, ModifyIndex: index, CreatedAt: now, UpdatedAt: now},
		State: SDNHostState{Host: req.Host.Name},
	}
	if old != nil {
		row.Host.CreateIndex, row.Host.CreatedAt = old.Host.CreateIndex, old.Host.CreatedAt
		row.State = old.State
	}
	if err := insert(txn, tableSDNHosts, index, &row); err != nil {
		return nil, err
	}
	return &row.Host, nil
}

func applySDNHostDelete(txn *memdb.Txn, index uint64, c Command) (any, error) {
	req := c.(*SDNHostDeleteRequest)
	row, err := lookup[sdnHostRow](txn, tableSDNHosts, "host", req.Name)
	if err != nil {
		return nil, err
	}
	r, err := activeRollout(txn)
	if err != nil {
		return nil, err
	}
	if r != nil && slices.Contains(r.Hosts, row.Name) {
		return nil, fieldErrf("name", ErrConflict, "host %s is in rollout %s, which is preparing; abort it or let it finish first", row.Name, r.ID)
	}
	n, err := txn.DeleteAll(tableSDNPlans, "id_prefix", row.Name)
	if err != nil {
		return nil, err
	}
	if n > 0 {
		if err := touchTable(txn, tableSDNPlans, index); err != nil {
			return nil, err
		}
	}
	if err := remove(txn, tableSDNHosts, index, row); err != nil {
		return nil, err
	}
	return &row.Host, nil
}

// sdnTables returns the SDN part of the memdb schema.
func sdnTables() map[string]*memdb.TableSchema {
	str := func(field string) memdb.Indexer { return &memdb.StringFieldIndex{Field: field} }
	return map[string]*memdb.TableSchema{
		tableSDNZones: {Name: tableSDNZones, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
		tableSDNVnets: {Name: tableSDNVnets, Indexes: map[string]*memdb.IndexSchema{
			"id":   {Name: "id", Unique: true, Indexer: str("ID")},
			"zone": {Name: "zone", Indexer: str("Zone")},
		}},
		tableSDNSubnets: {Name: tableSDNSubnets, Indexes: map[string]*memdb.IndexSchema{
			"id":     {Name: "id", Unique: true, Indexer: str("ID")},
			"vnet":   {Name: "vnet", Indexer: str("Vnet")},
			"prefix": {Name: "prefix", Indexer: str("PrefixID")},
		}},
		tableSDNAllows: {Name: tableSDNAllows, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("ID")},
		}},
		tableSDNHosts: {Name: tableSDNHosts, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: str("Name")},
		}},
		// Plans by (host, version): a host's plans are a prefix of the
		// index, in version order.
		tableSDNPlans: {Name: tableSDNPlans, Indexes: map[string]*memdb.IndexSchema{
			"id": {Name: "id", Unique: true, Indexer: planIndexer{}},
		}},
		tableSDNRollouts: {Name: tableSDNRollouts, Indexes: map[string]*memdb.IndexSchema{
			"id":      {Name: "id", Unique: true, Indexer: str("ID")},
			"version": {Name: "version", Unique: true, Indexer: versionIndexer{}},
		}},
	}
}

// sdnHoldsTag refuses to release a VLAN ID or VNI allocation that is a
// vnet's tag: the vnet must be deleted or given another tag first, or the
// number could be handed out again while hosts still carry it.
func sdnHoldsTag(txn *memdb.Txn, a *IDAllocation) error {
	id, ok := strings.CutPrefix(a.Owner, "sdn:vnet/")
	if !ok {
		return nil
	}
	v, err := first[SDNVnet](txn, tableSDNVnets, id)
	if err != nil || v == nil || v.AllocationID != a.ID {
		return err
	}
	return fieldErrf("id", ErrConflict, "%d is the tag of vnet %s; delete the vnet or give it another tag first", a.Number, v.ID)
}
