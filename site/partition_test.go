package site

import (
	"errors"
	"fmt"
	"net"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/memberlist"
)

// testNet knows the site of every test server's gossip address and can cut
// the links between two sites.
type testNet struct {
	mu      sync.Mutex
	site    map[string]string  // guarded by mu; gossip address -> site
	cut     map[[2]string]bool // guarded by mu; pairs of sites, both orders
	dropped atomic.Int64       // packets and dials refused
}

func newTestNet() *testNet {
	return &testNet{site: make(map[string]string), cut: make(map[[2]string]bool)}
}

// partition cuts every link between sites a and b.
func (n *testNet) partition(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.cut[[2]string{a, b}] = true
	n.cut[[2]string{b, a}] = true
}

// heal restores every link between sites a and b.
func (n *testNet) heal(a, b string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	delete(n.cut, [2]string{a, b})
	delete(n.cut, [2]string{b, a})
}

// blocked reports whether traffic between two gossip addresses is cut.
func (n *testNet) blocked(from, to string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.cut[[2]string{n.site[from], n.site[to]}]
}

// wrap returns the Config.transport hook of a server of site.
func (n *testNet) wrap(site string) func(memberlist.Transport) memberlist.Transport {
	return func(inner memberlist.Transport) memberlist.Transport {
		ip, port, err := inner.FinalAdvertiseAddr("", 0)
		if err != nil {
			panic(err)
		}
		self := net.JoinHostPort(ip.String(), strconv.Itoa(port))
		n.mu.Lock()
		n.site[self] = site
		n.mu.Unlock()
		t := &cutTransport{Transport: inner, net: n, self: self, packets: make(chan *memberlist.Packet), done: make(chan struct{})}
		go t.filterPackets()
		return t
	}
}

// cutTransport is a memberlist.Transport that drops what goes between cut
// sites: packets and dials out, packets in by their source address. Streams
// in cannot be told apart (their source port is ephemeral), but every
// server of a test has a cutTransport, so the dialer refuses them.
type cutTransport struct {
	memberlist.Transport
	net     *testNet
	self    string
	packets chan *memberlist.Packet
	done    chan struct{}
	stop    sync.Once
}

func (t *cutTransport) WriteTo(b []byte, addr string) (time.Time, error) {
	if t.net.blocked(t.self, addr) {
		t.net.dropped.Add(1)
		return time.Now(), nil // a lost datagram is not an error
	}
	return t.Transport.WriteTo(b, addr)
}

func (t *cutTransport) DialTimeout(addr string, timeout time.Duration) (net.Conn, error) {
	if t.net.blocked(t.self, addr) {
		t.net.dropped.Add(1)
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("cut by the test")}
	}
	return t.Transport.DialTimeout(addr, timeout)
}

func (t *cutTransport) PacketCh() <-chan *memberlist.Packet { return t.packets }

func (t *cutTransport) filterPackets() {
	for {
		select {
		case <-t.done:
			return
		case p := <-t.Transport.PacketCh():
			if t.net.blocked(p.From.String(), t.self) {
				t.net.dropped.Add(1)
				continue
			}
			select {
			case t.packets <- p:
			case <-t.done:
				return
			}
		}
	}
}

// Shutdown shuts the inner transport down first: its listeners only stop
// once their last packet is taken.
func (t *cutTransport) Shutdown() error {
	err := t.Transport.Shutdown()
	t.stop.Do(func() { close(t.done) })
	return err
}

// startCutCluster is startCluster with every server on n.
func startCutCluster(t *testing.T, n *testNet, sites []string, edit func(*Config)) *cluster {
	return startCluster(t, 3, sites, func(cfg *Config) {
		cfg.transport = n.wrap(cfg.Site)
		if edit != nil {
			edit(cfg)
		}
	})
}

// A partition between a and b, which both still see c, is no site failure:
// memberlist's indirect probes through c keep most members alive, and what
// a says of b (and b of a) never reaches a quorum without c.
func TestPool_PartitionTwoOfThree(t *testing.T) {
	n := newTestNet()
	c := startCutCluster(t, n, []string{"a", "b", "c"}, func(cfg *Config) {
		if cfg.Site == "c" {
			cfg.Role = RoleWitness
		}
	})
	n.partition("a", "b")
	holdsThroughout(t, 3*fastDetectTypical, c.all(), notDown("a", "b", "c"))
	if n.dropped.Load() == 0 {
		t.Fatal("the partition dropped nothing")
	}
	waitAll(t, fastDetect, c.sites["c"], func(p *Pool) error {
		return sitesIn(p, SiteUp, 3, "a", "b", "c")
	})
	t.Logf("%d packets and dials dropped", n.dropped.Load())
}

