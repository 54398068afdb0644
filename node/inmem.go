package node

import (
	"bytes"
	"fmt"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/moxxie/moxxie/fsm"
)

// InmemCluster is raft's MakeCluster built around Moxxie's real FSM: n
// raft nodes over raft.InmemTransport with in-memory stores, 50 ms timers,
// and partitions made by disconnecting transports. Tests use it to drive
// the state machine through elections and partitions deterministically and
// fast, without TLS or HTTP.
type InmemCluster struct {
	t      testing.TB
	Rafts  []*raft.Raft
	FSMs   []*fsm.FSM
	trans  []*raft.InmemTransport
	addrs  []raft.ServerAddress
	mu     sync.Mutex
	cutOff map[int]bool // guarded by mu
}

// NewInmemCluster starts n bootstrapped nodes and waits for a leader.
func NewInmemCluster(t testing.TB, n int) *InmemCluster {
	t.Helper()
	c := &InmemCluster{t: t, cutOff: map[int]bool{}}
	var servers []raft.Server
	for i := 0; i < n; i++ {
		addr, tr := raft.NewInmemTransport("")
		c.trans = append(c.trans, tr)
		c.addrs = append(c.addrs, addr)
		servers = append(servers, raft.Server{ID: raft.ServerID(fmt.Sprintf("m%d", i)), Address: addr})
	}
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(c.addrs[j], b)
			}
		}
	}
	for i := 0; i < n; i++ {
		conf := raft.DefaultConfig()
		conf.LocalID = servers[i].ID
		conf.HeartbeatTimeout = 50 * time.Millisecond
		conf.ElectionTimeout = 50 * time.Millisecond
		conf.LeaderLeaseTimeout = 50 * time.Millisecond
		conf.CommitTimeout = 5 * time.Millisecond
		conf.Logger = hclog.New(&hclog.LoggerOptions{Name: string(conf.LocalID), Output: io.Discard})
		store := raft.NewInmemStore()
		snaps := raft.NewInmemSnapshotStore()
		f := fsm.New()
		if err := raft.BootstrapCluster(conf, store, store, snaps, c.trans[i], raft.Configuration{Servers: servers}); err != nil {
			t.Fatal(err)
		}
		r, err := raft.NewRaft(conf, f, store, store, snaps, c.trans[i])
		if err != nil {
			t.Fatal(err)
		}
		c.Rafts = append(c.Rafts, r)
		c.FSMs = append(c.FSMs, f)
	}
	t.Cleanup(func() {
		for _, r := range c.Rafts {
			_ = r.Shutdown().Error()
		}
	})
	c.Leader()
	return c
}

// Leader waits for a leader among the nodes that are not cut off and
// returns its index.
func (c *InmemCluster) Leader() int {
	c.t.Helper()
	var leader int
	WaitForResult(c.t, 10*time.Second, func() error {
		c.mu.Lock()
		defer c.mu.Unlock()
		leader = -1
		for i, r := range c.Rafts {
			if !c.cutOff[i] && r.State() == raft.Leader {
				leader = i
			}
		}
		if leader < 0 {
			return fmt.Errorf("no leader")
		}
		return nil
	})
	return leader
}

// Partition cuts node i off from every other node.
func (c *InmemCluster) Partition(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutOff[i] = true
	c.trans[i].DisconnectAll()
	for j, tr := range c.trans {
		if j != i {
			tr.Disconnect(c.addrs[i])
		}
	}
}

// Heal reconnects every node.
func (c *InmemCluster) Heal() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.cutOff = map[int]bool{}
	for i, a := range c.trans {
		for j, b := range c.trans {
			if i != j {
				a.Connect(c.addrs[j], b)
			}
		}
	}
}

// Apply encodes cmd and applies it on node i, returning the FSM's result.
func (c *InmemCluster) Apply(i int, cmd fsm.Command) (*fsm.Result, error) {
	buf, err := fsm.Encode(cmd)
	if err != nil {
		return nil, err
	}
	f := c.Rafts[i].Apply(buf, time.Second)
	if err := f.Error(); err != nil {
		return nil, err
	}
	r, _ := f.Response().(*fsm.Result)
	return r, nil
}

// EnsureSame waits until every node has applied the same log and holds a
// byte-identical state.
func (c *InmemCluster) EnsureSame() {
	c.t.Helper()
	WaitForResult(c.t, 10*time.Second, func() error {
		var want []byte
		last := c.Rafts[c.Leader()].LastIndex()
		for i, r := range c.Rafts {
			if r.AppliedIndex() < last {
				return fmt.Errorf("node %d applied %d of %d", i, r.AppliedIndex(), last)
			}
			var b bytes.Buffer
			if err := c.FSMs[i].State().Dump(&b); err != nil {
				return err
			}
			if i == 0 {
				want = b.Bytes()
			} else if !bytes.Equal(b.Bytes(), want) {
				return fmt.Errorf("node %d state differs from node 0", i)
			}
		}
		return nil
	})
}
