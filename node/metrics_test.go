package node

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/miekg/dns"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/quota"
	"github.com/moxxie/moxxie/sdn"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/moxxie/moxxie/telemetry/promtest"
	"github.com/prometheus/client_golang/prometheus"
)

// metricsState builds a store by applying commands to a bare FSM, as
// raft would.
type metricsState struct {
	tb    testing.TB
	f     *fsm.FSM
	index uint64
	now   time.Time
}

func newMetricsState(tb testing.TB) *metricsState {
	return &metricsState{tb: tb, f: fsm.New(), now: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
}

func (x *metricsState) apply(cmd fsm.Command) any {
	x.tb.Helper()
	m := cmd.Meta()
	if m.Now == 0 {
		m.Now = x.now.UnixNano()
	}
	if m.Actor == "" {
		m.Actor = "test"
	}
	buf, err := fsm.Encode(cmd)
	if err != nil {
		x.tb.Fatal(err)
	}
	x.index++
	r := x.f.Apply(&raft.Log{Index: x.index, Type: raft.LogCommand, Data: buf}).(*fsm.Result)
	if r.Err != nil {
		x.tb.Fatalf("%s: %v", cmd.Type(), r.Err)
	}
	return r.Value
}

// fill writes prefixes /24 prefixes of the tenant acme with perPrefix
// addresses each, guests guests on 8 nodes (gone of them gone), a VLAN
// pool with 10 of its 100 IDs taken, a tenant quota and an enrolled SDN
// host.
func (x *metricsState) fill(prefixes, perPrefix, guests, gone int) {
	x.apply(&fsm.TenantCreateRequest{Tenant: fsm.Tenant{ID: "acme", Quota: quota.Limits{quota.IPv4: 1 << 40, quota.Prefixes: 100000}}})
	x.apply(&fsm.ProjectCreateRequest{Project: fsm.Project{ID: "acme/web", Tenant: "acme", Name: "web", Quota: quota.Limits{quota.IPv4: 1 << 40}}})
	for i := range prefixes {
		id := fmt.Sprintf("p-%04d", i)
		x.apply(&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: id, Prefix: fmt.Sprintf("10.%d.%d.0/24", i/256, i%256), Tenant: "acme"}})
		if perPrefix > 0 {
			ids := make([]string, perPrefix)
			for j := range ids {
				ids[j] = fmt.Sprintf("%s-a%d", id, j)
			}
			x.apply(&fsm.AddressAllocateRequest{PrefixID: id, Count: perPrefix, IDs: ids, Tenant: "acme", Project: "web"})
		}
	}
	x.apply(&fsm.PoolCreateRequest{Pool: fsm.Pool{ID: "vg1", Kind: fsm.PoolVLAN, Name: "dc1", Ranges: vlanRange(100, 199)}})
	for i := range 10 {
		x.apply(&fsm.IDAllocateRequest{Kind: fsm.PoolVLAN, PoolID: "vg1", Allocation: fsm.IDAllocation{ID: fmt.Sprintf("v%d", i)}})
	}
	sync := &fsm.InventorySyncRequest{}
	for n := range 8 {
		sync.Nodes = append(sync.Nodes, fsm.InvNode{Name: fmt.Sprintf("pve%d", n), Status: "online"})
		sync.Storage = append(sync.Storage, fsm.InvStorage{ID: fmt.Sprintf("pve%d/local", n), Node: fmt.Sprintf("pve%d", n), Storage: "local", Type: "dir", Status: "available"})
	}
	for g := range guests {
		sync.Guests = append(sync.Guests, fsm.InvGuest{VMID: 100 + g, Kind: fsm.GuestKindVM, Node: fmt.Sprintf("pve%d", g%8), Name: fmt.Sprintf("vm%d", g), Status: "running"})
	}
	for start := 0; start < len(sync.Guests); start += 1000 {
		part := &fsm.InventorySyncRequest{Guests: sync.Guests[start:min(start+1000, len(sync.Guests))]}
		if start == 0 {
			part.Nodes, part.Storage = sync.Nodes, sync.Storage
		}
		x.apply(part)
	}
	if gone > 0 {
		g := &fsm.InventorySyncRequest{}
		for i := range gone {
			g.GoneGuests = append(g.GoneGuests, 100+i)
		}
		x.apply(g)
	}
	x.apply(&fsm.SDNHostPutRequest{Host: sdn.Host{Name: "pve0", Address: "192.0.2.1"}})
	x.apply(&fsm.AuditRecordRequest{WriteMeta: fsm.WriteMeta{Audit: &fsm.AuditInfo{Action: "POST /v1/test", Object: "/v1/test"}}, Result: "ok"})
}

