package dns

import (
	"encoding/binary"
	"net"
	"sync"

	"github.com/miekg/dns"
)

const (
	// headerLen is the length of a DNS message header.
	headerLen = 12
	// optLen is the length of an OPT record without options.
	optLen = 11
	// udpSize is the EDNS payload size the plugin advertises (DNS flag day 2020).
	udpSize = 1232
	// minUDPSize is what any client accepts over UDP.
	minUDPSize = 512
	// maxNameLen is the longest a domain name is in wire format.
	maxNameLen = 255
)

// bufPool holds response buffers; a response is written before its buffer
// goes back.
var bufPool = sync.Pool{New: func() any {
	b := make([]byte, 0, 1024)
	return &b
}}

// writeWire writes a response to r made of a header, r's question, the
// prebuilt sections (ancount answer records, then nscount authority records)
// and an OPT record if r has one. When qlen is not zero the sections hold
// compression pointers into the question, which must then pack to qlen bytes
// from the start of the message. writeWire returns false without writing
// when it does not, or when the response does not fit the client's buffer:
// the caller then builds the response as a dns.Msg.
func (m *Moxxie) writeWire(w dns.ResponseWriter, r *dns.Msg, rcode int, ancount, nscount uint16, qlen int, sections []byte) (bool, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	need := headerLen + maxNameLen + 4 + len(sections) + optLen
	if cap(*bp) < need {
		*bp = make([]byte, 0, need)
	}
	b := (*bp)[:cap(*bp)]

	q := r.Question[0]
	off, err := dns.PackDomainName(q.Name, b, headerLen, nil, false)
	if err != nil || qlen != 0 && off+4 != qlen {
		return false, nil
	}
	opt := r.IsEdns0()
	total := off + 4 + len(sections)
	if opt != nil {
		total += optLen
	}
	if total > minUDPSize {
		limit := minUDPSize
		if opt != nil {
			limit = max(limit, min(int(opt.UDPSize()), udpSize))
		}
		if _, tcp := w.RemoteAddr().(*net.TCPAddr); tcp {
			limit = dns.MaxMsgSize
		}
		if total > limit {
			return false, nil
		}
	}

	binary.BigEndian.PutUint16(b[off:], q.Qtype)
	binary.BigEndian.PutUint16(b[off+2:], q.Qclass)
	off += 4
	flags := responseFlags(r.RecursionDesired, r.CheckingDisabled, m.recurses(), rcode)
	b = appendResponse(b[:off], r.Id, flags, ancount, nscount, sections, opt != nil, opt != nil && opt.Do())
	_, err = w.Write(b)
	return true, err
}

// responseFlags returns the header flags of an authoritative response
// with rcode: QR, opcode QUERY, AA, the RD and CD bits of the query, and
// RA when the server recurses (ra: it forwards what is not its own).
func responseFlags(rd, cd, ra bool, rcode int) uint16 {
	flags := uint16(1<<15) | 1<<10 | uint16(rcode&0xf)
	if rd {
		flags |= 1 << 8
	}
	if ra {
		flags |= 1 << 7
	}
	if cd {
		flags |= 1 << 4
	}
	return flags
}

// appendResponse completes a response whose question is already in b,
// after 12 bytes left for the header: it writes the header (ID and flags),
// appends the sections and, when the query had one, an OPT record
// advertising udpSize with the query's DO bit.
func appendResponse(b []byte, id, flags, ancount, nscount uint16, sections []byte, opt, do bool) []byte {
	b = append(b, sections...)
	var arcount uint16
	if opt {
		arcount = 1
		var optFlags byte
		if do {
			optFlags = 0x80 // RFC 3225: the DO bit is copied to the response
		}
		b = append(b,
			0,                    // the root name
			0, byte(dns.TypeOPT), // type
			udpSize>>8, udpSize&0xff, // payload size
			0, 0, optFlags, 0, // extended rcode, version, flags
			0, 0) // no options
	}
	binary.BigEndian.PutUint16(b[0:], id)
	binary.BigEndian.PutUint16(b[2:], flags)
	binary.BigEndian.PutUint16(b[4:], 1)
	binary.BigEndian.PutUint16(b[6:], ancount)
	binary.BigEndian.PutUint16(b[8:], nscount)
	binary.BigEndian.PutUint16(b[10:], arcount)
	return b
}
