package pvesim

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/pvesim/schema"
)

// maxPost is the largest request body pve-http-server accepts.
const maxPost = 512 * 1024

// statusNoRoute is the status pveproxy answers with when it cannot reach
// the node a request must be proxied to (AnyEvent::HTTP's 595).
const statusNoRoute = 595

// handler serves one API route. It returns the value of "data", or an
// error: an *apiError, or any other error for a plain 500.
type handler func(q *req) (any, error)

// apiError is an error answer as Proxmox gives it: a status, a message that
// is also the HTTP reason phrase, and for 400s the failing parameters.
type apiError struct {
	status int
	msg    string
	errs   map[string]string
}

func (e *apiError) Error() string { return e.msg }

// errf is a 500 with a formatted message, like a Perl handler's die.
func errf(format string, args ...any) *apiError {
	return &apiError{status: http.StatusInternalServerError, msg: fmt.Sprintf(format, args...)}
}

// paramErr is a 400 naming one failing parameter, like raise_param_exc.
func paramErr(param, format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, msg: "Parameter verification failed.",
		errs: map[string]string{param: fmt.Sprintf(format, args...)}}
}

// req is one API request being handled.
type req struct {
	s      *Sim
	r      *http.Request
	route  Route
	rel    string // path below /api2/json
	user   string // the authenticated user; "root@pam!moxxie" for a token
	params map[string][]string
	total  int // the "total" result attribute of list endpoints
}

func (q *req) str(k string) string {
	if vs := q.params[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}

// has reports whether parameter k is given; an empty value counts as not
// given, as in Proxmox.
func (q *req) has(k string) bool { return q.str(k) != "" }

func (q *req) intv(k string, def int) int {
	if !q.has(k) {
		return def
	}
	return atoiDefault(q.str(k), def)
}

func (q *req) boolv(k string) bool { return boolValue(q.str(k)) }

func (q *req) vmid() int { return atoiDefault(q.str("vmid"), 0) }

// nodeName is the node of a /nodes/{node}/ route.
func (q *req) nodeName() string { return q.str("node") }

func (s *Sim) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if rest, ok := strings.CutPrefix(r.URL.Path, "/pvesim/v1/"); ok {
		s.serveAdmin(w, r, rest)
		return
	}
	rel, ok := strings.CutPrefix(r.URL.Path, "/api2/json")
	if !ok || (rel != "" && rel[0] != '/') {
		http.NotFound(w, r)
		return
	}
	s.requests.Add(1)
	start := time.Now()
	status := s.serveAPI(w, r, rel)
	if status != 0 {
		s.logf("%s /api2/json%s %d %s", r.Method, rel, status, time.Since(start).Round(time.Microsecond))
	}
}

