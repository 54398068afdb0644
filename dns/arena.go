package dns

import (
	"github.com/miekg/dns"
)

// arenaChunk is the size of the blocks an arena carves packed answers from.
const arenaChunk = 64 << 10

// arena packs answers into large shared blocks, so an index of many names
// costs a few allocations instead of one per answer. Packed bytes are never
// modified after they are handed out.
type arena struct {
	// exact gives each answer an allocation of its own size instead.
	exact   bool
	block   []byte
	scratch []byte
	section []byte
}

// alloc returns a copy of b carved from the current block.
func (a *arena) alloc(b []byte) []byte {
	if a.exact || len(b) > arenaChunk/4 {
		return append([]byte(nil), b...)
	}
	if cap(a.block)-len(a.block) < len(b) {
		a.block = make([]byte, 0, arenaChunk)
	}
	start := len(a.block)
	a.block = append(a.block, b...)
	return a.block[start:len(a.block):len(a.block)]
}

// packAnswer packs rrs, all owned by k.name, as the answer section of a
// response to a question for k, and returns the section and the length of
// header and question before it. Every owner name is a pointer to the
// question name at offset 12; the rest is packed without compression. It
// returns nil if the records do not pack.
func (a *arena) packAnswer(k key, rrs []dns.RR) (wire []byte, qlen int) {
	buf := a.buf()
	nameEnd, err := dns.PackDomainName(k.name, buf, 0, nil, false)
	if err != nil {
		return nil, 0
	}
	out := a.section[:0]
	for _, rr := range rrs {
		end, err := dns.PackRR(rr, buf, 0, nil, false)
		if err != nil {
			return nil, 0
		}
		out = append(out, 0xc0, headerLen) // pointer to the question name
		out = append(out, buf[nameEnd:end]...)
	}
	a.section = out
	return a.alloc(out), headerLen + nameEnd + 4
}

// packRR packs rr without compression, to be placed anywhere in a message.
func (a *arena) packRR(rr dns.RR) []byte {
	buf := a.buf()
	n, err := dns.PackRR(rr, buf, 0, nil, false)
	if err != nil {
		return nil
	}
	return a.alloc(buf[:n])
}

// buf returns the scratch buffer, large enough for any message.
func (a *arena) buf() []byte {
	if cap(a.scratch) < dns.MaxMsgSize {
		a.scratch = make([]byte, dns.MaxMsgSize)
	}
	return a.scratch[:cap(a.scratch)]
}
