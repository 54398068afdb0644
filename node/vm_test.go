package node

import (
	"bytes"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/internal/lockedbuf"
	"github.com/moxxie/moxxie/pvesim"
)

const testSimTokenID = "root@pam!moxxie"

// testSimSecret is the simulator token's secret; tests check that it never
// shows in logs or API answers.
const testSimSecret = "5ecr3t-5ecr3t-5ecr3t-do-not-log"

// startTestSim serves a Proxmox VE simulator over HTTPS and returns it with
// the proxmox section that points a server at it, pinning its certificate.
func startTestSim(t testing.TB, cfg pvesim.Config) (*pvesim.Sim, ProxmoxConfig) {
	t.Helper()
	cfg.Tokens = map[string]string{testSimTokenID: testSimSecret}
	if cfg.TaskDuration == 0 {
		cfg.TaskDuration = 20 * time.Millisecond
	}
	sim, err := pvesim.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewTLSServer(sim.Handler())
	t.Cleanup(func() {
		ts.Close()
		sim.Close()
	})
	sum := sha256.Sum256(ts.Certificate().Raw)
	var fp []string
	for _, b := range sum {
		fp = append(fp, fmt.Sprintf("%02X", b))
	}
	secretFile := filepath.Join(t.TempDir(), "pve-token")
	if err := os.WriteFile(secretFile, []byte(testSimSecret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return sim, ProxmoxConfig{URL: ts.URL, TokenID: testSimTokenID, TokenSecretFile: secretFile, Fingerprint: strings.Join(fp, ":")}
}

// simServer starts a one-server cluster managing a fresh simulator and
// returns it, the simulator and an admin token. When the test ends it
// checks that the Proxmox token secret never reached the logs.
func simServer(t *testing.T, cfg pvesim.Config, configure ...func(*Config)) (*Server, *pvesim.Sim, string) {
	s, sim, token, _ := simServerLogs(t, cfg, configure...)
	return s, sim, token
}

// simServerLogs is simServer, also returning the server's logs.
func simServerLogs(t *testing.T, cfg pvesim.Config, configure ...func(*Config)) (*Server, *pvesim.Sim, string, *lockedbuf.Buffer) {
	t.Helper()
	sim, pc := startTestSim(t, cfg)
	c := TestConfig(t, "sim1")
	c.BootstrapExpect = 1
	c.Proxmox = pc
	for _, f := range configure {
		f(c)
	}
	logs := &lockedbuf.Buffer{}
	logger := slog.New(slog.NewTextHandler(io.MultiWriter(logs, testWriter{t}), &slog.HandlerOptions{Level: slog.LevelDebug}))
	s, err := New(c, Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = s.Shutdown(false)
		if strings.Contains(logs.String(), testSimSecret) {
			t.Errorf("the Proxmox token secret appears in the server's logs")
		}
	})
	registerTestServer(t, s)
	WaitForLeader(t, s)
	return s, sim, bootstrapToken(t, s), logs
}

// syncNow makes the leader run n inventory sync cycles and waits for them.
func syncNow(t *testing.T, s *Server, n uint64) {
	t.Helper()
	before := s.syncCycles.Load()
	WaitForResult(t, 10*time.Second, func() error {
		if done := s.syncCycles.Load() - before; done < n {
			TestLeaderOf(s).kickSync()
			return fmt.Errorf("%d of %d sync cycles", done, n)
		}
		return nil
	})
}

// waitGuests waits until the inventory holds n guests (templates included).
func waitGuests(t *testing.T, s *Server, n int) {
	t.Helper()
	WaitForResult(t, 15*time.Second, func() error {
		_, gs, _ := s.State().InventoryGuests(nil, fsm.GuestFilter{})
		if len(gs) != n {
			return fmt.Errorf("%d guests in inventory, want %d", len(gs), n)
		}
		return nil
	})
}

func TestInventory_SyncDeltasStaleAndGone(t *testing.T) {
	countedEntries(t)
	s, sim, token, logs := simServerLogs(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	_, nodes, _ := s.State().InventoryNodes(nil, false)
	_, storage, _ := s.State().InventoryStorage(nil, false)
	if len(nodes) != 3 || len(storage) == 0 {
		t.Fatalf("inventory: %d nodes, %d storage", len(nodes), len(storage))
	}

	// A sync that finds nothing changed writes nothing.
	syncNow(t, s, 1) // settles usage recorded while guests were starting
	last := s.LastIndex()
	syncNow(t, s, 3)
	if got := s.LastIndex(); got != last {
		t.Fatalf("a sync without changes wrote %d log entries", got-last)
	}

	// One changed guest is one object in one entry.
	if err := sim.UpdateGuest(103, func(g *pvesim.Guest) { g.Name = "build-02" }); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, g, _ := s.State().InventoryGuest(nil, 103)
		if g.Name != "build-02" {
			return fmt.Errorf("guest 103 is still %q", g.Name)
		}
		return nil
	})
	if got := s.LastIndex(); got != last+1 {
		t.Fatalf("one renamed guest took %d log entries", got-last)
	}

	// Deleted behind Moxxie's back: marked gone, kept.
	if err := sim.RemoveGuest(201); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, g, _ := s.State().InventoryGuest(nil, 201)
		if g == nil || !g.Gone {
			return fmt.Errorf("guest 201: %+v", g)
		}
		return nil
	})

	// Proxmox failing: the inventory is kept and marked stale, then
	// recovers.
	sim.SetFaults(pvesim.Faults{ErrorRate: 1})
	WaitForResult(t, 20*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, st, _ := s.State().InventoryState(nil)
		if !st.Stale || st.Error == "" {
			return fmt.Errorf("not stale: %+v", st)
		}
		return nil
	})
	_, st, _ := s.State().InventoryState(nil)
	if strings.Contains(st.Error, testSimSecret) {
		t.Fatalf("stale error shows the token secret: %s", st.Error)
	}
	_, gs, _ := s.State().InventoryGuests(nil, fsm.GuestFilter{})
	if len(gs) != len(sim.Guests()) {
		t.Fatalf("stale inventory lost guests: %d, want %d", len(gs), len(sim.Guests()))
	}
	if !strings.Contains(logs.String(), "inventory sync failed") {
		t.Fatal("no log line for the failed sync")
	}
	m := call(t, s, http.MethodGet, "/v1/metrics", token, nil, nil)
	if !bytes.Contains(m.body, []byte("moxxie_inventory_stale 1")) || !bytes.Contains(m.body, []byte(`moxxie_inventory_syncs_total{result="error"}`)) {
		t.Fatalf("metrics while stale:\n%s", m.body)
	}
	sim.SetFaults(pvesim.Faults{})
	WaitForResult(t, 30*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, st, _ := s.State().InventoryState(nil)
		if st.Stale {
			return fmt.Errorf("still stale: %s", st.Error)
		}
		return nil
	})

	// A node offline: its guests' status follows.
	if err := sim.SetNodeOnline("pve3", false); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, n, _ := s.State().InventoryNode(nil, "pve3")
		if n.Status != "offline" {
			return fmt.Errorf("pve3 is %s", n.Status)
		}
		return nil
	})
}

