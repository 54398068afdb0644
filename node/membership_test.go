package node

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

func voters(t *testing.T, s *Server) map[string]bool {
	t.Helper()
	st, err := s.Status(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, srv := range st.Servers {
		out[srv.ID] = srv.Voter
	}
	return out
}

func TestMembership_JoinAndRemove(t *testing.T) {
	s1 := TestServer(t, nil)
	WaitForLeader(t, s1)
	s2 := TestServer(t, func(c *Config) { c.BootstrapExpect = 0 })
	s3 := TestServer(t, func(c *Config) { c.BootstrapExpect = 0 })
	TestJoin(t, s1, s2, s3)
	leader := WaitForLeader(t, s1, s2, s3)
	// Joining again is a no-op.
	TestJoin(t, leader, s2)
	if v := voters(t, leader); len(v) != 3 || !v[s2.ID()] || !v[s3.ID()] {
		t.Fatalf("voters after join: %v", v)
	}

	// Through the API, as moxxiectl cluster remove does.
	token := bootstrapToken(t, leader)
	WaitForResult(t, 10*time.Second, func() error {
		r := call(t, s2, "DELETE", "/v1/cluster/servers/"+s3.ID(), token, nil, nil)
		if r.status != http.StatusOK && !(r.status == http.StatusNotFound && !voters(t, WaitForLeader(t, s1, s2))[s3.ID()]) {
			return fmt.Errorf("remove: %d %s", r.status, r.body)
		}
		return nil
	})
	WaitForResult(t, 5*time.Second, func() error {
		if v := voters(t, WaitForLeader(t, s1, s2)); len(v) != 2 || v[s3.ID()] {
			return fmt.Errorf("voters after remove: %v", v)
		}
		return nil
	})
	if r := call(t, s1, "DELETE", "/v1/cluster/servers/nope", token, nil, nil); r.status != http.StatusNotFound || !strings.Contains(string(r.body), `"field":"id"`) {
		t.Fatalf("remove unknown server: %d %s", r.status, r.body)
	}
	// And back in through the API; a join is idempotent, so a 503 from a
	// leader change is retried.
	WaitForResult(t, 10*time.Second, func() error {
		r := call(t, s1, "POST", "/v1/cluster/join", token, map[string]string{"id": s3.ID(), "raft_address": s3.RaftAddress()}, nil)
		if r.status != http.StatusOK {
			return fmt.Errorf("join: %d %s", r.status, r.body)
		}
		return nil
	})
	WaitForResult(t, 5*time.Second, func() error {
		if v := voters(t, WaitForLeader(t, s1, s2, s3)); len(v) != 3 {
			return fmt.Errorf("voters after rejoin: %v", v)
		}
		return nil
	})
}

func TestMembership_RetryJoinFindsTheCluster(t *testing.T) {
	s1 := TestServer(t, nil)
	WaitForLeader(t, s1)
	// A new server pointed at a follower or the leader asks the leader to
	// add it.
	s2 := TestServer(t, func(c *Config) { c.BootstrapExpect = 0; c.RetryJoin = []string{s1.RaftAddress()} })
	WaitForResult(t, 10*time.Second, func() error {
		if v := voters(t, s1); !v[s2.ID()] {
			return fmt.Errorf("voters: %v", v)
		}
		return nil
	})
	s3 := TestServer(t, func(c *Config) { c.BootstrapExpect = 3; c.RetryJoin = []string{s2.RaftAddress(), s1.RaftAddress()} })
	WaitForResult(t, 10*time.Second, func() error {
		if v := voters(t, WaitForLeader(t, s1, s2, s3)); len(v) != 3 {
			return fmt.Errorf("voters: %v", v)
		}
		return nil
	})
}

func TestAPI_BadInputOnARealServer(t *testing.T) {
	s := TestServer(t, nil)
	WaitForLeader(t, s)
	token := bootstrapToken(t, s)
	for _, tc := range []struct {
		name, body string
		status     int
		field      string
	}{
		{"malformed", `{"value":`, 400, ""},
		{"unknown field", `{"value":"x","colour":"red"}`, 400, "colour"},
		{"wrong type", `{"value":42}`, 400, "value"},
		{"oversize", `{"value":"` + string(make([]byte, 2<<20)) + `"}`, 413, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := callRaw(t, s, "PUT", "/v1/cluster/settings/k", token, []byte(tc.body))
			if r.status != tc.status {
				t.Fatalf("status %d, want %d: %s", r.status, tc.status, r.body)
			}
			if tc.field != "" && !contains(r.body, `"field":"`+tc.field+`"`) {
				t.Fatalf("error does not name field %q: %s", tc.field, r.body)
			}
		})
	}
	if r := callRaw(t, s, "GET", "/v1/cluster/settings", "", nil); r.status != 401 {
		t.Fatalf("no token: %d", r.status)
	}
	if r := callRaw(t, s, "GET", "/v1/cluster/settings", "mxx_wrong", nil); r.status != 401 {
		t.Fatalf("wrong token: %d", r.status)
	}
	if _, set, _ := s.State().Setting(nil, "k"); set != nil {
		t.Fatalf("a refused request changed state: %+v", set)
	}
}
