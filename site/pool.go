// Package site federates the sites of a Moxxie deployment: the servers of
// every site (each site a separate raft cluster) join one WAN pool with
// hashicorp/memberlist, encrypted with a gossip keyring, and advertise their
// site, role, API address and health. Each server derives every site's
// state from the pool; a site is down only when all its servers are dead
// and a quorum of the other sites agrees. See DESIGN.md.
package site

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/memberlist"
)

// maxJoinBackoff caps the wait between two join attempts.
const maxJoinBackoff = 30 * time.Second

// retransmitMult is memberlist's RetransmitMult for the pool: a broadcast
// (a join, a meta update carrying votes, a leave notice) is sent to
// retransmitMult * ceil(log10(n+1)) members by each server that passes it
// on. memberlist's 4 leaves too many members without it: in a simulation
// of its gossip (random peers, dead ones included, as memberlist does for
// GossipToTheDeadTime), some live server missed a broadcast 3% of the
// time in a pool of nine and 16% of the time once one of three sites had
// died, until a push/pull 15 s or more later. With 8: 0.02% and 0.5%. The
// cost is a few more small packets per change.
const retransmitMult = 8

// Pool is this server's membership of the pool of sites.
type Pool struct {
	cfg     Config // defaults applied
	name    string // memberlist name, Site/Node
	log     *slog.Logger
	ml      *memberlist.Memberlist
	keyring *memberlist.Keyring
	// instance identifies this run of the server in its meta and its leave
	// notice (leave.go).
	instance string
	notices  *memberlist.TransmitLimitedQueue

	kick    chan struct{} // wakes the evaluation loop
	publish chan struct{} // wakes the meta publisher
	done    chan struct{} // closed when the pool stops
	wg      sync.WaitGroup

	closeMu sync.Mutex
	closed  bool // guarded by closeMu

	keyMu sync.Mutex // serializes keyring changes

	mu        sync.Mutex
	members   map[string]Member // guarded by mu; by memberlist name
	instances map[string]string // guarded by mu; each member's instance, from its meta
	left      map[string]notice // guarded by mu; leave notices by member name
	health    Health            // guarded by mu
	votes     []string          // guarded by mu; the sites this server votes down
	sites     []SiteStatus      // guarded by mu; the last evaluation
	changed   chan struct{}     // guarded by mu; closed at the next change of sites
}

