package api

import (
	"errors"
	"fmt"
	"maps"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/quota"
)

// capacityRoutes are the capacity report and the overcommit policies that
// placement honours.
var capacityRoutes = []route{
	{Route{http.MethodGet, "/v1/capacity", KindRead, auth.PermCapacityRead, auth.ScopeCluster}, bodyNone, (*server).handleCapacity},
	{Route{http.MethodGet, "/v1/capacity/policies", KindRead, auth.PermCapacityRead, auth.ScopeCluster}, bodyNone, (*server).handleCapacityPolicyList},
	{Route{http.MethodPut, "/v1/capacity/policies/{id}", KindWrite, auth.PermClusterWrite, auth.ScopeCluster}, bodyJSON, (*server).handleCapacityPolicyPut},
	{Route{http.MethodDelete, "/v1/capacity/policies/{id}", KindWrite, auth.PermClusterWrite, auth.ScopeCluster}, bodyNone, (*server).handleCapacityPolicyDelete},
}

// builtinPolicy applies to nodes in no group while no "default" policy is
// stored: vCPUs four times the cores, memory and disk as they are.
var builtinPolicy = quota.Policy{CPURatio: 4, MemoryRatio: 1, DiskRatio: 1}

// capacityModel is the state placement and the capacity report work on.
type capacityModel struct {
	view   *fsm.CapacityView
	nodes  []quota.NodeState
	groups map[string]*fsm.CapacityPolicy
}

// newCapacityModel turns a view of the state into node states: physical
// capacity from the inventory (cores, memory, and the local storage that
// holds VM images), allocation from the guests and creates in flight,
// usage as last measured.
func newCapacityModel(v *fsm.CapacityView) *capacityModel {
	m := &capacityModel{view: v, groups: map[string]*fsm.CapacityPolicy{}}
	groupOf := map[string]string{}
	for _, p := range v.Policies {
		m.groups[p.ID] = p
		for _, n := range p.Nodes {
			groupOf[n] = p.ID
		}
	}
	const gib, mib = 1 << 30, 1 << 20
	disk := map[string]int64{}
	used := map[string]int64{}
	for _, st := range v.Storage {
		if !st.Shared && slices.Contains(st.Content, "images") {
			disk[st.Node] += int64(st.Total / gib)
			used[st.Node] += int64(st.Used / gib)
		}
	}
	for _, n := range v.Nodes {
		m.nodes = append(m.nodes, quota.NodeState{
			Name: n.Name, Group: groupOf[n.Name], Online: n.Status == "online",
			Physical:  quota.Capacity{VCPUs: int64(n.MaxCPU), MemoryMiB: int64(n.MaxMem / mib), DiskGiB: disk[n.Name]},
			Allocated: v.Allocated[n.Name],
			Used:      quota.Capacity{VCPUs: int64(math.Ceil(n.CPU * float64(n.MaxCPU))), MemoryMiB: int64(n.Mem / mib), DiskGiB: used[n.Name]},
		})
	}
	slices.SortFunc(m.nodes, func(a, b quota.NodeState) int { return strings.Compare(a.Name, b.Name) })
	return m
}

// policy returns the policy of a group ("" for nodes in none).
func (m *capacityModel) policy(group string) quota.Policy {
	if group == "" {
		group = fsm.DefaultPolicyID
	}
	if p, ok := m.groups[group]; ok {
		return p.Policy
	}
	return builtinPolicy
}