// vmOp posts a VM request and waits for its operation to finish.
func vmOp(t *testing.T, s *Server, token, method, path string, body any) *fsm.Operation {
	t.Helper()
	r := call(t, s, method, path, token, body, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("%s %s: %d %s", method, path, r.status, r.body)
	}
	var op fsm.Operation
	if err := json.Unmarshal(r.body, &op); err != nil {
		t.Fatal(err)
	}
	return waitOp(t, s, op.ID)
}

func waitOp(t *testing.T, s *Server, id string) *fsm.Operation {
	t.Helper()
	var op *fsm.Operation
	WaitForResult(t, 30*time.Second, func() error {
		_, op, _ = s.State().Operation(nil, id)
		if op == nil || op.Active() {
			return fmt.Errorf("operation %s: %+v", id, op)
		}
		return nil
	})
	return op
}

func createPrefix(t *testing.T, s *Server, token string) string {
	t.Helper()
	r := call(t, s, http.MethodPost, "/v1/ipam/prefixes", token, map[string]any{"prefix": "10.20.0.0/24", "gateway": "10.20.0.1"}, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("create prefix: %d %s", r.status, r.body)
	}
	var p struct{ ID string }
	_ = json.Unmarshal(r.body, &p)
	return p.ID
}

func TestVM_Lifecycle(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	prefix := createPrefix(t, s, token)

	op := vmOp(t, s, token, http.MethodPost, "/v1/vms", map[string]any{
		"name": "app-1", "template": "debian-12-cloud", "node": "pve2", "cores": 2, "memory": 1024, "tenant": "acme",
		"nics": []map[string]any{{"bridge": "vmbr0", "vlan": 20, "prefix_id": prefix, "dns_name": "app-1.moxxie.test"}},
	})
	if op.Status != fsm.OpSucceeded {
		t.Fatalf("create: %+v (error %+v)", op, op.Error)
	}
	if op.VMID == 0 || len(op.Addresses) != 1 || op.Addresses[0].Address != "10.20.0.2" {
		t.Fatalf("create result: %+v", op)
	}
	vmid := op.VMID

	// In the simulator: on the node asked for, running, configured for
	// cloud-init with its address and tagged with its tenant.
	var simGuest *pvesim.Guest
	for _, g := range sim.Guests() {
		if g.VMID == vmid {
			simGuest = &g
		}
	}
	if simGuest == nil || simGuest.Node != "pve2" || simGuest.Status != "running" ||
		simGuest.Config["ipconfig0"] != "ip=10.20.0.2/24,gw=10.20.0.1" || !strings.Contains(simGuest.Config["net0"], "tag=20") {
		t.Fatalf("guest in the simulator: %+v", simGuest)
	}
	// In the inventory when the operation succeeds, with its tenant; its
	// address is owned by its NIC.
	if _, g, _ := s.State().InventoryGuest(nil, vmid); g == nil || g.Tenant != "acme" || g.Status != "running" {
		t.Fatalf("inventory guest after the create succeeded: %+v", g)
	}
	_, addrs, _ := s.State().Addresses(nil, fsm.AddressFilter{Owner: fmt.Sprintf("vm:%d/net0", vmid)})
	if len(addrs) != 1 || addrs[0].DNSName != "app-1.moxxie.test" || addrs[0].Tenant != "acme" {
		t.Fatalf("addresses of the VM: %+v", addrs)
	}

	for _, action := range []string{"shutdown", "start", "stop", "start"} {
		op := vmOp(t, s, token, http.MethodPost, fmt.Sprintf("/v1/vms/%d/%s", vmid, action), nil)
		if op.Status != fsm.OpSucceeded {
			t.Fatalf("%s: %+v", action, op.Error)
		}
	}
	op = vmOp(t, s, token, http.MethodDelete, fmt.Sprintf("/v1/vms/%d", vmid), nil)
	if op.Status != fsm.OpSucceeded || len(op.Addresses) != 1 {
		t.Fatalf("delete: %+v %+v", op, op.Error)
	}
	for _, g := range sim.Guests() {
		if g.VMID == vmid {
			t.Fatalf("guest %d still in the simulator", vmid)
		}
	}
	_, addrs, _ = s.State().Addresses(nil, fsm.AddressFilter{Owner: fmt.Sprintf("vm:%d/net0", vmid)})
	if len(addrs) != 0 {
		t.Fatalf("addresses left after delete: %+v", addrs)
	}
	WaitForResult(t, 10*time.Second, func() error {
		_, g, _ := s.State().InventoryGuest(nil, vmid)
		if g == nil || !g.Gone {
			return fmt.Errorf("deleted guest in inventory: %+v", g)
		}
		return nil
	})
}

