package api

import (
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// sdnLeader is a leader with an agent token, whose secret agent holds.
type sdnLeader struct {
	*testServer
	agent string
}

func newSDNLeader(t *testing.T) *sdnLeader {
	t.Helper()
	ts := newLeader(t)
	return &sdnLeader{testServer: ts, agent: ts.createToken(auth.RoleAgent, "").SecretID}
}

// enrol enrols a host as its agent would.
func (ts *sdnLeader) enrol(name, body string) {
	ts.t.Helper()
	rec := ts.do("PUT", "/v1/sdn/hosts/"+name, body, "Authorization", "Bearer "+ts.agent)
	wantStatus(ts.t, rec, http.StatusOK)
}

// report reports a version as the host's agent.
func (ts *sdnLeader) report(name string, version uint64, state, errMsg string) fsm.SDNHostState {
	ts.t.Helper()
	body := `{"version":` + strconv.FormatUint(version, 10) + `,"state":"` + state + `","error":"` + errMsg + `","actions":3}`
	rec := ts.do("POST", "/v1/sdn/hosts/"+name+"/report", body, "Authorization", "Bearer "+ts.agent)
	var st fsm.SDNHostState
	mustJSON(ts.t, wantStatus(ts.t, rec, http.StatusOK), &st)
	return st
}

func TestSDN_ZoneCRUD(t *testing.T) {
	ts := newSDNLeader(t)
	var z fsm.SDNZone
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"lan","type":"simple","mtu":9000}`), http.StatusCreated), &z)
	if z.ID != "lan" || z.Type != "simple" || z.MTU != 9000 || z.CreateIndex == 0 || z.CreatedAt == 0 {
		t.Fatalf("zone %+v", z)
	}
	wantError(t, ts.do("POST", "/v1/sdn/zones", `{"id":"lan","type":"simple"}`), http.StatusConflict, CodeConflict, "id")

	// Bad input is a 400 naming the field, and proposes nothing.
	applies := ts.b.applies.Load()
	for _, c := range []struct{ body, field string }{
		{`{"id":"lan2","type":"ovs"}`, "type"},
		{`{"id":"lan2"}`, "type"},
		{`{"id":"9lan","type":"simple"}`, "id"},
		{`{"id":"toolongid","type":"simple"}`, "id"},
		{`{"type":"simple"}`, "id"},
		{`{"id":"lan2","type":"simple","mtu":100}`, "mtu"},
		{`{"id":"lan2","type":"simple","port":4789}`, "port"},
		{`{"id":"lan2","type":"simple","pool":"p"}`, "pool"},
		{`{"id":"lan2","type":"vxlan","nodes":["pve1","pve1"]}`, "nodes"},
		{`{"id":"lan2","type":"simple","colour":"blue"}`, "colour"},
		{`{"id":"lan2","type":"simple","mtu":"big"}`, "mtu"},
	} {
		wantError(t, ts.do("POST", "/v1/sdn/zones", c.body), http.StatusBadRequest, CodeInvalidRequest, c.field)
	}
	if n := ts.b.applies.Load(); n != applies {
		t.Fatalf("%d commands proposed for invalid requests", n-applies)
	}
	// A pool must exist.
	wantError(t, ts.do("POST", "/v1/sdn/zones", `{"id":"ovl","type":"vxlan","pool":"nope"}`), http.StatusNotFound, CodeNotFound, "pool")

	// PUT replaces; the body's id must be the path's or empty.
	z = fsm.SDNZone{}
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/sdn/zones/lan", `{"type":"simple"}`), http.StatusOK), &z)
	if z.ID != "lan" || z.MTU != 0 {
		t.Fatalf("replaced zone %+v", z)
	}
	wantError(t, ts.do("PUT", "/v1/sdn/zones/lan", `{"id":"wan","type":"simple"}`), http.StatusBadRequest, CodeInvalidRequest, "id")
	wantError(t, ts.do("PUT", "/v1/sdn/zones/wan", `{"type":"simple"}`), http.StatusNotFound, CodeNotFound, "id")

	var list SDNZoneList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/zones", ""), http.StatusOK), &list)
	if len(list.Zones) != 1 || list.Zones[0].ID != "lan" {
		t.Fatalf("zones %+v", list)
	}
	wantStatus(t, ts.do("GET", "/v1/sdn/zones/lan", ""), http.StatusOK)
	wantError(t, ts.do("GET", "/v1/sdn/zones/wan", ""), http.StatusNotFound, CodeNotFound, "id")

	// A zone with vnets stays.
	wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"lan"}`), http.StatusCreated)
	wantError(t, ts.do("DELETE", "/v1/sdn/zones/lan", ""), http.StatusConflict, CodeConflict, "id")
	wantError(t, ts.do("PUT", "/v1/sdn/zones/lan", `{"type":"vlan"}`), http.StatusConflict, CodeConflict, "type")
	wantStatus(t, ts.do("DELETE", "/v1/sdn/vnets/web", ""), http.StatusOK)
	z = fsm.SDNZone{}
	mustJSON(t, wantStatus(t, ts.do("DELETE", "/v1/sdn/zones/lan", ""), http.StatusOK), &z)
	if z.ID != "lan" {
		t.Fatalf("deleted %+v", z)
	}
	wantError(t, ts.do("DELETE", "/v1/sdn/zones/lan", ""), http.StatusNotFound, CodeNotFound, "id")
	list = SDNZoneList{}
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/zones", ""), http.StatusOK), &list)
	if list.Zones == nil || len(list.Zones) != 0 {
		t.Fatalf("zones after delete %s", ts.do("GET", "/v1/sdn/zones", "").Body)
	}
}

