package node

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/hashicorp/go-msgpack/v2/codec"
)

// Writes forwarded from a follower to the leader travel over one mutual-TLS
// connection per leader as frames (fwdcodec.go) that each carry many
// requests (or responses): under load a frame holds every write that arrived while the
// previous one was being sent. That saves a TLS record, a syscall and an
// HTTP parse per write on both servers, which is most of what forwarding
// costs. Reads, large bodies and snapshots use plain forwarded HTTP.

// Connection types of batched forwarding. connForwardFrames carries the
// frames of fwdcodec.go; the leader acknowledges it with fwdFramesAck
// before the first frame, so that a follower whose leader runs the
// previous version (which closes an unknown connection type) learns it
// before sending anything, and forwards as plain HTTP instead.
// connForwardBatch, msgpack frames without an acknowledgment, is what
// followers of the previous version send; leaders still serve it.
const (
	connForwardBatch  byte = 4
	connForwardFrames byte = 5
	fwdFramesAck      byte = 0xA5
)

// errFramesUnsupported means the leader does not speak connForwardFrames.
var errFramesUnsupported = errors.New("the leader does not take batched forward frames")

// framesRetry is how long a follower forwards as plain HTTP to a leader
// that did not take batched frames before it tries them again.
const framesRetry = time.Minute

// fwdWorkerIdle is how long a leader keeps a worker of a forward
// connection that has no request to run.
const fwdWorkerIdle = 30 * time.Second

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

// writeFrame writes v as one msgpack frame (connForwardBatch).
func writeFrame(w *bufio.Writer, v any) error {
	var buf bytes.Buffer
	if err := codec.NewEncoder(&buf, fwdHandle).Encode(v); err != nil {
		return err
	}
	fw := frameWriter{w: w}
	return fw.write(func(b []byte) []byte { return append(b, buf.Bytes()...) })
}

