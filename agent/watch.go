package agent

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/moxxie/moxxie/sdn"
)

// watchEvery is the shortest time between two calls of a Watch callback.
const watchEvery = 100 * time.Millisecond

// Watch calls fn whenever a managed link changes or disappears, or a link
// named in the last applied plan appears or changes, until ctx ends. Calls
// are coalesced: the first change of a quiet spell calls fn at once, and
// changes while fn runs or within 100 ms of its last call make one more
// call. fn runs on its own goroutine, one call at a time; it typically
// calls Apply, which changes nothing when nothing drifted, so Watch does
// not feed itself. Watch returns nil when ctx ends, or the error that
// ended the subscription (for instance a socket overflow), after which the
// caller should Apply and Watch again.
func (k *Kernel) Watch(ctx context.Context, fn func()) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	updates := make(chan netlink.LinkUpdate, 256)
	done := make(chan struct{})
	errc := make(chan error, 1)
	ns := k.ns
	opts := netlink.LinkSubscribeOptions{
		Namespace:         &ns,
		ReceiveBufferSize: 1 << 20,
		ErrorCallback: func(err error) {
			select {
			case errc <- err:
			default:
			}
		},
	}
	if err := netlink.LinkSubscribeWithOptions(updates, done, opts); err != nil {
		return fmt.Errorf("subscribe to link changes: %w", err)
	}
	kick := make(chan struct{}, 1)
	var wg sync.WaitGroup
	wg.Go(func() { coalesce(ctx, kick, watchEvery, fn) })
	defer func() {
		cancel()
		close(done)
		for range updates { // let the subscription goroutine finish
		}
		wg.Wait()
	}()
	for {
		select {
		case <-ctx.Done():
			return nil
		case u, ok := <-updates:
			if !ok {
				return subscriptionErr(errc)
			}
			if k.watched(u.Link) {
				select {
				case kick <- struct{}{}:
				default:
				}
			}
		}
	}
}

// subscriptionErr is the reason a link subscription ended.
func subscriptionErr(errc <-chan error) error {
	select {
	case err := <-errc:
		return fmt.Errorf("link subscription ended: %w", err)
	default:
		return errors.New("link subscription ended")
	}
}

// watched reports whether a change of link concerns the agent: the link
// is managed or named in the last applied plan.
func (k *Kernel) watched(link netlink.Link) bool {
	if link == nil {
		return false
	}
	if strings.HasPrefix(link.Attrs().Alias, sdn.AliasPrefix) {
		return true
	}
	k.namesMu.Lock()
	defer k.namesMu.Unlock()
	return k.names[link.Attrs().Name]
}

// coalesce calls fn for each kick, at most once every interval; kicks
// arriving meanwhile make a single further call.
func coalesce(ctx context.Context, kick <-chan struct{}, every time.Duration, fn func()) {
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-kick:
		}
		if wait := every - time.Since(last); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-ctx.Done():
				t.Stop()
				return
			case <-t.C:
			}
			select { // this call covers the kicks of the wait
			case <-kick:
			default:
			}
		}
		last = time.Now()
		fn()
	}
}
