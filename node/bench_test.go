package node

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
)

// BenchmarkClusterWrite measures durable writes through the whole stack
// (HTTPS, auth, JSON, batching, raft over mutual TLS, bolt, FSM) of an
// in-process three-server cluster, with 64 concurrent clients on the leader.
func BenchmarkClusterWrite(b *testing.B) {
	b.Run("leader", func(b *testing.B) { benchClusterWrite(b, false) })
	b.Run("all", func(b *testing.B) { benchClusterWrite(b, true) })
}

// benchClusterWrite sends every write to the leader, or with all set
// spreads them over the three servers (two thirds are forwarded).
func benchClusterWrite(b *testing.B, all bool) {
	servers := TestCluster(b, 3, func(c *Config) { c.LogLevel = "error" })
	leader := WaitForLeader(b, servers...)
	r, err := TestHTTPClient(b, leader).Post(leader.URL()+"/v1/acl/bootstrap", "application/json", nil)
	if err != nil {
		b.Fatal(err)
	}
	var tok struct {
		SecretID string `json:"secret_id"`
	}
	body, _ := io.ReadAll(r.Body)
	r.Body.Close()
	if err := jsonUnmarshal(body, &tok); err != nil {
		b.Fatal(err)
	}
	client := TestHTTPClient(b, leader)
	client.Transport.(*http.Transport).MaxIdleConnsPerHost = 128
	var n atomic.Int64
	var wg sync.WaitGroup
	var failed atomic.Int64
	b.ResetTimer()
	for c := 0; c < 64; c++ {
		wg.Add(1)
		go func(c int) {
			defer wg.Done()
			for {
				i := n.Add(1)
				if i > int64(b.N) {
					return
				}
				target := leader
				if all {
					target = servers[i%3]
				}
				req, _ := http.NewRequest("PUT", fmt.Sprintf("%s/v1/cluster/settings/k%d", target.URL(), i%10000), bytes.NewReader([]byte(`{"value":"0123456789012345678901234567890123456789012345678901234567890123"}`)))
				req.Header.Set("Authorization", "Bearer "+tok.SecretID)
				resp, err := client.Do(req)
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}(c)
	}
	wg.Wait()
	b.StopTimer()
	if p := leader.proposals.Load(); p > 0 {
		b.ReportMetric(float64(leader.proposed.Load())/float64(p), "writes/entry")
	}
	if f := failed.Load(); f > 0 {
		b.Logf("%d of %d writes failed", f, b.N)
	}
}
