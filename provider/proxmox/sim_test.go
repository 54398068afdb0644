package proxmox

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/pvesim"
)

// simEnv is a simulated cluster behind a TLS server, and a Provider for it.
type simEnv struct {
	sim  *pvesim.Sim
	srv  *httptest.Server
	p    *Provider
	logs *logBuffer

	mu   sync.Mutex
	hits map[string]int // requests by "METHOD /path", guarded by mu
}

// newSimEnv starts the default simulated cluster with short tasks. mod,
// when not nil, changes the provider's Config.
func newSimEnv(t *testing.T, mod func(*Config)) *simEnv {
	t.Helper()
	sim, err := pvesim.New(pvesim.Config{
		Tokens:       map[string]string{testTokenID: testSecret},
		TaskDuration: 20 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	e := &simEnv{sim: sim, hits: map[string]int{}}
	h := sim.Handler()
	e.srv = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.Method+" "+r.URL.Path]++
		e.mu.Unlock()
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		sim.Close()
		e.srv.Close()
	})
	e.p, e.logs = testProvider(t, e.srv, mod)
	return e
}

// count returns how many requests reached the simulator for method and
// API path (below /api2/json).
func (e *simEnv) count(method, path string) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.hits[method+" /api2/json"+path]
}

// wait waits for a task and fails the test unless it succeeded.
func (e *simEnv) wait(t *testing.T, task provider.Task, err error) provider.TaskStatus {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	st, err := e.p.WaitTask(ctx, task, nil)
	if err != nil {
		t.Fatalf("task %s: %v", task.ID, err)
	}
	return st
}

func vm(node string, id int) provider.GuestRef {
	return provider.GuestRef{Node: node, VMID: id, Kind: provider.KindVM}
}

func ct(node string, id int) provider.GuestRef {
	return provider.GuestRef{Node: node, VMID: id, Kind: provider.KindContainer}
}

func TestSim_Smoke(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	inv, err := e.p.Inventory(ctx)
	t.Logf("%+v %v", inv, err)
	c, err := e.p.Cluster(ctx)
	t.Logf("%+v %v", c, err)
	n, err := e.p.Nodes(ctx)
	t.Logf("%+v %v", n, err)
	g, err := e.p.Guest(ctx, vm("pve1", 100))
	t.Logf("%+v %v", g, err)
	cfg, err := e.p.GuestConfig(ctx, vm("pve1", 100))
	t.Logf("%+v %v", cfg, err)
	id, err := e.p.NextID(ctx)
	t.Logf("%+v %v", id, err)
	nets, err := e.p.Networks(ctx, "pve1")
	t.Logf("%+v %v", nets, err)
	sc, err := e.p.StorageContent(ctx, "pve1", "local", "")
	t.Logf("%+v %v", sc, err)
	task, err := e.p.CloneGuest(ctx, provider.CloneSpec{Source: vm("pve1", 9000), NewID: id, Spec: provider.GuestSpec{Name: "c1"}})
	t.Logf("%+v %v", task, err)
	st, err := e.p.WaitTask(ctx, task, func(s provider.TaskStatus) { t.Logf("progress %+v", s) })
	t.Logf("%+v %v", st, err)
	t.Log(e.logs.String())
}
