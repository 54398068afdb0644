package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/ipam"
	"github.com/moxxie/moxxie/quota"
)

// Error codes carried in the "code" field of an error response. Clients
// branch on the code, never on the message.
const (
	CodeInvalidRequest       = "invalid_request"
	CodeUnauthorized         = "unauthorized"
	CodeForbidden            = "forbidden"
	CodeNotFound             = "not_found"
	CodeMethodNotAllowed     = "method_not_allowed"
	CodeConflict             = "conflict"
	CodeExhausted            = "exhausted"
	CodeRequestTooLarge      = "request_too_large"
	CodeUnsupportedMediaType = "unsupported_media_type"
	CodeIdempotencyMismatch  = "idempotency_mismatch"
	CodeBadSnapshot          = "bad_snapshot"
	CodeNoLeader             = "no_leader"
	CodeLeadershipLost       = "leadership_lost"
	CodeTimeout              = "timeout"
	CodeNotReady             = "not_ready"
	CodeRestoring            = "restoring"
	CodeNoPlatform           = "no_platform"
	CodeRateLimited          = "rate_limited"
	CodeQuotaExceeded        = "quota_exceeded"
)

// Codes of a failed operation's error (GET /v1/operations/{id}), besides
// the request codes above that apply (not_found, exhausted, no_platform).
const (
	// CodeTaskFailed: a platform task ended with an error.
	CodeTaskFailed = "task_failed"
	// CodeInterrupted: the leader running the operation changed.
	CodeInterrupted = "interrupted"
	// CodePlatformUnavailable: the platform did not answer, or answered
	// with server errors, after retries.
	CodePlatformUnavailable = "platform_unavailable"
	// CodePlatformRejected: the platform refused a request as invalid.
	CodePlatformRejected = "platform_rejected"
	// CodePlatformUnauthorized: the platform refused Moxxie's credentials.
	CodePlatformUnauthorized = "platform_unauthorized"
	// CodeFailed: any other failure.
	CodeFailed   = "failed"
	CodeInternal = "internal"
)

// ErrorResponse is the body of every error response.
type ErrorResponse struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail says what went wrong. Field names the offending JSON field,
// path or query parameter, or header, when there is one.
type ErrorDetail struct {
	Code      string `json:"code"`
	Message   string `json:"message"`
	Field     string `json:"field,omitempty"`
	RequestID string `json:"request_id"`
	// Quota says which quota a refused request would have exceeded
	// (code quota_exceeded).
	Quota *QuotaExceeded `json:"quota,omitempty"`
}

// QuotaExceeded names the quota a request would exceed: the scope
// ("tenant acme", "project acme/web"), the resource, its limit, the usage
// before the request and the amount requested.
type QuotaExceeded struct {
	Scope    string         `json:"scope"`
	Resource quota.Resource `json:"resource"`
	Limit    int64          `json:"limit"`
	Usage    int64          `json:"usage"`
	Request  int64          `json:"request"`
}

// apiError is an error with everything needed to answer it over HTTP.
// Handlers return it (or a Backend or fsm error, which toAPIError maps).
type apiError struct {
	status  int
	code    string
	message string
	field   string
	// retry sets Retry-After: 1 on the response.
	retry bool
	// header holds extra response headers, such as Allow or WWW-Authenticate.
	header map[string]string
	// cause is logged for 5xx answers and never sent to the client.
	cause error
	// quota details a quota_exceeded answer.
	quota *QuotaExceeded
}

// Error describes the error for logs; clients see the JSON body instead.
func (e *apiError) Error() string {
	if e.field != "" {
		return e.code + ": " + e.field + ": " + e.message
	}
	return e.code + ": " + e.message
}

// Unwrap returns the cause, if any.
func (e *apiError) Unwrap() error { return e.cause }

// invalid returns a 400 naming the offending field.
func invalid(field, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: CodeInvalidRequest, field: field, message: fmt.Sprintf(format, args...)}
}

