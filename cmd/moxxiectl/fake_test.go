package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"

	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
)

// fakeAPI is a small in-memory Moxxie API over HTTPS: enough of the
// contract to drive moxxiectl.
type fakeAPI struct {
	*httptest.Server
	caFile  string
	archive []byte

	mu       sync.Mutex
	index    uint64
	settings map[string]map[string]any
	calls    []string // "METHOD path?query", in order
	restored []byte
	tokens   []map[string]any
	// snapshotBody, when set, replaces the archive served by GET /v1/snapshot.
	snapshotBody []byte
}

func newFakeAPI(t *testing.T) *fakeAPI {
	t.Helper()
	f := &fakeAPI{archive: testArchive(t), index: 10, settings: map[string]map[string]any{}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 200, map[string]any{
			"leader": "s1", "term": 4, "commit_index": 120, "applied_index": 119,
			"servers": []map[string]any{
				{"id": "s1", "raft_address": "127.0.0.1:7001", "api_address": "https://127.0.0.1:8443", "state": "leader", "voter": true, "cert_not_after": "2027-11-25T22:03:00Z"},
				{"id": "s2", "raft_address": "127.0.0.1:7002", "api_address": "", "state": "unreachable", "voter": false},
			},
		})
	})
	mux.HandleFunc("POST /v1/cluster/join", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]string
		_ = json.NewDecoder(r.Body).Decode(&body)
		writeJSON(w, 200, map[string]string{"joined": body["id"]})
	})
	mux.HandleFunc("DELETE /v1/cluster/servers/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.PathValue("id") != "s2" {
			writeErr(w, 404, "not_found", "unknown server", "")
			return
		}
		writeJSON(w, 200, map[string]string{"removed": r.PathValue("id")})
	})
	mux.HandleFunc("POST /v1/acl/bootstrap", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, 201, map[string]any{"accessor_id": "acc-boot", "secret_id": "sec-boot", "role": "admin",
			"description": "Bootstrap token", "created_at": 1700000000000000000})
	})
	mux.HandleFunc("POST /v1/acl/tokens", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		_ = json.NewDecoder(r.Body).Decode(&body)
		tok := map[string]any{"accessor_id": "acc-2", "role": body["role"], "description": body["description"],
			"tenant": body["tenant"], "created_at": "2023-11-14T22:13:20Z", "expires_at": "2023-11-14T23:13:20Z", "create_index": 12}
		f.mu.Lock()
		f.tokens = append(f.tokens, tok)
		f.mu.Unlock()
		out := map[string]any{"secret_id": "sec-2"}
		for k, v := range tok {
			out[k] = v
		}
		writeJSON(w, 201, out)
	})
	mux.HandleFunc("GET /v1/acl/tokens", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"tokens": append([]map[string]any{{"accessor_id": "acc-boot", "role": "admin",
			"description": "Bootstrap token", "created_at": "2023-11-14T22:13:20Z"}}, f.tokens...)})
	})
	mux.HandleFunc("DELETE /v1/acl/tokens/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(200)
	})
	mux.HandleFunc("GET /v1/cluster/settings", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		keys := make([]string, 0, len(f.settings))
		for k := range f.settings {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		out := []map[string]any{}
		for _, k := range keys {
			out = append(out, f.settings[k])
		}
		writeJSON(w, 200, map[string]any{"settings": out})
	})
	mux.HandleFunc("GET /v1/cluster/settings/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		s, ok := f.settings[r.PathValue("key")]
		if !ok {
			writeErr(w, 404, "not_found", fmt.Sprintf("setting %q not found", r.PathValue("key")), "key")
			return
		}
		writeJSON(w, 200, s)
	})
	mux.HandleFunc("PUT /v1/cluster/settings/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		var body struct {
			Value string `json:"value"`
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			writeErr(w, 400, "invalid_request", err.Error(), "")
			return
		}
		key := r.PathValue("key")
		old, exists := f.settings[key]
		if c := r.URL.Query().Get("cas"); c != "" {
			cas, _ := strconv.ParseUint(c, 10, 64)
			var mod uint64
			if exists {
				mod = old["modify_index"].(uint64)
			}
			if cas != mod {
				writeErr(w, 409, "conflict", fmt.Sprintf("conflict: setting %q has modify index %d, not %d", key, mod, cas), "")
				return
			}
		}
		f.index++
		s := map[string]any{"key": key, "value": body.Value, "create_index": f.index, "modify_index": f.index, "updated_at": 1700000000000000000}
		if exists {
			s["create_index"] = old["create_index"]
		}
		f.settings[key] = s
		writeJSON(w, 200, s)
	})
	mux.HandleFunc("DELETE /v1/cluster/settings/{key}", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		if _, ok := f.settings[r.PathValue("key")]; !ok {
			writeErr(w, 404, "not_found", fmt.Sprintf("setting %q not found", r.PathValue("key")), "")
			return
		}
		delete(f.settings, r.PathValue("key"))
		w.WriteHeader(200)
	})
	mux.HandleFunc("GET /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		body := f.archive
		if f.snapshotBody != nil {
			body = f.snapshotBody
		}
		f.mu.Unlock()
		sum := sha256.Sum256(body)
		w.Header().Set("X-Moxxie-Snapshot-SHA256", hex.EncodeToString(sum[:]))
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(body)
	})
	mux.HandleFunc("PUT /v1/snapshot", func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.restored = body
		f.mu.Unlock()
		writeJSON(w, 200, map[string]any{"restored_index": 130})
	})

	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		call := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			call += "?" + r.URL.RawQuery
		}
		f.calls = append(f.calls, call)
		w.Header().Set("X-Moxxie-Index", strconv.FormatUint(f.index, 10))
		f.mu.Unlock()
		w.Header().Set("X-Request-Id", "req-7")
		if r.URL.Path != "/v1/acl/bootstrap" && r.Header.Get("Authorization") != "Bearer tok" {
			writeErr(w, 401, "unauthorized", "missing or unknown token", "")
			return
		}
		mux.ServeHTTP(w, r)
	}))
	f.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.StartTLS()
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

