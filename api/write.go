package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/moxxie/moxxie/fsm"
)

// maxIdempotencyKeyLen bounds the Idempotency-Key header.
const maxIdempotencyKeyLen = 255

// RequestHash fingerprints a write for idempotency: the hex SHA-256 of
// method, "\n", path, "\n" and the body. The API passes the URL path
// followed by "?" and the sorted query string when there is one, so that
// ?cas=1 and ?cas=2 are different requests.
func RequestHash(method, path string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(method))
	h.Write([]byte{'\n'})
	h.Write([]byte(path))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// writeMeta stamps what the FSM must not compute itself: the leader's
// clock, the caller, the request ID, the audit record and, when the
// Idempotency-Key header is set, the key and the request's fingerprint.
func (s *server) writeMeta(c *call) (fsm.WriteMeta, error) {
	m := fsm.WriteMeta{
		Now:       s.b.Now().UnixNano(),
		Actor:     c.actor(),
		RequestID: c.w.reqID,
		Audit:     auditInfo(c),
	}
	var err error
	m.IdempotencyKey, m.RequestHash, err = idempotency(c)
	return m, err
}

// keyed reports whether the request has an Idempotency-Key header, empty
// or not: a handler that would answer without a write when there is none
// leaves an empty or repeated one to idempotency, which refuses it.
func keyed(c *call) bool {
	return len(c.r.Header.Values(headerIdempotencyKey)) > 0
}

// idempotency returns the request's Idempotency-Key, checked, and its
// fingerprint; both are empty when the header is not set. An empty key, or
// more than one, is refused rather than read as no key or the first.
func idempotency(c *call) (key, hash string, err error) {
	keys := c.r.Header.Values(headerIdempotencyKey)
	switch {
	case len(keys) == 0:
		return "", "", nil
	case len(keys) > 1:
		return "", "", invalid(headerIdempotencyKey, "given %d times: send one key", len(keys))
	case keys[0] == "":
		return "", "", invalid(headerIdempotencyKey, "is empty: send a key, or leave the header out")
	}
	key = keys[0]
	if len(key) > maxIdempotencyKeyLen {
		return "", "", invalid(headerIdempotencyKey, "must be at most %d characters", maxIdempotencyKeyLen)
	}
	for i := 0; i < len(key); i++ {
		if key[i] < ' ' || key[i] > '~' {
			return "", "", invalid(headerIdempotencyKey, "must be printable ASCII")
		}
	}
	path := c.r.URL.Path
	if c.r.URL.RawQuery != "" {
		path += "?" + c.q().Encode()
	}
	return key, RequestHash(c.r.Method, path, compactJSON(c.body)), nil
}

// compactJSON returns body without the whitespace between JSON tokens, so
// that a request sent again formatted otherwise is the same request; body
// itself when it has none or is not JSON. The order of members still
// counts.
func compactJSON(body []byte) []byte {
	if !bytes.ContainsAny(body, " \t\r\n") {
		return body
	}
	var b bytes.Buffer
	if json.Compact(&b, body) != nil {
		return body
	}
	return b.Bytes()
}

// apply proposes cmd and answers with its result: status and the value
// (passed through render when given) on success, a mapped error otherwise.
// A replayed idempotent result keeps the original status and is marked
// with Idempotent-Replayed: true.
func (s *server) apply(c *call, cmd fsm.Command, status int, render func(any) (any, error)) error {
	if m := cmd.Meta(); m.Audit == nil {
		m.Audit = auditInfo(c) // a command whose handler built its own WriteMeta
	}
	res, index, err := s.b.Apply(c.r.Context(), cmd)
	if err != nil {
		return err
	}
	if index != 0 {
		c.setIndex(index)
	}
	if res == nil {
		return internal(errNilResult)
	}
	c.audited = true
	if res.Err != nil {
		return res.Err
	}
	v := res.Value
	if render == nil {
		if b := res.ValueJSON(); b != nil {
			v = json.RawMessage(b) // encoded already, or faster than encoding/json
		}
	}
	if render != nil {
		if v, err = render(v); err != nil {
			return internal(err)
		}
	}
	if res.Replayed {
		c.w.Header().Set(headerReplayed, "true")
	}
	if target := dnsTarget(c, s.b.State(), index, res.Replayed); target != 0 {
		// The write changed what DNS serves: the server that answers
		// the client answers once its DNS does.
		c.w.Header().Set(headerDNSIndex, strconv.FormatUint(target, 10))
		if !forwardedByPeer(c.r) && !s.waitDNS(c, target) {
			dnsNotYet(c.w.Header())
		}
	}
	if c.dnsName != "" && s.b.State().ZoneOf(c.dnsName) == nil {
		// The address took a name that does not resolve until a zone
		// holds it (a typo in the domain, or a zone not yet made). Read
		// after the write, from the state that holds it. RFC 7234's
		// form, which Kubernetes clients print too.
		msg := fmt.Sprintf("no DNS zone serves %s: it resolves once a zone holds it (POST /v1/dns/zones, moxxiectl dns zone create)", c.dnsName)
		c.w.Header().Set("Warning", "299 - "+strconv.Quote(msg))
	}
	writeJSON(c.w, status, v)
	return nil
}

