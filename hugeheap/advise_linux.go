package hugeheap

import "golang.org/x/sys/unix"

func adviseHuge(s Span) error { return madvise(s, unix.MADV_HUGEPAGE) }

func collapse(s Span) error { return madvise(s, unix.MADV_COLLAPSE) }

// madvise takes the span as numbers: it is memory the Go runtime mapped,
// not an object of this program.
func madvise(s Span, advice int) error {
	if _, _, errno := unix.Syscall(unix.SYS_MADVISE, s.Start, s.Len(), uintptr(advice)); errno != 0 {
		return errno
	}
	return nil
}