func TestSDN_VnetTagsFromPool(t *testing.T) {
	ts := newSDNLeader(t)
	var pool struct{ ID string }
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/ipam/vni-pools", `{"name":"ovl","ranges":[{"first":5000,"last":5001}]}`), http.StatusCreated), &pool)
	// The pool is named or given by ID; the zone keeps its ID.
	var z fsm.SDNZone
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"ovl","type":"vxlan","pool":"ovl"}`), http.StatusCreated), &z)
	if z.Pool != pool.ID {
		t.Fatalf("zone pool %q, want %q", z.Pool, pool.ID)
	}
	wantError(t, ts.do("POST", "/v1/sdn/zones", `{"id":"vl2","type":"vlan","pool":"ovl"}`), http.StatusNotFound, CodeNotFound, "pool")
	wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"lan","type":"simple"}`), http.StatusCreated)
	wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"vl","type":"vlan"}`), http.StatusCreated)

	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"nope"}`), http.StatusNotFound, CodeNotFound, "zone")
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web"}`), http.StatusBadRequest, CodeInvalidRequest, "zone")
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"lan","tag":5}`), http.StatusBadRequest, CodeInvalidRequest, "tag")
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"vl"}`), http.StatusBadRequest, CodeInvalidRequest, "tag")
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"vl","tag":4095}`), http.StatusBadRequest, CodeInvalidRequest, "tag")
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"ovl","tenant":"Acme"}`), http.StatusBadRequest, CodeInvalidRequest, "tenant")

	// Without a tag, a vnet takes the next free VNI of the zone's pool,
	// as an allocation stamped by the leader. A retry with the same key
	// answers the first result.
	var v, again fsm.SDNVnet
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"ovl","tenant":"acme"}`, "Idempotency-Key", "v1"), http.StatusCreated), &v)
	if v.Tag != 5000 || v.AllocationID == "" || v.Tenant != "acme" {
		t.Fatalf("vnet %+v", v)
	}
	rec := ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"ovl","tenant":"acme"}`, "Idempotency-Key", "v1")
	mustJSON(t, wantStatus(t, rec, http.StatusCreated), &again)
	if again.AllocationID != v.AllocationID || again.Tag != 5000 || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %+v (replayed %q)", again, rec.Header().Get("Idempotent-Replayed"))
	}
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"ovl","tenant":"acme"}`, "Idempotency-Key", "v1x"), http.StatusConflict, CodeConflict, "id")
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"db","zone":"ovl"}`, "Idempotency-Key", "v1"), http.StatusUnprocessableEntity, CodeIdempotencyMismatch, "Idempotency-Key")
	// The VNI is unique across vxlan zones.
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"db","zone":"ovl","tag":5000}`), http.StatusConflict, CodeConflict, "tag")
	wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"db","zone":"ovl"}`), http.StatusCreated)
	wantError(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"app","zone":"ovl"}`), http.StatusConflict, CodeExhausted, "tag")

	var list SDNVnetList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/vnets", ""), http.StatusOK), &list)
	if len(list.Vnets) != 2 || list.Vnets[0].ID != "db" || list.Vnets[0].Tag != 5001 {
		t.Fatalf("vnets %+v", list.Vnets)
	}
	// The IPAM shows the VNI held by the vnet.
	body := wantStatus(t, ts.do("GET", "/v1/ipam/vnis", ""), http.StatusOK)
	if !strings.Contains(string(body), `"sdn:vnet/web"`) {
		t.Fatalf("vnis %s", body)
	}
	// Deleting a vnet releases its VNI.
	wantStatus(t, ts.do("DELETE", "/v1/sdn/vnets/web", ""), http.StatusOK)
	v = fsm.SDNVnet{}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"app","zone":"ovl"}`), http.StatusCreated), &v)
	if v.Tag != 5000 {
		t.Fatalf("vnet after release %+v", v)
	}
	// The zone's pool cannot go while the zone names it, even once it
	// holds no VNIs; without the zone it can.
	wantStatus(t, ts.do("DELETE", "/v1/sdn/vnets/app", ""), http.StatusOK)
	wantStatus(t, ts.do("DELETE", "/v1/sdn/vnets/db", ""), http.StatusOK)
	wantError(t, ts.do("DELETE", "/v1/ipam/vni-pools/ovl", ""), http.StatusConflict, CodeConflict, "id")
	wantStatus(t, ts.do("DELETE", "/v1/sdn/zones/ovl", ""), http.StatusOK)
	wantStatus(t, ts.do("DELETE", "/v1/ipam/vni-pools/ovl", ""), http.StatusOK)
	// A VNI pool may not take in the tag of a vnet of a zone without a
	// pool, when created or changed.
	wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"free","type":"vxlan"}`), http.StatusCreated)
	wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"legacy","zone":"free","tag":7000}`), http.StatusCreated)
	wantError(t, ts.do("POST", "/v1/ipam/vni-pools", `{"name":"p","ranges":[{"first":6990,"last":7010}]}`), http.StatusConflict, CodeConflict, "ranges")
	wantStatus(t, ts.do("POST", "/v1/ipam/vni-pools", `{"name":"p","ranges":[{"first":6990,"last":6999}]}`), http.StatusCreated)
	wantError(t, ts.do("PATCH", "/v1/ipam/vni-pools/p", `{"ranges":[{"first":6990,"last":7010}]}`), http.StatusConflict, CodeConflict, "ranges")
}