// Start creates this server's memberlist and joins the pool in the
// background through cfg.Join, retrying until one join succeeds.
func Start(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.Role == "" {
		cfg.Role = RoleServer
	}
	cfg.Timing = cfg.Timing.withDefaults()
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	cfg.Join = slices.Clone(cfg.Join)
	keys := make([][]byte, len(cfg.Keyring))
	for i, k := range cfg.Keyring {
		keys[i] = bytes.Clone(k)
	}
	cfg.Keyring = keys
	keyring, err := memberlist.NewKeyring(keys, keys[0])
	if err != nil {
		return nil, fmt.Errorf("site: keyring: %w", err)
	}

	p := &Pool{
		cfg:       cfg,
		name:      cfg.Site + "/" + cfg.Node,
		log:       cfg.Logger,
		keyring:   keyring,
		kick:      make(chan struct{}, 1),
		publish:   make(chan struct{}, 1),
		done:      make(chan struct{}),
		members:   make(map[string]Member),
		instances: make(map[string]string),
		left:      make(map[string]notice),
		changed:   make(chan struct{}),
	}
	var inst [8]byte
	_, _ = rand.Read(inst[:]) // crypto/rand.Read never fails
	p.instance = hex.EncodeToString(inst[:])
	p.notices = &memberlist.TransmitLimitedQueue{
		NumNodes: func() int {
			p.mu.Lock()
			defer p.mu.Unlock()
			return len(p.members)
		},
		RetransmitMult: retransmitMult,
	}

	mlLog := slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug)
	var transport memberlist.Transport
	nt, err := newNetTransport(cfg.BindAddr, mlLog)
	if err != nil {
		return nil, err
	}
	bindHost, _, _ := net.SplitHostPort(cfg.BindAddr)
	transport = bindStreams(nt, bindHost)
	if cfg.transport != nil {
		transport = cfg.transport(transport)
	}

	mlc := memberlist.DefaultWANConfig()
	mlc.Name = p.name
	mlc.Transport = transport
	if cfg.AdvertiseAddr != "" {
		host, port, _ := net.SplitHostPort(cfg.AdvertiseAddr)
		mlc.AdvertiseAddr = host
		mlc.AdvertisePort, _ = strconv.Atoi(port)
	}
	t := cfg.Timing
	mlc.ProbeInterval = t.ProbeInterval
	mlc.ProbeTimeout = t.ProbeTimeout
	mlc.SuspicionMult = t.SuspicionMult
	mlc.GossipInterval = t.GossipInterval
	mlc.PushPullInterval = t.PushPullInterval
	// Lifeguard slows the probes of a server whose own probes fail, up to
	// memberlist's 8 times. That spares a slow server from declaring
	// healthy ones dead, but it also slows a site cut off from the others
	// in seeing that it is: with 8 a cut-off site saw the others gone 3.7 to
	// 7.5 s after they saw it down, with 2 0.7 to 2.8 s (three dev sites,
	// nftables, three runs each), and it stops the guests of its DR plans
	// when it sees it (docs/dr.md). A site is down only when all its
	// servers are dead in a quorum of sites' views, so a slow server that
	// declares others dead alone changes nothing.
	mlc.AwarenessMaxMultiplier = 2
	mlc.RetransmitMult = retransmitMult
	mlc.Keyring = keyring
	mlc.GossipVerifyIncoming = true
	mlc.GossipVerifyOutgoing = true
	mlc.Delegate = delegate{p}
	mlc.Events = events{p}
	mlc.Logger = mlLog

	p.ml, err = memberlist.Create(mlc)
	if err != nil {
		_ = transport.Shutdown() // memberlist does not always shut it down on error
		return nil, fmt.Errorf("site: memberlist: %w", err)
	}
	p.evaluate(time.Now())

	p.wg.Add(2)
	go p.run()
	go p.publishLoop()
	if len(cfg.Join) > 0 {
		go p.joinLoop()
	}
	go p.reconnectLoop()
	p.log.Info("site: started", "site", cfg.Site, "node", cfg.Node, "role", cfg.Role, "gossip_address", p.Local().Addr)
	return p, nil
}

// newNetTransport listens on bindAddr (IP:port) for memberlist. With port 0
// the TCP and UDP listeners must share a port the kernel picked for TCP,
// which another socket may hold for UDP: try again, as memberlist does.
func newNetTransport(bindAddr string, logger *log.Logger) (*memberlist.NetTransport, error) {
	host, portStr, _ := net.SplitHostPort(bindAddr)
	port, _ := strconv.Atoi(portStr)
	tries := 1
	if port == 0 {
		tries = 10
	}
	var err error
	for range tries {
		var nt *memberlist.NetTransport
		nt, err = memberlist.NewNetTransport(&memberlist.NetTransportConfig{
			BindAddrs: []string{host},
			BindPort:  port,
			Logger:    logger,
		})
		if err == nil {
			return nt, nil
		}
		if !strings.Contains(err.Error(), "address already in use") {
			break
		}
	}
	return nil, fmt.Errorf("site: listen on %s: %w", bindAddr, err)
}

// Shutdown stops this server without leaving: the others see it die, as
// after a crash. It is meant for tests; use Leave to stop a server.
func (p *Pool) Shutdown() error {
	if !p.stop() {
		return nil
	}
	return p.ml.Shutdown()
}

// Leave tells the pool this server leaves and then shuts it down: the
// others see it "left", not dead, and a site whose servers all left is
// "left", never "down". It gossips a leave notice (leave.go), then
// memberlist's leave message, waiting at most timeout for each to go out.
func (p *Pool) Leave(timeout time.Duration) error {
	if !p.stop() {
		return nil
	}
	p.sendLeaveNotice(timeout)
	err := p.ml.Leave(timeout)
	return errors.Join(err, p.ml.Shutdown())
}

// stop stops the pool's goroutines once and reports whether it did. The
// join goroutine is not waited for: memberlist cannot cancel a join in
// flight (it may take memberlist's TCPTimeout), and it stops after it.
func (p *Pool) stop() bool {
	p.closeMu.Lock()
	defer p.closeMu.Unlock()
	if p.closed {
		return false
	}
	p.closed = true
	close(p.done)
	p.wg.Wait()
	return true
}

