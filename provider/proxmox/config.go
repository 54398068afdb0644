package proxmox

import (
	"crypto/sha256"
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/moxxie/moxxie/telemetry"
	"go.opentelemetry.io/otel/trace"
)

// Defaults applied by New to zero Config fields.
const (
	DefaultTimeout  = 30 * time.Second
	DefaultRetries  = 3
	DefaultTaskPoll = 500 * time.Millisecond
)

// apiSuffix is the path prefix of every Proxmox VE API call.
const apiSuffix = "/api2/json"

// redacted replaces the token secret wherever a Config is printed.
const redacted = "[REDACTED]"

// Config configures a Provider. The zero values of Timeout, Retries and
// TaskPoll select the defaults above.
type Config struct {
	// URL is the API endpoint, e.g. https://pve1.example:8006. The
	// /api2/json suffix is added when missing. Plain http is accepted only
	// together with Insecure.
	URL string
	// TokenID names the API token as USER@REALM!NAME, e.g. root@pam!moxxie.
	TokenID string
	// TokenSecret is the token's secret. It is sent only in the
	// Authorization header and never appears in logs, errors or the
	// printed form of a Config.
	TokenSecret string
	// CAFile is a PEM bundle of certificate authorities to verify the
	// server against, instead of the system roots.
	CAFile string
	// Fingerprint pins the SHA-256 fingerprint of the server's leaf
	// certificate, "AA:BB:..." as Proxmox shows it. Only that certificate
	// is accepted, self-signed or not; its chain and name are not checked.
	Fingerprint string
	// Insecure skips certificate verification altogether. It also allows
	// a plain http URL.
	Insecure bool
	// Timeout bounds each HTTP attempt, including reading the answer.
	Timeout time.Duration
	// Retries is how many times a failed request is tried again (see the
	// package documentation for which failures and which requests).
	// Zero means DefaultRetries; a negative value turns retries off.
	Retries int
	// TaskPoll is the interval at which WaitTask polls a task.
	TaskPoll time.Duration
	// Logger receives debug and warning records; nil discards them.
	// Records of a request made with a context that carries a request ID
	// or a trace (telemetry) carry them too.
	Logger *slog.Logger
	// TracerProvider records a client span per API request (attempts and
	// retries included) in the trace of the caller's context; nil records
	// none.
	TracerProvider trace.TracerProvider
}

// String returns a description of c with the token secret redacted.
func (c Config) String() string {
	secret := ""
	if c.TokenSecret != "" {
		secret = redacted
	}
	return fmt.Sprintf("proxmox.Config{URL:%q TokenID:%q TokenSecret:%s CAFile:%q Fingerprint:%q Insecure:%t Timeout:%s Retries:%d TaskPoll:%s}",
		c.URL, c.TokenID, secret, c.CAFile, c.Fingerprint, c.Insecure, c.Timeout, c.Retries, c.TaskPoll)
}

// Format prints c as String does for every verb, so that %v, %+v, %#v and
// %s never show the token secret.
func (c Config) Format(f fmt.State, verb rune) {
	_, _ = f.Write([]byte(c.String()))
}

// LogValue returns c as a group of attributes with the token secret
// redacted.
func (c Config) LogValue() slog.Value {
	secret := ""
	if c.TokenSecret != "" {
		secret = redacted
	}
	return slog.GroupValue(
		slog.String("url", c.URL),
		slog.String("token_id", c.TokenID),
		slog.String("token_secret", secret),
		slog.String("ca_file", c.CAFile),
		slog.String("fingerprint", c.Fingerprint),
		slog.Bool("insecure", c.Insecure),
		slog.Duration("timeout", c.Timeout),
		slog.Int("retries", c.Retries),
		slog.Duration("task_poll", c.TaskPoll),
	)
}

// MarshalJSON encodes c with the token secret redacted. Decoding is not
// affected: a Config read from JSON keeps the secret it was given.
func (c Config) MarshalJSON() ([]byte, error) {
	type plain struct {
		URL         string
		TokenID     string
		TokenSecret string
		CAFile      string `json:",omitempty"`
		Fingerprint string `json:",omitempty"`
		Insecure    bool
		Timeout     time.Duration
		Retries     int
		TaskPoll    time.Duration
	}
	p := plain{c.URL, c.TokenID, "", c.CAFile, c.Fingerprint, c.Insecure, c.Timeout, c.Retries, c.TaskPoll}
	if c.TokenSecret != "" {
		p.TokenSecret = redacted
	}
	return json.Marshal(p)
}

// tokenIDPattern is the shape of a Proxmox API token ID, USER@REALM!NAME.
var tokenIDPattern = regexp.MustCompile(`^[^\s@!:=]+@[A-Za-z][A-Za-z0-9._-]*![A-Za-z][A-Za-z0-9._-]*$`)

// settings is a validated Config with defaults applied.
type settings struct {
	baseURL  string // ends in /api2/json
	tokenID  string
	secret   string
	tls      *tls.Config
	timeout  time.Duration
	retries  int
	taskPoll time.Duration
	log      *slog.Logger
	tracer   trace.Tracer
	tracing  bool
}