func TestSDN_SubnetsAndAllows(t *testing.T) {
	ts := newSDNLeader(t)
	var p struct{ ID string }
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/ipam/prefixes", `{"prefix":"10.1.0.0/24"}`), http.StatusCreated), &p)
	wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"lan","type":"simple"}`), http.StatusCreated)
	wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"lan","tenant":"acme"}`), http.StatusCreated)

	for _, c := range []struct{ body, field string }{
		{`{"id":"s1","vnet":"web"}`, "cidr"},
		{`{"id":"S1","vnet":"web","prefix_id":"` + p.ID + `"}`, "id"},
		{`{"id":"s1","vnet":"web","prefix_id":"` + p.ID + `","gateway":"10.1.0.0/24"}`, "gateway"},
		{`{"id":"s1","vnet":"web","prefix_id":"` + p.ID + `","cidr":"10.1.0.0/24","gateway":"10.1.0.255"}`, "gateway"},
		{`{"id":"s1","vnet":"web","prefix_id":"` + p.ID + `","snat":true}`, "snat"},
	} {
		wantError(t, ts.do("POST", "/v1/sdn/subnets", c.body), http.StatusBadRequest, CodeInvalidRequest, c.field)
	}
	wantError(t, ts.do("POST", "/v1/sdn/subnets", `{"id":"s1","vnet":"nope","prefix_id":"`+p.ID+`"}`), http.StatusNotFound, CodeNotFound, "vnet")
	wantError(t, ts.do("POST", "/v1/sdn/subnets", `{"id":"s1","vnet":"web","prefix_id":"nope"}`), http.StatusNotFound, CodeNotFound, "prefix_id")
	wantError(t, ts.do("POST", "/v1/sdn/subnets", `{"id":"s1","vnet":"web","prefix_id":"`+p.ID+`","cidr":"10.2.0.0/24"}`), http.StatusBadRequest, CodeInvalidRequest, "cidr")

	var s fsm.SDNSubnet
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/subnets", `{"id":"s1","vnet":"web","prefix_id":"`+p.ID+`","gateway":"10.1.0.1","snat":true}`), http.StatusCreated), &s)
	if s.CIDR != "10.1.0.0/24" || s.Gateway != "10.1.0.1" || !s.SNAT {
		t.Fatalf("subnet %+v", s)
	}
	wantError(t, ts.do("DELETE", "/v1/sdn/vnets/web", ""), http.StatusConflict, CodeConflict, "id")
	s = fsm.SDNSubnet{}
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/sdn/subnets/s1", `{"vnet":"web","prefix_id":"`+p.ID+`"}`), http.StatusOK), &s)
	if s.Gateway != "" || s.SNAT || s.CIDR != "10.1.0.0/24" {
		t.Fatalf("replaced subnet %+v", s)
	}
	var sl SDNSubnetList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/subnets", ""), http.StatusOK), &sl)
	if len(sl.Subnets) != 1 {
		t.Fatalf("subnets %+v", sl)
	}

	// An allow rule without an ID is named by the server.
	var a fsm.SDNAllow
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/allows", `{"from":"tenant:acme","to":"vnet:db","description":"acme reads the db"}`), http.StatusCreated), &a)
	if a.ID == "" || a.From != "tenant:acme" || a.To != "vnet:db" {
		t.Fatalf("allow %+v", a)
	}
	wantStatus(t, ts.do("GET", "/v1/sdn/allows/"+a.ID, ""), http.StatusOK)
	for _, c := range []struct{ body, field string }{
		{`{"from":"acme","to":"vnet:db"}`, "from"},
		{`{"from":"tenant:acme","to":"vnet:"}`, "to"},
		{`{"from":"tenant:acme","to":"tenant:acme"}`, "to"},
		{`{"from":"tenant:acme"}`, "to"},
	} {
		wantError(t, ts.do("POST", "/v1/sdn/allows", c.body), http.StatusBadRequest, CodeInvalidRequest, c.field)
	}
	wantStatus(t, ts.do("POST", "/v1/sdn/allows", `{"id":"r1","from":"vnet:web","to":"vnet:db"}`), http.StatusCreated)
	wantError(t, ts.do("POST", "/v1/sdn/allows", `{"id":"r1","from":"vnet:web","to":"vnet:db"}`), http.StatusConflict, CodeConflict, "id")
	a = fsm.SDNAllow{}
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/sdn/allows/r1", `{"id":"r1","from":"vnet:db","to":"vnet:web"}`), http.StatusOK), &a)
	if a.From != "vnet:db" {
		t.Fatalf("replaced allow %+v", a)
	}
	var al SDNAllowList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/allows", ""), http.StatusOK), &al)
	if len(al.Allows) != 2 {
		t.Fatalf("allows %+v", al)
	}
	wantStatus(t, ts.do("DELETE", "/v1/sdn/allows/r1", ""), http.StatusOK)
	wantError(t, ts.do("GET", "/v1/sdn/allows/r1", ""), http.StatusNotFound, CodeNotFound, "id")
}

