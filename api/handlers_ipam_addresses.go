package api

import (
	"fmt"
	"math"
	"net/http"
	"net/netip"
	"slices"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
)

// AddressList is the body of GET /v1/ipam/addresses and of the answer to
// an allocation.
type AddressList struct {
	Addresses []*fsm.Address `json:"addresses"`
	// Next, in a listing cut short by its limit, is the after parameter
	// of the next page.
	Next string `json:"next,omitempty"`
}

// AddressAllocateRequest is the body of POST
// /v1/ipam/prefixes/{id}/allocate. Without Count one address is taken (an
// explicit 0 is refused); with Address, that address (Count must be 1).
type AddressAllocateRequest struct {
	Count       *int    `json:"count"`
	Address     *string `json:"address"`
	Fallback    bool    `json:"fallback"`
	Force       bool    `json:"force"`
	Status      string  `json:"status"`
	DNSName     string  `json:"dns_name"`
	Tenant      string  `json:"tenant"`
	Project     string  `json:"project"`
	Owner       string  `json:"owner"`
	Description string  `json:"description"`
}

// AddressCreateRequest is the body of POST /v1/ipam/addresses: one
// address, in the active prefix of VRF (global by default) containing it.
type AddressCreateRequest struct {
	Address     string `json:"address"`
	VRF         string `json:"vrf"`
	Fallback    bool   `json:"fallback"`
	Force       bool   `json:"force"`
	Status      string `json:"status"`
	DNSName     string `json:"dns_name"`
	Tenant      string `json:"tenant"`
	Project     string `json:"project"`
	Owner       string `json:"owner"`
	Description string `json:"description"`
}

// AddressUpdateRequest is the body of PATCH /v1/ipam/addresses/{id};
// absent fields are left alone.
type AddressUpdateRequest struct {
	Status      *string `json:"status"`
	DNSName     *string `json:"dns_name"`
	Tenant      *string `json:"tenant"`
	Project     *string `json:"project"`
	Owner       *string `json:"owner"`
	Description *string `json:"description"`
}

// allocationIDs returns one new ID per address of an allocation of count
// (0 meaning 1), or none when count is out of range, which Validate then
// refuses naming count.
func allocationIDs(count int) []string {
	if count == 0 {
		count = 1
	}
	if count < 1 || count > fsm.MaxAllocateCount {
		return nil
	}
	ids := make([]string, count)
	for i := range ids {
		ids[i] = newID()
	}
	return ids
}

// addressFilter parses the query of GET /v1/ipam/addresses.
func addressFilter(c *call) (fsm.AddressFilter, error) {
	var f fsm.AddressFilter
	if c.r.URL.RawQuery == "" {
		return f, nil
	}
	q := c.q()
	f.PrefixID, f.VRF = q.Get("prefix_id"), q.Get("vrf")
	f.Owner, f.DNSName = q.Get("owner"), q.Get("dns_name")
	var err error
	if f.Tenant, err = queryTenant(c); err != nil {
		return f, err
	}
	if q.Has("address") {
		if f.Address, err = queryIP(q.Get("address")); err != nil {
			return f, err
		}
	}
	if f.Owner != "" {
		if err := ipam.ValidOwner(f.Owner); err != nil {
			return f, invalid("owner", "%v", err)
		}
	}
	if f.DNSName != "" {
		if err := ipam.ValidHostname(f.DNSName); err != nil {
			return f, invalid("dns_name", "%v", err)
		}
	}
	if f.Status, err = queryOneOf(c, "status", fsm.AddressActive, fsm.AddressReserved, fsm.AddressDeprecated); err != nil {
		return f, err
	}
	if f.Limit, err = queryLimit(c, 0, math.MaxInt32); err != nil {
		return f, err
	}
	if a := q.Get("after"); a != "" {
		if f.After, err = fsm.ParseAddressCursor(a); err != nil {
			return f, invalid("after", "not a cursor of an address listing: pass the next of the page before")
		}
	}
	return f, nil
}

// queryIP parses the address query parameter: one IP, IPv4-mapped ones
// written as IPv4 as the API stores them.
func queryIP(v string) (netip.Addr, error) {
	a, err := netip.ParseAddr(v)
	switch {
	case err != nil:
		return a, invalid("address", "%q is not an IP address", v)
	case a.Zone() != "":
		return a, invalid("address", "%q has a zone; give the address without %%%s", v, a.Zone())
	case a.Is4In6():
		return a, invalid("address", "%s is IPv4-mapped: write it as %s", v, a.Unmap())
	}
	return a, nil
}

