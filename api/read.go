package api

import (
	"net/http"
	"net/netip"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// serveList answers a list read as a blocking query: read runs against the
// store (again when ws fires) and wrap puts the list in its envelope.
func serveList[T any](s *server, c *call, read func(*fsm.Store, memdb.WatchSet) (uint64, T, error), wrap func(T) any) error {
	var out T
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, v, err := read(st, ws)
		out = v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, wrap(out))
	return nil
}

// serveGet answers the read of one object as a blocking query; a missing
// object is a 404 naming field, noun and id.
func serveGet[T any](s *server, c *call, field, noun, id string, read func(*fsm.Store, memdb.WatchSet) (uint64, *T, error)) error {
	return serveTenantGet(s, c, field, noun, id, nil, read)
}

// serveTenantGet is serveGet for an object that may belong to a tenant,
// which tenant names: another tenant's object is missing to a call
// confined to one, so that its existence is not revealed.
func serveTenantGet[T any](s *server, c *call, field, noun, id string, tenant func(*T) string, read func(*fsm.Store, memdb.WatchSet) (uint64, *T, error)) error {
	var out *T
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, v, err := read(st, ws)
		out = v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if out == nil || tenant != nil && !visible(c, tenant(out)) {
		return notFoundError(field, noun, id)
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// filterRefs checks that the objects a list's filters name exist and are
// visible to the caller: a typo in ?prefix_id is 400 on prefix_id, not an
// empty list that reads like an empty prefix. Empty filters are not
// checked.
type filterRefs struct {
	c  *call
	st *fsm.Store
	ws memdb.WatchSet
}

// prefix checks the prefix id given as field.
func (r filterRefs) prefix(field, id string) error {
	if id == "" {
		return nil
	}
	if err := cidrForID(field, id); err != nil {
		return err
	}
	_, p, err := r.st.Prefix(r.ws, id)
	if err == nil && (p == nil || !visible(r.c, p.Tenant)) {
		err = invalid(field, "prefix %q not found", id)
	}
	return err
}

// cidrForID refuses a CIDR given as the prefix ID field (no prefix ID has
// that form), pointing to the lookup by CIDR.
func cidrForID(field, id string) error {
	if pfx, err := netip.ParsePrefix(id); err == nil {
		return invalid(field, "no prefix has the ID %q: %s takes a prefix's ID, not its CIDR; find the prefix of a CIDR with GET /v1/ipam/prefixes?contains=%s", id, field, pfx.Masked())
	}
	return nil
}

// vrf checks the VRF id given as field. A tenant's token may name its own
// VRFs and those that hold a prefix of its tenant (such as global), which
// its prefixes show.
func (r filterRefs) vrf(field, id string) error {
	if id == "" {
		return nil
	}
	_, v, err := r.st.VRF(r.ws, id)
	if err != nil || v != nil && visible(r.c, v.Tenant) {
		return err
	}
	if v != nil {
		held, err := r.st.TenantHasPrefixIn(r.c.tenant, id)
		if err != nil || held {
			return err
		}
	}
	return invalid(field, "VRF %q not found", id)
}
