package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestSnapshotSave(t *testing.T) {
	data := bytes.Repeat([]byte("moxxie"), 10000)
	sum := sha256.Sum256(data)
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Moxxie-Index", "77")
		w.Header().Set("X-Moxxie-Snapshot-SHA256", "abc")
		w.Header().Set("Content-Type", "application/octet-stream")
		w.Write(data)
	})
	c := f.client(t, Config{})
	var buf bytes.Buffer
	m, err := c.SnapshotSave(context.Background(), &buf)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(buf.Bytes(), data) {
		t.Error("bytes differ")
	}
	if m.Index != 77 || m.ServerSHA256 != "abc" || m.SHA256 != hex.EncodeToString(sum[:]) || m.Size != int64(len(data)) {
		t.Errorf("meta %+v", m)
	}
}

func TestSnapshotRestore(t *testing.T) {
	attempts := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		attempts++
		if attempts == 1 {
			w.Header().Set("Retry-After", "0")
			writeErr(w, 503, "no_leader", "no cluster leader", "")
			return
		}
		writeJSON(w, 200, map[string]any{"restored_index": 91})
	})
	c := f.client(t, Config{})
	body := strings.Repeat("x", 5000)
	idx, err := c.SnapshotRestore(context.Background(), strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if idx != 91 {
		t.Errorf("restored index %d", idx)
	}
	for i, r := range f.requests() {
		if r.method != "PUT" || r.path != "/v1/snapshot" || string(r.body) != body {
			t.Errorf("attempt %d: %s %s with %d bytes", i, r.method, r.path, len(r.body))
		}
		if r.header.Get("Content-Type") != "application/octet-stream" || r.header.Get("Idempotency-Key") != "" {
			t.Errorf("attempt %d headers %v", i, r.header)
		}
	}
}

// TestSnapshotRestoreOutcomeUnknown: a restore is not sent again after an
// answer that does not say nothing was restored, nor after a connection
// lost once it was sent: it may have taken effect, and a second one would
// drop what the cluster acknowledged since.
func TestSnapshotRestoreOutcomeUnknown(t *testing.T) {
	for _, code := range []string{"leadership_lost", "internal"} {
		attempts := 0
		f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
			attempts++
			w.Header().Set("Retry-After", "0")
			writeErr(w, 503, code, "may or may not have been applied", "")
		})
		c := f.client(t, Config{RetryFor: 5 * time.Second})
		if _, err := c.SnapshotRestore(context.Background(), strings.NewReader("x")); StatusCode(err) != 503 || attempts != 1 {
			t.Errorf("%s: %v after %d attempts, want the 503 after one", code, err, attempts)
		}
	}
	attempts := 0
	f := newFake(t, func(w http.ResponseWriter, r *http.Request) {
		attempts++
		hj, _ := w.(http.Hijacker)
		conn, _, _ := hj.Hijack()
		conn.Close() // the request was read; no answer
	})
	c := f.client(t, Config{RetryFor: 5 * time.Second})
	if _, err := c.SnapshotRestore(context.Background(), strings.NewReader("x")); err == nil || attempts != 1 {
		t.Errorf("a lost connection: %v after %d attempts, want an error after one", err, attempts)
	}
}
