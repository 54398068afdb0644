package node

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os/exec"
	"slices"
	"strings"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
)

// lookDig returns the path of dig, skipping the test without it.
func lookDig(t *testing.T) string {
	t.Helper()
	dig, err := exec.LookPath("dig")
	if err != nil {
		t.Skip("dig missing: apt-get install dnsutils")
	}
	return dig
}

// digShort runs dig +short against server (host:port) and returns its
// answer lines.
func digShort(dig, server string, args ...string) (string, error) {
	host, port, err := net.SplitHostPort(server)
	if err != nil {
		return "", err
	}
	args = append([]string{"@" + host, "-p", port, "+short", "+time=1", "+tries=1"}, args...)
	out, err := exec.Command(dig, args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dig %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(string(out)), nil
}

// waitDig waits until dig on every server answers want.
func waitDig(t *testing.T, dig string, servers []*Server, want string, args ...string) {
	t.Helper()
	for _, s := range servers {
		WaitForResult(t, 5*time.Second, func() error {
			got, err := digShort(dig, s.DNSAddr(), args...)
			if err != nil {
				return err
			}
			if got != want {
				return fmt.Errorf("dig %s on %s = %q, want %q", strings.Join(args, " "), s.ID(), got, want)
			}
			return nil
		})
	}
}

// applyOnLeader validates cmd and applies it through whichever of servers
// leads, retrying while there is none.
func applyOnLeader(t *testing.T, servers []*Server, cmd fsm.Command) (*Server, any) {
	t.Helper()
	if v, ok := cmd.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			t.Fatalf("%T: %v", cmd, err)
		}
	}
	var leader *Server
	var out any
	WaitForResult(t, 10*time.Second, func() error {
		leader = nil
		for _, s := range servers {
			if s.IsLeader() {
				leader = s
			}
		}
		if leader == nil {
			return errors.New("no leader")
		}
		v, err := leader.raftApply(cmd)
		if errors.Is(err, api.ErrNotLeader) {
			return err
		}
		if err != nil {
			t.Fatalf("%T on %s: %v", cmd, leader.ID(), err)
		}
		out = v
		return nil
	})
	return leader, out
}

// allocateNamed allocates one address named name from prefix pid and
// returns it.
func allocateNamed(t *testing.T, servers []*Server, pid, id, name string) (*Server, string) {
	t.Helper()
	l, v := applyOnLeader(t, servers, &fsm.AddressAllocateRequest{PrefixID: pid, IDs: []string{id}, DNSName: name})
	return l, v.(*fsm.AddressList).Addresses[0].Address
}

// TestCluster_DNS runs three servers with DNS and checks with the real dig
// that each answers from its own state, before and after the leader dies.
func TestCluster_DNS(t *testing.T) {
	dig := lookDig(t)
	servers := TestCluster(t, 3, TestDNS)
	for _, s := range servers {
		if s.DNSAddr() == "" || strings.HasSuffix(s.DNSAddr(), ":0") {
			t.Fatalf("%s: DNSAddr() = %q", s.ID(), s.DNSAddr())
		}
	}

	applyOnLeader(t, servers, &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: "Moxxie.Test.", TTL: 120}})
	applyOnLeader(t, servers, &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p1", Prefix: "10.20.0.0/24"}})
	_, web := allocateNamed(t, servers, "p1", "a-web", "web.moxxie.test")
	waitDig(t, dig, servers, web, "web.moxxie.test", "A")
	waitDig(t, dig, servers, "web.moxxie.test.", "-x", web)
	waitDig(t, dig, servers, "ns1.moxxie.test.", "moxxie.test", "NS")
	waitDig(t, dig, servers, "ns1.moxxie.test.", "0.20.10.in-addr.arpa", "NS")
	// A zone's new TTL is served at once, for its names and their PTRs.
	applyOnLeader(t, servers, &fsm.ZoneUpdateRequest{ID: "moxxie.test", TTL: ptrTo(uint32(30))})
	for _, q := range [][]string{{"web.moxxie.test", "A"}, {"-x", web}, {"moxxie.test", "SOA"}} {
		for _, s := range servers {
			WaitForResult(t, 5*time.Second, func() error {
				out, err := digShort(dig, s.DNSAddr(), append([]string{"+noshort", "+noall", "+answer"}, q...)...)
				if err != nil {
					return err
				}
				if f := strings.Fields(out); len(f) < 2 || f[1] != "30" {
					return fmt.Errorf("dig %v on %s: %q, want a TTL of 30", q, s.ID(), out)
				}
				return nil
			})
		}
	}
	for _, s := range servers {
		host, port, _ := net.SplitHostPort(s.DNSAddr())
		out, err := exec.Command(dig, "@"+host, "-p", port, "+time=1", "+tries=1", "nope.moxxie.test", "A").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "status: NXDOMAIN") || !strings.Contains(string(out), "flags: qr aa") {
			t.Errorf("dig nope.moxxie.test on %s: %v\n%s\nwant an authoritative NXDOMAIN", s.ID(), err, out)
		}
		out, err = exec.Command(dig, "@"+host, "-p", port, "+time=1", "+tries=1", "example.com", "A").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "status: REFUSED") {
			t.Errorf("dig example.com on %s: %v\n%s\nwant REFUSED without dns_forward", s.ID(), err, out)
		}
	}

	measureDNSVisibility(t, servers, 20)
	checkWaitDNS(t, servers, 10)

	// Kill the leader (no leadership transfer): the survivors elect another
	// and keep answering, new names included.
	old := WaitForLeader(t, servers...)
	if err := old.Shutdown(false); err != nil {
		t.Logf("shutdown %s: %v", old.ID(), err)
	}
	var survivors []*Server
	for _, s := range servers {
		if s != old {
			survivors = append(survivors, s)
		}
	}
	leader := WaitForLeader(t, survivors...)
	t.Logf("leader %s stopped; %s leads now", old.ID(), leader.ID())
	_, after := allocateNamed(t, survivors, "p1", "a-after", "after.moxxie.test")
	waitDig(t, dig, survivors, after, "after.moxxie.test", "A")
	waitDig(t, dig, survivors, "after.moxxie.test.", "-x", after)
	waitDig(t, dig, survivors, web, "web.moxxie.test", "A")
	if _, err := digShort(dig, old.DNSAddr(), "web.moxxie.test", "A"); err == nil {
		t.Errorf("%s still answers DNS after shutdown", old.ID())
	}
}