// unauthorized returns a 401 carrying the WWW-Authenticate challenge.
func unauthorized(message, challenge string) *apiError {
	return &apiError{
		status:  http.StatusUnauthorized,
		code:    CodeUnauthorized,
		message: message,
		header:  map[string]string{"WWW-Authenticate": challenge},
	}
}

// unavailable returns a 503 with Retry-After.
func unavailable(code, message string, cause error) *apiError {
	return &apiError{status: http.StatusServiceUnavailable, code: code, message: message, retry: true, cause: cause}
}

// tooLarge returns a 413 naming the limit.
func tooLarge(limit int64) *apiError {
	return &apiError{
		status:  http.StatusRequestEntityTooLarge,
		code:    CodeRequestTooLarge,
		message: "request body exceeds the limit of " + strconv.FormatInt(limit, 10) + " bytes",
	}
}

// internal returns a 500 that reveals nothing of cause to the client.
func internal(cause error) *apiError {
	return &apiError{status: http.StatusInternalServerError, code: CodeInternal, message: "internal error", cause: cause}
}

// notFoundInPath names the path parameter that addressed a missing
// object as the field of its not-found error: DELETE
// /v1/ipam/addresses/nope answers 404 with field "id". An error that names
// a field already, or is about another object (one a body field refers
// to), is returned as it is.
func notFoundInPath(c *call, err error) error {
	var nf *fsm.NotFoundError
	var fe *fsm.FieldError
	var ae *apiError
	if err == nil || !errors.As(err, &nf) || errors.As(err, &fe) || errors.As(err, &ae) {
		return err
	}
	for _, name := range pathParams(c.rt.Path) {
		// Zone names are normalized (lower case, no trailing dot) before
		// the lookup that did not find them.
		if v := c.r.PathValue(name); v == nf.ID || strings.EqualFold(strings.TrimSuffix(v, "."), nf.ID) {
			return &fsm.FieldError{Field: name, Err: err}
		}
	}
	return err
}

// pathParams returns the names of the wildcards of a ServeMux path
// pattern, in order: "id" and "key" of /v1/x/{id}/y/{key...}.
func pathParams(pattern string) []string {
	var names []string
	for seg := range strings.SplitSeq(pattern, "/") {
		if name, ok := strings.CutPrefix(seg, "{"); ok {
			name, _ = strings.CutSuffix(name, "}")
			name, _ = strings.CutSuffix(name, "...")
			if name != "$" && name != "" {
				names = append(names, name)
			}
		}
	}
	return names
}

// toAPIError maps any error a handler returns to its HTTP answer. Unknown
// errors become a 500 whose message reveals nothing; the cause is logged.
func toAPIError(err error) *apiError {
	var ae *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &ae):
		return ae
	case errors.As(err, &mbe):
		return tooLarge(mbe.Limit)
	}
	var qe *quota.ExceededError
	if errors.As(err, &qe) {
		return &apiError{status: http.StatusConflict, code: CodeQuotaExceeded, field: "quota", message: qe.Error(),
			quota: &QuotaExceeded{Scope: qe.Scope, Resource: qe.Resource, Limit: qe.Limit, Usage: qe.Usage, Request: qe.Request}}
	}
	if ae := ipamError(err); ae != nil {
		return ae
	}
	switch {
	case errors.Is(err, fsm.ErrNotFound):
		return &apiError{status: http.StatusNotFound, code: CodeNotFound, message: err.Error()}
	case errors.Is(err, fsm.ErrConflict), errors.Is(err, fsm.ErrAlreadyBootstrapped):
		return &apiError{status: http.StatusConflict, code: CodeConflict, message: err.Error()}
	case errors.Is(err, fsm.ErrIdempotencyMismatch):
		return &apiError{status: http.StatusUnprocessableEntity, code: CodeIdempotencyMismatch, field: headerIdempotencyKey, message: err.Error()}
	case errors.Is(err, fsm.ErrBadSnapshot):
		return &apiError{status: http.StatusBadRequest, code: CodeBadSnapshot, message: err.Error()}
	case errors.Is(err, ErrNoLeader), errors.Is(err, ErrNotLeader):
		return unavailable(CodeNoLeader, err.Error()+"; nothing was proposed: retry", nil)
	case errors.Is(err, ErrLeadershipLost):
		return unavailable(CodeLeadershipLost, err.Error(), nil)
	case errors.Is(err, ErrRestoring):
		return unavailable(CodeRestoring, err.Error(), nil)
	case errors.Is(err, ErrRestoreRunning):
		return &apiError{status: http.StatusConflict, code: CodeConflict, message: err.Error()}
	case errors.Is(err, ErrTimeout):
		return unavailable(CodeTimeout, err.Error(), nil)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return unavailable(CodeTimeout, "request canceled or timed out before it completed", err)
	}
	return internal(err)
}

