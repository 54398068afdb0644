package client

import (
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/moxxie/moxxie/pki"
	"github.com/moxxie/moxxie/version"
)

// Defaults used when a Config field is zero.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultRetryFor = 10 * time.Second
	// DefaultWait is the wait sent with a blocking query that sets an index
	// but no wait, so client and server agree on how long it may take.
	DefaultWait = 5 * time.Minute
	// maxIdleConnsPerHost keeps connections open for many concurrent
	// callers, such as benchmarks, instead of redialling.
	maxIdleConnsPerHost = 1024
	dialTimeout         = 5 * time.Second
)

// Config configures a Client.
type Config struct {
	// Address is the server's base URL, https://host:port, or several
	// separated by commas. A missing scheme means https.
	Address string
	// Token is the API token secret sent as a bearer token; empty sends
	// none.
	Token string
	// CACert is the PEM file of the CA that signed the servers'
	// certificates; empty uses the system roots.
	CACert string
	// ClientCert and ClientKey are an optional client certificate and key
	// files, for servers that require one.
	ClientCert, ClientKey string
	// TLSConfig, when set, is used instead of CACert, ClientCert and
	// ClientKey.
	TLSConfig *tls.Config
	// Timeout bounds each attempt of a request, from connecting to reading
	// the whole answer; a blocking query gets its wait on top. Zero means
	// DefaultTimeout.
	Timeout time.Duration
	// RetryFor bounds how long a request is retried, in total. Zero means
	// DefaultRetryFor; negative disables retries.
	RetryFor time.Duration
	// Site, when set, sends every request to that site: the server passes
	// it on (?site=NAME) to a server of the site, with the same token.
	Site string
}

// Client calls the Moxxie API. It is safe for concurrent use; create one
// and share it, so connections are reused.
type Client struct {
	site      string
	addrs     []string
	token     string
	timeout   time.Duration
	retryFor  time.Duration
	userAgent string
	hc        *http.Client
	transport *http.Transport

	preferred atomic.Int32 // index into addrs of the last server that answered
}

// New returns a client for cfg. It checks the addresses and reads the TLS
// files; it does not contact any server.
func New(cfg Config) (*Client, error) {
	addrs, err := parseAddresses(cfg.Address)
	if err != nil {
		return nil, err
	}
	tlsCfg := cfg.TLSConfig
	if tlsCfg == nil {
		if tlsCfg, err = pki.ClientTLSConfig(cfg.CACert, cfg.ClientCert, cfg.ClientKey); err != nil {
			return nil, err
		}
	}
	c := &Client{
		addrs:     addrs,
		token:     cfg.Token,
		timeout:   cfg.Timeout,
		retryFor:  cfg.RetryFor,
		userAgent: "moxxie-client/" + version.Version,
		site:      cfg.Site,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.retryFor == 0 {
		c.retryFor = DefaultRetryFor
	}
	c.transport = &http.Transport{
		Proxy: http.ProxyFromEnvironment,
		DialContext: (&net.Dialer{
			Timeout:   min(dialTimeout, c.timeout),
			KeepAlive: 30 * time.Second,
		}).DialContext,
		TLSClientConfig:       tlsCfg,
		TLSHandshakeTimeout:   min(10*time.Second, c.timeout),
		MaxIdleConnsPerHost:   maxIdleConnsPerHost,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	c.hc = &http.Client{
		Transport: c.transport,
		// A redirect would resend the token elsewhere; the API never
		// redirects, so hand the answer back instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Addresses returns the servers the client uses, as normalised base URLs.
func (c *Client) Addresses() []string { return append([]string(nil), c.addrs...) }

// Close closes idle connections. The client stays usable.
func (c *Client) Close() { c.transport.CloseIdleConnections() }

// parseAddresses splits and normalises a comma-separated list of base URLs.
func parseAddresses(s string) ([]string, error) {
	var out []string
	for _, a := range strings.Split(s, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if ip, err := netip.ParseAddr(a); err == nil && ip.Is6() {
			return nil, fmt.Errorf("client: invalid address %q: an IPv6 server goes in brackets with its port, as https://[%s]:PORT", a, a)
		}
		if !strings.Contains(a, "://") {
			a = "https://" + a
		}
		u, err := url.Parse(a)
		if err != nil {
			return nil, fmt.Errorf("client: invalid address %q: %v", a, err)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return nil, fmt.Errorf("client: invalid address %q: scheme must be https", a)
		}
		if u.Host == "" || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.User != nil {
			return nil, fmt.Errorf("client: invalid address %q: want https://host:port", a)
		}
		out = append(out, u.Scheme+"://"+u.Host)
	}
	if len(out) == 0 {
		return nil, errors.New("client: no server address")
	}
	return out, nil
}