// measureDNSVisibility allocates n named addresses one after another and
// measures, for each server, how long after the leader's Apply returned
// (the entry committed and applied there) the name resolves on it. The
// changes are 100 ms apart, so each is a single change after a quiet spell,
// not part of a burst (which the DNS plugin rebuilds at most every 50 ms).
func measureDNSVisibility(t *testing.T, servers []*Server, n int) {
	t.Helper()
	lat := map[string][]time.Duration{} // "leader" or "follower"
	c := &mdns.Client{Timeout: 200 * time.Millisecond}
	for i := range n {
		time.Sleep(100 * time.Millisecond) // a quiet spell, not a wait for a condition
		name := fmt.Sprintf("m%d.moxxie.test.", i)
		leader, addr := allocateNamed(t, servers, "p1", fmt.Sprintf("a-m%d", i), strings.TrimSuffix(name, "."))
		committed := time.Now()
		type result struct {
			role string
			took time.Duration
			err  error
		}
		results := make(chan result, len(servers))
		for _, s := range servers {
			role := "follower"
			if s == leader {
				role = "leader"
			}
			go func() {
				for {
					m := new(mdns.Msg)
					m.SetQuestion(name, mdns.TypeA)
					r, _, err := c.Exchange(m, s.DNSAddr())
					if err == nil && len(r.Answer) == 1 && r.Answer[0].(*mdns.A).A.String() == addr {
						results <- result{role: role, took: time.Since(committed)}
						return
					}
					if time.Since(committed) > 5*time.Second {
						results <- result{err: fmt.Errorf("%s not visible on %s %s after 5s (last: %v %v)", name, role, s.ID(), r, err)}
						return
					}
					time.Sleep(200 * time.Microsecond)
				}
			}()
		}
		for range servers {
			r := <-results
			if r.err != nil {
				t.Fatal(r.err)
			}
			lat[r.role] = append(lat[r.role], r.took)
		}
	}
	for _, role := range []string{"leader", "follower"} {
		d := lat[role]
		slices.Sort(d)
		t.Logf("DNS visibility after commit on the %s (%d samples): median %s, p90 %s, max %s",
			role, len(d), d[len(d)/2], d[len(d)*9/10], d[len(d)-1])
		if d[len(d)-1] > time.Second {
			t.Errorf("a change took %s to be visible on a %s", d[len(d)-1], role)
		}
	}
}

