package client

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// fake is an HTTPS test server recording the requests it got.
type fake struct {
	*httptest.Server
	caFile string

	mu   sync.Mutex
	reqs []*recorded // guarded by mu
}

type recorded struct {
	method, path, query string
	header              http.Header
	body                []byte
}

func newFake(t *testing.T, h http.HandlerFunc) *fake {
	t.Helper()
	f := &fake{}
	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, &recorded{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Clone(), body})
		f.mu.Unlock()
		w.Header().Set("X-Request-Id", "req-1")
		if w.Header().Get("X-Moxxie-Index") == "" {
			w.Header().Set("X-Moxxie-Index", "42")
		}
		h(w, r)
	}))
	f.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.StartTLS()
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	pemData := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw})
	if err := os.WriteFile(f.caFile, pemData, 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fake) requests() []*recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]*recorded(nil), f.reqs...)
}

func (f *fake) client(t *testing.T, cfg Config) *Client {
	t.Helper()
	if cfg.Address == "" {
		cfg.Address = f.URL
	}
	if cfg.CACert == "" {
		cfg.CACert = f.caFile
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": msg, "field": field, "request_id": "req-1",
	}})
}

func TestNew_Addresses(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  bool
	}{
		{"https://10.0.0.1:8443", []string{"https://10.0.0.1:8443"}, false},
		{"10.0.0.1:8443, https://b:1/ ,", []string{"https://10.0.0.1:8443", "https://b:1"}, false},
		{"http://localhost:8080", []string{"http://localhost:8080"}, false},
		{"", nil, true},
		{" , ", nil, true},
		{"ftp://x:1", nil, true},
		{"https://x:1/v1", nil, true},
		{"https://user@x:1", nil, true},
		{"https://[2001:db8::1]:8443", []string{"https://[2001:db8::1]:8443"}, false},
		{"2001:db8::1", nil, true}, // an address to allocate given to --address
	}
	for _, tt := range tests {
		c, err := New(Config{Address: tt.in})
		if tt.err {
			if err == nil {
				t.Errorf("New(%q) accepted", tt.in)
			}
			continue
		}
		if err != nil {
			t.Errorf("New(%q): %v", tt.in, err)
			continue
		}
		if got := c.Addresses(); strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("New(%q) addresses %v, want %v", tt.in, got, tt.want)
		}
	}
	if _, err := New(Config{Address: "2001:db8::1"}); err == nil || !strings.Contains(err.Error(), "https://[2001:db8::1]:PORT") {
		t.Errorf("bare IPv6 address: %v, want a hint at the bracketed form", err)
	}
	if _, err := New(Config{Address: "https://x:1", CACert: "/nonexistent/ca.pem"}); err == nil {
		t.Error("missing CA file accepted")
	}
}

func TestAuthAndHeaders(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{"leader": "s1", "term": 3, "commit_index": 10, "applied_index": 9,
			"servers": []map[string]any{{"id": "s1", "raft_address": "127.0.0.1:1", "api_address": "https://127.0.0.1:2", "state": "leader", "voter": true}}})
	})
	c := f.client(t, Config{Token: "s3cret"})
	st, err := c.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Leader != "s1" || st.Term != 3 || st.CommitIndex != 10 || st.AppliedIndex != 9 || len(st.Servers) != 1 || !st.Servers[0].Voter {
		t.Errorf("status %+v", st)
	}
	r := f.requests()[0]
	if got := r.header.Get("Authorization"); got != "Bearer s3cret" {
		t.Errorf("Authorization %q", got)
	}
	if r.header.Get("Idempotency-Key") != "" {
		t.Error("a read carried an Idempotency-Key")
	}
	if !strings.HasPrefix(r.header.Get("User-Agent"), "moxxie-client/") {
		t.Errorf("User-Agent %q", r.header.Get("User-Agent"))
	}

	anon := f.client(t, Config{})
	if err := anon.Health(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[1].header.Get("Authorization"); got != "" {
		t.Errorf("token-less client sent Authorization %q", got)
	}
}

