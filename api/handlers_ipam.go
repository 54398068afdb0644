package api

import (
	"errors"
	"net/http"
	"net/netip"
	"strconv"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
)

// IPAM read limits.
const (
	// maxObjectIDLen bounds the {id} of an IPAM path, as fsm bounds IDs.
	maxObjectIDLen = 128
	// defaultAvailable and maxAvailable bound GET .../available.
	defaultAvailable = 50
	maxAvailable     = 1000
)

// pathID returns the {name} path value, refusing an empty or overlong one.
func pathID(c *call, name string) (string, error) {
	id := c.r.PathValue(name)
	if id == "" || len(id) > maxObjectIDLen {
		return "", invalid(name, "must be 1 to %d characters", maxObjectIDLen)
	}
	return id, nil
}

// notFoundError is the 404 of a read whose object does not exist.
func notFoundError(field, what, id string) *apiError {
	return &apiError{status: http.StatusNotFound, code: CodeNotFound, field: field, message: what + " " + strconv.Quote(id) + " not found"}
}

// withField names field in a not-found error that names none, such as a
// missing object referred to by a body field.
func withField(err error, field string) error {
	var fe *fsm.FieldError
	var ae *apiError
	if err == nil || !errors.Is(err, fsm.ErrNotFound) || errors.As(err, &fe) || errors.As(err, &ae) {
		return err
	}
	return &fsm.FieldError{Field: field, Err: err}
}

// queryLimit parses ?limit: def when absent, else 1 to most.
func queryLimit(c *call, def, most int) (int, error) {
	s := c.q().Get("limit")
	if s == "" {
		return def, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > most {
		return 0, invalid("limit", "must be an integer from 1 to %d, not %q", most, s)
	}
	return n, nil
}

// queryOneOf returns the query parameter name, which must be empty or one
// of allowed.
func queryOneOf(c *call, name string, allowed ...string) (string, error) {
	v := c.q().Get(name)
	if v == "" {
		return "", nil
	}
	for _, a := range allowed {
		if v == a {
			return v, nil
		}
	}
	return "", invalid(name, "must be one of %q, not %q", allowed, v)
}

// projectStays refuses to move an object of kind that has a project to
// another tenant when the change names no project: the project is the old
// tenant's, and a project of that name in the new tenant, if there is
// one, is another. Clearing the tenant clears the project.
func projectStays(kind, name, tenant, project, newTenant string) error {
	if project == "" || newTenant == "" || newTenant == tenant {
		return nil
	}
	return invalid("project", "%s %s is in project %s of tenant %s: give project with the new tenant (\"\" for none)", kind, name, project, tenant)
}

// queryTenant returns the tenant query parameter, which must be empty or a
// tenant name: a filter that no object can match is a mistake, not an
// empty list.
func queryTenant(c *call) (string, error) {
	v := c.q().Get("tenant")
	if v != "" && !fsm.ValidName(v) {
		return "", invalid("tenant", "%q is not a tenant name (lower case letters, digits, '-', '_' and '.')", v)
	}
	return v, nil
}

// --- VRFs ---------------------------------------------------------------

// VRFList is the body of GET /v1/ipam/vrfs.
type VRFList struct {
	VRFs []*fsm.VRF `json:"vrfs"`
}

// VRFCreateRequest is the body of POST /v1/ipam/vrfs.
type VRFCreateRequest struct {
	ID          string `json:"id"`
	Description string `json:"description"`
	Tenant      string `json:"tenant"`
}

// handleVRFList lists the VRFs, global first; it supports blocking queries.
func (s *server) handleVRFList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.VRF, error) {
		idx, l, err := st.VRFs(ws)
		return idx, filterVisible(c, l, vrfTenant), err
	}, func(l []*fsm.VRF) any { return VRFList{VRFs: l} })
}

func vrfTenant(v *fsm.VRF) string           { return v.Tenant }
func prefixTenant(p *fsm.PrefixView) string { return p.Tenant }

// handleVRFGet returns one VRF; it supports blocking queries.
func (s *server) handleVRFGet(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveTenantGet(s, c, "id", "VRF", id, vrfTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.VRF, error) {
		return st.VRF(ws, id)
	})
}

// handleVRFCreate creates a VRF named by the caller.
func (s *server) handleVRFCreate(c *call) error {
	var req VRFCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	cmd := &fsm.VRFCreateRequest{VRF: fsm.VRF{ID: req.ID, Description: req.Description, Tenant: req.Tenant}}
	if err := cmd.Validate(); err != nil {
		return err
	}
	var err error
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusCreated, nil)
}

