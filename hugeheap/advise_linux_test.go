package hugeheap

import (
	"bufio"
	"bytes"
	"errors"
	"log/slog"
	"os"
	"runtime/metrics"
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

// TestAdvisor_MarksTheHeap runs the advisor's pass against the real kernel:
// every writable mapping of the heap is marked for huge pages, also the
// ones the runtime maps when the heap grows.
func TestAdvisor_MarksTheHeap(t *testing.T) {
	a := &Advisor{sample: []metrics.Sample{{Name: "/memory/classes/total:bytes"}}, logger: slog.New(slog.DiscardHandler)}
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
	before := a.AdvisedBytes()
	var keep [][]byte
	for range 64 {
		keep = append(keep, make([]byte, 4<<20))
	}
	if err := a.pass(); err != nil {
		t.Fatal(err)
	}
	for s, hg := range hugeFlagged(t, a) {
		if !hg {
			t.Errorf("heap mapping %x not marked for huge pages after the heap grew", s)
		}
	}
	if a.AdvisedBytes() < before+int64(len(keep))<<22 {
		t.Errorf("advised %d bytes after 256 MiB more heap, %d before", a.AdvisedBytes(), before)
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
	before := a.AdvisedBytes()
	var keep [][]byte
	deadline := time.Now().Add(10 * time.Second)
	for a.AdvisedBytes() == before {
		if time.Now().After(deadline) {
			t.Fatalf("advised %d bytes 10 s after the heap grew by %d MiB, as before", before, 4*len(keep))
		}
		if len(keep) < 64 { // up to 256 MiB, then wait
			keep = append(keep, make([]byte, 4<<20))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if a.Failures() != 0 {
		t.Errorf("%d failed passes: %s", a.Failures(), log.String())
	}
}
