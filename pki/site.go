package pki

import (
	"crypto/x509"
	"fmt"
	"net/url"
	"regexp"
	"strings"
	"time"
)

// A server certificate may name the site of the federation its server
// belongs to, as the URI SAN "moxxie://site/<name>". Servers of all
// sites share one CA, so the role alone says only "some server of the
// federation"; the site is what binds a server's requests to another
// site (DR replicas and releases, docs/dr.md) to its own site.

const uriSiteHost = "site"

// siteNameRe is the rule for site names, as the site configuration has it.
var siteNameRe = regexp.MustCompile(`^[a-z][a-z0-9-]{0,31}$`)

// SiteURI returns the URI SAN that names site, "moxxie://site/<site>".
func SiteURI(site string) *url.URL {
	return &url.URL{Scheme: uriScheme, Host: uriSiteHost, Path: "/" + site}
}

// SiteOf returns the site cert names, or "" when it names none. A
// certificate naming more than one site, or a site that is not a valid
// site name, is refused with ErrBadSite.
func SiteOf(cert *x509.Certificate) (string, error) {
	if cert == nil {
		return "", ErrNoPeerCertificate
	}
	var sites []string
	for _, u := range cert.URIs {
		if u.Scheme == uriScheme && u.Host == uriSiteHost {
			sites = append(sites, strings.TrimPrefix(u.Path, "/"))
		}
	}
	switch {
	case len(sites) == 0:
		return "", nil
	case len(sites) > 1:
		return "", fmt.Errorf("%w: certificate %q names more than one site (%s)", ErrBadSite, cert.Subject.CommonName, strings.Join(sites, ", "))
	case !siteNameRe.MatchString(sites[0]):
		return "", fmt.Errorf("%w: certificate %q names site %q, which is not a site name", ErrBadSite, cert.Subject.CommonName, sites[0])
	}
	return sites[0], nil
}

// CreateSiteCert issues a server certificate for name as CreateCert does,
// naming site as the site of the federation the server belongs to.
func CreateSiteCert(caDir, outDir, name, site string, hosts []string, validity time.Duration) error {
	if !siteNameRe.MatchString(site) {
		return fmt.Errorf("pki: certificate %q: %w: %q must be a lowercase letter and up to 31 of a-z, 0-9 and '-'", name, ErrBadSite, site)
	}
	return createCertIn(caDir, outDir, name, RoleServer, site, hosts, validity)
}
