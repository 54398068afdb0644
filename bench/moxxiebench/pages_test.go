package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestFormatPages(t *testing.T) {
	got := formatPages(pagesResult{small: 12250 * time.Nanosecond, faults: 1, huge: 270 * time.Nanosecond, thp: "madvise"})
	want := "first write to a fresh 4 KiB page: 12.25 µs (1.00 minor faults); with MADV_HUGEPAGE: 0.27 µs per 4 KiB; transparent huge pages: madvise"
	if got != want {
		t.Errorf("formatPages = %q, want %q", got, want)
	}
	if got := formatPages(pagesResult{small: time.Microsecond, thp: "never"}); !strings.Contains(got, "with MADV_HUGEPAGE: refused") {
		t.Errorf("formatPages without huge pages = %q", got)
	}
}

func TestPagesCmdFlags(t *testing.T) {
	for _, args := range [][]string{{"--mib", "0"}, {"--rounds", "0"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := runTo(&out, &errb, append([]string{"pages"}, args...)); code == 0 {
			t.Errorf("pages %v: exit 0, want a failure", args)
		}
	}
}
