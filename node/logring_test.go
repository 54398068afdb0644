package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestLogRing_KeepsTheLatest(t *testing.T) {
	r := newLogRing()
	for i := range logRingLines + 100 {
		fmt.Fprintf(r, `{"msg":"m%d"}`+"\n", i)
	}
	got := r.last(logRingLines * 2)
	if len(got) != logRingLines {
		t.Fatalf("%d lines, want %d", len(got), logRingLines)
	}
	if string(got[0]) != `{"msg":"m100"}` || string(got[len(got)-1]) != fmt.Sprintf(`{"msg":"m%d"}`, logRingLines+99) {
		t.Errorf("first %s, last %s", got[0], got[len(got)-1])
	}
	if got := r.last(2); len(got) != 2 || string(got[1]) != fmt.Sprintf(`{"msg":"m%d"}`, logRingLines+99) {
		t.Errorf("last(2) = %s", got)
	}
	if got := r.last(0); len(got) != 0 {
		t.Errorf("last(0) = %s", got)
	}
}

func TestLogRing_BoundsBytes(t *testing.T) {
	r := newLogRing()
	line := `{"msg":"` + strings.Repeat("x", logRingLineBytes-20) + `"}`
	for range 2 * logRingBytes / len(line) {
		fmt.Fprintln(r, line)
	}
	r.mu.Lock()
	size, n := r.size, r.n
	r.mu.Unlock()
	if size > logRingBytes || n != logRingBytes/len(line) {
		t.Errorf("%d lines of %d bytes, %d bytes in all; the limit is %d", n, len(line), size, logRingBytes)
	}

	// A record longer than a line may be is kept short, still JSON.
	long := `{"time":"2026-01-02T03:04:05Z","level":"ERROR","msg":"panic serving request","stack":"` + strings.Repeat("y", 2*logRingLineBytes) + `"}`
	fmt.Fprintln(r, long)
	got := r.last(1)[0]
	var rec map[string]any
	if err := json.Unmarshal(got, &rec); err != nil || rec["msg"] != "panic serving request" || rec["level"] != "ERROR" || rec["truncated_from_bytes"] != float64(len(long)) {
		t.Errorf("short record %s (%v)", got, err)
	}
}

func TestLogRing_Handler(t *testing.T) {
	var out bytes.Buffer
	base := slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelWarn}))
	r := newLogRing()
	l := withLogRing(base, r).With("server", "s1")

	l.Debug("not kept")
	l.Info("kept, not logged", "n", 1)
	l.WithGroup("g").Warn("kept and logged", "k", "v")
	if got := out.String(); strings.Contains(got, "kept, not logged") || !strings.Contains(got, "server=s1 g.k=v") {
		t.Errorf("logged:\n%s", got)
	}
	got := r.last(10)
	if len(got) != 2 {
		t.Fatalf("kept %s", got)
	}
	var first, second map[string]any
	_ = json.Unmarshal(got[0], &first)
	_ = json.Unmarshal(got[1], &second)
	if first["msg"] != "kept, not logged" || first["level"] != "INFO" || first["server"] != "s1" || first["n"] != float64(1) {
		t.Errorf("first record %s", got[0])
	}
	if g, _ := second["g"].(map[string]any); second["msg"] != "kept and logged" || g["k"] != "v" {
		t.Errorf("second record %s", got[1])
	}

	// At debug level the ring keeps debug lines too.
	debug := withLogRing(slog.New(slog.NewTextHandler(&out, &slog.HandlerOptions{Level: slog.LevelDebug})), r)
	if !debug.Enabled(context.Background(), slog.LevelDebug) || l.Enabled(context.Background(), slog.LevelDebug) {
		t.Error("Enabled does not follow the wrapped handler below info")
	}
	debug.Debug("debug kept")
	if got := r.last(1); !strings.Contains(string(got[0]), "debug kept") {
		t.Errorf("last %s", got)
	}
}
