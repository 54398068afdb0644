package api

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/moxxie/moxxie/fsm"
	"github.com/moxxie/moxxie/site"
)

// siteBackend is a fakeBackend in a site of a federation: it knows two
// sites and answers a request passed on to west itself.
type siteBackend struct {
	*fakeBackend
	local     string
	forwarded []*http.Request
}

func (b *siteBackend) LocalSite() string { return b.local }

func (b *siteBackend) Sites() []site.SiteStatus {
	return []site.SiteStatus{
		{Name: "east", Role: site.RoleServer, State: site.SiteUp, Quorum: 1},
		{Name: "west", Role: site.RoleServer, State: "down", Votes: []string{"east"}, Quorum: 1},
	}
}

func (b *siteBackend) SiteForward(r *http.Request, name string) (*http.Response, error) {
	if name != "west" {
		return nil, ErrUnknownSite
	}
	b.forwarded = append(b.forwarded, r)
	return &http.Response{StatusCode: http.StatusTeapot, Header: http.Header{"X-From": {"west"}},
		Body: io.NopCloser(strings.NewReader(`{"site":"west"}`)), ContentLength: 15}, nil
}

func TestSites_ListGetAndForward(t *testing.T) {
	b := &siteBackend{fakeBackend: newFakeBackend("s1", fsm.New(), true), local: "east"}
	ts := &testServer{t: t, b: b.fakeBackend}
	ts.h = New(b, Options{})
	ts.srv = ts.h.(*server)
	ts.bootstrap()

	var list SitesResponse
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sites", ""), 200), &list)
	if list.Local != "east" || len(list.Sites) != 2 || list.Sites[1].State != "down" {
		t.Fatalf("sites %+v", list)
	}
	var west site.SiteStatus
	mustJSON(t, wantStatus(t, ts.do("GET", "/v1/sites/west", ""), 200), &west)
	if west.Name != "west" || len(west.Votes) != 1 {
		t.Fatalf("west %+v", west)
	}
	wantError(t, ts.do("GET", "/v1/sites/nowhere", ""), 404, CodeNotFound, "name")
	wantError(t, ts.do("GET", "/v1/sites", "", "Authorization", ""), 401, CodeUnauthorized, "")

	// ?site=west is passed on as it is, with the caller's token, once.
	rec := ts.do("GET", "/v1/status?site=west", "")
	if rec.Code != http.StatusTeapot || rec.Header().Get("X-From") != "west" || rec.Body.String() != `{"site":"west"}` {
		t.Fatalf("forwarded answer %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
	if len(b.forwarded) != 1 || b.forwarded[0].Header.Get(headerSiteForwarded) != "east" || b.forwarded[0].Header.Get("Authorization") == "" {
		t.Fatalf("forwarded request %+v", b.forwarded)
	}
	// This site's own name is served here; an unknown site is a 404; a
	// request another site passed on is not passed on again.
	wantStatus(t, ts.do("GET", "/v1/sites?site=east", ""), 200)
	wantError(t, ts.do("GET", "/v1/status?site=nowhere", ""), 404, CodeNotFound, "site")
	wantError(t, ts.do("GET", "/v1/status?site=west", "", headerSiteForwarded, "north"), 502, CodeNoLeader, "site")
	if len(b.forwarded) != 1 {
		t.Fatalf("%d requests passed on", len(b.forwarded))
	}
}

func TestSites_NotFederated(t *testing.T) {
	ts := newLeader(t)
	wantError(t, ts.do("GET", "/v1/sites", ""), 404, CodeNotFound, "")
	wantError(t, ts.do("GET", "/v1/status?site=west", ""), 400, CodeInvalidRequest, "site")
}