// SetHealth publishes h in this server's meta; it does nothing if h is
// unchanged.
func (p *Pool) SetHealth(h Health) {
	p.mu.Lock()
	same := p.health.equal(h)
	p.health = h
	p.health.FailedOver = slices.Clone(h.FailedOver)
	p.mu.Unlock()
	if !same {
		signal(p.publish)
	}
}

// Local returns this server as it sees itself.
func (p *Pool) Local() Member {
	p.mu.Lock()
	defer p.mu.Unlock()
	return copyMember(p.members[p.name])
}

// Sites returns every site this server has seen, this server's included,
// sorted by name.
func (p *Pool) Sites() []SiteStatus {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]SiteStatus, len(p.sites))
	for i, s := range p.sites {
		out[i] = copySite(s)
	}
	return out
}

// Site returns one site by name.
func (p *Pool) Site(name string) (SiteStatus, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, s := range p.sites {
		if s.Name == name {
			return copySite(s), true
		}
	}
	return SiteStatus{}, false
}

// Changed returns a channel closed at the next change of Sites(): a
// member's state or meta, a site's state or votes. Callers call Changed
// again after it fires, before reading Sites, so as to miss nothing.
func (p *Pool) Changed() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.changed
}

// InstallKey adds key to this server's keyring, for decryption only. Key
// rotation: install the new key on every server, then UseKey it on every
// server, then RemoveKey the old one everywhere.
func (p *Pool) InstallKey(key []byte) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if err := p.keyring.AddKey(bytes.Clone(key)); err != nil {
		return fmt.Errorf("site: install key: %w", err)
	}
	p.log.Info("site: gossip key installed")
	return nil
}

// UseKey makes an installed key the primary one, which encrypts.
func (p *Pool) UseKey(key []byte) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if err := p.keyring.UseKey(key); err != nil {
		return fmt.Errorf("site: use key: %w", err)
	}
	p.log.Info("site: primary gossip key changed")
	return nil
}

// RemoveKey removes a key from this server's keyring; it refuses the
// primary key (ErrPrimaryKey). memberlist's RemoveKey shifts the keys after
// the removed one in place, under the feet of packets being decrypted; the
// old key of a rotation is the last one (UseKey moves the new key first and
// keeps the others' order), which it removes without shifting anything.
func (p *Pool) RemoveKey(key []byte) error {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	if bytes.Equal(key, p.keyring.GetPrimaryKey()) {
		return ErrPrimaryKey
	}
	if err := p.keyring.RemoveKey(key); err != nil {
		return fmt.Errorf("site: remove key: %w", err)
	}
	p.log.Info("site: gossip key removed")
	return nil
}

// Keys returns copies of the primary key and of all the keys in the ring.
func (p *Pool) Keys() (primary []byte, all [][]byte) {
	p.keyMu.Lock()
	defer p.keyMu.Unlock()
	for _, k := range p.keyring.GetKeys() {
		all = append(all, bytes.Clone(k))
	}
	return bytes.Clone(p.keyring.GetPrimaryKey()), all
}

// run re-evaluates the sites on every membership event and every half
// ProbeInterval, for the votes that only time makes (DownAfter).
func (p *Pool) run() {
	defer p.wg.Done()
	tick := time.NewTicker(p.cfg.Timing.ProbeInterval / 2)
	defer tick.Stop()
	for {
		select {
		case <-p.done:
			return
		case <-p.kick:
		case <-tick.C:
		}
		p.evaluate(time.Now())
	}
}