// place chooses the node for a new VM: the requested one if it is online
// and has room under its policy, otherwise the one with the most room. It
// returns the node and what the node may hold under its policy, which the
// create carries so that Apply admits it against the node's allocations
// then. Disk counts only on nodes with local storage for VM images: disks
// on shared storage belong to no node.
func (m *capacityModel) place(want string, req quota.Capacity) (string, quota.Capacity, error) {
	nodes := slices.Clone(m.nodes)
	for i := range nodes {
		if nodes[i].Physical.DiskGiB == 0 {
			nodes[i].Physical.DiskGiB, nodes[i].Allocated.DiskGiB = quota.MaxLimit, 0
		}
	}
	if want != "" {
		i := slices.IndexFunc(nodes, func(n quota.NodeState) bool { return n.Name == want })
		switch {
		case i < 0:
			return "", quota.Capacity{}, invalid("node", "no node %q in the inventory", want)
		case !nodes[i].Online:
			return "", quota.Capacity{}, &apiError{status: http.StatusConflict, code: CodeConflict, field: "node", message: fmt.Sprintf("node %s is not online", want)}
		case nodes[i].Physical.VCPUs < req.VCPUs:
			return "", quota.Capacity{}, invalid("cores", "node %s has %d CPUs; %d cores requested", want, nodes[i].Physical.VCPUs, req.VCPUs)
		}
		nodes = nodes[i : i+1]
	}
	// A VM has at most as many cores as its host has CPUs, whatever the
	// overcommit.
	nodes = slices.DeleteFunc(nodes, func(n quota.NodeState) bool { return n.Physical.VCPUs < req.VCPUs })
	if len(nodes) == 0 {
		return "", quota.Capacity{}, exhausted("node", "no online node has %d CPUs for a VM of %d cores", req.VCPUs, req.VCPUs)
	}
	node, err := quota.Place(nodes, req, m.policy)
	var nc *quota.NoCapacityError
	switch {
	case errors.As(err, &nc) && want != "":
		return "", quota.Capacity{}, exhausted("node", "node %s has room for %d more %s under its capacity policy; %d requested", want, max(0, nc.Largest), nc.Resource, nc.Request)
	case errors.As(err, &nc):
		return "", quota.Capacity{}, exhausted("node", "no online node has room for %d %s under its capacity policy (the most room is %d)", nc.Request, nc.Resource, max(0, nc.Largest))
	case err != nil:
		return "", quota.Capacity{}, invalid("cores", "%v", err)
	}
	i := slices.IndexFunc(nodes, func(n quota.NodeState) bool { return n.Name == node })
	return node, quota.Allocatable(nodes[i].Physical, m.policy(nodes[i].Group)), nil
}

// placeVM returns the node for a new VM of cores, memory (MiB) and disk
// (GiB), and what that node may hold under its policy.
func placeVM(st *fsm.Store, want string, cores, memMiB, diskGiB int) (string, quota.Capacity, error) {
	v, err := st.Capacity(-1)
	if err != nil {
		return "", quota.Capacity{}, err
	}
	return newCapacityModel(v).place(want, quota.Capacity{VCPUs: int64(cores), MemoryMiB: int64(memMiB), DiskGiB: int64(diskGiB)})
}

// Forecast says in how many days each resource runs out at the trend of
// the allocation history; null for a resource that is not filling up.
type Forecast struct {
	VCPUs     *float64 `json:"vcpus"`
	MemoryMiB *float64 `json:"memory_mib"`
	DiskGiB   *float64 `json:"disk_gib"`
}

// NodeCapacity is one node's line of the capacity report.
type NodeCapacity struct {
	Name     string         `json:"name"`
	Group    string         `json:"group"`
	Online   bool           `json:"online"`
	Physical quota.Capacity `json:"physical"`
	quota.Headroom
	Forecast Forecast `json:"forecast_days"`
}

// CapacityReport is the body of GET /v1/capacity.
type CapacityReport struct {
	// WindowDays is the span of allocation history the forecasts fit.
	WindowDays int `json:"window_days"`
	Cluster    struct {
		Physical quota.Capacity `json:"physical"`
		quota.Headroom
		Forecast Forecast `json:"forecast_days"`
	} `json:"cluster"`
	Nodes []NodeCapacity `json:"nodes"`
}

// forecast fits the samples of one node ("" for the cluster's sums)
// against allocatable.
func forecast(samples map[int64]quota.Capacity, allocatable quota.Capacity, now, window int64) Forecast {
	var f Forecast
	hours := slices.Sorted(maps.Keys(samples))
	for _, r := range []struct {
		dst **float64
		get func(quota.Capacity) int64
	}{
		{&f.VCPUs, func(c quota.Capacity) int64 { return c.VCPUs }},
		{&f.MemoryMiB, func(c quota.Capacity) int64 { return c.MemoryMiB }},
		{&f.DiskGiB, func(c quota.Capacity) int64 { return c.DiskGiB }},
	} {
		pts := make([]quota.Point, 0, len(samples))
		for _, h := range hours {
			pts = append(pts, quota.Point{Time: h / 1000, Value: float64(r.get(samples[h]))})
		}
		if r.get(allocatable) <= 0 {
			continue // nothing allocatable (offline, or disks on shared storage): no date to fill up
		}
		if days, ok := quota.Forecast(pts, float64(r.get(allocatable)), now, window); ok {
			d := math.Round(days*10) / 10
			*r.dst = &d
		}
	}
	return f
}

