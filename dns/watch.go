package dns

import (
	"sync"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin(pluginName)

// rebuildGap is the least time between two rebuilds, so a burst of changes
// costs one rebuild, not one per change. It bounds how stale answers get
// together with the time a rebuild takes.
const rebuildGap = 50 * time.Millisecond

// watcher keeps a Moxxie's answers in step with its Source: it rebuilds them
// whenever the source's watch channel closes.
type watcher struct {
	m   *Moxxie
	src Source

	mu      sync.Mutex
	stop    chan struct{} // guarded by mu; nil until start
	done    chan struct{} // guarded by mu; closed when run returns
	stopped bool          // guarded by mu

	// problem is the last skipped-records summary logged, so the same
	// problem is not logged at every rebuild. Used by start, then by run.
	problem string
}

func newWatcher(m *Moxxie, src Source) *watcher {
	return &watcher{m: m, src: src}
}

// start builds the first answers before returning, so the server never
// answers from an empty view, then keeps them current in the background.
func (w *watcher) start() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stop != nil || w.stopped {
		return nil
	}
	recs, changed := w.src.Snapshot()
	w.load(recs)
	w.stop, w.done = make(chan struct{}), make(chan struct{})
	go w.run(changed, w.stop, w.done)
	return nil
}

// close stops the background rebuilds and waits for them to end. It is safe
// to call more than once, and without start.
func (w *watcher) close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return nil
	}
	w.stopped = true
	if w.stop != nil {
		close(w.stop)
		<-w.done
	}
	return nil
}

func (w *watcher) run(changed <-chan struct{}, stop <-chan struct{}, done chan<- struct{}) {
	defer close(done)
	last := time.Now()
	for {
		select {
		case <-changed:
		case <-stop:
			return
		}
		if wait := time.Until(last.Add(rebuildGap)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			}
		}
		last = time.Now()
		var recs *Records
		recs, changed = w.src.Snapshot()
		w.load(recs)
	}
}

// load builds the answers for recs and swaps them in; queries already
// running finish with the previous answers.
func (w *watcher) load(recs *Records) {
	start := time.Now()
	ix := buildIndex(recs)
	w.m.index.Store(ix)
	w.m.ready.Store(true)
	w.m.metrics.loaded(ix, time.Since(start))
	if ix.problem != w.problem {
		w.problem = ix.problem
		if ix.skipped > 0 {
			log.Warningf("skipped %d invalid zones or records; the first: %s", ix.skipped, ix.problem)
		}
	}
}
