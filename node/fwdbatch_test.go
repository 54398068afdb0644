package node

import (
	"fmt"
	"net/http"
	"sync"
	"testing"
)

// TestMultiNode_ConcurrentForwardedWrites sends many concurrent writes to
// the followers, which batch them to the leader in shared frames; every
// write gets its own answer and is applied once.
func TestMultiNode_ConcurrentForwardedWrites(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	var followers []*Server
	for _, s := range servers {
		if s != leader {
			followers = append(followers, s)
		}
	}
	// 32 clients with kept-alive connections, 300 writes.
	const n, clients = 300, 32
	var wg sync.WaitGroup
	errs := make(chan error, n)
	keys := make(chan int, n)
	for i := 0; i < n; i++ {
		keys <- i
	}
	close(keys)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range keys {
				key := fmt.Sprintf("fwd-%03d", i)
				r := put(t, followers[i%2], token, key, key)
				if r.status != http.StatusOK || !contains(r.body, `"key":"`+key+`"`) {
					errs <- fmt.Errorf("%s: %d %s", key, r.status, r.body)
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	l := WaitForLeader(t, servers...)
	_, list, err := l.State().Settings(nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n {
		t.Fatalf("%d settings, want %d", len(list), n)
	}
	for _, s := range list {
		if s.CreateIndex != s.ModifyIndex || s.Value != s.Key {
			t.Fatalf("setting %+v applied more than once or wrong", s)
		}
	}
	// Bad input is still refused with the leader's 400, field named.
	r := callRaw(t, followers[0], "PUT", "/v1/cluster/settings/x", token, []byte(`{"value":1}`))
	if r.status != http.StatusBadRequest || !contains(r.body, `"field":"value"`) {
		t.Fatalf("bad input via follower: %d %s", r.status, r.body)
	}
}
