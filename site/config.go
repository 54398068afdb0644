package site

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hashicorp/memberlist"
)

// Roles a site's servers advertise.
const (
	// RoleServer is a site that runs workloads.
	RoleServer = "server"
	// RoleWitness is a site that votes in failure detection but holds no
	// workloads: the third site that lets two sites tell a partition from a
	// failure.
	RoleWitness = "witness"
)

// Errors returned by the package.
var (
	// ErrInvalidConfig wraps every error of Config.Validate.
	ErrInvalidConfig = errors.New("site: invalid configuration")
	// ErrOwnSite is returned by Forget for the server's own site.
	ErrOwnSite = errors.New("site: a server cannot forget its own site")
	// ErrUnknownSite is returned by Forget for a site the pool does not
	// know.
	ErrUnknownSite = errors.New("site: no such site in the pool")
	// ErrPrimaryKey is returned by RemoveKey for the primary gossip key:
	// make another key primary with UseKey first.
	ErrPrimaryKey = errors.New("site: the primary gossip key cannot be removed")
)

// maxAPIAddress bounds Config.APIAddress so that a server's meta, votes
// included, fits in memberlist.MetaMaxSize (see meta.go).
const maxAPIAddress = 128

var (
	siteNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)
	nodeIDRe   = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]{0,63}$`)
	instanceRe = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

// Timing holds the failure detector's timers. A zero field takes its value
// from DefaultTiming.
type Timing struct {
	// ProbeInterval is memberlist's ProbeInterval: every server probes one
	// member per interval, round robin in random order, and a probe that
	// gets no direct or indirect ack within the interval fails.
	ProbeInterval time.Duration
	// ProbeTimeout is how long a direct probe waits for its ack before
	// other members are asked to probe indirectly, which must complete in
	// the rest of the ProbeInterval. It must exceed the round-trip time
	// between sites, and the rest of the interval twice that.
	ProbeTimeout time.Duration
	// SuspicionMult sets memberlist's suspicion timeout: a member that
	// failed a probe is declared dead after SuspicionMult * max(1, log10(n))
	// * ProbeInterval (n servers in the pool) unless it refutes. At 2 that
	// is the timeout; above 2 memberlist starts at 6 times that and comes
	// down to it as SuspicionMult-2 other servers confirm the suspicion.
	SuspicionMult int
	// GossipInterval is memberlist's GossipInterval: how often state
	// changes, meta (health, votes) included, are sent to a few members.
	GossipInterval time.Duration
	// DownAfter is how long every server of a site must have been dead in
	// this server's view before it votes the site down.
	DownAfter time.Duration
	// PushPullInterval is memberlist's PushPullInterval: how often each
	// server exchanges its full state with another, which repairs what
	// gossip missed (a join, a leave notice).
	PushPullInterval time.Duration
	// ReconnectInterval is how often a server contacts one dead member of
	// each site it sees a dead member of, to merge the pool again after a
	// partition: memberlist exchanges state only with members it sees
	// alive, so two sides that each declared the other dead never meet
	// again by themselves.
	ReconnectInterval time.Duration
	// ReapAfter is how long a server stays in this server's view once it
	// is dead or left while another server of its site is alive: past it,
	// it is forgotten, as a server replaced by one of another name should
	// be. A site with no server alive keeps its servers, so that it stays
	// down (or left) and keeps its place in the quorum.
	ReapAfter time.Duration
}

// DefaultTiming returns timers tuned for a WAN of a few sites (up to about
// fifteen servers in the pool, round trips under 175 ms) that detect a site
// failure within 10 s. The arithmetic, for the last of the failed site's
// servers:
//
//   - Probing: each survivor probes one member per ProbeInterval (750 ms),
//     round robin in random order. With 6 survivors and 8 members each to
//     probe (three sites of three servers), the last of 3 dead servers is
//     first probed after 1.9 intervals in the median, 4.9 in 1 case out of
//     100 (simulated probe orders): 1.4 s, 3.7 s. The probe fails at the
//     end of its interval, 750 ms: ProbeTimeout (400 ms) for the direct
//     ack, the rest for the indirect probes through other servers.
//   - Suspicion: SuspicionMult * max(1, log10(n)) * ProbeInterval =
//     2 * 1 * 750 ms = 1.5 s for n <= 10 servers (1.8 s for 15). With
//     SuspicionMult 2 memberlist waits for no confirmation, and every
//     server starts its own timer as the suspicion is gossiped, so all
//     declare the server dead at about the same time.
//   - Votes: a server votes once the site's servers have all been dead for
//     DownAfter (750 ms), noticed within ProbeInterval/2 (375 ms, the
//     re-evaluation tick), and gossips the vote in its meta within a
//     GossipInterval or two (200 ms each).
//
// Total: 1.4 + 0.75 + 1.5 + 0.75 + 0.4 + 0.4 = 5.2 s in the median and
// 3.7 + 0.75 + 1.5 + 0.75 + 0.4 + 0.4 = 7.5 s in 1 case out of 100;
// TestPool_SiteFailureDefaultTiming measures it.
func DefaultTiming() Timing {
	return Timing{
		ProbeInterval:  750 * time.Millisecond,
		ProbeTimeout:   400 * time.Millisecond,
		SuspicionMult:  2,
		GossipInterval: 200 * time.Millisecond,
		DownAfter:      750 * time.Millisecond,
		// memberlist's WAN default is 60 s; a full state is a few kB here.
		PushPullInterval: 15 * time.Second,
		// serf's default is 30 s; a heal is then seen within about 5 s
		// plus a few gossip rounds.
		ReconnectInterval: 5 * time.Second,
		// serf's reconnect timeout is 24 h, Consul's 72 h: long enough
		// for a server to be repaired and come back under its name.
		ReapAfter: 72 * time.Hour,
	}
}

// withDefaults returns t with every zero field taken from DefaultTiming.
func (t Timing) withDefaults() Timing {
	d := DefaultTiming()
	if t.ProbeInterval == 0 {
		t.ProbeInterval = d.ProbeInterval
	}
	if t.ProbeTimeout == 0 {
		t.ProbeTimeout = d.ProbeTimeout
	}
	if t.SuspicionMult == 0 {
		t.SuspicionMult = d.SuspicionMult
	}
	if t.GossipInterval == 0 {
		t.GossipInterval = d.GossipInterval
	}
	if t.DownAfter == 0 {
		t.DownAfter = d.DownAfter
	}
	if t.PushPullInterval == 0 {
		t.PushPullInterval = d.PushPullInterval
	}
	if t.ReconnectInterval == 0 {
		t.ReconnectInterval = d.ReconnectInterval
	}
	if t.ReapAfter == 0 {
		t.ReapAfter = d.ReapAfter
	}
	return t
}

// Config configures one server's membership of the pool of sites.
type Config struct {
	// Site is this server's site, [a-z][a-z0-9-]{0,31}.
	Site string
	// Node is this server's ID, unique in its site; the memberlist name is
	// Site+"/"+Node.
	Node string
	// Role is RoleServer (the default when empty) or RoleWitness.
	Role string
	// BindAddr is the IP:port to listen on, TCP and UDP; port 0 picks a
	// free port.
	BindAddr string
	// AdvertiseAddr is the IP:port others reach this server at; BindAddr
	// (or a private address when bound to 0.0.0.0) when empty.
	AdvertiseAddr string
	// APIAddress is https://host:port of this server's API, advertised to
	// every site.
	APIAddress string
	// Join lists host:port of servers of any site. Start returns at once
	// and joins in the background, retrying until one join succeeds.
	Join []string
	// Keyring holds the AES gossip keys (16, 24 or 32 bytes); the first is
	// the primary, used to encrypt. Required.
	Keyring [][]byte
	// Timing holds the failure detector's timers; zero fields take their
	// DefaultTiming values.
	Timing Timing
	// Logger receives the pool's logs (memberlist's own at Debug);
	// slog.Default() when nil.
	Logger *slog.Logger

	// transport, when set, wraps the transport memberlist uses; tests use it
	// to cut the network between sites.
	transport func(memberlist.Transport) memberlist.Transport
}

// Validate checks c and names the first bad field. Zero Timing fields are
// valid (they take their defaults).
func (c *Config) Validate() error {
	bad := func(field, format string, a ...any) error {
		return fmt.Errorf("%w: Config.%s: %s", ErrInvalidConfig, field, fmt.Sprintf(format, a...))
	}
	if !siteNameRe.MatchString(c.Site) {
		return bad("Site", "must be 1-32 characters of lowercase letters, digits and '-', starting with a letter (got %q)", c.Site)
	}
	if !nodeIDRe.MatchString(c.Node) {
		return bad("Node", "must be 1-64 characters of letters, digits, '.', '_' or '-' (got %q)", c.Node)
	}
	switch c.Role {
	case "", RoleServer, RoleWitness:
	default:
		return bad("Role", "must be %q or %q (got %q)", RoleServer, RoleWitness, c.Role)
	}
	if err := checkIPPort(c.BindAddr, true); err != nil {
		return bad("BindAddr", "%v", err)
	}
	if c.AdvertiseAddr != "" {
		if err := checkIPPort(c.AdvertiseAddr, false); err != nil {
			return bad("AdvertiseAddr", "%v", err)
		}
	}
	if err := checkAPIAddress(c.APIAddress); err != nil {
		return bad("APIAddress", "%v", err)
	}
	for i, j := range c.Join {
		if err := checkHostPort(j); err != nil {
			return bad(fmt.Sprintf("Join[%d]", i), "%v", err)
		}
	}
	if len(c.Keyring) == 0 {
		return bad("Keyring", "at least one gossip key is required")
	}
	for i, k := range c.Keyring {
		if err := memberlist.ValidateKey(k); err != nil {
			return bad(fmt.Sprintf("Keyring[%d]", i), "must be 16, 24 or 32 bytes (got %d)", len(k))
		}
		for _, prev := range c.Keyring[:i] {
			if bytes.Equal(prev, k) {
				return bad(fmt.Sprintf("Keyring[%d]", i), "duplicate key")
			}
		}
	}
	return c.Timing.validate(bad)
}

// Check validates t alone, as Config.Validate does: zero fields take their
// defaults. It returns the name of the first bad field (ProbeTimeout) and
// why, or "" and nil.
func (t Timing) Check() (field string, err error) {
	err = t.validate(func(f, format string, a ...any) error {
		field = strings.TrimPrefix(f, "Timing.")
		return fmt.Errorf(format, a...)
	})
	return field, err
}

func (t Timing) validate(bad func(field, format string, a ...any) error) error {
	d := t.withDefaults()
	for _, f := range []struct {
		name string
		v    time.Duration
	}{
		{"ProbeInterval", t.ProbeInterval},
		{"ProbeTimeout", t.ProbeTimeout},
		{"GossipInterval", t.GossipInterval},
		{"DownAfter", t.DownAfter},
		{"PushPullInterval", t.PushPullInterval},
		{"ReconnectInterval", t.ReconnectInterval},
		{"ReapAfter", t.ReapAfter},
	} {
		if f.v < 0 {
			return bad("Timing."+f.name, "must not be negative (got %s)", f.v)
		}
	}
	if t.SuspicionMult < 0 {
		return bad("Timing.SuspicionMult", "must not be negative (got %d)", t.SuspicionMult)
	}
	if d.ProbeTimeout >= d.ProbeInterval {
		return bad("Timing.ProbeTimeout", "must be shorter than ProbeInterval (%s >= %s)", d.ProbeTimeout, d.ProbeInterval)
	}
	return nil
}

// checkIPPort accepts an IP literal and a port; port 0 only when zeroPort.
func checkIPPort(s string, zeroPort bool) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("must be IP:port (got %q)", s)
	}
	if net.ParseIP(host) == nil {
		return fmt.Errorf("must be an IP address and a port (got %q)", s)
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 || (p == 0 && !zeroPort) {
		return fmt.Errorf("bad port in %q", s)
	}
	return nil
}

// checkHostPort accepts a host name or IP and a port from 1 to 65535.
func checkHostPort(s string) error {
	host, port, err := net.SplitHostPort(s)
	if err != nil || host == "" {
		return fmt.Errorf("must be host:port (got %q)", s)
	}
	if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		return fmt.Errorf("bad port in %q", s)
	}
	return nil
}

// checkAPIAddress accepts https://host[:port] and nothing more (no path,
// query or user), at most maxAPIAddress bytes.
func checkAPIAddress(s string) error {
	if s == "" {
		return errors.New("is required")
	}
	if len(s) > maxAPIAddress {
		return fmt.Errorf("must be at most %d bytes (got %d)", maxAPIAddress, len(s))
	}
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("must be https://host:port (got %q)", s)
	}
	if u.Scheme != "https" || u.Host == "" || u.Hostname() == "" || u.User != nil || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return fmt.Errorf("must be https://host:port (got %q)", s)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("bad port in %q", s)
		}
	}
	for _, r := range s {
		if r <= ' ' || r >= 0x7f || r == '"' || r == '\\' || r == '<' || r == '>' || r == '&' {
			return fmt.Errorf("must be printable ASCII without quotes, '\\', '<', '>' or '&' (got %q)", s)
		}
	}
	return nil
}

// SiteAliveError is returned by Forget for a site of which the server sees
// servers alive.
type SiteAliveError struct {
	Site  string
	Alive []string // the servers alive, by memberlist name
}

func (e *SiteAliveError) Error() string {
	return fmt.Sprintf("site: %s is not gone: %s alive", e.Site, strings.Join(e.Alive, ", "))
}
