package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"testing"
	"time"
)

func TestSiteOf(t *testing.T) {
	uri := func(s string) *url.URL { return mustURL(t, s) }
	tests := []struct {
		name    string
		uris    []*url.URL
		want    string
		wantErr bool
	}{
		{"none", []*url.URL{uri("moxxie://role/server")}, "", false},
		{"one", []*url.URL{uri("moxxie://role/server"), uri("moxxie://site/east")}, "east", false},
		{"other schemes ignored", []*url.URL{uri("spiffe://site/west"), uri("moxxie://site/east")}, "east", false},
		{"two", []*url.URL{uri("moxxie://site/east"), uri("moxxie://site/west")}, "", true},
		{"the same twice", []*url.URL{uri("moxxie://site/east"), uri("moxxie://site/east")}, "", true},
		{"not a site name", []*url.URL{uri("moxxie://site/East")}, "", true},
		{"empty", []*url.URL{uri("moxxie://site/")}, "", true},
		{"nested path", []*url.URL{uri("moxxie://site/east/x")}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := SiteOf(&x509.Certificate{Subject: pkix.Name{CommonName: "s1"}, URIs: tt.uris})
			if tt.wantErr {
				if !errors.Is(err, ErrBadSite) {
					t.Fatalf("SiteOf = %q, %v; want ErrBadSite", got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SiteOf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := SiteOf(nil); err == nil {
		t.Error("SiteOf(nil) succeeded")
	}
}

func TestCreateSiteCert(t *testing.T) {
	p := newTestPKI(t)
	if err := CreateSiteCert(p.caDir, p.dir, "s1", "east", []string{"127.0.0.1"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	c, err := readCert(CertPath(p.dir, "s1"))
	if err != nil {
		t.Fatal(err)
	}
	if r, err := RoleOf(c); err != nil || r != RoleServer {
		t.Errorf("RoleOf = %q, %v; want server", r, err)
	}
	if s, err := SiteOf(c); err != nil || s != "east" {
		t.Errorf("SiteOf = %q, %v; want east", s, err)
	}
	// A certificate made by CreateCert names no site.
	plain, _ := p.issue(t, "s2", RoleServer)
	if c, err := readCert(plain); err != nil {
		t.Fatal(err)
	} else if s, err := SiteOf(c); err != nil || s != "" {
		t.Errorf("SiteOf(CreateCert) = %q, %v; want none", s, err)
	}

	for _, bad := range []string{"", "East", "1east", "east/x", "a-very-long-site-name-of-33-chars"} {
		if err := CreateSiteCert(p.caDir, p.dir, "s3", bad, nil, time.Hour); !errors.Is(err, ErrBadSite) {
			t.Errorf("site %q: %v, want ErrBadSite", bad, err)
		}
	}
	if err := createCertIn(p.caDir, p.dir, "pve1", RoleAgent, "east", nil, time.Hour); !errors.Is(err, ErrBadSite) {
		t.Errorf("agent certificate with a site: %v, want ErrBadSite", err)
	}
}
