package dns

import (
	"context"
	"slices"
	"strings"
	"sync/atomic"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/fall"
	"github.com/miekg/dns"
)

// pluginName is the plugin's name in a Corefile.
const pluginName = "moxxie"

// Moxxie is the plugin handler. It answers for the zones of its Source with
// answers built ahead of queries, and passes names outside every zone to the
// next plugin.
type Moxxie struct {
	// Next is the next plugin in the chain.
	Next plugin.Handler
	// Fall lists the zones in which a name that does not exist is passed to
	// the next plugin instead of answered with NXDOMAIN.
	Fall fall.F

	index atomic.Pointer[index]
	// ready is false until the answers in index may be served: they were
	// built, and their source says they are current (GatedSource).
	ready   atomic.Bool
	metrics *serverMetrics
	// loopLog and errLog throttle the log lines about forwarding loops
	// and about queries that failed on the UDP fast path's sockets (as
	// the errors plugin's consolidate does for CoreDNS's).
	loopLog, errLog throttle
}

// newMoxxie returns a handler serving nothing until load is called, with
// metrics labelled with server.
func newMoxxie(server string) *Moxxie {
	m := &Moxxie{metrics: newServerMetrics(server)}
	m.index.Store(buildIndex(nil))
	return m
}

// Name implements plugin.Handler.
func (m *Moxxie) Name() string { return pluginName }

// ServeDNS implements plugin.Handler.
func (m *Moxxie) ServeDNS(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	if rcode, bad := refuse(r); bad {
		m.metrics.count(qtype, rcode)
		return dns.RcodeSuccess, m.writeRcode(w, r, rcode)
	}
	if !m.ready.Load() {
		return m.notReady(w, r)
	}
	if len(r.Question) == 0 {
		return m.pass(ctx, w, r)
	}
	q := r.Question[0]
	qname := strings.ToLower(q.Name)
	ix := m.index.Load()
	a, z, exists := ix.lookup(qname, q.Qtype)
	switch {
	case a != nil:
	case z == nil:
		return m.pass(ctx, w, r)
	case !exists && m.Fall.Through(qname):
		return m.pass(ctx, w, r)
	}

	if a != nil {
		m.metrics.count(q.Qtype, dns.RcodeSuccess)
		if a.wire != nil {
			if done, err := m.writeWire(w, r, dns.RcodeSuccess, a.count, 0, a.qlen, a.wire); done {
				return dns.RcodeSuccess, err
			}
		}
		return dns.RcodeSuccess, m.writeMsg(w, r, dns.RcodeSuccess, a.rrs, nil)
	}
	if q.Qtype == dns.TypeANY && exists {
		if rrs := ix.rrsets(qname); len(rrs) > 0 {
			m.metrics.count(q.Qtype, dns.RcodeSuccess)
			return dns.RcodeSuccess, m.writeMsg(w, r, dns.RcodeSuccess, rrs, nil)
		}
	}

	// NODATA when the name exists, NXDOMAIN when it does not: both with the
	// zone's SOA in the authority section (RFC 2308).
	rcode := dns.RcodeNameError
	if exists {
		rcode = dns.RcodeSuccess
	}
	m.metrics.count(q.Qtype, rcode)
	if z.negWire != nil {
		if done, err := m.writeWire(w, r, rcode, 0, 1, 0, z.negWire); done {
			return rcode, err
		}
	}
	return rcode, m.writeMsg(w, r, rcode, nil, z.neg)
}

// recurses reports whether the server offers recursion: a plugin after
// this one (forward) resolves the names outside its zones. Every answer
// then says so (RA), its own included, as a resolver's do: clients such
// as BIND's host and the BSDs' nslookup drop an answer to a recursive
// query without it.
func (m *Moxxie) recurses() bool { return m.Next != nil }

