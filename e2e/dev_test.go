package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// devRun is one `moxxied dev` process.
type devRun struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{}
}

func startDev(t *testing.T, dir string, args ...string) *devRun {
	t.Helper()
	os.Remove(filepath.Join(dir, "env"))
	d := &devRun{out: &bytes.Buffer{}, exited: make(chan struct{})}
	d.cmd = exec.Command(bin("moxxied"), append([]string{"dev", "--data-dir", dir}, args...)...)
	d.cmd.Stdout, d.cmd.Stderr = d.out, d.out
	d.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := d.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = d.cmd.Wait(); close(d.exited) }()
	t.Cleanup(func() {
		_ = d.cmd.Process.Signal(syscall.SIGINT)
		select {
		case <-d.exited:
		case <-time.After(20 * time.Second):
			_ = d.cmd.Process.Kill()
		}
		// Children die with the supervisor; make sure none is left.
		for _, s := range readServers(t, dir) {
			_ = syscall.Kill(s.PID, syscall.SIGKILL)
		}
	})
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := os.Stat(filepath.Join(dir, "env")); err == nil {
			return d
		}
		select {
		case <-d.exited:
			t.Fatalf("moxxied dev exited early:\n%s", d.out)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("moxxied dev not ready after 60s:\n%s", d.out)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestDev_ServerThatCannotStart: when its servers exit at start (here on
// a configuration value moxxied refuses), moxxied dev stops at once with
// the reason from a server's log instead of waiting for them.
func TestDev_ServerThatCannotStart(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(bin("moxxied"), "dev", "--data-dir", dir)
	cmd.Env = append(os.Environ(), "MOXXIE_HEAP_HUGE_PAGES=maybe")
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatalf("moxxied dev succeeded:\n%s", &out)
		}
	case <-time.After(45 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		t.Fatalf("moxxied dev still waiting 45 s after starting servers that cannot start:\n%s", &out)
	}
	for _, want := range []string{"exited while starting", "MOXXIE_HEAP_HUGE_PAGES (heap_huge_pages): must be true or false", "moxxied.log"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output does not say %q:\n%s", want, &out)
		}
	}
}

type devServer struct {
	ID             string `json:"id"`
	PID            int    `json:"pid"`
	APIAddress     string `json:"api_address"`
	GossipAddress  string `json:"gossip_address"`
	MetricsAddress string `json:"metrics_address"`
	DNSAddress     string `json:"dns_address"`
}

func readServers(t *testing.T, dir string) []devServer {
	b, err := os.ReadFile(filepath.Join(dir, "servers.json"))
	if err != nil {
		return nil
	}
	var out []devServer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Errorf("servers.json: %v", err)
	}
	return out
}

// devctl runs moxxiectl with the environment from <dir>/env.
func devctl(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	return devctlEnv(t, dir, nil, args...)
}

// mustCtl returns a runner of moxxiectl against the dev appliance in dir
// that fails the test when the command fails, and returns its output.
func mustCtl(t *testing.T, dir string) func(args ...string) string {
	return func(args ...string) string {
		t.Helper()
		out, err := devctl(t, dir, args...)
		if err != nil {
			t.Fatalf("moxxiectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return out
	}
}

func TestDev_ClusterKillRestartAndKeepState(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	d := startDev(t, dir)
	servers := readServers(t, dir)
	if len(servers) != 3 {
		t.Fatalf("servers.json lists %d servers", len(servers))
	}
	out, err := devctl(t, dir, "cluster", "status", "-o", "json")
	if err != nil {
		t.Fatalf("cluster status: %v\n%s", err, out)
	}
	if strings.Count(out, `"leader"`) < 1 || strings.Count(out, `"voter": true`)+strings.Count(out, `"voter":true`) != 3 {
		t.Fatalf("cluster status: %s", out)
	}
	if out, err := devctl(t, dir, "setting", "put", "site.name", "lab-1"); err != nil {
		t.Fatalf("setting put: %v\n%s", err, out)
	}

	// kill -9 one server: the supervisor restarts it and updates servers.json.
	victim := servers[1]
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 20*time.Second, "the supervisor restarts "+victim.ID, func() error {
		now := readServers(t, dir)
		if len(now) == 3 && now[1].PID != victim.PID && syscall.Kill(now[1].PID, 0) == nil {
			return nil
		}
		return fmt.Errorf("servers.json %+v; dev output:\n%s", now, d.out)
	})

	// Ctrl-C stops everything cleanly.
	pids := readServers(t, dir)
	_ = d.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-d.exited:
	case <-time.After(20 * time.Second):
		t.Fatal("moxxied dev did not exit after SIGINT")
	}
	if code := d.cmd.ProcessState.ExitCode(); code != 0 {
		t.Fatalf("moxxied dev exited %d:\n%s", code, d.out)
	}
	for _, s := range pids {
		if syscall.Kill(s.PID, 0) == nil {
			t.Fatalf("server %s (pid %d) still running after the supervisor stopped", s.ID, s.PID)
		}
	}

	// State survives a restart of the appliance.
	startDev(t, dir)
	out, err = devctl(t, dir, "setting", "get", "site.name", "-o", "json")
	if err != nil || !strings.Contains(out, "lab-1") {
		t.Fatalf("after restart: %v\n%s", err, out)
	}
}
