package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"strings"
)

// Role is what a certificate's holder is allowed to be in the cluster.
type Role string

// Roles a certificate can carry.
const (
	// RoleServer is a moxxied server: it serves the API and raft, and
	// connects to other servers.
	RoleServer Role = "server"
	// RoleClient is an operator or tool calling the API.
	RoleClient Role = "client"
	// RoleAgent is a moxxie-agent on a host.
	RoleAgent Role = "agent"
)

const (
	ouPrefix  = "moxxie-"
	uriScheme = "moxxie"
	uriHost   = "role"
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case RoleServer, RoleClient, RoleAgent:
		return true
	}
	return false
}

// String returns the role's name.
func (r Role) String() string { return string(r) }

// OU returns the Subject OrganizationalUnit that marks the role,
// "moxxie-<role>".
func (r Role) OU() string { return ouPrefix + string(r) }

// URI returns the URI SAN that marks the role, "moxxie://role/<role>".
func (r Role) URI() *url.URL {
	return &url.URL{Scheme: uriScheme, Host: uriHost, Path: "/" + string(r)}
}

// ParseRole returns the role named s.
func ParseRole(s string) (Role, error) {
	r := Role(s)
	if !r.Valid() {
		return "", fmt.Errorf("%w %q (want server, client or agent)", ErrUnknownRole, s)
	}
	return r, nil
}

// RoleOf returns the role carried by cert. The URI SAN and the
// OrganizationalUnit must name the same role when both are present; a
// certificate with neither, or with more than one role, is refused.
func RoleOf(cert *x509.Certificate) (Role, error) {
	if cert == nil {
		return "", ErrNoPeerCertificate
	}
	var fromURI, fromOU []Role
	for _, u := range cert.URIs {
		if u.Scheme == uriScheme && u.Host == uriHost {
			fromURI = append(fromURI, Role(strings.TrimPrefix(u.Path, "/")))
		}
	}
	for _, ou := range cert.Subject.OrganizationalUnit {
		if name, ok := strings.CutPrefix(ou, ouPrefix); ok {
			fromOU = append(fromOU, Role(name))
		}
	}
	if len(fromURI) > 1 || len(fromOU) > 1 {
		return "", fmt.Errorf("%w: certificate %q carries more than one role", ErrRoleMismatch, cert.Subject.CommonName)
	}
	var r Role
	switch {
	case len(fromURI) == 1 && len(fromOU) == 1:
		if fromURI[0] != fromOU[0] {
			return "", fmt.Errorf("%w: certificate %q has URI role %q but OU role %q", ErrRoleMismatch, cert.Subject.CommonName, fromURI[0], fromOU[0])
		}
		r = fromURI[0]
	case len(fromURI) == 1:
		r = fromURI[0]
	case len(fromOU) == 1:
		r = fromOU[0]
	default:
		return "", fmt.Errorf("%w: %q", ErrNoRole, cert.Subject.CommonName)
	}
	if !r.Valid() {
		return "", fmt.Errorf("%w %q in certificate %q", ErrUnknownRole, r, cert.Subject.CommonName)
	}
	return r, nil
}