func TestVM_FailureHalfWayUndoes(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	prefix := createPrefix(t, s, token)
	before := len(sim.Guests())

	cases := map[string]struct {
		faults pvesim.Faults
		code   string
	}{
		"clone task fails":  {pvesim.Faults{FailTasks: []string{"qmclone"}}, "task_failed"},
		"start task fails":  {pvesim.Faults{FailTasks: []string{"qmstart"}}, "task_failed"},
		"every request 500": {pvesim.Faults{ErrorRate: 1}, "platform_unavailable"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			sim.SetFaults(tc.faults)
			defer sim.SetFaults(pvesim.Faults{})
			op := vmOp(t, s, token, http.MethodPost, "/v1/vms", map[string]any{
				"name": "doomed", "template": "9000",
				"nics": []map[string]any{{"bridge": "vmbr0", "prefix_id": prefix, "dns_name": "doomed.moxxie.test"}},
			})
			if op.Status != fsm.OpFailed || op.Error == nil || op.Error.Code != tc.code || !op.RolledBack {
				t.Fatalf("operation: %+v error %+v", op, op.Error)
			}
			t.Logf("%s: %s", op.Error.Code, op.Error.Message)
			if n := len(sim.Guests()); n != before {
				t.Fatalf("%d guests in the simulator, want %d", n, before)
			}
			_, addrs, _ := s.State().Addresses(nil, fsm.AddressFilter{DNSName: "doomed.moxxie.test"})
			if len(addrs) != 0 {
				t.Fatalf("addresses left: %+v", addrs)
			}
		})
	}
}

