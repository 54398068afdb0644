package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/moxxie/moxxie/site"
)

// Sites: every server of a federated site is a member of the pool of all
// sites' servers (package site). Any server answers /v1/sites from its own
// view of the pool, and a request with ?site=NAME for another site is
// passed to a server of that site, its leader first, with the caller's
// token: tokens are per site, so the caller needs one the other site
// knows.

// headerSiteForwarded names the site that passed a request on to another
// site; a request is passed on once at most.
const headerSiteForwarded = "X-Moxxie-Site-Forwarded"

// ErrUnknownSite means ?site named a site the pool does not know.
var ErrUnknownSite = errors.New("unknown site")

// SiteBackend is what the sites' routes need from the server; node.Server
// implements it.
type SiteBackend interface {
	// LocalSite returns this server's site, empty when it is in none.
	LocalSite() string
	// Sites returns every site of this server's view of the pool, nil when
	// the server is not (yet) in the pool.
	Sites() []site.SiteStatus
	// SiteForward delivers r to a server of site name and returns its
	// response; ErrUnknownSite when the pool does not know the site.
	SiteForward(r *http.Request, name string) (*http.Response, error)
	// ForgetSite declares site name, of which no server is alive, gone for
	// good (site.Pool.Forget); ErrNotInPool when this server has not
	// joined the pool yet.
	ForgetSite(name string) error
}

// SitesResponse is the body of GET /v1/sites.
type SitesResponse struct {
	// Local is the site of the server that answered.
	Local string            `json:"local"`
	Sites []site.SiteStatus `json:"sites"`
}

func (s *server) sites() (SiteBackend, error) {
	sb, ok := s.b.(SiteBackend)
	if !ok || sb.LocalSite() == "" {
		return nil, &apiError{status: http.StatusNotFound, code: CodeNotFound, message: "this server is in no site (site.name in its configuration): sites are not federated"}
	}
	return sb, nil
}

func (s *server) handleSites(c *call) error {
	sb, err := s.sites()
	if err != nil {
		return err
	}
	out := SitesResponse{Local: sb.LocalSite(), Sites: sb.Sites()}
	if out.Sites == nil {
		out.Sites = []site.SiteStatus{}
	}
	writeJSON(c.w, http.StatusOK, out)
	return nil
}

func (s *server) handleSite(c *call) error {
	sb, err := s.sites()
	if err != nil {
		return err
	}
	name := c.r.PathValue("name")
	for _, st := range sb.Sites() {
		if st.Name == name {
			writeJSON(c.w, http.StatusOK, st)
			return nil
		}
	}
	return notFoundError("name", "site", name)
}

// ErrNotInPool means the server has not joined the pool of sites yet.
var ErrNotInPool = errors.New("this server has not joined the pool of sites yet")

// handleSiteForget forgets a site lost for good (POST
// /v1/sites/{name}/forget): every server of the pool then sees it left, so
// that it no longer counts in the quorum of the others. It runs on the
// leader, like every write, so that it is audited.
func (s *server) handleSiteForget(c *call) error {
	sb, err := s.sites()
	if err != nil {
		return err
	}
	name := c.r.PathValue("name")
	var alive *site.SiteAliveError
	switch err := sb.ForgetSite(name); {
	case errors.Is(err, site.ErrUnknownSite):
		return notFoundError("name", "site", name)
	case errors.Is(err, site.ErrOwnSite):
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "name",
			message: fmt.Sprintf("site %s is this server's own site: a site cannot forget itself (stop its servers to retire it)", name)}
	case errors.As(err, &alive):
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "name",
			message: fmt.Sprintf("site %s is not gone: this server sees %s alive; forget a site only once none of its servers is", name, strings.Join(alive.Alive, ", "))}
	case errors.Is(err, ErrNotInPool):
		return unavailable(CodeNotReady, err.Error(), err)
	case err != nil:
		return &apiError{status: http.StatusConflict, code: CodeConflict, field: "name", message: err.Error()}
	}
	for _, st := range sb.Sites() {
		if st.Name == name {
			writeJSON(c.w, http.StatusOK, st)
			return nil
		}
	}
	return notFoundError("name", "site", name)
}

// forwardSite passes a request with ?site=NAME on to that site and copies
// its answer back; it reports false when the request is for this site.
func (s *server) forwardSite(w *responseWriter, r *http.Request) bool {
	// A query string that does not parse is refused by checkQuery.
	q, err := url.ParseQuery(r.URL.RawQuery)
	name := q.Get("site")
	if err != nil || name == "" {
		return false
	}
	sb, ok := s.b.(SiteBackend)
	local := ""
	if ok {
		local = sb.LocalSite()
	}
	if name == local {
		return false
	}
	fail := func(ae *apiError) bool {
		s.writeError(w, r, ae)
		return true
	}
	switch {
	case local == "":
		return fail(invalid("site", "this server is in no site: ?site cannot name another"))
	case r.Header.Get(headerSiteForwarded) != "":
		return fail(&apiError{status: http.StatusBadGateway, code: CodeNoLeader, field: "site",
			message: "request for site " + name + " passed on by site " + r.Header.Get(headerSiteForwarded) + " reached site " + local})
	}
	fr := r.Clone(r.Context())
	fr.Header.Set(headerSiteForwarded, local)
	fr.Header.Set(headerRequestID, w.reqID)
	resp, err := sb.SiteForward(fr, name)
	switch {
	case errors.Is(err, ErrUnknownSite):
		return fail(notFoundError("site", "site", name))
	case err != nil:
		return fail(unavailable(CodeNoLeader, "could not reach site "+name+": "+err.Error(), err))
	}
	defer resp.Body.Close()
	h := w.Header()
	for k, vv := range resp.Header {
		if !hopHeaders[k] {
			h[k] = vv
		}
	}
	if resp.ContentLength >= 0 {
		h.Set("Content-Length", strconv.FormatInt(resp.ContentLength, 10))
	}
	w.WriteHeader(resp.StatusCode)
	if _, err := io.Copy(w, resp.Body); err != nil {
		s.log.WarnContext(r.Context(), "copying another site's response failed", "site", name, "error", err)
	}
	return true
}
