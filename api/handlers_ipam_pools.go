package api

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
)

// VLAN groups and VNI pools share their handlers; poolKind says which of
// the two a route serves and how its JSON names things.
type poolKind struct {
	kind string // fsm.PoolVLAN or fsm.PoolVNI
	// noun and itemNoun name a pool and an allocation in messages.
	noun, itemNoun string
	// number is the JSON name of an allocation's number: vid or vni.
	number string
	// poolParam is the list query parameter naming a pool.
	poolParam string
	// all is the range a pool created without ranges covers.
	all ipam.IDRange
}

var (
	vlanKind = &poolKind{kind: fsm.PoolVLAN, noun: "VLAN group", itemNoun: "VLAN", number: "vid", poolParam: "group_id",
		all: ipam.IDRange{First: ipam.MinVLAN, Last: ipam.MaxVLAN}}
	vniKind = &poolKind{kind: fsm.PoolVNI, noun: "VNI pool", itemNoun: "VNI", number: "vni", poolParam: "pool_id",
		all: ipam.IDRange{First: ipam.MinVNI, Last: ipam.MaxVNI}}
)

// VLANGroupList is the body of GET /v1/ipam/vlan-groups.
type VLANGroupList struct {
	VLANGroups []*fsm.PoolView `json:"vlan_groups"`
}

// VNIPoolList is the body of GET /v1/ipam/vni-pools.
type VNIPoolList struct {
	VNIPools []*fsm.PoolView `json:"vni_pools"`
}

// VLANList is the body of GET /v1/ipam/vlans.
type VLANList struct {
	VLANs []*fsm.IDAllocation `json:"vlans"`
	// Next, in a listing cut short by its limit, is the after parameter
	// of the next page.
	Next string `json:"next,omitempty"`
}

// VNIList is the body of GET /v1/ipam/vnis.
type VNIList struct {
	VNIs []*fsm.IDAllocation `json:"vnis"`
	// Next is as in VLANList.
	Next string `json:"next,omitempty"`
}

// PoolCreateRequest is the body of POST /v1/ipam/vlan-groups and
// /v1/ipam/vni-pools. Without ranges the pool spans every valid ID.
type PoolCreateRequest struct {
	Name        string         `json:"name"`
	Ranges      []ipam.IDRange `json:"ranges"`
	Tenant      string         `json:"tenant"`
	Description string         `json:"description"`
}

// VLANAllocateRequest is the body of POST /v1/ipam/vlan-groups/{id}/allocate.
// Without VID the lowest free ID is taken; an explicit 0 is refused.
type VLANAllocateRequest struct {
	VID *int `json:"vid"`
	idAllocateFields
}

// VNIAllocateRequest is the body of POST /v1/ipam/vni-pools/{id}/allocate.
// Without VNI the lowest free one is taken; an explicit 0 is refused.
type VNIAllocateRequest struct {
	VNI *int `json:"vni"`
	idAllocateFields
}

// idAllocateFields are the fields VLAN and VNI allocations share.
type idAllocateFields struct {
	Fallback    bool   `json:"fallback"`
	Name        string `json:"name"`
	Tenant      string `json:"tenant"`
	Project     string `json:"project"`
	Owner       string `json:"owner"`
	Description string `json:"description"`
}

func (k *poolKind) list(pools []*fsm.PoolView) any {
	if k.kind == fsm.PoolVNI {
		return VNIPoolList{VNIPools: pools}
	}
	return VLANGroupList{VLANGroups: pools}
}

func (k *poolKind) itemList(items []*fsm.IDAllocation, next string) any {
	if k.kind == fsm.PoolVNI {
		return VNIList{VNIs: items, Next: next}
	}
	return VLANList{VLANs: items, Next: next}
}

// resolvePool returns the ID of the pool whose ID or name is ref, from
// the leader's store, or a 404 naming field. With an Idempotency-Key an
// unknown ref is passed on as it is: the pool may be gone because the
// first attempt deleted it, and the FSM replays that attempt's result (or
// answers 404 itself). Another tenant's pool is unknown to a call confined
// to a tenant.
func (s *server) resolvePool(c *call, k *poolKind, ref, field string) (string, error) {
	_, p, err := s.b.State().Pool(nil, k.kind, ref)
	if err != nil {
		return "", err
	}
	if p != nil && !visible(c, p.Tenant) {
		return "", notFoundError(field, k.noun, ref)
	}
	if p == nil {
		if keyed(c) {
			return ref, nil
		}
		return "", notFoundError(field, k.noun, ref)
	}
	return p.ID, nil
}