// evaluate recomputes the sites and this server's votes, closes the Changed
// channel if the sites changed, and has the votes published if they did.
func (p *Pool) evaluate(now time.Time) {
	p.mu.Lock()
	for _, m := range reap(p.members, p.cfg.Timing.ReapAfter, now) {
		delete(p.instances, m.Name)
		delete(p.left, m.Name)
		p.log.Info("site: forgot a server gone while its site runs", "name", m.Name, "state", m.State, "since", m.Since)
	}
	members := make([]Member, 0, len(p.members))
	for _, m := range p.members {
		members = append(members, m)
	}
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	downSince := make(map[string]time.Time)
	prev := make(map[string]SiteStatus, len(p.sites))
	for _, s := range p.sites {
		prev[s.Name] = s
		if s.State == SiteDown {
			downSince[s.Name] = s.DownSince
		}
	}
	sites, votes := evaluate(members, p.cfg.Site, p.cfg.Timing.DownAfter, now, downSince)
	newVotes := !slices.Equal(votes, p.votes)
	p.votes = votes
	changed := !reflect.DeepEqual(sites, p.sites)
	if changed {
		p.sites = sites
		close(p.changed)
		p.changed = make(chan struct{})
	}
	p.mu.Unlock()

	if changed {
		for _, s := range sites {
			old, seen := prev[s.Name]
			if seen && old.State == s.State {
				continue
			}
			level := slog.LevelInfo
			if s.State == SiteDown || s.State == SiteUnreachable {
				level = slog.LevelWarn
			}
			p.log.Log(context.Background(), level, "site: state changed", "site", s.Name, "from", old.State, "to", s.State, "votes", s.Votes, "quorum", s.Quorum)
		}
	}
	if newVotes {
		p.log.Info("site: votes changed", "down", votes)
		signal(p.publish)
	}
}

// publishLoop republishes this server's meta (health, votes) when asked.
// It runs apart from the evaluation loop because UpdateNode waits for the
// update to be gossiped.
func (p *Pool) publishLoop() {
	defer p.wg.Done()
	for {
		select {
		case <-p.done:
			return
		case <-p.publish:
		}
		if err := p.ml.UpdateNode(p.cfg.Timing.ProbeInterval); err != nil {
			// The update is queued and still goes out with the next gossip
			// or push/pull; only the wait for it timed out.
			p.log.Debug("site: meta update not gossiped yet", "err", err)
		}
	}
}

// joinLoop joins the pool through cfg.Join, retrying with a doubling delay
// until one join succeeds or the pool stops.
func (p *Pool) joinLoop() {
	wait := p.cfg.Timing.ProbeInterval
	for {
		select {
		case <-p.done:
			return
		default:
		}
		n, err := p.ml.Join(p.cfg.Join)
		if err == nil {
			p.log.Info("site: joined the pool", "contacted", n)
			return
		}
		p.log.Warn("site: join failed, retrying", "join", p.cfg.Join, "retry_in", wait, "err", err)
		timer := time.NewTimer(wait)
		select {
		case <-p.done:
			timer.Stop()
			return
		case <-timer.C:
		}
		wait = min(2*wait, maxJoinBackoff)
	}
}

// reconnectLoop contacts, every ReconnectInterval until the pool stops,
// one dead member of each site that has one (reconnectTargets), as serf
// does: after a partition each side has declared the other dead, and
// memberlist gossips and exchanges state only with members it sees
// alive, so without this the two sides never merge again. A contacted
// member that is alive learns that it was declared dead and refutes it;
// the pool converges within a few gossip rounds. Like the join loop it
// is not waited for at stop: a join cannot be cancelled.
func (p *Pool) reconnectLoop() {
	t := time.NewTicker(p.cfg.Timing.ReconnectInterval)
	defer t.Stop()
	for round := 0; ; round++ {
		select {
		case <-p.done:
			return
		case <-t.C:
		}
		p.mu.Lock()
		addrs := reconnectTargets(p.members, p.name, round)
		p.mu.Unlock()
		if len(addrs) == 0 {
			continue
		}
		if n, err := p.ml.Join(addrs); n > 0 {
			p.log.Info("site: contacted dead members to merge the pool", "contacted", n, "tried", addrs)
		} else {
			p.log.Debug("site: dead members still unreachable", "tried", addrs, "err", err)
		}
	}
}

// reap removes from members, and returns, the members that have been dead
// or left for at least after while a member of their site is alive.
func reap(members map[string]Member, after time.Duration, now time.Time) []Member {
	alive := map[string]bool{}
	for _, m := range members {
		if m.State == StateAlive {
			alive[m.Site] = true
		}
	}
	var gone []Member
	for name, m := range members {
		if m.State != StateAlive && alive[m.Site] && now.Sub(m.Since) >= after {
			gone = append(gone, m)
			delete(members, name)
		}
	}
	slices.SortFunc(gone, func(a, b Member) int { return strings.Compare(a.Name, b.Name) })
	return gone
}

