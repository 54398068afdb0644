package node

import (
	"os"
	"testing"

	"github.com/moxxie/moxxie/pki"
)

// TestDevCerts_NameTheSite: dev certificates name the appliance's site,
// and a data directory first run with no site, or another one, gets new
// ones; certificates that already name the site are kept.
func TestDevCerts_NameTheSite(t *testing.T) {
	dir := t.TempDir()
	l := &devLayout{Servers: []DevServer{{ID: "s1"}, {ID: "s2"}}}
	siteOf := func(id string) string {
		t.Helper()
		s, err := pki.SiteOfFile(pki.CertPath(dir, id))
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	for _, site := range []string{"", "west", "east"} {
		if err := devCerts(dir, l, site); err != nil {
			t.Fatal(err)
		}
		for _, s := range l.Servers {
			if got := siteOf(s.ID); got != site {
				t.Fatalf("after devCerts with site %q: %s names %q", site, s.ID, got)
			}
		}
	}
	before, err := os.ReadFile(pki.CertPath(dir, "s1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := devCerts(dir, l, "east"); err != nil {
		t.Fatal(err)
	}
	if after, err := os.ReadFile(pki.CertPath(dir, "s1")); err != nil || string(after) != string(before) {
		t.Errorf("a certificate already naming the site was reissued (%v)", err)
	}
}
