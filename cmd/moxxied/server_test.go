package main

import (
	"bytes"
	"log/slog"
	"math"
	"runtime/debug"
	"strings"
	"testing"
)

func TestSetMemoryLimit(t *testing.T) {
	t.Setenv("GOMEMLIMIT", "")
	was := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(was) })
	var log bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&log, nil))

	if err := setMemoryLimit(logger, "2GiB"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 2<<30 {
		t.Errorf("memory_limit 2GiB: runtime limit %d", got)
	}
	if !strings.Contains(log.String(), `msg="memory limit" limit_bytes=2147483648 limit=2.0GiB from="memory_limit 2GiB"`) {
		t.Errorf("log: %s", log.String())
	}

	debug.SetMemoryLimit(math.MaxInt64)
	if err := setMemoryLimit(logger, "auto"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got == math.MaxInt64 || got < 64<<20 {
		t.Errorf("memory_limit auto: runtime limit %d", got)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	if err := setMemoryLimit(logger, "off"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("memory_limit off: runtime limit %d", got)
	}

	// GOMEMLIMIT wins: the runtime read it at start, and it stays.
	t.Setenv("GOMEMLIMIT", "1GiB")
	if err := setMemoryLimit(logger, "2GiB"); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("with GOMEMLIMIT set, memory_limit changed the runtime limit to %d", got)
	}
}