// validate checks c and derives the settings New works from. Its errors
// never contain the token secret.
func (c Config) validate() (settings, error) {
	s := settings{
		tokenID:  c.TokenID,
		secret:   c.TokenSecret,
		timeout:  c.Timeout,
		retries:  c.Retries,
		taskPoll: c.TaskPoll,
		log:      telemetry.ContextLogger(c.Logger),
		tracer:   telemetry.Tracer(c.TracerProvider),
		tracing:  telemetry.Recording(c.TracerProvider),
	}
	if s.timeout == 0 {
		s.timeout = DefaultTimeout
	}
	if s.timeout < 0 {
		return s, errors.New("proxmox: Timeout must not be negative")
	}
	switch {
	case s.retries == 0:
		s.retries = DefaultRetries
	case s.retries < 0:
		s.retries = 0
	}
	if s.taskPoll == 0 {
		s.taskPoll = DefaultTaskPoll
	}
	if s.taskPoll < 0 {
		return s, errors.New("proxmox: TaskPoll must not be negative")
	}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}

	base, err := c.baseURL()
	if err != nil {
		return s, err
	}
	s.baseURL = base

	if !tokenIDPattern.MatchString(c.TokenID) {
		return s, fmt.Errorf("proxmox: TokenID %q is not of the form USER@REALM!NAME", c.TokenID)
	}
	if c.TokenSecret == "" {
		return s, errors.New("proxmox: TokenSecret is empty")
	}
	if strings.IndexFunc(c.TokenSecret, func(r rune) bool { return r <= ' ' || r == 0x7f }) >= 0 {
		return s, errors.New("proxmox: TokenSecret contains whitespace or control characters")
	}

	s.tls, err = c.tlsConfig()
	if err != nil {
		return s, err
	}
	return s, nil
}

// baseURL checks the URL and returns it with the API suffix.
func (c Config) baseURL() (string, error) {
	if c.URL == "" {
		return "", errors.New("proxmox: URL is empty")
	}
	u, err := url.Parse(c.URL)
	if err != nil {
		return "", fmt.Errorf("proxmox: URL: %w", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !c.Insecure {
			return "", fmt.Errorf("proxmox: URL %q: plain http sends the token in clear text and needs Insecure", c.URL)
		}
	default:
		return "", fmt.Errorf("proxmox: URL %q: scheme must be https", c.URL)
	}
	if u.Host == "" {
		return "", fmt.Errorf("proxmox: URL %q has no host", c.URL)
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("proxmox: URL %s must not carry user info, a query or a fragment", u.Redacted())
	}
	p := strings.TrimRight(u.Path, "/")
	if !strings.HasSuffix(p, apiSuffix) {
		p += apiSuffix
	}
	return u.Scheme + "://" + u.Host + p, nil
}

// tlsConfig builds the client TLS configuration for the one trust mode c
// selects: a CA bundle, a pinned fingerprint, no verification, or else the
// system roots.
func (c Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	switch {
	case c.Insecure && (c.CAFile != "" || c.Fingerprint != ""):
		return nil, errors.New("proxmox: Insecure excludes CAFile and Fingerprint")
	case c.CAFile != "" && c.Fingerprint != "":
		return nil, errors.New("proxmox: set either CAFile or Fingerprint, not both")
	case c.Insecure:
		tc.InsecureSkipVerify = true
	case c.CAFile != "":
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("proxmox: CAFile: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("proxmox: CAFile %s holds no PEM certificate", c.CAFile)
		}
		tc.RootCAs = pool
	case c.Fingerprint != "":
		pin, err := parseFingerprint(c.Fingerprint)
		if err != nil {
			return nil, err
		}
		// The pin replaces chain and name verification: Go calls
		// VerifyConnection even when InsecureSkipVerify is set.
		tc.InsecureSkipVerify = true
		tc.VerifyConnection = func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return &fingerprintError{}
			}
			got := sha256.Sum256(cs.PeerCertificates[0].Raw)
			if subtle.ConstantTimeCompare(got[:], pin) != 1 {
				return &fingerprintError{got: got[:]}
			}
			return nil
		}
	}
	return tc, nil
}

// parseFingerprint reads a SHA-256 fingerprint written as 32 hex bytes,
// with or without colons, in either case.
func parseFingerprint(s string) ([]byte, error) {
	h := strings.ReplaceAll(strings.TrimSpace(s), ":", "")
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("proxmox: Fingerprint %q is not a SHA-256 fingerprint (32 hex bytes, AA:BB:...)", s)
	}
	return b, nil
}

// formatFingerprint writes a fingerprint the way Proxmox shows it.
func formatFingerprint(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = fmt.Sprintf("%02X", x)
	}
	return strings.Join(parts, ":")
}

// fingerprintError reports a server certificate that does not match the
// pinned fingerprint.
type fingerprintError struct {
	got []byte // nil when the server sent no certificate
}

func (e *fingerprintError) Error() string {
	if e.got == nil {
		return "tls: server sent no certificate to check against the pinned fingerprint"
	}
	return "tls: server certificate fingerprint " + formatFingerprint(e.got) + " does not match the pinned Fingerprint"
}
