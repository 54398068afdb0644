package node

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/moxxie/moxxie/api"
	"github.com/moxxie/moxxie/fsm"
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

// bootstrapToken installs an admin token in s's cluster and returns its
// secret. It applies the bootstrap command on whichever server leads and
// retries across leader changes: a bootstrap whose answer was lost is
// recognised by its accessor ID. (The HTTP route is tested in api/ and
// e2e/.)
func bootstrapToken(t *testing.T, s *Server) string {
	t.Helper()
	var b [16]byte
	_, _ = rand.Read(b[:])
	secret := "mxx_" + hex.EncodeToString(b[:])
	accessor := hex.EncodeToString(b[:8])
	WaitForResult(t, 20*time.Second, func() error {
		l := TestLeaderOf(s)
		if l == nil {
			return fmt.Errorf("no leader known to %s", s.ID())
		}
		_, err := l.raftApply(&fsm.ACLBootstrapRequest{Token: fsm.Token{
			AccessorID: accessor, SecretHash: api.HashSecret(secret), Role: api.RoleAdmin, Description: "test admin",
		}})
		if errors.Is(err, fsm.ErrAlreadyBootstrapped) {
			_, toks, _ := l.State().Tokens(nil)
			for _, tok := range toks {
				if tok.AccessorID == accessor {
					return nil
				}
			}
			return fmt.Errorf("cluster bootstrapped by someone else: %w", err)
		}
		return err
	})
	// Wait until every server of the cluster knows the token, so ?stale
	// reads anywhere accept it.
	WaitForResult(t, 10*time.Second, func() error {
		if tok, _ := s.State().TokenBySecretHash(api.HashSecret(secret)); tok == nil {
			return fmt.Errorf("token not yet on %s", s.ID())
		}
		return nil
	})
	return secret
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
	deadline := time.Now().Add(20 * time.Second)
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
