package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"
)

type httpResult struct {
	status int
	header http.Header
	body   []byte
}

// call sends one API request to s and returns the response.
func call(t *testing.T, s *Server, method, path, token string, body any, hdr map[string]string) httpResult {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL()+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := clientFor(t, s).Do(req)
	if err != nil {
		t.Fatalf("%s %s on %s: %v", method, path, s.ID(), err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// bootstrapToken runs ACL bootstrap through s and returns the admin secret.
func bootstrapToken(t *testing.T, s *Server) string {
	t.Helper()
	r := call(t, s, "POST", "/v1/acl/bootstrap", "", nil, nil)
	if r.status != http.StatusCreated {
		t.Fatalf("bootstrap: %d %s", r.status, r.body)
	}
	var out struct {
		SecretID string `json:"secret_id"`
	}
	if err := json.Unmarshal(r.body, &out); err != nil {
		t.Fatal(err)
	}
	return out.SecretID
}

// dump returns the server's whole state in snapshot form.
func dump(t *testing.T, s *Server) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := s.State().Dump(&b); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// callRaw sends a request with a raw body.
func callRaw(t *testing.T, s *Server, method, path, token string, body []byte) httpResult {
	t.Helper()
	req, err := http.NewRequest(method, s.URL()+path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := TestHTTPClient(t, s).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return httpResult{status: resp.StatusCode, header: resp.Header, body: b}
}

// put writes a setting through s as a careful client does: with an
// Idempotency-Key, retrying 503s (leader changes) until it gets an answer.
func put(t *testing.T, s *Server, token, key, value string) httpResult {
	t.Helper()
	var k [8]byte
	_, _ = rand.Read(k[:])
	hdr := map[string]string{"Idempotency-Key": hex.EncodeToString(k[:])}
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := call(t, s, "PUT", "/v1/cluster/settings/"+key, token, map[string]string{"value": value}, hdr)
		if r.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
			return r
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func contains(b []byte, s string) bool { return bytes.Contains(b, []byte(s)) }

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }

var clients sync.Map // *Server -> *http.Client

// clientFor returns one kept-alive HTTPS client per server, as real
// clients use.
func clientFor(t *testing.T, s *Server) *http.Client {
	if c, ok := clients.Load(s); ok {
		return c.(*http.Client)
	}
	c := TestHTTPClient(t, s)
	c.Transport.(*http.Transport).MaxIdleConnsPerHost = 64
	actual, _ := clients.LoadOrStore(s, c)
	return actual.(*http.Client)
}