// ipamInvalid lists the sentinels of input the IPAM validation refuses.
var ipamInvalid = []error{
	fsm.ErrInvalid,
	ipam.ErrInvalidPrefix, ipam.ErrNotCanonical, ipam.ErrZone, ipam.ErrMapped,
	ipam.ErrInvalidAddr, ipam.ErrFamily, ipam.ErrOutside, ipam.ErrInvalidCount,
	ipam.ErrInvalidRange, ipam.ErrInvalidLength, ipam.ErrInvalidHostname,
	ipam.ErrInvalidOwner, ipam.ErrInvalidVLAN, ipam.ErrInvalidVNI,
}

// ipamError maps the errors of the IPAM commands: a *fsm.FieldError
// carries the JSON field at fault, and the sentinel it wraps decides the
// status. It returns nil for any other error.
func ipamError(err error) *apiError {
	var fe *fsm.FieldError
	hasField := errors.As(err, &fe)
	ae := &apiError{message: err.Error()}
	if hasField {
		ae.field = fe.Field
	}
	switch {
	case errors.Is(err, ipam.ErrExhausted):
		ae.status, ae.code = http.StatusConflict, CodeExhausted
	case errors.Is(err, ipam.ErrInUse), errors.Is(err, ipam.ErrQuarantined):
		ae.status, ae.code = http.StatusConflict, CodeConflict
	case errors.Is(err, ipam.ErrNotAllocated):
		ae.status, ae.code = http.StatusNotFound, CodeNotFound
	case isAny(err, ipamInvalid):
		ae.status, ae.code = http.StatusBadRequest, CodeInvalidRequest
	case !hasField:
		return nil
	case errors.Is(err, fsm.ErrConflict):
		ae.status, ae.code = http.StatusConflict, CodeConflict
	case errors.Is(err, fsm.ErrNotFound):
		ae.status, ae.code = http.StatusNotFound, CodeNotFound
	default:
		return nil
	}
	return ae
}

// isAny reports whether err matches any of targets.
func isAny(err error, targets []error) bool {
	for _, t := range targets {
		if errors.Is(err, t) {
			return true
		}
	}
	return false
}

// writeError answers the request with err as a JSON error body.
func (s *server) writeError(w *responseWriter, r *http.Request, err error) {
	ae := toAPIError(err)
	if w.wroteHeader {
		// Too late to answer with an error: the response has begun.
		s.log.ErrorContext(r.Context(), "error after the response started", "path", r.URL.Path, "error", err)
		return
	}
	if ae.status >= 500 {
		attrs := []any{"method", r.Method, "path", r.URL.Path, "status", ae.status}
		if ae.cause != nil {
			attrs = append(attrs, "error", ae.cause)
		} else {
			attrs = append(attrs, "error", ae.message)
		}
		if ae.status == http.StatusInternalServerError {
			s.log.ErrorContext(r.Context(), "request failed", attrs...)
		} else {
			s.log.DebugContext(r.Context(), "request unavailable", attrs...)
		}
	}
	h := w.Header()
	for k, v := range ae.header {
		h.Set(k, v)
	}
	if ae.retry {
		h.Set("Retry-After", "1")
	}
	writeJSON(w, ae.status, ErrorResponse{Error: ErrorDetail{
		Code:      ae.code,
		Message:   ae.message,
		Field:     ae.field,
		RequestID: w.reqID,
		Quota:     ae.quota,
	}})
}
