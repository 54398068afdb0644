package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
)

// fakeBackend is a Backend over a real FSM: Apply encodes the command and
// applies it at the next index, as raft would on every server at once.
type fakeBackend struct {
	id  string
	fsm *fsm.FSM

	mu    sync.Mutex
	index uint64    // guarded by mu
	now   time.Time // guarded by mu
	// dnsWaits are the indexes WaitDNS was asked for; guarded by mu.
	dnsWaits []uint64
	// dnsLate makes WaitDNS time out; guarded by mu.
	dnsLate bool

	leader     atomic.Bool
	platform   string // Platform's answer
	leaderURL  string // Forward target; empty: no leader
	forwardErr error  // Forward fails with it when set
	forwards   atomic.Int64
	applies    atomic.Int64
	verifies   atomic.Int64
	lastMeta   atomic.Pointer[fsm.WriteMeta]
	lastJoin   atomic.Pointer[JoinRequest]
	lastRemove atomic.Pointer[string]
	// interpose, when set, runs once before the next command applies: a
	// write that lands between a handler's checks and its command.
	interpose atomic.Pointer[func()]

	// Errors to inject; set before the handler runs.
	applyErr    error
	verifyErr   error
	awaitErr    error
	awaitWaited atomic.Bool // the wait of the last AwaitLeading
	readyErr    error
	joinErr     error
	statusPanic bool
}

func newFakeBackend(id string, f *fsm.FSM, leader bool) *fakeBackend {
	b := &fakeBackend{id: id, fsm: f, now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	b.leader.Store(leader)
	return b
}

func (b *fakeBackend) ID() string        { return b.id }
func (b *fakeBackend) State() *fsm.Store { return b.fsm.State() }
func (b *fakeBackend) IsLeader() bool    { return b.leader.Load() }
func (b *fakeBackend) Ready() error      { return b.readyErr }

func (b *fakeBackend) WaitDNS(_ context.Context, index uint64) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dnsWaits = append(b.dnsWaits, index)
	if b.dnsLate {
		return context.DeadlineExceeded
	}
	return nil
}
func (b *fakeBackend) advance(d time.Duration) { b.mu.Lock(); b.now = b.now.Add(d); b.mu.Unlock() }

func (b *fakeBackend) Platform() string { return b.platform }

func (b *fakeBackend) SealSecret(context.Context, fsm.WriteMeta, string, string) (fsm.Secret, error) {
	return fsm.Secret{}, ErrNoKEK
}

func (b *fakeBackend) RotateSecrets(context.Context, fsm.WriteMeta) (*SecretRotation, error) {
	return nil, ErrNoKEK
}

func (b *fakeBackend) Now() time.Time {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.now
}

