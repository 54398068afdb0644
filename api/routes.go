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
