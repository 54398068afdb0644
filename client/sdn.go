package client

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/sdn"
)

// sdnPath is the path of the SDN API.
const sdnPath = "/v1/sdn"

// Phases of an SDN rollout.
const (
	// RolloutPreparing: hosts are applying the new version.
	RolloutPreparing = "preparing"
	// RolloutCommitted: every host applied the new version.
	RolloutCommitted = "committed"
	// RolloutAborted: a host failed, the deadline passed or an operator
	// aborted it; every host was sent back to its previous version.
	RolloutAborted = "aborted"
)

// States an agent reports for its host.
const (
	HostApplied = "applied"
	HostFailed  = "failed"
)

// SDNObjectMeta are the store's fields of every SDN object.
type SDNObjectMeta struct {
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	CreatedAt   Time   `json:"created_at,omitzero"`
	UpdatedAt   Time   `json:"updated_at,omitzero"`
}

// SDNZone is a stored zone.
type SDNZone struct {
	sdn.Zone
	SDNObjectMeta
}

// SDNVnet is a stored vnet. AllocationID is the IPAM VLAN or VNI
// allocation its tag came from, when its zone has a pool.
type SDNVnet struct {
	sdn.Vnet
	AllocationID string `json:"allocation_id,omitempty"`
	SDNObjectMeta
}

// SDNSubnet is a stored subnet; its CIDR is its IPAM prefix's.
type SDNSubnet struct {
	sdn.Subnet
	SDNObjectMeta
}

// SDNAllow is a stored allow rule.
type SDNAllow struct {
	sdn.Allow
	SDNObjectMeta
}

// SDNHost is an enrolled host, with where it stands in the rollouts and
// what its agent last reported (State.State is empty before its first
// report).
type SDNHost struct {
	sdn.Host
	EnrolledAt Time `json:"enrolled_at,omitzero"`
	SDNObjectMeta
	State *SDNHostState `json:"state,omitempty"`
}

// SDNHostState is where a host stands in the rollouts: the version it is
// committed to, the version it must hold now (Target; the rollout's while
// one is preparing), the version its agent last applied, and the agent's
// last report.
type SDNHostState struct {
	Host      string `json:"host"`
	Committed uint64 `json:"committed"`
	Target    uint64 `json:"target"`
	Applied   uint64 `json:"applied"`
	// State is the last report's: applied or failed; empty before any.
	State string `json:"state,omitempty"`
	Error string `json:"error,omitempty"`
	// Drift lists what the agent found differing from its plan and healed.
	Drift      []string `json:"drift,omitempty"`
	ReportedAt Time     `json:"reported_at,omitzero"`
	// Actions counts the changes the agent made for its last report.
	Actions int `json:"actions,omitempty"`
}

// SDNHostStatus is a host's state in the SDN status; Enrolled is false
// for a host that reported once but has since been deleted.
type SDNHostStatus struct {
	SDNHostState
	Enrolled bool `json:"enrolled"`
}

// SDNRollout is one version of the network going out to the hosts: every
// host applies it, and it commits when all did, or aborts (every host
// back to its previous version) when one fails or the deadline passes.
type SDNRollout struct {
	ID      string `json:"id"`
	Version uint64 `json:"version"`
	// Phase is RolloutPreparing, RolloutCommitted or RolloutAborted.
	Phase string `json:"phase"`
	// Hosts are the hosts of the rollout, sorted; Prepared those that
	// applied the version.
	Hosts    []string `json:"hosts"`
	Prepared []string `json:"prepared,omitempty"`
	// Previous maps a host to the version it is sent back to on abort.
	Previous map[string]uint64 `json:"previous,omitempty"`
	// Changes maps a host to what the version changes on it.
	Changes   map[string][]sdn.Change `json:"changes,omitempty"`
	Reason    string                  `json:"reason,omitempty"`
	Deadline  Time                    `json:"deadline,omitzero"`
	CreatedAt Time                    `json:"created_at,omitzero"`
	DoneAt    Time                    `json:"done_at,omitzero"`
	// ModifyIndex changes whenever a host applies the version and when
	// the rollout ends.
	CreateIndex uint64 `json:"create_index"`
	ModifyIndex uint64 `json:"modify_index"`
	// RequestID is the X-Request-ID of the apply that started the
	// rollout; the servers' and the agents' logs carry it.
	RequestID string `json:"request_id,omitempty"`
}