func vlanRange(lo, hi int) []ipam.IDRange { return []ipam.IDRange{{First: lo, Last: hi}} }

// collect registers c in a new registry and returns the values of name.
func collect(t testing.TB, c prometheus.Collector, name string) map[string]float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	return promtest.Values(t, reg, name)
}

func TestMetrics_StateCollectorValues(t *testing.T) {
	x := newMetricsState(t)
	x.fill(3, 5, 20, 4)
	now := x.now.Add(90 * time.Second)
	c := stateCollector(x.f.State, func() time.Time { return now }, slog.New(slog.DiscardHandler))
	want := map[string]map[string]float64{
		"moxxie_ipam_prefix_utilization_ratio": {
			"prefix=10.0.0.0/24,prefix_id=p-0000,vrf=global": 5.0 / 254,
			"prefix=10.0.1.0/24,prefix_id=p-0001,vrf=global": 5.0 / 254,
			"prefix=10.0.2.0/24,prefix_id=p-0002,vrf=global": 5.0 / 254,
		},
		"moxxie_ipam_pool_utilization_ratio": {"kind=vlan,pool=dc1,pool_id=vg1": 0.1},
		"moxxie_ipam_addresses":              {"status=active": 15, "status=reserved": 0, "status=deprecated": 0, "status=quarantined": 0},
		"moxxie_quota_limit": {
			"resource=ipv4_addresses,scope=acme":     1 << 40,
			"resource=prefixes,scope=acme":           100000,
			"resource=ipv4_addresses,scope=acme/web": 1 << 40,
		},
		"moxxie_quota_usage": {
			"resource=ipv4_addresses,scope=acme":     15,
			"resource=prefixes,scope=acme":           3,
			"resource=ipv4_addresses,scope=acme/web": 15,
		},
		"moxxie_inventory_sync_lag_seconds": {"": 90},
		"moxxie_inventory_objects": {
			"kind=node,state=present": 8, "kind=node,state=gone": 0,
			"kind=guest,state=present": 16, "kind=guest,state=gone": 4,
			"kind=storage,state=present": 8, "kind=storage,state=gone": 0,
		},
		"moxxie_inventory_stale":         {"": 0},
		"moxxie_sdn_committed_version":   {"": 0},
		"moxxie_sdn_hosts":               {"state=applied": 1, "state=failed": 0, "state=pending": 0},
		"moxxie_sdn_rollouts_total":      {"phase=committed": 0, "phase=aborted": 0},
		"moxxie_sdn_rollout_in_progress": {"": 0},
		"moxxie_audit_chain_length":      {"": 1},
	}
	for name, series := range want {
		got := collect(t, c, name)
		if len(got) != len(series) {
			t.Errorf("%s: %v, want %v", name, got, series)
			continue
		}
		for labels, v := range series {
			if g, ok := got[labels]; !ok || g != v {
				t.Errorf("%s{%s} = %v (present %v), want %v", name, labels, g, ok, v)
			}
		}
	}
}

