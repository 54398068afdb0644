package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/moxxie/moxxie/pki"
	"github.com/moxxie/moxxie/secrets"
)

// DevOptions configures a dev-mode appliance.
type DevOptions struct {
	// DataDir holds everything; state survives restarts of the dev cluster.
	DataDir string
	// Nodes is the number of servers (default 3).
	Nodes int
	// Binary is the moxxied executable started for each server.
	Binary string
	// Restart restarts a server process that dies, after a short pause.
	Restart bool
	// Out receives the summary printed once the cluster is ready.
	Out io.Writer
	// Logf reports supervisor events.
	Logf func(format string, args ...any)
	// Site puts the appliance's servers in a site of the sites' pool
	// (docs/sites.md), with SiteRole (server, or witness: votes only);
	// SiteJoin lists gossip addresses of other sites' servers. Several
	// dev appliances form a federation on one machine when they share the
	// gossip keys (GossipKeyFile, made when missing) and a CA (CADir: its
	// ca.pem and ca-key.pem sign this appliance's certificates, so
	// requests can pass between sites).
	Site          string
	SiteRole      string
	SiteJoin      []string
	GossipKeyFile string
	CADir         string
	// Host is the loopback address the servers and the simulator listen
	// on (default 127.0.0.1): sites on one machine each take their own.
	Host string
	// BackupDir, when set, gives the simulator a backup storage "dr" in
	// that directory (pvesim's Seed.BackupDirs). Dev appliances given
	// the same directory share their backups, as two Proxmox clusters
	// sharing a mount do: a backup made at one site can be listed and
	// restored at another.
	BackupDir string
}

// DevServer is one entry of <data-dir>/servers.json.
type DevServer struct {
	ID          string `json:"id"`
	PID         int    `json:"pid"`
	APIAddress  string `json:"api_address"`
	RaftAddress string `json:"raft_address"`
	DNSAddress  string `json:"dns_address"`
	// MetricsAddress serves GET /metrics in plain HTTP, without a token,
	// on loopback, so a Prometheus can scrape the server.
	MetricsAddress string `json:"metrics_address"`
	// GossipAddress is the server's address in the sites' pool, with
	// --site only.
	GossipAddress string `json:"gossip_address,omitempty"`
}

// devLayout is persisted in <data-dir>/dev.json so a restarted dev cluster
// reuses its ports: raft remembers its peers by address.
type devLayout struct {
	Servers []DevServer `json:"servers"`
	// PVESimAddress is where the embedded Proxmox simulator listens.
	PVESimAddress string `json:"pvesim_address"`
	// Host is the loopback address every listener is on (default
	// 127.0.0.1); sites of one machine each take their own.
	Host string `json:"host,omitempty"`
}

// host returns the address the layout's listeners are on.
func (l *devLayout) host() string {
	if l.Host == "" {
		return "127.0.0.1"
	}
	return l.Host
}

