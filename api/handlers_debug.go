package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"runtime"
	"runtime/pprof"
	"runtime/trace"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/version"
)

// The profiles are served here rather than by net/http/pprof, whose import
// registers them on http.DefaultServeMux for anyone who serves it: here
// they exist only as routes, behind the debug:read permission.

// Limits of the profiles that run for a while.
const (
	// pprofMaxSeconds bounds ?seconds of a CPU profile or a trace.
	pprofMaxSeconds = 60
	// pprofProfileSeconds and pprofTraceSeconds are their defaults, as
	// net/http/pprof has them.
	pprofProfileSeconds = 30
	pprofTraceSeconds   = 1
	// pprofWriteMargin is what sending a profile may take once it ran.
	pprofWriteMargin = 30 * time.Second
)

// Limits of GET /v1/debug/logs.
const (
	defaultDebugLogLines = 1000
	maxDebugLogLines     = 10000
)

// pprofProfiles describes the profiles the index lists, in its order.
var pprofProfiles = []struct{ name, about string }{
	{"allocs", "a sampling of all past memory allocations"},
	{"block", "stack traces that led to blocking on synchronization (empty unless the block profile rate is set)"},
	{"goroutine", "stack traces of all current goroutines; ?debug=2 prints them as an unrecovered panic does"},
	{"heap", "a sampling of the memory allocations of live objects; ?gc=1 collects garbage first"},
	{"mutex", "stack traces of holders of contended mutexes (empty unless the mutex profile fraction is set)"},
	{"threadcreate", "stack traces that led to the creation of new OS threads"},
	{"profile", fmt.Sprintf("CPU profile for ?seconds (default %d, at most %d)", pprofProfileSeconds, pprofMaxSeconds)},
	{"trace", fmt.Sprintf("execution trace for ?seconds (default %d, at most %d); read it with go tool trace", pprofTraceSeconds, pprofMaxSeconds)},
	{"cmdline", "the server's command line, arguments separated by NUL bytes"},
	{"symbol", "program counters to function names, for go tool pprof"},
}

// handlePprofIndex lists the profiles. The route is a subtree: any other
// path under /debug/pprof/ that no route names is not found.
func (s *server) handlePprofIndex(c *call) error {
	if c.r.URL.Path != "/debug/pprof/" {
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "no profile " + strconv.Quote(strings.TrimPrefix(c.r.URL.Path, "/debug/pprof/"))}
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "Go profiles of moxxied server %s (%s).\n", s.b.ID(), version.Get())
	b.WriteString("GET /debug/pprof/NAME with an admin token; ?debug=1 prints a profile as text.\n")
	b.WriteString("go tool pprof and go tool trace read them: see docs/observability.md.\n\n")
	for _, p := range pprofProfiles {
		count := ""
		if prof := pprof.Lookup(p.name); prof != nil {
			count = strconv.Itoa(prof.Count())
		}
		fmt.Fprintf(&b, "%-13s %6s  %s\n", p.name, count, p.about)
	}
	writeText(c.w, b.Bytes())
	return nil
}

// writeText answers 200 with body as plain text.
func writeText(w *responseWriter, body []byte) {
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(body)
}

// handlePprofCmdline answers the server's command line.
func (s *server) handlePprofCmdline(c *call) error {
	writeText(c.w, []byte(strings.Join(os.Args, "\x00")))
	return nil
}

// pprofNamed returns the handler of one of runtime/pprof's profiles.
// ?debug=N (0 to 2) chooses its format, as pprof.Profile.WriteTo has it: 0
// the gzipped protocol buffer go tool pprof reads, 1 and 2 text.
func pprofNamed(name string) func(*server, *call) error {
	return func(s *server, c *call) error {
		q := c.q()
		if q.Has("seconds") {
			return invalid("seconds", "delta profiles are not served: take two profiles and compare them with go tool pprof -base")
		}
		debug, err := intQuery(c, "debug", 0, 0, 2)
		if err != nil {
			return err
		}
		gc, err := intQuery(c, "gc", 0, 0, 1)
		if err != nil {
			return err
		}
		p := pprof.Lookup(name)
		if p == nil {
			return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "no profile " + strconv.Quote(name)}
		}
		if name == "heap" && gc > 0 {
			runtime.GC()
		}
		h := c.w.Header()
		if debug > 0 {
			h.Set("Content-Type", "text/plain; charset=utf-8")
		} else {
			setProfileHeaders(h, name)
		}
		c.w.WriteHeader(http.StatusOK)
		if err := p.WriteTo(c.w, debug); err != nil {
			s.log.Warn("profile not sent", "request_id", c.w.reqID, "profile", name, "error", err)
		}
		return nil
	}
}

// setProfileHeaders marks an answer as the binary profile name.
func setProfileHeaders(h http.Header, name string) {
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
}

// intQuery reads the integer query parameter name, def when absent,
// which must lie within [lo, hi].
func intQuery(c *call, name string, def, lo, hi int) (int, error) {
	v := c.q().Get(name)
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		return 0, invalid(name, "must be an integer from %d to %d, not %q", lo, hi, v)
	}
	return n, nil
}

