package api

import (
	"cmp"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/sdn"
)

// Rollout deadlines of POST /v1/sdn/apply.
const (
	defaultRolloutTimeout = 60 * time.Second
	minRolloutTimeout     = time.Second
	maxRolloutTimeout     = 10 * time.Minute
)

// sdnRoutes are the endpoints of the software-defined network: the intent
// (zones, vnets, subnets, allow rules), the hosts, their plans and
// reports, and the rollouts that carry a new version of the network to
// every host. Operators change the intent and apply it; auditors read;
// agents enrol their host, read its plan and report. Tenant tokens have
// no part in it.
var sdnRoutes = slices.Concat(
	sdnZones.routes(), sdnVnets.routes(), sdnSubnets.routes(), sdnAllows.routes(),
	[]route{
		{Route{http.MethodGet, "/v1/sdn/hosts", KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNHostList)},
		{Route{http.MethodGet, "/v1/sdn/hosts/{name}", KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNHostGet)},
		{Route{http.MethodPut, "/v1/sdn/hosts/{name}", KindWrite, auth.PermAgent, auth.ScopeCluster}, bodyJSON, sdnHandler((*server).handleSDNHostEnrol)},
		{Route{http.MethodDelete, "/v1/sdn/hosts/{name}", KindWrite, auth.PermSDNWrite, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNHostDelete)},
		{Route{http.MethodGet, "/v1/sdn/hosts/{name}/plan", KindRead, auth.PermAgent, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNHostPlan)},
		{Route{http.MethodPost, "/v1/sdn/hosts/{name}/report", KindWrite, auth.PermAgent, auth.ScopeCluster}, bodyJSON, sdnHandler((*server).handleSDNHostReport)},

		{Route{http.MethodPost, "/v1/sdn/apply", KindWrite, auth.PermSDNWrite, auth.ScopeCluster}, bodyOptionalJSON, sdnHandler((*server).handleSDNApply)},
		{Route{http.MethodGet, "/v1/sdn/rollouts", KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNRolloutList)},
		{Route{http.MethodGet, "/v1/sdn/rollouts/{id}", KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNRolloutGet)},
		{Route{http.MethodPost, "/v1/sdn/rollouts/{id}/abort", KindWrite, auth.PermSDNWrite, auth.ScopeCluster}, bodyOptionalJSON, sdnHandler((*server).handleSDNRolloutAbort)},
		{Route{http.MethodGet, "/v1/sdn/status", KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler((*server).handleSDNStatus)},
	},
)

// sdnHandler answers a *sdn.Error (the validation and compile errors of
// package sdn, from the handler or from Apply) as a 400 naming its field.
func sdnHandler(h func(*server, *call) error) func(*server, *call) error {
	return func(s *server, c *call) error {
		err := h(s, c)
		var ae *apiError
		var fe *fsm.FieldError
		var se *sdn.Error
		if err == nil || errors.As(err, &ae) || errors.As(err, &fe) || !errors.As(err, &se) {
			return err
		}
		return invalid(se.Field, "%s", se.Msg)
	}
}

// The list bodies of the SDN API.
type (
	// SDNZoneList is the body of GET /v1/sdn/zones.
	SDNZoneList struct {
		Zones []*fsm.SDNZone `json:"zones"`
	}
	// SDNVnetList is the body of GET /v1/sdn/vnets.
	SDNVnetList struct {
		Vnets []*fsm.SDNVnet `json:"vnets"`
	}
	// SDNSubnetList is the body of GET /v1/sdn/subnets.
	SDNSubnetList struct {
		Subnets []*fsm.SDNSubnet `json:"subnets"`
	}
	// SDNAllowList is the body of GET /v1/sdn/allows.
	SDNAllowList struct {
		Allows []*fsm.SDNAllow `json:"allows"`
	}
	// SDNHostList is the body of GET /v1/sdn/hosts.
	SDNHostList struct {
		Hosts []SDNHostView `json:"hosts"`
	}
	// SDNRolloutList is the body of GET /v1/sdn/rollouts, newest first.
	SDNRolloutList struct {
		Rollouts []*fsm.SDNRollout `json:"rollouts"`
	}
)

// sdnCollection is one collection of the intent: T is the object as
// requests carry it (an sdn type), O as the store keeps it.
type sdnCollection[T, O any] struct {
	// path is the collection's path, noun names an object in messages.
	path, noun string
	// id returns the ID field of a request body.
	id func(*T) *string
	// check validates a request body, and resolves what it names, on the
	// leader before anything is proposed; it returns an *sdn.Error or an
	// *apiError.
	check func(s *server, c *call, v *T) error
	// put and del build the commands.
	put func(s *server, v T, create bool) fsm.Command
	del func(id string) fsm.Command
	// list and get read the store.
	list func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*O, error)
	get  func(st *fsm.Store, ws memdb.WatchSet, id string) (uint64, *O, error)
	// wrap puts a list in its envelope.
	wrap func([]*O) any
	// newID names an object created without an ID; nil requires one.
	newID func() string
}