// RunDev runs a dev appliance: opts.Nodes server processes on loopback with
// a generated CA, an admin token, <data-dir>/env and <data-dir>/servers.json.
// It returns when ctx is cancelled, after stopping the servers.
func RunDev(ctx context.Context, opts DevOptions) error {
	if opts.Nodes <= 0 {
		opts.Nodes = 3
	}
	if opts.Logf == nil {
		opts.Logf = func(string, ...any) {}
	}
	if opts.Out == nil {
		opts.Out = io.Discard
	}
	dd, err := filepath.Abs(opts.DataDir)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dd, 0o700); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	layout, err := devLoadLayout(dd, opts.Nodes, opts.Host)
	if err != nil {
		return err
	}
	tlsDir := filepath.Join(dd, "tls")
	if err := devShareCA(opts.CADir, tlsDir); err != nil {
		return err
	}
	if err := devCerts(tlsDir, layout, opts.Site); err != nil {
		return err
	}
	if err := devGossip(&opts, dd, layout); err != nil {
		return err
	}
	sim, err := startDevSim(dd, layout.PVESimAddress, opts.BackupDir)
	if err != nil {
		return err
	}
	defer sim.stop()
	sup := &devSupervisor{opts: opts, dir: dd, layout: layout, procs: make([]*exec.Cmd, len(layout.Servers)), sim: sim}
	for i := range layout.Servers {
		if err := sup.writeConfig(i); err != nil {
			return err
		}
	}
	for i := range layout.Servers {
		if err := sup.start(i); err != nil {
			sup.stopAll()
			return err
		}
	}
	defer sup.stopAll()
	client, err := devHTTPClient(filepath.Join(tlsDir, "ca.pem"))
	if err != nil {
		return err
	}
	token, err := devWaitAndBootstrap(ctx, client, dd, layout, sup.exited)
	if err != nil {
		return err
	}
	if err := devCreateZone(ctx, client, layout, token, devZone, opts.Logf); err != nil {
		return err
	}
	if err := sup.writeServersJSON(); err != nil {
		return err
	}
	addrs := make([]string, len(layout.Servers))
	for i, s := range layout.Servers {
		addrs[i] = "https://" + s.APIAddress
	}
	env := fmt.Sprintf("export MOXXIE_ADDR=%s\nexport MOXXIE_TOKEN=%s\nexport MOXXIE_CACERT=%s\nexport MOXXIE_DNS_ADDR=%s\nexport MOXXIE_PVESIM_ADDR=%s\n",
		strings.Join(addrs, ","), token, filepath.Join(tlsDir, "ca.pem"), layout.Servers[0].DNSAddress, layout.PVESimAddress)
	if err := os.WriteFile(filepath.Join(dd, "env"), []byte(env), 0o600); err != nil {
		return err
	}
	fmt.Fprintf(opts.Out, "Moxxie dev appliance is up: %d servers on loopback, data in %s\n\n%s\n", len(layout.Servers), dd, env)
	dnsHost, dnsPort, _ := net.SplitHostPort(layout.Servers[0].DNSAddress)
	fmt.Fprintf(opts.Out, "Use it:  . %s && moxxiectl cluster status\nDNS:     dig @%s -p %s %s SOA +short (every server answers; servers.json lists their ports)\nMetrics: curl http://%s/metrics (no token; servers.json lists every server's metrics_address)\nProxmox: simulator at https://%s (moxxiectl inventory guests)\nServers: %s (logs in %s/<id>/moxxied.log)\nPress Ctrl-C to stop.\n",
		filepath.Join(dd, "env"), dnsHost, dnsPort, devZone, layout.Servers[0].MetricsAddress, layout.PVESimAddress, filepath.Join(dd, "servers.json"), dd)
	return sup.supervise(ctx)
}

func devLoadLayout(dd string, n int, host string) (*devLayout, error) {
	path := filepath.Join(dd, "dev.json")
	l := devLayout{Host: host}
	b, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(b, &l); err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		if len(l.Servers) != n {
			return nil, fmt.Errorf("%s holds a %d-server cluster; run with --nodes %d or a new --data-dir", dd, len(l.Servers), len(l.Servers))
		}
		if host != "" && l.host() != host {
			return nil, fmt.Errorf("%s holds a cluster on %s; run with --host %s or a new --data-dir", dd, l.host(), l.host())
		}
		if l.Servers[0].DNSAddress != "" && l.PVESimAddress != "" && l.Servers[0].MetricsAddress != "" {
			return &l, nil
		}
		if err := devDNSPorts(&l); err != nil {
			return nil, err
		}
		if err := devMetricsPorts(&l); err != nil {
			return nil, err
		}
		if err := devSimPort(&l); err != nil {
			return nil, err
		}
		b, _ = json.MarshalIndent(l, "", "  ")
		return &l, os.WriteFile(path, b, 0o600)
	case !errors.Is(err, os.ErrNotExist):
		return nil, err
	}
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	for i := 0; i < n; i++ {
		l.Servers = append(l.Servers, DevServer{
			ID:          fmt.Sprintf("s%d", i+1),
			APIAddress:  net.JoinHostPort(l.host(), strconv.Itoa(ports[2*i])),
			RaftAddress: net.JoinHostPort(l.host(), strconv.Itoa(ports[2*i+1])),
		})
	}
	if err := devDNSPorts(&l); err != nil {
		return nil, err
	}
	if err := devMetricsPorts(&l); err != nil {
		return nil, err
	}
	if err := devSimPort(&l); err != nil {
		return nil, err
	}
	b, _ = json.MarshalIndent(l, "", "  ")
	return &l, os.WriteFile(path, b, 0o600)
}

