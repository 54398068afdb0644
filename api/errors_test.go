package api

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"

	"github.com/moxxie/moxxie/fsm"
)

func TestPathParams(t *testing.T) {
	for _, c := range []struct {
		pattern string
		want    []string
	}{
		{"/v1/status", nil},
		{"/v1/ipam/addresses/{id}", []string{"id"}},
		{"/v1/ipam/prefixes/{id}/allocate", []string{"id"}},
		{"/v1/tenants/{tenant}/projects/{name}", []string{"tenant", "name"}},
		{"/v1/files/{path...}", []string{"path"}},
		{"/v1/{$}", nil},
	} {
		if got := pathParams(c.pattern); !slices.Equal(got, c.want) {
			t.Errorf("pathParams(%q) = %q, want %q", c.pattern, got, c.want)
		}
	}
}

// TestNotFoundInPath checks that a write addressed by a path parameter
// names that parameter when its object is missing, and that a not-found
// error about another object keeps its own field, or none.
func TestNotFoundInPath(t *testing.T) {
	nf := func(what, id string) error { return &fsm.NotFoundError{What: what, ID: id} }
	for _, c := range []struct {
		name      string
		pattern   string
		target    string
		err       error
		wantField string
		wantSame  bool
	}{
		{"the addressed object", "/v1/ipam/addresses/{id}", "/v1/ipam/addresses/nope", nf("address", "nope"), "id", false},
		{"wrapped", "/v1/ipam/addresses/{id}", "/v1/ipam/addresses/nope", fmt.Errorf("release: %w", nf("address", "nope")), "id", false},
		{"the second parameter", "/v1/tenants/{tenant}/projects/{name}", "/v1/tenants/acme/projects/web", nf("project", "web"), "name", false},
		{"another object", "/v1/ipam/prefixes/{id}", "/v1/ipam/prefixes/p1", nf("tenant", "acme"), "", true},
		{"a field already named", "/v1/ipam/prefixes/{id}", "/v1/ipam/prefixes/p1", &fsm.FieldError{Field: "tenant", Err: nf("tenant", "p1")}, "tenant", true},
		{"no path parameter", "/v1/ipam/addresses", "/v1/ipam/addresses", nf("prefix", "p1"), "", true},
		{"a plain not-found", "/v1/ipam/addresses/{id}", "/v1/ipam/addresses/nope", fmt.Errorf("%w: address nope", fsm.ErrNotFound), "", true},
		{"another error", "/v1/ipam/addresses/{id}", "/v1/ipam/addresses/nope", fsm.ErrConflict, "", true},
		{"no error", "/v1/ipam/addresses/{id}", "/v1/ipam/addresses/nope", nil, "", true},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodDelete, c.target, nil)
			rt := &route{Route: Route{Method: http.MethodDelete, Path: c.pattern}}
			var routed *http.Request // r with its path values set
			mux := http.NewServeMux()
			mux.HandleFunc(rt.Pattern(), func(_ http.ResponseWriter, r *http.Request) { routed = r })
			mux.ServeHTTP(httptest.NewRecorder(), r)
			if routed == nil {
				t.Fatalf("%s does not match %s", c.target, rt.Pattern())
			}
			got := notFoundInPath(&call{r: routed, rt: rt}, c.err)
			if c.wantSame {
				if got != c.err {
					t.Fatalf("got %v, want the error unchanged", got)
				}
			} else if !errors.Is(got, fsm.ErrNotFound) {
				t.Fatalf("got %v, no longer a not-found error", got)
			}
			if c.err == nil {
				return
			}
			ae := toAPIError(got)
			if ae.status != 404 && errors.Is(c.err, fsm.ErrNotFound) {
				t.Errorf("status %d, want 404", ae.status)
			}
			if ae.field != c.wantField {
				t.Errorf("field %q, want %q", ae.field, c.wantField)
			}
			if ae.message != c.err.Error() {
				t.Errorf("message %q, want %q", ae.message, c.err.Error())
			}
		})
	}
}
