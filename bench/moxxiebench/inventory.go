package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/moxxie/moxxie/node"
	"github.com/moxxie/moxxie/pki"
	"github.com/moxxie/moxxie/pvesim"
)

// inventoryCmd measures inventory sync against a large simulated Proxmox
// cluster: it serves the simulator itself, starts one moxxied process
// syncing from it every --interval, and reports the first full sync's wall
// time, then over --duration of syncs that find nothing changed the
// server's CPU time per cycle and the log entries written, then what one
// changed guest costs, and last the simulator's own request rate for
// /cluster/resources.
func inventoryCmd(ctx context.Context, stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("inventory", stderr)
	moxxied := fs.String("moxxied", "moxxied", "moxxied binary to run")
	nodes := fs.Int("nodes", 64, "simulated Proxmox nodes")
	guests := fs.Int("guests", 10000, "simulated guests")
	interval := fs.Duration("interval", time.Second, "inventory sync interval of the server")
	duration := fs.Duration("duration", 30*time.Second, "how long to measure syncs without changes")
	clients := fs.Int("clients", 4, "concurrent clients measuring the simulator's request rate")
	if err := fs.Parse(args); err != nil {
		return errUsage
	}
	dir, err := os.MkdirTemp("", "moxxiebench-inventory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	fmt.Fprintf(stdout, "== simulator: %d nodes, %d guests\n", *nodes, *guests)
	start := time.Now()
	sim, err := pvesim.New(pvesim.Config{Seed: pvesim.Seed{Nodes: *nodes, Guests: *guests}, Tokens: map[string]string{"root@pam!bench": "bench-secret"}})
	if err != nil {
		return err
	}
	defer sim.Close()
	fmt.Fprintf(stdout, "seeded in %s\n", time.Since(start).Round(time.Millisecond))
	tlsDir := filepath.Join(dir, "tls")
	if err := pki.CreateCA(tlsDir, "bench CA", 24*time.Hour); err != nil {
		return err
	}
	for _, c := range []struct {
		name string
		role pki.Role
	}{{"pvesim", pki.RoleServer}, {"s1", pki.RoleServer}} {
		if err := pki.CreateCert(tlsDir, tlsDir, c.name, c.role, []string{"127.0.0.1"}, 24*time.Hour); err != nil {
			return err
		}
	}
	cert, err := tls.LoadX509KeyPair(pki.CertPath(tlsDir, "pvesim"), pki.KeyPath(tlsDir, "pvesim"))
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: sim.Handler(), TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	defer srv.Close()

	// One server, bootstrapping itself, syncing from the simulator.
	ports, err := freeLoopbackPorts(2)
	if err != nil {
		return err
	}
	cfg := node.DefaultConfig()
	cfg.NodeID, cfg.DataDir, cfg.BootstrapExpect, cfg.LogFormat, cfg.LogLevel = "s1", filepath.Join(dir, "s1"), 1, "text", "warn"
	cfg.APIAddress, cfg.RaftAddress = fmt.Sprintf("127.0.0.1:%d", ports[0]), fmt.Sprintf("127.0.0.1:%d", ports[1])
	ca := filepath.Join(tlsDir, "ca.pem")
	cfg.TLS = node.TLSConfig{CAFile: ca, CertFile: pki.CertPath(tlsDir, "s1"), KeyFile: pki.KeyPath(tlsDir, "s1")}
	secretFile := filepath.Join(dir, "pve-token")
	if err := os.WriteFile(secretFile, []byte("bench-secret\n"), 0o600); err != nil {
		return err
	}
	cfg.Proxmox = node.ProxmoxConfig{URL: "https://" + ln.Addr().String(), TokenID: "root@pam!bench", TokenSecretFile: secretFile, CAFile: ca, SyncInterval: node.Duration(*interval)}
	b, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	cfgFile := filepath.Join(dir, "moxxied.yaml")
	if err := os.WriteFile(cfgFile, b, 0o600); err != nil {
		return err
	}
	logFile, err := os.Create(filepath.Join(dir, "moxxied.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	cmd := exec.CommandContext(ctx, *moxxied, "server", "--config", cfgFile)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	started := time.Now()
	if err := cmd.Start(); err != nil {
		return err
	}
	defer func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		_ = cmd.Wait()
	}()
	tr, err := newTransport(ca, 4)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	base := "https://" + cfg.APIAddress
	token, err := benchBootstrap(ctx, hc, base)
	if err != nil {
		return err
	}
	var st struct {
		Guests, Nodes int
		LastSync      string `json:"last_sync"`
	}
	get := func(path string, v any) error {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			body, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("GET %s: %s: %s", path, resp.Status, snippet(body))
		}
		return json.NewDecoder(resp.Body).Decode(v)
	}
	want := len(sim.Guests())
	for st.Guests != want {
		if !sleepCtx(ctx, 20*time.Millisecond) {
			return ctx.Err()
		}
		if err := get("/v1/inventory", &st); err != nil {
			return err
		}
		if time.Since(started) > 5*time.Minute {
			return fmt.Errorf("inventory holds %d of %d guests after 5 minutes (log: %s)", st.Guests, want, logFile.Name())
		}
	}
	fmt.Fprintf(stdout, "first full sync: %d nodes, %d guests in the inventory %s after moxxied started\n", st.Nodes, st.Guests, time.Since(started).Round(time.Millisecond))

	status := func() uint64 {
		var s struct {
			CommitIndex uint64 `json:"commit_index"`
		}
		_ = get("/v1/status", &s)
		return s.CommitIndex
	}
	// Let the cycle after the first settle usage recorded while the
	// simulated guests were starting.
	sleepCtx(ctx, 3**interval)
	pid := cmd.Process.Pid
	cpu0, _ := procCPU(pid)
	req0, idx0, t0 := sim.Requests(), status(), time.Now()
	if !sleepCtx(ctx, *duration) {
		return ctx.Err()
	}
	cpu1, _ := procCPU(pid)
	req1, idx1, t1 := sim.Requests(), status(), time.Now()
	cycles := req1 - req0 // one GET /cluster/resources per cycle; the reads above do not reach the simulator
	if cycles == 0 {
		return fmt.Errorf("no sync cycles in %s", *duration)
	}
	// The loop waits the interval after each cycle, so what a cycle
	// adds to the interval is its wall time.
	wall := t1.Sub(t0)/time.Duration(cycles) - *interval
	fmt.Fprintf(stdout, "syncs without changes: %d cycles in %s, about %s wall each; moxxied CPU %s in all, %.1f ms per cycle (the server's idle work included); raft entries written: %d\n",
		cycles, t1.Sub(t0).Round(time.Millisecond), wall.Round(time.Millisecond), (cpu1 - cpu0).Round(time.Millisecond), float64(cpu1-cpu0)/float64(time.Millisecond)/float64(cycles), idx1-idx0)

	// One changed guest.
	vmid := sim.Guests()[want/2].VMID
	if err := sim.UpdateGuest(vmid, func(g *pvesim.Guest) { g.Tags = append(g.Tags, "bench-changed") }); err != nil {
		return err
	}
	idx2 := status()
	changed := time.Now()
	for {
		var g struct{ Tags []string }
		if err := get(fmt.Sprintf("/v1/inventory/guests/%d", vmid), &g); err != nil {
			return err
		}
		if strings.Contains(strings.Join(g.Tags, ","), "bench-changed") {
			break
		}
		if !sleepCtx(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
	fmt.Fprintf(stdout, "one changed guest: in the inventory %s after the change, raft entries written: %d\n", time.Since(changed).Round(time.Millisecond), status()-idx2)

	// The simulator's rate for the request a sync makes.
	rate, err := simRate(ctx, sim, ln.Addr().String(), ca, *clients, 5*time.Second)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "simulator: GET /cluster/resources (%d entries) at %.0f requests/s from %d clients\n", want+*nodes*4, rate, *clients)
	return nil
}

// benchBootstrap waits for the server and returns an admin token.
func benchBootstrap(ctx context.Context, hc *http.Client, base string) (string, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		resp, err := hc.Post(base+"/v1/acl/bootstrap", "application/json", nil)
		if err == nil {
			var out struct {
				SecretID string `json:"secret_id"`
			}
			err = json.NewDecoder(resp.Body).Decode(&out)
			resp.Body.Close()
			if resp.StatusCode == http.StatusCreated && err == nil {
				return out.SecretID, nil
			}
		}
		if time.Now().After(deadline) {
			return "", fmt.Errorf("moxxied did not bootstrap within a minute: %v", err)
		}
		if !sleepCtx(ctx, 100*time.Millisecond) {
			return "", ctx.Err()
		}
	}
}

// simRate measures how many GET /cluster/resources the simulator answers
// per second.
func simRate(ctx context.Context, sim *pvesim.Sim, addr, ca string, clients int, d time.Duration) (float64, error) {
	tr, err := newTransport(ca, clients)
	if err != nil {
		return 0, err
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var n atomic.Int64
	var wg sync.WaitGroup
	var firstErr atomic.Value
	start := time.Now()
	for range clients {
		wg.Go(func() {
			for ctx.Err() == nil {
				req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/api2/json/cluster/resources", nil)
				req.Header.Set("Authorization", "PVEAPIToken=root@pam!bench=bench-secret")
				resp, err := hc.Do(req)
				if err != nil {
					if ctx.Err() == nil {
						firstErr.CompareAndSwap(nil, err)
					}
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if err, ok := firstErr.Load().(error); ok {
		return 0, err
	}
	return float64(n.Load()) / time.Since(start).Seconds(), nil
}

// freeLoopbackPorts returns n free loopback TCP ports.
func freeLoopbackPorts(n int) ([]int, error) {
	var out []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		out = append(out, l.Addr().(*net.TCPAddr).Port)
	}
	return out, nil
}