// devMetricsPorts gives every server of l without a plain metrics address
// one on a free loopback port (a layout written before metrics listeners
// existed gets them on its next start).
func devMetricsPorts(l *devLayout) error {
	for i := range l.Servers {
		for l.Servers[i].MetricsAddress == "" {
			ports, err := freePorts(1)
			if err != nil {
				return err
			}
			addr := net.JoinHostPort(l.host(), strconv.Itoa(ports[0]))
			if !devPortTaken(l, addr) {
				l.Servers[i].MetricsAddress = addr
			}
		}
	}
	return nil
}

// devPortTaken reports whether a server of l or the simulator uses the
// port of addr already.
func devPortTaken(l *devLayout, addr string) bool {
	_, port, _ := net.SplitHostPort(addr)
	for _, s := range l.Servers {
		for _, a := range []string{s.APIAddress, s.RaftAddress, s.DNSAddress, s.MetricsAddress, s.GossipAddress} {
			if _, p, err := net.SplitHostPort(a); err == nil && p == port {
				return true
			}
		}
	}
	_, p, err := net.SplitHostPort(l.PVESimAddress)
	return err == nil && p == port
}

// devSimPort gives the Proxmox simulator a free loopback port, once.
func devSimPort(l *devLayout) error {
	if l.PVESimAddress != "" {
		return nil
	}
	for {
		ports, err := freePorts(1)
		if err != nil {
			return err
		}
		taken := false
		for _, s := range l.Servers {
			for _, a := range []string{s.APIAddress, s.RaftAddress, s.DNSAddress, s.MetricsAddress} {
				taken = taken || strings.HasSuffix(a, fmt.Sprintf(":%d", ports[0]))
			}
		}
		if !taken {
			l.PVESimAddress = net.JoinHostPort(l.host(), strconv.Itoa(ports[0]))
			return nil
		}
	}
}

