package dns

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"
	"unsafe"

	"github.com/coredns/coredns/plugin"
	"github.com/coredns/coredns/plugin/pkg/edns"
	"github.com/coredns/coredns/request"
	"github.com/miekg/dns"
	"golang.org/x/net/ipv4"
)

// Buffer sizes of the fast path, per datagram of a batch. A query is read
// whole up to udpQuerySize bytes, eight times what CoreDNS's own sockets
// read (miekg/dns's default of 512). A longer one arrives cut, which
// fastAnswer declines (the message no longer ends where its sections
// say), and the plugin's path answers FORMERR when the cut message does
// not unpack, as CoreDNS does. An answer starts in udpAnswerSize bytes and
// its buffer grows when one needs more.
const (
	udpQuerySize  = 4096
	udpAnswerSize = 512
)

// fastAnswer answers the query packed in p from ix alone, appending the
// response to out, when it is a plain query for a name in one of the zones
// that needs nothing but prebuilt bytes: a QUERY with one question, class
// IN, a name of letters, digits, '-' and '_', at most an OPT record of
// version 0, and a response that fits the client's UDP size. It returns
// false for anything else, which then takes the plugin's ordinary path:
// the answers are the same, this only skips unpacking and packing.
func (m *Moxxie) fastAnswer(p, out, name []byte) ([]byte, bool) {
	if len(p) < headerLen+5 || !m.ready.Load() {
		return nil, false
	}
	id := binary.BigEndian.Uint16(p[0:])
	bits := binary.BigEndian.Uint16(p[2:])
	if bits&0xf800 != 0 || // a response, or an opcode other than QUERY
		binary.BigEndian.Uint16(p[4:]) != 1 || binary.BigEndian.Uint16(p[6:]) != 0 ||
		binary.BigEndian.Uint16(p[8:]) != 0 || binary.BigEndian.Uint16(p[10:]) > 1 {
		return nil, false
	}

	// The question name, lower-cased into name in presentation format.
	name = name[:0]
	off := headerLen
	for {
		if off >= len(p) {
			return nil, false
		}
		l := int(p[off])
		off++
		if l == 0 {
			break
		}
		if l > 63 || off+l > len(p) { // a compression pointer, or truncated
			return nil, false
		}
		for _, c := range p[off : off+l] {
			switch {
			case 'a' <= c && c <= 'z', '0' <= c && c <= '9', c == '-', c == '_':
			case 'A' <= c && c <= 'Z':
				c += 'a' - 'A'
			default:
				return nil, false
			}
			name = append(name, c)
		}
		name = append(name, '.')
		off += l
		if off-headerLen >= maxNameLen { // too long with the root label
			return nil, false
		}
	}
	if len(name) == 0 || off+4 > len(p) {
		return nil, false
	}
	qtype := binary.BigEndian.Uint16(p[off:])
	if qtype == dns.TypeANY || qtype == dns.TypeAXFR || qtype == dns.TypeIXFR || metaType(qtype) || binary.BigEndian.Uint16(p[off+2:]) != dns.ClassINET {
		return nil, false
	}
	qend := off + 4

	limit, opt, do := minUDPSize, false, false
	if binary.BigEndian.Uint16(p[10:]) == 1 {
		o := qend
		if len(p) < o+optLen || p[o] != 0 || binary.BigEndian.Uint16(p[o+1:]) != dns.TypeOPT ||
			p[o+6] != 0 || // EDNS version 0 only; others get BADVERS on the ordinary path
			o+optLen+int(binary.BigEndian.Uint16(p[o+9:])) != len(p) {
			return nil, false
		}
		// The options must be well formed: code, length, data.
		for i := o + optLen; i < len(p); {
			if i+4 > len(p) {
				return nil, false
			}
			i += 4 + int(binary.BigEndian.Uint16(p[i+2:]))
			if i > len(p) {
				return nil, false
			}
		}
		opt, do = true, p[o+7]&0x80 != 0
		limit = min(max(limit, int(binary.BigEndian.Uint16(p[o+3:]))), udpSize)
	} else if qend != len(p) {
		return nil, false
	}

	// The look-up does not keep the name: it may alias the buffer.
	qname := unsafe.String(unsafe.SliceData(name), len(name))
	ix := m.index.Load()
	a, z, exists := ix.lookup(qname, qtype)
	var (
		rcode            int
		ancount, nscount uint16
		sections         []byte
	)
	switch {
	case a != nil:
		if a.wire == nil || a.qlen != qend {
			return nil, false
		}
		ancount, sections = a.count, a.wire
	case z == nil, z.negWire == nil:
		return nil, false
	case !exists && m.Fall.Through(qname):
		return nil, false
	default:
		rcode = dns.RcodeNameError
		if exists {
			rcode = dns.RcodeSuccess
		}
		nscount, sections = 1, z.negWire
	}
	total := qend + len(sections)
	if opt {
		total += optLen
	}
	if total > limit {
		return nil, false
	}
	m.metrics.count(qtype, rcode)
	out = append(out[:0], p[:qend]...)
	flags := responseFlags(bits&0x0100 != 0, bits&0x0010 != 0, m.recurses(), rcode)
	return appendResponse(out, id, flags, ancount, nscount, sections, opt, do), true
}

