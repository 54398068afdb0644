package main

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/client"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/site"
)

func TestDR_GuestAndNetworkFlags(t *testing.T) {
	for _, tc := range []struct {
		guests, networks []string
		wantGuests       []client.DRGuest
		wantNetworks     []client.DRNetwork
		// err is a part of the error; the flag is named in every one.
		err string
	}{
		{guests: []string{"101"}, wantGuests: []client.DRGuest{{VMID: 101}}},
		{guests: []string{"101:2", "103:0:db1", "104::web1.example.com"},
			wantGuests: []client.DRGuest{{VMID: 101, Order: 2}, {VMID: 103, DNSName: "db1"}, {VMID: 104, DNSName: "web1.example.com"}}},
		{guests: []string{""}, err: `--guest "": VMID "" is not a positive number`},
		{guests: []string{"web"}, err: `--guest "web": VMID "web" is not a positive number`},
		{guests: []string{"-5"}, err: `--guest "-5": VMID "-5"`},
		{guests: []string{"101:x"}, err: `--guest "101:x": ORDER "x" is not a number of 0 or more`},
		{guests: []string{"101:-1"}, err: `--guest "101:-1": ORDER "-1"`},
		{guests: []string{"101:1:"}, err: `--guest "101:1:": the DNS name after the second colon is empty`},
		{guests: []string{"101", "101:2"}, err: `--guest "101:2": guest 101 is given twice`},
		{networks: []string{"vmbr0=vmbr1"}, wantNetworks: []client.DRNetwork{{Source: "vmbr0", Target: "vmbr1"}}},
		{networks: []string{"vmbr0=vmbr1@p1", "web=drweb@0190-abc"},
			wantNetworks: []client.DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p1"}, {Source: "web", Target: "drweb", Prefix: "0190-abc"}}},
		{networks: []string{"vmbr0"}, err: `--network "vmbr0": want SRC=DST[@PREFIXID]`},
		{networks: []string{"=vmbr1"}, err: `--network "=vmbr1": want SRC=DST[@PREFIXID]`},
		{networks: []string{"vmbr0=@p1"}, err: `--network "vmbr0=@p1": no recovery bridge or vnet after '='`},
		{networks: []string{"vmbr0=vmbr1@"}, err: `--network "vmbr0=vmbr1@": no prefix ID after '@'`},
		{networks: []string{"vmbr0=vmbr1", "vmbr0=vmbr2"}, err: `--network "vmbr0=vmbr2": vmbr0 is mapped twice`},
	} {
		name := strings.Join(append(tc.guests, tc.networks...), " ")
		guests, gerr := parseDRGuests(tc.guests)
		networks, nerr := parseDRNetworks(tc.networks)
		err := gerr
		if err == nil {
			err = nerr
		}
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: error %v, want %q", name, err, tc.err)
			}
			if _, ok := err.(*usageError); !ok {
				t.Errorf("%q: %T is not a usage error", name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(guests, tc.wantGuests) || !reflect.DeepEqual(networks, tc.wantNetworks) {
			t.Errorf("%q: guests %+v networks %+v, want %+v %+v", name, guests, networks, tc.wantGuests, tc.wantNetworks)
		}
	}
}

func TestDR_PlanFile(t *testing.T) {
	dir := t.TempDir()
	want := client.DRPlanRequest{ID: "web", RecoverySite: "west", BackupStorage: "pbs", TargetStorage: "local-lvm", TargetNode: "pve2", Manual: true,
		Guests:   []client.DRGuest{{VMID: 103, DNSName: "db1"}, {VMID: 101, Order: 1, TargetVMID: 9101, DNSName: "web1"}},
		Networks: []client.DRNetwork{{Source: "vmbr0", Target: "vmbr1", Prefix: "p1"}}}
	for _, tc := range []struct {
		name, text string
		want       *client.DRPlanRequest
		err        string
	}{
		{"plan.yaml", `id: web
recovery_site: west
backup_storage: pbs
target_storage: local-lvm
target_node: pve2
manual: true
guests:
  - {vmid: 103, dns_name: db1}
  - vmid: 101
    order: 1
    target_vmid: 9101
    dns_name: web1
networks:
  - {source: vmbr0, target: vmbr1, prefix: p1}
`, &want, ""},
		// What dr plan get -o json prints goes back in.
		{"plan.json", `{"id": "web", "source_site": "", "recovery_site": "west", "backup_storage": "pbs", "target_storage": "local-lvm",
			"target_node": "pve2", "manual": true, "guests": [{"vmid": 103, "dns_name": "db1"}, {"vmid": 101, "order": 1, "target_vmid": 9101,
			"dns_name": "web1"}], "networks": [{"source": "vmbr0", "target": "vmbr1", "prefix": "p1"}], "replica": false,
			"created_at": "2025-06-01T12:00:01Z", "create_index": 5, "modify_index": 5}`, &want, ""},
		{"typo.yaml", "recovery-site: west\n", nil, `typo.yaml: json: unknown field "recovery-site"`},
		{"bad.yaml", "guests: [\n", nil, "bad.yaml: "},
		{"bad.json", `{"guests": [{"vmid": "101"}]}`, nil, "bad.json: json: cannot unmarshal string"},
	} {
		path := filepath.Join(dir, tc.name)
		if err := os.WriteFile(path, []byte(tc.text), 0o600); err != nil {
			t.Fatal(err)
		}
		got, err := readDRPlanFile(path)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%s: error %v, want %q", tc.name, err, tc.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, *tc.want) {
			t.Errorf("%s: %+v, %v; want %+v", tc.name, got, err, *tc.want)
		}
	}
	if _, err := readDRPlanFile(filepath.Join(dir, "missing.yaml")); err == nil || !strings.Contains(err.Error(), "missing.yaml") {
		t.Errorf("missing file: %v", err)
	}
}

// drSite is a platformAPI in a site of a federation of two, east and
// west: it passes requests for the other site to that site's handler,
// and runs a DR run one change further on each blocking read of it, as
// the leader's runner would meanwhile.
type drSite struct {
	*platformAPI
	name string
	srv  *httptest.Server
	ca   string
	h    http.Handler

	mu     sync.Mutex
	states map[string]string // guarded by mu; the sites' states in this site's view
	peers  map[string]*drSite
	runs   map[string][]drRunStep // guarded by mu; the changes left of each run
}

// drRunStep is one change of the stand-in DR runner.
type drRunStep func(run *fsm.Operation) fsm.Command

func newDRSite(t *testing.T, name string) *drSite {
	t.Helper()
	s := &drSite{platformAPI: newPlatformAPI(t), name: name, states: map[string]string{"east": site.SiteUp, "west": site.SiteUp},
		peers: map[string]*drSite{}, runs: map[string][]drRunStep{}}
	h := api.New(s, api.Options{})
	s.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.record(r)
		s.runOnWait(t, r)
		h.ServeHTTP(w, r)
	})
	s.srv = httptest.NewUnstartedServer(s.h)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	s.srv.StartTLS()
	t.Cleanup(s.srv.Close)
	s.ca = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(s.ca, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.srv.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *drSite) env() map[string]string {
	return map[string]string{envAddr: s.srv.URL, envToken: platformToken, envCACert: s.ca}
}

