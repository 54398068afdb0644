package pvesim_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestFaults_ErrorRate(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	e.sim.SetFaults(pvesim.Faults{ErrorRate: 1})
	for i := 0; i < 5; i++ {
		_, err := e.client.Nodes(ctx)
		wantErr(t, err, "500 injected fault")
	}
	e.sim.SetFaults(pvesim.Faults{})
	if _, err := e.client.Nodes(ctx); err != nil {
		t.Fatalf("after clearing faults: %v", err)
	}
	// Half the requests fail, deterministically for a given seed.
	e.sim.SetFaults(pvesim.Faults{ErrorRate: 0.5})
	failed := 0
	for i := 0; i < 200; i++ {
		if _, err := e.client.Nodes(ctx); err != nil {
			failed++
		}
	}
	if failed < 50 || failed > 150 {
		t.Fatalf("%d of 200 requests failed at error rate 0.5", failed)
	}
}

func TestFaults_NodeOffline(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	if err := e.sim.SetNodeOnline("pve2", false); err != nil {
		t.Fatal(err)
	}
	if err := e.sim.SetNodeOnline("pve9", false); !errors.Is(err, pvesim.ErrNoSuchNode) {
		t.Fatalf("unknown node: %v", err)
	}

	code, status, body := e.raw(t, "GET", "/api2/json/nodes/pve2/qemu", "")
	if code != 595 || status != "595 No route to host" || body != "" {
		t.Fatalf("request to an offline node: %q %q", status, body)
	}
	if _, err := testNode(t, e.client, "pve1").VirtualMachines(ctx); err != nil {
		t.Fatalf("online node: %v", err)
	}

	c := testCluster(t, e)
	if c.Quorate != 1 || c.Nodes[1].Online != 0 || c.Nodes[1].Status != "offline" {
		t.Fatalf("cluster status %+v %+v", c, c.Nodes[1])
	}
	rs, err := c.Resources(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rs {
		if r.Node != "pve2" {
			continue
		}
		want := map[string]string{"node": "offline", "qemu": "unknown", "lxc": "unknown", "storage": "unknown", "sdn": "unknown"}[r.Type]
		if r.Status != want {
			t.Fatalf("resource %s on the offline node: status %q, want %q", r.ID, r.Status, want)
		}
	}
	nodes, _ := e.client.Nodes(ctx)
	if nodes[1].Status != "offline" {
		t.Fatalf("nodes: %+v", nodes[1])
	}

	// Without a majority, writes fail everywhere.
	if err := e.sim.SetNodeOnline("pve3", false); err != nil {
		t.Fatal(err)
	}
	_, err = testVM(t, e.client, "pve1", 103).Start(ctx)
	wantErr(t, err, "500 cluster not ready - no quorum?")
	if c := testCluster(t, e); c.Quorate != 0 {
		t.Fatalf("quorate with one node of three")
	}

	// Back online: the node has rebooted, its guests are stopped.
	for _, n := range []string{"pve2", "pve3"} {
		if err := e.sim.SetNodeOnline(n, true); err != nil {
			t.Fatal(err)
		}
	}
	if v := testVM(t, e.client, "pve2", 101); v.Status != "stopped" {
		t.Fatalf("VM 101 after its node came back: %s", v.Status)
	}
}

func TestFaults_FailTasks(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{Faults: pvesim.Faults{FailTasks: []string{"qmclone", "qmstart"}}})
	ctx := context.Background()
	before := len(e.sim.Guests())
	_, task, err := testVM(t, e.client, "pve1", 9000).Clone(ctx, &proxmox.VirtualMachineCloneOptions{NewID: 500, Name: "doomed"})
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "clone failed: injected fault")
	if n := len(e.sim.Guests()); n != before {
		t.Fatalf("%d guests after a failed clone, want %d", n, before)
	}
	if testStorageContent(t, e.client, "pve1", "local-lvm")["local-lvm:base-9000-disk-0/vm-500-disk-0"] != nil {
		t.Fatal("the failed clone left its disk")
	}
	task, err = testVM(t, e.client, "pve1", 103).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskFailed(t, task, "start failed: injected fault")
	if g, _ := testGuest(t, e.sim, 103); g.Status != "stopped" {
		t.Fatalf("VM 103 %s after a failed start", g.Status)
	}
	// Other task types are unaffected.
	task, err = testVM(t, e.client, "pve1", 100).Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)
}

// TestFaults_SlowTaskTypes: a delay for one task type holds its tasks
// running and leaves the other types as quick as ever.
func TestFaults_SlowTaskTypes(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{Faults: pvesim.Faults{SlowTaskTypes: map[string]time.Duration{"qmstart": time.Hour}}})
	ctx := context.Background()
	start, err := testVM(t, e.client, "pve1", 103).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	stop, err := testVM(t, e.client, "pve1", 100).Stop(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, stop)
	if err := start.Ping(ctx); err != nil || !start.IsRunning {
		t.Fatalf("the slowed start: %+v (%v), want it running", start, err)
	}
	if g, _ := testGuest(t, e.sim, 103); g.Status != "stopped" {
		t.Fatalf("VM 103 %s while its start runs", g.Status)
	}
}

