package api

import (
	"math"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/moxxie/moxxie/pki"
)

// Defaults of the rate limits in Options. The token limits stop a runaway
// client without slowing a busy one: a few thousand requests a second is
// more than any one automation client sends. The benchmarks, which drive
// all their clients through one token faster than that, turn the token
// limit off (scripts/lib-bench.sh). Requests without a valid token (health
// checks, metrics scrapes, bootstrap, failed authentication) have no reason
// to come fast.
const (
	DefaultRateLimit        = 5000
	DefaultRateBurst        = 10000
	DefaultAddressRateLimit = 200
	DefaultAddressRateBurst = 400
)

// Limits on the limiter's own memory: at most maxBuckets buckets, swept of
// refilled ones every sweepEvery, and every second while the map is full.
const (
	maxBuckets = 1 << 16
	sweepEvery = time.Minute
)

// limiter keeps a token bucket per key: each key may make rate requests a
// second on average and burst at once. It is safe for concurrent use.
type limiter struct {
	rate  float64 // refill per second
	burst float64
	now   func() time.Time

	mu        sync.Mutex
	buckets   map[string]*bucket // guarded by mu
	lastSweep time.Time          // guarded by mu
}

// bucket is one key's tokens at time last.
type bucket struct {
	tokens float64
	last   time.Time
}

// newLimiter returns a limiter, or nil (no limit) when rate is negative.
// A zero rate or burst takes the default given.
func newLimiter(rate float64, burst int, defRate float64, defBurst int) *limiter {
	if rate < 0 {
		return nil
	}
	if rate == 0 {
		rate = defRate
	}
	if burst <= 0 {
		burst = defBurst
	}
	return &limiter{rate: rate, burst: float64(max(burst, 1)), now: time.Now, buckets: map[string]*bucket{}}
}

// allow takes one request from key's bucket. When the bucket is empty it
// returns false and how long until the next request would be allowed.
func (l *limiter) allow(key string) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	full := len(l.buckets) >= maxBuckets-1 // one left for the overflow bucket
	if since := now.Sub(l.lastSweep); since >= sweepEvery || full && since >= time.Second {
		l.sweep(now)
		full = len(l.buckets) >= maxBuckets-1
	}
	b := l.buckets[key]
	if b == nil {
		if full {
			// Full of busy keys: the newcomers share one bucket rather
			// than grow the map without bound.
			key = "overflow"
			b = l.buckets[key]
		}
		if b == nil {
			b = &bucket{tokens: l.burst, last: now}
			l.buckets[key] = b
		}
	}
	if elapsed := now.Sub(b.last); elapsed > 0 {
		b.tokens = math.Min(l.burst, b.tokens+elapsed.Seconds()*l.rate)
		b.last = now
	}
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	return false, time.Duration((1 - b.tokens) / l.rate * float64(time.Second))
}

// sweep drops the buckets that have refilled: forgetting them changes
// nothing. Called with mu held.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
}

// retryAfter formats a wait as the whole seconds of a Retry-After header,
// at least 1.
func retryAfter(d time.Duration) string {
	return strconv.FormatInt(max(1, int64(math.Ceil(d.Seconds()))), 10)
}

// rateLimit applies the per-token and per-address limits to a request
// before it is routed. It returns the 429 to answer, or nil.
//
// A request with a valid bearer token counts against its token, by
// accessor ID, on every server it passes through: a follower counts the
// requests it receives and the leader those it serves, forwarded ones
// included, so a token's rate through the cluster is bounded by the
// leader's count; an agent certificate counts as a token of its own. A
// request without a valid token or agent certificate counts against its
// client address (an IPv6 address by its /64). A request a follower
// forwarded arrives over the servers' mutual-TLS link from the follower's
// address and has already been counted there, so the leader does not
// count it against an address.
func (s *server) rateLimit(rw *responseWriter, r *http.Request) *apiError {
	if s.tokenLimit == nil && s.addrLimit == nil {
		return nil
	}
	kind, l, key := "address", s.addrLimit, ""
	if accessor := s.bearerAccessor(rw, r); accessor != "" {
		kind, l, key = "token", s.tokenLimit, "token:"+accessor
	} else if id, ok := clientCertIdentity(r); ok && id.role == pki.RoleAgent {
		// An agent certificate is a credential like a token: its holder
		// is limited as one, on followers and on the leader alike.
		kind, l, key = "token", s.tokenLimit, "token:"+certAccessorPrefix+id.name
	} else if forwardedByPeer(r) {
		return nil
	} else {
		key = "addr:" + addressKey(r.RemoteAddr)
	}
	if l == nil {
		return nil
	}
	ok, wait := l.allow(key)
	if ok {
		return nil
	}
	s.limited(r, kind)
	return &apiError{
		status:  http.StatusTooManyRequests,
		code:    CodeRateLimited,
		message: "rate limit exceeded for this " + kind + "; retry after the time in Retry-After",
		header:  map[string]string{"Retry-After": retryAfter(wait)},
	}
}

// bearerAccessor returns the accessor ID of the request's bearer token
// when the local store knows it, and "" otherwise. It only identifies the
// caller for rate limiting; authentication proper happens on the route.
func (s *server) bearerAccessor(rw *responseWriter, r *http.Request) string {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return ""
	}
	_, tok, err := s.lookupBearer(rw, secret)
	if err != nil || tok == nil {
		return ""
	}
	return tok.AccessorID
}

// forwardedByPeer reports whether a request came from another server's
// forwarding link. Clients reach the API only over TLS, where r.TLS is
// set; forwarded requests arrive on the raft port's mutual-TLS link, whose
// connections the HTTP server does not see as TLS, and carry the
// forwarding header.
func forwardedByPeer(r *http.Request) bool {
	return r.TLS == nil && r.Header.Get(headerForwarded) != ""
}

// addressKey returns the part of a client address that is rate limited:
// the IP of an IPv4 address, the /64 of an IPv6 address.
func addressKey(remote string) string {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	ip = ip.Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}