// fastUDP serves UDP queries for a Moxxie on sockets of its own, read in a
// loop each, answering from prebuilt bytes without a goroutine, an unpacked
// message or a packed one per query, and reading and writing datagrams in
// batches. Queries fastAnswer declines go through the plugin as CoreDNS
// would pass them.
type fastUDP struct {
	m     *Moxxie
	conns []*net.UDPConn
	wg    sync.WaitGroup
}

// batchSize is how many datagrams one system call reads or writes at most.
const batchSize = 64

// serve reads and answers queries on conn until it is closed, a batch of
// datagrams per system call each way (recvmmsg and sendmmsg on Linux).
func (f *fastUDP) serve(conn *net.UDPConn) {
	defer f.wg.Done()
	pc := ipv4.NewPacketConn(conn)
	in := make([]ipv4.Message, batchSize)
	out := make([]ipv4.Message, batchSize)
	for i := range in {
		in[i].Buffers = [][]byte{make([]byte, udpQuerySize)}
		out[i].Buffers = [][]byte{make([]byte, 0, udpAnswerSize)}
	}
	name := make([]byte, 0, maxNameLen)
	for {
		n, err := pc.ReadBatch(in, 0)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			continue
		}
		k := 0
		for _, msg := range in[:n] {
			p := msg.Buffers[0][:msg.N]
			if resp, ok := f.m.fastAnswer(p, out[k].Buffers[0][:0], name); ok {
				out[k].Buffers[0] = resp
				out[k].Addr = msg.Addr
				k++
				continue
			}
			if addr, ok := msg.Addr.(*net.UDPAddr); ok {
				go f.slow(conn, append([]byte(nil), p...), addr.AddrPort())
			}
		}
		for sent := 0; sent < k; {
			m, err := pc.WriteBatch(out[sent:k], 0)
			if err != nil {
				m = 1 // the first datagram failed: drop it, send the rest
			}
			sent += m
		}
	}
}