// readFrame reads one msgpack frame (connForwardBatch) into v.
func readFrame(r *bufio.Reader, v any) error {
	p, err := readPayload(r)
	if err != nil {
		return err
	}
	return codec.NewDecoderBytes(p, fwdHandle).Decode(v)
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
func (s *Server) forwardBatched(ctx context.Context, t fwdTarget, r *http.Request, body []byte) (*http.Response, error) {
	c, err := s.fwdClientFor(ctx, t.addr)
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
	timeout := time.NewTimer(forwardAnswerTimeout)
	defer timeout.Stop()
	for {
		select {
		case res := <-ch:
			if errors.Is(res.err, errForwardLost) {
				return nil, &forwardLostError{leader: t.id, why: "dropped the connection"}
			}
			if res.err != nil {
				return nil, res.err
			}
			return &http.Response{
				StatusCode: res.resp.Status, Status: strconv.Itoa(res.resp.Status) + " " + http.StatusText(res.resp.Status),
				Header: res.resp.Header, Body: io.NopCloser(bytes.NewReader(res.resp.Body)),
				ContentLength: int64(len(res.resp.Body)), Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
			}, nil
		case <-t.changed:
			if s.stillLeads(&t) {
				continue
			}
			c.drop(id)
			return nil, &forwardLostError{leader: t.id, why: "stopped leading"}
		case <-timeout.C:
			c.drop(id)
			return nil, &forwardLostError{leader: t.id, why: "did not answer within " + forwardAnswerTimeout.String()}
		case <-ctx.Done():
			c.drop(id)
			return nil, ctx.Err()
		}
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
	if until, ok := s.fwdPlain[addr]; ok && time.Now().Before(until) {
		return nil, &dialError{errFramesUnsupported}
	}
	conn, err := s.mux.dial(ctx, addr, connForwardFrames)
	if err != nil {
		return nil, &dialError{err}
	}
	if err := awaitFramesAck(ctx, conn); err != nil {
		conn.Close()
		if errors.Is(err, errFramesUnsupported) {
			s.fwdPlain[addr] = time.Now().Add(framesRetry)
		}
		return nil, &dialError{err}
	}
	c := &fwdClient{addr: addr, conn: conn, sendCh: make(chan *fwdCall, fwdMaxPerFrame), done: make(chan struct{}), pending: map[uint64]chan fwdCall{}}
	s.fwdClients[addr] = c
	go c.writeLoop()
	go c.readLoop()
	return c, nil
}

// awaitFramesAck reads the leader's acknowledgment of a connForwardFrames
// connection. A leader that closes the connection instead does not know
// the type.
func awaitFramesAck(ctx context.Context, conn net.Conn) error {
	deadline := time.Now().Add(handshakeTimeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	_ = conn.SetReadDeadline(deadline)
	defer func() { _ = conn.SetReadDeadline(time.Time{}) }()
	var b [1]byte
	switch _, err := io.ReadFull(conn, b[:]); {
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET):
		return errFramesUnsupported
	case err != nil:
		return err
	case b[0] != fwdFramesAck:
		return fmt.Errorf("leader answered batched forwarding with %#x", b[0])
	}
	return nil
}

func (c *fwdClient) writeLoop() {
	fw := &frameWriter{w: bufio.NewWriter(c.conn)}
	for {
		var first *fwdCall
		select {
		case first = <-c.sendCh:
		case <-c.done:
			return
		}
		// Let other handlers that are about to forward join the frame.
		runtime.Gosched()
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
		if err := fw.write(func(b []byte) []byte { return appendRequests(b, reqs) }); err != nil {
			c.fail(err)
			return
		}
	}
}

func (c *fwdClient) readLoop() {
	r := bufio.NewReader(c.conn)
	for {
		p, err := readPayload(r)
		if err != nil {
			c.fail(err)
			return
		}
		resps, err := decodeResponses(p)
		if err != nil {
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

// frameCodec reads frames of requests and writes frames of responses in
// one of the two formats.
type frameCodec struct {
	read  func(*bufio.Reader) ([]fwdRequest, error)
	write func(*bufio.Writer, []fwdResponse) error
}

// serveForwardFrames serves a connForwardFrames connection.
func (s *Server) serveForwardFrames(conn net.Conn) {
	if _, err := conn.Write([]byte{fwdFramesAck}); err != nil {
		conn.Close()
		return
	}
	var buf []byte
	s.serveForwardBatch(conn, frameCodec{
		read: func(r *bufio.Reader) ([]fwdRequest, error) {
			p, err := readPayload(r)
			if err != nil {
				return nil, err
			}
			return decodeRequests(p)
		},
		write: func(w *bufio.Writer, resps []fwdResponse) error {
			fw := frameWriter{w: w, buf: buf}
			err := fw.write(func(b []byte) []byte { return appendResponses(b, resps) })
			buf = fw.buf
			return err
		},
	})
}

// serveForwardMsgpack serves a connForwardBatch connection from a follower
// of the previous version.
func (s *Server) serveForwardMsgpack(conn net.Conn) {
	s.serveForwardBatch(conn, frameCodec{
		read: func(r *bufio.Reader) ([]fwdRequest, error) {
			var reqs []fwdRequest
			err := readFrame(r, &reqs)
			return reqs, err
		},
		write: func(w *bufio.Writer, resps []fwdResponse) error { return writeFrame(w, resps) },
	})
}

// serveForwardBatch runs on the leader: it executes every request of each
// frame concurrently through the API handler and sends the responses back
// in frames as they complete.
func (s *Server) serveForwardBatch(conn net.Conn, codec frameCodec) {
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
			// Let the workers whose writes committed with this one
			// finish first, so that their answers share the frame and
			// its write to the socket.
			runtime.Gosched()
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
			if err := codec.write(w, resps); err != nil {
				cancel()
				conn.Close()
				return
			}
		}
	}()
	// Each request runs on a worker of its own, so that requests wait for
	// their commit together (group commit). Workers outlive their request
	// and take the next one: a fresh goroutine per request grew its stack
	// through the API handler every time, 3% of a busy leader's CPU.
	work := make(chan fwdRequest)
	remote := conn.RemoteAddr().String()
	worker := func(fr fwdRequest) {
		defer wg.Done()
		idle := time.NewTimer(fwdWorkerIdle)
		defer idle.Stop()
		for ok := true; ok; {
			resp := s.runForwarded(ctx, remote, fr)
			select {
			case out <- resp:
			case <-ctx.Done():
			}
			idle.Reset(fwdWorkerIdle)
			select {
			case fr, ok = <-work:
			case <-idle.C:
				return
			}
		}
	}
	r := bufio.NewReader(conn)
	for {
		reqs, err := codec.read(r)
		if err != nil {
			break
		}
		for _, fr := range reqs {
			select {
			case work <- fr:
			default:
				wg.Add(1)
				go worker(fr)
			}
		}
	}
	cancel()
	close(work)
	wg.Wait()
}

// runForwarded runs one forwarded request through the API handler; remote
// is the address of the server that forwarded it.
func (s *Server) runForwarded(ctx context.Context, remote string, fr fwdRequest) fwdResponse {
	req, err := http.NewRequestWithContext(ctx, fr.Method, fr.URI, bytes.NewReader(fr.Body))
	if err != nil {
		return fwdResponse{ID: fr.ID, Status: http.StatusBadRequest, Header: http.Header{"Content-Type": {"application/json"}},
			Body: []byte(`{"error":{"code":"invalid_request","message":"malformed forwarded request"}}`)}
	}
	req.Header = fr.Header
	req.RemoteAddr = remote
	req.RequestURI = fr.URI
	rec := fwdRecorder{header: http.Header{}}
	s.handler.ServeHTTP(&rec, req)
	if rec.status == 0 {
		rec.status = http.StatusOK
	}
	return fwdResponse{ID: fr.ID, Status: rec.status, Header: rec.header, Body: rec.body}
}

// fwdRecorder keeps the API handler's answer to a forwarded request for
// its frame: the status, the header as it is when the handler returns, and
// the body. (httptest's recorder also copies the header when it is
// written, which the frame does not need.)
type fwdRecorder struct {
	header http.Header
	status int
	body   []byte
}

func (w *fwdRecorder) Header() http.Header { return w.header }

func (w *fwdRecorder) WriteHeader(status int) {
	if w.status == 0 {
		w.status = status
	}
}

func (w *fwdRecorder) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	w.body = append(w.body, p...)
	return len(p), nil
}

// dialError wraps a failure to reach the leader before anything was sent,
// which makes a retry safe.
type dialError struct{ err error }

func (e *dialError) Error() string { return e.err.Error() }
func (e *dialError) Unwrap() error { return e.err }
