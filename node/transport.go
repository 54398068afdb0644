package node

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/raft"
)

// Every connection between servers is mutual TLS on the raft port; its first
// byte after the handshake says what it carries.
const (
	connRaft    byte = 1 // the raft protocol (hashicorp/raft NetworkTransport)
	connForward byte = 2 // HTTP requests forwarded to the leader
	connRPC     byte = 3 // one JSON request and response (info, join)
)

// handshakeTimeout bounds the TLS handshake and the connection-type byte.
const handshakeTimeout = 5 * time.Second

// errIsolated is returned by dials while a test has cut this server off.
var errIsolated = errors.New("server isolated from the network")

// mux owns the raft listener. It accepts TLS connections from peers, sorts
// them by their first byte, and dials peers the same way.
type mux struct {
	ln        net.Listener
	advertise net.Addr
	serverTLS *tls.Config
	clientTLS *tls.Config
	logger    *slog.Logger

	raftCh    chan net.Conn
	forwardCh chan net.Conn
	rpc       func(net.Conn)
	batch     func(net.Conn) // connForwardBatch
	frames    func(net.Conn) // connForwardFrames

	mu       sync.Mutex
	isolated bool                  // guarded by mu
	conns    map[net.Conn]struct{} // guarded by mu
	closed   bool                  // guarded by mu
	done     chan struct{}
}

func newMux(ln net.Listener, advertise net.Addr, serverTLS, clientTLS *tls.Config, logger *slog.Logger) *mux {
	return &mux{
		ln: ln, advertise: advertise, serverTLS: serverTLS, clientTLS: clientTLS, logger: logger,
		raftCh: make(chan net.Conn, 16), forwardCh: make(chan net.Conn, 16),
		conns: map[net.Conn]struct{}{}, done: make(chan struct{}),
	}
}

func (m *mux) serve() {
	for {
		c, err := m.ln.Accept()
		if err != nil {
			select {
			case <-m.done:
				return
			default:
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			m.logger.Error("raft listener failed", "error", err)
			return
		}
		go m.handle(c)
	}
}

func (m *mux) handle(raw net.Conn) {
	if !m.track(raw) {
		raw.Close()
		return
	}
	c := tls.Server(raw, m.serverTLS)
	_ = c.SetDeadline(time.Now().Add(handshakeTimeout))
	var kind [1]byte
	if err := c.Handshake(); err != nil {
		m.logger.Warn("peer TLS handshake failed", "remote", raw.RemoteAddr().String(), "error", err)
		m.untrack(raw)
		c.Close()
		return
	}
	if _, err := io.ReadFull(c, kind[:]); err != nil {
		m.untrack(raw)
		c.Close()
		return
	}
	_ = c.SetDeadline(time.Time{})
	conn := &trackedConn{Conn: c, raw: raw, m: m}
	var ch chan net.Conn
	switch kind[0] {
	case connRaft:
		ch = m.raftCh
	case connForward:
		ch = m.forwardCh
	case connRPC:
		m.rpc(conn)
		conn.Close()
		return
	case connForwardBatch:
		m.batch(conn)
		return
	case connForwardFrames:
		m.frames(conn)
		return
	default:
		m.logger.Warn("unknown connection type from peer", "remote", raw.RemoteAddr().String(), "type", kind[0])
		conn.Close()
		return
	}
	select {
	case ch <- conn:
	case <-m.done:
		conn.Close()
	}
}

// dial opens a TLS connection of the given kind to a peer's raft address.
func (m *mux) dial(ctx context.Context, addr string, kind byte) (net.Conn, error) {
	m.mu.Lock()
	isolated := m.isolated
	m.mu.Unlock()
	if isolated {
		return nil, errIsolated
	}
	d := net.Dialer{Timeout: handshakeTimeout}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, err
	}
	if !m.track(raw) {
		raw.Close()
		return nil, errIsolated
	}
	c := tls.Client(raw, m.clientTLS)
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = c.SetDeadline(deadline)
	if err := c.Handshake(); err != nil {
		m.untrack(raw)
		c.Close()
		return nil, fmt.Errorf("TLS handshake with %s: %w", addr, err)
	}
	if _, err := c.Write([]byte{kind}); err != nil {
		m.untrack(raw)
		c.Close()
		return nil, err
	}
	_ = c.SetDeadline(time.Time{})
	return &trackedConn{Conn: c, raw: raw, m: m}, nil
}

func (m *mux) track(c net.Conn) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.isolated || m.closed {
		return false
	}
	m.conns[c] = struct{}{}
	return true
}

func (m *mux) untrack(c net.Conn) {
	m.mu.Lock()
	delete(m.conns, c)
	m.mu.Unlock()
}

// setIsolated cuts this server off from every peer (closing open
// connections and refusing new ones in both directions) or reconnects it.
// Tests use it to partition a real cluster.
func (m *mux) setIsolated(on bool) {
	m.mu.Lock()
	m.isolated = on
	var open []net.Conn
	if on {
		for c := range m.conns {
			open = append(open, c)
		}
		m.conns = map[net.Conn]struct{}{}
	}
	m.mu.Unlock()
	for _, c := range open {
		c.Close()
	}
}

func (m *mux) close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	open := make([]net.Conn, 0, len(m.conns))
	for c := range m.conns {
		open = append(open, c)
	}
	m.mu.Unlock()
	close(m.done)
	err := m.ln.Close()
	for _, c := range open {
		c.Close()
	}
	return err
}

// trackedConn removes itself from the mux's connection set on Close.
type trackedConn struct {
	net.Conn
	raw  net.Conn
	m    *mux
	once sync.Once
}

func (c *trackedConn) Close() error {
	c.once.Do(func() { c.m.untrack(c.raw) })
	return c.Conn.Close()
}

// raftLayer is the raft.StreamLayer over the mux.
type raftLayer struct{ m *mux }

var _ raft.StreamLayer = raftLayer{}

func (l raftLayer) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.raftCh:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

func (l raftLayer) Close() error   { return nil } // the server closes the mux
func (l raftLayer) Addr() net.Addr { return l.m.advertise }

func (l raftLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return l.m.dial(ctx, string(addr), connRaft)
}

// forwardListener hands forwarded-HTTP connections to the internal server.
type forwardListener struct{ m *mux }

func (l forwardListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.m.forwardCh:
		return c, nil
	case <-l.m.done:
		return nil, net.ErrClosed
	}
}

func (l forwardListener) Close() error   { return nil }
func (l forwardListener) Addr() net.Addr { return l.m.advertise }
