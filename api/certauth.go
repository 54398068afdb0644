package api

import (
	"crypto/x509"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/pki"
)

// Agent certificates. A moxxie-agent may authenticate with a certificate
// of the cluster CA whose role (pki.RoleOf) is agent instead of a bearer
// token. The API listener verifies any client certificate against the CA
// during the handshake (tls.VerifyClientCertIfGiven); a request without an
// Authorization header whose connection presented one is authenticated
// from it here:
//
//   - An agent certificate acts with role agent under the accessor
//     "cert:<CN>", which is what the audit log shows. It is bound to the
//     host its common name names: on the agent routes
//     (/v1/sdn/hosts/{name}...) it may act only for that host; every other
//     route is decided by RBAC for role agent.
//   - A server certificate (of this site or another site of the
//     federation, which share the CA) acts with role site: it may only
//     send the DR plans its site holds for this one
//     (PUT /v1/dr/replicas/{source}, docs/dr.md) and release the failovers
//     of that site's plans. It acts for the site it names (pki.SiteOf)
//     and no other: a server certificate naming no site acts for none
//     (checkSiteBinding).
//   - Client certificates authenticate nothing: operators and tools use
//     tokens.
//   - A bearer token, when given, wins: the certificate is not looked at.
//
// Followers forward requests before authenticating them. The leader then
// sees the follower's connection, not the client's, so the follower
// passes the identity of the certificate its client presented in the
// X-Moxxie-Client-Cert header. The leader believes that header only on
// the servers' forwarding link (forwardedByPeer: no TLS as the HTTP server
// sees it, and the forwarding mark), which only server certificates of
// the CA can reach. On a request from a client it is ignored, and a
// follower replaces whatever a client sent in it before forwarding.

// headerClientCert carries the identity of a verified client certificate
// from a follower to the leader, as a URL-encoded form (cn, role,
// not_after in Unix seconds, and site when the certificate names one).
const headerClientCert = "X-Moxxie-Client-Cert"

// certAccessorPrefix starts the accessor ID of a certificate-authenticated
// caller: "cert:<CN>".
const certAccessorPrefix = "cert:"

// certIdentity is what a verified client certificate says of its holder.
type certIdentity struct {
	// name is the Subject CommonName.
	name string
	// role is the certificate's role, or "" when it carries no valid one.
	role pki.Role
	// notAfter is the certificate's expiry.
	notAfter time.Time
	// site is the site a server certificate names, or "" when it names
	// none or no valid one.
	site string
}

// identityOf returns the identity of a certificate already verified
// against the cluster CA.
func identityOf(cert *x509.Certificate) certIdentity {
	role, err := pki.RoleOf(cert)
	if err != nil {
		role = ""
	}
	site, err := pki.SiteOf(cert)
	if err != nil {
		site = ""
	}
	return certIdentity{name: cert.Subject.CommonName, role: role, notAfter: cert.NotAfter, site: site}
}

// encode returns the identity in the form of headerClientCert.
func (id certIdentity) encode() string {
	v := url.Values{
		"cn":        {id.name},
		"role":      {string(id.role)},
		"not_after": {strconv.FormatInt(id.notAfter.Unix(), 10)},
	}
	if id.site != "" {
		v.Set("site", id.site)
	}
	return v.Encode()
}

// parseCertIdentity reads a headerClientCert value.
func parseCertIdentity(v string) (certIdentity, bool) {
	q, err := url.ParseQuery(v)
	if err != nil || len(q["cn"]) != 1 || len(q["role"]) != 1 || len(q["not_after"]) != 1 || len(q["site"]) > 1 {
		return certIdentity{}, false
	}
	na, err := strconv.ParseInt(q.Get("not_after"), 10, 64)
	if err != nil {
		return certIdentity{}, false
	}
	return certIdentity{name: q.Get("cn"), role: pki.Role(q.Get("role")), notAfter: time.Unix(na, 0), site: q.Get("site")}, true
}

// connCertIdentity returns the identity of the client certificate the
// request's own TLS connection presented and verified, if any.
func connCertIdentity(r *http.Request) (certIdentity, bool) {
	if r.TLS == nil || len(r.TLS.VerifiedChains) == 0 || len(r.TLS.VerifiedChains[0]) == 0 {
		return certIdentity{}, false
	}
	return identityOf(r.TLS.VerifiedChains[0][0]), true
}