// handleAddressList lists addresses filtered by the query, a page at a
// time with limit and after; it supports blocking queries.
func (s *server) handleAddressList(c *call) error {
	f, err := addressFilter(c)
	if err != nil {
		return err
	}
	if f.Tenant == "" {
		f.Tenant = c.tenant
	}
	// One more than the limit tells whether another page follows.
	limit := f.Limit
	if limit > 0 {
		f.Limit++
	}
	var next string
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.Address, error) {
		refs := filterRefs{c, st, ws}
		if err := refs.vrf("vrf", f.VRF); err != nil {
			return 0, nil, err
		}
		if err := refs.prefix("prefix_id", f.PrefixID); err != nil {
			return 0, nil, err
		}
		idx, l, err := st.Addresses(ws, f)
		// The cursor is of the last address shown, never of one the call
		// may not see: it says where that address is.
		l = filterVisible(c, l, addressTenant)
		next = ""
		if limit > 0 && len(l) > limit {
			l = l[:limit]
			next = fsm.AddressCursorOf(l[limit-1]).String()
		}
		return idx, l, err
	}, func(l []*fsm.Address) any { return AddressList{Addresses: l, Next: next} })
}

func addressTenant(a *fsm.Address) string { return a.Tenant }

// handleAddressGet returns one address; it supports blocking queries.
func (s *server) handleAddressGet(c *call) error {
	id, err := addressID(c)
	if err != nil {
		return err
	}
	return serveTenantGet(s, c, "id", "address", id, addressTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.Address, error) {
		return st.Address(ws, id)
	})
}

// addressID returns the address ID of the path. An IP there is a 404
// that says where to look the IP up: no ID is an IP, and "not found"
// alone reads as if the IP were free.
func addressID(c *call) (string, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return "", err
	}
	if ip, perr := netip.ParseAddr(id); perr == nil {
		ip = ip.WithZone("").Unmap() // as the lookup takes it
		return "", &apiError{status: http.StatusNotFound, code: CodeNotFound, field: "id", message: fmt.Sprintf(
			"no address has the ID %q: the path takes an address's ID, not its IP; find the address at an IP with GET /v1/ipam/addresses?address=%s (moxxiectl ipam address list --ip %s)", id, ip, ip)}
	}
	return id, nil
}

// prefixID returns the prefix ID in c's path. A CIDR there is a 404 that
// says where to find the prefix of a CIDR.
func prefixID(c *call) (string, error) {
	id, err := pathID(c, "id")
	if err != nil {
		return "", err
	}
	if pfx, perr := netip.ParsePrefix(id); perr == nil {
		return "", &apiError{status: http.StatusNotFound, code: CodeNotFound, field: "id", message: fmt.Sprintf(
			"no prefix has the ID %q: the path takes a prefix's ID, not its CIDR; find the prefix of a CIDR with GET /v1/ipam/prefixes?contains=%s (moxxiectl ipam prefix list --contains %s)", id, pfx.Masked(), pfx.Masked())}
	}
	return id, nil
}

// handlePrefixAllocate hands out addresses of an active prefix, all or
// nothing: count of the lowest free ones, or the one asked for.
func (s *server) handlePrefixAllocate(c *call) error {
	id, err := prefixID(c)
	if err != nil {
		return err
	}
	var req AddressAllocateRequest
	if err := decodeJSON(c.body, &req, false); err != nil {
		return err
	}
	if req.Tenant, err = forTenant(c, req.Tenant, "tenant"); err != nil {
		return err
	}
	if c.tenant != "" {
		// A tenant allocates only from its own prefixes; another's is
		// missing. (A missing one the command answers, or replays.)
		if _, p, err := s.b.State().Prefix(nil, id); err != nil {
			return err
		} else if p != nil && !visible(c, p.Tenant) {
			return notFoundError("id", "prefix", id)
		}
	}
	address := ""
	if req.Address != nil {
		// An empty one, from a script's unset variable, is not "the
		// lowest free one".
		if address = *req.Address; address == "" {
			return invalid("address", "address is empty: give the address to allocate, or leave address out for the lowest free one")
		}
	} else {
		// Flags that act on a given address only: accepted without one,
		// they would look like they had been honoured.
		switch {
		case req.Force:
			return invalid("force", "takes effect only with address: the lowest free addresses never include ones in quarantine; ask for the address itself to take it out of quarantine")
		case req.Fallback:
			return invalid("fallback", "takes effect only with address: without one, the lowest free addresses are taken anyway")
		}
	}
	count := 0 // one, or the given address
	if req.Count != nil {
		if count = *req.Count; count == 0 {
			// A zero that means one would surprise a script that computed it.
			return invalid("count", "count must be 1 to %d; leave it out for one address", fsm.MaxAllocateCount)
		}
	}
	cmd := &fsm.AddressAllocateRequest{
		PrefixID: id, Address: address, Fallback: req.Fallback, Force: req.Force,
		Count: count, IDs: allocationIDs(count), Status: req.Status,
		DNSName: req.DNSName, Tenant: req.Tenant, Project: req.Project, Owner: req.Owner, Description: req.Description,
		NameRules: true, Confine: c.tenant, ReverseRule: true,
	}
	return s.allocate(c, cmd)
}