// Done reports whether the rollout has committed or aborted.
func (r *SDNRollout) Done() bool { return r.Phase != RolloutPreparing }

// SDNPlanView is what an agent must hold now: the plan of its host at
// Version (the target), with the version committed and the rollout, if
// any, that set the target.
type SDNPlanView struct {
	Host      string   `json:"host"`
	Version   uint64   `json:"version"`
	Committed uint64   `json:"committed"`
	RolloutID string   `json:"rollout_id,omitempty"`
	Phase     string   `json:"phase,omitempty"`
	Plan      sdn.Plan `json:"plan"`
	// RequestID is the request ID of the apply that started the rollout,
	// which the agent logs when it applies the version.
	RequestID string `json:"request_id,omitempty"`
}

// SDNReport is what an agent reports after applying (or failing to apply)
// a version of its plan.
type SDNReport struct {
	Version uint64 `json:"version"`
	// State is HostApplied or HostFailed.
	State   string   `json:"state"`
	Error   string   `json:"error,omitempty"`
	Drift   []string `json:"drift,omitempty"`
	Actions int      `json:"actions,omitempty"`
}

// SDNApplyRequest asks for the intent to be compiled and rolled out.
type SDNApplyRequest struct {
	// DryRun computes and returns the changes without rolling anything out.
	DryRun bool
	// Timeout is how long the hosts have to apply the new version before
	// the rollout aborts; zero means the server's default (60s).
	Timeout time.Duration
}

// MarshalJSON encodes the request body, with Timeout as a duration
// string such as "30s".
func (r SDNApplyRequest) MarshalJSON() ([]byte, error) {
	body := struct {
		DryRun  bool   `json:"dry_run,omitempty"`
		Timeout string `json:"timeout,omitempty"`
	}{DryRun: r.DryRun}
	if r.Timeout > 0 {
		body.Timeout = r.Timeout.String()
	}
	return json.Marshal(body)
}

// SDNHostDiff is what a version changes on one host.
type SDNHostDiff struct {
	Host        string       `json:"host"`
	FromVersion uint64       `json:"from_version"`
	ToVersion   uint64       `json:"to_version"`
	Changes     []sdn.Change `json:"changes"`
}

// SDNApplyResult is the answer to SDNApply. A rollout started: Rollout is
// set. Nothing to roll out: NoChange, and Version is the current one. A
// dry run: Hosts lists every host's changes and Version is the version a
// real apply would make (the current one with NoChange).
type SDNApplyResult struct {
	Rollout  *SDNRollout   `json:"rollout,omitempty"`
	Version  uint64        `json:"version,omitempty"`
	NoChange bool          `json:"no_change,omitempty"`
	Hosts    []SDNHostDiff `json:"hosts,omitempty"`
}

// SDNStatus is the state of the network: the newest version, the newest
// committed one, the active rollout (or the newest) and every host.
type SDNStatus struct {
	Version   uint64          `json:"version"`
	Committed uint64          `json:"committed"`
	Rollout   *SDNRollout     `json:"rollout,omitempty"`
	Hosts     []SDNHostStatus `json:"hosts"`
}

// sdnItem returns the path of an object of an SDN collection, with more
// path elements appended.
func sdnItem(collection, id string, more ...string) string {
	p := itemPath(sdnPath+"/"+collection, id)
	for _, m := range more {
		p += "/" + m
	}
	return p
}

// SDNZoneList lists the zones (GET /v1/sdn/zones).
func (c *Client) SDNZoneList(ctx context.Context, q *QueryOptions) ([]SDNZone, *Meta, error) {
	return getList[SDNZone](ctx, c, sdnPath+"/zones", "zones", nil, q)
}

// SDNZoneGet reads a zone (GET /v1/sdn/zones/{id}).
func (c *Client) SDNZoneGet(ctx context.Context, id string, q *QueryOptions) (*SDNZone, *Meta, error) {
	return getOne[SDNZone](ctx, c, sdnItem("zones", id), nil, q)
}

// SDNZoneCreate creates a zone (POST /v1/sdn/zones).
func (c *Client) SDNZoneCreate(ctx context.Context, z sdn.Zone, w *WriteOptions) (*SDNZone, *Meta, error) {
	return writeOne[SDNZone](ctx, c, http.MethodPost, sdnPath+"/zones", z, w)
}