func TestSettings(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		s := map[string]any{"key": "a/b", "value": "v", "create_index": 4, "modify_index": 7, "updated_at": 1700000000000000000}
		switch r.Method {
		case http.MethodGet:
			if r.URL.Path == "/v1/cluster/settings" {
				writeJSON(w, 200, map[string]any{"settings": []any{s}})
				return
			}
			writeJSON(w, 200, s)
		case http.MethodPut:
			w.Header().Set("Idempotent-Replayed", "true")
			writeJSON(w, 200, s)
		case http.MethodDelete:
			w.WriteHeader(http.StatusNoContent)
		}
	})
	c := f.client(t, Config{})
	ctx := context.Background()

	s, m, err := c.SettingGet(ctx, "a/b", &QueryOptions{Stale: true, Index: 5, Wait: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if s.Key != "a/b" || s.ModifyIndex != 7 || !s.UpdatedAt.Equal(time.Unix(1700000000, 0)) {
		t.Errorf("setting %+v", s)
	}
	if m.Index != 42 || m.RequestID != "req-1" || m.Address != f.URL {
		t.Errorf("meta %+v", m)
	}
	list, _, err := c.SettingList(ctx, &QueryOptions{Consistent: true})
	if err != nil || len(list) != 1 {
		t.Fatalf("list %v, %v", list, err)
	}
	cas := uint64(0)
	if _, m, err = c.SettingPut(ctx, "a/b", "v", &WriteOptions{CAS: &cas, IdempotencyKey: "k1"}); err != nil {
		t.Fatal(err)
	}
	if !m.Replayed {
		t.Error("Replayed not reported")
	}
	if _, _, err = c.SettingPut(ctx, "a/b", "w", nil); err != nil {
		t.Fatal(err)
	}
	if _, err = c.SettingDelete(ctx, "a/b", nil); err != nil {
		t.Fatal(err)
	}

	reqs := f.requests()
	want := []struct{ method, path, query string }{
		{"GET", "/v1/cluster/settings/a/b", "index=5&stale=true&wait=2s"},
		{"GET", "/v1/cluster/settings", "consistent=true"},
		{"PUT", "/v1/cluster/settings/a/b", "cas=0"},
		{"PUT", "/v1/cluster/settings/a/b", ""},
		{"DELETE", "/v1/cluster/settings/a/b", ""},
	}
	for i, w := range want {
		r := reqs[i]
		if r.method != w.method || r.path != w.path || r.query != w.query {
			t.Errorf("request %d: %s %s?%s, want %s %s?%s", i, r.method, r.path, r.query, w.method, w.path, w.query)
		}
	}
	if got := string(reqs[2].body); got != `{"value":"v"}` {
		t.Errorf("PUT body %s", got)
	}
	if got := reqs[2].header.Get("Content-Type"); got != "application/json" {
		t.Errorf("PUT Content-Type %q", got)
	}
	if got := reqs[2].header.Get("Idempotency-Key"); got != "k1" {
		t.Errorf("explicit Idempotency-Key sent as %q", got)
	}
	k3, k4 := reqs[3].header.Get("Idempotency-Key"), reqs[4].header.Get("Idempotency-Key")
	if len(k3) < 16 || len(k4) < 16 || k3 == k4 {
		t.Errorf("automatic Idempotency-Keys %q, %q: want random and distinct", k3, k4)
	}
}

func TestTokens(t *testing.T) {
	secret := "secret-1"
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.URL.Path == "/v1/acl/bootstrap" || r.Method == http.MethodPost:
			writeJSON(w, 201, map[string]any{"accessor_id": "acc-1", "secret_id": secret, "role": "admin",
				"description": "Bootstrap token", "created_at": "2025-01-02T03:04:05Z"})
		case r.Method == http.MethodGet:
			writeJSON(w, 200, map[string]any{"tokens": []any{map[string]any{"accessor_id": "acc-1", "role": "admin", "created_at": "2023-11-14T22:13:20Z"}}})
		default:
			w.WriteHeader(200)
			io.WriteString(w, "{}")
		}
	})
	c := f.client(t, Config{})
	ctx := context.Background()
	ts, err := c.Bootstrap(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ts.AccessorID != "acc-1" || ts.SecretID != secret || ts.CreatedAt.Year() != 2025 {
		t.Errorf("bootstrap %+v", ts)
	}
	if _, _, err := c.TokenCreate(ctx, TokenRequest{Description: "ci", Role: "operator", TTL: 24 * time.Hour}, nil); err != nil {
		t.Fatal(err)
	}
	list, _, err := c.TokenList(ctx, nil)
	if err != nil || len(list) != 1 || list[0].CreatedAt.Unix() != 1700000000 {
		t.Fatalf("list %+v, %v", list, err)
	}
	if _, err := c.TokenRevoke(ctx, "acc-1", nil); err != nil {
		t.Fatal(err)
	}
	reqs := f.requests()
	if got := string(reqs[1].body); got != `{"description":"ci","role":"operator","ttl":"24h0m0s"}` {
		t.Errorf("token create body %s", got)
	}
	if reqs[3].method != "DELETE" || reqs[3].path != "/v1/acl/tokens/acc-1" {
		t.Errorf("revoke %s %s", reqs[3].method, reqs[3].path)
	}

	secret = ""
	if _, err := c.Bootstrap(ctx); !errors.Is(err, ErrNoSecret) {
		t.Errorf("answer without secret: %v, want ErrNoSecret", err)
	}
}