// cli runs moxxiectl against s and fails the test unless it exits with
// want.
func (s *drSite) cli(t *testing.T, want int, args ...string) (stdout, stderr string) {
	t.Helper()
	stdout, stderr, code := runCLI(t, s.env(), args...)
	if code != want {
		t.Fatalf("moxxiectl %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, stdout, stderr)
	}
	return stdout, stderr
}

// record notes a request, as platformAPI's server does.
func (s *drSite) record(r *http.Request) {
	call := r.Method + " " + r.URL.Path
	if r.URL.RawQuery != "" {
		call += "?" + r.URL.RawQuery
	}
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	p := s.platformAPI
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, call)
	p.bodies = append(p.bodies, string(body))
	p.keys = append(p.keys, r.Header.Get("Idempotency-Key"))
}

func (s *drSite) setState(name, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.states[name] = state
}

func (s *drSite) LocalSite() string { return s.name }

func (s *drSite) Sites() []site.SiteStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return []site.SiteStatus{
		{Name: "east", Role: site.RoleServer, State: s.states["east"], Quorum: 1},
		{Name: "west", Role: site.RoleServer, State: s.states["west"], Quorum: 1},
	}
}

// ForgetSite forgets a site of this view that no server is alive of.
func (s *drSite) ForgetSite(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch state, ok := s.states[name]; {
	case !ok:
		return site.ErrUnknownSite
	case name == s.name:
		return site.ErrOwnSite
	case state == site.SiteUp:
		return &site.SiteAliveError{Site: name, Alive: []string{name + "/s1"}}
	}
	s.states[name] = site.SiteLeft
	return nil
}