// handleAddressCreate takes one address in the active prefix containing
// it.
func (s *server) handleAddressCreate(c *call) error {
	var req AddressCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	var err error
	if req.Tenant, err = forTenant(c, req.Tenant, "tenant"); err != nil {
		return err
	}
	cmd := &fsm.AddressAllocateRequest{
		VRF: req.VRF, Address: req.Address, Fallback: req.Fallback, Force: req.Force,
		Count: 1, IDs: allocationIDs(1), Status: req.Status,
		DNSName: req.DNSName, Tenant: req.Tenant, Project: req.Project, Owner: req.Owner, Description: req.Description,
		NameRules: true, Confine: c.tenant, ReverseRule: true,
	}
	if c.tenant != "" {
		if err := cmd.Validate(); err != nil {
			return err
		}
		if err := s.checkAddressPrefix(c, cmd.VRF, cmd.Address); err != nil {
			return err
		}
	}
	return s.allocate(c, cmd)
}

// checkAddressPrefix refuses a confined call an address outside the
// active prefixes of its tenant in vrf, as if no prefix held it.
func (s *server) checkAddressPrefix(c *call, vrf, address string) error {
	a, err := ipam.ParseAddr(address)
	if err != nil {
		return invalid("address", "%v", err)
	}
	_, l, err := s.b.State().Prefixes(nil, fsm.PrefixFilter{VRF: vrf, Status: fsm.PrefixActive, Contains: netip.PrefixFrom(a, a.BitLen())})
	if err != nil {
		return err
	}
	if !slices.ContainsFunc(l, func(p *fsm.PrefixView) bool { return p.VRF == vrf && visible(c, p.Tenant) }) {
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, field: "address",
			message: fmt.Sprintf("%s is in no prefix of tenant %s in VRF %s", address, c.tenant, vrf)}
	}
	return nil
}

// checkAddressVisible answers 404 when the address id belongs to another
// tenant than the call's. A missing address is left to the command, which
// answers 404 too, or replays an earlier attempt that released it.
func (s *server) checkAddressVisible(c *call, id string) error {
	if c.tenant == "" {
		return nil
	}
	_, a, err := s.b.State().Address(nil, id)
	if err != nil {
		return err
	}
	if a != nil && !visible(c, a.Tenant) {
		return notFoundError("id", "address", id)
	}
	return nil
}

// checkNotGateway refuses to release the gateway a prefix reserved when it
// was made: released, it would be handed to the next allocation while the
// prefix still names it as its gateway. It goes with the prefix.
func (s *server) checkNotGateway(id string) error {
	a, p, err := s.gatewayOf(id)
	if err != nil || p == nil {
		return err
	}
	return &apiError{status: http.StatusConflict, code: CodeConflict, field: "id",
		message: fmt.Sprintf("%s is the gateway of prefix %s; it is released when the prefix is deleted", a.Address, p.Prefix.Prefix)}
}

// checkGatewayStays refuses to change the status of a prefix's gateway
// from reserved: an active gateway would no longer be the one the prefix
// releases when it is deleted, and would block that deletion.
func (s *server) checkGatewayStays(id string, status *string) error {
	if status == nil || *status == fsm.AddressReserved {
		return nil
	}
	a, p, err := s.gatewayOf(id)
	if err != nil || p == nil {
		return err
	}
	return &apiError{status: http.StatusConflict, code: CodeConflict, field: "status",
		message: fmt.Sprintf("%s is the gateway of prefix %s and stays reserved while the prefix exists", a.Address, p.Prefix.Prefix)}
}

// gatewayOf returns the address id and its prefix when the address is the
// gateway the prefix reserved, and a nil prefix otherwise.
func (s *server) gatewayOf(id string) (*fsm.Address, *fsm.PrefixView, error) {
	st := s.b.State()
	_, a, err := st.Address(nil, id)
	if err != nil || a == nil || a.Status != fsm.AddressReserved {
		return nil, nil, err
	}
	_, p, err := st.Prefix(nil, a.PrefixID)
	if err != nil || p == nil || p.Gateway != a.Address {
		return nil, nil, err
	}
	return a, p, nil
}

// allocate validates and proposes an address allocation.
func (s *server) allocate(c *call, cmd *fsm.AddressAllocateRequest) error {
	if err := cmd.Validate(); err != nil {
		return err
	}
	if err := checkForwardName("dns_name", cmd.DNSName); err != nil {
		return err
	}
	var err error
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	c.dnsName = cmd.DNSName
	return s.apply(c, cmd, http.StatusCreated, nil)
}

