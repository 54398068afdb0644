package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"
)

// The frames of batched forwarding (connection type connForwardFrames)
// are encoded by hand: a frame is a 4-byte big-endian payload length and
// the payload, a uvarint count and that many requests or responses.
//
//	request:  uvarint ID, string method, string URI, header, bytes body
//	response: uvarint ID, uvarint status, header, bytes body
//	header:   uvarint keys, then each key as a string with a uvarint
//	          count of its values, each a string
//	string, bytes: uvarint length, then the bytes
//
// A generic msgpack codec spent about a tenth of the leader's CPU on these
// frames under load (docs/benchmarks.md); this one copies each field once.

// errBadFrame marks a frame payload that does not decode.
var errBadFrame = errors.New("malformed forward frame")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, p []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(p)))
	return append(b, p...)
}

func appendHeader(b []byte, h http.Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for k, vv := range h {
		b = appendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vv)))
		for _, v := range vv {
			b = appendString(b, v)
		}
	}
	return b
}

// appendRequests appends the payload of a frame of requests to b.
func appendRequests(b []byte, reqs []fwdRequest) []byte {
	b = binary.AppendUvarint(b, uint64(len(reqs)))
	for i := range reqs {
		r := &reqs[i]
		b = binary.AppendUvarint(b, r.ID)
		b = appendString(b, r.Method)
		b = appendString(b, r.URI)
		b = appendHeader(b, r.Header)
		b = appendBytes(b, r.Body)
	}
	return b
}

// appendResponses appends the payload of a frame of responses to b.
func appendResponses(b []byte, resps []fwdResponse) []byte {
	b = binary.AppendUvarint(b, uint64(len(resps)))
	for i := range resps {
		r := &resps[i]
		b = binary.AppendUvarint(b, r.ID)
		b = binary.AppendUvarint(b, uint64(r.Status))
		b = appendHeader(b, r.Header)
		b = appendBytes(b, r.Body)
	}
	return b
}

// payloadReader decodes a payload. The first error sticks: later reads
// return zero values, and err reports it.
type payloadReader struct {
	b   []byte
	err error
}

func (r *payloadReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: %s", errBadFrame, what)
	}
	r.b = nil
}

func (r *payloadReader) uvarint(what string) uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail(what)
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads a count of items that each take at least min bytes, so that
// a corrupt count cannot make the reader allocate more than the payload
// could hold.
func (r *payloadReader) count(what string, min int) int {
	n := r.uvarint(what)
	if n > uint64(len(r.b)/min) {
		r.fail(what + " exceeds the frame")
		return 0
	}
	return int(n)
}

// bytes returns the next length-prefixed bytes, sharing the payload's
// memory.
func (r *payloadReader) bytes(what string) []byte {
	n := r.uvarint(what)
	if n > uint64(len(r.b)) {
		r.fail(what + " exceeds the frame")
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *payloadReader) string(what string) string { return string(r.bytes(what)) }

func (r *payloadReader) header() http.Header {
	keys := r.count("header keys", 2)
	if keys == 0 {
		return http.Header{}
	}
	h := make(http.Header, keys)
	for range keys {
		k := r.string("header key")
		vv := make([]string, r.count("header values", 1))
		for i := range vv {
			vv[i] = r.string("header value")
		}
		h[k] = vv
	}
	return h
}

func (r *payloadReader) done() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail(fmt.Sprintf("%d bytes after the last item", len(r.b)))
	}
	return r.err
}

// decodeRequests decodes the payload of a frame of requests.
func decodeRequests(p []byte) ([]fwdRequest, error) {
	r := &payloadReader{b: p}
	reqs := make([]fwdRequest, r.count("requests", 5))
	for i := range reqs {
		reqs[i] = fwdRequest{ID: r.uvarint("id"), Method: r.string("method"), URI: r.string("uri"), Header: r.header(), Body: r.bytes("body")}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return reqs, nil
}

// decodeResponses decodes the payload of a frame of responses.
func decodeResponses(p []byte) ([]fwdResponse, error) {
	r := &payloadReader{b: p}
	resps := make([]fwdResponse, r.count("responses", 4))
	for i := range resps {
		id, status := r.uvarint("id"), r.uvarint("status")
		if status < 100 || status > 999 {
			r.fail("status")
		}
		resps[i] = fwdResponse{ID: id, Status: int(status), Header: r.header(), Body: r.bytes("body")}
	}
	if err := r.done(); err != nil {
		return nil, err
	}
	return resps, nil
}

// frameWriter writes frames through one buffer it reuses.
type frameWriter struct {
	w   *bufio.Writer
	buf []byte
}

// write sends the payload that fill appends to its argument as one frame.
func (f *frameWriter) write(fill func([]byte) []byte) error {
	f.buf = fill(append(f.buf[:0], 0, 0, 0, 0))
	n := len(f.buf) - 4
	if n > fwdMaxFrame {
		return fmt.Errorf("forward frame of %d bytes exceeds %d", n, fwdMaxFrame)
	}
	binary.BigEndian.PutUint32(f.buf, uint32(n))
	if _, err := f.w.Write(f.buf); err != nil {
		return err
	}
	return f.w.Flush()
}

// readPayload reads one frame and returns its payload, in memory of its
// own.
func readPayload(r *bufio.Reader) ([]byte, error) {
	var h [4]byte
	if _, err := io.ReadFull(r, h[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(h[:])
	if n > fwdMaxFrame {
		return nil, fmt.Errorf("forward frame of %d bytes exceeds %d", n, fwdMaxFrame)
	}
	p := make([]byte, n)
	if _, err := io.ReadFull(r, p); err != nil {
		return nil, err
	}
	return p, nil
}
