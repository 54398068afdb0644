package node

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/site"
	"github.com/moxxie/moxxie/telemetry"
	"github.com/prometheus/client_golang/prometheus"
)

// A federated server is a member of the pool of every site's servers
// (package site). It joins once it has its gossip keys: at start from
// site.gossip_key_file, or from the secrets store once its state holds the
// secret site.gossip_key names. It advertises its API address and whether
// it leads, and follows changes of the keys' secret, so keys rotate
// without a restart: put "new\nold" in every site, then "new".

const (
	// siteHealthEvery is how often the server republishes its health
	// (a change only: republishing the same costs nothing).
	siteHealthEvery = time.Second
	// siteKeyCheckEvery is how often the keys' secret is read again.
	siteKeyCheckEvery = 5 * time.Second
	// siteLeaveTimeout bounds a graceful leave of the pool.
	siteLeaveTimeout = 3 * time.Second
)

// siteMember is this server's membership of the sites' pool.
type siteMember struct {
	mu   sync.Mutex
	pool *site.Pool // nil until joined; guarded by mu
	keys [][]byte   // guarded by mu
	stop chan struct{}
	done chan struct{}
}

// startSite joins the sites' pool in the background, when the server is
// configured in a site.
func (s *Server) startSite() {
	if s.cfg.Site.Name == "" {
		return
	}
	m := &siteMember{stop: make(chan struct{}), done: make(chan struct{})}
	s.site = m
	go func() {
		defer close(m.done)
		s.runSite(m)
	}()
}

// runSite joins when the keys are known, then keeps the health and the
// keys current until stop.
func (s *Server) runSite(m *siteMember) {
	log := s.logger.With("component", "site")
	t := time.NewTicker(siteHealthEvery)
	defer t.Stop()
	lastKeys := time.Time{}
	for {
		if m.joined() == nil && time.Since(lastKeys) >= time.Second {
			lastKeys = time.Now()
			if err := s.joinSite(m); err != nil {
				log.Warn("not in the sites' pool yet", "error", err)
			}
		}
		if p := m.joined(); p != nil {
			p.SetHealth(s.siteHealth())
			if time.Since(lastKeys) >= siteKeyCheckEvery {
				lastKeys = time.Now()
				if err := s.rotateSiteKeys(m); err != nil {
					log.Warn("rotating the gossip keys failed", "error", err)
				}
			}
		}
		select {
		case <-m.stop:
			return
		case <-t.C:
		}
	}
}

// joined returns the pool once joined, else nil.
func (m *siteMember) joined() *site.Pool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.pool
}

// siteHealth is what this server advertises about itself.
func (s *Server) siteHealth() site.Health {
	return site.Health{Leader: s.IsLeader(), Healthy: s.raft != nil && s.raft.Leader() != "", FailedOver: s.drFailedOver()}
}

// siteConfig returns this server's membership of the sites' pool as its
// configuration describes it, with the gossip keys.
func (s *Server) siteConfig(keys [][]byte) site.Config {
	c := s.cfg.Site
	return site.Config{
		Site: c.Name, Node: s.cfg.NodeID, Role: cmp.Or(c.Role, site.RoleServer), BindAddr: c.GossipAddress, AdvertiseAddr: c.AdvertiseGossipAddress,
		APIAddress: "https://" + s.apiAddr, Join: c.Join, Keyring: keys, Timing: c.Timing.timing(), Logger: s.logger.With("component", "site"),
	}
}

// joinSite reads the keys and starts this server's membership.
func (s *Server) joinSite(m *siteMember) error {
	keys, err := s.gossipKeys()
	if err != nil {
		return err
	}
	p, err := site.Start(s.siteConfig(keys))
	if err != nil {
		return err
	}
	m.mu.Lock()
	m.pool, m.keys = p, keys
	m.mu.Unlock()
	s.logger.Info("joined the sites' pool", "site", s.cfg.Site.Name, "gossip_address", s.cfg.Site.GossipAddress)
	return nil
}