// poolList returns the handler that lists the pools of one kind.
func poolList(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.PoolView, error) {
			idx, l, err := st.Pools(ws, k.kind)
			return idx, filterVisible(c, l, poolTenant), err
		}, k.list)
	}
}

func poolTenant(p *fsm.PoolView) string           { return p.Tenant }
func allocationTenant(a *fsm.IDAllocation) string { return a.Tenant }

// poolGet returns the handler that reads one pool, by ID or name.
func poolGet(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		ref, err := pathID(c, "id")
		if err != nil {
			return err
		}
		return serveTenantGet(s, c, "id", k.noun, ref, poolTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.PoolView, error) {
			return st.Pool(ws, k.kind, ref)
		})
	}
}

// poolCreate returns the handler that creates a pool.
func poolCreate(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		var req PoolCreateRequest
		if err := decodeJSON(c.body, &req, true); err != nil {
			return err
		}
		if req.Ranges != nil && len(req.Ranges) == 0 {
			return invalid("ranges", "an empty list holds no IDs: leave ranges out for all of %d-%d", k.all.First, k.all.Last)
		}
		if req.Ranges == nil && rangesNull(c.body) {
			// A client's nil list: not "all of them" unasked.
			return invalid("ranges", "ranges is null: give the ranges, or leave ranges out for all of %d-%d", k.all.First, k.all.Last)
		}
		if len(req.Ranges) == 0 {
			req.Ranges = []ipam.IDRange{k.all}
		}
		if err := checkRangeEnds(k, req.Ranges); err != nil {
			return err
		}
		if err := checkPoolName(k, req.Name); err != nil {
			return err
		}
		cmd := &fsm.PoolCreateRequest{Pool: fsm.Pool{
			ID: newID(), Kind: k.kind, Name: req.Name, Ranges: req.Ranges, Tenant: req.Tenant, Description: req.Description,
		}, Exclusive: k.kind == fsm.PoolVNI, TagRule: k.kind == fsm.PoolVNI}
		if err := cmd.Validate(); err != nil {
			return err
		}
		var err error
		if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
			return err
		}
		return s.apply(c, cmd, http.StatusCreated, nil)
	}
}

// rangesNull reports whether body, a decoded pool request, gives ranges
// as null rather than leaving the member out.
func rangesNull(body []byte) bool {
	var probe struct {
		Ranges json.RawMessage `json:"ranges"`
	}
	return json.Unmarshal(body, &probe) == nil && string(probe.Ranges) == "null"
}

// PoolUpdateRequest is the body of PATCH /v1/ipam/vlan-groups/{id} and
// /v1/ipam/vni-pools/{id}: absent members stay as they are.
type PoolUpdateRequest struct {
	Name        *string         `json:"name"`
	Ranges      *[]ipam.IDRange `json:"ranges"`
	Description *string         `json:"description"`
	Tenant      *string         `json:"tenant"`
}

// poolUpdate returns the handler that changes a pool's name, ranges,
// description or tenant, by ID or name.
func poolUpdate(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		ref, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var req PoolUpdateRequest
		if err := decodePatch(c.body, &req); err != nil {
			return err
		}
		if req == (PoolUpdateRequest{}) && !keyed(c) {
			// Nothing to change: the pool as it is, without a write. With
			// an Idempotency-Key it is written, so that the key is kept
			// with its request like any other.
			return poolGet(k)(s, c)
		}
		if req.Ranges != nil {
			if len(*req.Ranges) == 0 {
				return invalid("ranges", "an empty list holds no IDs: give the ranges the %s is to have", k.noun)
			}
			if err := checkRangeEnds(k, *req.Ranges); err != nil {
				return err
			}
		}
		if req.Name != nil {
			if *req.Name == "" {
				return invalid("name", "must not be empty or null: leave name out to keep it as it is")
			}
			if err := checkPoolName(k, *req.Name); err != nil {
				return err
			}
		}
		id, err := s.resolvePool(c, k, ref, "id")
		if err != nil {
			return err
		}
		cmd := &fsm.PoolUpdateRequest{Kind: k.kind, ID: id, Name: req.Name, Ranges: req.Ranges, Description: req.Description, Tenant: req.Tenant}
		if err := cmd.Validate(); err != nil {
			return err
		}
		if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
			return err
		}
		return s.apply(c, cmd, http.StatusOK, nil)
	}
}

// checkPoolName refuses a name shaped like an ID: a pool is found by its
// ID before its name, so it could not be found by that name.
func checkPoolName(k *poolKind, name string) error {
	if looksLikeID(name) {
		return invalid("name", "%q has the form of an ID: a %s is found by its ID before its name, so it could not be found by this name", name, k.noun)
	}
	return nil
}

