package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/audit"
	"github.com/moxxie/moxxie/fsm"
)

// The audit log records, in the replicated state, every request that
// tries to change something and every refused authentication:
//
//   - A write stamps fsm.AuditInfo into its command (writeMeta), and the
//     FSM appends the entry in the same transaction as the write, or with
//     the error code when the command is refused.
//   - A write that ends without applying an audited command (refused by
//     validation before it is proposed, or a cluster change, snapshot
//     restore or secret rotation, which do not go through writeMeta) is
//     recorded by auditWrite with an AuditRecord after its handler;
//     refusals are rate limited like refused authentications.
//   - A refused authentication or authorization is recorded by
//     auditAuthFailure. Writes and default reads are authenticated on the
//     leader (followers forward them first), so the leader proposes the
//     record itself. A follower that refuses a ?stale read forwards the
//     request to the leader instead of answering, so that the leader
//     records it (and, should the follower only lag behind a new token,
//     serves it); without a leader it answers the refusal unrecorded.
//     Records are rate limited per server and client address; the excess
//     is dropped and counted in moxxie_audit_records_dropped_total.
//
// Commands the servers propose themselves are not audited.

// Rate limit of auth-failure records per client address.
const (
	authAuditRate  = 10 // records per second
	authAuditBurst = 20
)

// Limits of GET /v1/audit.
const (
	defaultAuditLimit = 100
	maxAuditLimit     = 10000
)

// headerForwardedFor carries the client's address from a follower to the
// leader; it is trusted only on the peer forwarding link.
const headerForwardedFor = "X-Forwarded-For"

// AuditList is the body of GET /v1/audit.
type AuditList struct {
	Entries []*audit.Entry `json:"entries"`
	Head    audit.Head     `json:"head"`
}

// AuditCheckpointList is the body of GET /v1/audit/checkpoints.
type AuditCheckpointList struct {
	Checkpoints []*audit.Checkpoint `json:"checkpoints"`
}

// AuditVerifyResult is the body of GET /v1/audit/verify. OK is false when
// the stored log does not verify; Error then names the first bad entry.
type AuditVerifyResult struct {
	OK     bool          `json:"ok"`
	Report *audit.Report `json:"report,omitempty"`
	Error  *AuditProblem `json:"error,omitempty"`
}

// AuditProblem describes the first bad entry of a log.
type AuditProblem struct {
	Kind    audit.Kind `json:"kind"`
	Seq     uint64     `json:"seq"`
	Message string     `json:"message"`
}

// auditSource returns the client's address: the one a peer server
// forwarded the request for, or the connection's.
func auditSource(r *http.Request) string {
	if r.TLS == nil && r.Header.Get(headerForwarded) != "" {
		if fwd := strings.TrimSpace(r.Header.Get(headerForwardedFor)); fwd != "" {
			return fwd
		}
	}
	return r.RemoteAddr
}

// auditInfo returns the audit fields of a write.
func auditInfo(c *call) *fsm.AuditInfo {
	a := &fsm.AuditInfo{Source: auditSource(c.r), Action: c.rt.Pattern(), Object: c.r.URL.Path}
	if c.token != nil {
		a.Role, a.Tenant = c.token.Role, c.token.Tenant
	}
	return a
}

// auditWrite records a write that ended without applying an audited
// command: one its handler refused before proposing anything (with the
// error code; rate limited like refused authentications, since a client
// can send them as fast as it likes), one whose outcome raft could not
// report, and a cluster change, restore or rotation, which do not go
// through writeMeta. It runs on the server that served the write, the
// leader. A write whose handler panicked is not recorded (the panic goes
// on to the recovery middleware).
func (s *server) auditWrite(c *call, errp *error) {
	if p := recover(); p != nil {
		panic(p)
	}
	if c.rt.Kind != KindWrite || c.audited {
		return
	}
	if *errp == nil {
		s.proposeAudit(c, c.actor(), auditInfo(c), audit.ResultOK)
		return
	}
	if !authAudits.allow(s.b.ID()+"|"+addressOf(auditSource(c.r)), auditClock()) {
		s.metrics.auditDropped.Inc()
		return
	}
	s.proposeAudit(c, c.actor(), auditInfo(c), toAPIError(*errp).code)
}