// SDNZoneUpdate replaces the zone z.ID (PUT /v1/sdn/zones/{id}).
func (c *Client) SDNZoneUpdate(ctx context.Context, z sdn.Zone, w *WriteOptions) (*SDNZone, *Meta, error) {
	return writeOne[SDNZone](ctx, c, http.MethodPut, sdnItem("zones", z.ID), z, w)
}

// SDNZoneDelete deletes a zone no vnet uses (DELETE /v1/sdn/zones/{id})
// and returns it as it was.
func (c *Client) SDNZoneDelete(ctx context.Context, id string, w *WriteOptions) (*SDNZone, *Meta, error) {
	return writeOne[SDNZone](ctx, c, http.MethodDelete, sdnItem("zones", id), nil, w)
}

// SDNVnetList lists the vnets (GET /v1/sdn/vnets).
func (c *Client) SDNVnetList(ctx context.Context, q *QueryOptions) ([]SDNVnet, *Meta, error) {
	return getList[SDNVnet](ctx, c, sdnPath+"/vnets", "vnets", nil, q)
}

// SDNVnetGet reads a vnet (GET /v1/sdn/vnets/{id}).
func (c *Client) SDNVnetGet(ctx context.Context, id string, q *QueryOptions) (*SDNVnet, *Meta, error) {
	return getOne[SDNVnet](ctx, c, sdnItem("vnets", id), nil, q)
}

// SDNVnetCreate creates a vnet (POST /v1/sdn/vnets). Without a tag, a
// vnet of a vlan or vxlan zone takes the next free one from the zone's
// pool.
func (c *Client) SDNVnetCreate(ctx context.Context, v sdn.Vnet, w *WriteOptions) (*SDNVnet, *Meta, error) {
	return writeOne[SDNVnet](ctx, c, http.MethodPost, sdnPath+"/vnets", v, w)
}

// SDNVnetUpdate replaces the vnet v.ID (PUT /v1/sdn/vnets/{id}).
func (c *Client) SDNVnetUpdate(ctx context.Context, v sdn.Vnet, w *WriteOptions) (*SDNVnet, *Meta, error) {
	return writeOne[SDNVnet](ctx, c, http.MethodPut, sdnItem("vnets", v.ID), v, w)
}

// SDNVnetDelete deletes a vnet no subnet uses (DELETE /v1/sdn/vnets/{id}),
// releasing its tag, and returns it as it was.
func (c *Client) SDNVnetDelete(ctx context.Context, id string, w *WriteOptions) (*SDNVnet, *Meta, error) {
	return writeOne[SDNVnet](ctx, c, http.MethodDelete, sdnItem("vnets", id), nil, w)
}

// SDNSubnetList lists the subnets (GET /v1/sdn/subnets).
func (c *Client) SDNSubnetList(ctx context.Context, q *QueryOptions) ([]SDNSubnet, *Meta, error) {
	return getList[SDNSubnet](ctx, c, sdnPath+"/subnets", "subnets", nil, q)
}

// SDNSubnetGet reads a subnet (GET /v1/sdn/subnets/{id}).
func (c *Client) SDNSubnetGet(ctx context.Context, id string, q *QueryOptions) (*SDNSubnet, *Meta, error) {
	return getOne[SDNSubnet](ctx, c, sdnItem("subnets", id), nil, q)
}

// SDNSubnetCreate creates a subnet of an IPAM prefix on a vnet (POST
// /v1/sdn/subnets).
func (c *Client) SDNSubnetCreate(ctx context.Context, s sdn.Subnet, w *WriteOptions) (*SDNSubnet, *Meta, error) {
	return writeOne[SDNSubnet](ctx, c, http.MethodPost, sdnPath+"/subnets", s, w)
}

// SDNSubnetUpdate replaces the subnet s.ID (PUT /v1/sdn/subnets/{id}).
func (c *Client) SDNSubnetUpdate(ctx context.Context, s sdn.Subnet, w *WriteOptions) (*SDNSubnet, *Meta, error) {
	return writeOne[SDNSubnet](ctx, c, http.MethodPut, sdnItem("subnets", s.ID), s, w)
}

