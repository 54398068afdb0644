package main

import (
	"bytes"
	"strings"
	"testing"
)

// TestTouchPages runs the probe against the real kernel: every 4 KiB page
// of a fresh private mapping advised not to use huge pages faults once
// when first written, and the probe must count it on its own thread.
func TestTouchPages(t *testing.T) {
	d, faults, err := touchPages(2<<20, false)
	if err != nil {
		t.Fatal(err)
	}
	if d <= 0 {
		t.Errorf("time per page = %v, want > 0", d)
	}
	if faults < 0.95 || faults > 1.05 {
		t.Errorf("minor faults per page = %.3f, want 1", faults)
	}
}

func TestPagesCmdLinux(t *testing.T) {
	var out, errb bytes.Buffer
	if code := runTo(&out, &errb, []string{"pages", "--mib", "2", "--rounds", "1"}); code != 0 {
		t.Fatalf("pages: exit %d: %s", code, errb.String())
	}
	if !strings.HasPrefix(out.String(), "first write to a fresh 4 KiB page: ") || !strings.Contains(out.String(), " minor faults); with MADV_HUGEPAGE: ") {
		t.Errorf("pages printed %q", out.String())
	}
}