// handleVRFDelete deletes a VRF that holds no prefixes.
func (s *server) handleVRFDelete(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	return s.apply(c, &fsm.VRFDeleteRequest{WriteMeta: meta, ID: id}, http.StatusOK, nil)
}

// --- prefixes -----------------------------------------------------------

// PrefixList is the body of GET /v1/ipam/prefixes.
type PrefixList struct {
	Prefixes []*fsm.PrefixView `json:"prefixes"`
}

// PrefixCreateRequest is the body of POST /v1/ipam/prefixes.
type PrefixCreateRequest struct {
	Prefix      string `json:"prefix"`
	VRF         string `json:"vrf"`
	Status      string `json:"status"`
	IsPool      bool   `json:"is_pool"`
	Tenant      string `json:"tenant"`
	Project     string `json:"project"`
	Gateway     string `json:"gateway"`
	Description string `json:"description"`
}

// PrefixUpdateRequest is the body of PATCH /v1/ipam/prefixes/{id}; absent
// fields are left alone.
type PrefixUpdateRequest struct {
	Tenant      *string `json:"tenant"`
	Project     *string `json:"project"`
	Description *string `json:"description"`
	IsPool      *bool   `json:"is_pool"`
}

// PrefixAllocateRequest is the body of POST
// /v1/ipam/prefixes/{id}/allocate-prefix.
type PrefixAllocateRequest struct {
	PrefixLength *int   `json:"prefix_length"`
	Status       string `json:"status"`
	IsPool       bool   `json:"is_pool"`
	Tenant       string `json:"tenant"`
	Project      string `json:"project"`
	Description  string `json:"description"`
}

// AvailableList is the body of GET /v1/ipam/prefixes/{id}/available.
type AvailableList struct {
	Available []string `json:"available"`
}

// prefixFilter parses the query of GET /v1/ipam/prefixes.
func prefixFilter(c *call) (fsm.PrefixFilter, error) {
	var f fsm.PrefixFilter
	if c.r.URL.RawQuery == "" {
		return f, nil
	}
	q := c.q()
	f.VRF, f.ParentID = q.Get("vrf"), q.Get("parent_id")
	var err error
	if f.Tenant, err = queryTenant(c); err != nil {
		return f, err
	}
	if f.Status, err = queryOneOf(c, "status", fsm.PrefixActive, fsm.PrefixContainer); err != nil {
		return f, err
	}
	switch fam := q.Get("family"); fam {
	case "":
	case "4":
		f.Family = 4
	case "6":
		f.Family = 6
	default:
		return f, invalid("family", "must be 4 or 6, not %q", fam)
	}
	if s := q.Get("contains"); s != "" {
		if f.Contains, err = parseContains(s); err != nil {
			return f, err
		}
	}
	return f, nil
}

// parseContains reads ?contains: a canonical CIDR, or an IP, which stands
// for its /32 or /128.
func parseContains(s string) (netip.Prefix, error) {
	for i := 0; i < len(s); i++ {
		if s[i] == '/' {
			p, err := ipam.ParsePrefix(s)
			if err != nil {
				return p, invalid("contains", "%v", err)
			}
			return p, nil
		}
	}
	a, err := ipam.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, invalid("contains", "%v", err)
	}
	return netip.PrefixFrom(a, a.BitLen()), nil
}

// handlePrefixList lists prefixes with their utilization, filtered by the
// query; it supports blocking queries.
func (s *server) handlePrefixList(c *call) error {
	f, err := prefixFilter(c)
	if err != nil {
		return err
	}
	if f.Tenant == "" {
		f.Tenant = c.tenant
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.PrefixView, error) {
		refs := filterRefs{c, st, ws}
		if err := refs.vrf("vrf", f.VRF); err != nil {
			return 0, nil, err
		}
		if err := refs.prefix("parent_id", f.ParentID); err != nil {
			return 0, nil, err
		}
		idx, l, err := st.Prefixes(ws, f)
		return idx, filterVisible(c, l, prefixTenant), err
	}, func(l []*fsm.PrefixView) any { return PrefixList{Prefixes: l} })
}