func TestSDN_AgentEnrolsReadsPlanAndReports(t *testing.T) {
	ts := newSDNLeader(t)
	agent := "Bearer " + ts.agent

	// The agent role touches only its own routes; operators do not enrol.
	wantError(t, ts.do("GET", "/v1/sdn/zones", "", "Authorization", agent), http.StatusForbidden, CodeForbidden, "")
	wantError(t, ts.do("POST", "/v1/sdn/apply", "", "Authorization", agent), http.StatusForbidden, CodeForbidden, "")
	op := "Bearer " + ts.createToken(auth.RoleOperator, "").SecretID
	wantError(t, ts.do("PUT", "/v1/sdn/hosts/pve1", `{"address":"192.0.2.1"}`, "Authorization", op), http.StatusForbidden, CodeForbidden, "")
	wantError(t, ts.do("GET", "/v1/sdn/hosts/pve1/plan", "", "Authorization", op), http.StatusForbidden, CodeForbidden, "")

	// A host that has not enrolled has no plan.
	wantError(t, ts.do("GET", "/v1/sdn/hosts/pve1/plan", "", "Authorization", agent), http.StatusNotFound, CodeNotFound, "name")

	for _, c := range []struct{ body, field string }{
		{`{"address":"pve1"}`, "address"},
		{`{}`, "address"},
		{`{"address":"192.0.2.1","uplink":"an-interface-name-too-long"}`, "uplink"},
		{`{"address":"192.0.2.1","mtu":100}`, "mtu"},
		{`{"name":"pve2","address":"192.0.2.1"}`, "name"},
	} {
		wantError(t, ts.do("PUT", "/v1/sdn/hosts/pve1", c.body, "Authorization", agent), http.StatusBadRequest, CodeInvalidRequest, c.field)
	}
	wantError(t, ts.do("PUT", "/v1/sdn/hosts/-bad", `{"address":"192.0.2.1"}`, "Authorization", agent), http.StatusBadRequest, CodeInvalidRequest, "name")

	var h SDNHostView
	mustJSON(t, wantStatus(t, ts.do("PUT", "/v1/sdn/hosts/pve1", `{"address":"192.0.2.1","uplink":"eth0"}`, "Authorization", agent), http.StatusOK), &h)
	if h.SDNHost == nil || h.Name != "pve1" || h.Uplink != "eth0" || h.State == nil || h.State.Target != 0 {
		t.Fatalf("enrolled %+v", h)
	}
	// Enrolling again is an update; an admin may act as an agent.
	wantStatus(t, ts.do("PUT", "/v1/sdn/hosts/pve1", `{"name":"pve1","address":"192.0.2.1","uplink":"eth0","mtu":9000}`), http.StatusOK)

	var pv fsm.SDNPlanView
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/hosts/pve1/plan", "", "Authorization", agent), http.StatusOK), &pv)
	if pv.Host != "pve1" || pv.Version != 0 || pv.Plan.Links == nil || len(pv.Plan.Links) != 0 {
		t.Fatalf("plan before any apply %+v", pv)
	}

	for _, c := range []struct{ body, field string }{
		{`{"version":1}`, "state"},
		{`{"version":1,"state":"done"}`, "state"},
		{`{"version":1,"state":"failed"}`, "error"},
		{`{"version":1,"state":"applied","actions":-1}`, "actions"},
		{`{"version":-1,"state":"applied"}`, "version"},
	} {
		wantError(t, ts.do("POST", "/v1/sdn/hosts/pve1/report", c.body, "Authorization", agent), http.StatusBadRequest, CodeInvalidRequest, c.field)
	}
	wantError(t, ts.do("POST", "/v1/sdn/hosts/pve9/report", `{"version":0,"state":"applied"}`, "Authorization", agent), http.StatusNotFound, CodeNotFound, "name")
	st := ts.report("pve1", 0, "applied", "")
	if st.State != "applied" || st.Actions != 3 || st.ReportedAt == 0 {
		t.Fatalf("state %+v", st)
	}

	var hl SDNHostList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/hosts", ""), http.StatusOK), &hl)
	if len(hl.Hosts) != 1 || hl.Hosts[0].MTU != 9000 || hl.Hosts[0].State == nil || hl.Hosts[0].State.State != "applied" {
		t.Fatalf("hosts %+v", hl)
	}
	wantError(t, ts.do("GET", "/v1/sdn/hosts/pve9", ""), http.StatusNotFound, CodeNotFound, "name")
	wantStatus(t, ts.do("DELETE", "/v1/sdn/hosts/pve1", ""), http.StatusOK)
	wantError(t, ts.do("DELETE", "/v1/sdn/hosts/pve1", ""), http.StatusNotFound, CodeNotFound, "name")
}