// auditAuthFailure records a refused authentication or authorization and
// returns err, or forwards the request to the leader to record it there
// (see above).
func (s *server) auditAuthFailure(c *call, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || (ae.status != http.StatusUnauthorized && ae.status != http.StatusForbidden) {
		return err
	}
	if !s.b.IsLeader() {
		if c.r.Header.Get(headerForwarded) != "" {
			return err
		}
		if ferr := s.forward(c); ferr != nil {
			return err
		}
		return nil
	}
	if !authAudits.allow(s.b.ID()+"|"+addressOf(auditSource(c.r)), auditClock()) {
		s.metrics.auditDropped.Inc()
		return err
	}
	a := auditInfo(c)
	a.Action = fsm.AuditAuthFailed + " " + c.rt.Pattern()
	tokenID := ""
	if tok := s.bearerToken(c.r); tok != nil {
		tokenID, a.Role, a.Tenant = tok.AccessorID, tok.Role, tok.Tenant
	} else if id, ok := clientCertIdentity(c.r); ok && c.r.Header.Get("Authorization") == "" {
		tokenID, a.Role = certAccessorPrefix+id.name, string(id.role)
	}
	s.proposeAudit(c, tokenID, a, ae.code)
	return err
}

// proposeAudit applies an AuditRecord; a failure is logged, not answered.
func (s *server) proposeAudit(c *call, tokenID string, a *fsm.AuditInfo, result string) {
	cmd := &fsm.AuditRecordRequest{
		WriteMeta: fsm.WriteMeta{Now: s.b.Now().UnixNano(), Actor: tokenID, RequestID: c.w.reqID, Audit: a},
		Result:    result,
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(c.r.Context()), 10*time.Second)
	defer cancel()
	res, _, err := s.b.Apply(ctx, cmd)
	if err == nil && res != nil {
		err = res.Err
	}
	if err != nil {
		s.log.WarnContext(c.r.Context(), "recording an audit entry failed", "action", a.Action, "result", result, "error", err)
	}
}

// bearerToken returns the token the request's bearer secret names, or nil.
func (s *server) bearerToken(r *http.Request) *fsm.Token {
	scheme, secret, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return nil
	}
	hash := HashSecret(secret)
	tok, err := s.b.State().TokenBySecretHash(hash)
	if err != nil || tok == nil || subtle.ConstantTimeCompare([]byte(tok.SecretHash), []byte(hash)) != 1 {
		return nil
	}
	return tok
}

// addressOf returns the host of a host:port address.
func addressOf(hostport string) string {
	if host, _, err := net.SplitHostPort(hostport); err == nil {
		return host
	}
	return hostport
}

// authAudits rate-limits auth-failure records by server and address. It
// is shared by the servers of one process (tests run several), which is
// why its keys name the server.
var authAudits = &auditLimiter{buckets: map[string]*auditBucket{}}

// auditClock is the rate limiter's clock; tests stop it.
var auditClock = time.Now

type auditLimiter struct {
	mu      sync.Mutex
	buckets map[string]*auditBucket // guarded by mu
}

type auditBucket struct {
	tokens float64
	last   time.Time
}

// allow takes a token from key's bucket.
func (l *auditLimiter) allow(key string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buckets) > 10000 {
		for k, b := range l.buckets {
			if now.Sub(b.last) > time.Minute {
				delete(l.buckets, k)
			}
		}
	}
	b := l.buckets[key]
	if b == nil {
		b = &auditBucket{tokens: authAuditBurst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(authAuditBurst, b.tokens+now.Sub(b.last).Seconds()*authAuditRate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// auditFilter reads the query of the audit reads.
func auditFilter(c *call, defLimit int) (fsm.AuditFilter, error) {
	f := fsm.AuditFilter{Limit: defLimit, TokenID: c.q().Get("token"), Action: c.q().Get("action")}
	if v := c.q().Get("since_seq"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return f, invalid("since_seq", "must be a sequence number")
		}
		f.SinceSeq = n
	}
	if v := c.q().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return f, invalid("limit", "must be 1-%d", maxAuditLimit)
		}
		f.Limit = n
	}
	if v := c.q().Get("last"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxAuditLimit {
			return f, invalid("last", "must be 1-%d", maxAuditLimit)
		}
		if c.q().Has("limit") {
			return f, invalid("last", "take either limit (the oldest entries from since_seq) or last (the newest), not both")
		}
		f.Last = n
	}
	return f, nil
}

