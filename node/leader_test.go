package node

import (
	"errors"
	"testing"
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