// serveAPI handles one request below /api2/json and returns the status it
// answered with (0 when it answered nothing).
func (s *Sim) serveAPI(w http.ResponseWriter, r *http.Request, rel string) int {
	f := s.faults()
	if !s.applyDelayFaults(r, f) {
		return 0
	}
	if rel = strings.TrimRight(rel, "/"); rel == "" {
		rel = "/"
	}
	user, aerr := s.authenticate(r, rel)
	if aerr != nil {
		return writeError(w, r, aerr)
	}
	if f.ErrorRate > 0 && s.randFloat() < f.ErrorRate {
		return writeError(w, r, errf("injected fault: internal server error"))
	}
	// Path parameters are split out of the escaped path, so that a
	// volume ID with an escaped "/" (local:backup%2Fvzdump-...) stays one
	// parameter, as pve-http-server splits the path before decoding it.
	ep, pathParams, ok := s.schema.Lookup(r.Method, escapedRel(r))
	for k, v := range pathParams {
		if u, err := url.PathUnescape(v); err == nil {
			pathParams[k] = u
		}
	}
	var h handler
	if ok {
		h = s.handlers[Route{r.Method, ep.Path}]
	}
	if h == nil {
		return writeError(w, r, &apiError{status: http.StatusNotImplemented, msg: fmt.Sprintf("Method '%s %s' not implemented", r.Method, rel)})
	}
	params, aerr := readParams(r)
	if aerr != nil {
		return writeError(w, r, aerr)
	}
	for k, v := range pathParams {
		if old, ok := params[k]; ok && (len(old) != 1 || old[0] != v) {
			return writeError(w, r, paramErr(k, "duplicate parameter (already defined in URI) with conflicting values!"))
		}
		params[k] = []string{v}
	}
	if name, ok := pathParams["node"]; ok {
		if name == "localhost" {
			name = s.localNode()
			params["node"] = []string{name}
		}
		if aerr := s.checkNodeReachable(name); aerr != nil {
			return writeError(w, r, aerr)
		}
	}
	if errs := ep.Validate(params); len(errs) > 0 {
		return writeError(w, r, &apiError{status: http.StatusBadRequest, msg: "Parameter verification failed.", errs: errs})
	}
	if r.Method != http.MethodGet && rel != "/access/ticket" && !s.quorate() {
		return writeError(w, r, errf("cluster not ready - no quorum?"))
	}
	q := &req{s: s, r: r, route: Route{r.Method, ep.Path}, rel: rel, user: user, params: params}
	data, err := h(q)
	if err != nil {
		var ae *apiError
		if !errors.As(err, &ae) {
			ae = errf("%s", err.Error())
		}
		return writeError(w, r, ae)
	}
	if raw, ok := data.(rawJSON); ok {
		setHeaders(w.Header())
		w.Header().Set("Content-Length", strconv.Itoa(len(raw)+len(`{"data":}`)))
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"data":`)
		_, _ = w.Write(raw)
		_, _ = io.WriteString(w, "}")
		return http.StatusOK
	}
	body := map[string]any{"data": data}
	if q.total > 0 {
		body["total"] = q.total
	}
	b, err := json.Marshal(body)
	if err != nil {
		return writeError(w, r, errf("%s", err.Error()))
	}
	setHeaders(w.Header())
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(b)
	return http.StatusOK
}

// escapedRel is the request's path below /api2/json as it was sent,
// without a trailing slash.
func escapedRel(r *http.Request) string {
	rel := strings.TrimPrefix(r.URL.EscapedPath(), "/api2/json")
	if rel = strings.TrimRight(rel, "/"); rel == "" {
		rel = "/"
	}
	return rel
}

// readParams reads query and body parameters as pve-http-server does: a
// body only for POST and PUT (JSON or form encoded), query parameters
// overriding body ones.
func readParams(r *http.Request) (map[string][]string, *apiError) {
	params := map[string][]string{}
	if r.Method == http.MethodPost || r.Method == http.MethodPut {
		body, err := io.ReadAll(io.LimitReader(r.Body, maxPost+1))
		if err != nil {
			return nil, errf("unable to read request body - %v", err)
		}
		if len(body) > maxPost {
			return nil, &apiError{status: http.StatusNotImplemented, msg: "for data too large"}
		}
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		switch {
		case len(bytes.TrimSpace(body)) == 0:
		case ct == "application/json":
			dec := json.NewDecoder(bytes.NewReader(body))
			dec.UseNumber()
			var obj map[string]any
			if err := dec.Decode(&obj); err != nil {
				return nil, errf("malformed JSON string: %v", err)
			}
			params = schema.ParamsFromJSON(obj)
		case ct == "" || ct == "application/x-www-form-urlencoded":
			vals, err := url.ParseQuery(string(body))
			if err != nil {
				return nil, errf("unable to parse request body - %v", err)
			}
			for k, v := range vals {
				params[k] = v
			}
		default:
			return nil, &apiError{status: 506, msg: fmt.Sprintf("upload 'Content-Type '%s' not implemented", ct)}
		}
	} else if r.ContentLength > 0 {
		return nil, &apiError{status: http.StatusNotImplemented, msg: fmt.Sprintf("Unexpected content for method '%s'", r.Method)}
	}
	for k, v := range r.URL.Query() {
		params[k] = v
	}
	return params, nil
}

func setHeaders(h http.Header) {
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Server", "pve-api-daemon/3.0")
	h.Set("Cache-Control", "max-age=0")
	h.Set("Pragma", "no-cache")
}

// writeError answers with e the way pve-http-server does: the message is
// the reason phrase of the status line and the "message" of the body; a
// 400 also lists the failing parameters; a 401 says only {"data":null}; a
// 595 has no body. Proxmox closes
// the connection after an error.
func writeError(w http.ResponseWriter, r *http.Request, e *apiError) int {
	text := strings.TrimSpace(e.msg)
	if i := strings.IndexAny(text, "\r\n"); i >= 0 {
		text = text[:i]
	}
	var body []byte
	switch {
	case e.status == statusNoRoute:
	case e.status == http.StatusUnauthorized:
		body = []byte(`{"data":null}`)
	case e.status == http.StatusBadRequest && len(e.errs) > 0:
		body = schema.ErrorBody(e.errs)
	default:
		body, _ = json.Marshal(map[string]any{"data": nil, "message": strings.TrimSpace(e.msg) + "\n"})
	}
	writeStatus(w, r, e.status, text, body)
	return e.status
}

// writeStatus writes a response whose status line carries text as its
// reason phrase. net/http always writes the standard phrase, so on an
// HTTP/1 connection the response is written by hand; elsewhere (HTTP/2,
// recorders) the standard phrase has to do.
func writeStatus(w http.ResponseWriter, r *http.Request, code int, text string, body []byte) {
	h := w.Header()
	setHeaders(h)
	if body == nil {
		h.Del("Content-Type")
	}
	hj, ok := w.(http.Hijacker)
	if !ok || text == "" || text == http.StatusText(code) {
		w.WriteHeader(code)
		_, _ = w.Write(body)
		return
	}
	// Read what is left of the request first: closing a connection with
	// unread data makes the kernel reset it, and the client would see a
	// reset instead of the answer.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxPost+1))
	conn, buf, err := hj.Hijack()
	if err != nil {
		w.WriteHeader(code)
		_, _ = w.Write(body)
		return
	}
	defer conn.Close()
	h.Set("Content-Length", strconv.Itoa(len(body)))
	h.Set("Connection", "close")
	h.Set("Date", time.Now().UTC().Format(http.TimeFormat))
	bw := bufio.NewWriter(conn)
	if buf != nil && buf.Writer != nil {
		bw = buf.Writer
	}
	fmt.Fprintf(bw, "HTTP/1.1 %d %s\r\n", code, sanitizeReason(text))
	_ = h.Write(bw)
	_, _ = bw.WriteString("\r\n")
	_, _ = bw.Write(body)
	_ = bw.Flush()
}

// sanitizeReason keeps a reason phrase to printable ASCII.
func sanitizeReason(s string) string {
	b := []byte(s)
	for i, c := range b {
		if c < 0x20 || c > 0x7e {
			b[i] = '?'
		}
	}
	return string(b)
}

// localNode is the node the API endpoint runs on: the first one.
func (s *Sim) localNode() string {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.nodes[0].name
}

// checkNodeReachable fails like pveproxy when a request must be proxied to
// a node it cannot reach: an unknown name fails the address lookup, an
// offline node answers 595.
func (s *Sim) checkNodeReachable(name string) *apiError {
	s.mu.RLock()
	n := s.nodeByName[name]
	online := n != nil && n.online
	s.mu.RUnlock()
	if n == nil {
		return errf("hostname lookup '%s' failed - failed to get address info for: %s: Name or service not known", name, name)
	}
	if !online {
		return &apiError{status: statusNoRoute, msg: "No route to host"}
	}
	return nil
}

// quorate reports whether a majority of the nodes is online.
func (s *Sim) quorate() bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.quorateLocked()
}

func (s *Sim) quorateLocked() bool {
	online := 0
	for _, n := range s.nodes {
		if n.online {
			online++
		}
	}
	return online*2 > len(s.nodes)
}