// sdnNetwork sets up two hosts and a simple zone with one vnet.
func sdnNetwork(ts *sdnLeader) {
	ts.t.Helper()
	ts.enrol("pve1", `{"address":"192.0.2.1","uplink":"eth0"}`)
	ts.enrol("pve2", `{"address":"192.0.2.2","uplink":"eth0"}`)
	wantStatus(ts.t, ts.do("POST", "/v1/sdn/zones", `{"id":"lan","type":"simple"}`), http.StatusCreated)
	wantStatus(ts.t, ts.do("POST", "/v1/sdn/vnets", `{"id":"web","zone":"lan"}`), http.StatusCreated)
}

func TestSDN_ApplyRolloutCommits(t *testing.T) {
	ts := newSDNLeader(t)
	wantError(t, ts.do("POST", "/v1/sdn/apply", `{"dry_run":true}`), http.StatusConflict, CodeConflict, "")
	wantError(t, ts.do("POST", "/v1/sdn/apply", ""), http.StatusConflict, CodeConflict, "")
	sdnNetwork(ts)

	for _, c := range []string{`{"timeout":"soon"}`, `{"timeout":"0s"}`, `{"timeout":"500ms"}`, `{"timeout":"11m"}`, `{"timeout":30}`} {
		wantError(t, ts.do("POST", "/v1/sdn/apply", c), http.StatusBadRequest, CodeInvalidRequest, "timeout")
	}
	wantError(t, ts.do("POST", "/v1/sdn/apply", `{"dryrun":true}`), http.StatusBadRequest, CodeInvalidRequest, "dryrun")

	// A dry run shows every host's changes and proposes nothing.
	index := ts.b.fsm.State().LatestIndex()
	var dry SDNApplyResponse
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/apply", `{"dry_run":true}`), http.StatusOK), &dry)
	if ts.b.fsm.State().LatestIndex() != index {
		t.Fatal("a dry run wrote to the store")
	}
	if dry.NoChange || dry.Version != 1 || dry.Rollout != nil || len(dry.Hosts) != 2 {
		t.Fatalf("dry run %+v", dry)
	}
	if h := dry.Hosts[0]; h.Host != "pve1" || h.FromVersion != 0 || h.ToVersion != 1 || len(h.Changes) != 2 ||
		h.Changes[0].Op != "add" || h.Changes[0].Name != "web" {
		t.Fatalf("dry run of pve1 %+v", h)
	}

	// The apply starts a rollout with the leader's deadline.
	var res SDNApplyResponse
	rec := ts.do("POST", "/v1/sdn/apply", `{"timeout":"30s"}`, "Idempotency-Key", "apply-1")
	mustJSON(t, wantStatus(t, rec, http.StatusAccepted), &res)
	r := res.Rollout
	if r == nil || res.Version != 1 || r.Version != 1 || r.Phase != fsm.SDNPhasePreparing || r.ID == "" ||
		strings.Join(r.Hosts, ",") != "pve1,pve2" || len(r.Changes["pve1"]) != 2 {
		t.Fatalf("apply %+v", res)
	}
	if want := fsm.Timestamp(ts.b.Now().Add(30 * time.Second).UnixNano()); r.Deadline != want {
		t.Fatalf("deadline %v, want %v", r.Deadline, want)
	}
	// A retry with the key replays the first rollout.
	var replay SDNApplyResponse
	rec = ts.do("POST", "/v1/sdn/apply", `{"timeout":"30s"}`, "Idempotency-Key", "apply-1")
	mustJSON(t, wantStatus(t, rec, http.StatusAccepted), &replay)
	if replay.Rollout == nil || replay.Rollout.ID != r.ID || rec.Header().Get("Idempotent-Replayed") != "true" {
		t.Fatalf("replay %+v", replay)
	}
	// One rollout at a time, dry runs included.
	wantError(t, ts.do("POST", "/v1/sdn/apply", ""), http.StatusConflict, CodeConflict, "")
	wantError(t, ts.do("POST", "/v1/sdn/apply", `{"dry_run":true}`), http.StatusConflict, CodeConflict, "")
	wantError(t, ts.do("DELETE", "/v1/sdn/hosts/pve1", ""), http.StatusConflict, CodeConflict, "name")

	// The agents see the new plan.
	var pv fsm.SDNPlanView
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/hosts/pve1/plan", "", "Authorization", "Bearer "+ts.agent), http.StatusOK), &pv)
	if pv.Version != 1 || pv.Committed != 0 || pv.RolloutID != r.ID || pv.Phase != fsm.SDNPhasePreparing || len(pv.Plan.Links) != 1 || pv.Plan.Links[0].Name != "web" {
		t.Fatalf("plan %+v", pv)
	}

	// A blocking read of the rollout returns when the last host reports.
	ts.report("pve1", 1, "applied", "")
	idx := ts.do("GET", "/v1/sdn/rollouts/"+r.ID, "").Header().Get("X-Moxxie-Index")
	out, started := blockingGet(ts.testServer, "/v1/sdn/rollouts/"+r.ID+"?index="+idx+"&wait=30s")
	select {
	case <-started:
	case rec := <-out:
		t.Fatalf("returned without blocking: %d %s", rec.Code, rec.Body)
	}
	ts.report("pve2", 1, "applied", "")
	var done fsm.SDNRollout
	mustJSON(t, wantStatus(t, <-out, http.StatusOK), &done)
	if done.Phase != fsm.SDNPhaseCommitted || len(done.Prepared) != 2 || done.DoneAt == 0 {
		t.Fatalf("rollout %+v", done)
	}

	var status SDNStatus
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/status", ""), http.StatusOK), &status)
	if status.Version != 1 || status.Committed != 1 || status.Rollout == nil || status.Rollout.ID != r.ID || len(status.Hosts) != 2 {
		t.Fatalf("status %+v", status)
	}
	if h := status.Hosts[1]; h.Host != "pve2" || !h.Enrolled || h.Committed != 1 || h.Target != 1 || h.Applied != 1 {
		t.Fatalf("status of pve2 %+v", h)
	}

	// Nothing changed since: no rollout, 200.
	res = SDNApplyResponse{}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/apply", "{}"), http.StatusOK), &res)
	if !res.NoChange || res.Version != 1 || res.Rollout != nil {
		t.Fatalf("apply without change %+v", res)
	}
	dry = SDNApplyResponse{}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/apply", `{"dry_run":true}`), http.StatusOK), &dry)
	if !dry.NoChange || dry.Version != 1 || len(dry.Hosts) != 2 || dry.Hosts[0].Changes == nil || len(dry.Hosts[0].Changes) != 0 {
		t.Fatalf("dry run without change %+v", dry)
	}

	var rl SDNRolloutList
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/rollouts", ""), http.StatusOK), &rl)
	if len(rl.Rollouts) != 1 || rl.Rollouts[0].ID != r.ID {
		t.Fatalf("rollouts %+v", rl)
	}
	wantError(t, ts.do("GET", "/v1/sdn/rollouts/nope", ""), http.StatusNotFound, CodeNotFound, "id")
}

