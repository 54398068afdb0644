package dns

import (
	"net/netip"
	"sync/atomic"
	"testing"
	"time"

	"github.com/miekg/dns"
)

// countingSource counts Snapshot calls, to tell a watch from polling.
type countingSource struct {
	*StaticSource
	calls atomic.Int32
}

func (s *countingSource) Snapshot() (*Records, <-chan struct{}) {
	s.calls.Add(1)
	return s.StaticSource.Snapshot()
}

func TestWatchServesChangeWithinASecond(t *testing.T) {
	src := &countingSource{StaticSource: NewStaticSource(testRecords())}
	m := watchSource(t, src)
	if !m.Ready() {
		t.Fatal("not ready after start")
	}

	req := new(dns.Msg).SetQuestion("new.moxxie.test.", dns.TypeA)
	if rcode, _ := serve(t, m, req, false); rcode != dns.RcodeNameError {
		t.Fatalf("before the change: rcode %d, want NXDOMAIN", rcode)
	}
	// Nothing changes: the watcher waits instead of asking again.
	time.Sleep(3 * rebuildGap)
	if n := src.calls.Load(); n != 1 {
		t.Fatalf("Snapshot called %d times without a change, want 1", n)
	}

	recs := testRecords()
	recs.Records = append(recs.Records, HostRecords("new.moxxie.test.", netip.MustParseAddr("10.0.0.9"), 0)...)
	src.Set(recs)
	took := waitServed(t, m, req, time.Second, func(rcode int, resp *dns.Msg) bool {
		return rcode == dns.RcodeSuccess && len(resp.Answer) == 1
	})
	t.Logf("change served after %v", took)
	if n := src.calls.Load(); n != 2 {
		t.Errorf("Snapshot called %d times for one change, want 2", n)
	}
}

func TestWatchCoalescesBursts(t *testing.T) {
	src := &countingSource{StaticSource: NewStaticSource(testRecords())}
	m := newMoxxie("dns://test-" + t.Name())
	w := newWatcher(m, src)
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	defer m.metrics.unregister()
	for range 100 {
		src.Set(testRecords())
	}
	time.Sleep(3 * rebuildGap)
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	// One at start, one for the first change, one for the rest of the burst.
	if n := src.calls.Load(); n > 4 {
		t.Errorf("Snapshot called %d times for a burst of 100 changes, want a few", n)
	}
	if err := w.close(); err != nil {
		t.Errorf("second close: %v", err)
	}
}

func TestWatcherCloseWithoutStart(t *testing.T) {
	w := newWatcher(newMoxxie("dns://test-"+t.Name()), NewStaticSource(nil))
	if err := w.close(); err != nil {
		t.Fatal(err)
	}
	if err := w.start(); err != nil {
		t.Fatal(err)
	}
	if w.stop != nil {
		t.Error("start after close started the watcher")
	}
}

func TestStaticSourceZeroValue(t *testing.T) {
	var s StaticSource
	recs, changed := s.Snapshot()
	if recs != nil {
		t.Fatalf("zero source has records %v", recs)
	}
	s.Set(testRecords())
	select {
	case <-changed:
	default:
		t.Fatal("Set did not close the watch channel")
	}
	if recs, _ := s.Snapshot(); recs == nil || len(recs.Zones) != 3 {
		t.Fatalf("after Set: %v", recs)
	}
}

// servedSource records the versions Served is told of.
type servedSource struct {
	*StaticSource
	served chan uint64
}

func (s *servedSource) Served(version uint64) { s.served <- version }

func TestWatchTellsServedVersions(t *testing.T) {
	src := &servedSource{StaticSource: NewStaticSource(testRecords()), served: make(chan uint64, 16)}
	m := watchSource(t, src)
	next := func() uint64 {
		t.Helper()
		select {
		case v := <-src.served:
			return v
		case <-time.After(5 * time.Second):
			t.Fatal("Served not called")
			return 0
		}
	}
	first := next()
	req := new(dns.Msg).SetQuestion("new.moxxie.test.", dns.TypeA)
	src.Update(Change{Add: HostRecords("new.moxxie.test.", netip.MustParseAddr("10.0.0.9"), 0)})
	v := next()
	if v <= first {
		t.Fatalf("served version %d after the change, %d before", v, first)
	}
	// Told once the answers are in place.
	if rcode, resp := serve(t, m, req, false); rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("after Served(%d): rcode %d, %v", v, rcode, resp.Answer)
	}
}

// gatedServedSource is a gatedSource that records the versions Served is
// told of.
type gatedServedSource struct {
	*gatedSource
	served chan uint64
}

func (s *gatedServedSource) Served(version uint64) { s.served <- version }

// TestWatchServesNoVersionBeforeCurrent: while a GatedSource is not
// current, every query is SERVFAIL and Served is not called, so that a
// write waiting for this server's DNS is not told its name is served. The
// first version Served tells of is the first current one.
func TestWatchServesNoVersionBeforeCurrent(t *testing.T) {
	src := &gatedServedSource{gatedSource: &gatedSource{StaticSource: NewStaticSource(testRecords())}, served: make(chan uint64, 16)}
	m := watchSource(t, src)
	req := new(dns.Msg).SetQuestion("new.moxxie.test.", dns.TypeA)
	src.Update(Change{Add: HostRecords("new.moxxie.test.", netip.MustParseAddr("10.0.0.9"), 0)})
	recs, _ := src.Snapshot()
	if _, resp := serve(t, m, req, false); resp.Rcode != dns.RcodeServerFailure {
		t.Fatalf("before current: %s", resp)
	}
	// Current from the next version on, whenever the watcher takes this
	// one.
	src.from.Store(recs.Version + 1)
	src.Update(Change{})
	select {
	case v := <-src.served:
		if v <= recs.Version {
			t.Fatalf("Served(%d), a version from before the source was current (%d on)", v, recs.Version+1)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Served not called once current")
	}
	if rcode, resp := serve(t, m, req, false); rcode != dns.RcodeSuccess || len(resp.Answer) != 1 {
		t.Fatalf("once current: rcode %d, %v", rcode, resp.Answer)
	}
}