// checkForwardName refuses a dns_name (normalized) that no zone can
// serve: one in the reverse trees, where reverse zones come from prefixes
// and their PTR records from the addresses themselves, and one that no
// zone may be or hold (unservable).
// Only the API checks this, so that the FSM applies what earlier versions
// wrote as they did. field names the name's field.
func checkForwardName(field, name string) error {
	if fsm.ReverseTreeName(name) {
		return invalid(field, "%s is in the reverse tree, which holds the PTR records Moxxie makes from addresses: give the address a forward name", name)
	}
	if why := unservable(name); why != "" {
		return invalid(field, "%s %s", name, why)
	}
	return nil
}

// unservable says why no zone may serve the DNS name (normalized), or "":
// it is or lies under a special-use domain that resolvers answer
// themselves (RFC 6761), its last label is numeric, which no top-level
// domain is and which clients read as an IPv4 address, or a label is not
// valid punycode.
func unservable(name string) string {
	if special := specialZone(name); special != "" {
		return fmt.Sprintf("is or lies under %s, a special-use name (RFC 6761): resolvers answer it themselves, never from a server", special)
	}
	if ipam.NumericTopLabel(name) {
		return "ends in a numeric label, which no top-level domain has: clients read it as an IPv4 address and never look it up"
	}
	if label := ipam.BadPunycode(name); label != "" {
		return fmt.Sprintf("has the label %s, which starts with xn-- but is not valid punycode (IDNA): write the name as its Unicode form encodes, or without xn--", label)
	}
	return ""
}

// handleAddressUpdate changes an address's status or descriptive fields.
func (s *server) handleAddressUpdate(c *call) error {
	id, err := addressID(c)
	if err != nil {
		return err
	}
	var req AddressUpdateRequest
	if err := decodePatch(c.body, &req); err != nil {
		return err
	}
	if req == (AddressUpdateRequest{}) && !keyed(c) {
		// Nothing to change: the address as it is, without a write. With
		// an Idempotency-Key it is written, so that the key is kept
		// with its request like any other.
		return s.handleAddressGet(c)
	}
	if err := s.checkAddressVisible(c, id); err != nil {
		return err
	}
	if err := s.checkGatewayStays(id, req.Status); err != nil {
		return err
	}
	if req.Tenant != nil && req.Project == nil {
		if _, a, err := s.b.State().Address(nil, id); err != nil {
			return err
		} else if a != nil {
			if err := projectStays("address", a.Address, a.Tenant, a.Project, *req.Tenant); err != nil {
				return err
			}
		}
	}
	if req.Tenant != nil {
		if *req.Tenant == "" && c.tenant != "" {
			// Empty means "the caller's own" only for a new object; here
			// it would clear the tenant, which a confined token cannot.
			return &apiError{status: http.StatusForbidden, code: CodeForbidden, field: "tenant",
				message: fmt.Sprintf("this token acts within tenant %s; it cannot clear an address's tenant", c.tenant)}
		}
		t, err := forTenant(c, *req.Tenant, "tenant")
		if err != nil {
			return err
		}
		req.Tenant = &t
	}
	cmd := &fsm.AddressUpdateRequest{
		ID: id, Status: req.Status, DNSName: req.DNSName, Tenant: req.Tenant, Project: req.Project, Owner: req.Owner, Description: req.Description,
		NameRules: true, ProjectRules: true, Confine: c.tenant, ReverseRule: true,
	}
	if err := cmd.Validate(); err != nil {
		return err
	}
	if cmd.DNSName != nil {
		if err := checkForwardName("dns_name", *cmd.DNSName); err != nil {
			return err
		}
		c.dnsName = *cmd.DNSName
	}
	if same, err := s.unchanged(c, sameAddress(cmd)); err != nil {
		return err
	} else if same {
		return s.handleAddressGet(c)
	}
	c.dnsNamed = cmd.DNSName != nil || s.hasName(cmd.ID)
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusOK, nil)
}

// handleAddressRelease releases an address into quarantine, or at once
// with ?force=true.
func (s *server) handleAddressRelease(c *call) error {
	id, err := addressID(c)
	if err != nil {
		return err
	}
	force := false
	if c.r.URL.RawQuery != "" {
		if force, err = boolParam(c, "force"); err != nil {
			return err
		}
	}
	if err := s.checkAddressVisible(c, id); err != nil {
		return err
	}
	if err := s.checkNotGateway(id); err != nil {
		return err
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	c.dnsNamed = s.hasName(id)
	return s.apply(c, &fsm.AddressReleaseRequest{WriteMeta: meta, ID: id, Force: force, Confine: c.tenant}, http.StatusOK, nil)
}

// hasName reports whether address id has a DNS name in the leader's
// state: a change or release of it changes what DNS serves.
func (s *server) hasName(id string) bool {
	_, a, err := s.b.State().Address(nil, id)
	return err == nil && a != nil && a.DNSName != ""
}