// handleAuditList lists audit entries in order, the oldest from
// ?since_seq or the ?last newest; it supports blocking queries, so a SIEM
// can follow the log with ?since_seq and ?index.
func (s *server) handleAuditList(c *call) error {
	f, err := auditFilter(c, defaultAuditLimit)
	if err != nil {
		return err
	}
	var head audit.Head
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*audit.Entry, error) {
		idx, l, err := st.AuditEntries(ws, f)
		if err == nil {
			head, err = st.AuditHead()
		}
		return idx, l, err
	}, func(l []*audit.Entry) any { return AuditList{Entries: l, Head: head} })
}

// handleAuditCheckpoints lists the stored checkpoints.
func (s *server) handleAuditCheckpoints(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*audit.Checkpoint, error) {
		return st.AuditCheckpoints(ws)
	}, func(l []*audit.Checkpoint) any { return AuditCheckpointList{Checkpoints: l} })
}

// handleAuditExport streams the log as JSON lines from one consistent
// read: every entry from ?since_seq, each checkpoint after the entry it
// signs.
func (s *server) handleAuditExport(c *call) error {
	f, err := auditFilter(c, 0)
	if err != nil {
		return err
	}
	for _, p := range []string{"limit", "last", "token", "action"} {
		if c.q().Has(p) {
			return invalid(p, "an export holds the whole log from since_seq; filter it afterwards")
		}
	}
	var x *audit.ExportWriter
	err = s.b.State().AuditLog(f.SinceSeq, func(head audit.Head, cps []audit.Checkpoint) error {
		cps = s.exportCheckpoint(c, head, cps)
		c.w.Header().Set("Content-Type", "application/x-ndjson")
		c.w.Header().Set("Content-Disposition", `attachment; filename="moxxie-audit.jsonl"`)
		c.setIndex(s.b.State().LatestIndex())
		c.w.WriteHeader(http.StatusOK)
		x = audit.NewExportWriter(c.w, cps)
		return nil
	}, func(e *audit.Entry) error { return x.Write(e) })
	if err == nil {
		err = x.Close()
	}
	if err != nil {
		// The status is sent: all that is left is to cut the stream.
		s.log.WarnContext(c.r.Context(), "audit export failed", "error", err)
	}
	return nil
}

// auditSigner is implemented by a Backend that can sign a checkpoint of
// the audit head (node.Server with an audit_key_file).
type auditSigner interface {
	SignAuditHead(head audit.Head) (*audit.Checkpoint, error)
}

// exportCheckpoint appends to cps a checkpoint of head signed now, when
// the head has none and the backend can sign, so that an export's tail
// is covered by a signature too. It is not stored.
func (s *server) exportCheckpoint(c *call, head audit.Head, cps []audit.Checkpoint) []audit.Checkpoint {
	signer, ok := s.b.(auditSigner)
	if !ok || head.Seq == 0 || (len(cps) > 0 && cps[len(cps)-1].Seq >= head.Seq) {
		return cps
	}
	cp, err := signer.SignAuditHead(head)
	if err != nil {
		s.log.DebugContext(c.r.Context(), "audit export without a final checkpoint", "error", err)
		return cps
	}
	return append(cps, *cp)
}

// handleAuditVerify verifies the stored log. A log that does not verify
// is answered 200 with ok false and the first bad entry: the request
// worked, the log did not.
func (s *server) handleAuditVerify(c *call) error {
	var entries []audit.Entry
	var cps []audit.Checkpoint
	err := s.b.State().AuditLog(0, func(_ audit.Head, all []audit.Checkpoint) error {
		cps = all
		return nil
	}, func(e *audit.Entry) error {
		entries = append(entries, *e)
		return nil
	})
	if err != nil {
		return internal(err)
	}
	rep, err := audit.Verify(entries, cps, audit.Options{})
	out := AuditVerifyResult{OK: err == nil, Report: rep}
	var te *audit.TamperError
	if errors.As(err, &te) {
		out.Error = &AuditProblem{Kind: te.Kind, Seq: te.Seq, Message: te.Error()}
	} else if err != nil {
		return internal(err)
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}