// routes returns the five routes of the collection.
func (k *sdnCollection[T, O]) routes() []route {
	item := k.path + "/{id}"
	return []route{
		{Route{http.MethodGet, k.path, KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler(k.handleList)},
		{Route{http.MethodPost, k.path, KindWrite, auth.PermSDNWrite, auth.ScopeCluster}, bodyJSON, sdnHandler(k.handleCreate)},
		{Route{http.MethodGet, item, KindRead, auth.PermSDNRead, auth.ScopeCluster}, bodyNone, sdnHandler(k.handleGet)},
		{Route{http.MethodPut, item, KindWrite, auth.PermSDNWrite, auth.ScopeCluster}, bodyJSON, sdnHandler(k.handleUpdate)},
		{Route{http.MethodDelete, item, KindWrite, auth.PermSDNWrite, auth.ScopeCluster}, bodyNone, sdnHandler(k.handleDelete)},
	}
}

func (k *sdnCollection[T, O]) handleList(s *server, c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*O, error) {
		idx, l, err := k.list(st, ws)
		if l == nil {
			l = []*O{}
		}
		return idx, l, err
	}, k.wrap)
}

func (k *sdnCollection[T, O]) handleGet(s *server, c *call) error {
	id := c.r.PathValue("id")
	return serveGet(s, c, "id", k.noun, id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *O, error) {
		return k.get(st, ws, id)
	})
}

func (k *sdnCollection[T, O]) handleCreate(s *server, c *call) error {
	var v T
	if err := decodeJSON(c.body, &v, true); err != nil {
		return err
	}
	if id := k.id(&v); *id == "" && k.newID != nil {
		*id = k.newID()
	}
	if err := k.check(s, c, &v); err != nil {
		return err
	}
	return s.propose(c, k.put(s, v, true), http.StatusCreated, nil)
}

func (k *sdnCollection[T, O]) handleUpdate(s *server, c *call) error {
	var v T
	if err := decodeJSON(c.body, &v, true); err != nil {
		return err
	}
	path := c.r.PathValue("id")
	switch id := k.id(&v); *id {
	case "":
		*id = path
	case path:
	default:
		return invalid("id", "the body's id %q differs from the path's %q; an object cannot be renamed", *id, path)
	}
	if err := k.check(s, c, &v); err != nil {
		return err
	}
	return s.propose(c, k.put(s, v, false), http.StatusOK, nil)
}

func (k *sdnCollection[T, O]) handleDelete(s *server, c *call) error {
	return s.propose(c, k.del(c.r.PathValue("id")), http.StatusOK, nil)
}

