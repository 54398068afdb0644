package node

import (
	"bufio"
	"bytes"
	"errors"
	"net"
	"net/http"
	"reflect"
	"testing"
)

func sampleRequests() []fwdRequest {
	return []fwdRequest{
		{ID: 1, Method: "POST", URI: "/v1/ipam/prefixes/p/allocate?x=1", Header: http.Header{
			"Authorization": {"Bearer mxx_secret"}, "Idempotency-Key": {"k-1"}, "Accept": {"a", "b"}, "Empty": {},
		}, Body: []byte(`{"count":1}`)},
		{ID: 1 << 40, Method: "DELETE", URI: "/v1/ipam/addresses/a", Header: http.Header{}, Body: []byte{}},
	}
}

func sampleResponses() []fwdResponse {
	return []fwdResponse{
		{ID: 7, Status: 201, Header: http.Header{"Content-Type": {"application/json"}, "X-Request-Id": {"r"}}, Body: []byte(`{"addresses":[]}`)},
		{ID: 8, Status: 503, Header: http.Header{}, Body: []byte{}},
	}
}

func TestFwdCodec_RoundTrip(t *testing.T) {
	reqs := sampleRequests()
	got, err := decodeRequests(appendRequests(nil, reqs))
	if err != nil || !reflect.DeepEqual(got, reqs) {
		t.Fatalf("requests: %v\n got %+v\nwant %+v", err, got, reqs)
	}
	resps := sampleResponses()
	gotr, err := decodeResponses(appendResponses(nil, resps))
	if err != nil || !reflect.DeepEqual(gotr, resps) {
		t.Fatalf("responses: %v\n got %+v\nwant %+v", err, gotr, resps)
	}
	// Through a frame, as the connection carries them, twice in a row
	// through one reused buffer.
	var wire bytes.Buffer
	fw := &frameWriter{w: bufio.NewWriter(&wire)}
	for range 2 {
		if err := fw.write(func(b []byte) []byte { return appendRequests(b, reqs) }); err != nil {
			t.Fatal(err)
		}
	}
	r := bufio.NewReader(&wire)
	for range 2 {
		p, err := readPayload(r)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := decodeRequests(p); err != nil || !reflect.DeepEqual(got, reqs) {
			t.Fatalf("framed requests: %v %+v", err, got)
		}
	}
}

func TestFwdCodec_Malformed(t *testing.T) {
	valid := appendRequests(nil, sampleRequests())
	for name, p := range map[string][]byte{
		"empty":           {},
		"truncated":       valid[:len(valid)-1],
		"trailing bytes":  append(append([]byte{}, valid...), 0),
		"huge count":      {0xff, 0xff, 0xff, 0xff, 0x0f},
		"huge string":     {1, 1, 0xff, 0xff, 0xff, 0xff, 0x0f},
		"overlong varint": {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x01},
	} {
		if _, err := decodeRequests(p); !errors.Is(err, errBadFrame) {
			t.Errorf("%s: err = %v, want errBadFrame", name, err)
		}
	}
	bad := appendResponses(nil, []fwdResponse{{ID: 1, Status: 42, Header: http.Header{}}})
	if _, err := decodeResponses(bad); !errors.Is(err, errBadFrame) {
		t.Errorf("status 42: err = %v, want errBadFrame", err)
	}
	var wire bytes.Buffer
	wire.Write([]byte{0xff, 0xff, 0xff, 0xff})
	if _, err := readPayload(bufio.NewReader(&wire)); err == nil {
		t.Error("a frame of 4 GiB was accepted")
	}
}

// TestAwaitFramesAck checks how a follower tells a leader that takes
// batched frames from one of the previous version, which closes a
// connection of a type it does not know.
func TestAwaitFramesAck(t *testing.T) {
	for name, tc := range map[string]struct {
		leader func(net.Conn)
		want   error
	}{
		"acknowledged":     {func(c net.Conn) { c.Write([]byte{fwdFramesAck}) }, nil},
		"previous version": {func(c net.Conn) { c.Close() }, errFramesUnsupported},
	} {
		t.Run(name, func(t *testing.T) {
			follower, leader := net.Pipe()
			defer follower.Close()
			defer leader.Close()
			go tc.leader(leader)
			if err := awaitFramesAck(t.Context(), follower); !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
	follower, leader := net.Pipe()
	defer follower.Close()
	defer leader.Close()
	go leader.Write([]byte{'H'})
	if err := awaitFramesAck(t.Context(), follower); err == nil || errors.Is(err, errFramesUnsupported) {
		t.Fatalf("a wrong acknowledgment: err = %v", err)
	}
}

// fuzzRoundTrip checks one payload against a decoder: it never panics,
// and what it accepts encodes back to a payload that decodes to the same
// items.
func fuzzRoundTrip[T any](t *testing.T, p []byte, decode func([]byte) ([]T, error), encode func([]byte, []T) []byte) {
	items, err := decode(p)
	if err != nil {
		return
	}
	again, err := decode(encode(nil, items))
	if err != nil || !reflect.DeepEqual(again, items) {
		t.Fatalf("re-encoded items differ: %v\n%+v\n%+v", err, items, again)
	}
}

// FuzzDecodeRequests feeds the request decoder arbitrary payloads.
func FuzzDecodeRequests(f *testing.F) {
	f.Add(appendRequests(nil, sampleRequests()))
	f.Add(appendRequests(nil, nil))
	f.Add([]byte{1, 1, 0, 0, 0, 0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0x0f})
	f.Fuzz(func(t *testing.T, p []byte) { fuzzRoundTrip(t, p, decodeRequests, appendRequests) })
}

// FuzzDecodeResponses feeds the response decoder arbitrary payloads.
func FuzzDecodeResponses(f *testing.F) {
	f.Add(appendResponses(nil, sampleResponses()))
	f.Add(appendResponses(nil, nil))
	f.Add([]byte{1, 1, 0xc8, 0x01, 0, 0})
	f.Fuzz(func(t *testing.T, p []byte) { fuzzRoundTrip(t, p, decodeResponses, appendResponses) })
}