// handleCapacity reports allocatable, allocated, used and free capacity
// per node and for the cluster, with a forecast of when each runs out
// from the hourly allocation history of the last window (default 30d).
func (s *server) handleCapacity(c *call) error {
	days := 30
	if w := c.r.URL.Query().Get("window"); w != "" {
		n, err := strconv.Atoi(strings.TrimSuffix(w, "d"))
		if err != nil || !strings.HasSuffix(w, "d") || n < 1 || n > 90 {
			return invalid("window", "must be 1d to 90d, not %q", w)
		}
		days = n
	}
	now := s.b.Now()
	window := int64(days) * 86400
	v, err := s.b.State().Capacity(now.Add(-time.Duration(days) * 24 * time.Hour).UnixMilli())
	if err != nil {
		return err
	}
	m := newCapacityModel(v)
	perNode, cluster := quota.Summarize(m.nodes, m.policy)
	byNode := map[string]map[int64]quota.Capacity{}
	total := map[int64]quota.Capacity{}
	for _, smp := range v.Samples {
		if byNode[smp.Node] == nil {
			byNode[smp.Node] = map[int64]quota.Capacity{}
		}
		byNode[smp.Node][smp.Hour] = smp.Allocated
		total[smp.Hour] = total[smp.Hour].Add(smp.Allocated)
	}
	var out CapacityReport
	out.WindowDays = days
	out.Cluster.Headroom = cluster
	out.Nodes = []NodeCapacity{}
	for _, n := range m.nodes {
		out.Cluster.Physical = out.Cluster.Physical.Add(n.Physical)
		out.Nodes = append(out.Nodes, NodeCapacity{
			Name: n.Name, Group: n.Group, Online: n.Online, Physical: n.Physical, Headroom: perNode[n.Name],
			Forecast: forecast(byNode[n.Name], perNode[n.Name].Allocatable, now.Unix(), window),
		})
	}
	out.Cluster.Forecast = forecast(total, cluster.Allocatable, now.Unix(), window)
	c.setIndex(v.Index)
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

// CapacityPolicyRequest is the body of PUT /v1/capacity/policies/{id}:
// ratios (0 or absent means 1) and reserves, and for a group other than
// "default" the nodes in it.
type CapacityPolicyRequest struct {
	Nodes []string `json:"nodes"`
	quota.Policy
}

// CapacityPolicyList is the body of GET /v1/capacity/policies.
type CapacityPolicyList struct {
	Policies []*fsm.CapacityPolicy `json:"policies"`
	// Builtin is the policy of nodes in no group while no "default" is
	// stored.
	Builtin quota.Policy `json:"builtin_default"`
}

func (s *server) handleCapacityPolicyList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.CapacityPolicy, error) {
		return st.CapacityPolicies(ws)
	}, func(l []*fsm.CapacityPolicy) any { return CapacityPolicyList{Policies: l, Builtin: builtinPolicy} })
}

func (s *server) handleCapacityPolicyPut(c *call) error {
	id := c.r.PathValue("id")
	var req CapacityPolicyRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	cmd := &fsm.CapacityPolicyPutRequest{Policy: fsm.CapacityPolicy{ID: id, Nodes: req.Nodes, Policy: req.Policy}}
	return s.propose(c, cmd, http.StatusOK, nil)
}

func (s *server) handleCapacityPolicyDelete(c *call) error {
	id := c.r.PathValue("id")
	if !fsm.ValidName(id) {
		return invalid("id", "policy id %q must be 1-63 lower-case letters, digits, '-', '_' or '.'", id)
	}
	return s.propose(c, &fsm.CapacityPolicyDeleteRequest{ID: id}, http.StatusOK, nil)
}
