package node

import (
	"sync"

	"github.com/hashicorp/raft"
)

// leaderWatch tells waiters that this server's view of the leader changed:
// the channel changed returns is closed at the next change. A forward
// waits on it so that a request sent to a leader that stopped leading, or
// stopped answering, does not wait for that server to come back.
type leaderWatch struct {
	mu sync.Mutex
	ch chan struct{} // guarded by mu
}

func newLeaderWatch() *leaderWatch { return &leaderWatch{ch: make(chan struct{})} }

// changed returns a channel that is closed when the leader next changes.
func (w *leaderWatch) changed() <-chan struct{} {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.ch
}

func (w *leaderWatch) notify() {
	w.mu.Lock()
	close(w.ch)
	w.ch = make(chan struct{})
	w.mu.Unlock()
}

// watchLeader feeds w from raft's leader observations until stop closes.
func watchLeader(r *raft.Raft, w *leaderWatch, stop <-chan struct{}) {
	// raft drops an observation only when this many wait unread; this
	// loop reads them at once.
	obs := make(chan raft.Observation, 64)
	o := raft.NewObserver(obs, false, func(o *raft.Observation) bool {
		_, ok := o.Data.(raft.LeaderObservation)
		return ok
	})
	r.RegisterObserver(o)
	defer r.DeregisterObserver(o)
	for {
		select {
		case <-obs:
			w.notify()
		case <-stop:
			return
		}
	}
}
