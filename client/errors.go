package client

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// CodeQuotaExceeded is the code of an answer refusing a request that
// would pass a tenant's or project's quota; APIError.Quota says which.
const CodeQuotaExceeded = "quota_exceeded"

// APIError is an error answer from a server: its HTTP status and the
// {"error": {...}} body.
type APIError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the machine-readable error code, such as "conflict".
	Code string
	// Message says what went wrong.
	Message string
	// Field names the offending field, parameter or header, if any.
	Field string
	// RequestID identifies the request in the servers' logs.
	RequestID string
	// RetryAfter is the delay the server asked for with Retry-After.
	RetryAfter time.Duration
	// Quota names the quota a refused request would have passed (code
	// quota_exceeded), when the server said.
	Quota *QuotaExceeded
}

// QuotaExceeded names the quota a request would pass: the scope
// ("tenant acme" or "project acme/web"), the resource, its limit, the
// usage before the request and what the request asked for. An *APIError
// unwraps to it, so errors.As finds it.
type QuotaExceeded struct {
	Scope    string `json:"scope"`
	Resource string `json:"resource"`
	Limit    int64  `json:"limit"`
	Usage    int64  `json:"usage"`
	Request  int64  `json:"request"`
}

// Error formats the refusal as the server does, for example
// `quota ipv4_addresses of tenant acme exceeded: limit 5, usage 5, request 1`.
func (q *QuotaExceeded) Error() string {
	return fmt.Sprintf("quota %s of %s exceeded: limit %d, usage %d, request %d", q.Resource, q.Scope, q.Limit, q.Usage, q.Request)
}

// Error formats the error on one line, for example
// `409 conflict: setting "x" has modify index 5, not 3 (request 7f3a-12)`.
func (e *APIError) Error() string {
	code := e.Code
	if code == "" {
		code = strings.ToLower(http.StatusText(e.Status))
	}
	// Server messages often start with the error's own name ("conflict:
	// ...", "not found: ..."); the code already says it.
	msg := strings.TrimPrefix(e.Message, code+": ")
	msg = strings.TrimPrefix(msg, strings.ReplaceAll(code, "_", " ")+": ")
	if msg == "" && e.Quota != nil {
		msg = e.Quota.Error()
	}
	if msg == "" {
		msg = strings.ToLower(http.StatusText(e.Status))
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%d %s: %s", e.Status, code, oneLine(msg))
	var notes []string
	if e.Field != "" && !strings.Contains(msg, e.Field) {
		notes = append(notes, "field "+e.Field)
	}
	if e.RequestID != "" {
		notes = append(notes, "request "+e.RequestID)
	}
	if len(notes) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(notes, ", "))
	}
	return b.String()
}

// Unwrap returns the quota the request would have passed, if the answer
// named one, so that errors.As(err, &q) with q a *QuotaExceeded finds it.
func (e *APIError) Unwrap() error {
	if e.Quota == nil {
		return nil
	}
	return e.Quota
}

// IsNotFound reports whether err is an API answer with status 404.
func IsNotFound(err error) bool { return StatusCode(err) == http.StatusNotFound }

// StatusCode returns the HTTP status of an *APIError in err's chain, or 0.
func StatusCode(err error) int {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae.Status
	}
	return 0
}

// maxErrorBody bounds how much of an error answer is read.
const maxErrorBody = 64 << 10

// readAPIError turns an error answer into an *APIError and closes its body.
func readAPIError(resp *http.Response) *APIError {
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	ae := &APIError{Status: resp.StatusCode, RequestID: resp.Header.Get(headerRequestID)}
	ae.RetryAfter, _ = retryAfter(resp.Header)
	var env struct {
		Error *struct {
			Code      string         `json:"code"`
			Message   string         `json:"message"`
			Field     string         `json:"field"`
			RequestID string         `json:"request_id"`
			Quota     *QuotaExceeded `json:"quota"`
		} `json:"error"`
	}
	if json.Unmarshal(body, &env) == nil && env.Error != nil {
		ae.Code, ae.Message, ae.Field = env.Error.Code, env.Error.Message, env.Error.Field
		ae.Quota = env.Error.Quota
		if env.Error.RequestID != "" {
			ae.RequestID = env.Error.RequestID
		}
		return ae
	}
	// Not an API error body (a proxy, or a server that is not Moxxie): keep
	// the start of what it said.
	msg := strings.TrimSpace(string(body))
	if i := strings.IndexByte(msg, '\n'); i >= 0 {
		msg = msg[:i]
	}
	if len(msg) > 200 {
		msg = msg[:200] + "..."
	}
	ae.Message = msg
	return ae
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h http.Header) (time.Duration, bool) {
	v := strings.TrimSpace(h.Get("Retry-After"))
	if v == "" {
		return 0, false
	}
	var secs int
	if _, err := fmt.Sscanf(v, "%d", &secs); err == nil && secs >= 0 {
		return time.Duration(secs) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(time.Until(t), 0), true
	}
	return 0, false
}

func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