func TestCluster(t *testing.T) {
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/cluster/servers/gone" {
			writeErr(w, 404, "not_found", "unknown server", "")
			return
		}
		w.WriteHeader(200)
	})
	c := f.client(t, Config{})
	ctx := context.Background()
	if err := c.Join(ctx, "s4", "10.0.0.4:7000"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "s4"); err != nil {
		t.Fatal(err)
	}
	if err := c.Remove(ctx, "gone"); !IsNotFound(err) {
		t.Errorf("remove unknown: %v", err)
	}
	reqs := f.requests()
	if reqs[0].method != "POST" || reqs[0].path != "/v1/cluster/join" || string(reqs[0].body) != `{"id":"s4","raft_address":"10.0.0.4:7000"}` {
		t.Errorf("join: %s %s %s", reqs[0].method, reqs[0].path, reqs[0].body)
	}
	if reqs[1].method != "DELETE" || reqs[1].path != "/v1/cluster/servers/s4" {
		t.Errorf("remove: %s %s", reqs[1].method, reqs[1].path)
	}
}

func TestTime(t *testing.T) {
	tests := []struct {
		in   string
		want time.Time
		err  bool
	}{
		{`1700000000000000001`, time.Unix(0, 1700000000000000001), false},
		{`"2025-01-02T03:04:05.5Z"`, time.Date(2025, 1, 2, 3, 4, 5, 5e8, time.UTC), false},
		{`null`, time.Time{}, false},
		{`0`, time.Time{}, false},
		{`""`, time.Time{}, false},
		{`"yesterday"`, time.Time{}, true},
		{`true`, time.Time{}, true},
	}
	for _, tt := range tests {
		var got Time
		err := json.Unmarshal([]byte(tt.in), &got)
		if (err != nil) != tt.err || !got.Equal(tt.want) {
			t.Errorf("Unmarshal(%s) = %v, %v; want %v (error %v)", tt.in, got, err, tt.want, tt.err)
		}
	}
	b, _ := json.Marshal(Setting{Key: "k", UpdatedAt: Time{time.Unix(0, 0).UTC()}})
	if !strings.Contains(string(b), `"updated_at":"1970-01-01T00:00:00Z"`) {
		t.Errorf("Marshal: %s", b)
	}
	b, _ = json.Marshal(Setting{Key: "k"})
	if strings.Contains(string(b), "updated_at") {
		t.Errorf("zero time not omitted: %s", b)
	}
}

func TestListShapes(t *testing.T) {
	tests := []struct {
		in   string
		want int
		err  bool
	}{
		{`{"settings": [{"key": "a"}, {"key": "b"}]}`, 2, false},
		{`{"settings": []}`, 0, false},
		{`{"settings": null}`, 0, false},
		{`[{"key": "a"}]`, 1, false},
		{`{"tokens": []}`, 0, true},
		{`"x"`, 0, true},
	}
	for _, tt := range tests {
		l := listOf[Setting]{field: "settings"}
		err := json.Unmarshal([]byte(tt.in), &l)
		if (err != nil) != tt.err || len(l.items) != tt.want {
			t.Errorf("%s: %d items, %v; want %d (error %v)", tt.in, len(l.items), err, tt.want, tt.err)
		}
	}
}