func (s *drSite) SiteForward(r *http.Request, name string) (*http.Response, error) {
	peer := s.peers[name]
	if peer == nil {
		return nil, api.ErrUnknownSite
	}
	rec := httptest.NewRecorder()
	peer.h.ServeHTTP(rec, r)
	return rec.Result(), nil
}

func (s *drSite) Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, uint64, error) {
	res, idx, err := s.platformAPI.Apply(ctx, cmd)
	if err == nil && res.Err == nil {
		if op, ok := res.Value.(*fsm.Operation); ok && op.IsDRRun() {
			s.mu.Lock()
			s.runs[op.ID] = drRunnerSteps(s.platformAPI, op)
			s.mu.Unlock()
		}
	}
	return res, idx, err
}

// drRunnerSteps returns the changes the stand-in runner makes to a run:
// it starts, then each guest, in order, is restored and then running,
// with the address the runner would allocate; then it succeeds.
func drRunnerSteps(p *platformAPI, op *fsm.Operation) []drRunStep {
	_, items, _ := p.fsm.State().DRItems(nil, op.ID)
	steps := []drRunStep{func(run *fsm.Operation) fsm.Command {
		return &fsm.OperationUpdateRequest{ID: run.ID, Status: ptr(fsm.OpRunning)}
	}}
	for i, it := range items {
		target := it.TargetVMID
		if target == 0 {
			target = 9000 + it.VMID
		}
		final, addr := fsm.DRStepRunning, ""
		switch {
		case op.Kind == fsm.OpDRFailover:
			addr = "10.1.0." + strconv.Itoa(10+i)
		case op.Kind == fsm.OpDRDrill && !strings.HasSuffix(op.Step, ", keep"):
			// A drill's copies are off the networks, and removed unless kept.
			final = fsm.DRStepCleaned
		case op.Kind == fsm.OpDRFailback:
			// The guest comes back over its original.
			target = it.VMID
		}
		steps = append(steps,
			func(run *fsm.Operation) fsm.Command {
				return &fsm.DRItemUpdateRequest{Run: run.ID, Order: it.Order, VMID: it.VMID, Step: fsm.DRStepRestoring, TargetVMID: target,
					TargetNode: "pve2", Task: "UPID:pve2:qmrestore"}
			},
			func(run *fsm.Operation) fsm.Command {
				return &fsm.DRItemUpdateRequest{Run: run.ID, Order: it.Order, VMID: it.VMID, Step: final, Address: addr}
			})
	}
	return append(steps, func(run *fsm.Operation) fsm.Command {
		return &fsm.OperationUpdateRequest{ID: run.ID, Status: ptr(fsm.OpSucceeded), Step: ptr("done")}
	})
}

// runOnWait makes the next change of a run when r is a blocking read of
// it.
func (s *drSite) runOnWait(t *testing.T, r *http.Request) {
	id, ok := strings.CutPrefix(r.URL.Path, "/v1/dr/runs/")
	if !ok || r.URL.Query().Get("index") == "" {
		return
	}
	s.mu.Lock()
	steps := s.runs[id]
	if len(steps) > 0 {
		s.runs[id] = steps[1:]
	}
	s.mu.Unlock()
	if len(steps) == 0 {
		return
	}
	_, op, err := s.fsm.State().Operation(nil, id)
	if err != nil || op == nil {
		t.Errorf("run %s: %v", id, err)
		return
	}
	s.platformAPI.mu.Lock()
	defer s.platformAPI.mu.Unlock()
	if _, err := s.applyLocked(steps[0](op)); err != nil {
		t.Errorf("run %s: %v", id, err)
	}
}

