package api

import (
	"errors"
	"net/http"
	"slices"

	"github.com/moxxie/moxxie/auth"
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
	// Kind says where the route is served.
	Kind RouteKind
	// Perm is the permission a token needs for the route; auth.PermPublic
	// routes need no token. Every route declares one: anything not
	// granted is denied.
	Perm auth.Permission
	// Scope says whether tenant tokens may use the route, confined to
	// their tenant's objects.
	Scope auth.Scope
}

// Auth reports whether the route requires a bearer token.
func (r Route) Auth() bool { return r.Perm != auth.PermPublic }

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

// routeTable lists every endpoint of the API: the core routes below and
// those of the audit, secrets, tenancy, reports, capacity, SDN, storage
// and DR APIs and the debug routes, each in its own file.
var routeTable = slices.Concat(coreRoutes, auditRoutes, secretRoutes, tenancyRoutes, reportRoutes, capacityRoutes, sdnRoutes, storageRoutes, drRoutes, debugRoutes)

// coreRoutes are the endpoints of the cluster, ACL, IPAM, DNS, inventory,
// VM and snapshot APIs.
var coreRoutes = []route{
	{Route{http.MethodGet, "/v1/health", KindLocal, auth.PermPublic, auth.ScopeCluster}, bodyNone, (*server).handleHealth},
	{Route{http.MethodGet, "/v1/ready", KindLocal, auth.PermPublic, auth.ScopeCluster}, bodyNone, (*server).handleReady},
	{Route{http.MethodGet, "/v1/openapi.json", KindLocal, auth.PermPublic, auth.ScopeCluster}, bodyNone, (*server).handleOpenAPI},
	{Route{http.MethodGet, "/v1/sites", KindLocal, auth.PermStatusRead, auth.ScopeCluster}, bodyNone, (*server).handleSites},
	{Route{http.MethodGet, "/v1/sites/{name}", KindLocal, auth.PermStatusRead, auth.ScopeCluster}, bodyNone, (*server).handleSite},
	{Route{http.MethodPost, "/v1/sites/{name}/forget", KindWrite, auth.PermClusterWrite, auth.ScopeCluster}, bodyNone, (*server).handleSiteForget},
	{Route{http.MethodGet, "/v1/metrics", KindLocal, auth.PermMetricsRead, auth.ScopeCluster}, bodyNone, (*server).handleMetrics},

	{Route{http.MethodPost, "/v1/acl/bootstrap", KindWrite, auth.PermPublic, auth.ScopeCluster}, bodyOptionalJSON, (*server).handleACLBootstrap},
	{Route{http.MethodGet, "/v1/acl/tokens", KindRead, auth.PermTokenRead, auth.ScopeCluster}, bodyNone, (*server).handleTokenList},
	{Route{http.MethodPost, "/v1/acl/tokens", KindWrite, auth.PermTokenWrite, auth.ScopeCluster}, bodyJSON, (*server).handleTokenCreate},
	{Route{http.MethodDelete, "/v1/acl/tokens/{accessor_id}", KindWrite, auth.PermTokenWrite, auth.ScopeCluster}, bodyNone, (*server).handleTokenRevoke},

	{Route{http.MethodGet, "/v1/status", KindRead, auth.PermStatusRead, auth.ScopeCluster}, bodyNone, (*server).handleStatus},
	{Route{http.MethodPost, "/v1/cluster/join", KindWrite, auth.PermClusterWrite, auth.ScopeCluster}, bodyJSON, (*server).handleJoin},
	{Route{http.MethodDelete, "/v1/cluster/servers/{id}", KindWrite, auth.PermClusterWrite, auth.ScopeCluster}, bodyNone, (*server).handleRemove},

	{Route{http.MethodGet, "/v1/cluster/settings", KindRead, auth.PermSettingRead, auth.ScopeCluster}, bodyNone, (*server).handleSettingList},
	{Route{http.MethodGet, "/v1/cluster/settings/{key}", KindRead, auth.PermSettingRead, auth.ScopeCluster}, bodyNone, (*server).handleSettingGet},
	{Route{http.MethodPut, "/v1/cluster/settings/{key}", KindWrite, auth.PermSettingWrite, auth.ScopeCluster}, bodyJSON, (*server).handleSettingPut},
	{Route{http.MethodDelete, "/v1/cluster/settings/{key}", KindWrite, auth.PermSettingWrite, auth.ScopeCluster}, bodyNone, (*server).handleSettingDelete},

	{Route{http.MethodGet, "/v1/ipam/vrfs", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handleVRFList},
	{Route{http.MethodPost, "/v1/ipam/vrfs", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, (*server).handleVRFCreate},
	{Route{http.MethodGet, "/v1/ipam/vrfs/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handleVRFGet},
	{Route{http.MethodDelete, "/v1/ipam/vrfs/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyNone, (*server).handleVRFDelete},

	{Route{http.MethodGet, "/v1/ipam/prefixes", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handlePrefixList},
	{Route{http.MethodPost, "/v1/ipam/prefixes", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, (*server).handlePrefixCreate},
	{Route{http.MethodGet, "/v1/ipam/prefixes/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handlePrefixGet},
	{Route{http.MethodPatch, "/v1/ipam/prefixes/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, (*server).handlePrefixUpdate},
	{Route{http.MethodDelete, "/v1/ipam/prefixes/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyNone, (*server).handlePrefixDelete},
	{Route{http.MethodPost, "/v1/ipam/prefixes/{id}/allocate", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyOptionalJSON, (*server).handlePrefixAllocate},
	{Route{http.MethodPost, "/v1/ipam/prefixes/{id}/allocate-prefix", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, (*server).handlePrefixAllocatePrefix},
	{Route{http.MethodGet, "/v1/ipam/prefixes/{id}/available", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handlePrefixAvailable},

	{Route{http.MethodGet, "/v1/ipam/ip-ranges", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handleIPRangeList},
	{Route{http.MethodPost, "/v1/ipam/ip-ranges", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, (*server).handleIPRangeCreate},
	{Route{http.MethodGet, "/v1/ipam/ip-ranges/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handleIPRangeGet},
	{Route{http.MethodDelete, "/v1/ipam/ip-ranges/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyNone, (*server).handleIPRangeDelete},

	{Route{http.MethodGet, "/v1/ipam/addresses", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handleAddressList},
	{Route{http.MethodPost, "/v1/ipam/addresses", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyJSON, (*server).handleAddressCreate},
	{Route{http.MethodGet, "/v1/ipam/addresses/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, (*server).handleAddressGet},
	{Route{http.MethodPatch, "/v1/ipam/addresses/{id}", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyJSON, (*server).handleAddressUpdate},
	{Route{http.MethodDelete, "/v1/ipam/addresses/{id}", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyNone, (*server).handleAddressRelease},

	{Route{http.MethodGet, "/v1/ipam/vlan-groups", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, poolList(vlanKind)},
	{Route{http.MethodPost, "/v1/ipam/vlan-groups", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, poolCreate(vlanKind)},
	{Route{http.MethodGet, "/v1/ipam/vlan-groups/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, poolGet(vlanKind)},
	{Route{http.MethodPatch, "/v1/ipam/vlan-groups/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, poolUpdate(vlanKind)},
	{Route{http.MethodDelete, "/v1/ipam/vlan-groups/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyNone, poolDelete(vlanKind)},
	{Route{http.MethodPost, "/v1/ipam/vlan-groups/{id}/allocate", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyOptionalJSON, poolAllocate(vlanKind)},
	{Route{http.MethodGet, "/v1/ipam/vlans", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, idList(vlanKind)},
	{Route{http.MethodGet, "/v1/ipam/vlans/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, idGet(vlanKind)},
	{Route{http.MethodPatch, "/v1/ipam/vlans/{id}", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyJSON, idUpdate(vlanKind)},
	{Route{http.MethodDelete, "/v1/ipam/vlans/{id}", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyNone, idRelease(vlanKind)},

	{Route{http.MethodGet, "/v1/ipam/vni-pools", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, poolList(vniKind)},
	{Route{http.MethodPost, "/v1/ipam/vni-pools", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, poolCreate(vniKind)},
	{Route{http.MethodGet, "/v1/ipam/vni-pools/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, poolGet(vniKind)},
	{Route{http.MethodPatch, "/v1/ipam/vni-pools/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyJSON, poolUpdate(vniKind)},
	{Route{http.MethodDelete, "/v1/ipam/vni-pools/{id}", KindWrite, auth.PermIPAMWrite, auth.ScopeCluster}, bodyNone, poolDelete(vniKind)},
	{Route{http.MethodPost, "/v1/ipam/vni-pools/{id}/allocate", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyOptionalJSON, poolAllocate(vniKind)},
	{Route{http.MethodGet, "/v1/ipam/vnis", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, idList(vniKind)},
	{Route{http.MethodGet, "/v1/ipam/vnis/{id}", KindRead, auth.PermIPAMRead, auth.ScopeTenant}, bodyNone, idGet(vniKind)},
	{Route{http.MethodPatch, "/v1/ipam/vnis/{id}", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyJSON, idUpdate(vniKind)},
	{Route{http.MethodDelete, "/v1/ipam/vnis/{id}", KindWrite, auth.PermIPAMAllocate, auth.ScopeTenant}, bodyNone, idRelease(vniKind)},

	{Route{http.MethodGet, "/v1/dns/zones", KindRead, auth.PermDNSRead, auth.ScopeTenant}, bodyNone, (*server).handleZoneList},
	{Route{http.MethodPost, "/v1/dns/zones", KindWrite, auth.PermDNSWrite, auth.ScopeCluster}, bodyJSON, (*server).handleZoneCreate},
	{Route{http.MethodGet, "/v1/dns/zones/{name}", KindRead, auth.PermDNSRead, auth.ScopeTenant}, bodyNone, (*server).handleZoneGet},
	{Route{http.MethodPatch, "/v1/dns/zones/{name}", KindWrite, auth.PermDNSWrite, auth.ScopeCluster}, bodyJSON, (*server).handleZoneUpdate},
	{Route{http.MethodDelete, "/v1/dns/zones/{name}", KindWrite, auth.PermDNSWrite, auth.ScopeCluster}, bodyNone, (*server).handleZoneDelete},

	{Route{http.MethodGet, "/v1/inventory", KindRead, auth.PermInventoryRead, auth.ScopeTenant}, bodyNone, (*server).handleInventoryState},
	{Route{http.MethodGet, "/v1/inventory/nodes", KindRead, auth.PermInventoryRead, auth.ScopeCluster}, bodyNone, (*server).handleInventoryNodes},
	{Route{http.MethodGet, "/v1/inventory/nodes/{name}", KindRead, auth.PermInventoryRead, auth.ScopeCluster}, bodyNone, (*server).handleInventoryNode},
	{Route{http.MethodGet, "/v1/inventory/guests", KindRead, auth.PermInventoryRead, auth.ScopeTenant}, bodyNone, (*server).handleInventoryGuests},
	{Route{http.MethodGet, "/v1/inventory/guests/{vmid}", KindRead, auth.PermInventoryRead, auth.ScopeTenant}, bodyNone, (*server).handleInventoryGuest},
	{Route{http.MethodGet, "/v1/inventory/storage", KindRead, auth.PermInventoryRead, auth.ScopeCluster}, bodyNone, (*server).handleInventoryStorage},

	{Route{http.MethodPost, "/v1/vms", KindWrite, auth.PermVMWrite, auth.ScopeTenant}, bodyJSON, replayFirst(http.StatusAccepted, (*server).handleVMCreate)},
	{Route{http.MethodPost, "/v1/vms/{vmid}/start", KindWrite, auth.PermVMPower, auth.ScopeTenant}, bodyNone, replayFirst(http.StatusAccepted, vmAction(fsm.OpVMStart))},
	{Route{http.MethodPost, "/v1/vms/{vmid}/stop", KindWrite, auth.PermVMPower, auth.ScopeTenant}, bodyNone, replayFirst(http.StatusAccepted, vmAction(fsm.OpVMStop))},
	{Route{http.MethodPost, "/v1/vms/{vmid}/shutdown", KindWrite, auth.PermVMPower, auth.ScopeTenant}, bodyNone, replayFirst(http.StatusAccepted, vmAction(fsm.OpVMShutdown))},
	{Route{http.MethodDelete, "/v1/vms/{vmid}", KindWrite, auth.PermVMWrite, auth.ScopeTenant}, bodyNone, replayFirst(http.StatusAccepted, vmAction(fsm.OpVMDelete))},
	{Route{http.MethodGet, "/v1/operations", KindRead, auth.PermOperationRead, auth.ScopeTenant}, bodyNone, (*server).handleOperationList},
	{Route{http.MethodGet, "/v1/operations/{id}", KindRead, auth.PermOperationRead, auth.ScopeTenant}, bodyNone, (*server).handleOperationGet},

	{Route{http.MethodGet, "/v1/snapshot", KindLeader, auth.PermSnapshotRead, auth.ScopeCluster}, bodyNone, (*server).handleSnapshotSave},
	{Route{http.MethodPut, "/v1/snapshot", KindWrite, auth.PermSnapshotWrite, auth.ScopeCluster}, bodySnapshot, (*server).handleSnapshotRestore},
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
	// tenant, when not empty, confines the call to that tenant's objects
	// (a tenant token on a tenant-scoped route).
	tenant string
	// site is the site the server certificate of a caller of role site
	// names (checkSiteBinding).
	site string
	// body is the request body, read for routes that take one.
	body []byte
	// audited is set once a command carrying the call's audit record was
	// applied (see handlers_audit.go).
	audited bool
	// dnsName, when set, is the DNS name the call's write gives an
	// address: a successful answer warns when no zone serves it.
	dnsName string
	// dnsNamed is set on a change or release of an address that has a
	// name, or is given or loses one: the write changes what DNS serves.
	dnsNamed bool
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
	s.nameSpan(r, rt.Pattern())
	c := &call{w: writerOf(w), r: r, rt: rt}
	if err := s.dispatch(c); err != nil {
		s.writeError(c.w, r, err)
	}
}

// dispatch decides where the request is served (forwarding it to the
// leader when needed, before authentication and decoding: the leader does
// both), then authenticates, reads the body and runs the handler.
func (s *server) dispatch(c *call) (err error) {
	if err := checkQuery(c); err != nil {
		return err
	}
	if err := checkPreconditions(c); err != nil {
		return err
	}
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
		default:
			if done, err := s.lead(c); done {
				return err
			}
		}
	case KindWrite, KindLeader:
		if !s.b.IsLeader() {
			return s.forward(c)
		}
		if done, err := s.lead(c); done {
			return err
		}
	}
	if c.rt.Auth() {
		err := s.authenticate(c)
		if err != nil && c.rt.Kind == KindLocal && !s.b.IsLeader() {
			err = s.authenticateLagging(c, err)
		}
		if err != nil {
			return s.auditAuthFailure(c, err)
		}
		if c.rt.Kind == KindLocal && forwardedByPeer(c.r) {
			// A follower's local route, forwarded here only to audit a
			// refused authentication: the answer must be the follower's.
			from := c.r.Header.Get(headerForwarded)
			return unavailable(CodeNotReady, "the token is valid here, but "+from+", which must answer "+c.rt.Pattern()+" itself, refused it: its copy of the tokens may be behind; retry", nil)
		}
	}
	defer s.auditWrite(c, &err)
	// A snapshot's body is read by its handler, once the restore holds the
	// write fence (handleSnapshotRestore).
	if c.rt.body != bodyNone && c.rt.body != bodySnapshot {
		if err := checkContentType(c.r); err != nil {
			return err
		}
		body, err := s.readBody(c)
		if err != nil {
			return err
		}
		if err := checkText(body); err != nil {
			return err
		}
		c.body = body
	}
	return notFoundInPath(c, c.rt.handle(s, c))
}

// lead waits until this server, which leads, holds a current store
// (Backend.AwaitLeading). When it cannot serve c itself, done is true and
// err is c's answer: forwarded to the new leader if this server stopped
// leading meanwhile, else why it is not ready. A forwarded call is not
// held here: the follower that forwarded it holds it, within its own hold
// timeout, and asks again.
func (s *server) lead(c *call) (done bool, err error) {
	wait := c.r.Header.Get(headerForwarded) == ""
	switch err := s.b.AwaitLeading(c.r.Context(), wait); {
	case errors.Is(err, ErrNotLeader):
		return true, s.forward(c)
	case err != nil:
		return true, err
	}
	return false, nil
}

// bodyLimit returns the body size limit of the call's route.
func (s *server) bodyLimit(c *call) int64 {
	if c.rt.body == bodySnapshot {
		return s.opts.MaxSnapshotBytes
	}
	return s.opts.MaxBodyBytes
}
