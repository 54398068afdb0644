package hugeheap

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"reflect"
	"runtime/metrics"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// ErrNotNeeded means the host needs no advice for its heap to get huge
// pages, or takes none: its mode is always, never, or it has none.
var ErrNotNeeded = errors.New("nothing to advise")

// hugePage is the size of a transparent huge page on the architectures
// Moxxie ships for (amd64, arm64 with 4 KiB base pages).
const hugePage = 2 << 20

// anchor is a heap object: the run of mappings that holds it is the heap.
var anchor = new([64]byte)

// addrOf is the address of the anchor.
func addrOf(p *[64]byte) uintptr { return reflect.ValueOf(p).Pointer() }

// Advisor keeps the Go heap advised for transparent huge pages as it grows.
type Advisor struct {
	every   time.Duration
	done    chan struct{}
	stopped chan struct{}
	once    sync.Once

	// covered holds the spans advised so far, sorted and merged. The
	// runtime never unmaps or remaps heap memory it has mapped (unless
	// GODEBUG=harddecommit=1), so what is covered stays advised.
	covered  []Span
	lastSize uint64 // the runtime's mapped memory at the last pass
	sample   []metrics.Sample

	logger  *slog.Logger
	lastErr string // the last failure logged

	advised  atomic.Int64
	failures atomic.Int64
}

// Start advises the heap once and then every time the runtime has mapped
// more memory, looking every `every`. It returns ErrNotNeeded (wrapped,
// with the mode) on a host whose mode is not madvise, and the error of the
// first advice when the kernel refuses it. Later failures go to logger,
// each distinct one once in a row.
func Start(every time.Duration, logger *slog.Logger) (*Advisor, error) {
	m, err := HostMode()
	if err != nil {
		return nil, fmt.Errorf("%w: the kernel has no transparent huge pages: %v", ErrNotNeeded, err)
	}
	if m != "madvise" {
		return nil, fmt.Errorf("%w: the host's transparent huge page mode is %q, not madvise", ErrNotNeeded, m)
	}
	a := &Advisor{
		every:   every,
		logger:  logger,
		done:    make(chan struct{}),
		stopped: make(chan struct{}),
		sample:  []metrics.Sample{{Name: "/memory/classes/total:bytes"}},
	}
	a.lastSize = a.mapped()
	if err := a.pass(); err != nil {
		return nil, err
	}
	go a.run()
	return a, nil
}

// Looking for growth backs off from the advisor's interval to maxEvery
// once the heap has stayed the same size for quietAfter, so that an idle
// server is not woken a hundred times a second; the first growth brings
// it back. A busy server maps a few MiB more every few hundred
// milliseconds, and every millisecond a new mapping goes unadvised puts
// more of it on 4 KiB pages, so it is looked at every interval until then.
const (
	maxEvery   = time.Second
	quietAfter = 5 * time.Second
)

// Stop ends the advisor; what it advised stays advised.
func (a *Advisor) Stop() {
	a.once.Do(func() { close(a.done) })
	<-a.stopped
}

// AdvisedBytes is how much of the heap's address space is advised.
func (a *Advisor) AdvisedBytes() int64 { return a.advised.Load() }

// Failures counts the passes that failed.
func (a *Advisor) Failures() int64 { return a.failures.Load() }

func (a *Advisor) run() {
	defer close(a.stopped)
	every, lastGrowth := a.every, time.Now()
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-a.done:
			return
		case <-t.C:
		}
		size := a.mapped()
		if size <= a.lastSize {
			if time.Since(lastGrowth) > quietAfter {
				every = min(2*every, max(a.every, maxEvery))
			}
			t.Reset(every)
			continue
		}
		every, lastGrowth, a.lastSize = a.every, time.Now(), size
		t.Reset(every)
		if err := a.pass(); err != nil {
			a.failures.Add(1)
			if err.Error() != a.lastErr {
				a.lastErr = err.Error()
				a.logger.Warn("heap huge pages: advice failed; new heap memory may stay on 4 KiB pages", "error", err, "failures", a.failures.Load())
			}
		}
	}
}

// mapped is the memory the Go runtime has mapped, 0 if it does not say.
func (a *Advisor) mapped() uint64 {
	metrics.Read(a.sample)
	if a.sample[0].Value.Kind() != metrics.KindUint64 {
		return 0
	}
	return a.sample[0].Value.Uint64()
}

// pass advises every part of the heap not advised yet.
func (a *Advisor) pass() error {
	maps, err := os.ReadFile("/proc/self/maps")
	if err != nil {
		return err
	}
	spans := HeapSpans(maps, addrOf(anchor))
	if len(spans) == 0 {
		return errors.New("no mapping in /proc/self/maps holds the heap")
	}
	for _, s := range Uncovered(spans, a.covered) {
		if err := adviseHuge(s); err != nil {
			return fmt.Errorf("madvise(MADV_HUGEPAGE) %#x-%#x: %w", s.Start, s.End, err)
		}
		a.advised.Add(int64(s.Len()))
		// The runtime may have written to the new memory before this pass:
		// a 2 MiB range with a 4 KiB page in it stays on 4 KiB pages until
		// khugepaged, which is slow, gets to it. Collapse it now. A range
		// the kernel cannot collapse now is left to khugepaged.
		for p := alignUp(s.Start, hugePage); p+hugePage <= s.End; p += hugePage {
			_ = collapse(Span{p, p + hugePage})
		}
	}
	a.covered = Merge(append(a.covered, spans...))
	return nil
}

func alignUp(p, n uintptr) uintptr { return (p + n - 1) &^ (n - 1) }

// Uncovered returns the parts of spans outside covered; both are sorted and
// do not overlap.
func Uncovered(spans, covered []Span) []Span {
	var out []Span
	for _, s := range spans {
		for _, c := range covered {
			if c.End <= s.Start || c.Start >= s.End {
				continue
			}
			if c.Start > s.Start {
				out = append(out, Span{s.Start, c.Start})
			}
			s.Start = c.End
			if s.Start >= s.End {
				break
			}
		}
		if s.Start < s.End {
			out = append(out, s)
		}
	}
	return out
}

// Merge sorts spans and joins those that touch or overlap.
func Merge(spans []Span) []Span {
	slices.SortFunc(spans, func(x, y Span) int { return cmp.Compare(x.Start, y.Start) })
	var out []Span
	for _, s := range spans {
		if n := len(out); n > 0 && s.Start <= out[n-1].End {
			out[n-1].End = max(out[n-1].End, s.End)
			continue
		}
		out = append(out, s)
	}
	return out
}
