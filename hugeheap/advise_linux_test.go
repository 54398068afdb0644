package hugeheap

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// hugeFlagged reports, for every writable mapping within the spans the
// advisor has covered, whether the kernel has it marked for huge pages
// ("hg" in VmFlags of /proc/self/smaps). Mappings the runtime added since
// the advisor's last pass are not its to have marked yet.
func hugeFlagged(t *testing.T, a *Advisor) map[Span]bool {
	t.Helper()
	heap := a.covered
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[Span]bool{}
	var cur *Span
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m, ok := parseMapping(line); ok {
			cur = nil
			for _, h := range heap {
				if m.writable && h.Start <= m.Start && m.End <= h.End {
					cur = &m.Span
				}
			}
			continue
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok && cur != nil {
			out[*cur] = strings.Contains(" "+flags+" ", " hg ")
		}
	}
	if len(out) == 0 {
		t.Fatal("no mapping of the covered heap in /proc/self/smaps")
	}
	return out
}

// unmarked returns the addresses among addrs whose mapping the kernel has
// not marked for huge pages.
func unmarked(t *testing.T, addrs []uintptr) []uintptr {
	t.Helper()
	f, err := os.Open("/proc/self/smaps")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	hg := map[uintptr]bool{}
	var in []uintptr
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if m, ok := parseMapping(line); ok {
			in = in[:0]
			for _, p := range addrs {
				if m.Start <= p && p < m.End {
					in = append(in, p)
				}
			}
			continue
		}
		if flags, ok := strings.CutPrefix(line, "VmFlags:"); ok {
			for _, p := range in {
				hg[p] = strings.Contains(" "+flags+" ", " hg ")
			}
		}
	}
	var out []uintptr
	for _, p := range addrs {
		if !hg[p] {
			out = append(out, p)
		}
	}
	return out
}

// grow allocates 256 MiB in 4 MiB pieces and returns them with their
// addresses: new heap, unless the heap had that much free already.
func grow() ([][]byte, []uintptr) {
	var keep [][]byte
	var addrs []uintptr
	for range 64 {
		b := make([]byte, 4<<20)
		keep = append(keep, b)
		addrs = append(addrs, reflect.ValueOf(b).Pointer())
	}
	return keep, addrs
}

// TestAdvisor_MarksTheHeap runs the advisor's pass against the real kernel:
// every writable mapping of the heap is marked for huge pages, also the
// ones the heap grows into.
func TestAdvisor_MarksTheHeap(t *testing.T) {
	a := &Advisor{logger: slog.New(slog.DiscardHandler)}
	if err := a.pass(); errors.Is(err, unix.EINVAL) {
		t.Skip("this kernel has no transparent huge pages (madvise(MADV_HUGEPAGE) is EINVAL)")
	} else if err != nil {
		t.Fatal(err)
	}
	for s, hg := range hugeFlagged(t, a) {
		if !hg {
			t.Errorf("heap mapping %x not marked for huge pages", s)
		}
	}
	keep, addrs := grow()
	if err := a.pass(); err != nil {
		t.Fatal(err)
	}
	for s, hg := range hugeFlagged(t, a) {
		if !hg {
			t.Errorf("heap mapping %x not marked for huge pages after the heap grew", s)
		}
	}
	if u := unmarked(t, addrs); len(u) != 0 {
		t.Errorf("%d of %d new 4 MiB objects on memory not marked for huge pages: %x", len(u), len(keep), u)
	}
}

// TestStart_FollowsTheHostMode: Start advises only in mode madvise, and its
// loop follows the heap as it grows.
func TestStart_FollowsTheHostMode(t *testing.T) {
	mode, _ := HostMode()
	var log bytes.Buffer
	a, err := Start(time.Millisecond, slog.New(slog.NewTextHandler(&log, nil)))
	if mode != "madvise" {
		if !errors.Is(err, ErrNotNeeded) {
			t.Fatalf("Start in mode %q: %v, want ErrNotNeeded", mode, err)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	defer a.Stop()
	keep, addrs := grow()
	deadline := time.Now().Add(10 * time.Second)
	for u := unmarked(t, addrs); len(u) != 0; u = unmarked(t, addrs) {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d new 4 MiB objects on memory not marked for huge pages 10 s after they were made", len(u), len(keep))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a.Failures() != 0 {
		t.Errorf("%d failed passes: %s", a.Failures(), log.String())
	}
}
