package dns

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coredns/caddy"
	"github.com/coredns/coredns/core/dnsserver"
	"github.com/prometheus/client_golang/prometheus"

	// The plugins a generated Corefile may use; never core/plugin, which
	// pulls in every plugin and its cloud SDKs.
	_ "github.com/coredns/coredns/plugin/bind"
	_ "github.com/coredns/coredns/plugin/errors"
	_ "github.com/coredns/coredns/plugin/forward"
)

// ServerConfig configures Serve.
type ServerConfig struct {
	// Listen is the address for UDP and TCP, such as "127.0.0.1:5353" or
	// ":53". Port 0 picks a port free for both protocols. With a specific
	// IP address, UDP queries take the fast path (see Sockets); with none,
	// CoreDNS serves them all, choosing each reply's source address.
	Listen string
	// Source provides the records. It is required.
	Source Source
	// Forward lists upstream resolvers ("10.0.0.2", "[2001:db8::53]:53",
	// "tls://9.9.9.9") for names outside every zone. Without any, such
	// queries are answered REFUSED.
	Forward []string
	// Fallthrough lists zones in which a name that does not exist goes to
	// Forward instead of being answered NXDOMAIN; "." means every zone.
	Fallthrough []string
	// Sockets is how many UDP sockets of the fast path listen on the port
	// beside CoreDNS's (SO_REUSEPORT), each read in a loop of its own that
	// answers queries for the zones from prebuilt bytes and passes the rest
	// through the plugin chain. Zero means one per GOMAXPROCS. TCP is
	// always CoreDNS's.
	Sockets int
	// Metrics is where moxxie_dns_queries_total of this server is
	// registered; nil means the process default registry.
	Metrics prometheus.Registerer
}

// Server is a running DNS server.
type Server struct {
	addr     string
	name     string
	corefile string
	inst     *caddy.Instance
	fast     *fastUDP // nil without the fast path
	release  func() bool
	once     sync.Once
	err      error // set by once
}

var (
	// startMu serialises starting CoreDNS instances: caddy keeps global
	// state while it loads a Corefile.
	startMu sync.Mutex
	// serverSeq numbers the sources Serve registers.
	serverSeq atomic.Uint64
)

// portAttempts is how often Serve picks another free port when the one it
// picked was taken before CoreDNS bound it.
const portAttempts = 5

// Serve starts a CoreDNS server answering from cfg.Source with the moxxie
// plugin. It returns once the server answers, from records already built.
// The server stops when ctx is done or Stop is called.
func Serve(ctx context.Context, cfg ServerConfig) (*Server, error) {
	if cfg.Source == nil {
		return nil, errors.New("moxxie: ServerConfig.Source is required")
	}
	if cfg.Sockets < 0 {
		return nil, errors.New("moxxie: ServerConfig.Sockets must not be negative")
	}
	host, portStr, err := net.SplitHostPort(cfg.Listen)
	if err != nil {
		return nil, fmt.Errorf("moxxie: listen address %q: %w", cfg.Listen, err)
	}
	port, err := strconv.ParseUint(portStr, 10, 16)
	if err != nil {
		return nil, fmt.Errorf("moxxie: listen address %q: invalid port", cfg.Listen)
	}
	for _, z := range cfg.Fallthrough {
		if _, ok := canonical(z); !ok {
			return nil, fmt.Errorf("moxxie: fallthrough zone %q is not a domain name", z)
		}
	}
	for _, up := range cfg.Forward {
		if up == "" || strings.ContainsAny(up, " \t\n{}#") {
			return nil, fmt.Errorf("moxxie: forward upstream %q is not an address", up)
		}
	}

	name := fmt.Sprintf("moxxie-%d", serverSeq.Add(1))
	reg := cfg.Metrics
	if reg == nil {
		reg = prometheus.DefaultRegisterer
	}
	if err := registerSource(name, cfg.Source, newQueryCounter(reg)); err != nil {
		return nil, err
	}
	inst, corefile, bound, err := start(name, host, int(port), cfg)
	if err != nil {
		UnregisterSource(name)
		return nil, err
	}
	if err := awaitServing(inst); err != nil {
		// A server that never answered may not stop; the error says so.
		inst.ShutdownCallbacks()
		_ = inst.Stop()
		UnregisterSource(name)
		return nil, err
	}
	s := &Server{
		addr:     net.JoinHostPort(host, strconv.Itoa(bound)),
		name:     name,
		corefile: corefile,
		inst:     inst,
	}
	if ip, err := netip.ParseAddr(host); err == nil && !ip.IsUnspecified() {
		n := cfg.Sockets
		if n == 0 {
			n = runtime.GOMAXPROCS(0)
		}
		// The Corefile has one server block without multisocket: CoreDNS
		// binds one UDP socket.
		s.fast, err = startFastUDP(handlerOf(name), s.addr, n, 1)
		if err != nil {
			log.Warningf("serving UDP through CoreDNS only: %v", err)
		}
	}
	// Stop reads s.release: it must be set before the func can call Stop.
	set := make(chan struct{})
	s.release = context.AfterFunc(ctx, func() {
		<-set
		_ = s.Stop()
	})
	close(set)
	return s, nil
}