// gossipKeys reads the gossip keys from their file or secret: base64 keys,
// one per line, the primary first.
func (s *Server) gossipKeys() ([][]byte, error) {
	c := s.cfg.Site
	var text string
	if c.GossipKeyFile != "" {
		fi, err := os.Stat(c.GossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("site.gossip_key_file: %w", err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			return nil, fmt.Errorf("site.gossip_key_file: %s is readable by others (mode %04o); chmod 600 it", c.GossipKeyFile, fi.Mode().Perm())
		}
		b, err := os.ReadFile(c.GossipKeyFile)
		if err != nil {
			return nil, fmt.Errorf("site.gossip_key_file: %w", err)
		}
		text = string(b)
	} else {
		name, _ := strings.CutPrefix(c.GossipKey, secretRefPrefix)
		v, err := s.Secret(name)
		if err != nil {
			return nil, fmt.Errorf("site.gossip_key: secret %s: %w", name, err)
		}
		text = v
	}
	return parseGossipKeys(text)
}

// parseGossipKeys parses base64 keys, one per line.
func parseGossipKeys(text string) ([][]byte, error) {
	var keys [][]byte
	for i, line := range strings.Split(text, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, err := base64.StdEncoding.DecodeString(line)
		if err != nil {
			return nil, fmt.Errorf("gossip key on line %d is not base64", i+1)
		}
		if n := len(k); n != 16 && n != 24 && n != 32 {
			return nil, fmt.Errorf("gossip key on line %d has %d bytes, not 16, 24 or 32", i+1, n)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, errors.New("no gossip key")
	}
	return keys, nil
}

// rotateSiteKeys makes the pool's keyring hold the keys read now: new
// ones installed, the first made primary, the others removed.
func (s *Server) rotateSiteKeys(m *siteMember) error {
	keys, err := s.gossipKeys()
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if slices.EqualFunc(keys, m.keys, slices.Equal) {
		return nil
	}
	for _, k := range keys {
		if err := m.pool.InstallKey(k); err != nil {
			return err
		}
	}
	if err := m.pool.UseKey(keys[0]); err != nil {
		return err
	}
	for _, old := range m.keys {
		if !slices.ContainsFunc(keys, func(k []byte) bool { return slices.Equal(k, old) }) {
			if err := m.pool.RemoveKey(old); err != nil {
				return err
			}
		}
	}
	m.keys = keys
	s.logger.Info("gossip keys rotated", "keys", len(keys))
	return nil
}

// stopSite leaves the pool (gracefully when leave) and stops following it.
func (s *Server) stopSite(leave bool) {
	m := s.site
	if m == nil {
		return
	}
	close(m.stop)
	<-m.done
	p := m.joined()
	if p == nil {
		return
	}
	var err error
	if leave {
		err = p.Leave(siteLeaveTimeout)
	} else {
		err = p.Shutdown()
	}
	if err != nil {
		s.logger.Warn("leaving the sites' pool failed", "error", err)
	}
}

// LocalSite implements api.Backend: this server's site, empty when it is
// not federated.
func (s *Server) LocalSite() string { return s.cfg.Site.Name }

// Sites implements api.Backend: every site this server's pool view knows,
// nil when the server is not (yet) in the pool.
func (s *Server) Sites() []site.SiteStatus {
	if s.site == nil {
		return nil
	}
	p := s.site.joined()
	if p == nil {
		return nil
	}
	return p.Sites()
}

// ForgetSite implements api.SiteBackend.
func (s *Server) ForgetSite(name string) error {
	if s.site == nil {
		return api.ErrNotInPool
	}
	p := s.site.joined()
	if p == nil {
		return api.ErrNotInPool
	}
	return p.Forget(name)
}

// siteAPI returns the API addresses of a site's alive servers, its
// leader first.
func (s *Server) siteAPI(name string) ([]string, error) {
	for _, st := range s.Sites() {
		if st.Name != name {
			continue
		}
		var addrs []string
		for _, mb := range st.Members {
			if mb.State != site.StateAlive || mb.APIAddress == "" {
				continue
			}
			if mb.Leader {
				addrs = append([]string{mb.APIAddress}, addrs...)
			} else {
				addrs = append(addrs, mb.APIAddress)
			}
		}
		if len(addrs) == 0 {
			return nil, fmt.Errorf("site %s has no server alive in the pool (state %s)", name, st.State)
		}
		return addrs, nil
	}
	return nil, fmt.Errorf("%w: %s is not in the pool", api.ErrUnknownSite, name)
}

// SiteForward implements api.SiteBackend: it sends r to a server of site
// name, trying its alive servers leader first while they cannot be
// dialled. Servers of every site present certificates of one CA, and
// this server presents its own.
func (s *Server) SiteForward(r *http.Request, name string) (*http.Response, error) {
	addrs, err := s.siteAPI(name)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	var lastErr error
	for _, a := range addrs {
		req, err := http.NewRequestWithContext(r.Context(), r.Method, a+r.URL.RequestURI(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header = r.Header.Clone()
		resp, err := s.siteClient().Do(req)
		if err == nil {
			return resp, nil
		}
		var oe *net.OpError
		if !errors.As(err, &oe) || oe.Op != "dial" {
			return nil, err // it may have reached the other site: not sent twice
		}
		lastErr = err
	}
	return nil, lastErr
}

// siteClient is the HTTPS client of requests passed on to other sites.
// They leave from the host of the gossip address, the address that
// faces the other sites, as gossip does (package site): a firewall
// between sites sees one address per server.
func (s *Server) siteClient() *http.Client {
	s.siteClientOnce.Do(func() {
		d := &net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: siteLocalAddr(s.cfg.Site.GossipAddress)}
		s.siteHTTP = &http.Client{Timeout: time.Duration(s.cfg.HoldTimeout) + 30*time.Second, Transport: &http.Transport{
			DialContext: d.DialContext, TLSClientConfig: s.certs.peerClientTLS(), ForceAttemptHTTP2: true, MaxIdleConnsPerHost: 4, IdleConnTimeout: time.Minute,
		}}
	})
	return s.siteHTTP
}

// siteLocalAddr returns the address to dial other sites from: the host
// of gossipAddr, or nil (the route picks) when it names no single
// address.
func siteLocalAddr(gossipAddr string) net.Addr {
	host, _, err := net.SplitHostPort(gossipAddr)
	ip := net.ParseIP(host)
	if err != nil || ip == nil || ip.IsUnspecified() {
		return nil
	}
	return &net.TCPAddr{IP: ip}
}

// siteStates are the values of moxxie_site_state's state label.
var siteStates = [...]string{site.SiteUp, "degraded", "unreachable", "down", "left"}

var (
	siteStateDesc = telemetry.NewDesc("site", "state",
		"1 for the state each site is in, in this server's view of the sites' pool: up, degraded, unreachable, down or left (docs/sites.md).", "site", "state")
	siteAliveDesc = telemetry.NewDesc("site", "servers_alive",
		"Servers of each site alive in this server's view of the pool.", "site")
)

// siteCollector reads this server's view of the sites' pool at scrape
// time; a server in no site has no site metrics.
func siteCollector(s *Server) prometheus.Collector {
	return telemetry.NewCollector(func(ch chan<- prometheus.Metric) {
		for _, st := range s.Sites() {
			for _, state := range siteStates {
				telemetry.Gauge(ch, siteStateDesc, telemetry.Bool(st.State == state), st.Name, state)
			}
			alive := 0
			for _, m := range st.Members {
				if m.State == site.StateAlive {
					alive++
				}
			}
			telemetry.Gauge(ch, siteAliveDesc, float64(alive), st.Name)
		}
	}, siteStateDesc, siteAliveDesc)
}