// checkRangeEnds refuses a range without both ends: JSON leaves a missing
// member zero, which no VLAN ID or VNI is.
func checkRangeEnds(k *poolKind, ranges []ipam.IDRange) error {
	for i, r := range ranges {
		field := "first"
		if r.First != 0 {
			field = "last"
		}
		if r.First == 0 || r.Last == 0 {
			return invalid(fmt.Sprintf("ranges[%d].%s", i, field), "range %d-%d: %s is missing or 0, which is no %s: give first and last, each from %d to %d (for one %s give the same number twice)", r.First, r.Last, field, k.itemNoun, k.all.First, k.all.Last, k.itemNoun)
		}
	}
	return nil
}

// poolDelete returns the handler that deletes a pool with no allocations,
// by ID or name.
func poolDelete(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		ref, err := pathID(c, "id")
		if err != nil {
			return err
		}
		id, err := s.resolvePool(c, k, ref, "id")
		if err != nil {
			return err
		}
		meta, err := s.writeMeta(c)
		if err != nil {
			return err
		}
		return s.apply(c, &fsm.PoolDeleteRequest{WriteMeta: meta, Kind: k.kind, ID: id, ZoneRule: true}, http.StatusOK, nil)
	}
}

// poolAllocate returns the handler that takes an ID from a pool named by
// ID or name.
func poolAllocate(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		ref, err := pathID(c, "id")
		if err != nil {
			return err
		}
		var given *int
		var f idAllocateFields
		if k.kind == fsm.PoolVNI {
			var req VNIAllocateRequest
			err = decodeJSON(c.body, &req, false)
			given, f = req.VNI, req.idAllocateFields
		} else {
			var req VLANAllocateRequest
			err = decodeJSON(c.body, &req, false)
			given, f = req.VID, req.idAllocateFields
		}
		if err != nil {
			return err
		}
		number := 0 // the lowest free one
		if given != nil {
			if number = *given; number == 0 {
				return invalid(k.number, "%s 0 is not a %s; leave %s out for the lowest free one", k.number, k.itemNoun, k.number)
			}
		} else if f.Fallback {
			return invalid("fallback", "takes effect only with %s: without one, the lowest free %s is taken anyway", k.number, k.itemNoun)
		}
		if f.Tenant, err = forTenant(c, f.Tenant, "tenant"); err != nil {
			return err
		}
		cmd := &fsm.IDAllocateRequest{Kind: k.kind, Number: number, Fallback: f.Fallback, UniqueName: true, Allocation: fsm.IDAllocation{
			ID: newID(), Name: f.Name, Tenant: f.Tenant, Project: f.Project, Owner: f.Owner, Description: f.Description,
		}, Confine: c.tenant}
		if err := cmd.Validate(); err != nil {
			return err
		}
		if cmd.PoolID, err = s.resolvePool(c, k, ref, "id"); err != nil {
			return err
		}
		if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
			return err
		}
		return s.apply(c, cmd, http.StatusCreated, nil)
	}
}

// idList returns the handler that lists the VLANs or VNIs taken, of one
// pool (by ID or name) with ?group_id or ?pool_id, of one tenant with
// ?tenant.
func idList(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		var ref, tenant string
		var limit int
		var after *fsm.IDCursor
		if c.r.URL.RawQuery != "" {
			ref = c.q().Get(k.poolParam)
			var err error
			if tenant, err = queryTenant(c); err != nil {
				return err
			}
			if limit, err = queryLimit(c, 0, math.MaxInt32); err != nil {
				return err
			}
			if a := c.q().Get("after"); a != "" {
				if after, err = fsm.ParseIDCursor(a); err != nil {
					return invalid("after", "not a cursor of a %s listing: pass the next of the page before", k.itemNoun)
				}
			}
		}
		if tenant == "" {
			tenant = c.tenant
		}
		var list []*fsm.IDAllocation
		var next string
		idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
			f := fsm.IDFilter{Kind: k.kind, PoolID: ref, Tenant: tenant, After: after}
			if limit > 0 {
				f.Limit = limit + 1 // one more tells whether another page follows
			}
			if ref != "" {
				// A name stands for its pool.
				_, p, err := st.Pool(ws, k.kind, ref)
				if err != nil {
					return 0, err
				}
				if p == nil || !visible(c, p.Tenant) {
					return 0, invalid(k.poolParam, "%s %q not found", k.noun, ref)
				}
				f.PoolID = p.ID
			}
			idx, l, err := st.IDAllocations(ws, f)
			list = filterVisible(c, l, allocationTenant)
			next = ""
			if limit > 0 && len(list) > limit {
				list = list[:limit]
				next = fsm.IDCursorOf(list[limit-1]).String()
			}
			return idx, err
		})
		if err != nil {
			return err
		}
		c.setIndex(idx)
		writeJSON(c.w, http.StatusOK, k.itemList(list, next))
		return nil
	}
}