func TestMetrics_SDNRolloutPhases(t *testing.T) {
	x := newMetricsState(t)
	x.apply(&fsm.SDNZonePutRequest{Zone: sdn.Zone{ID: "loc", Type: sdn.ZoneSimple}, Create: true})
	x.apply(&fsm.SDNVnetPutRequest{Vnet: sdn.Vnet{ID: "lan", Zone: "loc"}, Create: true})
	x.apply(&fsm.SDNHostPutRequest{Host: sdn.Host{Name: "pve1", Address: "192.0.2.1"}})
	x.apply(&fsm.SDNApplyRequest{RolloutID: "r1"})
	c := stateCollector(x.f.State, time.Now, slog.New(slog.DiscardHandler))
	if got := collect(t, c, "moxxie_sdn_hosts"); got["state=pending"] != 1 {
		t.Fatalf("hosts while preparing %v", got)
	}
	if got := collect(t, c, "moxxie_sdn_rollout_in_progress"); got[""] != 1 {
		t.Fatalf("in progress %v", got)
	}
	x.apply(&fsm.SDNReportRequest{Host: "pve1", Version: 1, State: fsm.SDNStateApplied})
	if got := collect(t, c, "moxxie_sdn_committed_version"); got[""] != 1 {
		t.Fatalf("committed version %v", got)
	}
	if got := collect(t, c, "moxxie_sdn_rollouts_total"); got["phase=committed"] != 1 || got["phase=aborted"] != 0 {
		t.Fatalf("rollouts %v", got)
	}
	if got := collect(t, c, "moxxie_sdn_hosts"); got["state=applied"] != 1 {
		t.Fatalf("hosts after commit %v", got)
	}
}

// BenchmarkMetrics10kGuests1kPrefixes renders the whole /metrics of a
// server holding 10,000 guests and 1,000 prefixes of 10 addresses each:
// the state collector, raft, and the registry's encoding.
func BenchmarkMetrics10kGuests1kPrefixes(b *testing.B) {
	x := newMetricsState(b)
	x.fill(1000, 10, 10000, 100)
	reg := telemetry.NewRegistry()
	reg.MustRegister(stateCollector(x.f.State, time.Now, slog.New(slog.DiscardHandler)))
	h := telemetry.Handler(reg)
	var size int
	b.ReportAllocs()
	for b.Loop() {
		rec := &discardWriter{h: http.Header{}}
		h.ServeHTTP(rec, httptestRequest())
		if rec.status != 0 && rec.status != http.StatusOK {
			b.Fatalf("status %d", rec.status)
		}
		size = rec.n
	}
	b.ReportMetric(float64(size), "bytes/scrape")
}