// SDNSubnetDelete deletes a subnet (DELETE /v1/sdn/subnets/{id}) and
// returns it as it was.
func (c *Client) SDNSubnetDelete(ctx context.Context, id string, w *WriteOptions) (*SDNSubnet, *Meta, error) {
	return writeOne[SDNSubnet](ctx, c, http.MethodDelete, sdnItem("subnets", id), nil, w)
}

// SDNAllowList lists the allow rules (GET /v1/sdn/allows).
func (c *Client) SDNAllowList(ctx context.Context, q *QueryOptions) ([]SDNAllow, *Meta, error) {
	return getList[SDNAllow](ctx, c, sdnPath+"/allows", "allows", nil, q)
}

// SDNAllowGet reads an allow rule (GET /v1/sdn/allows/{id}).
func (c *Client) SDNAllowGet(ctx context.Context, id string, q *QueryOptions) (*SDNAllow, *Meta, error) {
	return getOne[SDNAllow](ctx, c, sdnItem("allows", id), nil, q)
}

// SDNAllowCreate creates an allow rule (POST /v1/sdn/allows); without an
// ID the server names it.
func (c *Client) SDNAllowCreate(ctx context.Context, a sdn.Allow, w *WriteOptions) (*SDNAllow, *Meta, error) {
	return writeOne[SDNAllow](ctx, c, http.MethodPost, sdnPath+"/allows", a, w)
}

// SDNAllowUpdate replaces the allow rule a.ID (PUT /v1/sdn/allows/{id}).
func (c *Client) SDNAllowUpdate(ctx context.Context, a sdn.Allow, w *WriteOptions) (*SDNAllow, *Meta, error) {
	return writeOne[SDNAllow](ctx, c, http.MethodPut, sdnItem("allows", a.ID), a, w)
}

// SDNAllowDelete deletes an allow rule (DELETE /v1/sdn/allows/{id}) and
// returns it as it was.
func (c *Client) SDNAllowDelete(ctx context.Context, id string, w *WriteOptions) (*SDNAllow, *Meta, error) {
	return writeOne[SDNAllow](ctx, c, http.MethodDelete, sdnItem("allows", id), nil, w)
}

// SDNHostList lists the enrolled hosts with their last reports (GET
// /v1/sdn/hosts).
func (c *Client) SDNHostList(ctx context.Context, q *QueryOptions) ([]SDNHost, *Meta, error) {
	return getList[SDNHost](ctx, c, sdnPath+"/hosts", "hosts", nil, q)
}

// SDNHostGet reads an enrolled host (GET /v1/sdn/hosts/{name}).
func (c *Client) SDNHostGet(ctx context.Context, name string, q *QueryOptions) (*SDNHost, *Meta, error) {
	return getOne[SDNHost](ctx, c, sdnItem("hosts", name), nil, q)
}

// SDNHostEnrol enrols a host or updates its enrolment (PUT
// /v1/sdn/hosts/{name}); agents call it when they start.
func (c *Client) SDNHostEnrol(ctx context.Context, h sdn.Host, w *WriteOptions) (*SDNHost, *Meta, error) {
	return writeOne[SDNHost](ctx, c, http.MethodPut, sdnItem("hosts", h.Name), h, w)
}

// SDNHostDelete removes a host from the network (DELETE
// /v1/sdn/hosts/{name}) and returns it as it was. The next rollout leaves
// it out.
func (c *Client) SDNHostDelete(ctx context.Context, name string, w *WriteOptions) (*SDNHost, *Meta, error) {
	return writeOne[SDNHost](ctx, c, http.MethodDelete, sdnItem("hosts", name), nil, w)
}

// SDNHostPlan reads what the host must hold now (GET
// /v1/sdn/hosts/{name}/plan). With q.Index set it is a blocking query:
// agents wait on it for their next plan.
func (c *Client) SDNHostPlan(ctx context.Context, name string, q *QueryOptions) (*SDNPlanView, *Meta, error) {
	return getOne[SDNPlanView](ctx, c, sdnItem("hosts", name, "plan"), nil, q)
}

// SDNHostReport reports what the host's agent applied (POST
// /v1/sdn/hosts/{name}/report) and returns the host's state.
func (c *Client) SDNHostReport(ctx context.Context, name string, r SDNReport, w *WriteOptions) (*SDNHostState, *Meta, error) {
	return writeOne[SDNHostState](ctx, c, http.MethodPost, sdnItem("hosts", name, "report"), r, w)
}

