package api

import (
	"context"
	"strconv"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// Blocking query limits.
const (
	defaultWait = 5 * time.Minute
	maxWait     = 10 * time.Minute
)

// readModeKind is the consistency a read asks for.
type readModeKind uint8

const (
	readDefault readModeKind = iota
	readStale
	readConsistent
)

// readMode parses ?stale and ?consistent. Either may be given bare or with
// a boolean value; asking for both is an error.
func readMode(c *call) (readModeKind, error) {
	if c.r.URL.RawQuery == "" {
		return readDefault, nil
	}
	stale, err := boolParam(c, "stale")
	if err != nil {
		return 0, err
	}
	consistent, err := boolParam(c, "consistent")
	if err != nil {
		return 0, err
	}
	switch {
	case stale && consistent:
		return 0, invalid("consistent", "stale and consistent cannot be combined")
	case stale:
		return readStale, nil
	case consistent:
		return readConsistent, nil
	}
	return readDefault, nil
}

// boolParam reports whether a query flag is set: present without a value,
// or with a value strconv.ParseBool accepts.
func boolParam(c *call, name string) (bool, error) {
	vs, ok := c.q()[name]
	if !ok {
		return false, nil
	}
	if len(vs) == 0 || vs[0] == "" {
		return true, nil
	}
	b, err := strconv.ParseBool(vs[0])
	if err != nil {
		return false, invalid(name, "must be true or false (or 1 or 0), not %q", vs[0])
	}
	return b, nil
}

// blocking holds the parameters of a blocking query.
type blocking struct {
	// index is the ?index the caller has seen; 0 means do not block.
	index uint64
	wait  time.Duration
}

// blockingParams parses ?index=N&wait=D. wait is a Go duration ("30s") or
// a whole number of seconds; it defaults to 5m and is capped at 10m.
func blockingParams(c *call) (blocking, error) {
	p := blocking{wait: defaultWait}
	if c.r.URL.RawQuery == "" {
		return p, nil
	}
	q := c.q()
	if s := q.Get("index"); s != "" {
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return p, invalid("index", "must be a non-negative integer, not %q", s)
		}
		p.index = n
	}
	if s := q.Get("wait"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			secs, serr := strconv.ParseUint(s, 10, 32)
			if serr != nil {
				return p, invalid("wait", "must be a duration such as \"30s\" or a number of seconds, not %q", s)
			}
			d = time.Duration(secs) * time.Second
		}
		if d <= 0 {
			return p, invalid("wait", "must be positive, not %q", s)
		}
		p.wait = min(d, maxWait)
	}
	return p, nil
}

// blockingQuery runs query against the local store and returns the index
// to report. With ?index=N it re-runs query each time something it watched
// changes until the index passes N, the wait elapses or the store is
// replaced by a restore, and returns the last result (which query keeps).
// The index reported is at least 1, so that a client feeding it back as
// ?index always blocks.
func (s *server) blockingQuery(c *call, query func(st *fsm.Store, ws memdb.WatchSet) (uint64, error)) (uint64, error) {
	p, err := blockingParams(c)
	if err != nil {
		return 0, err
	}
	if p.index == 0 {
		idx, err := query(s.b.State(), nil)
		return max(idx, 1), err
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), p.wait)
	defer cancel()
	first := s.b.State()
	for {
		st := s.b.State()
		ws := memdb.NewWatchSet()
		ws.Add(st.AbandonCh())
		idx, err := query(st, ws)
		if err != nil || idx > p.index || st != first {
			return max(idx, 1), err
		}
		if s.watchHook != nil {
			s.watchHook()
		}
		if ws.WatchCtx(ctx) != nil {
			return max(idx, 1), nil
		}
	}
}