var (
	sdnZones = &sdnCollection[sdn.Zone, fsm.SDNZone]{
		path: "/v1/sdn/zones", noun: "zone",
		id:    func(z *sdn.Zone) *string { return &z.ID },
		check: checkZone,
		put: func(_ *server, z sdn.Zone, create bool) fsm.Command {
			return &fsm.SDNZonePutRequest{Zone: z, Create: create, TagRules: true}
		},
		del:  func(id string) fsm.Command { return &fsm.SDNZoneDeleteRequest{ID: id} },
		list: (*fsm.Store).SDNZones,
		get:  (*fsm.Store).SDNZone,
		wrap: func(l []*fsm.SDNZone) any { return SDNZoneList{Zones: l} },
	}
	sdnVnets = &sdnCollection[sdn.Vnet, fsm.SDNVnet]{
		path: "/v1/sdn/vnets", noun: "vnet",
		id:    func(v *sdn.Vnet) *string { return &v.ID },
		check: checkVnet,
		put: func(_ *server, v sdn.Vnet, create bool) fsm.Command {
			// The IPAM allocation a tag taken from the zone's pool is
			// recorded as, named on the leader like every new ID.
			return &fsm.SDNVnetPutRequest{Vnet: v, Create: create, AllocationID: newID(), TagRules: true}
		},
		del:  func(id string) fsm.Command { return &fsm.SDNVnetDeleteRequest{ID: id} },
		list: (*fsm.Store).SDNVnets,
		get:  (*fsm.Store).SDNVnet,
		wrap: func(l []*fsm.SDNVnet) any { return SDNVnetList{Vnets: l} },
	}
	sdnSubnets = &sdnCollection[sdn.Subnet, fsm.SDNSubnet]{
		path: "/v1/sdn/subnets", noun: "subnet",
		id:    func(v *sdn.Subnet) *string { return &v.ID },
		check: func(_ *server, _ *call, v *sdn.Subnet) error { return sdn.ValidateSubnet(*v) },
		put: func(_ *server, v sdn.Subnet, create bool) fsm.Command {
			return &fsm.SDNSubnetPutRequest{Subnet: v, Create: create}
		},
		del:  func(id string) fsm.Command { return &fsm.SDNSubnetDeleteRequest{ID: id} },
		list: (*fsm.Store).SDNSubnets,
		get:  (*fsm.Store).SDNSubnet,
		wrap: func(l []*fsm.SDNSubnet) any { return SDNSubnetList{Subnets: l} },
	}
	sdnAllows = &sdnCollection[sdn.Allow, fsm.SDNAllow]{
		path: "/v1/sdn/allows", noun: "allow rule",
		id:    func(v *sdn.Allow) *string { return &v.ID },
		check: func(_ *server, _ *call, v *sdn.Allow) error { return sdn.ValidateAllow(*v) },
		put: func(_ *server, v sdn.Allow, create bool) fsm.Command {
			return &fsm.SDNAllowPutRequest{Allow: v, Create: create}
		},
		del:   func(id string) fsm.Command { return &fsm.SDNAllowDeleteRequest{ID: id} },
		list:  (*fsm.Store).SDNAllows,
		get:   (*fsm.Store).SDNAllow,
		wrap:  func(l []*fsm.SDNAllow) any { return SDNAllowList{Allows: l} },
		newID: newID,
	}
)

// checkZone validates a zone and resolves its pool, given by ID or name,
// to the ID of the VLAN group (vlan zones) or VNI pool (vxlan zones); a
// pool that does not exist is a 404 naming "pool".
func checkZone(s *server, c *call, z *sdn.Zone) error {
	if err := sdn.ValidateZone(*z); err != nil || z.Pool == "" {
		return err
	}
	k := vlanKind
	if z.Type == sdn.ZoneVXLAN {
		k = vniKind
	}
	id, err := s.resolvePool(c, k, z.Pool, "pool")
	if err != nil {
		return err
	}
	z.Pool = id
	return nil
}

// checkVnet validates a vnet against its zone, which must exist (404
// naming "zone").
func checkVnet(s *server, _ *call, v *sdn.Vnet) error {
	if v.Zone == "" {
		// Let ValidateVnet name what is missing.
		return sdn.ValidateVnet(*v, sdn.Zone{})
	}
	_, z, err := s.b.State().SDNZone(nil, v.Zone)
	if err != nil {
		return err
	}
	if z == nil {
		return notFoundError("zone", "zone", v.Zone)
	}
	return sdn.ValidateVnet(*v, z.Zone)
}

// SDNHostView is an enrolled host with where it stands in the rollouts
// and what its agent last reported.
type SDNHostView struct {
	*fsm.SDNHost
	State *fsm.SDNHostState `json:"state,omitempty"`
}

func sdnHostView(st *fsm.Store, ws memdb.WatchSet, h *fsm.SDNHost) (SDNHostView, error) {
	_, hs, err := st.SDNHostState(ws, h.Name)
	return SDNHostView{SDNHost: h, State: hs}, err
}