func TestVM_BadInput(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	cases := []struct {
		name   string
		body   map[string]any
		status int
		field  string
	}{
		{"unknown template", map[string]any{"name": "a", "template": "centos-5"}, 400, "template"},
		{"template VMID not a template", map[string]any{"name": "a", "template": "100"}, 400, "template"},
		{"no node with capacity", map[string]any{"name": "a", "template": "9000", "memory": 1 << 30}, 409, "node"},
		{"unknown node", map[string]any{"name": "a", "template": "9000", "node": "pve9"}, 400, "node"},
		{"zero cores", map[string]any{"name": "a", "template": "9000", "cores": -1}, 400, "cores"},
		{"too many cores for the node", map[string]any{"name": "a", "template": "9000", "node": "pve1", "cores": 4096}, 400, "cores"},
		{"tiny memory", map[string]any{"name": "a", "template": "9000", "memory": 8}, 400, "memory"},
		{"bad name", map[string]any{"name": "no spaces", "template": "9000"}, 400, "name"},
		{"unknown prefix", map[string]any{"name": "a", "template": "9000", "nics": []map[string]any{{"bridge": "vmbr0", "prefix_id": "nope"}}}, 400, "nics[0].prefix_id"},
		{"unknown field", map[string]any{"name": "a", "template": "9000", "cpus": 2}, 400, "cpus"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := call(t, s, http.MethodPost, "/v1/vms", token, tc.body, nil)
			var e struct {
				Error struct{ Field, Message string }
			}
			_ = json.Unmarshal(r.body, &e)
			if r.status != tc.status || e.Error.Field != tc.field {
				t.Fatalf("got %d %s, want %d naming %s", r.status, r.body, tc.status, tc.field)
			}
		})
	}
	r := call(t, s, http.MethodPost, "/v1/vms/777/start", token, nil, nil)
	if r.status != http.StatusNotFound {
		t.Fatalf("start of a missing VM: %d %s", r.status, r.body)
	}
	if r := call(t, s, http.MethodPost, "/v1/vms/200/start", token, nil, nil); r.status != http.StatusBadRequest || !bytes.Contains(r.body, []byte(`"field":"vmid"`)) {
		t.Fatalf("start of a container: %d %s", r.status, r.body)
	}
	for _, path := range []string{"/v1/inventory", "/v1/inventory/nodes", "/v1/inventory/guests", "/v1/operations", "/v1/status"} {
		if r := call(t, s, http.MethodGet, path, token, nil, nil); bytes.Contains(r.body, []byte(testSimSecret)) {
			t.Fatalf("%s shows the Proxmox token secret", path)
		}
	}
}

// countedEntries keeps the leader's repeated lineage checks out of a test
// that counts log entries.
func countedEntries(t *testing.T) {
	was := lineageInterval
	lineageInterval = time.Hour
	t.Cleanup(func() { lineageInterval = was })
}