// checkWaitDNS allocates n named addresses and, on every server, waits
// with WaitDNS for the allocation's index, as the API does before it
// answers such a write: the name must resolve on that server's DNS at
// once after, never NXDOMAIN.
func checkWaitDNS(t *testing.T, servers []*Server, n int) {
	t.Helper()
	c := &mdns.Client{Timeout: time.Second}
	for i := range n {
		name := fmt.Sprintf("w%d.moxxie.test.", i)
		leader, addr := allocateNamed(t, servers, "p1", fmt.Sprintf("a-w%d", i), strings.TrimSuffix(name, "."))
		index := leader.State().DNSIndex()
		for _, s := range servers {
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			err := s.WaitDNS(ctx, index)
			cancel()
			if err != nil {
				t.Fatalf("%s: WaitDNS(%d): %v", s.ID(), index, err)
			}
			m := new(mdns.Msg)
			m.SetQuestion(name, mdns.TypeA)
			r, _, err := c.Exchange(m, s.DNSAddr())
			if err != nil || len(r.Answer) != 1 || r.Answer[0].(*mdns.A).A.String() != addr {
				t.Fatalf("%s right after WaitDNS(%d): %v %v, want %s", s.ID(), index, r, err, addr)
			}
		}
	}
}

// TestCluster_DNSRestartWaitsToCatchUp restarts a follower that missed
// writes and asks its DNS server from the moment it is back: it answers
// SERVFAIL until its store holds what the leader had committed, and its
// first answer holds the names written before and while it was down;
// never a NXDOMAIN, REFUSED or older answer from the state it replays.
func TestCluster_DNSRestartWaitsToCatchUp(t *testing.T) {
	servers := TestCluster(t, 3, TestDNS)
	applyOnLeader(t, servers, &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: "moxxie.test"}})
	applyOnLeader(t, servers, &fsm.PrefixCreateRequest{Prefix: fsm.Prefix{ID: "p1", Prefix: "10.20.0.0/16"}})
	for i := range 50 {
		allocateNamed(t, servers, "p1", fmt.Sprintf("a%d", i), fmt.Sprintf("h%d.moxxie.test", i))
	}
	leader := WaitForLeader(t, servers...)
	i := slices.IndexFunc(servers, func(s *Server) bool { return s != leader })
	cfg := servers[i].Config()
	WaitForApplied(t, leader.LastIndex(), servers[i])
	if err := servers[i].Shutdown(false); err != nil {
		t.Logf("shutdown %s: %v", cfg.NodeID, err)
	}
	up := slices.Delete(slices.Clone(servers), i, i+1)
	_, down := allocateNamed(t, up, "p1", "a-down", "down.moxxie.test")
	// An address without a name, after the last named one: DNS shows
	// nothing of it, and no server's serial may move for it.
	applyOnLeader(t, up, &fsm.AddressAllocateRequest{PrefixID: "p1", IDs: []string{"unnamed"}})

	servers[i] = StartTestServer(t, cfg)
	c := &mdns.Client{Timeout: time.Second}
	ask := func(name string) *mdns.Msg {
		t.Helper()
		resp, _, err := c.Exchange(new(mdns.Msg).SetQuestion(name, mdns.TypeA), servers[i].DNSAddr())
		if err != nil {
			t.Fatalf("%s on %s: %v", name, cfg.NodeID, err)
		}
		return resp
	}
	servfails, start := 0, time.Now()
	for {
		resp := ask("h0.moxxie.test.")
		if resp.Rcode == mdns.RcodeServerFailure {
			servfails++
			if time.Since(start) > 10*time.Second {
				t.Fatalf("%s still SERVFAIL after 10 s", cfg.NodeID)
			}
			continue
		}
		if resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Fatalf("%s's first answer after %d SERVFAIL: %s", cfg.NodeID, servfails, resp)
		}
		break
	}
	t.Logf("%s answered after %d SERVFAIL in %s", cfg.NodeID, servfails, time.Since(start).Round(time.Millisecond))
	if resp := ask("down.moxxie.test."); resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 || resp.Answer[0].(*mdns.A).A.String() != down {
		t.Errorf("the name written while %s was down, right after its first answer: %s", cfg.NodeID, resp)
	}
	for n := range 50 {
		if resp := ask(fmt.Sprintf("h%d.moxxie.test.", n)); resp.Rcode != mdns.RcodeSuccess || len(resp.Answer) != 1 {
			t.Errorf("h%d after the first answer: %s", n, resp)
		}
	}
	// The restarted server, which read its store whole, serves the serial
	// the others followed change by change.
	WaitForResult(t, 10*time.Second, func() error {
		var serials []uint32
		for _, s := range servers {
			resp, _, err := c.Exchange(new(mdns.Msg).SetQuestion("moxxie.test.", mdns.TypeSOA), s.DNSAddr())
			if err != nil || len(resp.Answer) != 1 {
				return fmt.Errorf("SOA on %s: %v %v", s.ID(), resp, err)
			}
			serials = append(serials, resp.Answer[0].(*mdns.SOA).Serial)
		}
		if slices.Min(serials) != slices.Max(serials) {
			return fmt.Errorf("SOA serials %v", serials)
		}
		return nil
	})
}

func ptrTo[T any](v T) *T { return &v }
