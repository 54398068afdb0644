package pvesim_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

const (
	testTokenID     = "root@pam!moxxie"
	testTokenSecret = "0b8a5c2e-5d3f-4e8b-9a61-2f4c7d9e1a3b"
	testPassword    = "correct horse battery staple"
)

// env is one simulator behind an httptest server, with a go-proxmox client
// that uses the API token.
type testEnv struct {
	sim    *pvesim.Sim
	srv    *httptest.Server
	client *proxmox.Client
}

func newTestEnv(t testing.TB, cfg pvesim.Config) *testEnv {
	t.Helper()
	if cfg.Tokens == nil {
		cfg.Tokens = map[string]string{testTokenID: testTokenSecret}
	}
	if cfg.Users == nil {
		cfg.Users = map[string]string{"root@pam": testPassword}
	}
	if cfg.TaskDuration == 0 {
		cfg.TaskDuration = 2 * time.Millisecond
	}
	sim, err := pvesim.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(sim.Handler())
	t.Cleanup(func() {
		srv.Close()
		sim.Close()
	})
	return &testEnv{sim: sim, srv: srv, client: newTestClient(srv, proxmox.WithAPIToken(testTokenID, testTokenSecret))}
}

func newTestClient(srv *httptest.Server, opts ...proxmox.Option) *proxmox.Client {
	return proxmox.NewClient(srv.URL+"/api2/json", append([]proxmox.Option{proxmox.WithHTTPClient(srv.Client())}, opts...)...)
}

// wait follows a task to its end and returns its final state. It polls, so
// it does not depend on how long the task takes.
func waitTask(t testing.TB, task *proxmox.Task) *proxmox.Task {
	t.Helper()
	if task == nil {
		t.Fatal("no task")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := task.Wait(ctx, time.Millisecond, 30*time.Second); err != nil {
		t.Fatalf("wait for %s: %v", task.UPID, err)
	}
	return task
}

// waitOK follows a task and fails the test unless it ends with OK.
func waitTaskOK(t testing.TB, task *proxmox.Task) {
	t.Helper()
	waitTask(t, task)
	if !task.IsSuccessful {
		t.Fatalf("task %s ended with %q, want OK", task.UPID, task.ExitStatus)
	}
}

// waitFailed follows a task and fails the test unless it ends with an error
// containing want.
func waitTaskFailed(t testing.TB, task *proxmox.Task, want string) {
	t.Helper()
	waitTask(t, task)
	if task.IsSuccessful || !strings.Contains(task.ExitStatus, want) {
		t.Fatalf("task %s ended with %q, want an error containing %q", task.UPID, task.ExitStatus, want)
	}
}

// raw sends one request with the API token and returns status line and body.
func (e *testEnv) raw(t testing.TB, method, path, body string) (int, string, string) {
	t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequest(method, e.srv.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	req.Header.Set("Authorization", "PVEAPIToken="+testTokenID+"="+testTokenSecret)
	res, err := e.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Status, string(b)
}

func testNode(t testing.TB, c *proxmox.Client, name string) *proxmox.Node {
	t.Helper()
	n, err := c.Node(context.Background(), name)
	if err != nil {
		t.Fatalf("node %s: %v", name, err)
	}
	return n
}

func testVM(t testing.TB, c *proxmox.Client, nodeName string, vmid int) *proxmox.VirtualMachine {
	t.Helper()
	v, err := testNode(t, c, nodeName).VirtualMachine(context.Background(), vmid)
	if err != nil {
		t.Fatalf("vm %d on %s: %v", vmid, nodeName, err)
	}
	return v
}

func testCT(t testing.TB, c *proxmox.Client, nodeName string, vmid int) *proxmox.Container {
	t.Helper()
	v, err := testNode(t, c, nodeName).Container(context.Background(), vmid)
	if err != nil {
		t.Fatalf("ct %d on %s: %v", vmid, nodeName, err)
	}
	return v
}

func testGuest(t testing.TB, sim *pvesim.Sim, vmid int) (pvesim.Guest, bool) {
	t.Helper()
	for _, g := range sim.Guests() {
		if g.VMID == vmid {
			return g, true
		}
	}
	return pvesim.Guest{}, false
}

func wantErr(t testing.TB, err error, want string) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error = %v, want one containing %q", err, want)
	}
}

// newTestTask is a go-proxmox handle on a task given by its UPID.
func newTestTask(e *testEnv, upid string) *proxmox.Task {
	return proxmox.NewTask(proxmox.UPID(upid), e.client)
}
