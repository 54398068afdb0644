package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/goccy/go-yaml"
	"github.com/moxxie/moxxie/node"
	"github.com/moxxie/moxxie/pki"
)

// proc is one moxxied server process.
type proc struct {
	id      string
	cfgPath string
	cfg     *node.Config
	cmd     *exec.Cmd
	log     *os.File
	exited  chan struct{}
}

// cluster is a set of server processes started from config files, as an
// operator would start them with systemd.
type cluster struct {
	t      *testing.T
	dir    string
	procs  []*proc
	client *http.Client
	token  string
}

func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	return startClusterWith(t, n, nil)
}

// startClusterWith is startCluster with configure applied to every
// server's configuration.
func startClusterWith(t *testing.T, n int, configure func(*node.Config)) *cluster {
	t.Helper()
	dir := t.TempDir()
	tlsDir := filepath.Join(dir, "tls")
	if err := pki.CreateCA(tlsDir, "e2e CA", 24*time.Hour); err != nil {
		t.Fatal(err)
	}
	ports := freePorts(t, 2*n)
	c := &cluster{t: t, dir: dir}
	for i := 0; i < n; i++ {
		id := fmt.Sprintf("s%d", i+1)
		if err := pki.CreateCert(tlsDir, tlsDir, id, pki.RoleServer, []string{"127.0.0.1"}, time.Hour); err != nil {
			t.Fatal(err)
		}
		cfg := node.DefaultConfig()
		cfg.NodeID = id
		cfg.DataDir = filepath.Join(dir, id)
		cfg.APIAddress = fmt.Sprintf("127.0.0.1:%d", ports[2*i])
		cfg.RaftAddress = fmt.Sprintf("127.0.0.1:%d", ports[2*i+1])
		cfg.BootstrapExpect = n
		for j := 0; j < n; j++ {
			if j != i {
				cfg.RetryJoin = append(cfg.RetryJoin, fmt.Sprintf("127.0.0.1:%d", ports[2*j+1]))
			}
		}
		cfg.LogFormat = "text"
		cfg.TLS = node.TLSConfig{CAFile: filepath.Join(tlsDir, "ca.pem"), CertFile: pki.CertPath(tlsDir, id), KeyFile: pki.KeyPath(tlsDir, id)}
		if configure != nil {
			configure(cfg)
		}
		b, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		p := &proc{id: id, cfg: cfg, cfgPath: filepath.Join(dir, id+".yaml")}
		if err := os.WriteFile(p.cfgPath, b, 0o600); err != nil {
			t.Fatal(err)
		}
		c.procs = append(c.procs, p)
	}
	ca, _ := os.ReadFile(filepath.Join(tlsDir, "ca.pem"))
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	tr := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}, MaxIdleConnsPerHost: 64}
	c.client = &http.Client{Transport: tr, Timeout: 10 * time.Second}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		for _, p := range c.procs {
			c.kill(p)
		}
		if t.Failed() {
			for _, p := range c.procs {
				b, _ := os.ReadFile(filepath.Join(dir, p.id+".log"))
				t.Logf("--- log of %s (last 3000 bytes) ---\n%s", p.id, tail(b, 3000))
			}
		}
	})
	for _, p := range c.procs {
		c.start(p)
	}
	c.waitReady(30 * time.Second)
	c.token = c.bootstrap()
	c.waitToken()
	return c
}

