package node

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"runtime"
	"testing"
	"time"
)

// pendingFuture is a raft.Future answered only when its channel delivers,
// like a barrier that raft dropped at shutdown when nothing ever does.
type pendingFuture chan error

func (f pendingFuture) Error() error { return <-f }

func TestAwaitFuture(t *testing.T) {
	t.Run("answered", func(t *testing.T) {
		f := make(pendingFuture, 1)
		want := errors.New("leadership lost")
		f <- want
		done, err := awaitFuture(make(chan struct{}), f)
		if !done || !errors.Is(err, want) {
			t.Fatalf("awaitFuture = %v, %v; want true, %v", done, err, want)
		}
	})
	t.Run("never answered, stopped", func(t *testing.T) {
		// A barrier raft never answers must not keep the leader loop,
		// and with it Shutdown, waiting forever.
		stop := make(chan struct{})
		close(stop)
		done, err := awaitFuture(stop, make(pendingFuture))
		if done || err != nil {
			t.Fatalf("awaitFuture = %v, %v; want false, nil", done, err)
		}
	})
}

// TestShutdown_RightAfterGainingLeadership shuts servers down at random
// moments just after they become leader, while the leader loop's barrier
// may be on its way to the FSM. raft drops such a barrier at shutdown
// without answering it; the leader loop used to wait for it forever, and
// Shutdown with it. (It hung within 60 rounds before awaitFuture.)
func TestShutdown_RightAfterGainingLeadership(t *testing.T) {
	for i := range 60 {
		c := TestConfig(t, fmt.Sprintf("s%d", i))
		c.BootstrapExpect = 1
		s, err := New(c, Options{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		WaitForLeader(t, s)
		// The moment of shutdown is what this test varies: up to 3 ms
		// after leadership, the span in which the barrier commits.
		<-time.After(time.Duration(rand.IntN(3000)) * time.Microsecond)
		done := make(chan struct{})
		go func() {
			_ = s.Shutdown(false)
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(time.Minute):
			// Not t.Fatal: the test's cleanups would wait for the same
			// Shutdown. The stacks show where it waits.
			buf := make([]byte, 1<<20)
			panic(fmt.Sprintf("round %d: Shutdown did not return within a minute\n%s", i, buf[:runtime.Stack(buf, true)]))
		}
	}
}