// refuse returns the response code of a query no server should answer
// and no plugin after this one should get:
//   - FORMERR for more than one OPT record, or one whose owner is not the
//     root (RFC 6891, 6.1.1), a TSIG record that is not the last (RFC
//     8945, 5.1), and for a question of a type that is never asked for: 0,
//     OPT or TSIG (RFC 6895, 3.1);
//   - NOTAUTH, written with the TSIG error BADKEY, for a query signed with
//     TSIG (RFC 8945, 5.2.2): Moxxie has no keys;
//   - NOTIMP for an opcode other than QUERY (NOTIFY and UPDATE are for a
//     zone's primary, which Moxxie has none of), and for the question
//     types TKEY, MAILB and MAILA, which it does not offer;
//   - REFUSED for a zone transfer (AXFR, IXFR), which Moxxie does not
//     offer either: every server has the records from the cluster; and for
//     a class other than IN, whose names are not the zones' (RFC 1035,
//     3.2.4), whichever the name: CoreDNS would pass them on to forward
//     once it is loaded.
func refuse(r *dns.Msg) (int, bool) {
	opts := 0
	for i, rr := range r.Extra {
		switch rr.Header().Rrtype {
		case dns.TypeOPT:
			opts++
		case dns.TypeTSIG:
			if i != len(r.Extra)-1 {
				return dns.RcodeFormatError, true // RFC 8945, 5.1: it must be the last
			}
		}
	}
	if opts > 1 || opts == 1 && r.IsEdns0().Hdr.Name != "." {
		return dns.RcodeFormatError, true
	}
	if r.IsTsig() != nil {
		return dns.RcodeNotAuth, true // signed: answered BADKEY, whatever it asks
	}
	if r.Opcode != dns.OpcodeQuery {
		return dns.RcodeNotImplemented, true
	}
	if len(r.Question) == 0 {
		return 0, false
	}
	switch q := r.Question[0]; {
	case q.Qtype == 0 || q.Qtype == dns.TypeOPT || q.Qtype == dns.TypeTSIG:
		return dns.RcodeFormatError, true
	case metaType(q.Qtype):
		return dns.RcodeNotImplemented, true
	case q.Qtype == dns.TypeAXFR || q.Qtype == dns.TypeIXFR, q.Qclass != dns.ClassINET:
		return dns.RcodeRefused, true
	}
	return 0, false
}

// metaType reports whether qtype is a type no record has and refuse
// answers itself: 0, OPT, TSIG, TKEY, MAILB or MAILA.
func metaType(qtype uint16) bool {
	switch qtype {
	case 0, dns.TypeOPT, dns.TypeTSIG, dns.TypeTKEY, dns.TypeMAILB, dns.TypeMAILA:
		return true
	}
	return false
}

// writeRcode answers r with rcode alone, written here rather than left
// to CoreDNS so that it says whether the server recurses (RA) as its other
// answers do; a NOTAUTH carries the TSIG error BADKEY (writeBadKey).
func (m *Moxxie) writeRcode(w dns.ResponseWriter, r *dns.Msg, rcode int) error {
	a := new(dns.Msg)
	a.SetRcode(r, rcode)
	a.RecursionAvailable = m.recurses()
	if o := r.IsEdns0(); o != nil {
		a.SetEdns0(udpSize, o.Do())
	}
	if rcode == dns.RcodeNotAuth {
		appendBadKey(a, r)
	}
	return w.WriteMsg(a)
}

// appendBadKey adds to a, the answer to r, signed with a transaction
// signature (TSIG), the TSIG error BADKEY, unsigned (RFC 8945, 5.2.2).
func appendBadKey(a, r *dns.Msg) {
	t := r.IsTsig()
	a.Extra = append(a.Extra, &dns.TSIG{
		Hdr:       dns.RR_Header{Name: t.Hdr.Name, Rrtype: dns.TypeTSIG, Class: dns.ClassANY},
		Algorithm: t.Algorithm, TimeSigned: t.TimeSigned, Fudge: t.Fudge,
		OrigId: r.Id, Error: dns.RcodeBadKey,
	})
}

// notReady answers r SERVFAIL while the answers are not current, with the
// Extended DNS Error "Not Ready" when r has an OPT record. Names outside
// the zones are not passed on either: which names those are is not known
// yet. Like CoreDNS's acl plugin, which answers with an Extended DNS Error
// too, it returns RcodeSuccess because it wrote the answer itself.
func (m *Moxxie) notReady(w dns.ResponseWriter, r *dns.Msg) (int, error) {
	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	m.metrics.count(qtype, dns.RcodeServerFailure)
	return dns.RcodeSuccess, m.writeServfail(w, r, dns.ExtendedErrorCodeNotReady, "catching up with the cluster")
}