// reconnectTargets returns the gossip address of one dead member (not
// self) of each site with one, by site; round picks which, so that
// successive rounds try each dead member in turn.
func reconnectTargets(members map[string]Member, self string, round int) []string {
	dead := map[string][]string{}
	for name, m := range members {
		if name != self && m.State == StateDead && m.Addr != "" {
			dead[m.Site] = append(dead[m.Site], m.Addr)
		}
	}
	sites := make([]string, 0, len(dead))
	for s := range dead {
		sites = append(sites, s)
	}
	slices.Sort(sites)
	out := make([]string, 0, len(sites))
	for _, s := range sites {
		addrs := dead[s]
		slices.Sort(addrs)
		out = append(out, addrs[round%len(addrs)])
	}
	return out
}

// observe records a member's state and meta from a memberlist event: alive,
// or dead or left when gone. It runs under memberlist's node lock, the only
// place where the node's fields can be read without racing memberlist's
// updates (hashicorp/memberlist#306).
func (p *Pool) observe(n *memberlist.Node, gone bool) {
	site, node, ok := splitName(n.Name)
	if !ok {
		p.log.Warn("site: ignoring a member with a name not site/node", "name", n.Name)
		return
	}
	m := Member{Name: n.Name, Site: site, Node: node, Addr: n.Address(), State: StateAlive}
	if gone {
		m.State = StateDead
	}
	md, err := decodeMeta(n.Meta)
	var instance string
	switch {
	case err != nil:
		p.log.Warn("site: unreadable member meta", "name", n.Name, "err", err)
	case md.Site != site || md.Node != node:
		p.log.Warn("site: member meta names another member", "name", n.Name, "meta_site", md.Site, "meta_node", md.Node)
	default:
		m.Role = md.Role
		m.APIAddress = md.API
		m.Health = Health{Leader: md.Leader, Healthy: md.Healthy, FailedOver: md.FailedOver}
		m.Down = md.Down
		instance = md.Instance
	}
	now := time.Now()
	p.mu.Lock()
	if instance != "" {
		p.instances[n.Name] = instance
	}
	l, hasNotice := p.left[n.Name]
	switch {
	case hasNotice && !gone && l.Forced && l.Instance == p.instances[n.Name]:
		// Alive after all: the site was forgotten while cut off.
		delete(p.left, n.Name)
	case hasNotice && gone && l.Instance == p.instances[n.Name]:
		m.State = StateLeft
	}
	m.Since = now
	if old, ok := p.members[n.Name]; ok && old.State == m.State {
		m.Since = old.Since
	}
	p.members[n.Name] = m
	p.mu.Unlock()
	signal(p.kick)
}

// events receives memberlist's membership events.
type events struct{ p *Pool }

func (e events) NotifyJoin(n *memberlist.Node)   { e.p.observe(n, false) }
func (e events) NotifyUpdate(n *memberlist.Node) { e.p.observe(n, false) }
func (e events) NotifyLeave(n *memberlist.Node)  { e.p.observe(n, true) }

// delegate gives memberlist this server's meta and carries the leave
// notices (leave.go).
type delegate struct{ p *Pool }

func (d delegate) NodeMeta(limit int) []byte {
	p := d.p
	p.mu.Lock()
	m := meta{
		Site:       p.cfg.Site,
		Node:       p.cfg.Node,
		Role:       p.cfg.Role,
		API:        p.cfg.APIAddress,
		Leader:     p.health.Leader,
		Healthy:    p.health.Healthy,
		FailedOver: slices.Clone(p.health.FailedOver),
		Down:       p.votes,
		Instance:   p.instance,
	}
	p.mu.Unlock()
	b, dropped, err := encodeMeta(m, limit)
	if err != nil {
		// Validate bounds every field so that this does not happen.
		p.log.Error("site: cannot encode meta", "err", err)
		return nil
	}
	if len(dropped) > 0 {
		p.log.Warn("site: votes left out of the meta, which is full", "dropped", dropped)
	}
	return b
}

// signal wakes the goroutine reading ch without blocking.
func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

func copyMember(m Member) Member {
	m.Down = slices.Clone(m.Down)
	m.FailedOver = slices.Clone(m.FailedOver)
	return m
}

func copySite(s SiteStatus) SiteStatus {
	s.Members = slices.Clone(s.Members)
	for i := range s.Members {
		s.Members[i] = copyMember(s.Members[i])
	}
	s.Votes = slices.Clone(s.Votes)
	return s
}
