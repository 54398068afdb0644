package proxmox

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/internal/lockedbuf"
	"github.com/moxxie/moxxie/provider"
	"github.com/moxxie/moxxie/pvesim"
)

// simEnv is a simulated cluster behind a TLS server, and a Provider for it.
type simEnv struct {
	sim  *pvesim.Sim
	srv  *httptest.Server
	p    *Provider
	logs *lockedbuf.Buffer

	mu        sync.Mutex
	hits      map[string]int                                    // requests by "METHOD /path", guarded by mu
	intercept func(w http.ResponseWriter, r *http.Request) bool // answers a request itself when it returns true; guarded by mu
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
	e.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.hits[r.Method+" "+r.URL.Path]++
		intercept := e.intercept
		e.mu.Unlock()
		if intercept != nil && intercept(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	}))
	// Handshakes refused on purpose need not be logged.
	e.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	e.srv.StartTLS()
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

// waitFor returns a function that waits for the task it is given and
// fails the test unless the task started and succeeded. It takes the
// results of a task-starting call: e.waitFor(t)(p.StartGuest(ctx, ref)).
func (e *simEnv) waitFor(t *testing.T) func(provider.Task, error) provider.TaskStatus {
	return func(task provider.Task, err error) provider.TaskStatus {
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
}

func vm(node string, id int) provider.GuestRef {
	return provider.GuestRef{Node: node, VMID: id, Kind: provider.KindVM}
}

func ct(node string, id int) provider.GuestRef {
	return provider.GuestRef{Node: node, VMID: id, Kind: provider.KindContainer}
}

func TestSim_TLSTrust(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	base := Config{URL: e.srv.URL, TokenID: testTokenID, TokenSecret: testSecret, Retries: 2}
	connect := func(t *testing.T, mod func(*Config)) (*Provider, error) {
		t.Helper()
		cfg := base
		mod(&cfg)
		p, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p.tr.backoffBase, p.tr.backoffMax = time.Millisecond, time.Millisecond
		_, err = p.Nodes(ctx)
		noSecret(t, err)
		return p, err
	}

	t.Run("CAFile", func(t *testing.T) {
		if _, err := connect(t, func(c *Config) { c.CAFile = serverCAFile(t, e.srv) }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Fingerprint", func(t *testing.T) {
		if _, err := connect(t, func(c *Config) { c.Fingerprint = serverFingerprint(e.srv) }); err != nil {
			t.Fatal(err)
		}
		lower := strings.ToLower(strings.ReplaceAll(serverFingerprint(e.srv), ":", ""))
		if _, err := connect(t, func(c *Config) { c.Fingerprint = lower }); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("Insecure", func(t *testing.T) {
		if _, err := connect(t, func(c *Config) { c.Insecure = true }); err != nil {
			t.Fatal(err)
		}
	})
	before := e.sim.Requests()
	t.Run("WrongFingerprint", func(t *testing.T) {
		wrong := strings.Repeat("00:", 31) + "00"
		p, err := connect(t, func(c *Config) { c.Fingerprint = wrong })
		if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "does not match the pinned Fingerprint") {
			t.Fatalf("err = %v, want a fingerprint mismatch", err)
		}
		if !strings.Contains(err.Error(), serverFingerprint(e.srv)) {
			t.Errorf("err = %v, want it to show the server's fingerprint", err)
		}
		if got := p.tr.attempts.Load(); got != 1 {
			t.Errorf("%d attempts, want 1: a certificate mismatch is not retried", got)
		}
	})
	t.Run("SystemRoots", func(t *testing.T) {
		_, err := connect(t, func(c *Config) {})
		if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "certificate") {
			t.Fatalf("err = %v, want a certificate error", err)
		}
	})
	t.Run("OtherCA", func(t *testing.T) {
		other := httptest.NewTLSServer(http.NotFoundHandler())
		defer other.Close()
		// httptest servers share one certificate; a fresh one is needed.
		other.Close()
		other = httptest.NewUnstartedServer(http.NotFoundHandler())
		other.TLS = &tls.Config{Certificates: []tls.Certificate{selfSigned(t)}}
		other.StartTLS()
		defer other.Close()
		_, err := connect(t, func(c *Config) { c.CAFile = serverCAFile(t, other) })
		if !errors.Is(err, provider.ErrUnavailable) {
			t.Fatalf("err = %v, want a certificate error", err)
		}
	})
	if got := e.sim.Requests(); got != before {
		t.Errorf("%d requests reached the simulator over untrusted connections", got-before)
	}
}

func TestSim_Unauthorized(t *testing.T) {
	e := newSimEnv(t, nil)
	const wrong = "0000-wrong-secret-1111"
	for name, mod := range map[string]func(*Config){
		"wrong secret":  func(c *Config) { c.TokenSecret = wrong },
		"unknown token": func(c *Config) { c.TokenID = "nobody@pve!x" },
	} {
		t.Run(name, func(t *testing.T) {
			p, logs := testProvider(t, e.srv, mod)
			_, err := p.Inventory(context.Background())
			if !errors.Is(err, provider.ErrUnauthorized) {
				t.Fatalf("err = %v, want ErrUnauthorized", err)
			}
			if got := p.tr.attempts.Load(); got != 1 {
				t.Errorf("%d attempts, want 1", got)
			}
			noSecret(t, err)
			if strings.Contains(err.Error(), wrong) || strings.Contains(logs.String(), wrong) {
				t.Errorf("the secret in use shows: %v", err)
			}
		})
	}
}

func TestSim_Reads(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()

	var pv provider.Provider = e.p
	if pv.Name() != "proxmox" {
		t.Errorf("Name() = %q", pv.Name())
	}
	before := e.sim.Requests()
	inv, err := e.p.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.sim.Requests() - before; got != 1 {
		t.Errorf("Inventory made %d requests, want 1", got)
	}
	want := e.sim.Guests()
	if len(inv.Guests) != len(want) {
		t.Fatalf("%d guests, want %d", len(inv.Guests), len(want))
	}
	byID := map[int]provider.Guest{}
	for _, g := range inv.Guests {
		byID[g.VMID] = g
	}
	for _, w := range want {
		g := byID[w.VMID]
		if g.Node != w.Node || string(g.Kind) != w.Type || g.Name != w.Name || g.Status != w.Status ||
			g.Template != w.Template || !slices.Equal(g.Tags, w.Tags) || g.Pool != w.Pool {
			t.Errorf("guest %d = %+v, simulator has %+v", w.VMID, g, w)
		}
	}
	if g := byID[9000]; !g.Template || g.Kind != provider.KindVM || !slices.Equal(g.Tags, []string{"template"}) {
		t.Errorf("template 9000 = %+v", g)
	}
	if g := byID[200]; g.Kind != provider.KindContainer || g.MaxMem == 0 || g.MaxCPU == 0 {
		t.Errorf("container 200 = %+v", g)
	}
	if len(inv.Nodes) != 3 || inv.Nodes[0].Name != "pve1" || inv.Nodes[0].Status != "online" || inv.Nodes[0].MaxCPU == 0 || inv.Nodes[0].MaxMem == 0 {
		t.Errorf("nodes = %+v", inv.Nodes)
	}
	var shared int
	for _, s := range inv.Storage {
		if s.Name == "nfs-shared" && s.Shared && s.Type == "nfs" && slices.Contains(s.Content, "images") && s.Total > 0 {
			shared++
		}
	}
	if shared != 3 {
		t.Errorf("shared storage seen on %d nodes, want 3: %+v", shared, inv.Storage)
	}

	nodes, err := e.p.Nodes(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 3 || nodes[2].Name != "pve3" || nodes[2].Status != "online" || nodes[2].MaxMem == 0 || nodes[2].Uptime == 0 {
		t.Errorf("nodes = %+v", nodes)
	}

	cl, err := e.p.Cluster(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if cl.Name != "pvesim" || !cl.Quorate || cl.Nodes != 3 || cl.Version == "" {
		t.Errorf("cluster = %+v", cl)
	}

	g, err := e.p.Guest(ctx, vm("pve1", 100))
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "web-01" || g.Status != "running" || g.MaxCPU != 2 || g.MaxMem != 2<<30 || !slices.Equal(g.Tags, []string{"prod", "web"}) {
		t.Errorf("guest 100 = %+v", g)
	}
	if g, err := e.p.Guest(ctx, vm("pve1", 9000)); err != nil || !g.Template || g.Name != "debian-12-cloud" {
		t.Errorf("template 9000 = %+v, %v", g, err)
	}
	g, err = e.p.Guest(ctx, ct("pve2", 201))
	if err != nil {
		t.Fatal(err)
	}
	if g.Name != "proxy-01" || g.Status != "stopped" || g.Kind != provider.KindContainer {
		t.Errorf("container 201 = %+v", g)
	}

	cfg, err := e.p.GuestConfig(ctx, vm("pve1", 9000))
	if err != nil {
		t.Fatal(err)
	}
	if cfg["template"] != "1" || cfg["ciuser"] != "debian" || cfg["memory"] != "2048" || cfg["digest"] == "" {
		t.Errorf("config of 9000 = %v", cfg)
	}

	id, err := e.p.NextID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, taken := byID[id]; taken || id < 100 {
		t.Errorf("NextID = %d", id)
	}

	nets, err := e.p.Networks(ctx, "pve1")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(nets, func(n provider.Network) bool { return n.Iface == "vmbr0" })
	if i < 0 || nets[i].Type != "bridge" || !nets[i].Active || nets[i].CIDR == "" || nets[i].Ports == "" {
		t.Errorf("networks = %+v", nets)
	}

	tmpl, err := e.p.StorageContent(ctx, "pve1", "local", "vztmpl")
	if err != nil {
		t.Fatal(err)
	}
	if len(tmpl) == 0 {
		t.Fatal("no container templates")
	}
	for _, c := range tmpl {
		if c.Content != "vztmpl" || !strings.HasPrefix(c.VolID, "local:vztmpl/") || c.Size == 0 || c.Created.IsZero() {
			t.Errorf("content %+v", c)
		}
	}
}

func TestSim_NotFoundAndRejected(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	notFound := map[string]error{}
	_, notFound["guest"] = e.p.Guest(ctx, vm("pve1", 999))
	_, notFound["guest on another node"] = e.p.Guest(ctx, vm("pve2", 100))
	_, notFound["config"] = e.p.GuestConfig(ctx, ct("pve1", 100))
	_, notFound["node"] = e.p.Networks(ctx, "pve9")
	_, notFound["storage"] = e.p.StorageContent(ctx, "pve1", "nosuch", "")
	_, notFound["snapshot"] = e.p.RollbackSnapshot(ctx, vm("pve1", 100), "nosuch")
	_, notFound["task"] = e.p.TaskStatus(ctx, provider.Task{ID: "UPID:pve1:00001234:00005678:6B076214:qmstart:100:root@pam!moxxie:"})
	_, notFound["start"] = e.p.StartGuest(ctx, vm("pve1", 998))
	for name, err := range notFound {
		if !errors.Is(err, provider.ErrNotFound) {
			t.Errorf("%s: err = %v, want ErrNotFound", name, err)
		}
	}
	if n := e.count("GET", "/nodes/pve1/qemu/999/status/current"); n != 1 {
		t.Errorf("a missing guest was asked for %d times", n)
	}

	before := e.sim.Requests()
	rejected := map[string]error{}
	_, rejected["no kind"] = e.p.Guest(ctx, provider.GuestRef{Node: "pve1", VMID: 100})
	_, rejected["no node"] = e.p.StartGuest(ctx, provider.GuestRef{VMID: 100, Kind: provider.KindVM})
	_, rejected["bad spec"] = e.p.ConfigureGuest(ctx, vm("pve1", 100), provider.GuestSpec{NICs: []provider.NIC{{Bridge: "vmbr0", IP: "bogus"}}})
	_, rejected["no new id"] = e.p.CloneGuest(ctx, provider.CloneSpec{Source: vm("pve1", 9000)})
	_, rejected["ct without template"] = e.p.CreateGuest(ctx, ct("pve1", 300), provider.GuestSpec{Name: "x"})
	_, rejected["snapshot name"] = e.p.CreateSnapshot(ctx, vm("pve1", 100), "no good", "")
	_, rejected["backup mode"] = e.p.Backup(ctx, vm("pve1", 100), provider.BackupSpec{Mode: "live"})
	_, rejected["migrate to self"] = e.p.MigrateGuest(ctx, vm("pve1", 100), "pve1", true)
	_, rejected["task without node"] = e.p.TaskStatus(ctx, provider.Task{ID: "not-a-upid"})
	if got := e.sim.Requests(); got != before {
		t.Errorf("%d requests sent for invalid arguments", got-before)
	}
	_, rejected["clone to taken id"] = e.p.CloneGuest(ctx, provider.CloneSpec{Source: vm("pve1", 9000), NewID: 100})
	_, rejected["delete running"] = e.p.DeleteGuest(ctx, vm("pve1", 100))
	_, rejected["migrate running offline"] = e.p.MigrateGuest(ctx, vm("pve1", 100), "pve2", false)
	_, rejected["unknown parameter value"] = e.p.CreateGuest(ctx, vm("pve1", 301), provider.GuestSpec{OSType: "beos"})
	for name, err := range rejected {
		if !errors.Is(err, provider.ErrRejected) {
			t.Errorf("%s: err = %v, want ErrRejected", name, err)
		}
		noSecret(t, err)
	}
}

func TestSim_VMLifecycle(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	id, err := e.p.NextID(ctx)
	if err != nil {
		t.Fatal(err)
	}
	ref := vm("pve1", id)

	// Clone the template and follow the task.
	task, err := e.p.CloneGuest(ctx, provider.CloneSpec{
		Source: vm("pve1", 9000), NewID: id, Full: true,
		Spec: provider.GuestSpec{Name: "app-01", Description: "cloned", Storage: "local-lvm"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.Node != "pve1" || !strings.HasPrefix(task.ID, "UPID:pve1:") {
		t.Fatalf("task = %+v", task)
	}
	var seen []provider.TaskStatus
	st, err := e.p.WaitTask(ctx, task, func(s provider.TaskStatus) { seen = append(seen, s) })
	if err != nil {
		t.Fatal(err)
	}
	if !st.OK || st.Running || st.Exit != "OK" || st.Type != "qmclone" || st.StartTime.IsZero() || st.EndTime.Before(st.StartTime) || st.LastLog == "" {
		t.Errorf("final status = %+v", st)
	}
	if len(seen) == 0 || !reflect.DeepEqual(seen[len(seen)-1], st) {
		t.Errorf("progress saw %+v, want it to end with the final status", seen)
	}
	for i := 1; i < len(seen); i++ {
		if !changed(seen[i-1], seen[i]) {
			t.Errorf("progress called twice with %+v", seen[i])
		}
	}
	ts, err := e.p.TaskStatus(ctx, task)
	if err != nil || !ts.OK || ts.LastLog != st.LastLog || ts.Type != "qmclone" || ts.EndTime.IsZero() {
		t.Errorf("TaskStatus = %+v, %v", ts, err)
	}

	cfg, err := e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["name"] != "app-01" || cfg["description"] != "cloned" {
		t.Errorf("clone config = %v", cfg)
	}
	mac := macOf(cfg["net0"])
	if mac == "" {
		t.Fatalf("clone has no MAC: net0 = %q", cfg["net0"])
	}

	// Configure it.
	spec := provider.GuestSpec{
		Name: "app-01", Cores: 4, MemoryMiB: 4096, Tags: []string{"app", "prod"}, Description: "application server",
		NICs: []provider.NIC{
			{Bridge: "vmbr0", VLAN: 20, IP: "10.0.20.5/24", Gateway: "10.0.20.1"},
			{Bridge: "vmbr0"},
		},
		Nameserver: "10.0.0.53", SearchDom: "example.test",
		SSHKeys: []string{"ssh-ed25519 AAAAC3Nza+/k= ops@example", "ssh-rsa AAAAB3 root@example"},
		CIUser:  "ops", OSType: "l26",
	}
	e.waitFor(t)(e.p.ConfigureGuest(ctx, ref, spec))
	cfg, err = e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	wantCfg := map[string]string{
		"cores": "4", "memory": "4096", "tags": "app;prod", "description": "application server",
		"ipconfig0": "ip=10.0.20.5/24,gw=10.0.20.1", "ipconfig1": "ip=dhcp",
		"nameserver": "10.0.0.53", "searchdomain": "example.test", "ciuser": "ops", "ostype": "l26",
		// The template's firewall=1 is kept.
		"net0": "virtio=" + mac + ",bridge=vmbr0,tag=20,firewall=1",
	}
	for k, v := range wantCfg {
		if cfg[k] != v {
			t.Errorf("config %s = %q, want %q", k, cfg[k], v)
		}
	}
	if keys, err := url.PathUnescape(cfg["sshkeys"]); err != nil || keys != strings.Join(spec.SSHKeys, "\n") {
		t.Errorf("sshkeys = %q (%q, %v)", cfg["sshkeys"], keys, err)
	}
	mac1 := macOf(cfg["net1"])
	if mac1 == "" || mac1 == mac {
		t.Errorf("net1 = %q", cfg["net1"])
	}

	// Re-configure: the NICs keep their MACs, net1 goes away.
	spec.NICs = []provider.NIC{{Bridge: "vmbr1", IP: "10.0.30.5/24"}}
	e.waitFor(t)(e.p.ConfigureGuest(ctx, ref, spec))
	cfg, err = e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["net0"] != "virtio="+mac+",bridge=vmbr1,firewall=1" || cfg["ipconfig0"] != "ip=10.0.30.5/24" {
		t.Errorf("net0 = %q, ipconfig0 = %q", cfg["net0"], cfg["ipconfig0"])
	}
	if _, ok := cfg["net1"]; ok {
		t.Errorf("net1 kept: %q", cfg["net1"])
	}
	// The same spec again changes nothing and needs no task.
	task, err = e.p.ConfigureGuest(ctx, ref, provider.GuestSpec{Cores: 4, Name: "app-01"})
	if err != nil || task.ID != "" {
		t.Errorf("no-op configure = %+v, %v", task, err)
	}

	// Start it.
	e.waitFor(t)(e.p.StartGuest(ctx, ref))
	g, err := e.p.Guest(ctx, ref)
	if err != nil || g.Status != "running" || g.MaxCPU != 4 || g.MaxMem != 4<<30 {
		t.Fatalf("after start: %+v, %v", g, err)
	}

	// Snapshots.
	e.waitFor(t)(e.p.CreateSnapshot(ctx, ref, "before_upgrade", "known good"))
	e.waitFor(t)(e.p.ConfigureGuest(ctx, ref, provider.GuestSpec{Description: "changed"}))
	snaps, err := e.p.Snapshots(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if len(snaps) != 1 || snaps[0].Name != "before_upgrade" || snaps[0].Description != "known good" || snaps[0].Created.IsZero() {
		t.Fatalf("snapshots = %+v", snaps)
	}
	e.waitFor(t)(e.p.RollbackSnapshot(ctx, ref, "before_upgrade"))
	if cfg, err := e.p.GuestConfig(ctx, ref); err != nil || cfg["description"] != "application server" {
		t.Errorf("after rollback: description %q, %v", cfg["description"], err)
	}
	// A snapshot without RAM leaves the guest stopped after a rollback.
	if g, err := e.p.Guest(ctx, ref); err != nil || g.Status != "stopped" {
		t.Errorf("after rollback: %+v, %v", g, err)
	}
	e.waitFor(t)(e.p.StartGuest(ctx, ref))
	e.waitFor(t)(e.p.DeleteSnapshot(ctx, ref, "before_upgrade"))
	if snaps, err := e.p.Snapshots(ctx, ref); err != nil || len(snaps) != 0 {
		t.Errorf("after delete: %+v, %v", snaps, err)
	}

	// Back it up; the backup shows on the storage.
	e.waitFor(t)(e.p.Backup(ctx, ref, provider.BackupSpec{Storage: "local", Mode: "snapshot", Compress: "zstd", Notes: "nightly"}))
	backups, err := e.p.StorageContent(ctx, "pve1", "local", "backup")
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(backups, func(c provider.Content) bool { return c.VMID == id })
	if i < 0 {
		t.Fatalf("no backup of %d in %+v", id, backups)
	}
	if b := backups[i]; b.Content != "backup" || b.Size == 0 || b.Created.IsZero() || b.Notes != "nightly" {
		t.Errorf("backup = %+v", b)
	}

	// Migrate it live to pve2.
	e.waitFor(t)(e.p.MigrateGuest(ctx, ref, "pve2", true))
	ref.Node = "pve2"
	g, err = e.p.Guest(ctx, ref)
	if err != nil || g.Status != "running" {
		t.Fatalf("after migration: %+v, %v", g, err)
	}

	// Shut it down, start it, stop it, delete it.
	e.waitFor(t)(e.p.ShutdownGuest(ctx, ref, 30*time.Second))
	if g, err := e.p.Guest(ctx, ref); err != nil || g.Status != "stopped" {
		t.Fatalf("after shutdown: %+v, %v", g, err)
	}
	e.waitFor(t)(e.p.StartGuest(ctx, ref))
	e.waitFor(t)(e.p.StopGuest(ctx, ref))
	if g, err := e.p.Guest(ctx, ref); err != nil || g.Status != "stopped" {
		t.Fatalf("after stop: %+v, %v", g, err)
	}
	e.waitFor(t)(e.p.DeleteGuest(ctx, ref))
	if _, err := e.p.Guest(ctx, ref); !errors.Is(err, provider.ErrNotFound) {
		t.Errorf("after delete: err = %v, want ErrNotFound", err)
	}
}

// macOf returns the MAC address in a net{i} value.
func macOf(net string) string {
	for _, p := range parseProps(net) {
		if slices.Contains(qemuNICModels, p.k) || p.k == "macaddr" || p.k == "hwaddr" {
			return p.v
		}
	}
	return ""
}

func TestSim_CreateVM(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	ref := vm("pve2", 500)
	e.waitFor(t)(e.p.CreateGuest(ctx, ref, provider.GuestSpec{
		Name: "fresh", Cores: 2, MemoryMiB: 1024, Tags: []string{"new"},
		NICs:    []provider.NIC{{Bridge: "vmbr0", VLAN: 30, IP: "10.0.30.9/24", Gateway: "10.0.30.1"}},
		Storage: "local-lvm", DiskGiB: 16, OSType: "l26", CIUser: "ops",
	}))
	cfg, err := e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"name": "fresh", "cores": "2", "memory": "1024", "tags": "new",
		"ipconfig0": "ip=10.0.30.9/24,gw=10.0.30.1", "ostype": "l26", "ciuser": "ops", "scsihw": "virtio-scsi-single"} {
		if cfg[k] != v {
			t.Errorf("config %s = %q, want %q", k, cfg[k], v)
		}
	}
	if !strings.Contains(cfg["scsi0"], "local-lvm:vm-500-disk") || !strings.Contains(cfg["scsi0"], "size=16G") {
		t.Errorf("scsi0 = %q", cfg["scsi0"])
	}
	if !strings.Contains(cfg["ide2"], "cloudinit") {
		t.Errorf("ide2 = %q, want a cloud-init drive", cfg["ide2"])
	}
	if macOf(cfg["net0"]) == "" || !strings.Contains(cfg["net0"], "tag=30") {
		t.Errorf("net0 = %q", cfg["net0"])
	}
	g, err := e.p.Guest(ctx, ref)
	if err != nil || g.Name != "fresh" || g.Status != "stopped" || g.MaxDisk != 16<<30 {
		t.Errorf("guest = %+v, %v", g, err)
	}
	// The VMID is taken now.
	if _, err := e.p.CreateGuest(ctx, ref, provider.GuestSpec{Name: "again"}); !errors.Is(err, provider.ErrRejected) {
		t.Errorf("second create: err = %v, want ErrRejected", err)
	}
}

func TestSim_ContainerLifecycle(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	ref := ct("pve1", 600)
	e.waitFor(t)(e.p.CreateGuest(ctx, ref, provider.GuestSpec{
		Name: "ct-app", Cores: 2, MemoryMiB: 1024, Tags: []string{"ct"},
		NICs:       []provider.NIC{{Bridge: "vmbr0", VLAN: 40, IP: "10.0.40.5/24", Gateway: "10.0.40.1"}},
		Nameserver: "10.0.0.53", SSHKeys: []string{"ssh-ed25519 AAAA ops@example"},
		Storage: "local-lvm", DiskGiB: 4, OSTemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
	}))
	cfg, err := e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["hostname"] != "ct-app" || cfg["cores"] != "2" || cfg["memory"] != "1024" || cfg["nameserver"] != "10.0.0.53" ||
		!strings.Contains(cfg["rootfs"], "size=4G") {
		t.Errorf("config = %v", cfg)
	}
	mac := macOf(cfg["net0"])
	if mac == "" || !strings.Contains(cfg["net0"], "ip=10.0.40.5/24") || !strings.Contains(cfg["net0"], "gw=10.0.40.1") || !strings.Contains(cfg["net0"], "tag=40") {
		t.Fatalf("net0 = %q", cfg["net0"])
	}

	// Containers are re-configured synchronously: no task.
	task, err := e.p.ConfigureGuest(ctx, ref, provider.GuestSpec{
		MemoryMiB: 2048, NICs: []provider.NIC{{Bridge: "vmbr1"}}, OSTemplate: "local:vztmpl/debian-12-standard_12.7-1_amd64.tar.zst",
	})
	if err != nil {
		t.Fatal(err)
	}
	if task.ID != "" || task.Node != "pve1" {
		t.Errorf("task = %+v, want none", task)
	}
	var calls int
	st, err := e.p.WaitTask(ctx, task, func(provider.TaskStatus) { calls++ })
	if err != nil || !st.OK || calls != 1 {
		t.Errorf("WaitTask(no task) = %+v, %v after %d calls", st, err, calls)
	}
	if st, err := e.p.TaskStatus(ctx, task); err != nil || !st.OK {
		t.Errorf("TaskStatus(no task) = %+v, %v", st, err)
	}
	cfg, err = e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["memory"] != "2048" || macOf(cfg["net0"]) != mac || !strings.Contains(cfg["net0"], "bridge=vmbr1") || !strings.Contains(cfg["net0"], "ip=dhcp") {
		t.Errorf("after configure: memory %q, net0 %q (MAC was %s)", cfg["memory"], cfg["net0"], mac)
	}
	if _, err := e.p.ConfigureGuest(ctx, ref, provider.GuestSpec{SSHKeys: []string{"ssh-ed25519 B"}}); !errors.Is(err, provider.ErrRejected) {
		t.Errorf("SSH keys on a container after creation: err = %v, want ErrRejected", err)
	}

	e.waitFor(t)(e.p.StartGuest(ctx, ref))
	e.waitFor(t)(e.p.CreateSnapshot(ctx, ref, "snap1", ""))
	if snaps, err := e.p.Snapshots(ctx, ref); err != nil || len(snaps) != 1 || snaps[0].Name != "snap1" {
		t.Errorf("snapshots = %+v, %v", snaps, err)
	}
	e.waitFor(t)(e.p.StopGuest(ctx, ref))
	e.waitFor(t)(e.p.RollbackSnapshot(ctx, ref, "snap1"))
	e.waitFor(t)(e.p.DeleteSnapshot(ctx, ref, "snap1"))

	// Clone it and move the clone with a restart.
	e.waitFor(t)(e.p.CloneGuest(ctx, provider.CloneSpec{Source: ref, NewID: 601, Full: true, Spec: provider.GuestSpec{Name: "ct-copy", Storage: "local-lvm"}}))
	clone := ct("pve1", 601)
	cfg, err = e.p.GuestConfig(ctx, clone)
	if err != nil || cfg["hostname"] != "ct-copy" || macOf(cfg["net0"]) == mac {
		t.Errorf("clone config = %v, %v", cfg, err)
	}
	e.waitFor(t)(e.p.StartGuest(ctx, clone))
	e.waitFor(t)(e.p.MigrateGuest(ctx, clone, "pve3", true))
	clone.Node = "pve3"
	if g, err := e.p.Guest(ctx, clone); err != nil || g.Status != "running" {
		t.Errorf("after restart migration: %+v, %v", g, err)
	}
	e.waitFor(t)(e.p.ShutdownGuest(ctx, clone, 0))
	e.waitFor(t)(e.p.DeleteGuest(ctx, clone))
	e.waitFor(t)(e.p.Backup(ctx, ref, provider.BackupSpec{Storage: "nfs-shared", Mode: "stop"}))
	backups, err := e.p.StorageContent(ctx, "pve2", "nfs-shared", "backup")
	if err != nil || !slices.ContainsFunc(backups, func(c provider.Content) bool { return c.VMID == 600 }) {
		t.Errorf("backups on shared storage = %+v, %v", backups, err)
	}
	e.waitFor(t)(e.p.DeleteGuest(ctx, ref))
}

func TestSim_TaskFailed(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	e.sim.SetFaults(pvesim.Faults{FailTasks: []string{"qmstart"}})
	task, err := e.p.StartGuest(ctx, vm("pve1", 103))
	if err != nil {
		t.Fatal(err)
	}
	st, err := e.p.WaitTask(ctx, task, nil)
	if !errors.Is(err, provider.ErrTaskFailed) {
		t.Fatalf("err = %v, want ErrTaskFailed", err)
	}
	if st.OK || st.Running || st.Exit == "" || st.Exit == "OK" || !strings.Contains(err.Error(), st.Exit) || !strings.Contains(err.Error(), "qmstart") {
		t.Errorf("status %+v, err %v", st, err)
	}
	if !strings.HasPrefix(st.LastLog, "TASK ERROR") {
		t.Errorf("last log %q", st.LastLog)
	}
	ts, err := e.p.TaskStatus(ctx, task)
	if err != nil || ts.OK || ts.Exit != st.Exit {
		t.Errorf("TaskStatus = %+v, %v", ts, err)
	}
	if g, err := e.p.Guest(ctx, vm("pve1", 103)); err != nil || g.Status != "stopped" {
		t.Errorf("guest after failed start: %+v, %v", g, err)
	}
}

func TestSim_WaitTaskCanceled(t *testing.T) {
	e := newSimEnv(t, nil)
	e.sim.SetFaults(pvesim.Faults{SlowTasks: time.Hour})
	task, err := e.p.StartGuest(context.Background(), vm("pve1", 103))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := e.p.WaitTask(ctx, task, func(s provider.TaskStatus) {
		if s.Running {
			cancel()
		}
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if !st.Running || st.Type != "qmstart" {
		t.Errorf("last status %+v", st)
	}
}

func TestSim_ErrorRate(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	e.sim.SetFaults(pvesim.Faults{ErrorRate: 1})

	_, err := e.p.Nodes(ctx)
	if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "injected fault") {
		t.Fatalf("err = %v, want ErrUnavailable with the server's message", err)
	}
	if n := e.count("GET", "/nodes"); n != 1+DefaultRetries {
		t.Errorf("GET /nodes sent %d times, want %d", n, 1+DefaultRetries)
	}

	// A POST that reached the server may have been applied: no retry.
	_, err = e.p.CloneGuest(ctx, provider.CloneSpec{Source: vm("pve1", 9000), NewID: 700})
	if !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if n := e.count("POST", "/nodes/pve1/qemu/9000/clone"); n != 1 {
		t.Errorf("clone sent %d times, want 1", n)
	}

	p1, _ := testProvider(t, e.srv, func(c *Config) { c.Retries = 1 })
	_, err = p1.Guest(ctx, vm("pve1", 100))
	if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Fatalf("err = %v", err)
	}
	if n := e.count("GET", "/nodes/pve1/qemu/100/status/current"); n != 2 {
		t.Errorf("sent %d times, want 2", n)
	}

	e.sim.SetFaults(pvesim.Faults{})
	if _, err := e.p.Nodes(ctx); err != nil {
		t.Errorf("after the fault: %v", err)
	}
}

func TestSim_Timeout(t *testing.T) {
	e := newSimEnv(t, func(c *Config) { c.Timeout = 100 * time.Millisecond; c.Retries = 1 })
	ctx := context.Background()

	e.sim.SetFaults(pvesim.Faults{Timeout: true})
	_, err := e.p.Inventory(ctx)
	if !errors.Is(err, ErrTimeout) || !errors.Is(err, provider.ErrUnavailable) {
		t.Fatalf("err = %v, want ErrTimeout and ErrUnavailable", err)
	}
	if n := e.count("GET", "/cluster/resources"); n != 2 {
		t.Errorf("sent %d times, want 2", n)
	}

	e.sim.SetFaults(pvesim.Faults{Latency: time.Hour})
	_, err = e.p.Guest(ctx, vm("pve1", 100))
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	_, err = e.p.CreateGuest(ctx, vm("pve1", 800), provider.GuestSpec{Name: "slow"})
	if !errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want ErrTimeout", err)
	}
	if n := e.count("POST", "/nodes/pve1/qemu"); n != 1 {
		t.Errorf("create sent %d times, want 1", n)
	}
	noSecret(t, err)
}

func TestSim_NodeOffline(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	if err := e.sim.SetNodeOnline("pve2", false); err != nil {
		t.Fatal(err)
	}

	_, err := e.p.Networks(ctx, "pve2")
	if !errors.Is(err, provider.ErrUnavailable) || !strings.Contains(err.Error(), "595") {
		t.Fatalf("err = %v, want ErrUnavailable from a 595", err)
	}
	if n := e.count("GET", "/nodes/pve2/network"); n != 1+DefaultRetries {
		t.Errorf("sent %d times, want %d", n, 1+DefaultRetries)
	}
	if _, err := e.p.Guest(ctx, vm("pve2", 101)); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("guest on the offline node: err = %v", err)
	}
	if _, err := e.p.StartGuest(ctx, vm("pve2", 104)); !errors.Is(err, provider.ErrUnavailable) {
		t.Errorf("start on the offline node: err = %v", err)
	}
	if n := e.count("POST", "/nodes/pve2/qemu/104/status/start"); n != 1 {
		t.Errorf("start sent %d times, want 1", n)
	}

	inv, err := e.p.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range inv.Nodes {
		if want := map[bool]string{true: "offline", false: "online"}[n.Name == "pve2"]; n.Status != want {
			t.Errorf("node %s is %s, want %s", n.Name, n.Status, want)
		}
	}
	for _, g := range inv.Guests {
		if g.Node == "pve2" && g.Status == "running" {
			t.Errorf("guest %d on the offline node reported running", g.VMID)
		}
	}
	if cl, err := e.p.Cluster(ctx); err != nil || !cl.Quorate {
		t.Errorf("cluster with one node down = %+v, %v", cl, err)
	}

	if err := e.sim.SetNodeOnline("pve2", true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.p.Networks(ctx, "pve2"); err != nil {
		t.Errorf("after the node came back: %v", err)
	}
}

func TestSim_SecretNeverShown(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	e.sim.SetFaults(pvesim.Faults{ErrorRate: 1})
	var errs []error
	_, err := e.p.Inventory(ctx)
	errs = append(errs, err)
	_, err = e.p.CreateGuest(ctx, vm("pve1", 900), provider.GuestSpec{Name: "x"})
	errs = append(errs, err)
	e.sim.SetFaults(pvesim.Faults{})
	_, err = e.p.Guest(ctx, vm("pve1", 999))
	errs = append(errs, err)
	for _, err := range errs {
		if err == nil {
			t.Fatal("no error")
		}
		noSecret(t, err)
		if strings.Contains(fmt.Sprintf("%+v %#v", err, err), testSecret) {
			t.Errorf("formatted error shows the secret")
		}
	}
	if !strings.Contains(e.logs.String(), "retrying request") {
		t.Error("retries are not logged")
	}
	// testProvider checks the log for the secret at the end of the test.
}

func TestSim_Pools(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()

	// A clone joins its pool through the clone request.
	e.waitFor(t)(e.p.CloneGuest(ctx, provider.CloneSpec{Source: vm("pve1", 9000), NewID: 150, Spec: provider.GuestSpec{Name: "pooled", Pool: "apps"}}))
	inv, err := e.p.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(inv.Guests, func(g provider.Guest) bool { return g.VMID == 150 }); i < 0 || inv.Guests[i].Pool != "apps" {
		t.Errorf("clone not in pool apps: %+v", inv.Guests)
	}

	// pvesim serves no /pools routes. Answer them here the way Proxmox VE
	// 8.0 does: no PUT /pools (501), but PUT /pools/{poolid}.
	var bodies []string
	e.mu.Lock()
	e.intercept = func(w http.ResponseWriter, r *http.Request) bool {
		if r.Method != http.MethodPut || !strings.HasPrefix(r.URL.Path, "/api2/json/pools") {
			return false
		}
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		bodies = append(bodies, r.URL.Path+" "+string(b))
		e.mu.Unlock()
		pool, ok := strings.CutPrefix(r.URL.Path, "/api2/json/pools/")
		if !ok {
			writeRaw(w, http.StatusNotImplemented, "Method 'PUT /pools' not implemented", "")
			return true
		}
		var req struct{ VMs string }
		if err := json.Unmarshal(b, &req); err != nil {
			t.Error(err)
		}
		id, _ := strconv.Atoi(req.VMs)
		if err := e.sim.UpdateGuest(id, func(g *pvesim.Guest) { g.Pool = pool }); err != nil {
			t.Error(err)
		}
		fmt.Fprint(w, `{"data":null}`)
		return true
	}
	e.mu.Unlock()

	task, err := e.p.ConfigureGuest(ctx, vm("pve1", 150), provider.GuestSpec{Pool: "prod"})
	if err != nil || task.ID != "" {
		t.Fatalf("configure pool: %+v, %v", task, err)
	}
	e.mu.Lock()
	got := slices.Clone(bodies)
	bodies = nil
	e.mu.Unlock()
	want := []string{
		`/api2/json/pools {"allow-move":1,"poolid":"prod","vms":"150"}`,
		`/api2/json/pools/prod {"allow-move":1,"vms":"150"}`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("pool requests:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	inv, err = e.p.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if i := slices.IndexFunc(inv.Guests, func(g provider.Guest) bool { return g.VMID == 150 }); i < 0 || inv.Guests[i].Pool != "prod" {
		t.Errorf("guest not moved to pool prod")
	}
	// Already there: no request.
	_, err = e.p.ConfigureGuest(ctx, vm("pve1", 150), provider.GuestSpec{Pool: "prod"})
	e.mu.Lock()
	defer e.mu.Unlock()
	if err != nil || len(bodies) != 0 {
		t.Errorf("pool unchanged: %v, requests %v", err, bodies)
	}
}

func TestSim_SetGuestConfig(t *testing.T) {
	e := newSimEnv(t, nil)
	ctx := context.Background()
	ref := vm("pve1", 100)
	before, err := e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	// Two NICs with addresses, then back to one: the second goes.
	e.waitFor(t)(e.p.SetGuestConfig(ctx, ref, map[string]string{
		"net0": "virtio=BC:24:11:AA:BB:01,bridge=vmbr0,tag=20", "ipconfig0": "ip=10.0.20.5/24,gw=10.0.20.1",
		"net1": "virtio=BC:24:11:AA:BB:02,bridge=vmbr1", "ipconfig1": "ip=dhcp",
	}, nil))
	cfg, err := e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["net0"] != "virtio=BC:24:11:AA:BB:01,bridge=vmbr0,tag=20" || cfg["ipconfig0"] != "ip=10.0.20.5/24,gw=10.0.20.1" ||
		cfg["net1"] != "virtio=BC:24:11:AA:BB:02,bridge=vmbr1" || cfg["ipconfig1"] != "ip=dhcp" || cfg["name"] != before["name"] {
		t.Fatalf("config after the set: %v", cfg)
	}
	e.waitFor(t)(e.p.SetGuestConfig(ctx, ref, map[string]string{"net0": before["net0"]}, []string{"net1", "ipconfig1", "ipconfig7"}))
	cfg, err = e.p.GuestConfig(ctx, ref)
	if err != nil {
		t.Fatal(err)
	}
	if cfg["net0"] != before["net0"] || cfg["net1"] != "" || cfg["ipconfig1"] != "" || cfg["ipconfig0"] != "ip=10.0.20.5/24,gw=10.0.20.1" {
		t.Fatalf("config after the delete: %v", cfg)
	}
	// Nothing to change sends nothing.
	posts := e.count("POST", "/nodes/pve1/qemu/100/config")
	if task, err := e.p.SetGuestConfig(ctx, ref, map[string]string{"net0": before["net0"]}, []string{"net5"}); err != nil || task.ID != "" {
		t.Fatalf("a set that changes nothing: %+v, %v", task, err)
	}
	if n := e.count("POST", "/nodes/pve1/qemu/100/config"); n != posts {
		t.Errorf("a set that changes nothing sent %d requests", n-posts)
	}
	for name, c := range map[string]struct {
		set map[string]string
		del []string
	}{
		"bad key":        {map[string]string{"Net0": "virtio,bridge=vmbr0"}, nil},
		"empty value":    {map[string]string{"net0": ""}, nil},
		"set and delete": {map[string]string{"net0": "virtio,bridge=vmbr0"}, []string{"net0"}},
		"bad delete":     {nil, []string{"net0;rm"}},
	} {
		if _, err := e.p.SetGuestConfig(ctx, ref, c.set, c.del); !errors.Is(err, provider.ErrRejected) {
			t.Errorf("%s: err = %v, want ErrRejected", name, err)
		}
	}

	// A container's change needs no task.
	cref := ct("pve1", 200)
	task, err := e.p.SetGuestConfig(ctx, cref, map[string]string{"net0": "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:03,ip=10.0.30.5/24,gw=10.0.30.1,tag=30"}, nil)
	if err != nil || task.ID != "" {
		t.Fatalf("container: %+v, %v", task, err)
	}
	if cfg, err := e.p.GuestConfig(ctx, cref); err != nil || cfg["net0"] != "name=eth0,bridge=vmbr0,hwaddr=BC:24:11:AA:BB:03,ip=10.0.30.5/24,gw=10.0.30.1,tag=30" {
		t.Fatalf("container config %v, %v", cfg, err)
	}
}