// writeServfail answers r SERVFAIL, with the Extended DNS Error code and
// text when r has an OPT record.
func (m *Moxxie) writeServfail(w dns.ResponseWriter, r *dns.Msg, code uint16, text string) error {
	a := new(dns.Msg)
	a.SetRcode(r, dns.RcodeServerFailure)
	a.RecursionAvailable = m.recurses()
	if o := r.IsEdns0(); o != nil {
		a.SetEdns0(max(o.UDPSize(), dns.MinMsgSize), o.Do())
		a.IsEdns0().Option = append(a.IsEdns0().Option, &dns.EDNS0_EDE{InfoCode: code, ExtraText: text})
	}
	return w.WriteMsg(a)
}

// pass hands r to the next plugin, or refuses it at the end of the chain:
// the server is authoritative only for its zones and does not recurse.
func (m *Moxxie) pass(ctx context.Context, w dns.ResponseWriter, r *dns.Msg) (int, error) {
	m.metrics.passed.Inc()
	var qtype uint16
	if len(r.Question) > 0 {
		qtype = r.Question[0].Qtype
	}
	if m.Next == nil {
		m.metrics.countPassed(qtype, dns.RcodeRefused)
		return dns.RcodeRefused, nil
	}
	hops := forwardHops(r)
	if hops >= maxHops && len(r.Question) > 0 {
		return m.loop(w, r, qtype)
	}
	rw := &rcodeWriter{ResponseWriter: &hopWriter{ResponseWriter: w, edns: r.IsEdns0() != nil}, rcode: -1}
	rcode, err := plugin.NextOrFailure(pluginName, m.Next, ctx, rw, forwarded(r, hops))
	switch {
	case !plugin.ClientWrite(rcode):
		// No answer was written (an upstream failed: SERVFAIL): it is
		// written here, with RA as the server's other answers, not left
		// to CoreDNS.
		m.metrics.countPassed(qtype, rcode)
		if len(r.Question) > 0 {
			if werr := m.writeRcode(w, r, rcode); err == nil {
				err = werr
			}
			return dns.RcodeSuccess, err
		}
	case rw.rcode < 0:
		m.metrics.countPassed(qtype, rcode)
	default:
		m.metrics.countPassed(qtype, rw.rcode)
	}
	return rcode, err
}

// rcodeWriter remembers the response code of the answer written through
// it, so that queries passed on are counted with it.
type rcodeWriter struct {
	dns.ResponseWriter
	rcode int // -1 until an answer is written
}

// WriteMsg records m's response code and writes it.
func (w *rcodeWriter) WriteMsg(m *dns.Msg) error {
	w.rcode = m.Rcode
	return w.ResponseWriter.WriteMsg(m)
}

// Write records the response code of a packed answer and writes it.
func (w *rcodeWriter) Write(b []byte) (int, error) {
	if len(b) >= 4 {
		w.rcode = int(b[3] & 0x0f)
	}
	return w.ResponseWriter.Write(b)
}

// writeMsg writes an authoritative response to r built as a dns.Msg, which
// CoreDNS's writer truncates to fit the client's buffer.
func (m *Moxxie) writeMsg(w dns.ResponseWriter, r *dns.Msg, rcode int, answer, ns []dns.RR) error {
	a := new(dns.Msg)
	a.SetRcode(r, rcode)
	a.Authoritative = true
	a.RecursionAvailable = m.recurses()
	a.Compress = true
	a.Answer = echoCase(r.Question[0].Name, answer)
	a.Ns = ns
	return w.WriteMsg(a)
}

// echoCase returns answer with every owner name that is qname but for case
// written as qname, copying the records it changes: the stored records are
// in lower case, and an answer's owner echoes the question's case, as the
// prebuilt answers do by pointing at the question.
func echoCase(qname string, answer []dns.RR) []dns.RR {
	out, copied := answer, false
	for i, rr := range answer {
		if h := rr.Header(); h.Name == qname || !strings.EqualFold(h.Name, qname) {
			continue
		}
		if !copied {
			out, copied = slices.Clone(answer), true
		}
		c := dns.Copy(rr)
		c.Header().Name = qname
		out[i] = c
	}
	return out
}
