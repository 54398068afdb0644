package api

import (
	"net/http"
	"net/url"

	"github.com/moxxie/moxxie/fsm"
)

// RouteKind says where in the cluster a route is served.
type RouteKind string

// Route kinds.
const (
	// KindLocal routes are answered by whichever server receives them.
	KindLocal RouteKind = "local"
	// KindRead routes read the replicated state. By default the leader
	// serves them (followers forward); ?stale reads the local store on any
	// server; ?consistent makes the leader verify its leadership first.
	KindRead RouteKind = "read"
	// KindWrite routes change the state or the cluster. They always run on
	// the leader; followers forward them.
	KindWrite RouteKind = "write"
	// KindLeader routes do not change anything but must run on the leader
	// whatever the request asks (snapshot save).
	KindLeader RouteKind = "leader"
)

// Route describes one endpoint of the API.
type Route struct {
	// Method is the HTTP method; GET routes also answer HEAD.
	Method string
	// Path is the http.ServeMux path pattern, which is also the OpenAPI path
	// template, e.g. /v1/cluster/settings/{key}.
	Path string
	// Auth is true when the route requires a bearer token.
	Auth bool
	// Kind says where the route is served.
	Kind RouteKind
}

// Pattern returns the http.ServeMux pattern of the route, "METHOD /path".
func (r Route) Pattern() string { return r.Method + " " + r.Path }

// bodyKind says what request body a route takes.
type bodyKind uint8

const (
	// bodyNone: the body is ignored (but still forwarded as sent).
	bodyNone bodyKind = iota
	// bodyJSON: a JSON object is required.
	bodyJSON
	// bodyOptionalJSON: an empty body or a JSON object.
	bodyOptionalJSON
	// bodySnapshot: a backup archive, limited by MaxSnapshotBytes.
	bodySnapshot
)

// route is a Route with its handler.
type route struct {
	Route
	body   bodyKind
	handle func(*server, *call) error
}