// pprofSeconds reads ?seconds, how long a CPU profile or trace runs: a
// number of seconds above 0 and at most pprofMaxSeconds, def when absent.
func pprofSeconds(c *call, def int) (time.Duration, error) {
	v := c.q().Get("seconds")
	if v == "" {
		return time.Duration(def) * time.Second, nil
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || math.IsNaN(f) || f <= 0 || f > pprofMaxSeconds {
		return 0, invalid("seconds", "must be a number of seconds above 0 and at most %d, not %q", pprofMaxSeconds, v)
	}
	return time.Duration(f * float64(time.Second)), nil
}

// allowWriteFor makes room for an answer that takes d to produce. The
// server's WriteTimeout counts from the end of the request's header; when
// it would cut the profile short, the connection's write deadline moves
// to d plus pprofWriteMargin from now. A longer WriteTimeout is left
// alone.
func allowWriteFor(c *call, d time.Duration) {
	srv, _ := c.r.Context().Value(http.ServerContextKey).(*http.Server)
	if srv == nil || srv.WriteTimeout <= 0 || srv.WriteTimeout >= d+pprofWriteMargin {
		return
	}
	_ = http.NewResponseController(c.w).SetWriteDeadline(time.Now().Add(d + pprofWriteMargin))
}

// handlePprofProfile runs a CPU profile for ?seconds and sends it. One
// CPU profile runs at a time in a process: a second is a 409.
func (s *server) handlePprofProfile(c *call) error {
	d, err := pprofSeconds(c, pprofProfileSeconds)
	if err != nil {
		return err
	}
	allowWriteFor(c, d)
	h := c.w.Header()
	setProfileHeaders(h, "profile")
	if err := pprof.StartCPUProfile(c.w); err != nil {
		h.Del("Content-Disposition")
		return &apiError{status: http.StatusConflict, code: CodeConflict, message: "cannot start a CPU profile: " + err.Error() + " (one runs at a time)"}
	}
	sleepCtx(c.r.Context(), d)
	pprof.StopCPUProfile()
	return nil
}

// handlePprofTrace records an execution trace for ?seconds, streaming it
// as it is made. One trace runs at a time in a process: a second is a
// 409.
func (s *server) handlePprofTrace(c *call) error {
	d, err := pprofSeconds(c, pprofTraceSeconds)
	if err != nil {
		return err
	}
	allowWriteFor(c, d)
	h := c.w.Header()
	setProfileHeaders(h, "trace")
	if err := trace.Start(c.w); err != nil {
		h.Del("Content-Disposition")
		return &apiError{status: http.StatusConflict, code: CodeConflict, message: "cannot start a trace: " + err.Error() + " (one runs at a time)"}
	}
	sleepCtx(c.r.Context(), d)
	trace.Stop()
	return nil
}

// sleepCtx waits d, or less when ctx ends first (the client left).
func sleepCtx(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-ctx.Done():
	}
}

// handlePprofSymbol maps program counters to function names, as
// net/http/pprof does for go tool pprof: hexadecimal addresses separated
// by '+' in the query string (GET) or the body (POST), answered one
// "0xADDR name" line each after a "num_symbols: 1" line.
func (s *server) handlePprofSymbol(c *call) error {
	var in io.Reader = strings.NewReader(c.r.URL.RawQuery)
	if c.r.Method == http.MethodPost {
		body, err := io.ReadAll(http.MaxBytesReader(c.w, c.r.Body, s.opts.MaxBodyBytes))
		if err != nil {
			return err
		}
		in = bytes.NewReader(body)
	}
	var b bytes.Buffer
	// go tool pprof only asks whether the number is above 0.
	b.WriteString("num_symbols: 1\n")
	rd := bufio.NewReader(in)
	for {
		word, err := rd.ReadSlice('+')
		word = bytes.TrimSuffix(word, []byte("+"))
		if pc, _ := strconv.ParseUint(string(word), 0, 64); pc != 0 {
			if f := runtime.FuncForPC(uintptr(pc)); f != nil {
				fmt.Fprintf(&b, "%#x %s\n", pc, f.Name())
			}
		}
		if err != nil {
			break
		}
	}
	writeText(c.w, b.Bytes())
	return nil
}

// DebugConfigResponse is the body of GET /v1/debug/config.
type DebugConfigResponse struct {
	// ID is the server that answered.
	ID string `json:"id"`
	// Version is its build.
	Version version.Info `json:"version"`
	// Config is its effective configuration (defaults, file, environment
	// and flags) under the configuration file's keys. Secrets appear by
	// name (secret:NAME) and key files by path; no value of either does.
	Config any `json:"config"`
}

// handleDebugConfig answers this server's effective configuration.
func (s *server) handleDebugConfig(c *call) error {
	if s.opts.DebugConfig == nil {
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "this server does not report its configuration"}
	}
	cfg, err := s.opts.DebugConfig()
	if err != nil {
		return internal(fmt.Errorf("configuration dump: %w", err))
	}
	writeJSON(c.w, http.StatusOK, DebugConfigResponse{ID: s.b.ID(), Version: version.Get(), Config: cfg})
	return nil
}

// DebugLogsResponse is the body of GET /v1/debug/logs.
type DebugLogsResponse struct {
	// ID is the server that answered.
	ID string `json:"id"`
	// Lines are its latest log records, oldest first, each a JSON object
	// as the JSON log format writes it.
	Lines []json.RawMessage `json:"lines"`
}

// handleDebugLogs answers the last ?lines (default 1000) log records this
// server keeps in memory.
func (s *server) handleDebugLogs(c *call) error {
	n, err := intQuery(c, "lines", defaultDebugLogLines, 1, maxDebugLogLines)
	if err != nil {
		return err
	}
	out := DebugLogsResponse{ID: s.b.ID(), Lines: []json.RawMessage{}}
	if s.opts.RecentLogs != nil {
		if lines := s.opts.RecentLogs(n); lines != nil {
			out.Lines = lines
		}
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