func (s *server) handleSDNHostList(c *call) error {
	var out []SDNHostView
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		idx, hosts, err := st.SDNHosts(ws)
		if err != nil {
			return 0, err
		}
		out = make([]SDNHostView, 0, len(hosts))
		for _, h := range hosts {
			v, err := sdnHostView(st, ws, h)
			if err != nil {
				return 0, err
			}
			out = append(out, v)
		}
		return idx, nil
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, SDNHostList{Hosts: out})
	return nil
}

func (s *server) handleSDNHostGet(c *call) error {
	name := c.r.PathValue("name")
	var out *SDNHostView
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		out = nil
		idx, h, err := st.SDNHost(ws, name)
		if err != nil || h == nil {
			return idx, err
		}
		v, err := sdnHostView(st, ws, h)
		out = &v
		return idx, err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if out == nil {
		return notFoundError("name", "host", name)
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// handleSDNHostEnrol enrols the {name} host as its agent describes it, or
// updates its enrolment: the agent calls it whenever it starts.
func (s *server) handleSDNHostEnrol(c *call) error {
	var h sdn.Host
	if err := decodeJSON(c.body, &h, true); err != nil {
		return err
	}
	name := c.r.PathValue("name")
	switch h.Name {
	case "":
		h.Name = name
	case name:
	default:
		return invalid("name", "the body's name %q differs from the path's %q", h.Name, name)
	}
	if err := sdn.ValidateHost(h); err != nil {
		return err
	}
	return s.propose(c, &fsm.SDNHostPutRequest{Host: h}, http.StatusOK, s.renderSDNHost)
}

// renderSDNHost shows an enrolled host with its state.
func (s *server) renderSDNHost(v any) (any, error) {
	h, err := resultOf[fsm.SDNHost](v)
	if err != nil {
		return nil, err
	}
	return sdnHostView(s.b.State(), nil, h)
}

func (s *server) handleSDNHostDelete(c *call) error {
	return s.propose(c, &fsm.SDNHostDeleteRequest{Name: c.r.PathValue("name")}, http.StatusOK, nil)
}

// handleSDNHostPlan answers what the {name} host must hold now; agents
// watch it with blocking queries. A host that has not enrolled is a 404.
func (s *server) handleSDNHostPlan(c *call) error {
	name := c.r.PathValue("name")
	var out *fsm.SDNPlanView
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		out = nil
		hidx, h, err := st.SDNHost(ws, name)
		if err != nil || h == nil {
			return hidx, err
		}
		idx, v, err := st.SDNHostPlan(ws, name)
		out = &v
		return max(idx, hidx), err
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	if out == nil {
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, field: "name",
			message: "host " + name + " is not enrolled; its agent enrols it with PUT /v1/sdn/hosts/" + name}
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// SDNReportRequest is the body of POST /v1/sdn/hosts/{name}/report: the
// version the agent applied (or failed to apply), what it found drifted
// and healed, and how many changes it made.
type SDNReportRequest struct {
	Version uint64   `json:"version"`
	State   string   `json:"state"`
	Error   string   `json:"error"`
	Drift   []string `json:"drift"`
	Actions int      `json:"actions"`
}

func (s *server) handleSDNHostReport(c *call) error {
	var req SDNReportRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	switch req.State {
	case fsm.SDNStateApplied:
	case fsm.SDNStateFailed:
		if req.Error == "" {
			return invalid("error", "a failed report says why in error")
		}
	case "":
		return invalid("state", "state is required: applied or failed")
	default:
		return invalid("state", "state %q is not applied or failed", req.State)
	}
	cmd := &fsm.SDNReportRequest{Host: c.r.PathValue("name"), Version: req.Version, State: req.State,
		Error: req.Error, Drift: req.Drift, Actions: req.Actions}
	err := s.propose(c, cmd, http.StatusOK, nil)
	var fe *fsm.FieldError
	if errors.As(err, &fe) && fe.Field == "host" {
		// The command's host is the path's {name}.
		return &fsm.FieldError{Field: "name", Err: fe.Err}
	}
	return err
}

// SDNApplyBody is the body of POST /v1/sdn/apply. Timeout is how long the
// hosts have to apply the new version before the rollout aborts: a Go
// duration, 1s to 10m, 60s when absent.
type SDNApplyBody struct {
	DryRun  bool   `json:"dry_run"`
	Timeout string `json:"timeout"`
}

// SDNHostDiff is what a version changes on one host: from the version the
// host is committed to, to the new one.
type SDNHostDiff struct {
	Host        string       `json:"host"`
	FromVersion uint64       `json:"from_version"`
	ToVersion   uint64       `json:"to_version"`
	Changes     []sdn.Change `json:"changes"`
}

// SDNApplyResponse is the answer of POST /v1/sdn/apply. A rollout started
// (202): Rollout, and Version is its version. Nothing differs from what
// the hosts are committed to (200): NoChange, and Version is the current
// version. A dry run (200): Hosts, with every enrolled host's changes, and
// Version is the version an apply would make (the current one with
// NoChange).
type SDNApplyResponse struct {
	Rollout  *fsm.SDNRollout `json:"rollout,omitempty"`
	Version  uint64          `json:"version"`
	NoChange bool            `json:"no_change"`
	Hosts    []SDNHostDiff   `json:"hosts,omitempty"`
}

func (s *server) handleSDNApply(c *call) error {
	var req SDNApplyBody
	if err := decodeJSON(c.body, &req, false); err != nil {
		return err
	}
	timeout := defaultRolloutTimeout
	if req.Timeout != "" {
		d, err := time.ParseDuration(req.Timeout)
		if err != nil {
			return invalid("timeout", "must be a duration such as \"30s\", not %q", req.Timeout)
		}
		if d < minRolloutTimeout || d > maxRolloutTimeout {
			return invalid("timeout", "%s is outside %s..%s", d, minRolloutTimeout, maxRolloutTimeout)
		}
		timeout = d
	}
	if req.DryRun {
		// A dry run changes nothing and proposes nothing, not even an
		// audit record: it is a read that needs the leader.
		c.audited = true
		return s.sdnDryRun(c)
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	cmd := &fsm.SDNApplyRequest{RolloutID: newID(), Deadline: fsm.Timestamp(time.Unix(0, meta.Now).Add(timeout).UnixNano())}
	cmd.WriteMeta = meta
	return s.applyAs(c, cmd, func(v any) (int, any, error) {
		r, err := resultOf[fsm.SDNApplyResult](v)
		if err != nil {
			return 0, nil, err
		}
		out := SDNApplyResponse{Rollout: r.Rollout, Version: r.Version, NoChange: r.NoChange}
		if r.Rollout == nil {
			return http.StatusOK, out, nil
		}
		return http.StatusAccepted, out, nil
	})
}

// applyAs is apply for a command whose answer's status depends on its
// result: answer returns the status and the body.
func (s *server) applyAs(c *call, cmd fsm.Command, answer func(any) (int, any, error)) error {
	if m := cmd.Meta(); m.Audit == nil {
		m.Audit = auditInfo(c)
	}
	res, index, err := s.b.Apply(c.r.Context(), cmd)
	if err != nil {
		return err
	}
	if index != 0 {
		c.setIndex(index)
	}
	if res == nil {
		return internal(errNilResult)
	}
	c.audited = true
	if res.Err != nil {
		return res.Err
	}
	v := res.Value
	if (res.Replayed || v == nil) && res.JSON != nil {
		v = json.RawMessage(res.JSON)
	}
	status, body, err := answer(v)
	if err != nil {
		return internal(err)
	}
	if res.Replayed {
		c.w.Header().Set(headerReplayed, "true")
	}
	writeJSON(c.w, status, body)
	return nil
}

// sdnDryRun answers what an apply would do, computed from the leader's
// store and proposing nothing: the intent compiled and diffed, host by
// host, against the plan of the version the host is committed to. It
// refuses what the apply would refuse.
func (s *server) sdnDryRun(c *call) error {
	idx, pv, err := s.b.State().SDNPreview()
	if err != nil {
		return err
	}
	c.setIndex(max(idx, 1))
	out := SDNApplyResponse{NoChange: pv.NoChange(), Version: pv.Version, Hosts: make([]SDNHostDiff, 0, len(pv.Hosts))}
	for _, h := range pv.Hosts {
		changes := pv.Changes[h]
		if changes == nil {
			changes = []sdn.Change{}
		}
		out.Hosts = append(out.Hosts, SDNHostDiff{Host: h, FromVersion: pv.Committed[h], ToVersion: pv.Version, Changes: changes})
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

func (s *server) handleSDNRolloutList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.SDNRollout, error) {
		idx, l, err := st.SDNRollouts(ws)
		if l == nil {
			l = []*fsm.SDNRollout{}
		}
		return idx, l, err
	}, func(l []*fsm.SDNRollout) any { return SDNRolloutList{Rollouts: l} })
}

func (s *server) handleSDNRolloutGet(c *call) error {
	id := c.r.PathValue("id")
	return serveGet(s, c, "id", "rollout", id, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.SDNRollout, error) {
		return st.SDNRollout(ws, id)
	})
}

// SDNAbortRequest is the optional body of POST
// /v1/sdn/rollouts/{id}/abort.
type SDNAbortRequest struct {
	Reason string `json:"reason"`
}

// maxAbortReason bounds the reason of an abort.
const maxAbortReason = 1024

func (s *server) handleSDNRolloutAbort(c *call) error {
	var req SDNAbortRequest
	if err := decodeJSON(c.body, &req, false); err != nil {
		return err
	}
	if len(req.Reason) > maxAbortReason {
		return invalid("reason", "%d bytes, at most %d allowed", len(req.Reason), maxAbortReason)
	}
	if req.Reason == "" {
		req.Reason = "aborted by an operator"
	}
	cmd := &fsm.SDNRolloutAbortRequest{RolloutID: c.r.PathValue("id"), Reason: req.Reason}
	return s.propose(c, cmd, http.StatusOK, nil)
}

// SDNHostStatus is a host in GET /v1/sdn/status: its state, and whether it
// is enrolled (a host deleted after it reported is not).
type SDNHostStatus struct {
	fsm.SDNHostState
	Enrolled bool `json:"enrolled"`
}

// SDNStatus is the body of GET /v1/sdn/status: the newest version, the
// newest committed version, the active rollout (or the newest one) and
// where every host stands.
type SDNStatus struct {
	Version   uint64          `json:"version"`
	Committed uint64          `json:"committed"`
	Rollout   *fsm.SDNRollout `json:"rollout"`
	Hosts     []SDNHostStatus `json:"hosts"`
}

func (s *server) handleSDNStatus(c *call) error {
	var out SDNStatus
	idx, err := s.blockingQuery(c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, error) {
		out = SDNStatus{}
		i1, rollouts, err := st.SDNRollouts(ws)
		if err != nil {
			return 0, err
		}
		i2, hosts, err := st.SDNHosts(ws)
		if err != nil {
			return 0, err
		}
		i3, states, err := st.SDNHostStates(ws)
		if err != nil {
			return 0, err
		}
		for _, r := range rollouts { // newest first
			if out.Rollout == nil || r.Phase == fsm.SDNPhasePreparing {
				out.Rollout = r
			}
			if out.Version == 0 {
				out.Version = r.Version
			}
			if out.Committed == 0 && r.Phase == fsm.SDNPhaseCommitted {
				out.Committed = r.Version
			}
		}
		byName := make(map[string]*SDNHostStatus, len(hosts))
		for _, h := range hosts {
			byName[h.Name] = &SDNHostStatus{SDNHostState: fsm.SDNHostState{Host: h.Name}, Enrolled: true}
		}
		for _, hs := range states {
			e := byName[hs.Host]
			if e == nil {
				e = &SDNHostStatus{}
				byName[hs.Host] = e
			}
			e.SDNHostState = *hs
		}
		out.Hosts = make([]SDNHostStatus, 0, len(byName))
		for _, e := range byName {
			out.Hosts = append(out.Hosts, *e)
		}
		slices.SortFunc(out.Hosts, func(a, b SDNHostStatus) int { return cmp.Compare(a.Host, b.Host) })
		return max(i1, i2, i3), nil
	})
	if err != nil {
		return err
	}
	c.setIndex(idx)
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