// routeTable lists every endpoint of the API in one place.
var routeTable = []route{
	{Route{http.MethodGet, "/v1/health", false, KindLocal}, bodyNone, (*server).handleHealth},
	{Route{http.MethodGet, "/v1/ready", false, KindLocal}, bodyNone, (*server).handleReady},
	{Route{http.MethodGet, "/v1/openapi.json", false, KindLocal}, bodyNone, (*server).handleOpenAPI},
	{Route{http.MethodGet, "/v1/metrics", false, KindLocal}, bodyNone, (*server).handleMetrics},

	{Route{http.MethodPost, "/v1/acl/bootstrap", false, KindWrite}, bodyOptionalJSON, (*server).handleACLBootstrap},
	{Route{http.MethodGet, "/v1/acl/tokens", true, KindRead}, bodyNone, (*server).handleTokenList},
	{Route{http.MethodPost, "/v1/acl/tokens", true, KindWrite}, bodyJSON, (*server).handleTokenCreate},
	{Route{http.MethodDelete, "/v1/acl/tokens/{accessor_id}", true, KindWrite}, bodyNone, (*server).handleTokenRevoke},

	{Route{http.MethodGet, "/v1/status", true, KindRead}, bodyNone, (*server).handleStatus},
	{Route{http.MethodPost, "/v1/cluster/join", true, KindWrite}, bodyJSON, (*server).handleJoin},
	{Route{http.MethodDelete, "/v1/cluster/servers/{id}", true, KindWrite}, bodyNone, (*server).handleRemove},

	{Route{http.MethodGet, "/v1/cluster/settings", true, KindRead}, bodyNone, (*server).handleSettingList},
	{Route{http.MethodGet, "/v1/cluster/settings/{key}", true, KindRead}, bodyNone, (*server).handleSettingGet},
	{Route{http.MethodPut, "/v1/cluster/settings/{key}", true, KindWrite}, bodyJSON, (*server).handleSettingPut},
	{Route{http.MethodDelete, "/v1/cluster/settings/{key}", true, KindWrite}, bodyNone, (*server).handleSettingDelete},

	{Route{http.MethodGet, "/v1/ipam/vrfs", true, KindRead}, bodyNone, (*server).handleVRFList},
	{Route{http.MethodPost, "/v1/ipam/vrfs", true, KindWrite}, bodyJSON, (*server).handleVRFCreate},
	{Route{http.MethodGet, "/v1/ipam/vrfs/{id}", true, KindRead}, bodyNone, (*server).handleVRFGet},
	{Route{http.MethodDelete, "/v1/ipam/vrfs/{id}", true, KindWrite}, bodyNone, (*server).handleVRFDelete},

	{Route{http.MethodGet, "/v1/ipam/prefixes", true, KindRead}, bodyNone, (*server).handlePrefixList},
	{Route{http.MethodPost, "/v1/ipam/prefixes", true, KindWrite}, bodyJSON, (*server).handlePrefixCreate},
	{Route{http.MethodGet, "/v1/ipam/prefixes/{id}", true, KindRead}, bodyNone, (*server).handlePrefixGet},
	{Route{http.MethodPatch, "/v1/ipam/prefixes/{id}", true, KindWrite}, bodyJSON, (*server).handlePrefixUpdate},
	{Route{http.MethodDelete, "/v1/ipam/prefixes/{id}", true, KindWrite}, bodyNone, (*server).handlePrefixDelete},
	{Route{http.MethodPost, "/v1/ipam/prefixes/{id}/allocate", true, KindWrite}, bodyOptionalJSON, (*server).handlePrefixAllocate},
	{Route{http.MethodPost, "/v1/ipam/prefixes/{id}/allocate-prefix", true, KindWrite}, bodyJSON, (*server).handlePrefixAllocatePrefix},
	{Route{http.MethodGet, "/v1/ipam/prefixes/{id}/available", true, KindRead}, bodyNone, (*server).handlePrefixAvailable},

	{Route{http.MethodGet, "/v1/ipam/ip-ranges", true, KindRead}, bodyNone, (*server).handleIPRangeList},
	{Route{http.MethodPost, "/v1/ipam/ip-ranges", true, KindWrite}, bodyJSON, (*server).handleIPRangeCreate},
	{Route{http.MethodGet, "/v1/ipam/ip-ranges/{id}", true, KindRead}, bodyNone, (*server).handleIPRangeGet},
	{Route{http.MethodDelete, "/v1/ipam/ip-ranges/{id}", true, KindWrite}, bodyNone, (*server).handleIPRangeDelete},

	{Route{http.MethodGet, "/v1/ipam/addresses", true, KindRead}, bodyNone, (*server).handleAddressList},
	{Route{http.MethodPost, "/v1/ipam/addresses", true, KindWrite}, bodyJSON, (*server).handleAddressCreate},
	{Route{http.MethodGet, "/v1/ipam/addresses/{id}", true, KindRead}, bodyNone, (*server).handleAddressGet},
	{Route{http.MethodPatch, "/v1/ipam/addresses/{id}", true, KindWrite}, bodyJSON, (*server).handleAddressUpdate},
	{Route{http.MethodDelete, "/v1/ipam/addresses/{id}", true, KindWrite}, bodyNone, (*server).handleAddressRelease},

	{Route{http.MethodGet, "/v1/ipam/vlan-groups", true, KindRead}, bodyNone, poolList(vlanKind)},
	{Route{http.MethodPost, "/v1/ipam/vlan-groups", true, KindWrite}, bodyJSON, poolCreate(vlanKind)},
	{Route{http.MethodGet, "/v1/ipam/vlan-groups/{id}", true, KindRead}, bodyNone, poolGet(vlanKind)},
	{Route{http.MethodDelete, "/v1/ipam/vlan-groups/{id}", true, KindWrite}, bodyNone, poolDelete(vlanKind)},
	{Route{http.MethodPost, "/v1/ipam/vlan-groups/{id}/allocate", true, KindWrite}, bodyOptionalJSON, poolAllocate(vlanKind)},
	{Route{http.MethodGet, "/v1/ipam/vlans", true, KindRead}, bodyNone, idList(vlanKind)},
	{Route{http.MethodGet, "/v1/ipam/vlans/{id}", true, KindRead}, bodyNone, idGet(vlanKind)},
	{Route{http.MethodDelete, "/v1/ipam/vlans/{id}", true, KindWrite}, bodyNone, idRelease(vlanKind)},

	{Route{http.MethodGet, "/v1/ipam/vni-pools", true, KindRead}, bodyNone, poolList(vniKind)},
	{Route{http.MethodPost, "/v1/ipam/vni-pools", true, KindWrite}, bodyJSON, poolCreate(vniKind)},
	{Route{http.MethodGet, "/v1/ipam/vni-pools/{id}", true, KindRead}, bodyNone, poolGet(vniKind)},
	{Route{http.MethodDelete, "/v1/ipam/vni-pools/{id}", true, KindWrite}, bodyNone, poolDelete(vniKind)},
	{Route{http.MethodPost, "/v1/ipam/vni-pools/{id}/allocate", true, KindWrite}, bodyOptionalJSON, poolAllocate(vniKind)},
	{Route{http.MethodGet, "/v1/ipam/vnis", true, KindRead}, bodyNone, idList(vniKind)},
	{Route{http.MethodGet, "/v1/ipam/vnis/{id}", true, KindRead}, bodyNone, idGet(vniKind)},
	{Route{http.MethodDelete, "/v1/ipam/vnis/{id}", true, KindWrite}, bodyNone, idRelease(vniKind)},

	{Route{http.MethodGet, "/v1/dns/zones", true, KindRead}, bodyNone, (*server).handleZoneList},
	{Route{http.MethodPost, "/v1/dns/zones", true, KindWrite}, bodyJSON, (*server).handleZoneCreate},
	{Route{http.MethodGet, "/v1/dns/zones/{name}", true, KindRead}, bodyNone, (*server).handleZoneGet},
	{Route{http.MethodDelete, "/v1/dns/zones/{name}", true, KindWrite}, bodyNone, (*server).handleZoneDelete},

	{Route{http.MethodGet, "/v1/inventory", true, KindRead}, bodyNone, (*server).handleInventoryState},
	{Route{http.MethodGet, "/v1/inventory/nodes", true, KindRead}, bodyNone, (*server).handleInventoryNodes},
	{Route{http.MethodGet, "/v1/inventory/nodes/{name}", true, KindRead}, bodyNone, (*server).handleInventoryNode},
	{Route{http.MethodGet, "/v1/inventory/guests", true, KindRead}, bodyNone, (*server).handleInventoryGuests},
	{Route{http.MethodGet, "/v1/inventory/guests/{vmid}", true, KindRead}, bodyNone, (*server).handleInventoryGuest},
	{Route{http.MethodGet, "/v1/inventory/storage", true, KindRead}, bodyNone, (*server).handleInventoryStorage},

	{Route{http.MethodPost, "/v1/vms", true, KindWrite}, bodyJSON, (*server).handleVMCreate},
	{Route{http.MethodPost, "/v1/vms/{vmid}/start", true, KindWrite}, bodyNone, vmAction(fsm.OpVMStart)},
	{Route{http.MethodPost, "/v1/vms/{vmid}/stop", true, KindWrite}, bodyNone, vmAction(fsm.OpVMStop)},
	{Route{http.MethodPost, "/v1/vms/{vmid}/shutdown", true, KindWrite}, bodyNone, vmAction(fsm.OpVMShutdown)},
	{Route{http.MethodDelete, "/v1/vms/{vmid}", true, KindWrite}, bodyNone, vmAction(fsm.OpVMDelete)},
	{Route{http.MethodGet, "/v1/operations", true, KindRead}, bodyNone, (*server).handleOperationList},
	{Route{http.MethodGet, "/v1/operations/{id}", true, KindRead}, bodyNone, (*server).handleOperationGet},

	{Route{http.MethodGet, "/v1/snapshot", true, KindLeader}, bodyNone, (*server).handleSnapshotSave},
	{Route{http.MethodPut, "/v1/snapshot", true, KindWrite}, bodySnapshot, (*server).handleSnapshotRestore},
}

