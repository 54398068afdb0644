package node

import (
	"bufio"
	"fmt"
	"net"
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

// TestMultiNode_ForwardToPreviousVersionLeader runs followers against a
// leader that, like one of the previous version, closes batched-frame
// connections: they forward as plain HTTP instead, and every write
// applies once.
func TestMultiNode_ForwardToPreviousVersionLeader(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	leader.mux.mu.Lock()
	leader.mux.frames = func(c net.Conn) { c.Close() }
	leader.mux.mu.Unlock()
	var follower *Server
	for _, s := range servers {
		if s != leader {
			follower = s
		}
	}
	for i := range 3 {
		key := fmt.Sprintf("old-leader-%d", i)
		if r := put(t, follower, token, key, key); r.status != http.StatusOK || !contains(r.body, `"key":"`+key+`"`) {
			t.Fatalf("%s through the follower: %d %s", key, r.status, r.body)
		}
	}
	follower.fwdMu.Lock()
	_, plain := follower.fwdPlain[leader.mux.advertise.String()]
	follower.fwdMu.Unlock()
	if !plain {
		t.Fatal("the follower did not note that the leader takes no batched frames")
	}
	_, list, err := leader.State().Settings(nil)
	if err != nil || len(list) != 3 {
		t.Fatalf("settings %d (%v), want 3", len(list), err)
	}
}

// TestMultiNode_PreviousVersionFollower sends the leader a msgpack frame
// over connForwardBatch, as a follower of the previous version does.
func TestMultiNode_PreviousVersionFollower(t *testing.T) {
	servers := TestCluster(t, 3, nil)
	leader := WaitForLeader(t, servers...)
	token := bootstrapToken(t, leader)
	follower := servers[0]
	if follower == leader {
		follower = servers[1]
	}
	conn, err := follower.mux.dial(t.Context(), leader.mux.advertise.String(), connForwardBatch)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := fwdRequest{ID: 9, Method: http.MethodPut, URI: "/v1/cluster/settings/from-old", Body: []byte(`{"value":"v"}`), Header: http.Header{
		"Authorization": {"Bearer " + token}, "Content-Type": {"application/json"},
	}}
	if err := writeFrame(bufio.NewWriter(conn), []fwdRequest{req}); err != nil {
		t.Fatal(err)
	}
	var resps []fwdResponse
	if err := readFrame(bufio.NewReader(conn), &resps); err != nil {
		t.Fatal(err)
	}
	if len(resps) != 1 || resps[0].ID != 9 || resps[0].Status != http.StatusOK || !contains(resps[0].Body, `"key":"from-old"`) {
		t.Fatalf("answer %+v", resps)
	}
}
