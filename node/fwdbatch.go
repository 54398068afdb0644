package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Writes forwarded from a follower to the leader travel over one mutual-TLS
// connection per leader as frames that each carry many requests (or
// responses): under load a frame holds every write that arrived while the
// previous one was being sent. That saves a TLS record, a syscall and an
// HTTP parse per write on both servers, which is most of what forwarding
// costs. Reads, large bodies and snapshots use plain forwarded HTTP.

// connForwardBatch marks a batched-forwarding connection.
const connForwardBatch byte = 4

// Frame limits: bodies above fwdBatchMaxBody use plain HTTP forwarding;
// a frame never exceeds fwdMaxFrame bytes.
const (
	fwdBatchMaxBody = 1 << 20
	fwdMaxFrame     = 64 << 20
	fwdMaxPerFrame  = 256
)

// errForwardLost means the connection to the leader failed after a request
// was sent: it may or may not have been applied.
var errForwardLost = errors.New("connection to the leader lost; outcome unknown")

type fwdRequest struct {
	ID     uint64
	Method string
	URI    string
	Header http.Header
	Body   []byte
}

type fwdResponse struct {
	ID     uint64
	Status int
	Header http.Header
	Body   []byte
}

var fwdHandle = &codec.MsgpackHandle{}

func writeFrame(w *bufio.Writer, v any) error {
	var buf bytes.Buffer
	buf.Write([]byte{0, 0, 0, 0})
	if err := codec.NewEncoder(&buf, fwdHandle).Encode(v); err != nil {
		return err
	}
	b := buf.Bytes()
	if len(b)-4 > fwdMaxFrame {
		return fmt.Errorf("forward frame of %d bytes exceeds %d", len(b)-4, fwdMaxFrame)
	}
	binary.BigEndian.PutUint32(b[:4], uint32(len(b)-4))
	if _, err := w.Write(b); err != nil {
		return err
	}
	return w.Flush()
}

func readFrame(r *bufio.Reader, v any) error {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > fwdMaxFrame {
		return fmt.Errorf("forward frame of %d bytes exceeds %d", n, fwdMaxFrame)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return err
	}
	return codec.NewDecoderBytes(b, fwdHandle).Decode(v)
}

// batchable reports whether a forwarded request may use a batch frame.
func batchable(r *http.Request, body []byte) bool {
	return r.Method != http.MethodGet && r.Method != http.MethodHead &&
		len(body) <= fwdBatchMaxBody && r.URL.Path != "/v1/snapshot"
}

// fwdClient sends batched requests to one leader address.
type fwdClient struct {
	addr   string
	conn   net.Conn
	sendCh chan *fwdCall
	done   chan struct{}

	mu      sync.Mutex
	nextID  uint64                  // guarded by mu
	pending map[uint64]chan fwdCall // guarded by mu
	err     error                   // guarded by mu; set once the connection failed
}

type fwdCall struct {
	req  fwdRequest
	resp *fwdResponse
	err  error
}

