package node

import (
	"encoding/base64"
	"strings"
	"testing"
)

func TestParseGossipKeys(t *testing.T) {
	k16 := base64.StdEncoding.EncodeToString(make([]byte, 16))
	k32 := base64.StdEncoding.EncodeToString([]byte(strings.Repeat("k", 32)))
	for _, tc := range []struct {
		text string
		n    int
		err  string
	}{
		{k32 + "\n", 1, ""},
		{"\n " + k32 + " \n" + k16 + "\n\n", 2, ""},
		{"", 0, "no gossip key"},
		{"not base64!\n", 0, "line 1 is not base64"},
		{k32 + "\n" + base64.StdEncoding.EncodeToString(make([]byte, 20)), 0, "line 2 has 20 bytes"},
	} {
		keys, err := parseGossipKeys(tc.text)
		switch {
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("parseGossipKeys(%q) = %v, want %q", tc.text, err, tc.err)
		case tc.err == "" && (err != nil || len(keys) != tc.n):
			t.Errorf("parseGossipKeys(%q) = %d keys, %v; want %d", tc.text, len(keys), err, tc.n)
		}
	}
}

func TestSiteLocalAddr(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"10.1.0.11:7946", "10.1.0.11:0"},
		{"[2001:db8::11]:7946", "[2001:db8::11]:0"},
		{"0.0.0.0:7946", ""},
		{"[::]:7946", ""},
		{"", ""},
		{"gossip.example:7946", ""},
	} {
		got := ""
		if a := siteLocalAddr(tc.in); a != nil {
			got = a.String()
		}
		if got != tc.want {
			t.Errorf("siteLocalAddr(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
