// Package hugeheap asks Linux to back the Go heap with transparent huge
// pages.
//
// A Moxxie server keeps its whole state in a Go heap that grows with what
// it stores and that the garbage collector walks again and again. The Go
// runtime has not asked for huge pages for its heap since Go 1.21.1, so on
// a host whose transparent huge page mode is "madvise" (Debian's default)
// the heap lives on 4 KiB pages: every new page costs a page fault, and
// under some hypervisors that fault costs tens of microseconds. The
// advisor marks the heap's mappings MADV_HUGEPAGE whenever the runtime
// maps more of them, and collapses the part of a new mapping touched before
// it got there, so that the heap grows in 2 MiB steps instead.
//
// It changes nothing on a host whose mode is "never" (the operator said
// no) or "always" (the kernel does it already), nor outside Linux.
package hugeheap

import (
	"bufio"
	"bytes"
	"os"
	"strconv"
	"strings"
)

// Mode is the host's transparent huge page mode: "always", "madvise",
// "never", or "" when the kernel has none.
type Mode string

// HostMode reads the host's mode from
// /sys/kernel/mm/transparent_hugepage/enabled.
func HostMode() (Mode, error) {
	b, err := os.ReadFile("/sys/kernel/mm/transparent_hugepage/enabled")
	if err != nil {
		return "", err
	}
	return ParseMode(b), nil
}

// ParseMode reads the mode from the contents of
// /sys/kernel/mm/transparent_hugepage/enabled, where the chosen one is in
// brackets: "always [madvise] never".
func ParseMode(b []byte) Mode {
	for _, f := range strings.Fields(string(b)) {
		if len(f) > 2 && f[0] == '[' && f[len(f)-1] == ']' {
			return Mode(f[1 : len(f)-1])
		}
	}
	return ""
}

// Span is a range of virtual memory, [Start, End).
type Span struct {
	Start, End uintptr
}

// Len is the span's size in bytes.
func (s Span) Len() uintptr { return s.End - s.Start }

// mapping is one line of /proc/self/maps.
type mapping struct {
	Span
	writable bool
	anon     bool
}

// HeapSpans returns the writable spans of the run of anonymous mappings in
// maps (the contents of /proc/self/maps) that holds addr: the Go heap's
// arenas when addr is the address of a heap object. The runtime reserves
// its arenas next to one another, mapping each part of them readable and
// writable as the heap grows into it, so the run covers the reserved
// (inaccessible) parts too, which are left out.
func HeapSpans(maps []byte, addr uintptr) []Span {
	var ms []mapping
	sc := bufio.NewScanner(bytes.NewReader(maps))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for sc.Scan() {
		if m, ok := parseMapping(sc.Text()); ok {
			ms = append(ms, m)
		}
	}
	at := -1
	for i, m := range ms {
		if m.anon && m.Start <= addr && addr < m.End {
			at = i
			break
		}
	}
	if at < 0 {
		return nil
	}
	first, last := at, at
	for first > 0 && ms[first-1].anon && ms[first-1].End == ms[first].Start {
		first--
	}
	for last < len(ms)-1 && ms[last+1].anon && ms[last+1].Start == ms[last].End {
		last++
	}
	var spans []Span
	for _, m := range ms[first : last+1] {
		if !m.writable {
			continue
		}
		if n := len(spans); n > 0 && spans[n-1].End == m.Start {
			spans[n-1].End = m.End
			continue
		}
		spans = append(spans, m.Span)
	}
	return spans
}

// parseMapping parses a line of /proc/self/maps:
// "start-end perms offset dev inode [path]". Anonymous mappings have inode
// 0 and no path.
func parseMapping(line string) (mapping, bool) {
	f := strings.Fields(line)
	if len(f) < 5 {
		return mapping{}, false
	}
	lo, hi, ok := strings.Cut(f[0], "-")
	if !ok {
		return mapping{}, false
	}
	start, err1 := strconv.ParseUint(lo, 16, 64)
	end, err2 := strconv.ParseUint(hi, 16, 64)
	if err1 != nil || err2 != nil || end <= start || len(f[1]) < 4 {
		return mapping{}, false
	}
	return mapping{
		Span:     Span{Start: uintptr(start), End: uintptr(end)},
		writable: f[1][0] == 'r' && f[1][1] == 'w' && f[1][3] == 'p',
		anon:     f[4] == "0" && len(f) == 5,
	}, true
}