// env returns the environment pointing moxxiectl at f.
func (f *fakeAPI) env() map[string]string {
	return map[string]string{envAddr: f.URL, envToken: "tok", envCACert: f.caFile}
}

func (f *fakeAPI) callLog() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, status int, code, msg, field string) {
	writeJSON(w, status, map[string]any{"error": map[string]string{
		"code": code, "message": msg, "field": field, "request_id": "req-7",
	}})
}

// testArchive builds a real backup archive: two settings and a token.
func testArchive(t *testing.T) []byte {
	t.Helper()
	f := fsm.New()
	cmds := []fsm.Command{
		&fsm.SettingUpsertRequest{Key: "a", Value: "1"},
		&fsm.SettingUpsertRequest{Key: "b", Value: "2"},
		&fsm.TokenCreateRequest{Token: fsm.Token{AccessorID: "acc-1", SecretHash: "h1", Role: "admin"}},
	}
	for i, c := range cmds {
		data, err := fsm.Encode(c)
		if err != nil {
			t.Fatal(err)
		}
		if r, ok := f.Apply(&raft.Log{Index: uint64(i + 1), Type: raft.LogCommand, Data: data}).(*fsm.Result); !ok || r.Err != nil {
			t.Fatalf("apply %d: %v", i, r)
		}
	}
	var state, out bytes.Buffer
	if err := f.State().Dump(&state); err != nil {
		t.Fatal(err)
	}
	meta := fsm.ArchiveMeta{Index: 3, Term: 2, CreatedAt: "2025-06-01T12:00:00Z", ServerID: "s1"}
	if err := fsm.WriteArchive(&out, meta, state.Bytes()); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// runCLI runs moxxiectl with env as its whole environment.
func runCLI(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut, func(k string) string { return env[k] })
	return out.String(), errOut.String(), code
}
