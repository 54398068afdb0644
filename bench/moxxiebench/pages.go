package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/moxxie/moxxie/hugeheap"
)

// pageSize is the size of the pages the probe touches one by one.
const pageSize = 4096

// pagesResult is what one probe of the machine's memory found.
type pagesResult struct {
	// small is the time of one first write to a page of an anonymous
	// mapping with 4 KiB pages, and faults the minor page faults per page
	// it took, each the median over the rounds.
	small  time.Duration
	faults float64
	// huge is the same time per 4 KiB of a mapping advised to use
	// transparent huge pages (MADV_HUGEPAGE); zero where the kernel
	// refused the advice.
	huge time.Duration
	// thp is the machine's transparent huge page mode, e.g. "madvise".
	thp string
}

// pagesCmd measures what the first write to a fresh page of memory costs
// on this machine: the price a process pays for every page its heap grows
// by. On bare metal it is well under a microsecond; in some virtual
// machines it is tens of times that, which changes how systems that keep
// more memory per write compare there (see docs/benchmarks.md).
func pagesCmd(stdout, stderr io.Writer, args []string) error {
	fs := newFlagSet("pages", stderr)
	size := fs.Int("mib", 64, "MiB to map and touch in each round")
	rounds := fs.Int("rounds", 3, "rounds of each kind; the median is printed")
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: moxxiebench pages [--mib 64] [--rounds 3]\n\n"+
			"Maps fresh anonymous memory, writes one byte to each 4 KiB page and prints the\n"+
			"time and minor page faults per page, then the same with transparent huge pages\n"+
			"asked for (MADV_HUGEPAGE). Linux only.\n\n")
		fs.PrintDefaults()
	}
	if err := parseFlags(fs, args, false); err != nil {
		return err
	}
	if *size < 1 || *size > 4096 {
		return errors.New("--mib must be between 1 and 4096")
	}
	if *rounds < 1 || *rounds > 100 {
		return errors.New("--rounds must be between 1 and 100")
	}
	r, err := probePages(*size<<20, *rounds)
	if err != nil {
		return err
	}
	fmt.Fprintln(stdout, formatPages(r))
	return nil
}

// probePages runs rounds of touchPages with and without huge pages.
func probePages(size, rounds int) (pagesResult, error) {
	// small and huge are times per page in nanoseconds, for median.
	var small, huge, faults []float64
	for range rounds {
		d, f, err := touchPages(size, false)
		if err != nil {
			return pagesResult{}, err
		}
		small, faults = append(small, float64(d)), append(faults, f)
		if d, _, err = touchPages(size, true); err == nil {
			huge = append(huge, float64(d))
		}
	}
	return pagesResult{
		small:  time.Duration(median(small)),
		faults: median(faults),
		huge:   time.Duration(median(huge)),
		thp:    thpMode(),
	}, nil
}

// thpMode reads the machine's transparent huge page mode, or "unknown".
func thpMode() string {
	m, err := hugeheap.HostMode()
	if err != nil || m == "" {
		return "unknown"
	}
	return string(m)
}

// formatPages prints r as one line.
func formatPages(r pagesResult) string {
	us := func(d time.Duration) string { return fmt.Sprintf("%.2f µs", float64(d.Nanoseconds())/1000) }
	huge := "refused"
	if r.huge > 0 {
		huge = us(r.huge) + " per 4 KiB"
	}
	return fmt.Sprintf("first write to a fresh 4 KiB page: %s (%.2f minor faults); with MADV_HUGEPAGE: %s; transparent huge pages: %s",
		us(r.small), r.faults, huge, r.thp)
}
