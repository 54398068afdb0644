package node

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/moxxie/moxxie/binenc"
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

func appendHeader(b []byte, h http.Header) []byte {
	b = binary.AppendUvarint(b, uint64(len(h)))
	for k, vv := range h {
		b = binenc.AppendString(b, k)
		b = binary.AppendUvarint(b, uint64(len(vv)))
		for _, v := range vv {
			b = binenc.AppendString(b, v)
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
		b = binenc.AppendString(b, r.Method)
		b = binenc.AppendString(b, r.URI)
		b = appendHeader(b, r.Header)
		b = binenc.AppendBytes(b, r.Body)
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
		b = binenc.AppendBytes(b, r.Body)
	}
	return b
}

// readHeader reads a header as appendHeader writes it.
func readHeader(r *binenc.Reader) http.Header {
	keys := r.Count("header keys", 2)
	if keys == 0 {
		return http.Header{}
	}
	h := make(http.Header, keys)
	for range keys {
		k := r.String("header key")
		vv := make([]string, r.Count("header values", 1))
		for i := range vv {
			vv[i] = r.String("header value")
		}
		h[k] = vv
	}
	return h
}

// decodeRequests decodes the payload of a frame of requests.
func decodeRequests(p []byte) ([]fwdRequest, error) {
	r := binenc.NewReader(p, errBadFrame)
	reqs := make([]fwdRequest, r.Count("requests", 5))
	for i := range reqs {
		reqs[i] = fwdRequest{ID: r.Uvarint("id"), Method: r.String("method"), URI: r.String("uri"), Header: readHeader(r), Body: r.Bytes("body")}
	}
	if err := r.Done(); err != nil {
		return nil, err
	}
	return reqs, nil
}

// decodeResponses decodes the payload of a frame of responses.
func decodeResponses(p []byte) ([]fwdResponse, error) {
	r := binenc.NewReader(p, errBadFrame)
	resps := make([]fwdResponse, r.Count("responses", 4))
	for i := range resps {
		id, status := r.Uvarint("id"), r.Uvarint("status")
		if status < 100 || status > 999 {
			r.Fail("status")
		}
		resps[i] = fwdResponse{ID: id, Status: int(status), Header: readHeader(r), Body: r.Bytes("body")}
	}
	if err := r.Done(); err != nil {
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