func TestInventory_Sync64Nodes10kGuests(t *testing.T) {
	countedEntries(t)
	s, sim, _ := simServer(t, pvesim.Config{Seed: pvesim.Seed{Nodes: 64, Guests: 10000}})
	n := len(sim.Guests())
	if n < 10000 {
		t.Fatalf("simulator seeded %d guests", n)
	}
	WaitForResult(t, 60*time.Second, func() error {
		_, st, _ := s.State().InventoryState(nil)
		if st.Guests != n || st.Nodes != 64 {
			return fmt.Errorf("inventory holds %d nodes, %d guests", st.Nodes, st.Guests)
		}
		return nil
	})
	syncNow(t, s, 1)
	last := s.LastIndex()
	syncNow(t, s, 2)
	if got := s.LastIndex(); got != last {
		t.Fatalf("a sync of 10,000 unchanged guests wrote %d log entries", got-last)
	}
	if err := sim.UpdateGuest(5000, func(g *pvesim.Guest) { g.Tags = append(g.Tags, "tenant.acme") }); err != nil {
		t.Fatal(err)
	}
	WaitForResult(t, 10*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, g, _ := s.State().InventoryGuest(nil, 5000)
		if g.Tenant != "acme" {
			return fmt.Errorf("guest 5000 has tenant %q", g.Tenant)
		}
		return nil
	})
	if got := s.LastIndex(); got != last+1 {
		t.Fatalf("one changed guest of 10,000 took %d log entries", got-last)
	}
	_, g, _ := s.State().InventoryGuest(nil, 5000)
	if g.ModifyIndex != last+1 {
		t.Fatalf("guest 5000 modified at %d, want %d", g.ModifyIndex, last+1)
	}
	_, other, _ := s.State().InventoryGuest(nil, 5001)
	if other.ModifyIndex > last {
		t.Fatalf("guest 5001 was rewritten at %d", other.ModifyIndex)
	}
}

func TestInventory_TimeoutMarksStale(t *testing.T) {
	sim, pc := startTestSim(t, pvesim.Config{})
	pc.Timeout = Duration(300 * time.Millisecond)
	s := TestServer(t, func(c *Config) { c.Proxmox = pc })
	waitGuests(t, s, len(sim.Guests()))
	sim.SetFaults(pvesim.Faults{Timeout: true})
	WaitForResult(t, 30*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, st, _ := s.State().InventoryState(nil)
		if !st.Stale {
			return fmt.Errorf("not stale yet")
		}
		return nil
	})
	sim.SetFaults(pvesim.Faults{})
	WaitForResult(t, 60*time.Second, func() error {
		TestLeaderOf(s).kickSync()
		_, st, _ := s.State().InventoryState(nil)
		if st.Stale {
			return fmt.Errorf("still stale: %s", st.Error)
		}
		return nil
	})
}

func TestVM_IdempotentCreate(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	body := map[string]any{"name": "once", "template": "9000", "start": false}
	hdr := map[string]string{"Idempotency-Key": "create-once"}
	var ids []string
	for range 2 {
		r := call(t, s, http.MethodPost, "/v1/vms", token, body, hdr)
		if r.status != http.StatusAccepted {
			t.Fatalf("create: %d %s", r.status, r.body)
		}
		var op fsm.Operation
		_ = json.Unmarshal(r.body, &op)
		ids = append(ids, op.ID)
	}
	if ids[0] != ids[1] {
		t.Fatalf("the same Idempotency-Key made two operations: %v", ids)
	}
	if op := waitOp(t, s, ids[0]); op.Status != fsm.OpSucceeded {
		t.Fatalf("create: %+v", op.Error)
	}
	named := 0
	for _, g := range sim.Guests() {
		if g.Name == "once" {
			named++
		}
	}
	if named != 1 {
		t.Fatalf("%d guests named once", named)
	}
}