// With two sites the quorum of the other sites is one, so a partition looks
// like a failure from both sides: each declares the other down. A third
// (witness) site is needed to tell them apart.
func TestPool_TwoSitesPartition(t *testing.T) {
	n := newTestNet()
	c := startCutCluster(t, n, []string{"a", "b"}, nil)
	n.partition("a", "b")
	waitAll(t, fastDetect, c.all(), func(p *Pool) error {
		other := "b"
		if p.cfg.Site == "b" {
			other = "a"
		}
		s, _ := p.Site(other)
		if s.State != SiteDown || s.Quorum != 1 || fmt.Sprint(s.Votes) != fmt.Sprint([]string{p.cfg.Site}) {
			return fmt.Errorf("%s sees %s %s with votes %v and quorum %d", p.name, other, s.State, s.Votes, s.Quorum)
		}
		return nil
	})
}

// After a partition long enough for each side to declare the other dead,
// the pool merges again once it heals: memberlist exchanges state only
// with members it sees alive, so without the reconnect loop nobody would
// contact the other side again.
func TestPool_PartitionHeals(t *testing.T) {
	n := newTestNet()
	c := startCutCluster(t, n, []string{"a", "b"}, nil)
	n.partition("a", "b")
	otherDown := func(p *Pool) error {
		other := map[string]string{"a": "b", "b": "a"}[p.cfg.Site]
		if s, _ := p.Site(other); s.State != SiteDown {
			return fmt.Errorf("%s sees %s %s", p.name, other, s.State)
		}
		return nil
	}
	waitAll(t, fastDetect, c.all(), otherDown)
	// The split holds while cut, and for long enough that the messages
	// declaring the other side dead are no longer gossiped: only the
	// reconnect loop can merge the pool after the heal.
	holdsThroughout(t, 5*fastTiming.PushPullInterval, c.all(), otherDown)
	healed := time.Now()
	n.heal("a", "b")
	waitAll(t, 5*time.Second, c.all(), func(p *Pool) error {
		return sitesIn(p, SiteUp, 3, "a", "b")
	})
	t.Logf("every server sees both sites up %s after the partition healed", time.Since(healed).Round(time.Millisecond))
}

func TestReconnectTargets(t *testing.T) {
	members := map[string]Member{
		"a/s1": {Site: "a", State: StateAlive, Addr: "10.0.0.1:7946"},
		"a/s2": {Site: "a", State: StateDead, Addr: "10.0.0.2:7946"},
		"b/s1": {Site: "b", State: StateDead, Addr: "10.0.1.1:7946"},
		"b/s2": {Site: "b", State: StateDead, Addr: "10.0.1.2:7946"},
		"b/s3": {Site: "b", State: StateDead, Addr: "10.0.1.3:7946"},
		"c/s1": {Site: "c", State: StateLeft, Addr: "10.0.2.1:7946"},
		"c/s2": {Site: "c", State: StateAlive, Addr: "10.0.2.2:7946"},
		"d/s1": {Site: "d", State: StateDead},
	}
	for round, want := range [][]string{
		{"10.0.0.2:7946", "10.0.1.1:7946"},
		{"10.0.0.2:7946", "10.0.1.2:7946"},
		{"10.0.0.2:7946", "10.0.1.3:7946"},
		{"10.0.0.2:7946", "10.0.1.1:7946"},
	} {
		if got := reconnectTargets(members, "a/s1", round); !slices.Equal(got, want) {
			t.Errorf("round %d: %v, want %v", round, got, want)
		}
	}
	// Itself dead in its own map (it never is, but): not a target.
	if got := reconnectTargets(members, "a/s2", 0); !slices.Equal(got, []string{"10.0.1.1:7946"}) {
		t.Errorf("targets of a/s2: %v", got)
	}
	if got := reconnectTargets(map[string]Member{}, "a/s1", 0); len(got) != 0 {
		t.Errorf("targets of an empty pool: %v", got)
	}
}