// handlePrefixGet returns one prefix; it supports blocking queries.
func (s *server) handlePrefixGet(c *call) error {
	id, err := prefixID(c)
	if err != nil {
		return err
	}
	return serveTenantGet(s, c, "id", "prefix", id, prefixTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.PrefixView, error) {
		return st.Prefix(ws, id)
	})
}

// handlePrefixCreate creates a prefix, reserving its gateway address when
// one is given.
func (s *server) handlePrefixCreate(c *call) error {
	var req PrefixCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	cmd := &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{
		ID: newID(), Prefix: req.Prefix, VRF: req.VRF, Status: req.Status, IsPool: req.IsPool,
		Tenant: req.Tenant, Project: req.Project, Gateway: req.Gateway, Description: req.Description,
	}}
	if req.Gateway != "" {
		cmd.GatewayID = newID()
	}
	if err := cmd.Validate(); err != nil {
		return err
	}
	if err := checkOutsideMapped(&cmd.Prefix); err != nil {
		return err
	}
	var err error
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusCreated, nil)
}

// checkOutsideMapped refuses an IPv6 prefix that addresses are allocated
// from (not a container) when it holds IPv4-mapped addresses: it would
// hand them out as IPv6 addresses that the API refuses everywhere else and
// DNS would serve as A records.
func checkOutsideMapped(p *fsm.Prefix) error {
	if p.Status == fsm.PrefixContainer {
		return nil
	}
	pfx, err := netip.ParsePrefix(p.Prefix)
	if err != nil || !pfx.Addr().Is6() || !pfx.Overlaps(ipam.MappedBlock) {
		return nil
	}
	return invalid("prefix", "%s holds ::ffff:0:0/96, the IPv4-mapped addresses, which are taken only written as IPv4: use a prefix outside it, or make this one a container", p.Prefix)
}

// handlePrefixUpdate changes a prefix's tenant, project, description or
// whether it is a pool.
func (s *server) handlePrefixUpdate(c *call) error {
	id, err := prefixID(c)
	if err != nil {
		return err
	}
	var req PrefixUpdateRequest
	if err := decodePatch(c.body, &req); err != nil {
		return err
	}
	if req == (PrefixUpdateRequest{}) && !keyed(c) {
		// Nothing to change: the prefix as it is, without a write. With
		// an Idempotency-Key it is written, so that the key is kept
		// with its request like any other.
		return s.handlePrefixGet(c)
	}
	if req.Tenant != nil && req.Project == nil {
		if _, p, err := s.b.State().Prefix(nil, id); err != nil {
			return err
		} else if p != nil {
			if err := projectStays("prefix", p.Prefix.Prefix, p.Tenant, p.Project, *req.Tenant); err != nil {
				return err
			}
		}
	}
	cmd := &fsm.PrefixUpdateRequest{ID: id, Tenant: req.Tenant, Project: req.Project, Description: req.Description, IsPool: req.IsPool, ProjectRules: true}
	if err := cmd.Validate(); err != nil {
		return err
	}
	if same, err := s.unchanged(c, samePrefix(cmd)); err != nil {
		return err
	} else if same {
		return s.handlePrefixGet(c)
	}
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusOK, nil)
}

// handlePrefixDelete deletes a prefix that holds no addresses (but its
// gateway) and no child prefixes.
func (s *server) handlePrefixDelete(c *call) error {
	id, err := prefixID(c)
	if err != nil {
		return err
	}
	var force, reparent bool
	if c.r.URL.RawQuery != "" {
		if force, err = boolParam(c, "force"); err != nil {
			return err
		}
		if reparent, err = boolParam(c, "reparent"); err != nil {
			return err
		}
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	cmd := &fsm.PrefixDeleteRequest{WriteMeta: meta, ID: id, Reparent: reparent, KeepQuarantine: !force, WholeRule: true}
	return s.apply(c, cmd, http.StatusOK, nil)
}

// handlePrefixAllocatePrefix creates the lowest free child prefix of the
// requested length in a container.
func (s *server) handlePrefixAllocatePrefix(c *call) error {
	id, err := prefixID(c)
	if err != nil {
		return err
	}
	var req PrefixAllocateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if req.PrefixLength == nil {
		return invalid("prefix_length", "is required")
	}
	cmd := &fsm.PrefixAllocateRequest{ParentID: id, Bits: *req.PrefixLength, Child: fsm.Prefix{
		ID: newID(), Status: req.Status, IsPool: req.IsPool, Tenant: req.Tenant, Project: req.Project, Description: req.Description,
	}, MappedRule: true, MappedContainerRule: true}
	if err := cmd.Validate(); err != nil {
		return err
	}
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusCreated, nil)
}