func TestVM_NodeOfflineFailsClearly(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	if err := sim.SetNodeOnline("pve2", false); err != nil {
		t.Fatal(err)
	}
	// The inventory has not noticed yet: the operation meets the offline
	// node and fails, saying so.
	op := vmOp(t, s, token, http.MethodPost, "/v1/vms/101/stop", nil)
	if op.Status != fsm.OpFailed || op.Error == nil || op.Error.Message == "" {
		t.Fatalf("stop on an offline node: %+v", op)
	}
	t.Logf("stop on an offline node: %s: %s", op.Error.Code, op.Error.Message)
}

// TestVM_LeaderLostMidCreate kills the leader while a create waits on its
// clone: the next leader finds the operation running, undoes what it did
// and fails it; nothing is left behind.
func TestVM_LeaderLostMidCreate(t *testing.T) {
	sim, pc := startTestSim(t, pvesim.Config{})
	servers := TestCluster(t, 3, func(c *Config) { c.Proxmox = pc })
	token := bootstrapToken(t, servers[0])
	waitGuests(t, servers[0], len(sim.Guests()))
	leader := TestLeaderOf(servers[0])
	prefix := createPrefix(t, leader, token)
	before := len(sim.Guests())

	sim.SetFaults(pvesim.Faults{SlowTasks: 3 * time.Second})
	r := call(t, leader, http.MethodPost, "/v1/vms", token, map[string]any{
		"name": "orphan", "template": "9000",
		"nics": []map[string]any{{"bridge": "vmbr0", "prefix_id": prefix, "dns_name": "orphan.moxxie.test"}},
	}, nil)
	if r.status != http.StatusAccepted {
		t.Fatalf("create: %d %s", r.status, r.body)
	}
	var op fsm.Operation
	_ = json.Unmarshal(r.body, &op)
	WaitForResult(t, 10*time.Second, func() error {
		_, cur, _ := leader.State().Operation(nil, op.ID)
		if cur.Task == "" {
			return fmt.Errorf("operation at step %q", cur.Step)
		}
		return nil
	})
	if err := leader.Shutdown(false); err != nil {
		t.Fatal(err)
	}
	sim.SetFaults(pvesim.Faults{})
	var rest []*Server
	for _, s := range servers {
		if s != leader {
			rest = append(rest, s)
		}
	}
	WaitForLeader(t, rest...)
	var final *fsm.Operation
	WaitForResult(t, 30*time.Second, func() error {
		_, final, _ = rest[0].State().Operation(nil, op.ID)
		if final.Active() {
			return fmt.Errorf("operation still %s at %q", final.Status, final.Step)
		}
		return nil
	})
	if final.Status != fsm.OpFailed || final.Error.Code != "interrupted" || !final.RolledBack {
		t.Fatalf("interrupted create: %+v %+v", final, final.Error)
	}
	WaitForResult(t, 10*time.Second, func() error {
		if n := len(sim.Guests()); n != before {
			return fmt.Errorf("%d guests in the simulator, want %d", n, before)
		}
		return nil
	})
	_, addrs, _ := rest[0].State().Addresses(nil, fsm.AddressFilter{DNSName: "orphan.moxxie.test"})
	if len(addrs) != 0 {
		t.Fatalf("addresses left: %+v", addrs)
	}
}

func TestVM_CreateWithoutTemplate(t *testing.T) {
	s, sim, token := simServer(t, pvesim.Config{})
	waitGuests(t, s, len(sim.Guests()))
	op := vmOp(t, s, token, http.MethodPost, "/v1/vms", map[string]any{
		"name": "blank", "disk": 8, "cores": 1, "memory": 512, "storage": "local-lvm",
		"nics": []map[string]any{{"bridge": "vmbr0"}},
	})
	if op.Status != fsm.OpSucceeded {
		t.Fatalf("create without a template: %+v", op.Error)
	}
	for _, g := range sim.Guests() {
		if g.VMID == op.VMID {
			if g.Name != "blank" || g.Status != "running" || !strings.Contains(g.Config["scsi0"], "local-lvm") {
				t.Fatalf("blank VM in the simulator: %+v", g)
			}
			return
		}
	}
	t.Fatalf("VM %d not in the simulator", op.VMID)
}