// discardWriter counts what a handler writes.
type discardWriter struct {
	h      http.Header
	status int
	n      int
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(s int)   { w.status = s }
func (w *discardWriter) Write(p []byte) (int, error) {
	w.n += len(p)
	return len(p), nil
}

func httptestRequest() *http.Request {
	r, _ := http.NewRequest(http.MethodGet, "/metrics", nil)
	return r
}

// scrape reads url (with token when not empty) through s's client.
func scrape(t *testing.T, s *Server, url, token string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := clientFor(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// families returns the metric families a scrape declares (# TYPE lines).
func families(t *testing.T, body []byte) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, line := range bytes.Split(body, []byte("\n")) {
		if f := strings.Fields(string(line)); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			out[f[2]] = true
		}
	}
	if len(out) == 0 {
		t.Fatalf("no metric families in %q", body)
	}
	return out
}

// contractMetrics are the names the SLO rules, the dashboard and the e2e
// test rely on, which a server with DNS and a platform serves from its
// first scrape.
var contractMetrics = []string{
	"moxxie_build_info",
	"moxxie_raft_state", "moxxie_raft_leader", "moxxie_raft_term", "moxxie_raft_commit_index",
	"moxxie_raft_applied_index", "moxxie_raft_last_contact_seconds", "moxxie_raft_apply_duration_seconds",
	"moxxie_raft_snapshots_total", "moxxie_raft_peers",
	"moxxie_fsm_applies_total", "moxxie_fsm_apply_errors_total",
	"moxxie_api_requests_total", "moxxie_api_request_duration_seconds",
	"moxxie_ipam_prefix_utilization_ratio", "moxxie_ipam_pool_utilization_ratio", "moxxie_ipam_addresses",
	"moxxie_quota_usage", "moxxie_quota_limit",
	"moxxie_inventory_sync_lag_seconds", "moxxie_inventory_objects",
	"moxxie_provider_requests_total", "moxxie_provider_request_duration_seconds",
	"moxxie_sdn_committed_version", "moxxie_sdn_hosts", "moxxie_sdn_rollouts_total",
	"moxxie_dns_queries_total",
	"moxxie_audit_chain_length", "moxxie_tls_certificate_expiry_timestamp_seconds",
	"go_memstats_heap_alloc_bytes", "go_gc_gomemlimit_bytes",
}

// TestMetrics_ServerScrape scrapes a real server with DNS, a simulated
// Proxmox and the plain metrics listener: /v1/metrics needs a token with
// metrics:read, the plain listener serves only /metrics, both serve the
// same families, every contract name is there, promtool finds nothing.
func TestMetrics_ServerScrape(t *testing.T) {
	_, pc := startTestSim(t, pvesim.Config{})
	s := TestServer(t, func(c *Config) {
		TestDNS(c)
		c.MetricsAddress = "127.0.0.1:0"
		c.Proxmox = pc
	})
	token := bootstrapToken(t, s)
	for _, cmd := range []fsm.Command{
		&fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: "metrics.test", TTL: 60}},
		&fsm.TenantCreateRequest{Tenant: fsm.Tenant{ID: "acme", Quota: quota.Limits{quota.Prefixes: 10}}},
		&fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p1", Prefix: "10.9.0.0/24", Tenant: "acme"}},
		&fsm.PoolCreateRequest{Pool: fsm.Pool{ID: "vg1", Kind: fsm.PoolVLAN, Name: "dc1", Ranges: vlanRange(100, 199)}},
	} {
		if _, err := s.raftApply(cmd); err != nil {
			t.Fatalf("%s: %v", cmd.Type(), err)
		}
	}
	WaitForResult(t, 30*time.Second, func() error {
		_, st, _ := s.State().InventoryState(nil)
		if st.LastSync == 0 {
			return fmt.Errorf("no inventory sync yet")
		}
		return nil
	})
	// A DNS query, answered from the zone.
	m := new(dns.Msg)
	m.SetQuestion("metrics.test.", dns.TypeSOA)
	WaitForResult(t, 10*time.Second, func() error {
		r, err := dns.Exchange(m, s.DNSAddr())
		if err != nil || r.Rcode != dns.RcodeSuccess || len(r.Answer) == 0 {
			return fmt.Errorf("SOA: %v %v", r, err)
		}
		return nil
	})

	if code, _ := scrape(t, s, s.URL()+"/v1/metrics", ""); code != http.StatusUnauthorized {
		t.Fatalf("/v1/metrics without a token: %d", code)
	}
	code, api := scrape(t, s, s.URL()+"/v1/metrics", token)
	if code != http.StatusOK {
		t.Fatalf("/v1/metrics: %d %s", code, api)
	}
	promtest.Check(t, api)
	got := families(t, api)
	for _, name := range contractMetrics {
		if !got[name] {
			t.Errorf("%s missing from /v1/metrics", name)
		}
	}
	for _, want := range []string{
		`moxxie_raft_state{state="leader"} 1`,
		"moxxie_raft_leader 1",
		"moxxie_raft_peers 1",
		`moxxie_fsm_applies_total{type="acl_bootstrap"} 1`,
		`moxxie_provider_requests_total{op="inventory",result="ok"}`,
		`moxxie_dns_queries_total{qtype="SOA",rcode="NOERROR"}`,
		`moxxie_tls_certificate_expiry_timestamp_seconds{name="` + s.ID() + `",role="server"}`,
	} {
		if !strings.Contains(string(api), want) {
			t.Errorf("no %s in /v1/metrics", want)
		}
	}

	if s.MetricsAddr() == "" {
		t.Fatal("no metrics address")
	}
	plain := http.Client{Timeout: 5 * time.Second}
	resp, err := plain.Get("http://" + s.MetricsAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("plain /metrics: %d", resp.StatusCode)
	}
	promtest.Check(t, body)
	if pf := families(t, body); len(pf) != len(got) {
		t.Errorf("the plain listener serves %d families, the API %d", len(pf), len(got))
	}
	for _, path := range []string{"/v1/status", "/v1/metrics", "/"} {
		resp, err := plain.Get("http://" + s.MetricsAddr() + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("plain %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

// TestMetrics_RaftAndApplies checks a three-server cluster's raft metrics
// and the counters of writes: each server reports its own registry.
func TestMetrics_RaftAndApplies(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	for i := range 3 {
		if r := put(t, leader, token, fmt.Sprintf("k%d", i), "v"); r.status != http.StatusOK {
			t.Fatalf("put: %d %s", r.status, r.body)
		}
	}
	WaitForApplied(t, leader.raft.AppliedIndex(), servers...)
	for _, s := range servers {
		reg := s.MetricsRegistry()
		isLeader := s == leader
		if v := promtest.Value(t, reg, "moxxie_raft_leader", ""); v != telemetry.Bool(isLeader) {
			t.Errorf("%s: leader %v", s.ID(), v)
		}
		if v := promtest.Value(t, reg, "moxxie_raft_peers", ""); v != 3 {
			t.Errorf("%s: peers %v", s.ID(), v)
		}
		if v := promtest.Value(t, reg, "moxxie_raft_term", ""); v < 1 {
			t.Errorf("%s: term %v", s.ID(), v)
		}
		if v := promtest.Value(t, reg, "moxxie_raft_applied_index", ""); v < float64(leader.raft.AppliedIndex()) {
			t.Errorf("%s: applied %v", s.ID(), v)
		}
		if v := promtest.Value(t, reg, "moxxie_fsm_applies_total", "type=setting_upsert"); v != 3 {
			t.Errorf("%s: setting_upsert applies %v", s.ID(), v)
		}
		if !isLeader {
			if v := promtest.Value(t, reg, "moxxie_raft_last_contact_seconds", ""); v <= 0 || v > 10 {
				t.Errorf("%s: last contact %v", s.ID(), v)
			}
		}
		// A write refused by the FSM counts as an error of its type.
		applies := promtest.Values(t, reg, "moxxie_raft_apply_duration_seconds")[""]
		if isLeader && applies < 3 {
			t.Errorf("leader timed %v applies", applies)
		}
		if !isLeader && applies != 0 {
			t.Errorf("follower %s timed %v applies", s.ID(), applies)
		}
	}
	if _, err := leader.raftApply(&fsm.SettingDeleteRequest{Key: "nope"}); err == nil {
		t.Fatal("deleting a missing setting succeeded")
	}
	if v := promtest.Value(t, leader.MetricsRegistry(), "moxxie_fsm_apply_errors_total", "type=setting_delete"); v != 1 {
		t.Errorf("setting_delete errors %v", v)
	}

	// A snapshot counts.
	before := promtest.Value(t, leader.MetricsRegistry(), "moxxie_raft_snapshots_total", "")
	if err := leader.raft.Snapshot().Error(); err != nil {
		t.Fatal(err)
	}
	if after := promtest.Value(t, leader.MetricsRegistry(), "moxxie_raft_snapshots_total", ""); after != before+1 {
		t.Errorf("snapshots %v, then %v", before, after)
	}
}

func TestConfig_MetricsAddress(t *testing.T) {
	for addr, want := range map[string]string{
		"":                "",
		"127.0.0.1:9300":  "",
		":9300":           "",
		"[::1]:0":         "",
		"localhost:9300":  "metrics_address",
		"127.0.0.1":       "metrics_address",
		"127.0.0.1:70000": "metrics_address",
	} {
		c := TestConfig(t, "m1")
		c.MetricsAddress = addr
		err := c.Validate()
		if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
			t.Errorf("metrics_address %q: %v, want %q", addr, err, want)
		}
	}
	c := TestConfig(t, "m1")
	c.APIAddress, c.MetricsAddress = "127.0.0.1:7300", "127.0.0.1:7300"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "metrics_address") {
		t.Errorf("metrics_address equal to api_address: %v", err)
	}
}