// SDNApply compiles the intent and starts a rollout of the new version
// to every host, or with DryRun only says what it would change (POST
// /v1/sdn/apply).
func (c *Client) SDNApply(ctx context.Context, req SDNApplyRequest, w *WriteOptions) (*SDNApplyResult, *Meta, error) {
	return writeOne[SDNApplyResult](ctx, c, http.MethodPost, sdnPath+"/apply", req, w)
}

// SDNRolloutList lists the rollouts, newest first (GET /v1/sdn/rollouts).
func (c *Client) SDNRolloutList(ctx context.Context, q *QueryOptions) ([]SDNRollout, *Meta, error) {
	return getList[SDNRollout](ctx, c, sdnPath+"/rollouts", "rollouts", nil, q)
}

// SDNRolloutGet reads a rollout (GET /v1/sdn/rollouts/{id}).
func (c *Client) SDNRolloutGet(ctx context.Context, id string, q *QueryOptions) (*SDNRollout, *Meta, error) {
	return getOne[SDNRollout](ctx, c, sdnItem("rollouts", id), nil, q)
}

// SDNRolloutAbort aborts a preparing rollout, sending every host back to
// its previous version (POST /v1/sdn/rollouts/{id}/abort). An empty
// reason is the server's.
func (c *Client) SDNRolloutAbort(ctx context.Context, id, reason string, w *WriteOptions) (*SDNRollout, *Meta, error) {
	body := struct {
		Reason string `json:"reason,omitempty"`
	}{reason}
	return writeOne[SDNRollout](ctx, c, http.MethodPost, sdnItem("rollouts", id, "abort"), body, w)
}

// SDNStatus reads the state of the network and of every host (GET
// /v1/sdn/status).
func (c *Client) SDNStatus(ctx context.Context, q *QueryOptions) (*SDNStatus, *Meta, error) {
	return getOne[SDNStatus](ctx, c, sdnPath+"/status", nil, q)
}

// SDNRolloutAbortedError is the error WaitSDNRollout returns for a rollout
// that aborted.
type SDNRolloutAbortedError struct {
	Rollout *SDNRollout
}

// Error says which rollout aborted and why, on one line.
func (e *SDNRolloutAbortedError) Error() string {
	msg := "rollout " + e.Rollout.ID + " of version " + strconv.FormatUint(e.Rollout.Version, 10) + " aborted"
	if e.Rollout.Reason != "" {
		msg += ": " + oneLine(e.Rollout.Reason)
	}
	return msg + "; every host was sent back to its previous version"
}

// rolloutWait is the wait of each blocking read WaitSDNRollout makes.
const rolloutWait = 30 * time.Second

// WaitSDNRollout follows a rollout with blocking reads until it commits or
// aborts, calling progress (when not nil) with the rollout as first read
// and after every change. It returns the final rollout; one that aborted
// comes with an *SDNRolloutAbortedError. It returns early, with ctx's
// error, when ctx is done.
func (c *Client) WaitSDNRollout(ctx context.Context, id string, progress func(*SDNRollout)) (*SDNRollout, error) {
	var index uint64
	var last *SDNRollout
	for {
		var q *QueryOptions
		if index > 0 {
			q = &QueryOptions{Index: index, Wait: rolloutWait}
		}
		r, m, err := c.SDNRolloutGet(ctx, id, q)
		if err != nil {
			return nil, err
		}
		if progress != nil && (last == nil || rolloutChanged(last, r)) {
			progress(r)
		}
		last = r
		if r.Done() {
			if r.Phase == RolloutAborted {
				return r, &SDNRolloutAbortedError{Rollout: r}
			}
			return r, nil
		}
		if m.Index == 0 {
			// No index to block on (not a Moxxie server?): poll.
			if err := sleep(ctx, time.Second); err != nil {
				return nil, err
			}
		}
		index = m.Index
	}
}

// rolloutChanged reports whether a rollout read again differs from the
// last read in anything a progress report shows.
func rolloutChanged(old, r *SDNRollout) bool {
	return old.ModifyIndex != r.ModifyIndex || old.Phase != r.Phase || old.Reason != r.Reason ||
		strings.Join(old.Prepared, ",") != strings.Join(r.Prepared, ",")
}