// slow serves a query the way CoreDNS's server does before its plugin
// chain (accept checks, class, EDNS version, truncation to the client's
// buffer), then through the plugin and on to the next one.
func (f *fastUDP) slow(conn *net.UDPConn, pkt []byte, addr netip.AddrPort) {
	w := &udpWriter{conn: conn, remote: net.UDPAddrFromAddrPort(addr)}
	r := new(dns.Msg)
	if len(pkt) < headerLen {
		return
	}
	h := dns.Header{
		Id:      binary.BigEndian.Uint16(pkt[0:]),
		Bits:    binary.BigEndian.Uint16(pkt[2:]),
		Qdcount: binary.BigEndian.Uint16(pkt[4:]),
		Ancount: binary.BigEndian.Uint16(pkt[6:]),
		Nscount: binary.BigEndian.Uint16(pkt[8:]),
		Arcount: binary.BigEndian.Uint16(pkt[10:]),
	}
	switch dns.DefaultMsgAcceptFunc(h) {
	case dns.MsgIgnore:
		return
	case dns.MsgReject:
		reject(w, h, dns.RcodeFormatError, f.m.recurses())
		return
	case dns.MsgRejectNotImplemented:
		reject(w, h, dns.RcodeNotImplemented, f.m.recurses())
		return
	}
	// A header that counts one question followed by none, or a question
	// without its type and class, unpacks without error: it is malformed
	// all the same.
	if err := r.Unpack(pkt); err != nil || len(r.Question) != 1 || !questionWhole(pkt) {
		reject(w, h, dns.RcodeFormatError, f.m.recurses())
		return
	}
	if resp, err := edns.Version(r); err != nil {
		// CoreDNS's BADVERS answer advertises a UDP size of 0.
		resp.IsEdns0().SetUDPSize(udpSize)
		resp.RecursionAvailable = f.m.recurses()
		_ = w.WriteMsg(resp)
		return
	}
	// Answers over UDP stay within the size the plugin advertises (DNS flag
	// day 2020), against fragments; a client that asked for more gets TC
	// and asks again over TCP.
	if o := r.IsEdns0(); o != nil && o.UDPSize() > udpSize {
		o.SetUDPSize(udpSize)
	}
	sw := request.NewScrubWriter(r, w)
	rcode, err := f.m.ServeDNS(context.Background(), sw, r)
	if err != nil {
		if ok, held := f.m.errLog.allow(time.Now()); ok {
			log.Errorf("%s %s: %v (logged at most once a minute)%s", r.Question[0].Name, dns.TypeToString[r.Question[0].Qtype], err, heldNote(held))
		}
	}
	if !plugin.ClientWrite(rcode) {
		writeError(sw, r, rcode, f.m.recurses())
	}
}

// questionWhole reports whether the question of pkt, a message that
// unpacked with one question, has its type and class.
func questionWhole(pkt []byte) bool {
	off := headerLen
	for off < len(pkt) {
		l := int(pkt[off])
		switch {
		case l == 0:
			return off+1+4 <= len(pkt)
		case l&0xc0 == 0xc0: // a compression pointer ends the name
			return off+2+4 <= len(pkt)
		}
		off += 1 + l
	}
	return false
}

// reject answers a query that did not unpack, as miekg/dns does: the
// header alone with rcode, and RA when the server recurses.
func reject(w dns.ResponseWriter, h dns.Header, rcode int, ra bool) {
	m := new(dns.Msg)
	m.Id = h.Id
	m.Response = true
	m.RecursionAvailable = ra
	m.Opcode = int(h.Bits>>11) & 0xf
	m.Rcode = rcode
	_ = w.WriteMsg(m)
}

// writeError answers r with rcode and nothing else, with RA when the
// server recurses.
func writeError(w dns.ResponseWriter, r *dns.Msg, rcode int, ra bool) {
	m := new(dns.Msg)
	m.SetRcode(r, rcode)
	m.RecursionAvailable = ra
	state := request.Request{W: w, Req: r}
	state.SizeAndDo(m)
	_ = w.WriteMsg(m)
}

// close stops the read loops and waits for them.
func (f *fastUDP) close() {
	for _, c := range f.conns {
		c.Close()
	}
	f.wg.Wait()
}

// udpWriter is a dns.ResponseWriter for one query read by fastUDP.
type udpWriter struct {
	conn   *net.UDPConn
	remote *net.UDPAddr
}

func (w *udpWriter) LocalAddr() net.Addr  { return w.conn.LocalAddr() }
func (w *udpWriter) RemoteAddr() net.Addr { return w.remote }
func (w *udpWriter) Network() string      { return "udp" }
func (w *udpWriter) Close() error         { return nil }
func (w *udpWriter) TsigStatus() error    { return nil }
func (w *udpWriter) TsigTimersOnly(bool)  {}
func (w *udpWriter) Hijack()              {}

// WriteMsg writes m, whose OPT record advertises the plugin's UDP size as
// the fast path's answers do: CoreDNS's writer copies the client's, which
// is the limit the answer was cut to, not the server's own (RFC 6891,
// 6.2.3).
func (w *udpWriter) WriteMsg(m *dns.Msg) error {
	if o := m.IsEdns0(); o != nil && m.Rcode != dns.RcodeBadVers {
		o.SetUDPSize(udpSize)
	}
	b, err := m.Pack()
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

func (w *udpWriter) Write(b []byte) (int, error) { return w.conn.WriteToUDP(b, w.remote) }