// idGet returns the handler that reads one VLAN or VNI.
func idGet(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		id, err := allocationID(c, k)
		if err != nil {
			return err
		}
		return serveTenantGet(s, c, "id", k.itemNoun, id, allocationTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.IDAllocation, error) {
			return st.IDAllocation(ws, k.kind, id)
		})
	}
}

// allocationID returns the VLAN or VNI allocation ID in c's path. A
// number there is a 404 that says the path takes the allocation's ID, not
// its VLAN ID or VNI, and where to look that up: no allocation ID is a
// number, and "not found" alone reads as if the number were free.
func allocationID(c *call, k *poolKind) (string, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return "", err
	}
	if _, perr := strconv.ParseUint(id, 10, 32); perr == nil {
		item := strings.ToLower(k.itemNoun)
		flag := strings.TrimSuffix(k.poolParam, "_id")
		return "", &apiError{status: http.StatusNotFound, code: CodeNotFound, field: "id", message: fmt.Sprintf(
			"no %s has the ID %q: the path takes the %s's ID, not its %s; list a %s's %ss, with their IDs, with GET /v1/ipam/%ss?%s=%s (moxxiectl ipam %s list --%s %s)",
			k.itemNoun, id, k.itemNoun, k.number, k.noun, k.itemNoun, item, k.poolParam, strings.ToUpper(flag), item, flag, strings.ToUpper(flag))}
	}
	return id, nil
}

// IDUpdateRequest is the body of PATCH /v1/ipam/vlans/{id} and
// /v1/ipam/vnis/{id}: absent members stay as they are; "" or null clears
// one.
type IDUpdateRequest struct {
	Name        *string `json:"name"`
	Tenant      *string `json:"tenant"`
	Project     *string `json:"project"`
	Owner       *string `json:"owner"`
	Description *string `json:"description"`
}

// idUpdate returns the handler that changes a VLAN's or VNI's name,
// tenant, project, owner or description. A confined call may change only
// its tenant's, and may not clear or change the tenant.
func idUpdate(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		id, err := allocationID(c, k)
		if err != nil {
			return err
		}
		var req IDUpdateRequest
		if err := decodePatch(c.body, &req); err != nil {
			return err
		}
		_, a, err := s.b.State().IDAllocation(nil, k.kind, id)
		if err != nil {
			return err
		}
		if a != nil && !visible(c, a.Tenant) {
			return notFoundError("id", k.itemNoun, id)
		}
		if req == (IDUpdateRequest{}) && !keyed(c) {
			// Nothing to change: the allocation as it is, without a write.
			return idGet(k)(s, c)
		}
		cmd := &fsm.IDUpdateRequest{Kind: k.kind, ID: id, Name: req.Name, Tenant: req.Tenant, Project: req.Project, Owner: req.Owner, Description: req.Description, Confine: c.tenant}
		if err := cmd.Validate(); err != nil {
			return err
		}
		if req.Tenant != nil {
			if *req.Tenant == "" && c.tenant != "" {
				return &apiError{status: http.StatusForbidden, code: CodeForbidden, field: "tenant",
					message: fmt.Sprintf("this token acts within tenant %s; it cannot clear a %s's tenant", c.tenant, k.itemNoun)}
			}
			t, err := forTenant(c, *req.Tenant, "tenant")
			if err != nil {
				return err
			}
			cmd.Tenant = &t
			if a != nil && req.Project == nil {
				if err := projectStays(k.itemNoun, strconv.Itoa(a.Number), a.Tenant, a.Project, t); err != nil {
					return err
				}
			}
		}
		if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
			return err
		}
		return s.apply(c, cmd, http.StatusOK, nil)
	}
}

// idRelease returns the handler that returns a VLAN or VNI to its pool.
// Another tenant's is missing to a confined call; a missing one is left
// to the command (which answers 404 or replays an earlier release).
func idRelease(k *poolKind) func(*server, *call) error {
	return func(s *server, c *call) error {
		id, err := allocationID(c, k)
		if err != nil {
			return err
		}
		if c.tenant != "" {
			if _, a, err := s.b.State().IDAllocation(nil, k.kind, id); err != nil {
				return err
			} else if a != nil && !visible(c, a.Tenant) {
				return notFoundError("id", k.itemNoun, id)
			}
		}
		meta, err := s.writeMeta(c)
		if err != nil {
			return err
		}
		return s.apply(c, &fsm.IDReleaseRequest{WriteMeta: meta, Kind: k.kind, ID: id, Confine: c.tenant}, http.StatusOK, nil)
	}
}