// devDNSPorts gives every server of l without a DNS address one on a
// loopback port free for UDP and TCP (a layout written before DNS existed
// gets them on its next start).
func devDNSPorts(l *devLayout) error {
	var missing []int
	used := map[int]bool{}
	for i, s := range l.Servers {
		if s.DNSAddress == "" {
			missing = append(missing, i)
		}
		for _, a := range []string{s.APIAddress, s.RaftAddress, s.DNSAddress, s.MetricsAddress} {
			if _, p, err := net.SplitHostPort(a); err == nil {
				n, _ := strconv.Atoi(p)
				used[n] = true
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	ports, err := freeDNSPorts(len(missing), used)
	if err != nil {
		return err
	}
	for j, i := range missing {
		l.Servers[i].DNSAddress = net.JoinHostPort(l.host(), strconv.Itoa(ports[j]))
	}
	return nil
}

// freeDNSPorts asks the kernel for n distinct loopback ports free for both
// TCP and UDP and not in used.
func freeDNSPorts(n int, used map[int]bool) ([]int, error) {
	var closers []io.Closer
	defer func() {
		for _, c := range closers {
			c.Close()
		}
	}()
	var ports []int
	for attempt := 0; len(ports) < n; attempt++ {
		if attempt == 100*n {
			return nil, errors.New("no loopback port free for both TCP and UDP")
		}
		tl, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		closers = append(closers, tl)
		port := tl.Addr().(*net.TCPAddr).Port
		if used[port] {
			continue
		}
		ul, err := net.ListenPacket("udp", fmt.Sprintf("127.0.0.1:%d", port))
		if err != nil {
			continue // UDP port taken: keep the TCP one held and try another
		}
		closers = append(closers, ul)
		ports = append(ports, port)
	}
	return ports, nil
}

// freePorts asks the kernel for n distinct free loopback ports.
func freePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	return ports, nil
}

// devCerts makes the dev CA when it is missing and a certificate for
// every server that has none, or whose certificate does not name site
// (a data directory first run without --site, or with another one).
func devCerts(dir string, l *devLayout, site string) error {
	if _, err := os.Stat(filepath.Join(dir, "ca.pem")); errors.Is(err, os.ErrNotExist) {
		if err := pki.CreateCA(dir, "Moxxie dev CA", 10*365*24*time.Hour); err != nil {
			return err
		}
	}
	for _, s := range l.Servers {
		if got, err := pki.SiteOfFile(pki.CertPath(dir, s.ID)); err == nil && got == site {
			continue
		}
		hosts, validity := []string{l.host(), "127.0.0.1", "localhost", "::1"}, 365*24*time.Hour
		var err error
		if site != "" {
			err = pki.CreateSiteCert(dir, dir, s.ID, site, hosts, validity)
		} else {
			err = pki.CreateCert(dir, dir, s.ID, pki.RoleServer, hosts, validity)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

type devSupervisor struct {
	opts   DevOptions
	dir    string
	layout *devLayout
	sim    *devSim

	mu       sync.Mutex
	procs    []*exec.Cmd // guarded by mu
	stopping bool        // guarded by mu
	exited   chan int
}

func (d *devSupervisor) configPath(i int) string {
	return filepath.Join(d.dir, d.layout.Servers[i].ID, "moxxied.yaml")
}

func (d *devSupervisor) writeConfig(i int) error {
	s := d.layout.Servers[i]
	c := DefaultConfig()
	c.NodeID = s.ID
	c.DataDir = filepath.Join(d.dir, s.ID)
	c.RaftAddress, c.APIAddress, c.DNSAddress = s.RaftAddress, s.APIAddress, s.DNSAddress
	c.MetricsAddress = s.MetricsAddress
	c.BootstrapExpect = len(d.layout.Servers)
	for j, p := range d.layout.Servers {
		if j != i {
			c.RetryJoin = append(c.RetryJoin, p.RaftAddress)
		}
	}
	c.LogFormat = "text"
	tlsDir := filepath.Join(d.dir, "tls")
	c.TLS = TLSConfig{CAFile: filepath.Join(tlsDir, "ca.pem"), CertFile: pki.CertPath(tlsDir, s.ID), KeyFile: pki.KeyPath(tlsDir, s.ID)}
	if d.sim != nil {
		c.Proxmox = d.sim.config(c.TLS.CAFile)
	}
	if d.opts.Site != "" {
		c.Site.Name, c.Site.Role, c.Site.GossipAddress = d.opts.Site, d.opts.SiteRole, s.GossipAddress
		c.Site.GossipKeyFile, c.Site.Join = d.opts.GossipKeyFile, slices.Clone(d.opts.SiteJoin)
		for j, p := range d.layout.Servers {
			if j != i {
				c.Site.Join = append(c.Site.Join, p.GossipAddress)
			}
		}
	}
	// One key-encryption key for the secrets store, shared by the
	// servers, outside their data directories; made on the first run.
	c.Secrets.KEKFile = filepath.Join(d.dir, "secrets.kek")
	if k, err := secrets.NewKey(); err != nil {
		return err
	} else if err := secrets.WriteKeyFile(c.Secrets.KEKFile, k); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	// One audit checkpoint key, likewise.
	c.AuditKeyFile = filepath.Join(d.dir, "audit.key")
	if _, err := WriteAuditKey(c.AuditKeyFile); err != nil && !errors.Is(err, os.ErrExist) {
		return err
	}
	if err := os.MkdirAll(c.DataDir, 0o700); err != nil {
		return err
	}
	b, err := yaml.Marshal(c)
	if err != nil {
		return err
	}
	return os.WriteFile(d.configPath(i), b, 0o600)
}

func (d *devSupervisor) start(i int) error {
	id := d.layout.Servers[i].ID
	logf, err := os.OpenFile(filepath.Join(d.dir, id, "moxxied.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(d.opts.Binary, "server", "--config", d.configPath(i), "--exit-with-parent")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return fmt.Errorf("start %s: %w", id, err)
	}
	logf.Close()
	d.mu.Lock()
	d.procs[i] = cmd
	d.layout.Servers[i].PID = cmd.Process.Pid
	if d.exited == nil {
		d.exited = make(chan int, len(d.procs))
	}
	exited := d.exited
	d.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		exited <- i
	}()
	return nil
}

func (d *devSupervisor) writeServersJSON() error {
	d.mu.Lock()
	b, err := json.MarshalIndent(d.layout.Servers, "", "  ")
	d.mu.Unlock()
	if err != nil {
		return err
	}
	tmp := filepath.Join(d.dir, "servers.json.tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(d.dir, "servers.json"))
}

func (d *devSupervisor) supervise(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case i := <-d.exited:
			d.mu.Lock()
			stopping := d.stopping
			state := d.procs[i].ProcessState
			d.mu.Unlock()
			if stopping {
				continue
			}
			id := d.layout.Servers[i].ID
			d.opts.Logf("server %s exited (%v)", id, state)
			if !d.opts.Restart {
				continue
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(time.Second):
			}
			if err := d.start(i); err != nil {
				d.opts.Logf("restart %s: %v", id, err)
				continue
			}
			d.opts.Logf("server %s restarted as pid %d", id, d.layout.Servers[i].PID)
			if err := d.writeServersJSON(); err != nil {
				d.opts.Logf("servers.json: %v", err)
			}
		}
	}
}

// stopAll sends SIGTERM to every server (each hands off leadership if it
// leads) and kills any still running after ten seconds.
func (d *devSupervisor) stopAll() {
	d.mu.Lock()
	d.stopping = true
	procs := append([]*exec.Cmd(nil), d.procs...)
	d.mu.Unlock()
	for _, p := range procs {
		if p != nil && p.Process != nil && p.ProcessState == nil {
			_ = p.Process.Signal(syscall.SIGTERM)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range procs {
		if p == nil || p.Process == nil {
			continue
		}
		for p.ProcessState == nil && syscall.Kill(p.Process.Pid, 0) == nil && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if syscall.Kill(p.Process.Pid, 0) == nil {
			_ = p.Process.Kill()
		}
	}
}

func devHTTPClient(caFile string) (*http.Client, error) {
	ca, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

// devWaitAndBootstrap waits for every server to be ready, then returns the
// admin token: created by ACL bootstrap on the first run, read back from
// <data-dir>/admin-token after. A server that exits meanwhile (exited
// names it by index) ends the wait with the last line of its log, which
// is where a server that cannot start says why.
func devWaitAndBootstrap(ctx context.Context, c *http.Client, dd string, l *devLayout, exited <-chan int) (string, error) {
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range l.Servers {
		for {
			resp, err := c.Get("https://" + s.APIAddress + "/v1/ready")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) {
				return "", fmt.Errorf("server %s not ready after 60s (see %s)", s.ID, filepath.Join(dd, s.ID, "moxxied.log"))
			}
			select {
			case <-ctx.Done():
				return "", ctx.Err()
			case i := <-exited:
				id := l.Servers[i].ID
				log := filepath.Join(dd, id, "moxxied.log")
				return "", fmt.Errorf("server %s exited while starting: %s (see %s)", id, lastLogLine(log), log)
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	tokenFile := filepath.Join(dd, "admin-token")
	if b, err := os.ReadFile(tokenFile); err == nil {
		return strings.TrimSpace(string(b)), nil
	}
	resp, err := c.Post("https://"+l.Servers[0].APIAddress+"/v1/acl/bootstrap", "application/json", bytes.NewReader(nil))
	if err != nil {
		return "", fmt.Errorf("ACL bootstrap: %w", err)
	}
	defer resp.Body.Close()
	var out struct {
		SecretID string `json:"secret_id"`
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || out.SecretID == "" {
		return "", fmt.Errorf("ACL bootstrap: %s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return out.SecretID, os.WriteFile(tokenFile, []byte(out.SecretID+"\n"), 0o600)
}

// lastLogLine returns the last line of the log file, at most 500 bytes of
// it and without the "Error: " moxxied prints its error with, or a word on
// why there is none.
func lastLogLine(file string) string {
	b, err := os.ReadFile(file)
	if err != nil {
		return err.Error()
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	last := strings.TrimSpace(strings.TrimPrefix(lines[len(lines)-1], "Error: "))
	if last == "" {
		return "it wrote nothing"
	}
	if len(last) > 500 {
		last = last[:500] + "..."
	}
	return last
}

// devZone is the DNS zone a dev appliance serves.
const devZone = "moxxie.test"

// devCreateZone creates the DNS zone name through the API (followers
// forward it to the leader), retrying while there is no leader or the
// server does not know the token yet. A zone that already exists, from an
// earlier run, is fine.
func devCreateZone(ctx context.Context, c *http.Client, l *devLayout, token, name string, logf func(string, ...any)) error {
	body, _ := json.Marshal(map[string]any{"name": name, "description": "dev appliance zone"})
	var key [8]byte
	_, _ = rand.Read(key[:])
	deadline := time.Now().Add(30 * time.Second)
	for attempt := 0; ; attempt++ {
		s := l.Servers[attempt%len(l.Servers)]
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, "https://"+s.APIAddress+"/v1/dns/zones", bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", "dev-zone-"+hex.EncodeToString(key[:]))
		resp, err := c.Do(req)
		var msg string
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			msg = strings.TrimSpace(string(b))
			switch {
			case resp.StatusCode == http.StatusCreated || resp.StatusCode == http.StatusOK:
				return nil
			case resp.StatusCode == http.StatusConflict && strings.Contains(msg, "already exists"):
				return nil
			case resp.StatusCode == http.StatusNotFound || resp.StatusCode == http.StatusMethodNotAllowed:
				// A moxxied without the zones API: DNS runs, without the zone.
				logf("DNS zone %s not created: %s has no /v1/dns/zones (%s)", name, s.ID, resp.Status)
				return nil
			case resp.StatusCode == http.StatusUnauthorized:
				// Just restarted: this server may not have replayed the
				// log that holds the token yet. Retry.
			case resp.StatusCode != http.StatusServiceUnavailable && resp.StatusCode < 500:
				return fmt.Errorf("create DNS zone %s: %s: %s", name, resp.Status, msg)
			}
			err = fmt.Errorf("%s: %s", resp.Status, msg)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("create DNS zone %s: %w", name, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// devShareCA copies the CA of caDir into tlsDir, once, so that this
// appliance's certificates chain to it.
func devShareCA(caDir, tlsDir string) error {
	if caDir == "" {
		return nil
	}
	if _, err := os.Stat(filepath.Join(tlsDir, pki.CACertFile)); err == nil {
		return nil
	}
	if err := os.MkdirAll(tlsDir, 0o700); err != nil {
		return err
	}
	for _, f := range []string{pki.CACertFile, pki.CAKeyFile} {
		b, err := os.ReadFile(filepath.Join(caDir, f))
		if err != nil {
			return fmt.Errorf("--ca-dir: %w", err)
		}
		if err := os.WriteFile(filepath.Join(tlsDir, f), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// devGossip gives every server a gossip port, once, and makes the gossip
// key file when it is missing.
func devGossip(opts *DevOptions, dd string, l *devLayout) error {
	if opts.Site == "" {
		return nil
	}
	if opts.GossipKeyFile == "" {
		opts.GossipKeyFile = filepath.Join(dd, "gossip.key")
	}
	if _, err := os.Stat(opts.GossipKeyFile); errors.Is(err, os.ErrNotExist) {
		var k [32]byte
		if _, err := rand.Read(k[:]); err != nil {
			return err
		}
		if err := os.WriteFile(opts.GossipKeyFile, []byte(base64.StdEncoding.EncodeToString(k[:])+"\n"), 0o600); err != nil {
			return err
		}
	}
	changed := false
	for i := range l.Servers {
		for l.Servers[i].GossipAddress == "" {
			ports, err := freePorts(1)
			if err != nil {
				return err
			}
			addr := net.JoinHostPort(l.host(), strconv.Itoa(ports[0]))
			if !devPortTaken(l, addr) {
				l.Servers[i].GossipAddress, changed = addr, true
			}
		}
	}
	if !changed {
		return nil
	}
	b, _ := json.MarshalIndent(l, "", "  ")
	return os.WriteFile(filepath.Join(dd, "dev.json"), b, 0o600)
}