// waitToken waits until every live server knows the token: ?stale reads
// authenticate against the local store, which a new token reaches a moment
// after the leader acknowledged it.
func (c *cluster) waitToken() {
	c.t.Helper()
	for _, p := range c.procs {
		waitUntil(c.t, 10*time.Second, "the token is usable on "+p.id, func() error {
			_, err := c.settings(p)
			return err
		})
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}

func freePorts(t *testing.T, n int) []int {
	t.Helper()
	var lns []net.Listener
	ports := make([]int, n)
	for i := range ports {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		lns = append(lns, l)
		ports[i] = l.Addr().(*net.TCPAddr).Port
	}
	for _, l := range lns {
		l.Close()
	}
	return ports
}

func (c *cluster) start(p *proc) {
	c.t.Helper()
	f, err := os.OpenFile(filepath.Join(c.dir, p.id+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		c.t.Fatal(err)
	}
	p.cmd = exec.Command(bin("moxxied"), "server", "--config", p.cfgPath)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := p.cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	p.log = f
	p.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { _ = cmd.Wait(); close(ch) }(p.cmd, p.exited)
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *cluster) kill(p *proc) {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.log.Close()
	p.cmd = nil
}

// stop sends SIGTERM and waits for a clean exit.
func (c *cluster) stop(p *proc) {
	c.t.Helper()
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
	case <-time.After(15 * time.Second):
		c.t.Fatalf("%s did not exit 15s after SIGTERM", p.id)
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		c.t.Fatalf("%s exited with %d after SIGTERM", p.id, code)
	}
	p.log.Close()
	p.cmd = nil
}

func (p *proc) url() string { return "https://" + p.cfg.APIAddress }

type response struct {
	status int
	header http.Header
	body   []byte
}

func (c *cluster) do(p *proc, method, path string, body []byte, hdr map[string]string) (*response, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, p.url()+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return &response{status: resp.StatusCode, header: resp.Header, body: b}, err
}

func (c *cluster) waitReady(timeout time.Duration) {
	c.t.Helper()
	for _, p := range c.procs {
		if p.cmd == nil {
			continue
		}
		waitUntil(c.t, timeout, p.id+" is ready", func() error {
			r, err := c.do(p, "GET", "/v1/ready", nil, nil)
			if err == nil && r.status != http.StatusOK {
				err = fmt.Errorf("%d %s", r.status, r.body)
			}
			return err
		})
	}
}

func (c *cluster) bootstrap() string {
	c.t.Helper()
	r, err := c.do(c.procs[0], "POST", "/v1/acl/bootstrap", nil, nil)
	if err != nil || r.status != http.StatusCreated {
		c.t.Fatalf("bootstrap: %v %v", r, err)
	}
	var out struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		c.t.Fatal(err)
	}
	return out.SecretID
}

type status struct {
	Leader  string `json:"leader"`
	Servers []struct {
		ID    string `json:"id"`
		State string `json:"state"`
		Voter bool   `json:"voter"`
	} `json:"servers"`
}

// leader returns the process that leads, asking any live server.
func (c *cluster) leader() *proc {
	c.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		for _, p := range c.procs {
			if p.cmd == nil {
				continue
			}
			r, err := c.do(p, "GET", "/v1/status?stale", nil, nil)
			if err != nil || r.status != http.StatusOK {
				continue
			}
			var st status
			if json.Unmarshal(r.body, &st) == nil && st.Leader != "" {
				for _, q := range c.procs {
					if q.id == st.Leader && q.cmd != nil {
						return q
					}
				}
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no leader among live servers")
	return nil
}

func (c *cluster) put(p *proc, key, value string) (*response, error) {
	b, _ := json.Marshal(map[string]string{"value": value})
	return c.do(p, "PUT", "/v1/cluster/settings/"+key, b, map[string]string{"Content-Type": "application/json"})
}

// settings returns the full settings list of one server's local store.
func (c *cluster) settings(p *proc) (string, error) {
	r, err := c.do(p, "GET", "/v1/cluster/settings?stale", nil, nil)
	if err != nil {
		return "", err
	}
	if r.status != http.StatusOK {
		return "", fmt.Errorf("%d %s", r.status, r.body)
	}
	return string(r.body), nil
}

func (c *cluster) ctl(args ...string) (string, string, error) {
	cmd := exec.Command(bin("moxxiectl"), args...)
	var addrs []string
	for _, p := range c.procs {
		addrs = append(addrs, p.url())
	}
	cmd.Env = append(os.Environ(),
		"MOXXIE_ADDR="+strings.Join(addrs, ","),
		"MOXXIE_TOKEN="+c.token,
		"MOXXIE_CACERT="+filepath.Join(c.dir, "tls", "ca.pem"))
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	return out.String(), errb.String(), err
}
