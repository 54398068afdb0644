package fsm

import (
	"encoding/json"
	"strconv"
	"time"
)

// json returns the list as json.Marshal writes it
// (TestAddressJSON_LikeEncodingJSON), written by hand: encoding/json's
// reflection over each address was a tenth of the servers' work for an
// allocation of 100 addresses. Idempotency records and the API's answers
// use it, so servers of different versions keep identical records.
func (l *AddressList) json() []byte {
	return l.appendJSON(make([]byte, 0, 64+addressJSONSize*len(l.Addresses)))
}

// addressJSONSize is room for one address of an allocation in JSON: its
// two UUIDs, two times and the rest come to about 350 bytes.
const addressJSONSize = 400

func (l *AddressList) appendJSON(b []byte) []byte {
	if l.Addresses == nil {
		return append(b, `{"addresses":null}`...)
	}
	b = append(b, `{"addresses":[`...)
	var ts timestamps
	for i, a := range l.Addresses {
		if i > 0 {
			b = append(b, ',')
		}
		b = a.appendJSON(b, &ts)
	}
	return append(b, "]}"...)
}

// timestamps remembers where in the output the last time was formatted:
// the addresses of one allocation share their creation and update times,
// and copying a formatted time costs less than formatting it again.
type timestamps struct {
	t          Timestamp
	start, end int // the last time's bytes in the output; end 0: none yet
}

func (c *timestamps) appendJSON(b []byte, t Timestamp) []byte {
	if c.end > 0 && c.t == t {
		return append(b, b[c.start:c.end]...)
	}
	c.t, c.start = t, len(b)
	b = t.appendJSON(b)
	c.end = len(b)
	return b
}

// appendJSON appends a as encoding/json writes it, formatting its times
// through ts.
func (a *Address) appendJSON(b []byte, ts *timestamps) []byte {
	if a == nil {
		return append(b, "null"...)
	}
	b = appendJSONField(b, `{"id":`, a.ID)
	b = appendJSONField(b, `,"address":`, a.Address)
	b = appendJSONField(b, `,"prefix_id":`, a.PrefixID)
	b = appendJSONField(b, `,"vrf":`, a.VRF)
	b = appendJSONField(b, `,"status":`, a.Status)
	for _, f := range [...]struct{ name, v string }{
		{`,"dns_name":`, a.DNSName}, {`,"tenant":`, a.Tenant}, {`,"project":`, a.Project},
		{`,"owner":`, a.Owner}, {`,"description":`, a.Description},
	} {
		if f.v != "" {
			b = appendJSONField(b, f.name, f.v)
		}
	}
	b = append(b, `,"create_index":`...)
	b = strconv.AppendUint(b, a.CreateIndex, 10)
	b = append(b, `,"modify_index":`...)
	b = strconv.AppendUint(b, a.ModifyIndex, 10)
	b = append(b, `,"created_at":`...)
	b = ts.appendJSON(b, a.CreatedAt)
	b = append(b, `,"updated_at":`...)
	b = ts.appendJSON(b, a.UpdatedAt)
	return append(b, '}')
}

// appendJSONField appends name and s as a JSON string.
func appendJSONField(b []byte, name, s string) []byte {
	return appendJSONString(append(b, name...), s)
}

// appendJSONString appends s quoted. Printable ASCII that encoding/json
// leaves alone is copied; anything else (quotes, backslashes, control
// characters, the HTML characters it escapes, non-ASCII) goes through
// json.Marshal, so the bytes always match its.
func appendJSONString(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			q, _ := json.Marshal(s) // a string always marshals
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// appendJSON appends t as MarshalJSON writes it.
func (t Timestamp) appendJSON(b []byte) []byte {
	b = append(b, '"')
	b = time.Unix(0, int64(t)).UTC().AppendFormat(b, time.RFC3339Nano)
	return append(b, '"')
}
