package e2e

import (
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// TestDev_DNSFromIPAM is the README's walk-through: in a `moxxied dev`
// cluster, allocate named addresses with moxxiectl and resolve them with
// dig on every server, forward and reverse, also after the leader is
// killed.
func TestDev_DNSFromIPAM(t *testing.T) {
	if _, err := exec.LookPath("dig"); err != nil {
		t.Skip("dig missing: apt-get install dnsutils")
	}
	dir := filepath.Join(t.TempDir(), "dev")
	startDev(t, dir)
	env, err := os.ReadFile(filepath.Join(dir, "env"))
	if err != nil || !strings.Contains(string(env), "MOXXIE_DNS_ADDR=") {
		t.Fatalf("env file lacks MOXXIE_DNS_ADDR: %s %v", env, err)
	}

	ctlJSON := func(v any, args ...string) {
		t.Helper()
		out, err := devctl(t, dir, append(args, "-o", "json")...)
		if err != nil {
			t.Fatalf("moxxiectl %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		if v != nil {
			if err := json.Unmarshal([]byte(out), v); err != nil {
				t.Fatalf("moxxiectl %s: %v\n%s", strings.Join(args, " "), err, out)
			}
		}
	}
	var pfx struct{ ID string }
	ctlJSON(&pfx, "ipam", "prefix", "create", "10.77.0.0/24", "--gateway", "10.77.0.1")
	var alloc []struct{ Address string }
	ctlJSON(&alloc, "ipam", "prefix", "allocate", pfx.ID, "--dns-name", "web.moxxie.test", "--owner", "vm:101/net0")
	if len(alloc) != 1 || alloc[0].Address != "10.77.0.2" {
		t.Fatalf("allocation %+v, want 10.77.0.2 (the gateway has .1)", alloc)
	}

	servers := devDNSServers(t, dir)
	for _, s := range servers {
		waitDig(t, s.DNSAddress, "10.77.0.2", "web.moxxie.test", "A")
		waitDig(t, s.DNSAddress, "web.moxxie.test.", "-x", "10.77.0.2")
	}

	// Kill the leader; the survivors elect another, a new name appears
	// on them.
	var st struct{ Leader string }
	ctlJSON(&st, "cluster", "status")
	var victim devDNSServer
	for _, s := range servers {
		if s.ID == st.Leader {
			victim = s
		}
	}
	if victim.PID == 0 {
		t.Fatalf("leader %q not in servers.json", st.Leader)
	}
	if err := syscall.Kill(victim.PID, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	// The dev supervisor restarts the killed server. From the moment it
	// answers it answers SERVFAIL until it has caught up, then the name it
	// had: never NXDOMAIN or REFUSED from the state it replays.
	type probed struct {
		servfails int
		err       error
	}
	restarted := make(chan probed, 1)
	go func() {
		n, err := probeRestarted(victim.DNSAddress, "web.moxxie.test.", "10.77.0.2")
		restarted <- probed{n, err}
	}()
	// The same Idempotency-Key on every try, as a script rerunning the
	// command would pass: the address is allocated once.
	var out string
	waitUntil(t, 20*time.Second, "an allocation after killing leader "+victim.ID, func() error {
		var err error
		out, err = devctl(t, dir, "ipam", "prefix", "allocate", pfx.ID, "--dns-name", "db.moxxie.test",
			"--idempotency-key", "after-kill", "-o", "json")
		if err != nil {
			return fmt.Errorf("%v: %s", err, out)
		}
		return nil
	})
	if !strings.Contains(out, `"10.77.0.3"`) {
		t.Fatalf("allocation after the kill: %s", out)
	}
	for _, s := range servers {
		if s.ID == victim.ID {
			continue
		}
		waitDig(t, s.DNSAddress, "10.77.0.3", "db.moxxie.test", "A")
		waitDig(t, s.DNSAddress, "db.moxxie.test.", "-x", "10.77.0.3")
		waitDig(t, s.DNSAddress, "10.77.0.2", "web.moxxie.test", "A")
	}
	p := <-restarted
	if p.err != nil {
		t.Fatal(p.err)
	}
	t.Logf("%s, restarted, answered after %d SERVFAIL", victim.ID, p.servfails)
	waitDig(t, victim.DNSAddress, "10.77.0.3", "db.moxxie.test", "A")

	// The prefix's three addresses in pages of two: the first page ends
	// with a cursor on stderr, the second resumes after it.
	ctl := mustCtl(t, dir)
	first := ctl("ipam", "address", "list", "--prefix", pfx.ID, "--limit", "2")
	_, cursor, ok := strings.Cut(first, "More addresses follow: --after ")
	if !ok || !strings.Contains(first, "10.77.0.1 ") || !strings.Contains(first, "10.77.0.2 ") || strings.Contains(first, "10.77.0.3") {
		t.Fatalf("first page:\n%s", first)
	}
	second := ctl("ipam", "address", "list", "--prefix", pfx.ID, "--limit", "2", "--after", strings.TrimSpace(cursor))
	if !strings.Contains(second, "10.77.0.3 ") || strings.Contains(second, "10.77.0.2") || strings.Contains(second, "More addresses") {
		t.Fatalf("second page:\n%s", second)
	}
}

// probeRestarted asks addr for name's A record, over and over, until it
// answers want, and returns how many SERVFAIL answers came first. No
// answer (the server is not up yet) and SERVFAIL (it is catching up) are
// fine; any other answer is an error.
func probeRestarted(addr, name, want string) (int, error) {
	c := &mdns.Client{Timeout: 200 * time.Millisecond}
	q := new(mdns.Msg).SetQuestion(name, mdns.TypeA)
	servfails, deadline := 0, time.Now().Add(30*time.Second)
	for time.Now().Before(deadline) {
		resp, _, err := c.Exchange(q, addr)
		switch {
		case err != nil, !resp.Response:
			// Not up yet: connection refused, no answer, or the query
			// itself, read back by a client socket whose ephemeral port
			// happened to be the free server port (a socket connected to
			// itself).
		case resp.Rcode == mdns.RcodeServerFailure:
			servfails++
		case resp.Rcode == mdns.RcodeSuccess && len(resp.Answer) == 1 && resp.Answer[0].(*mdns.A).A.String() == want:
			return servfails, nil
		default:
			return servfails, fmt.Errorf("%s on the restarted server at %s after %d SERVFAIL: %s", name, addr, servfails, resp)
		}
	}
	return servfails, fmt.Errorf("%s on the restarted server at %s: no answer %s in 30 s (%d SERVFAIL)", name, addr, want, servfails)
}

type devDNSServer struct {
	ID         string `json:"id"`
	PID        int    `json:"pid"`
	DNSAddress string `json:"dns_address"`
}

func devDNSServers(t *testing.T, dir string) []devDNSServer {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(dir, "servers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var out []devDNSServer
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	for _, s := range out {
		if s.DNSAddress == "" {
			t.Fatalf("servers.json: %s has no dns_address", s.ID)
		}
	}
	return out
}

// waitDig runs `dig @host -p port +short args...` until its output is want,
// for up to 15 seconds.
func waitDig(t *testing.T, addr, want string, args ...string) {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, 15*time.Second, "dig @"+addr+" "+strings.Join(args, " "), func() error {
		cmd := exec.Command("dig", append([]string{"@" + host, "-p", port, "+short", "+time=1", "+tries=1"}, args...)...)
		out, _ := cmd.CombinedOutput()
		if got := strings.TrimSpace(string(out)); got != want {
			return fmt.Errorf("answer %q, want %q", got, want)
		}
		return nil
	})
}