// Routes returns every endpoint the handler serves, in a stable order.
func Routes() []Route {
	out := make([]Route, len(routeTable))
	for i, rt := range routeTable {
		out[i] = rt.Route
	}
	return out
}

// call is one request on its way through a route.
type call struct {
	w     *responseWriter
	r     *http.Request
	rt    *route
	query url.Values // parsed on first use
	// token is the authenticated caller; nil on routes without auth.
	token *fsm.Token
	// body is the request body, read for routes that take one.
	body []byte
}

// q returns the parsed query string.
func (c *call) q() url.Values {
	if c.query == nil {
		c.query = c.r.URL.Query()
	}
	return c.query
}

// actor returns the caller's accessor ID, or "" when unauthenticated.
func (c *call) actor() string {
	if c.token == nil {
		return ""
	}
	return c.token.AccessorID
}

// serveRoute runs one route and answers any error it returns.
func (s *server) serveRoute(rt *route, w http.ResponseWriter, r *http.Request) {
	c := &call{w: writerOf(w), r: r, rt: rt}
	if err := s.dispatch(c); err != nil {
		s.writeError(c.w, r, err)
	}
}

// dispatch decides where the request is served (forwarding it to the
// leader when needed, before authentication and decoding: the leader does
// both), then authenticates, reads the body and runs the handler.
func (s *server) dispatch(c *call) error {
	switch c.rt.Kind {
	case KindRead:
		mode, err := readMode(c)
		if err != nil {
			return err
		}
		switch {
		case mode == readStale:
		case !s.b.IsLeader():
			return s.forward(c)
		case mode == readConsistent:
			if err := s.b.VerifyLeader(c.r.Context()); err != nil {
				return err
			}
		}
	case KindWrite, KindLeader:
		if !s.b.IsLeader() {
			return s.forward(c)
		}
	}
	if c.rt.Auth {
		if err := s.authenticate(c); err != nil {
			return err
		}
	}
	if c.rt.body != bodyNone {
		if c.rt.body != bodySnapshot {
			if err := checkContentType(c.r); err != nil {
				return err
			}
		}
		body, err := s.readBody(c)
		if err != nil {
			return err
		}
		c.body = body
	}
	return c.rt.handle(s, c)
}

// bodyLimit returns the body size limit of the call's route.
func (s *server) bodyLimit(c *call) int64 {
	if c.rt.body == bodySnapshot {
		return s.opts.MaxSnapshotBytes
	}
	return s.opts.MaxBodyBytes
}
