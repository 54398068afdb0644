package pki

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"net/url"
	"testing"
)

// mustURL parses s or fails the test.
func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func TestRoleOf(t *testing.T) {
	uri := func(s string) *url.URL { return mustURL(t, s) }
	tests := []struct {
		name    string
		ous     []string
		uris    []*url.URL
		want    Role
		wantErr error
	}{
		{"both", []string{"moxxie-server"}, []*url.URL{uri("moxxie://role/server")}, RoleServer, nil},
		{"uri only", nil, []*url.URL{uri("moxxie://role/agent")}, RoleAgent, nil},
		{"ou only", []string{"ops", "moxxie-client"}, nil, RoleClient, nil},
		{"other uris ignored", nil, []*url.URL{uri("spiffe://x/y"), uri("moxxie://role/client")}, RoleClient, nil},
		{"none", []string{"ops"}, []*url.URL{uri("spiffe://x/y")}, "", ErrNoRole},
		{"disagree", []string{"moxxie-server"}, []*url.URL{uri("moxxie://role/client")}, "", ErrRoleMismatch},
		{"two uris", nil, []*url.URL{uri("moxxie://role/client"), uri("moxxie://role/server")}, "", ErrRoleMismatch},
		{"two ous", []string{"moxxie-client", "moxxie-server"}, nil, "", ErrRoleMismatch},
		{"unknown", []string{"moxxie-root"}, nil, "", ErrUnknownRole},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := &x509.Certificate{Subject: pkix.Name{CommonName: "x", OrganizationalUnit: tt.ous}, URIs: tt.uris}
			got, err := RoleOf(c)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("RoleOf = %q, %v; want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("RoleOf = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
	if _, err := RoleOf(nil); err == nil {
		t.Error("RoleOf(nil) succeeded")
	}
}

func TestVerifyPeerRole(t *testing.T) {
	p := newTestPKI(t)
	srv, _ := p.issue(t, "s1", RoleServer)
	cli, _ := p.issue(t, "c1", RoleClient)
	sc, err := readCert(srv)
	if err != nil {
		t.Fatal(err)
	}
	cc, err := readCert(cli)
	if err != nil {
		t.Fatal(err)
	}
	verify := VerifyPeerRole(RoleServer)
	if err := verify([][]byte{sc.Raw}, [][]*x509.Certificate{{sc}}); err != nil {
		t.Errorf("server cert refused: %v", err)
	}
	if err := verify([][]byte{cc.Raw}, [][]*x509.Certificate{{cc}}); !errors.Is(err, ErrRoleMismatch) {
		t.Errorf("client cert: %v, want ErrRoleMismatch", err)
	}
	if err := verify([][]byte{sc.Raw}, nil); err == nil {
		t.Error("unverified certificate accepted")
	}
	if err := verify(nil, nil); !errors.Is(err, ErrNoPeerCertificate) {
		t.Errorf("no certificate: %v, want ErrNoPeerCertificate", err)
	}
}
