package node

import (
	"fmt"
	"log"
	"net/http"
	"time"

	"github.com/moxxie/moxxie/api"
)

// RateLimitConfig is the api_rate_limit section: how many requests a
// second each token may make to one server on average (per_second) and at
// once (burst), and the same for each client address whose requests carry
// no valid token (address_per_second, address_burst; an IPv6 client is
// counted by its /64). Beyond them the API answers 429 with Retry-After.
// Zero takes the defaults (5000 and 10000 per token, 200 and 400 per
// address); a negative rate turns that limit off. Each server counts what
// it serves, so a token's requests through the cluster are bounded by
// what the leader counts.
type RateLimitConfig struct {
	PerSecond        int `yaml:"per_second"`
	Burst            int `yaml:"burst"`
	AddressPerSecond int `yaml:"address_per_second"`
	AddressBurst     int `yaml:"address_burst"`
}

// validate names the first bad key of the section.
func (r *RateLimitConfig) validate() error {
	bad := func(key, format string, a ...any) error {
		return fmt.Errorf("config: api_rate_limit.%s: %s", key, fmt.Sprintf(format, a...))
	}
	if r.Burst < 0 {
		return bad("burst", "must not be negative (got %d)", r.Burst)
	}
	if r.AddressBurst < 0 {
		return bad("address_burst", "must not be negative (got %d)", r.AddressBurst)
	}
	if r.PerSecond < 0 && r.Burst > 0 {
		return bad("burst", "is set but per_second %d turns the token limit off", r.PerSecond)
	}
	if r.AddressPerSecond < 0 && r.AddressBurst > 0 {
		return bad("address_burst", "is set but address_per_second %d turns the address limit off", r.AddressPerSecond)
	}
	return nil
}

// apiOptions sets the rate limits of o from the section.
func (r RateLimitConfig) apiOptions(o api.Options) api.Options {
	o.RateLimit, o.RateBurst = float64(r.PerSecond), r.Burst
	o.AddressRateLimit, o.AddressRateBurst = float64(r.AddressPerSecond), r.AddressBurst
	return o
}

// Limits of the HTTP servers of the API and of forwarded requests.
const (
	// httpReadHeaderTimeout bounds reading a request's header, so a client
	// cannot hold a connection by sending it slowly.
	httpReadHeaderTimeout = 10 * time.Second
	// httpReadTimeout bounds reading a whole request. The largest body is
	// a backup archive (up to 1 GiB by default, PUT /v1/snapshot): ten
	// minutes is 1.7 MB/s.
	httpReadTimeout = 10 * time.Minute
	// httpWriteTimeout bounds serving a request, from the end of its
	// header to the end of the response. A blocking query waits up to ten
	// minutes (?wait=10m, the API's maximum) before answering, and a
	// follower forwarding one waits for the leader as long: the timeout
	// must exceed that wait, plus the hold timeout for a leader.
	httpWriteTimeout = 12 * time.Minute
	// httpIdleTimeout closes keep-alive connections left unused.
	httpIdleTimeout = 2 * time.Minute
	// httpMaxHeaderBytes bounds a request's header (431 beyond it). Bodies
	// are bounded by the API itself (413).
	httpMaxHeaderBytes = 64 << 10
)

// newHTTPServer returns an http.Server with the limits above.
func newHTTPServer(h http.Handler, errLog *log.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      httpWriteTimeout,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          errLog,
	}
}