func TestSDN_RolloutAborts(t *testing.T) {
	ts := newSDNLeader(t)
	sdnNetwork(ts)
	var res SDNApplyResponse
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/apply", ""), http.StatusAccepted), &res)
	first := res.Rollout

	// A host that fails aborts the rollout and sends every host back.
	ts.report("pve1", 1, "applied", "")
	ts.report("pve2", 1, "failed", "RTNETLINK answers: Operation not permitted")
	var r fsm.SDNRollout
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/rollouts/"+first.ID, ""), http.StatusOK), &r)
	if r.Phase != fsm.SDNPhaseAborted || !strings.Contains(r.Reason, "pve2") || !strings.Contains(r.Reason, "not permitted") {
		t.Fatalf("rollout %+v", r)
	}
	var pv fsm.SDNPlanView
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/hosts/pve1/plan", "", "Authorization", "Bearer "+ts.agent), http.StatusOK), &pv)
	if pv.Version != 0 || len(pv.Plan.Links) != 0 {
		t.Fatalf("plan after abort %+v", pv)
	}
	wantError(t, ts.do("POST", "/v1/sdn/rollouts/"+first.ID+"/abort", ""), http.StatusConflict, CodeConflict, "id")

	// An operator aborts a preparing rollout.
	res = SDNApplyResponse{}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/apply", ""), http.StatusAccepted), &res)
	if res.Version != 2 {
		t.Fatalf("second apply %+v", res)
	}
	wantError(t, ts.do("POST", "/v1/sdn/rollouts/"+res.Rollout.ID+"/abort", `{"reason":7}`), http.StatusBadRequest, CodeInvalidRequest, "reason")
	r = fsm.SDNRollout{}
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sdn/rollouts/"+res.Rollout.ID+"/abort", `{"reason":"maintenance window over"}`), http.StatusOK), &r)
	if r.Phase != fsm.SDNPhaseAborted || r.Reason != "maintenance window over" {
		t.Fatalf("aborted %+v", r)
	}
	wantError(t, ts.do("POST", "/v1/sdn/rollouts/nope/abort", ""), http.StatusNotFound, CodeNotFound, "id")

	var status SDNStatus
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sdn/status", ""), http.StatusOK), &status)
	if status.Version != 2 || status.Committed != 0 || status.Rollout == nil || status.Rollout.ID != res.Rollout.ID {
		t.Fatalf("status %+v", status)
	}
}