// syncReplicas sends east's plans to west, as east's leader does, with
// the backups east knows of.
func syncReplicas(t *testing.T, east, west *drSite, syncedAt time.Time) {
	t.Helper()
	_, plans, err := east.fsm.State().DRPlans(nil)
	if err != nil {
		t.Fatal(err)
	}
	var out []fsm.DRPlan
	var ids []string
	for _, p := range plans {
		c := *p
		c.Status = nil
		for _, g := range p.Guests {
			_, inv, err := east.fsm.State().InventoryGuest(nil, g.VMID)
			if err != nil || inv == nil {
				t.Fatalf("guest %d: %v", g.VMID, err)
			}
			st := fsm.DRGuestStatus{VMID: g.VMID, Name: inv.Name, Kind: inv.Kind}
			if g.VMID == 101 {
				st.Backup = "pbs:backup/vm/101/2025-06-01T02:00:00Z"
				st.BackupAt = fsm.Timestamp(time.Date(2025, 6, 1, 2, 0, 0, 0, time.UTC).UnixNano())
			} else {
				st.Error = "no backup of guest " + strconv.Itoa(g.VMID) + " on pbs"
			}
			c.Status = append(c.Status, st)
		}
		c.SyncedAt = fsm.Timestamp(syncedAt.UnixNano())
		out = append(out, c)
		ids = append(ids, "conflict-"+c.ID+"-"+strconv.FormatInt(int64(c.UpdatedAt), 10))
	}
	west.mustApply(t, &fsm.DRReplicaSyncRequest{Source: "east", LocalSite: "west", Plans: out, ConflictIDs: ids})
}

