package api

import (
	"io"
	"net/http"
	"slices"
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
	forgotten bool // west was forgotten
}

// ForgetSite forgets west, which is down; east is its own site and north
// is alive.
func (b *siteBackend) ForgetSite(name string) error {
	switch name {
	case "east":
		return site.ErrOwnSite
	case "north":
		return &site.SiteAliveError{Site: "north", Alive: []string{"north/s2"}}
	case "west":
		b.forgotten = true
		return nil
	}
	return site.ErrUnknownSite
}

func (b *siteBackend) LocalSite() string { return b.local }

func (b *siteBackend) Sites() []site.SiteStatus {
	west := site.SiteStatus{Name: "west", Role: site.RoleServer, State: "down", Votes: []string{"east"}, Quorum: 1}
	if b.forgotten {
		west = site.SiteStatus{Name: "west", Role: site.RoleServer, State: site.SiteLeft}
	}
	return []site.SiteStatus{{Name: "east", Role: site.RoleServer, State: site.SiteUp, Quorum: 1}, west}
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
	b, ts := newSiteBackend(t, "east")

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

func TestSites_Forget(t *testing.T) {
	b, ts := newSiteBackend(t, "east")
	stopAuditClock(t) // refused requests are audited up to a rate

	wantError(t, ts.do("POST", "/v1/sites/east/forget", ""), 409, CodeConflict, "name")
	if d := wantError(t, ts.do("POST", "/v1/sites/north/forget", ""), 409, CodeConflict, "name"); !strings.Contains(d.Message, "north/s2") {
		t.Errorf("refusal of a site alive does not name its server alive: %s", d.Message)
	}
	wantError(t, ts.do("POST", "/v1/sites/nowhere/forget", ""), 404, CodeNotFound, "name")
	if b.forgotten {
		t.Fatal("a refused forget forgot west")
	}
	var west site.SiteStatus
	mustJSON(t, wantStatus(t, ts.do("POST", "/v1/sites/west/forget", ""), 200), &west)
	if !b.forgotten || west.Name != "west" || west.State != site.SiteLeft {
		t.Fatalf("after forget: forgotten %v, west %+v", b.forgotten, west)
	}
	// Each attempt is audited, with how it ended.
	_, es, err := ts.b.State().AuditEntries(nil, fsm.AuditFilter{Action: "POST /v1/sites/{name}/forget"})
	if err != nil {
		t.Fatal(err)
	}
	var results []string
	for _, e := range es {
		results = append(results, e.Object+" "+e.Result)
	}
	if want := []string{"/v1/sites/east/forget conflict", "/v1/sites/north/forget conflict", "/v1/sites/nowhere/forget not_found", "/v1/sites/west/forget ok"}; !slices.Equal(results, want) {
		t.Errorf("audit entries %q, want %q", results, want)
	}
}

func TestSites_NotFederated(t *testing.T) {
	ts := newLeader(t)
	wantError(t, ts.do("GET", "/v1/sites", ""), 404, CodeNotFound, "")
	wantError(t, ts.do("GET", "/v1/status?site=west", ""), 400, CodeInvalidRequest, "site")
}