// forwardBatched sends one request through the batch connection to addr,
// dialing it if needed. A dial failure is returned as *dialError: nothing
// was sent.
func (s *Server) forwardBatched(ctx context.Context, addr string, r *http.Request, body []byte) (*http.Response, error) {
	c, err := s.fwdClientFor(ctx, addr)
	if err != nil {
		return nil, err
	}
	ch := make(chan fwdCall, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, &dialError{c.err}
	}
	c.nextID++
	id := c.nextID
	c.pending[id] = ch
	c.mu.Unlock()
	call := &fwdCall{req: fwdRequest{ID: id, Method: r.Method, URI: r.URL.RequestURI(), Header: r.Header, Body: body}}
	select {
	case c.sendCh <- call:
	case <-c.done:
		return nil, &dialError{errors.New("connection to the leader closed")}
	case <-ctx.Done():
		c.drop(id)
		return nil, ctx.Err()
	}
	select {
	case res := <-ch:
		if res.err != nil {
			return nil, res.err
		}
		return &http.Response{
			StatusCode: res.resp.Status, Status: strconv.Itoa(res.resp.Status) + " " + http.StatusText(res.resp.Status),
			Header: res.resp.Header, Body: io.NopCloser(bytes.NewReader(res.resp.Body)),
			ContentLength: int64(len(res.resp.Body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		}, nil
	case <-ctx.Done():
		c.drop(id)
		return nil, ctx.Err()
	}
}

func (c *fwdClient) drop(id uint64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (s *Server) fwdClientFor(ctx context.Context, addr string) (*fwdClient, error) {
	s.fwdMu.Lock()
	defer s.fwdMu.Unlock()
	if c := s.fwdClients[addr]; c != nil {
		select {
		case <-c.done:
		default:
			return c, nil
		}
	}
	conn, err := s.mux.dial(ctx, addr, connForwardBatch)
	if err != nil {
		return nil, &dialError{err}
	}
	c := &fwdClient{addr: addr, conn: conn, sendCh: make(chan *fwdCall, fwdMaxPerFrame), done: make(chan struct{}), pending: map[uint64]chan fwdCall{}}
	s.fwdClients[addr] = c
	go c.writeLoop()
	go c.readLoop()
	return c, nil
}

func (c *fwdClient) writeLoop() {
	w := bufio.NewWriter(c.conn)
	for {
		var first *fwdCall
		select {
		case first = <-c.sendCh:
		case <-c.done:
			return
		}
		reqs := []fwdRequest{first.req}
	drain:
		for len(reqs) < fwdMaxPerFrame {
			select {
			case more := <-c.sendCh:
				reqs = append(reqs, more.req)
			default:
				break drain
			}
		}
		if err := writeFrame(w, reqs); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *fwdClient) readLoop() {
	r := bufio.NewReader(c.conn)
	for {
		var resps []fwdResponse
		if err := readFrame(r, &resps); err != nil {
			c.fail(err)
			return
		}
		c.mu.Lock()
		for i := range resps {
			if ch, ok := c.pending[resps[i].ID]; ok {
				delete(c.pending, resps[i].ID)
				ch <- fwdCall{resp: &resps[i]}
			}
		}
		c.mu.Unlock()
	}
}

// fail closes the connection and fails every request still waiting: they
// were sent, so their outcome is unknown.
func (c *fwdClient) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	c.conn.Close()
	for id, ch := range c.pending {
		ch <- fwdCall{err: fmt.Errorf("%w: %v", errForwardLost, err)}
		delete(c.pending, id)
	}
}

func (s *Server) closeFwdClients() {
	s.fwdMu.Lock()
	defer s.fwdMu.Unlock()
	for addr, c := range s.fwdClients {
		c.fail(errors.New("server shutting down"))
		delete(s.fwdClients, addr)
	}
}

// serveForwardBatch runs on the leader: it executes every request of each
// frame concurrently through the API handler and sends the responses back
// in frames as they complete.
func (s *Server) serveForwardBatch(conn net.Conn) {
	defer conn.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	out := make(chan fwdResponse, fwdMaxPerFrame)
	var wg sync.WaitGroup
	go func() {
		w := bufio.NewWriter(conn)
		for {
			var first fwdResponse
			select {
			case first = <-out:
			case <-ctx.Done():
				return
			}
			resps := []fwdResponse{first}
		drain:
			for len(resps) < fwdMaxPerFrame {
				select {
				case more := <-out:
					resps = append(resps, more)
				default:
					break drain
				}
			}
			if err := writeFrame(w, resps); err != nil {
				cancel()
				conn.Close()
				return
			}
		}
	}()
	r := bufio.NewReader(conn)
	for {
		var reqs []fwdRequest
		if err := readFrame(r, &reqs); err != nil {
			break
		}
		for _, fr := range reqs {
			wg.Add(1)
			go func(fr fwdRequest) {
				defer wg.Done()
				resp := s.runForwarded(ctx, conn, fr)
				select {
				case out <- resp:
				case <-ctx.Done():
				}
			}(fr)
		}
	}
	cancel()
	wg.Wait()
}

func (s *Server) runForwarded(ctx context.Context, conn net.Conn, fr fwdRequest) fwdResponse {
	req, err := http.NewRequestWithContext(ctx, fr.Method, fr.URI, bytes.NewReader(fr.Body))
	if err != nil {
		return fwdResponse{ID: fr.ID, Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"error":{"code":"invalid_request","message":"malformed forwarded request"}}`)}
	}
	req.Header = fr.Header
	req.RemoteAddr = conn.RemoteAddr().String()
	req.RequestURI = fr.URI
	rec := httptest.NewRecorder()
	s.handler.ServeHTTP(rec, req)
	return fwdResponse{ID: fr.ID, Status: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

// dialError wraps a failure to reach the leader before anything was sent,
// which makes a retry safe.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