// TestDR_Commands writes a plan at east, lists and shows its replica at
// west through east (--site west), fails it over, follows the run, lists
// the conflict a later change of the plan makes, and fails it back.
func TestDR_Commands(t *testing.T) {
	east, west := newDRSite(t, "east"), newDRSite(t, "west")
	east.peers["west"], west.peers["east"] = west, east
	now := fakeStart.Add(time.Hour)
	drNow = func() time.Time { return now }
	t.Cleanup(func() { drNow = time.Now })

	out, _ := east.cli(t, 0, "dr", "plan", "put", "web", "--recovery-site", "west", "--backup-storage", "pbs", "--target-storage", "local-lvm",
		"--guest", "103:0:db1", "--guest", "101:1:web1", "--network", "vmbr0=vmbr1@p1", "--manual", "--rpo", "4h")
	if out != "Plan web created: 2 guests of site east come back at site west.\n" {
		t.Errorf("put: %q", out)
	}
	body, _ := east.findCall(t, "PUT /v1/dr/plans/web")
	checkJSON(t, "put body", body, `{"id": "web", "recovery_site": "west", "backup_storage": "pbs", "target_storage": "local-lvm", "manual": true, "rpo": "4h",
		"guests": [{"vmid": 103, "dns_name": "db1"}, {"vmid": 101, "order": 1, "dns_name": "web1"}],
		"networks": [{"source": "vmbr0", "target": "vmbr1", "prefix": "p1"}]}`)

	// The plan again from a file, not manual now, with a flag adding a
	// field.
	file := filepath.Join(t.TempDir(), "web.yaml")
	if err := os.WriteFile(file, []byte(`recovery_site: west
backup_storage: pbs
target_storage: local-lvm
guests:
  - {vmid: 103, dns_name: db1}
  - {vmid: 101, order: 1, target_vmid: 9101, dns_name: web1}
networks:
  - {source: vmbr0, target: vmbr1, prefix: p1}
`), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _ = east.cli(t, 0, "dr", "plan", "put", "web", "-f", file, "--target-node", "pve2")
	if out != "Plan web replaced: 2 guests of site east come back at site west.\n" {
		t.Errorf("put -f: %q", out)
	}
	if got, _, _ := strings.Cut(errOf(runCLI(t, east.env(), "dr", "plan", "put", "db", "--recovery-site", "west")), "\n"); got !=
		"Error: moxxiectl dr plan put needs --backup-storage, or the plan in a file (-f FILE)" {
		t.Errorf("put without storage: %q", got)
	}
	if got := oneErrorLine(t, errOf(runCLI(t, east.env(), "dr", "plan", "put", "db", "-f", file, "--recovery-site", "east"))); !strings.Contains(got,
		"400 invalid_request") || !strings.Contains(got, "recovery_site") || !strings.HasSuffix(got, "; check --recovery-site") {
		t.Errorf("put with the source as recovery site: %q", got)
	}
	// From the file, the flag is not what to check.
	own := filepath.Join(t.TempDir(), "own.yaml")
	if err := os.WriteFile(own, []byte("recovery_site: east\nbackup_storage: pbs\ntarget_storage: local-lvm\nguests:\n  - {vmid: 103}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := oneErrorLine(t, errOf(runCLI(t, east.env(), "dr", "plan", "put", "db", "-f", own))); !strings.Contains(got, "recovery_site") || strings.Contains(got, "check --") {
		t.Errorf("put -f with the source as recovery site: %q", got)
	}

	out, _ = east.cli(t, 0, "dr", "plan", "list")
	want := `ID   SOURCE  RECOVERY  GUESTS  ROLE    STATE
web  east    west      2       source  -
`
	if out != want {
		t.Errorf("list at east:\n%s\nwant:\n%s", out, want)
	}

	syncReplicas(t, east, west, now.Add(-5*time.Second))
	out, _ = east.cli(t, 0, "--site", "west", "dr", "plan", "list")
	want = `ID   SOURCE  RECOVERY  GUESTS                 ROLE     STATE
web  east    west      2 (1 not recoverable)  replica  synced 5s ago
`
	if out != want {
		t.Errorf("list at west:\n%s\nwant:\n%s", out, want)
	}
	east.checkCall(t, "GET /v1/dr/plans?site=west")

	out, _ = east.cli(t, 0, "--site", "west", "dr", "plan", "get", "web")
	want = `ID:              web
Role:            replica: site east's plan
Source site:     east
Recovery site:   west
Backup storage:  pbs
Target storage:  local-lvm
Target node:     pve2
Manual:          no: fails over by itself when site east is down
RPO:             26h (the default)
Network vmbr0:   vmbr1, addresses from prefix p1
State:           synced 5s ago
Active run:      -
Last run:        -
Synced:          2025-06-01T12:59:55Z (5s ago)
Source version:  2025-06-01T12:0X:XXZ
Created:         2025-06-01T12:0X:XXZ
Updated:         2025-06-01T12:0X:XXZ

ORDER  VMID  NAME  TARGET VMID  DNS NAME  BACKUP                                  BACKUP TIME           ERROR
0      103   db1   next free    db1       -                                       -                     no backup of guest 103 on pbs
1      101   web1  9101         web1      pbs:backup/vm/101/2025-06-01T02:00:00Z  2025-06-01T02:00:00Z  -
`
	if got := maskSeconds(out); got != want {
		t.Errorf("get at west:\n%s\nwant:\n%s", got, want)
	}

	// West sees east up: a failover must be forced.
	got := oneErrorLine(t, errOf(runCLI(t, east.env(), "--site", "west", "site", "failover", "web")))
	if !strings.HasPrefix(got, "409 conflict: site east is up, not down: its guests may still run there. Stop them first and pass force") {
		t.Errorf("unforced failover: %q", got)
	}
	// East holds the plan, not its replica.
	if got := oneErrorLine(t, errOf(runCLI(t, east.env(), "site", "failover", "web"))); !strings.Contains(got, "run its failover at its recovery site (--site west)") {
		t.Errorf("failover at the source: %q", got)
	}

	// Once west sees east down, it fails over without --force.
	west.setState("east", site.SiteDown)
	out, errOut := east.cli(t, 0, "--site", "west", "site", "failover", "web")
	if got := plain(out); got != "Run "+anyID+": dr.failover of plan web, pending.\n" {
		t.Errorf("failover: %q", got)
	}
	if got := plain(errOut); got != "Follow it with: moxxiectl --site west dr run get "+anyID+" --wait\n" {
		t.Errorf("failover stderr: %q", got)
	}
	body, key := east.findCall(t, "POST /v1/dr/plans/web/failover?site=west")
	if body != "" || key == "" {
		t.Errorf("failover body %q, Idempotency-Key %q", body, key)
	}
	run := objectIDs.FindString(out)

	out, errOut = east.cli(t, 0, "--site", "west", "dr", "run", "get", run, "--wait")
	wantErr := `12:0X:XX dr.failover pending: manual
12:0X:XX dr.failover running: manual
  guest 103 (db1): restoring as 9103 on pve2
  guest 103 (db1): running as 9103 on pve2, 10.1.0.10
  guest 101 (web1): restoring as 9101 on pve2
  guest 101 (web1): running as 9101 on pve2, 10.1.0.11
12:0X:XX dr.failover succeeded: done
`
	if got := maskSeconds(errOut); got != wantErr {
		t.Errorf("run get --wait stderr:\n%s\nwant:\n%s", got, wantErr)
	}
	want = `Run:       ` + anyID + `
Kind:      dr.failover
Plan:      web
Status:    succeeded
Step:      done
Guests:    2: 2 succeeded, 0 failed
Actor:     0f6a3c1e-acc1
Created:   2025-06-01T12:0X:XXZ
Updated:   2025-06-01T12:0X:XXZ
Finished:  2025-06-01T12:0X:XXZ

ORDER  VMID  NAME  STEP     TARGET        ADDRESS           ERROR
0      103   db1   running  9103 on pve2  10.1.0.10 (db1)   -
1      101   web1  running  9101 on pve2  10.1.0.11 (web1)  -
`
	if got := maskSeconds(plain(out)); got != want {
		t.Errorf("run get --wait:\n%s\nwant:\n%s", got, want)
	}

	out, _ = east.cli(t, 0, "--site", "west", "dr", "plan", "list")
	if !strings.Contains(out, "replica  failed over: succeeded") {
		t.Errorf("list after the failover:\n%s", out)
	}
	out, _ = east.cli(t, 0, "--site", "west", "-o", "json", "dr", "run", "get", run)
	if !strings.Contains(out, `"step": "running"`) || !strings.Contains(out, `"kind": "dr.failover"`) {
		t.Errorf("run get -o json:\n%s", out)
	}

	// East changes the plan after the failover: west keeps the version it
	// failed over with and reports the change.
	east.cli(t, 0, "dr", "plan", "put", "web", "-f", file)
	syncReplicas(t, east, west, now)
	out, _ = east.cli(t, 0, "--site", "west", "dr", "conflicts")
	if lines := strings.Split(out, "\n"); len(lines) != 3 || !strings.HasPrefix(lines[0], "AT ") ||
		!strings.Contains(lines[1], "web   plan_changed  east  -     site east changed plan web at") {
		t.Errorf("conflicts:\n%s", out)
	}

	// A plan failed over is not deleted at west, and east's goes.
	if got := oneErrorLine(t, errOf(runCLI(t, east.env(), "--site", "west", "dr", "plan", "delete", "web"))); !strings.Contains(got, "fail it back before deleting it") {
		t.Errorf("delete at west: %q", got)
	}
	// East, cut off, fenced the plan itself: shown, refused a failback,
	// lifted by unfence (again: the same answer).
	east.mustApply(t, &fsm.DRIsolationRequest{Plan: "web", Action: fsm.DRIsolationFence})
	east.mustApply(t, &fsm.DRIsolationRequest{Plan: "web", Action: fsm.DRIsolationStopped, VMIDs: []int{101}})
	if got, _ := east.cli(t, 0, "dr", "plan", "list"); !strings.Contains(got, "source  fenced: west out of sight\n") {
		t.Errorf("list of the self-fenced plan:\n%s", got)
	}
	if got, _ := east.cli(t, 0, "dr", "plan", "get", "web"); !strings.Contains(got, "this site sees neither west nor a quorum of the other sites") {
		t.Errorf("get of the self-fenced plan:\n%s", got)
	}
	if got := oneErrorLine(t, errOf(runCLI(t, east.env(), "site", "failback", "web"))); !strings.Contains(got, "nothing to fail back") {
		t.Errorf("failback of a self-fenced plan: %q", got)
	}
	for range 2 {
		if out, _ := east.cli(t, 0, "site", "unfence", "web"); !strings.HasPrefix(out, "Plan web: fence lifted; ") {
			t.Errorf("unfence: %q", out)
		}
	}
	// East learns it was failed over after all and fences the plan, then
	// fails it back, which lifts the fence.
	east.mustApply(t, &fsm.DRFenceRequest{Plan: "web", Fence: &fsm.DRFence{By: "west", Run: run, Since: fsm.Timestamp(now.UnixNano())}})
	if got, _ := east.cli(t, 0, "dr", "plan", "list"); !strings.Contains(got, "web  east    west      2       source  fenced by west\n") {
		t.Errorf("list of the fenced plan:\n%s", got)
	}
	out, errOut = east.cli(t, 0, "site", "failback", "web")
	if !strings.HasSuffix(plain(out), ": dr.failback of plan web, pending.\n") || plain(errOut) != "Follow it with: moxxiectl dr run get "+anyID+" --wait\n" {
		t.Errorf("failback: %q, %q", out, errOut)
	}
	out, errOut = east.cli(t, 0, "dr", "run", "get", objectIDs.FindString(out), "--wait")
	if !strings.Contains(errOut, "  guest 101 (web1): running as 101 on pve2\n") || !strings.Contains(out, "Status:    succeeded\n") {
		t.Errorf("failback --wait:\n%s%s", errOut, out)
	}
	if got, _ := east.cli(t, 0, "dr", "plan", "list"); !strings.Contains(got, "source  -\n") {
		t.Errorf("list after the failback:\n%s", got)
	}

	out, _ = east.cli(t, 0, "dr", "plan", "delete", "web")
	if out != "Plan web deleted\n" {
		t.Errorf("delete: %q", out)
	}
	out, _ = east.cli(t, 0, "-o", "json", "dr", "plan", "list")
	if strings.TrimSpace(out) != "[]" {
		t.Errorf("list after delete: %q", out)
	}
}

// TestDR_DrillAndForce drills a plan at its recovery site, straight to it,
// then fails it over by force.
func TestDR_DrillAndForce(t *testing.T) {
	east, west := newDRSite(t, "east"), newDRSite(t, "west")
	east.peers["west"], west.peers["east"] = west, east
	east.cli(t, 0, "dr", "plan", "put", "web", "--recovery-site", "west", "--backup-storage", "pbs", "--target-storage", "local-lvm",
		"--guest", "101")
	syncReplicas(t, east, west, fakeStart)

	out, errOut := west.cli(t, 0, "site", "drill", "web", "--keep", "--wait")
	body, _ := west.findCall(t, "POST /v1/dr/plans/web/drill")
	checkJSON(t, "drill body", body, `{"keep": true}`)
	if !strings.Contains(errOut, "  guest 101 (web1): running as 9101 on pve2\n") {
		t.Errorf("drill progress:\n%s", errOut)
	}
	if !strings.Contains(out, "Kind:      dr.drill\n") || !strings.Contains(out, "Step:      done") {
		t.Errorf("drill:\n%s", out)
	}

	// East is up in west's view: --force vouches that its guests are off.
	out, _ = west.cli(t, 0, "-o", "json", "site", "failover", "web", "--force", "--idempotency-key", "failover-web-1")
	body, key := west.findCall(t, "POST /v1/dr/plans/web/failover")
	checkJSON(t, "failover body", body, `{"force": true}`)
	if key != "failover-web-1" || !strings.Contains(out, `"kind": "dr.failover"`) || !strings.Contains(out, `"status": "pending"`) {
		t.Errorf("forced failover: key %q, output\n%s", key, out)
	}
}

// maskSeconds hides the seconds of the times of the test clock, which
// depend on how many writes came before.
func maskSeconds(s string) string {
	return timeSeconds.ReplaceAllStringFunc(s, func(m string) string { return "12:0X:XX" })
}

// errOf returns the stderr of a runCLI that must fail.
func errOf(_, stderr string, code int) string {
	if code == 0 {
		return "exit 0: " + stderr
	}
	return stderr
}

// timeSeconds matches the times of the test clock, which starts at
// 12:00:00 and ticks a second a write.
var timeSeconds = regexp.MustCompile(`12:0\d:\d\d`)

func TestDRWaitsFor(t *testing.T) {
	running := &client.Operation{Kind: client.OpDRFailover, Status: client.OpRunning}
	items := func(steps ...string) []client.DRItem {
		out := make([]client.DRItem, len(steps))
		for i, s := range steps {
			out[i] = client.DRItem{Order: []int{1, 1, 2, 3}[i], VMID: 100 + i, Step: s}
		}
		return out
	}
	for _, tc := range []struct {
		name  string
		op    *client.Operation
		items []client.DRItem
		i     int
		want  int
	}{
		{"order 2 configured, order 1 restoring", running, items("restoring", "running", "configured", "pending"), 2, 1},
		{"order 3 configured behind order 1 and 2", running, items("restoring", "running", "configured", "configured"), 3, 1},
		{"order 1 done, order 2 not started", running, items("running", "failed", "configured", "configured"), 3, 2},
		{"free to start", running, items("running", "running", "configured", "pending"), 2, -1},
		{"not ready yet", running, items("restoring", "running", "restoring", "pending"), 2, -1},
		{"the first order waits for nothing", running, items("configured", "restoring", "pending", "pending"), 0, -1},
		{"a failback's restored guest", &client.Operation{Kind: client.OpDRFailback, Status: client.OpRunning}, items("restoring", "running", "restored", "pending"), 2, 1},
		{"a failover's restored guest is not ready", running, items("restoring", "running", "restored", "pending"), 2, -1},
		{"a finished run", &client.Operation{Kind: client.OpDRFailover, Status: client.OpFailed}, items("failed", "running", "configured", "pending"), 2, -1},
	} {
		if got := drWaitsFor(tc.op, tc.items, tc.items[tc.i]); got != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, got, tc.want)
		}
	}
}