func TestSDN_CompileErrorNamesTheField(t *testing.T) {
	ts := newSDNLeader(t)
	// A vlan zone needs every host's uplink.
	ts.enrol("pve1", `{"address":"192.0.2.1"}`)
	wantStatus(t, ts.do("POST", "/v1/sdn/zones", `{"id":"vl","type":"vlan"}`), http.StatusCreated)
	wantStatus(t, ts.do("POST", "/v1/sdn/vnets", `{"id":"db","zone":"vl","tag":120}`), http.StatusCreated)
	index := ts.b.fsm.State().LatestIndex()
	wantError(t, ts.do("POST", "/v1/sdn/apply", `{"dry_run":true}`), http.StatusBadRequest, CodeInvalidRequest, "hosts[pve1].uplink")
	if ts.b.fsm.State().LatestIndex() != index {
		t.Fatal("a dry run wrote to the store")
	}
	wantError(t, ts.do("POST", "/v1/sdn/apply", ""), http.StatusBadRequest, CodeInvalidRequest, "hosts[pve1].uplink")
}

func TestSDN_PlanBlocksUntilAnApply(t *testing.T) {
	ts := newSDNLeader(t)
	sdnNetwork(ts)
	agent := "Bearer " + ts.agent
	rec := ts.do("GET", "/v1/sdn/hosts/pve2/plan", "", "Authorization", agent)
	wantStatus(t, rec, http.StatusOK)
	idx := rec.Header().Get("X-Moxxie-Index")

	started := make(chan struct{})
	var once bool
	ts.srv.watchHook = func() {
		if !once {
			once = true
			close(started)
		}
	}
	out := make(chan *http.Response, 1)
	go func() {
		out <- ts.do("GET", "/v1/sdn/hosts/pve2/plan?index="+idx+"&wait=30s", "", "Authorization", agent).Result()
	}()
	select {
	case <-started:
	case resp := <-out:
		t.Fatalf("returned without blocking: %d", resp.StatusCode)
	}
	// An unrelated write keeps it waiting.
	wantStatus(t, ts.do("PUT", "/v1/cluster/settings/k", `{"value":"v"}`), http.StatusOK)
	select {
	case resp := <-out:
		t.Fatalf("returned on an unrelated write: %d", resp.StatusCode)
	case <-time.After(20 * time.Millisecond):
	}
	wantStatus(t, ts.do("POST", "/v1/sdn/apply", ""), http.StatusAccepted)
	resp := <-out
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", resp.StatusCode)
	}
	if got, _ := strconv.ParseUint(resp.Header.Get("X-Moxxie-Index"), 10, 64); strconv.FormatUint(got, 10) == idx {
		t.Fatalf("index did not move from %s", idx)
	}
}
