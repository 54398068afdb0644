package node

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"sync"
)

// Limits of a server's in-memory log.
const (
	// logRingLines and logRingBytes bound how many records the ring keeps
	// and their total size; the oldest go first.
	logRingLines = 2000
	logRingBytes = 4 << 20
	// logRingLineBytes bounds one record; a longer one (a panic's stack)
	// is kept as its time, level and the start of its message.
	logRingLineBytes = 16 << 10
	// logRingLevel is the least level the ring keeps whatever log_level
	// says: a support bundle wants the info lines of a server that logs
	// only warnings. Debug lines are kept when the server logs them.
	logRingLevel = slog.LevelInfo
)

// logRing keeps the latest log records of one server in memory, one JSON
// object each, for GET /v1/debug/logs (moxxiectl debug bundle).
type logRing struct {
	mu    sync.Mutex
	lines [][]byte // guarded by mu; a circle of records, the oldest at head
	head  int      // guarded by mu
	n     int      // guarded by mu; how many lines hold a record
	size  int      // guarded by mu; their total length
}

func newLogRing() *logRing {
	return &logRing{lines: make([][]byte, logRingLines)}
}

// Write keeps one record. slog's JSON handler writes each record in one
// call, ending in a newline.
func (r *logRing) Write(p []byte) (int, error) {
	line := bytes.TrimSuffix(p, []byte("\n"))
	if len(line) > logRingLineBytes {
		line = shortRecord(line)
	} else {
		line = bytes.Clone(line)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for r.n > 0 && (r.n == len(r.lines) || r.size+len(line) > logRingBytes) {
		r.size -= len(r.lines[r.head])
		r.lines[r.head] = nil
		r.head = (r.head + 1) % len(r.lines)
		r.n--
	}
	r.lines[(r.head+r.n)%len(r.lines)] = line
	r.n++
	r.size += len(line)
	return len(p), nil
}

// shortRecord stands in for a record longer than logRingLineBytes.
func shortRecord(line []byte) []byte {
	var rec struct {
		Time  string `json:"time"`
		Level string `json:"level"`
		Msg   string `json:"msg"`
	}
	_ = json.Unmarshal(line, &rec)
	if len(rec.Msg) > 1024 {
		rec.Msg = rec.Msg[:1024]
	}
	b, _ := json.Marshal(struct {
		Time      string `json:"time"`
		Level     string `json:"level"`
		Msg       string `json:"msg"`
		Truncated int    `json:"truncated_from_bytes"`
	}{rec.Time, rec.Level, rec.Msg, len(line)})
	return b
}

// last returns up to n of the latest records, oldest first. Kept records
// are never changed, so the answer shares them.
func (r *logRing) last(n int) []json.RawMessage {
	r.mu.Lock()
	defer r.mu.Unlock()
	n = min(max(n, 0), r.n)
	out := make([]json.RawMessage, 0, n)
	for i := r.n - n; i < r.n; i++ {
		out = append(out, r.lines[(r.head+i)%len(r.lines)])
	}
	return out
}

// withLogRing returns a logger that logs through l and keeps a copy of
// its records in ring: those l logs, and those of logRingLevel and above
// whatever l's level.
func withLogRing(l *slog.Logger, ring *logRing) *slog.Logger {
	return slog.New(&ringHandler{
		next: l.Handler(),
		ring: slog.NewJSONHandler(ring, &slog.HandlerOptions{Level: slog.LevelDebug - 8}),
	})
}

// ringHandler is the slog.Handler of withLogRing.
type ringHandler struct {
	next slog.Handler
	ring slog.Handler // formats records into the logRing
}

// Enabled reports whether next handles level or the ring keeps it.
func (h *ringHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return level >= logRingLevel || h.next.Enabled(ctx, level)
}

// Handle passes r on to next, when it handles r's level, and keeps it.
func (h *ringHandler) Handle(ctx context.Context, r slog.Record) error {
	var err error
	if h.next.Enabled(ctx, r.Level) {
		err = h.next.Handle(ctx, r.Clone())
	}
	_ = h.ring.Handle(ctx, r)
	return err
}

// WithAttrs returns a handler whose records carry attrs, in both.
func (h *ringHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &ringHandler{next: h.next.WithAttrs(attrs), ring: h.ring.WithAttrs(attrs)}
}

// WithGroup returns a handler that nests later attributes in the group
// name, in both.
func (h *ringHandler) WithGroup(name string) slog.Handler {
	if name == "" {
		return h
	}
	return &ringHandler{next: h.next.WithGroup(name), ring: h.ring.WithGroup(name)}
}