func TestSite_Forget(t *testing.T) {
	east := newDRSite(t, "east")
	_, stderr := east.cli(t, 1, "site", "forget", "west")
	if !strings.Contains(stderr, "west is not gone: this server sees west/s1 alive") {
		t.Errorf("forget a site up: %q", stderr)
	}
	if _, stderr := east.cli(t, 1, "site", "forget", "east"); !strings.Contains(stderr, "own site") {
		t.Errorf("forget its own site: %q", stderr)
	}
	if _, stderr := east.cli(t, 1, "site", "forget", "nowhere"); !strings.Contains(stderr, "404") {
		t.Errorf("forget an unknown site: %q", stderr)
	}
	east.setState("west", site.SiteDown)
	if out, _ := east.cli(t, 0, "site", "forget", "west"); out != "site west forgotten: it is left, and no longer counts in the quorum of the other sites\n" {
		t.Errorf("forget a site down: %q", out)
	}
	east.findCall(t, "POST /v1/sites/west/forget")
	out, _ := east.cli(t, 0, "site", "forget", "west", "-o", "json")
	var got client.Site
	if err := json.Unmarshal([]byte(out), &got); err != nil || got.Name != "west" || got.State != site.SiteLeft {
		t.Errorf("forget again, as JSON: %v %s", err, out)
	}
}