// handlePrefixAvailable lists free addresses of an active prefix, or free
// blocks of a container, lowest first. It supports blocking queries.
func (s *server) handlePrefixAvailable(c *call) error {
	id, err := prefixID(c)
	if err != nil {
		return err
	}
	limit, err := queryLimit(c, defaultAvailable, maxAvailable)
	if err != nil {
		return err
	}
	var out []string
	found := false
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, p, err := st.Prefix(ws, id)
		if err != nil || p == nil || !visible(c, p.Tenant) {
			found = false
			return idx, err
		}
		found = true
		out, err = st.Available(id, limit)
		if errors.Is(err, fsm.ErrNotFound) {
			// Deleted between the two reads.
			found = false
			return idx, nil
		}
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if !found {
		return notFoundError("id", "prefix", id)
	}
	writeJSON(c.w, http.StatusOK, AvailableList{Available: out})
	return nil
}

// --- IP ranges ----------------------------------------------------------

// IPRangeList is the body of GET /v1/ipam/ip-ranges.
type IPRangeList struct {
	IPRanges []*fsm.IPRange `json:"ip_ranges"`
}

// IPRangeCreateRequest is the body of POST /v1/ipam/ip-ranges.
type IPRangeCreateRequest struct {
	PrefixID     string `json:"prefix_id"`
	StartAddress string `json:"start_address"`
	EndAddress   string `json:"end_address"`
	Description  string `json:"description"`
}

// handleIPRangeList lists IP ranges, of one prefix with ?prefix_id; it
// supports blocking queries.
func (s *server) handleIPRangeList(c *call) error {
	prefixID := ""
	if c.r.URL.RawQuery != "" {
		prefixID = c.q().Get("prefix_id")
	}
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.IPRange, error) {
		if err := (filterRefs{c, st, ws}).prefix("prefix_id", prefixID); err != nil {
			return 0, nil, err
		}
		idx, l, err := st.IPRanges(ws, prefixID)
		if err != nil || c.tenant == "" {
			return idx, l, err
		}
		tenants := map[string]string{}
		for _, r := range l {
			if _, ok := tenants[r.PrefixID]; !ok {
				tenants[r.PrefixID] = rangeTenant(st, r)
			}
		}
		return idx, filterVisible(c, l, func(r *fsm.IPRange) string { return tenants[r.PrefixID] }), nil
	}, func(l []*fsm.IPRange) any { return IPRangeList{IPRanges: l} })
}

// rangeTenant is the tenant of an IP range: that of its prefix.
func rangeTenant(st *fsm.Store, r *fsm.IPRange) string {
	if _, p, err := st.Prefix(nil, r.PrefixID); err == nil && p != nil {
		return p.Tenant
	}
	return ""
}

// handleIPRangeGet returns one IP range; it supports blocking queries.
func (s *server) handleIPRangeGet(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	return serveGet(s, c, "id", "IP range", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.IPRange, error) {
		idx, r, err := st.IPRange(ws, id)
		if r != nil && !visible(c, rangeTenant(st, r)) {
			// Another tenant's range reads as missing.
			r = nil
		}
		return idx, r, err
	})
}

// handleIPRangeCreate keeps a range of an active prefix out of allocation.
func (s *server) handleIPRangeCreate(c *call) error {
	var req IPRangeCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	if req.PrefixID == "" {
		return invalid("prefix_id", "is required")
	}
	if err := cidrForID("prefix_id", req.PrefixID); err != nil {
		return err
	}
	cmd := &fsm.IPRangeCreateRequest{Range: fsm.IPRange{
		ID: newID(), PrefixID: req.PrefixID, Start: req.StartAddress, End: req.EndAddress, Description: req.Description,
	}, DrainRule: true}
	if err := cmd.Validate(); err != nil {
		return err
	}
	var err error
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return withField(s.apply(c, cmd, http.StatusCreated, nil), "prefix_id")
}

// handleIPRangeDelete returns an IP range to allocation.
func (s *server) handleIPRangeDelete(c *call) error {
	id, err := pathID(c, "id")
	if err != nil {
		return err
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	return s.apply(c, &fsm.IPRangeDeleteRequest{WriteMeta: meta, ID: id}, http.StatusOK, nil)
}
