package ipam

import (
	"errors"
	"net/netip"
	"regexp"
	"strings"
	"testing"
)

// FuzzParsePrefix checks ParsePrefix on any string: an accepted prefix is
// canonical, carries no zone, is not IPv4-mapped and reads back as itself;
// a refused one fails with one of the package's kinds, and a non-canonical
// one names its canonical form, which is accepted.
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		"10.0.0.0/24", "10.0.0.5/24", "0.0.0.0/0", "10.0.0.1/32", "2001:db8::/48",
		"2001:DB8::/64", "2001:db8::1/64", "::ffff:10.0.0.0/104", "::ffff:0:0/96",
		"fe80::%eth0/64", "10.0.0.0", "10.0.0.0/33", "::/0", "::/129", "010.0.0.0/8", "",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePrefix(s)
		if err != nil {
			if p.IsValid() {
				t.Fatalf("ParsePrefix(%q) = %v with error %v", s, p, err)
			}
			kinds := []error{ErrInvalidPrefix, ErrZone, ErrMapped, ErrNotCanonical}
			if !isOneOf(err, kinds) {
				t.Fatalf("ParsePrefix(%q): error %v is none of %v", s, err, kinds)
			}
			if errors.Is(err, ErrNotCanonical) {
				m := netip.MustParsePrefix(s).Masked()
				if !strings.Contains(err.Error(), m.String()) {
					t.Fatalf("ParsePrefix(%q): %v does not name %s", s, err, m)
				}
				if _, err := ParsePrefix(m.String()); err != nil {
					t.Fatalf("ParsePrefix(%q) names %s, which is refused: %v", s, m, err)
				}
			}
			return
		}
		if !p.IsValid() || p.Masked() != p || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %v: not a canonical prefix", s, p)
		}
		if p.Addr().Is4In6() && p.Bits() >= 96 {
			t.Fatalf("ParsePrefix(%q) = %v: IPv4-mapped", s, p)
		}
		if q, err := ParsePrefix(p.String()); err != nil || q != p {
			t.Fatalf("ParsePrefix(%q) = %v, but ParsePrefix(%q) = %v, %v", s, p, p.String(), q, err)
		}
	})
}

// FuzzParseAddr checks ParseAddr the same way: an accepted address has no
// zone, is not IPv4-mapped and reads back as itself.
func FuzzParseAddr(f *testing.F) {
	for _, s := range []string{"10.0.0.1", "2001:db8::1", "2001:DB8::1", "::ffff:10.0.0.1", "fe80::1%eth0", "10.0.0.256", "", "::"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		a, err := ParseAddr(s)
		if err != nil {
			if kinds := []error{ErrInvalidAddr, ErrZone, ErrMapped}; !isOneOf(err, kinds) {
				t.Fatalf("ParseAddr(%q): error %v is none of %v", s, err, kinds)
			}
			return
		}
		if !a.IsValid() || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("ParseAddr(%q) = %v", s, a)
		}
		if b, err := ParseAddr(a.String()); err != nil || b != a {
			t.Fatalf("ParseAddr(%q) = %v, but ParseAddr(%q) = %v, %v", s, a, a.String(), b, err)
		}
	})
}

// hostnameRef is RFC 1123's grammar of a host name, with an optional
// trailing dot: ValidHostname's reference, with the length limit and the
// IPv4 rule checked beside it.
var hostnameRef = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$`)

// FuzzValidHostname compares ValidHostname with hostnameRef.
func FuzzValidHostname(f *testing.F) {
	for _, s := range []string{
		"web", "web.lab.example", "web.lab.example.", "-web", "web-", "a..b", ".", "", "1.2.3.4", "1.2.3",
		"xn--bcher-kva.example", "w_b", "wéb", strings.Repeat("a", 63), strings.Repeat("a", 64),
		strings.Repeat("a.", 126) + "a", strings.Repeat("a.", 127) + "a",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		name := strings.TrimSuffix(s, ".")
		a, aerr := netip.ParseAddr(name)
		want := hostnameRef.MatchString(s) && len(name) <= maxHostname && !(aerr == nil && a.Is4())
		err := ValidHostname(s)
		if (err == nil) != want {
			t.Fatalf("ValidHostname(%q) = %v, want valid %v", s, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidHostname) {
			t.Fatalf("ValidHostname(%q): error %v is not ErrInvalidHostname", s, err)
		}
	})
}

// ownerRef is the grammar of an owner reference, kind:id[/iface].
var ownerRef = regexp.MustCompile(`^[a-z]+:[A-Za-z0-9._-]+(/[A-Za-z0-9._-]+)?$`)

// FuzzValidOwner compares ValidOwner with ownerRef.
func FuzzValidOwner(f *testing.F) {
	for _, s := range []string{"vm:101/net0", "ct:105", "vm:", ":1", "VM:1", "vm:1/", "vm:1/a/b", "vm:a:b", "vm:1é", "", "x:" + strings.Repeat("1", 253), "x:" + strings.Repeat("1", 254)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		want := ownerRef.MatchString(s) && len(s) <= maxOwner
		err := ValidOwner(s)
		if (err == nil) != want {
			t.Fatalf("ValidOwner(%q) = %v, want valid %v", s, err, want)
		}
		if err != nil && !errors.Is(err, ErrInvalidOwner) {
			t.Fatalf("ValidOwner(%q): error %v is not ErrInvalidOwner", s, err)
		}
	})
}

func isOneOf(err error, kinds []error) bool {
	for _, k := range kinds {
		if errors.Is(err, k) {
			return true
		}
	}
	return false
}
