package dns

import (
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// hopOption is the EDNS option, of the range for local use (RFC 6891),
// in which a query forwarded by a Moxxie server counts the Moxxie servers
// that forwarded it: one byte. Resolvers do not pass on options they do
// not know, so it counts only servers forwarding straight to each other,
// which is where a loop can form (two servers whose dns_forward name each
// other).
const hopOption = 65431

// maxHops is how many Moxxie servers may forward a query one after another.
// A server that gets a query that many forwarded does not forward it again
// but answers SERVFAIL: a loop ends after a few queries instead of never.
const maxHops = 4

// logGap is the least time between two log lines of one kind: about
// loops, or about queries that failed (an upstream that is down).
const logGap = time.Minute

// throttle lets a kind of log line through at most once per logGap: the
// first at once, and with the next the number held back in between.
type throttle struct {
	mu   sync.Mutex
	last time.Time // when a line was last let through
	held int       // lines held back since
}

// allow reports whether a line may be logged now, and how many were held
// back since the last one.
func (t *throttle) allow(now time.Time) (bool, int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if !t.last.IsZero() && now.Sub(t.last) < logGap {
		t.held++
		return false, 0
	}
	held := t.held
	t.last, t.held = now, 0
	return true, held
}

// heldNote says how many lines were held back, for the end of a line.
func heldNote(held int) string {
	if held == 0 {
		return ""
	}
	return fmt.Sprintf(" (and %d more in the last minute, not logged)", held)
}

// forwardHops returns how many Moxxie servers forwarded r.
func forwardHops(r *dns.Msg) int {
	if o := r.IsEdns0(); o != nil {
		for _, opt := range o.Option {
			if l, ok := opt.(*dns.EDNS0_LOCAL); ok && l.Code == hopOption && len(l.Data) == 1 {
				return int(l.Data[0])
			}
		}
	}
	return 0
}

// isHop reports whether opt is a hop count.
func isHop(opt dns.EDNS0) bool {
	l, ok := opt.(*dns.EDNS0_LOCAL)
	return ok && l.Code == hopOption
}

// forwarded returns a copy of r to forward, counting one more hop than r.
// Without EDNS in r, the copy gets an OPT record for the count with the
// UDP size of a query without one.
func forwarded(r *dns.Msg, hops int) *dns.Msg {
	f := r.Copy()
	o := f.IsEdns0()
	if o == nil {
		f.SetEdns0(dns.MinMsgSize, false)
		o = f.IsEdns0()
	}
	o.Option = append(slices.DeleteFunc(o.Option, isHop), &dns.EDNS0_LOCAL{Code: hopOption, Data: []byte{byte(hops + 1)}})
	return f
}

// hopWriter writes the answer to a forwarded query as an answer to the
// client's: without the hop count, without an OPT record when the client
// sent none, and as a forwarder's, not authoritative (AA clear, even when
// the upstream is authoritative) and with recursion available (RA), as
// BIND and PowerDNS's recursor answer what they forward.
type hopWriter struct {
	dns.ResponseWriter
	edns bool // the client's query had an OPT record
}

// WriteMsg implements dns.ResponseWriter.
func (w *hopWriter) WriteMsg(m *dns.Msg) error {
	if o := m.IsEdns0(); o != nil {
		if w.edns {
			o.Option = slices.DeleteFunc(o.Option, isHop)
		} else {
			m.Extra = slices.DeleteFunc(m.Extra, func(rr dns.RR) bool { return rr.Header().Rrtype == dns.TypeOPT })
		}
	}
	m.Authoritative, m.RecursionAvailable = false, true
	return w.ResponseWriter.WriteMsg(m)
}

// loop answers r, which maxHops Moxxie servers forwarded already, SERVFAIL
// with an Extended DNS Error saying why, and logs it at most once per
// logGap.
func (m *Moxxie) loop(w dns.ResponseWriter, r *dns.Msg, qtype uint16) (int, error) {
	m.metrics.countPassed(qtype, dns.RcodeServerFailure)
	if ok, held := m.loopLog.allow(time.Now()); ok {
		log.Warningf("not forwarding %s %s: %d Moxxie servers forwarded it already; the dns_forward of these servers may form a loop (logged at most once a minute)%s",
			r.Question[0].Name, dns.TypeToString[qtype], maxHops, heldNote(held))
	}
	return dns.RcodeSuccess, m.writeServfail(w, r, dns.ExtendedErrorCodeOther, "forwarding loop: the query passed too many Moxxie servers")
}
