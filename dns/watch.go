package dns

import (
	"sync"
	"time"

	clog "github.com/coredns/coredns/plugin/pkg/log"
)

var log = clog.NewWithPlugin(pluginName)

// rebuildGap is the least time between a rebuild of every answer and the
// next look at the source, so a burst of changes costs one rebuild, not one
// per change. It bounds how stale answers get together with the time a
// rebuild takes.
const rebuildGap = 50 * time.Millisecond

// updateGap is the same after the answers were changed by a ChangeSource's
// changes, which costs about as much as the changes: short, so a change
// shows at once, yet a burst of them is taken in a few updates.
const updateGap = 5 * time.Millisecond

// watcher keeps a Moxxie's answers in step with its Source: whenever the
// source's watch channel closes, it changes them by the source's changes
// (a ChangeSource's), or rebuilds them all from a Snapshot.
type watcher struct {
	m   *Moxxie
	src Source

	// b makes the next answers from the last, which were built from the
	// source's version; used by start, then by run.
	b       *builder
	version uint64

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
	last, gap := time.Now(), rebuildGap
	for {
		select {
		case <-changed:
		case <-stop:
			return
		}
		if wait := time.Until(last.Add(gap)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-stop:
				t.Stop()
				return
			}
		}
		last = time.Now()
		if cs, ok := w.src.(ChangeSource); ok {
			changes, version, ch, ok := cs.Changes(w.version)
			if ok && w.update(changes, version) {
				changed, gap = ch, updateGap
				continue
			}
		}
		var recs *Records
		recs, changed = w.src.Snapshot()
		w.load(recs)
		gap = rebuildGap
	}
}

// update changes the answers by changes, which take them to version, and
// swaps them in. It returns false, and changes nothing served, when the
// answers must be rebuilt instead.
func (w *watcher) update(changes []Change, version uint64) bool {
	start := time.Now()
	ix, ok := w.b.apply(changes)
	if !ok {
		return false
	}
	w.version = version
	w.publish(ix, version, time.Since(start), false)
	return true
}

// load builds the answers for recs and swaps them in; queries already
// running finish with the previous answers.
func (w *watcher) load(recs *Records) {
	start := time.Now()
	w.b = newBuilder(recs)
	w.version = 0
	if recs != nil {
		w.version = recs.Version
	}
	w.publish(w.b.ix, w.version, time.Since(start), true)
}

// publish serves ix, the answers of the source's version, which took took
// to make, by a rebuild of every answer or not.
func (w *watcher) publish(ix *index, version uint64, took time.Duration, rebuilt bool) {
	w.m.index.Store(ix)
	current := true
	if g, ok := w.src.(GatedSource); ok {
		current = g.Current(version)
	}
	w.m.ready.Store(current)
	if sv, ok := w.src.(ServedSource); ok && current {
		sv.Served(version)
	}
	w.m.metrics.loaded(ix, took, rebuilt)
	if ix.problem != w.problem {
		w.problem = ix.problem
		if ix.skipped > 0 {
			log.Warningf("skipped %d invalid zones or records; the first: %s", ix.skipped, ix.problem)
		}
	}
}