// propose stamps cmd with the request's WriteMeta, validates it when it
// can (a 4xx naming the field, before anything is proposed) and applies
// it, answering status with render's view of the result.
func (s *server) propose(c *call, cmd fsm.Command, status int, render func(any) (any, error)) error {
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	*cmd.Meta() = meta
	if v, ok := cmd.(interface{ Validate() error }); ok {
		if err := v.Validate(); err != nil {
			return err
		}
	}
	return s.apply(c, cmd, status, render)
}

// replayFirst wraps the handler of a write that starts an operation (its
// answer always status, 202 Accepted): a retry with an Idempotency-Key
// already used for the same request is answered from the stored result
// before the handler checks the objects the request names. Those checks
// read the inventory, which the operation itself changes: after a VM
// delete or a volume move has run, the retry would otherwise get the
// check's 404 (or 400) instead of the first answer. A key used for
// another request gets 422, as from the FSM.
func replayFirst(status int, h func(*server, *call) error) func(*server, *call) error {
	return func(s *server, c *call) error {
		key, hash, err := idempotency(c)
		if err != nil {
			return err
		}
		if key == "" {
			return h(s, c)
		}
		stored, result, ok := s.b.State().IdempotentResult(c.actor(), key)
		switch {
		case !ok:
			return h(s, c)
		case stored != hash:
			return fsm.ErrIdempotencyMismatch
		}
		c.w.Header().Set(headerReplayed, "true")
		writeJSON(c.w, status, json.RawMessage(result))
		return nil
	}
}

// errNilResult means a Backend returned neither a result nor an error.
var errNilResult = errors.New("api: backend returned no result and no error")

// resultOf returns a command's result as a *T: the value Apply returned,
// or, for a replay of an idempotent request, the JSON the first one
// stored.
func resultOf[T any](v any) (*T, error) {
	switch r := v.(type) {
	case *T:
		return r, nil
	case json.RawMessage:
		var out T
		if err := json.Unmarshal(r, &out); err != nil {
			return nil, fmt.Errorf("decode replayed result: %w", err)
		}
		return &out, nil
	}
	return nil, fmt.Errorf("unexpected result %T", v)
}

// dnsWaitLimit bounds how long an answer to a write that changed what DNS
// serves waits for the answering server's DNS to serve it: the promise
// that every server shows a change within a second.
const dnsWaitLimit = time.Second

// dnsRoutes are the writes that may change what DNS serves whatever
// their body: zones and prefixes (their reverse zones). An address
// allocated or created does only when it takes a name (call.dnsName), and
// one changed or released when it has or takes one (call.dnsNamed).
var dnsRoutes = map[string]bool{
	"POST /v1/ipam/prefixes":                      true,
	"PATCH /v1/ipam/prefixes/{id}":                true,
	"DELETE /v1/ipam/prefixes/{id}":               true,
	"POST /v1/ipam/prefixes/{id}/allocate-prefix": true,
	"POST /v1/dns/zones":                          true,
	"PATCH /v1/dns/zones/{name}":                  true,
	"DELETE /v1/dns/zones/{name}":                 true,
}

// dnsTarget returns the raft index from which DNS shows the write of the
// call, applied at index (a replay: answered at index from the record of
// an earlier one), or 0 when it changed nothing DNS serves. A write that
// may change DNS changed it when DNS's index reached its own; a replay's
// write came earlier, so DNS's index now holds it.
func dnsTarget(c *call, st *fsm.Store, index uint64, replayed bool) uint64 {
	if index == 0 || c.dnsName == "" && !c.dnsNamed && !dnsRoutes[c.rt.Pattern()] {
		return 0
	}
	dns := st.DNSIndex()
	switch {
	case replayed:
		return dns
	case dns >= index:
		// This write, or one after it (a later write is served with it).
		return index
	}
	return 0
}

// waitDNS waits, up to dnsWaitLimit, until this server's DNS answers from
// a state that holds the write of raft index index, so that a client that
// asks this server's DNS right after the answer finds the change there
// (and no NXDOMAIN that resolvers would keep for the negative TTL). It
// reports whether it does.
func (s *server) waitDNS(c *call, index uint64) bool {
	ctx, cancel := context.WithTimeout(c.r.Context(), dnsWaitLimit)
	defer cancel()
	if err := s.b.WaitDNS(ctx, index); err != nil {
		if c.r.Context().Err() == nil {
			s.log.WarnContext(c.r.Context(), "answering a write before this server's DNS serves it", "index", index, "waited", dnsWaitLimit)
		}
		return false
	}
	return true
}

// dnsNotYet marks an answer whose server's DNS did not serve the write in
// time: no X-Moxxie-DNS-Index, and a Warning that says so.
func dnsNotYet(h http.Header) {
	h.Del(headerDNSIndex)
	h.Add("Warning", `299 - "this server's DNS does not answer with the change yet: it shows it within a second or two; ask again or ask another server"`)
}