func (b *fakeBackend) Forward(r *http.Request) (*http.Response, error) {
	b.forwards.Add(1)
	if b.forwardErr != nil {
		return nil, b.forwardErr
	}
	if b.leaderURL == "" {
		return nil, ErrNoLeader
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(r.Context(), r.Method, b.leaderURL+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header = r.Header.Clone()
	return http.DefaultClient.Do(req)
}

func (b *fakeBackend) Apply(ctx context.Context, cmd fsm.Command) (*fsm.Result, uint64, error) {
	// applies counts the commands that may change objects; the audit
	// record of a refused authentication changes only the audit log.
	if _, ok := cmd.(*fsm.AuditRecordRequest); !ok {
		b.applies.Add(1)
	}
	if b.applyErr != nil {
		return nil, 0, b.applyErr
	}
	if !b.IsLeader() {
		return nil, 0, ErrNotLeader
	}
	if f := b.interpose.Swap(nil); f != nil {
		(*f)()
	}
	m := *cmd.Meta()
	b.lastMeta.Store(&m)
	buf, err := fsm.Encode(cmd)
	if err != nil {
		return nil, 0, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.index = max(b.index, b.fsm.State().LatestIndex()) + 1
	res := b.fsm.Apply(&raft.Log{Index: b.index, Type: raft.LogCommand, Data: buf})
	return res.(*fsm.Result), b.index, nil
}

func (b *fakeBackend) AwaitLeading(ctx context.Context, wait bool) error {
	b.awaitWaited.Store(wait)
	if b.awaitErr != nil {
		return b.awaitErr
	}
	if !b.IsLeader() {
		return ErrNotLeader
	}
	return nil
}

func (b *fakeBackend) VerifyLeader(ctx context.Context) error {
	b.verifies.Add(1)
	return b.verifyErr
}

func (b *fakeBackend) Status(ctx context.Context) (*Status, error) {
	if b.statusPanic {
		panic("status exploded")
	}
	idx := b.fsm.State().LatestIndex()
	return &Status{Leader: b.id, Term: 2, CommitIndex: idx, AppliedIndex: idx, Servers: []ServerStatus{
		{ID: b.id, RaftAddress: "127.0.0.1:7001", APIAddress: "127.0.0.1:8001", State: "leader", Voter: true},
	}}, nil
}

func (b *fakeBackend) Join(ctx context.Context, req JoinRequest) error {
	if b.joinErr != nil {
		return b.joinErr
	}
	b.lastJoin.Store(&req)
	return nil
}

func (b *fakeBackend) Remove(ctx context.Context, id string) error {
	if id == "ghost" {
		return &fsm.NotFoundError{What: "server", ID: id}
	}
	b.lastRemove.Store(&id)
	return nil
}

func (b *fakeBackend) SnapshotSave(ctx context.Context, w io.Writer) (*fsm.ArchiveMeta, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	st := b.fsm.State()
	var data bytes.Buffer
	if err := st.Dump(&data); err != nil {
		return nil, err
	}
	meta := fsm.ArchiveMeta{Index: st.LatestIndex(), Term: 2, CreatedAt: b.now.Format(time.RFC3339), ServerID: b.id}
	if err := fsm.WriteArchive(w, meta, data.Bytes()); err != nil {
		return nil, err
	}
	return &meta, nil
}

func (b *fakeBackend) SnapshotRestore(ctx context.Context, meta fsm.WriteMeta, read func() (*fsm.Archive, error)) (*fsm.Archive, error) {
	a, err := read()
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	if err := b.fsm.Restore(io.NopCloser(bytes.NewReader(a.Data))); err != nil {
		b.mu.Unlock()
		return nil, err
	}
	b.mu.Unlock()
	meta.Now = b.Now().UnixNano()
	if _, _, err := b.Apply(ctx, &fsm.RestoreMarkRequest{WriteMeta: meta, SnapshotIndex: a.Meta.Index}); err != nil {
		return nil, err
	}
	return a, nil
}

// testServer is one API handler over a fake backend.
type testServer struct {
	t      testing.TB
	b      *fakeBackend
	h      http.Handler
	srv    *server
	secret string // the bootstrap admin secret, once bootstrapped
}

func newTestServer(t testing.TB, b *fakeBackend, opts Options) *testServer {
	t.Helper()
	h := New(b, opts)
	return &testServer{t: t, b: b, h: h, srv: h.(*server)}
}

// newLeader returns a bootstrapped leader over a fresh FSM.
func newLeader(t *testing.T) *testServer {
	t.Helper()
	ts := newTestServer(t, newFakeBackend("s1", fsm.New(), true), Options{})
	ts.bootstrap()
	return ts
}

// bootstrap creates the admin token and keeps its secret for later calls.
func (ts *testServer) bootstrap() TokenResponse {
	ts.t.Helper()
	rec := ts.do("POST", "/v1/acl/bootstrap", "")
	if rec.Code != http.StatusCreated {
		ts.t.Fatalf("bootstrap: %d %s", rec.Code, rec.Body)
	}
	var tok TokenResponse
	mustJSON(ts.t, rec.Body.Bytes(), &tok)
	ts.secret = tok.SecretID
	return tok
}

// do serves one request. hdr is name, value pairs; the admin token is sent
// unless an Authorization pair is given (an empty value sends none).
func (ts *testServer) do(method, target, body string, hdr ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	if ts.secret != "" {
		req.Header.Set("Authorization", "Bearer "+ts.secret)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		if hdr[i+1] == "" {
			req.Header.Del(hdr[i])
			continue
		}
		req.Header.Set(hdr[i], hdr[i+1])
	}
	rec := httptest.NewRecorder()
	ts.h.ServeHTTP(rec, req)
	return rec
}

// wantStatus fails unless rec has the status, and returns its body.
func wantStatus(t testing.TB, rec *httptest.ResponseRecorder, status int) []byte {
	t.Helper()
	if rec.Code != status {
		t.Fatalf("status %d, want %d; body %s", rec.Code, status, rec.Body)
	}
	return rec.Body.Bytes()
}

// wantError checks an error answer: status, JSON shape, code, field, and
// the headers every response carries. It returns the detail.
func wantError(t testing.TB, rec *httptest.ResponseRecorder, status int, code, field string) ErrorDetail {
	t.Helper()
	body := wantStatus(t, rec, status)
	if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var raw map[string]map[string]any
	mustJSON(t, body, &raw)
	if len(raw) != 1 || raw["error"] == nil {
		t.Fatalf("error body %s has other top-level keys", body)
	}
	var er ErrorResponse
	mustJSON(t, body, &er)
	d := er.Error
	if d.Code != code || d.Field != field {
		t.Fatalf("error code %q field %q, want %q %q (message %q)", d.Code, d.Field, code, field, d.Message)
	}
	if d.Message == "" {
		t.Error("empty error message")
	}
	if d.RequestID == "" || d.RequestID != rec.Header().Get("X-Request-ID") {
		t.Errorf("request_id %q, header %q", d.RequestID, rec.Header().Get("X-Request-ID"))
	}
	if rec.Header().Get("X-Moxxie-Index") == "" {
		t.Error("no X-Moxxie-Index")
	}
	if status == http.StatusServiceUnavailable && rec.Header().Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	return d
}

func mustJSON(t testing.TB, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}
