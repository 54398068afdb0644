package node

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

func TestNamedSet_TouchedBy(t *testing.T) {
	addrs := []*fsm.Address{
		{ID: "apex", DNSName: "lab.test", Address: "10.0.0.1"},
		{ID: "web", DNSName: "Web.Lab.Test.", Address: "10.0.1.5"},
		{ID: "deep", DNSName: "a.b.lab.test", Address: "10.0.1.255"},
		{ID: "xlab", DNSName: "www.xlab.test", Address: "10.0.2.1"},
		{ID: "other", DNSName: "lab.testx", Address: "10.0.0.2"},
		{ID: "v6", DNSName: "v6.other.test", Address: "2001:db8::1"},
		{ID: "mapped", DNSName: "m.other.test", Address: "::ffff:10.0.1.7"},
	}
	s := newNamedSet(addrs)
	ids := func(as []*fsm.Address) []string {
		var out []string
		for _, a := range as {
			out = append(out, a.ID)
		}
		slices.Sort(out)
		return out
	}
	for _, tc := range []struct {
		name    string
		forward []string
		reverse []string
		want    []string
	}{
		{"a forward zone: its apex and the names under it, not its look-alikes", []string{"lab.test"}, nil, []string{"apex", "deep", "web"}},
		{"a zone above", []string{"test"}, nil, []string{"apex", "deep", "mapped", "v6", "web", "xlab"}},
		{"a reverse zone", nil, []string{"10.0.1.0/24"}, []string{"deep", "mapped", "web"}},
		{"a v6 reverse zone", nil, []string{"2001:db8::/32"}, []string{"v6"}},
		{"both, each address once", []string{"lab.test"}, []string{"10.0.0.0/16"}, []string{"apex", "deep", "mapped", "other", "web", "xlab"}},
		{"nothing under them", []string{"none.test"}, []string{"192.168.0.0/16"}, nil},
	} {
		touch := zoneTouch{forward: map[string]bool{}}
		for _, z := range tc.forward {
			touch.forward[z] = true
		}
		for _, p := range tc.reverse {
			touch.reverse = append(touch.reverse, netip.MustParsePrefix(p))
		}
		if got := ids(s.touchedBy(touch)); !slices.Equal(got, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, got, tc.want)
		}
	}

	// Replacing and removing keep both orders whole.
	s.put(&fsm.Address{ID: "web", DNSName: "web.elsewhere.test", Address: "10.9.0.1"})
	s.remove(s.get("deep"))
	touch := zoneTouch{forward: map[string]bool{"lab.test": true}, reverse: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}}
	if got := ids(s.touchedBy(touch)); !slices.Equal(got, []string{"apex", "mapped"}) {
		t.Errorf("after a rename and a removal: %v", got)
	}
	if s.len() != 6 || s.byName.Len() != 6 || s.byAddr.Len() != 6 {
		t.Errorf("%d addresses, %d by name, %d by address; want 6 each", s.len(), s.byName.Len(), s.byAddr.Len())
	}
}
