package main

import (
	"fmt"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

// touchPages maps size bytes of fresh anonymous memory, writes one byte
// to each 4 KiB page and returns the time per page and the minor page
// faults per page it took. If huge, the mapping is advised to use
// transparent huge pages, and an error says the kernel refused; otherwise
// it is advised not to, which a kernel without them may refuse as it has
// none to give.
func touchPages(size int, huge bool) (time.Duration, float64, error) {
	b, err := unix.Mmap(-1, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		return 0, 0, fmt.Errorf("mmap %d bytes: %w", size, err)
	}
	defer unix.Munmap(b)
	if huge {
		if err := unix.Madvise(b, unix.MADV_HUGEPAGE); err != nil {
			return 0, 0, fmt.Errorf("madvise MADV_HUGEPAGE: %w", err)
		}
	} else {
		_ = unix.Madvise(b, unix.MADV_NOHUGEPAGE)
	}
	// RUSAGE_THREAD counts this thread's faults: the loop must not move.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var before, after unix.Rusage
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &before); err != nil {
		return 0, 0, err
	}
	start := time.Now()
	for i := 0; i < size; i += pageSize {
		b[i] = 1
	}
	d := time.Since(start)
	if err := unix.Getrusage(unix.RUSAGE_THREAD, &after); err != nil {
		return 0, 0, err
	}
	pages := size / pageSize
	return d / time.Duration(pages), float64(after.Minflt-before.Minflt) / float64(pages), nil
}
