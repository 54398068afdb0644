package site

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/hashicorp/memberlist"
)

// largestMeta has every field at its longest.
func largestMeta() meta {
	return meta{
		Site:     "a" + strings.Repeat("b", 31),
		Node:     strings.Repeat("n", 64),
		Role:     RoleWitness,
		API:      "https://" + strings.Repeat("h", maxAPIAddress-len("https://")-len(":65535")) + ":65535",
		Leader:   true,
		Healthy:  true,
		Instance: strings.Repeat("f", 16),
	}
}

func TestMeta_RoundTrip(t *testing.T) {
	for _, m := range []meta{
		{Site: "a", Node: "s1", Role: RoleServer, API: "https://a.example:8443", Instance: "0123456789abcdef"},
		{Site: "fra1", Node: "n.1", Role: RoleWitness, API: "https://[2001:db8::1]:7300", Leader: true, Healthy: true, Down: []string{"ams1", "lon1"}, Instance: "fedcba9876543210"},
		largestMeta(),
	} {
		b, dropped, err := encodeMeta(m, memberlist.MetaMaxSize)
		if err != nil || len(dropped) != 0 {
			t.Fatalf("encode %+v: %v, dropped %v", m, err, dropped)
		}
		got, err := decodeMeta(b)
		if err != nil {
			t.Fatalf("decode %s: %v", b, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("round trip of %+v gives %+v", m, got)
		}
	}
}

func TestMeta_SizeBound(t *testing.T) {
	m := largestMeta()
	if len(m.API) != maxAPIAddress {
		t.Fatalf("the largest API address is %d bytes, want %d", len(m.API), maxAPIAddress)
	}
	b, _, err := encodeMeta(m, memberlist.MetaMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	// meta.go documents this bound and what it leaves for votes.
	base := len(b)
	if base > 301 {
		t.Fatalf("the largest meta without votes is %d bytes, over the documented 301", base)
	}
	vote := func(i int) string { return fmt.Sprintf("v%030d", i) + "x" }
	for i := range 40 {
		m.Down = append(m.Down, vote(i))
	}
	b, dropped, err := encodeMeta(m, memberlist.MetaMaxSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > memberlist.MetaMaxSize {
		t.Fatalf("meta of %d bytes", len(b))
	}
	kept := len(m.Down) - len(dropped)
	if kept < 5 {
		t.Fatalf("only %d votes of 32-byte site names fit", kept)
	}
	if !reflect.DeepEqual(dropped, m.Down[kept:]) {
		t.Fatalf("dropped %v, want the last votes %v", dropped, m.Down[kept:])
	}
	got, err := decodeMeta(b)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got.Down, m.Down[:kept]) {
		t.Fatalf("decoded votes %v, want %v", got.Down, m.Down[:kept])
	}
	t.Logf("largest meta: %d bytes without votes; %d votes of 32-byte site names fit", base, kept)
}

func TestMeta_DecodeRejects(t *testing.T) {
	const ok = `"s":"a","n":"s1","r":"server","a":"https://a.example:8443","i":"0123456789abcdef"`
	for _, tc := range []struct {
		name, in string
	}{
		{"empty", ``},
		{"not JSON", `site a`},
		{"not an object", `["a"]`},
		{"no site", `{"n":"s1","r":"server","a":"https://a.example:8443","i":"0123456789abcdef"}`},
		{"bad site", `{` + strings.Replace(ok, `"s":"a"`, `"s":"A/b"`, 1) + `}`},
		{"bad node", `{` + strings.Replace(ok, `"n":"s1"`, `"n":"s 1"`, 1) + `}`},
		{"bad role", `{` + strings.Replace(ok, `"r":"server"`, `"r":"boss"`, 1) + `}`},
		{"no API address", `{` + strings.Replace(ok, `"a":"https://a.example:8443"`, `"a":""`, 1) + `}`},
		{"http API address", `{` + strings.Replace(ok, `https:`, `http:`, 1) + `}`},
		{"bad instance", `{` + strings.Replace(ok, `0123456789abcdef`, `0123`, 1) + `}`},
		{"bad vote", `{` + ok + `,"d":["B"]}`},
		{"duplicate vote", `{` + ok + `,"d":["b","b"]}`},
		{"vote not a list", `{` + ok + `,"d":"b"}`},
		{"too large", `{` + ok + `,"z":"` + strings.Repeat("z", memberlist.MetaMaxSize) + `"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if m, err := decodeMeta([]byte(tc.in)); err == nil {
				t.Fatalf("decoded %+v", m)
			}
		})
	}
	if _, err := decodeMeta([]byte(`{` + ok + `,"future":1}`)); err != nil {
		t.Fatalf("an unknown key is refused: %v", err)
	}
}

// FuzzDecodeMeta checks that decodeMeta never panics and that what it
// accepts encodes back, within the size limit, to the same meta.
func FuzzDecodeMeta(f *testing.F) {
	f.Add([]byte(`{"s":"a","n":"s1","r":"server","a":"https://a.example:8443","i":"0123456789abcdef"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := decodeMeta(b)
		if err != nil {
			return
		}
		out, dropped, err := encodeMeta(m, memberlist.MetaMaxSize)
		if err != nil || len(dropped) != 0 {
			t.Fatalf("accepted %q but cannot encode it back: %v, dropped %v", b, err, dropped)
		}
		again, err := decodeMeta(out)
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", out, err)
		}
		if !reflect.DeepEqual(again, m) {
			t.Fatalf("%+v re-encodes to %+v", m, again)
		}
	})
}