func TestFaults_LatencyAndTimeout(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	e.sim.SetFaults(pvesim.Faults{Latency: 30 * time.Millisecond})
	start := time.Now()
	if _, err := e.client.Nodes(context.Background()); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d < 30*time.Millisecond {
		t.Fatalf("request took %v with 30ms latency injected", d)
	}

	e.sim.SetFaults(pvesim.Faults{Timeout: true})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := e.client.Nodes(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("with the timeout fault: %v", err)
	}
	e.sim.SetFaults(pvesim.Faults{})
	if _, err := e.client.Nodes(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func TestAdminAPI(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	do := func(method, path, body string, auth bool) (int, string) {
		req, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		if auth {
			req.Header.Set("Authorization", "PVEAPIToken="+testTokenID+"="+testTokenSecret)
		}
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, strings.TrimSpace(string(b))
	}
	cases := []struct {
		name, method, path, body string
		auth                     bool
		code                     int
		want                     string
	}{
		{"no token", "GET", "/pvesim/v1/stats", "", false, 401, `{"error":"authentication failed"}`},
		{"set faults", "PUT", "/pvesim/v1/faults", `{"latency":"5ms","fail_tasks":["vzdump"],"slow_tasks":"1s"}`, true, 200,
			`{"latency":"5ms","slow_tasks":"1s","fail_tasks":["vzdump"]}`},
		{"read faults", "GET", "/pvesim/v1/faults", "", true, 200, `{"latency":"5ms","slow_tasks":"1s","fail_tasks":["vzdump"]}`},
		{"fail a copy part-way", "PUT", "/pvesim/v1/faults", `{"fail_tasks_at":{"qmmove":50,"move_volume":0}}`, true, 200,
			`{"fail_tasks_at":{"move_volume":0,"qmmove":50}}`},
		{"slow restores", "PUT", "/pvesim/v1/faults", `{"slow_task_types":{"qmrestore":"1m0s","vzrestore":"30s"}}`, true, 200,
			`{"slow_task_types":{"qmrestore":"1m0s","vzrestore":"30s"}}`},
		{"bad type delay", "PUT", "/pvesim/v1/faults", `{"slow_task_types":{"qmrestore":"later"}}`, true, 400, ""},
		{"negative type delay", "PUT", "/pvesim/v1/faults", `{"slow_task_types":{"qmrestore":"-1s"}}`, true, 400, ""},
		{"bad percentage", "PUT", "/pvesim/v1/faults", `{"fail_tasks_at":{"qmmove":101}}`, true, 400, ""},
		{"bad duration", "PUT", "/pvesim/v1/faults", `{"latency":"soon"}`, true, 400, ""},
		{"bad error rate", "PUT", "/pvesim/v1/faults", `{"error_rate":2}`, true, 400, ""},
		{"unknown field", "PUT", "/pvesim/v1/faults", `{"latencyy":"5ms"}`, true, 400, ""},
		{"clear faults", "PUT", "/pvesim/v1/faults", `{}`, true, 200, `{}`},
		{"node offline", "PUT", "/pvesim/v1/nodes/pve3/online", `{"online":false}`, true, 200, `{"node":"pve3","online":false}`},
		{"unknown node", "PUT", "/pvesim/v1/nodes/pve7/online", `{"online":false}`, true, 404, ""},
		{"bad body", "PUT", "/pvesim/v1/nodes/pve3/online", `{}`, true, 400, ""},
		{"unknown route", "GET", "/pvesim/v1/nope", "", true, 404, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(tc.method, tc.path, tc.body, tc.auth)
			if code != tc.code || (tc.want != "" && body != tc.want) {
				t.Fatalf("got %d %s, want %d %s", code, body, tc.code, tc.want)
			}
		})
	}
	if c := testCluster(t, e); c.Nodes[2].Online != 0 {
		t.Fatal("pve3 still online")
	}
	_, body := do("GET", "/pvesim/v1/stats", "", true)
	var stats struct{ Requests uint64 }
	if err := json.Unmarshal([]byte(body), &stats); err != nil || stats.Requests == 0 || stats.Requests != e.sim.Requests() {
		t.Fatalf("stats %s (sim says %d)", body, e.sim.Requests())
	}
}

func TestFaults_FailTasksAt(t *testing.T) {
	cases := []struct {
		name, path string
		params     url.Values
		failAt     map[string]int
		exit       string
		lastLog    string
	}{
		{"a copy breaks", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"500"}, "full": {"1"}}, map[string]int{"qmclone": 75},
			"clone failed: injected fault: I/O error after 75%", "(75.00%)"},
		{"at the start", "/nodes/pve1/qemu/9000/clone", url.Values{"newid": {"500"}, "full": {"1"}}, map[string]int{"qmclone": 0},
			"clone failed: injected fault: I/O error after 0%", "(0.00%)"},
		{"no copy: fails at the end", "/nodes/pve1/qemu/103/status/start", nil, map[string]int{"qmstart": 50},
			"start failed: injected fault", ""},
		{"other types unaffected", "/nodes/pve1/qemu/103/status/start", nil, map[string]int{"qmmove": 50}, "OK", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newTestEnv(t, pvesim.Config{Faults: pvesim.Faults{FailTasksAt: tc.failAt}})
			guests := len(e.sim.Guests())
			exit, log := e.runTask(t, "POST", tc.path, tc.params)
			if exit != tc.exit {
				t.Fatalf("task ended %q, want %q\n%s", exit, tc.exit, log)
			}
			lines := strings.Split(log, "\n")
			if tc.lastLog != "" && (len(lines) < 2 || !strings.Contains(lines[len(lines)-2], tc.lastLog)) {
				t.Fatalf("the line before the end is not the %q progress:\n%s", tc.lastLog, log)
			}
			if tc.exit != "OK" && len(e.sim.Guests()) != guests {
				t.Fatal("a failed task left a guest behind")
			}
		})
	}
}