// start starts CoreDNS on port, or on a free port when port is 0, and
// returns the instance, its Corefile and the port bound.
func start(name, host string, port int, cfg ServerConfig) (*caddy.Instance, string, int, error) {
	startMu.Lock()
	defer startMu.Unlock()
	caddy.Quiet, dnsserver.Quiet = true, true
	for attempt := 1; ; attempt++ {
		p := port
		if p == 0 {
			var err error
			if p, err = freePort(host); err != nil {
				return nil, "", 0, err
			}
		}
		corefile := Corefile(name, host, p, cfg)
		inst, err := caddy.Start(caddy.CaddyfileInput{
			Contents:       []byte(corefile),
			Filepath:       "moxxie",
			ServerTypeName: "dns",
		})
		if err == nil {
			return inst, corefile, p, nil
		}
		if inst != nil {
			inst.ShutdownCallbacks()
			_ = inst.Stop()
		}
		if port != 0 || attempt == portAttempts || !strings.Contains(err.Error(), "address already in use") {
			return nil, "", 0, fmt.Errorf("moxxie: starting DNS on %s: %w", net.JoinHostPort(host, strconv.Itoa(p)), err)
		}
	}
}

// Corefile returns the Corefile Serve starts for the source registered as
// name, listening on host and port, with only the plugins cfg needs.
func Corefile(name, host string, port int, cfg ServerConfig) string {
	var b strings.Builder
	fmt.Fprintf(&b, ".:%d {\n", port)
	if host != "" {
		fmt.Fprintf(&b, "\tbind %s\n", host)
	}
	// Errors (upstreams that fail or time out) are logged once each
	// minute, the first of them at once, not once per query.
	b.WriteString("\terrors {\n\t\tconsolidate 1m \".*\" error show_first\n\t}\n")
	fmt.Fprintf(&b, "\tmoxxie %s", name)
	if len(cfg.Fallthrough) > 0 {
		fmt.Fprintf(&b, " {\n\t\tfallthrough %s\n\t}", strings.Join(cfg.Fallthrough, " "))
	}
	b.WriteString("\n")
	if len(cfg.Forward) > 0 {
		fmt.Fprintf(&b, "\tforward . %s\n", strings.Join(cfg.Forward, " "))
	}
	b.WriteString("}\n")
	return b.String()
}

// serveTimeout bounds how long Serve waits for CoreDNS to answer.
const serveTimeout = 10 * time.Second

// awaitServing returns once every server of inst answers over UDP and over
// TCP. caddy starts each protocol's server in a goroutine of its own, and
// CoreDNS stops each server once, skipping one it has not created yet and
// failing to shut down one that has not started: a Stop that came before
// would leave it serving, and Stop waiting for it, forever.
func awaitServing(inst *caddy.Instance) error {
	deadline := time.Now().Add(serveTimeout)
	for _, sl := range inst.Servers() {
		for _, a := range []net.Addr{sl.LocalAddr(), sl.Addr()} {
			if a == nil {
				continue
			}
			network, addr := a.Network(), probeAddr(a)
			for {
				err := probe(network, addr)
				if err == nil {
					break
				}
				if time.Now().After(deadline) {
					return fmt.Errorf("moxxie: DNS on %s does not answer over %s: %w", addr, network, err)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}
	return nil
}

// probeQuery is a query without a question: CoreDNS's DNS library answers
// it FORMERR itself, without the plugin chain, so a probe is neither
// forwarded nor counted.
var probeQuery = []byte{0x6d, 0x78, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}

// probe sends probeQuery to addr over network and waits briefly for any
// answer with its ID.
func probe(network, addr string) error {
	c, err := net.DialTimeout(network, addr, 200*time.Millisecond)
	if err != nil {
		return err
	}
	defer c.Close()
	if err := c.SetDeadline(time.Now().Add(200 * time.Millisecond)); err != nil {
		return err
	}
	msg := probeQuery
	if network == "tcp" {
		msg = append([]byte{0, byte(len(probeQuery))}, probeQuery...)
	}
	if _, err := c.Write(msg); err != nil {
		return err
	}
	buf := make([]byte, 512)
	n, err := io.ReadAtLeast(c, buf, 4)
	if err != nil {
		return err
	}
	if network == "tcp" {
		buf, n = buf[2:], n-2
	}
	if n < 2 || buf[0] != probeQuery[0] || buf[1] != probeQuery[1] {
		return errors.New("an answer that is not to the probe")
	}
	return nil
}

// probeAddr returns the address to probe a socket bound to a: a itself,
// or loopback when it is bound to every address.
func probeAddr(a net.Addr) string {
	ap, err := netip.ParseAddrPort(a.String())
	if err != nil || !ap.Addr().IsUnspecified() {
		return a.String()
	}
	lo := netip.IPv6Loopback()
	if ap.Addr().Unmap().Is4() {
		lo = netip.AddrFrom4([4]byte{127, 0, 0, 1})
	}
	return netip.AddrPortFrom(lo, ap.Port()).String()
}

// freePort returns a port on host that is free for both UDP and TCP.
func freePort(host string) (int, error) {
	var err error
	for range 20 {
		var pc net.PacketConn
		pc, err = net.ListenPacket("udp", net.JoinHostPort(host, "0"))
		if err != nil {
			return 0, fmt.Errorf("moxxie: finding a free port: %w", err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		var ln net.Listener
		ln, err = net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port, nil
		}
	}
	return 0, fmt.Errorf("moxxie: finding a port free for UDP and TCP: %w", err)
}

// Addr returns the host:port the server listens on for UDP and TCP, with
// the host as configured (empty for every address).
func (s *Server) Addr() string { return s.addr }

// Corefile returns the Corefile the server runs.
func (s *Server) Corefile() string { return s.corefile }

// Stop stops the server and waits for it to finish. It is safe to call more
// than once.
func (s *Server) Stop() error {
	s.once.Do(func() {
		s.release()
		if s.fast != nil {
			s.fast.close()
		}
		errs := s.inst.ShutdownCallbacks()
		errs = append(errs, s.inst.Stop())
		s.inst.Wait()
		UnregisterSource(s.name)
		s.err = errors.Join(errs...)
	})
	return s.err
}