// clientCertIdentity returns the identity of the certificate the caller
// presented: from the connection of a client's request, or from
// headerClientCert on a request a peer server forwarded. The header is
// ignored everywhere else.
func clientCertIdentity(r *http.Request) (certIdentity, bool) {
	if r.TLS != nil {
		return connCertIdentity(r)
	}
	if !forwardedByPeer(r) {
		return certIdentity{}, false
	}
	v := r.Header.Get(headerClientCert)
	if v == "" {
		return certIdentity{}, false
	}
	return parseCertIdentity(v)
}

// setForwardedCertIdentity replaces headerClientCert of a request about to
// be forwarded with the identity of the certificate the client presented
// to this server, or removes it: a client cannot speak for the follower.
func setForwardedCertIdentity(fr *http.Request, from *http.Request) {
	fr.Header.Del(headerClientCert)
	if id, ok := connCertIdentity(from); ok {
		fr.Header.Set(headerClientCert, id.encode())
	}
}

// authenticateCert authenticates a call without a bearer token from the
// client certificate identity id; see the top of this file.
func (s *server) authenticateCert(c *call, id certIdentity) error {
	role, what := auth.RoleAgent, "agent"
	switch id.role {
	case pki.RoleAgent:
	case pki.RoleServer:
		role, what = auth.RoleSite, "server"
	case "":
		return unauthorized(fmt.Sprintf("client certificate %q carries no valid moxxie role and does not authenticate; send a bearer token (Authorization: Bearer <secret>)", id.name), challenge)
	default:
		return unauthorized(fmt.Sprintf("certificates of role %s do not authenticate to the API (only agent and server certificates do); send a bearer token (Authorization: Bearer <secret>)", id.role), challenge)
	}
	if id.name == "" {
		return unauthorized(what+" certificate has no common name", challenge)
	}
	if !s.b.Now().Before(id.notAfter) {
		return unauthorized(fmt.Sprintf("%s certificate %q expired at %s", what, id.name, id.notAfter.UTC().Format(time.RFC3339)), challenge)
	}
	d := auth.Authorize(role, "", c.rt.Perm, c.rt.Scope)
	if !d.Allowed {
		return &apiError{status: http.StatusForbidden, code: CodeForbidden, message: d.Reason}
	}
	if c.rt.Perm == auth.PermAgent {
		if host := c.r.PathValue("name"); host != id.name {
			return &apiError{status: http.StatusForbidden, code: CodeForbidden,
				message: fmt.Sprintf("the agent certificate of host %s may act only on /v1/sdn/hosts/%s, not on host %q", id.name, id.name, host)}
		}
	}
	c.token = &fsm.Token{
		AccessorID:  certAccessorPrefix + id.name,
		Description: what + " certificate " + id.name,
		Role:        string(role),
	}
	c.tenant = d.Tenant
	if role == auth.RoleSite {
		c.site = id.site
	}
	return nil
}

// checkSiteBinding lets a caller of role site act for site source only
// when its server certificate names that site: the servers of every site
// share the CA, so the role alone would let any of them speak for any
// site. field names the request part that gave source. Callers of other
// roles (an admin's token) are not bound to a site.
func checkSiteBinding(c *call, field, source string) error {
	if c.token == nil || c.token.Role != string(auth.RoleSite) {
		return nil
	}
	who := "token " + c.token.AccessorID
	if strings.HasPrefix(c.token.AccessorID, certAccessorPrefix) {
		who = c.token.Description
	}
	if c.site == "" {
		return &apiError{status: http.StatusForbidden, code: CodeForbidden, field: field,
			message: fmt.Sprintf("%s names no site, so it may act for none; role site acts only with a server certificate that names its site (moxxied tls cert create --server --site SITE, docs/dr.md)", who)}
	}
	if c.site != source {
		return &apiError{status: http.StatusForbidden, code: CodeForbidden, field: field,
			message: fmt.Sprintf("%s is of site %s and may act only for it, not for site %q", who, c.site, source)}
	}
	return nil
}
