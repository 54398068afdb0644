package main

import (
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// ipamFakeAPI is a small in-memory IPAM and DNS API over HTTPS, following
// docs/ipam.md closely enough to drive moxxiectl: objects, list filters,
// lowest-free allocation, errors naming their field, and Idempotency-Key
// replays.
type ipamFakeAPI struct {
	*httptest.Server
	caFile string

	mu      sync.Mutex
	seq     int
	calls   []string // "METHOD path?query", in order
	bodies  []string // request bodies, in order
	keys    []string // Idempotency-Key of each request, in order
	replays map[string]recordedAnswer
	objs    map[string]*collection
}

type recordedAnswer struct {
	status int
	body   []byte
}

// collection keeps objects of one kind in creation order.
type collection struct {
	order []string
	m     map[string]map[string]any
}

func (c *collection) add(o map[string]any) {
	id := o["id"].(string)
	c.order = append(c.order, id)
	c.m[id] = o
}

func (c *collection) del(id string) {
	delete(c.m, id)
	for i, x := range c.order {
		if x == id {
			c.order = append(c.order[:i], c.order[i+1:]...)
			return
		}
	}
}

func (c *collection) all() []map[string]any {
	out := []map[string]any{}
	for _, id := range c.order {
		out = append(out, c.m[id])
	}
	return out
}

const fakeTime = "2025-06-01T12:00:00Z"

// fakeError is an API error answer.
type fakeError struct {
	status           int
	code, msg, field string
}

func (e *fakeError) Error() string { return e.msg }

func errNotFound(what, id string) *fakeError {
	return &fakeError{404, "not_found", fmt.Sprintf("%s %q not found", what, id), ""}
}

func errInvalid(field, format string, args ...any) *fakeError {
	return &fakeError{400, "invalid", fmt.Sprintf(format, args...), field}
}

func errConflict(field, format string, args ...any) *fakeError {
	return &fakeError{409, "conflict", fmt.Sprintf(format, args...), field}
}

func newIPAMFakeAPI(t *testing.T) *ipamFakeAPI {
	t.Helper()
	f := &ipamFakeAPI{replays: map[string]recordedAnswer{}, objs: map[string]*collection{}}
	for _, k := range []string{"vrf", "prefix", "range", "address", "vlan", "vni", "vlan-group", "vni-pool", "zone"} {
		f.objs[k] = &collection{m: map[string]map[string]any{}}
	}
	f.objs["vrf"].add(map[string]any{"id": "global", "create_index": 1, "modify_index": 1, "created_at": fakeTime})

	mux := http.NewServeMux()
	handle := func(pattern string, status int, h func(r *http.Request, body map[string]any) (any, error)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			var body map[string]any
			if r.ContentLength != 0 && r.Method != http.MethodGet && r.Method != http.MethodDelete {
				dec := json.NewDecoder(r.Body)
				dec.UseNumber()
				if err := dec.Decode(&body); err != nil {
					writeErr(w, 400, "invalid", "bad JSON: "+err.Error(), "")
					return
				}
			}
			f.mu.Lock()
			v, err := h(r, body)
			f.mu.Unlock()
			if fe, ok := err.(*fakeError); ok {
				writeErr(w, fe.status, fe.code, fe.msg, fe.field)
				return
			}
			if err != nil {
				writeErr(w, 500, "internal", err.Error(), "")
				return
			}
			writeJSON(w, status, v)
		})
	}
	f.routes(handle)

	f.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		r.Body = io.NopCloser(strings.NewReader(string(body)))
		r.ContentLength = int64(len(body))
		call := r.Method + " " + r.URL.Path
		if r.URL.RawQuery != "" {
			call += "?" + r.URL.RawQuery
		}
		key := r.Header.Get("Idempotency-Key")
		f.mu.Lock()
		f.calls = append(f.calls, call)
		f.bodies = append(f.bodies, string(body))
		f.keys = append(f.keys, key)
		prev, replay := f.replays[key]
		f.mu.Unlock()
		w.Header().Set("X-Request-Id", "req-7")
		w.Header().Set("X-Moxxie-Index", "42")
		if r.Header.Get("Authorization") != "Bearer tok" {
			writeErr(w, 401, "unauthorized", "missing or unknown token", "")
			return
		}
		if r.Method != http.MethodPost || key == "" {
			mux.ServeHTTP(w, r)
			return
		}
		if replay {
			w.Header().Set("Idempotent-Replayed", "true")
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(prev.status)
			w.Write(prev.body)
			return
		}
		rec := httptest.NewRecorder()
		mux.ServeHTTP(rec, r)
		if rec.Code < 300 {
			f.mu.Lock()
			f.replays[key] = recordedAnswer{rec.Code, rec.Body.Bytes()}
			f.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	f.Config.ErrorLog = log.New(io.Discard, "", 0)
	f.StartTLS()
	t.Cleanup(f.Close)
	f.caFile = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(f.caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: f.Certificate().Raw}), 0o644); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *ipamFakeAPI) env() map[string]string {
	return map[string]string{envAddr: f.URL, envToken: "tok", envCACert: f.caFile}
}

// lastCall returns the last request's call line, body and Idempotency-Key.
func (f *ipamFakeAPI) lastCall() (call, body, key string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := len(f.calls) - 1
	return f.calls[n], f.bodies[n], f.keys[n]
}

func (f *ipamFakeAPI) nextID(prefix string) string {
	f.seq++
	return prefix + strconv.Itoa(f.seq)
}

// allow rejects fields of body not in names, as the API rejects unknown
// fields.
func allow(body map[string]any, names ...string) error {
	for k := range body {
		found := false
		for _, n := range names {
			found = found || n == k
		}
		if !found {
			return errInvalid(k, "unknown field %q", k)
		}
	}
	return nil
}

func str(body map[string]any, k string) string {
	s, _ := body[k].(string)
	return s
}

func num(body map[string]any, k string) int {
	n, _ := body[k].(json.Number)
	i, _ := strconv.Atoi(string(n))
	return i
}

// copyFields copies the string fields names of body into o when present.
func copyFields(o, body map[string]any, names ...string) {
	for _, n := range names {
		if v, ok := body[n]; ok {
			o[n] = v
		}
	}
}

// filter keeps the objects whose fields match the query parameters given
// in params (parameter name to field name).
func filter(list []map[string]any, r *http.Request, params map[string]string) []map[string]any {
	out := []map[string]any{}
	for _, o := range list {
		ok := true
		for p, field := range params {
			if v := r.URL.Query().Get(p); v != "" && fmt.Sprint(o[field]) != v {
				ok = false
			}
		}
		if ok {
			out = append(out, o)
		}
	}
	return out
}

// usable returns the usable addresses of an active prefix (at most 4096),
// skipping network and broadcast of IPv4 prefixes shorter than /31.
func usable(p map[string]any) []netip.Addr {
	pfx := netip.MustParsePrefix(p["prefix"].(string))
	var out []netip.Addr
	for a := pfx.Addr(); pfx.Contains(a) && len(out) < 4096; a = a.Next() {
		out = append(out, a)
	}
	if pfx.Addr().Is4() && pfx.Bits() < 31 && p["is_pool"] != true && len(out) > 2 {
		out = out[1 : len(out)-1]
	}
	return out
}

func (f *ipamFakeAPI) prefix(id string) (map[string]any, error) {
	p, ok := f.objs["prefix"].m[id]
	if !ok {
		return nil, errNotFound("prefix", id)
	}
	return p, nil
}

// taken reports whether a of prefix p is allocated or in an IP range.
func (f *ipamFakeAPI) taken(p map[string]any, a netip.Addr) bool {
	for _, o := range f.objs["address"].m {
		if o["prefix_id"] == p["id"] && o["address"] == a.String() {
			return true
		}
	}
	for _, r := range f.objs["range"].m {
		if r["prefix_id"] == p["id"] {
			s, e := netip.MustParseAddr(r["start_address"].(string)), netip.MustParseAddr(r["end_address"].(string))
			if a.Compare(s) >= 0 && a.Compare(e) <= 0 {
				return true
			}
		}
	}
	return false
}

func (f *ipamFakeAPI) free(p map[string]any) []netip.Addr {
	var out []netip.Addr
	for _, a := range usable(p) {
		if !f.taken(p, a) {
			out = append(out, a)
		}
	}
	return out
}

// view returns p with its utilization.
func (f *ipamFakeAPI) view(p map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range p {
		out[k] = v
	}
	size := len(usable(p))
	used := size - len(f.free(p))
	if p["status"] == "container" {
		size, used = 0, 0
	}
	pct := 0.0
	if size > 0 {
		pct = float64(int(float64(used)/float64(size)*10000+0.5)) / 100
	}
	out["utilization"] = map[string]any{"used": used, "size": size, "percent": pct}
	return out
}

func (f *ipamFakeAPI) views(list []map[string]any) []map[string]any {
	out := []map[string]any{}
	for _, p := range list {
		out = append(out, f.view(p))
	}
	return out
}

// newAddress allocates a of prefix p with the fields of body.
func (f *ipamFakeAPI) newAddress(p map[string]any, a netip.Addr, body map[string]any) map[string]any {
	o := map[string]any{"id": f.nextID("a"), "address": a.String(), "prefix_id": p["id"], "vrf": p["vrf"], "status": "active",
		"create_index": f.seq, "modify_index": f.seq, "created_at": fakeTime, "updated_at": fakeTime}
	copyFields(o, body, "status", "dns_name", "tenant", "owner", "description")
	f.objs["address"].add(o)
	return o
}

// allocate hands out addresses of p as docs/ipam.md describes.
func (f *ipamFakeAPI) allocate(p map[string]any, body map[string]any) (any, error) {
	if p["status"] != "active" {
		return nil, errConflict("prefix_id", "prefix %s is a container: allocate from one of its active prefixes", p["prefix"])
	}
	if n := str(body, "dns_name"); n != "" && (strings.Contains(n, "_") || strings.HasPrefix(n, "-")) {
		return nil, errInvalid("dns_name", "%q is not a valid DNS name", n)
	}
	free := f.free(p)
	if addr := str(body, "address"); addr != "" {
		a, err := netip.ParseAddr(addr)
		if err != nil || !netip.MustParsePrefix(p["prefix"].(string)).Contains(a) {
			return nil, errInvalid("address", "%s is not an address of %s", addr, p["prefix"])
		}
		if f.taken(p, a) {
			if body["fallback"] != true || len(free) == 0 {
				return nil, errConflict("address", "%s is taken", a)
			}
			a = free[0]
		}
		return map[string]any{"addresses": []any{f.newAddress(p, a, body)}}, nil
	}
	count := num(body, "count")
	if count == 0 {
		count = 1
	}
	if count > len(free) {
		return nil, &fakeError{409, "exhausted", fmt.Sprintf("%d requested, %d available", count, len(free)), "count"}
	}
	out := []any{}
	for _, a := range free[:count] {
		out = append(out, f.newAddress(p, a, body))
	}
	return map[string]any{"addresses": out}, nil
}

func (f *ipamFakeAPI) pool(kind, idOrName string) (map[string]any, error) {
	c := f.objs[kind]
	if p, ok := c.m[idOrName]; ok {
		return p, nil
	}
	for _, p := range c.m {
		if p["name"] == idOrName {
			return p, nil
		}
	}
	return nil, errNotFound(strings.ReplaceAll(kind, "-", " "), idOrName)
}

func (f *ipamFakeAPI) routes(handle func(string, int, func(*http.Request, map[string]any) (any, error))) {
	get := func(kind, what string) func(*http.Request, map[string]any) (any, error) {
		return func(r *http.Request, _ map[string]any) (any, error) {
			o, ok := f.objs[kind].m[r.PathValue("id")]
			if !ok {
				return nil, errNotFound(what, r.PathValue("id"))
			}
			if kind == "prefix" {
				return f.view(o), nil
			}
			return o, nil
		}
	}
	del := func(kind, what string) func(*http.Request, map[string]any) (any, error) {
		return func(r *http.Request, _ map[string]any) (any, error) {
			o, ok := f.objs[kind].m[r.PathValue("id")]
			if !ok {
				return nil, errNotFound(what, r.PathValue("id"))
			}
			f.objs[kind].del(r.PathValue("id"))
			return o, nil
		}
	}

	// VRFs.
	handle("GET /v1/ipam/vrfs", 200, func(*http.Request, map[string]any) (any, error) {
		return map[string]any{"vrfs": f.objs["vrf"].all()}, nil
	})
	handle("POST /v1/ipam/vrfs", 201, func(_ *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "id", "description", "tenant"); err != nil {
			return nil, err
		}
		if _, ok := f.objs["vrf"].m[str(b, "id")]; ok {
			return nil, errConflict("id", "VRF %q exists", str(b, "id"))
		}
		o := map[string]any{"id": str(b, "id"), "create_index": 20, "modify_index": 20, "created_at": fakeTime}
		copyFields(o, b, "description", "tenant")
		f.objs["vrf"].add(o)
		return o, nil
	})
	handle("GET /v1/ipam/vrfs/{id}", 200, get("vrf", "VRF"))
	handle("DELETE /v1/ipam/vrfs/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
		for _, p := range f.objs["prefix"].m {
			if p["vrf"] == r.PathValue("id") {
				return nil, errConflict("id", "VRF %q holds prefixes", r.PathValue("id"))
			}
		}
		return del("vrf", "VRF")(r, b)
	})

	// Prefixes.
	handle("GET /v1/ipam/prefixes", 200, func(r *http.Request, _ map[string]any) (any, error) {
		list := filter(f.objs["prefix"].all(), r, map[string]string{"vrf": "vrf", "tenant": "tenant", "parent_id": "parent_id", "status": "status"})
		if fam := r.URL.Query().Get("family"); fam != "" {
			var keep []map[string]any
			for _, p := range list {
				if is4 := netip.MustParsePrefix(p["prefix"].(string)).Addr().Is4(); is4 == (fam == "4") {
					keep = append(keep, p)
				}
			}
			list = keep
		}
		if c := r.URL.Query().Get("contains"); c != "" {
			in, err := netip.ParsePrefix(c)
			if err != nil {
				a := netip.MustParseAddr(c)
				in = netip.PrefixFrom(a, a.BitLen())
			}
			var keep []map[string]any
			for _, p := range list {
				if pfx := netip.MustParsePrefix(p["prefix"].(string)); pfx.Bits() <= in.Bits() && pfx.Contains(in.Addr()) {
					keep = append(keep, p)
				}
			}
			list = keep
		}
		return map[string]any{"prefixes": f.views(list)}, nil
	})
	handle("POST /v1/ipam/prefixes", 201, func(_ *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "prefix", "vrf", "status", "is_pool", "tenant", "gateway", "description"); err != nil {
			return nil, err
		}
		pfx, err := netip.ParsePrefix(str(b, "prefix"))
		if err != nil {
			return nil, errInvalid("prefix", "%q is not a CIDR", str(b, "prefix"))
		}
		if pfx.Masked() != pfx {
			return nil, errInvalid("prefix", "%s is not canonical: did you mean %s?", pfx, pfx.Masked())
		}
		vrf := str(b, "vrf")
		if vrf == "" {
			vrf = "global"
		}
		o := map[string]any{"id": f.nextID("p"), "prefix": pfx.String(), "vrf": vrf, "status": "active", "is_pool": b["is_pool"] == true,
			"create_index": f.seq, "modify_index": f.seq, "created_at": fakeTime, "updated_at": fakeTime}
		copyFields(o, b, "status", "tenant", "gateway", "description")
		for _, p := range f.objs["prefix"].m {
			other := netip.MustParsePrefix(p["prefix"].(string))
			if p["vrf"] == vrf && other.Overlaps(pfx) {
				if p["status"] == "container" && other.Bits() < pfx.Bits() {
					o["parent_id"] = p["id"]
					continue
				}
				return nil, errConflict("prefix", "%s overlaps %s", pfx, other)
			}
		}
		f.objs["prefix"].add(o)
		if gw := str(b, "gateway"); gw != "" {
			f.newAddress(o, netip.MustParseAddr(gw), map[string]any{"status": "reserved", "description": "gateway"})
		}
		return f.view(o), nil
	})
	handle("GET /v1/ipam/prefixes/{id}", 200, get("prefix", "prefix"))
	handle("PATCH /v1/ipam/prefixes/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "tenant", "description", "is_pool"); err != nil {
			return nil, err
		}
		p, err := f.prefix(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		copyFields(p, b, "tenant", "description", "is_pool")
		return f.view(p), nil
	})
	handle("DELETE /v1/ipam/prefixes/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
		for _, a := range f.objs["address"].m {
			if a["prefix_id"] == r.PathValue("id") {
				return nil, errConflict("id", "prefix %s holds addresses", r.PathValue("id"))
			}
		}
		return del("prefix", "prefix")(r, b)
	})
	handle("POST /v1/ipam/prefixes/{id}/allocate", 201, func(r *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "count", "address", "fallback", "force", "status", "dns_name", "tenant", "owner", "description"); err != nil {
			return nil, err
		}
		p, err := f.prefix(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		return f.allocate(p, b)
	})
	handle("POST /v1/ipam/prefixes/{id}/allocate-prefix", 201, func(r *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "prefix_length", "status", "is_pool", "tenant", "description"); err != nil {
			return nil, err
		}
		parent, err := f.prefix(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		if parent["status"] != "container" {
			return nil, errConflict("prefix_id", "prefix %s is not a container", parent["prefix"])
		}
		ppfx := netip.MustParsePrefix(parent["prefix"].(string))
		bits := num(b, "prefix_length")
		if bits <= ppfx.Bits() || bits > ppfx.Addr().BitLen() {
			return nil, errInvalid("prefix_length", "prefix_length %d does not fit in %s", bits, ppfx)
		}
	next:
		for a := ppfx.Addr(); ppfx.Contains(a); {
			cand := netip.PrefixFrom(a, bits)
			for _, p := range f.objs["prefix"].m {
				if p["vrf"] == parent["vrf"] && netip.MustParsePrefix(p["prefix"].(string)).Overlaps(cand) && p["id"] != parent["id"] {
					for range 1 << (ppfx.Addr().BitLen() - bits) { // the next block
						a = a.Next()
					}
					continue next
				}
			}
			o := map[string]any{"id": f.nextID("p"), "prefix": cand.String(), "vrf": parent["vrf"], "status": "active", "is_pool": b["is_pool"] == true,
				"parent_id": parent["id"], "create_index": f.seq, "modify_index": f.seq, "created_at": fakeTime, "updated_at": fakeTime}
			copyFields(o, b, "status", "tenant", "description")
			f.objs["prefix"].add(o)
			return f.view(o), nil
		}
		return nil, &fakeError{409, "exhausted", "1 requested, 0 available: no free /" + strconv.Itoa(bits) + " in " + ppfx.String(), "prefix_length"}
	})
	handle("GET /v1/ipam/prefixes/{id}/available", 200, func(r *http.Request, _ map[string]any) (any, error) {
		p, err := f.prefix(r.PathValue("id"))
		if err != nil {
			return nil, err
		}
		limit := 50
		if l := r.URL.Query().Get("limit"); l != "" {
			limit, _ = strconv.Atoi(l)
		}
		out := []string{}
		for _, a := range f.free(p) {
			if len(out) == limit {
				break
			}
			out = append(out, a.String())
		}
		return map[string]any{"available": out}, nil
	})

	// IP ranges.
	handle("GET /v1/ipam/ip-ranges", 200, func(r *http.Request, _ map[string]any) (any, error) {
		return map[string]any{"ip_ranges": filter(f.objs["range"].all(), r, map[string]string{"prefix_id": "prefix_id"})}, nil
	})
	handle("POST /v1/ipam/ip-ranges", 201, func(_ *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "prefix_id", "start_address", "end_address", "description"); err != nil {
			return nil, err
		}
		if _, err := f.prefix(str(b, "prefix_id")); err != nil {
			return nil, err
		}
		s, err1 := netip.ParseAddr(str(b, "start_address"))
		e, err2 := netip.ParseAddr(str(b, "end_address"))
		if err1 != nil || err2 != nil || e.Less(s) {
			return nil, errInvalid("end_address", "invalid range %s-%s", str(b, "start_address"), str(b, "end_address"))
		}
		o := map[string]any{"id": f.nextID("r"), "create_index": f.seq, "created_at": fakeTime}
		copyFields(o, b, "prefix_id", "start_address", "end_address", "description")
		f.objs["range"].add(o)
		return o, nil
	})
	handle("GET /v1/ipam/ip-ranges/{id}", 200, get("range", "IP range"))
	handle("DELETE /v1/ipam/ip-ranges/{id}", 200, del("range", "IP range"))

	// Addresses.
	handle("GET /v1/ipam/addresses", 200, func(r *http.Request, _ map[string]any) (any, error) {
		list := filter(f.objs["address"].all(), r, map[string]string{"prefix_id": "prefix_id", "vrf": "vrf", "tenant": "tenant",
			"owner": "owner", "dns_name": "dns_name", "status": "status"})
		// The cursor is the ID of a page's last address.
		if after := r.URL.Query().Get("after"); after != "" {
			for i, a := range list {
				if a["id"] == after {
					list = list[i+1:]
					break
				}
			}
		}
		page := map[string]any{}
		if l, _ := strconv.Atoi(r.URL.Query().Get("limit")); l > 0 && len(list) > l {
			list = list[:l]
			page["next"] = list[l-1]["id"]
		}
		page["addresses"] = list
		return page, nil
	})
	handle("POST /v1/ipam/addresses", 201, func(_ *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "address", "vrf", "fallback", "force", "status", "dns_name", "tenant", "project", "owner", "description"); err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(str(b, "address"))
		if err != nil {
			return nil, errInvalid("address", "%q is not an IP address", str(b, "address"))
		}
		vrf := str(b, "vrf")
		if vrf == "" {
			vrf = "global"
		}
		for _, p := range f.objs["prefix"].all() {
			if p["vrf"] == vrf && p["status"] == "active" && netip.MustParsePrefix(p["prefix"].(string)).Contains(a) {
				delete(b, "vrf")
				return f.allocate(p, b)
			}
		}
		return nil, &fakeError{404, "not_found", fmt.Sprintf("no active prefix of VRF %s contains %s", vrf, a), "address"}
	})
	handle("GET /v1/ipam/addresses/{id}", 200, get("address", "address"))
	handle("PATCH /v1/ipam/addresses/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "status", "dns_name", "tenant", "owner", "description"); err != nil {
			return nil, err
		}
		a, ok := f.objs["address"].m[r.PathValue("id")]
		if !ok {
			return nil, errNotFound("address", r.PathValue("id"))
		}
		copyFields(a, b, "status", "dns_name", "tenant", "owner", "description")
		return a, nil
	})
	handle("DELETE /v1/ipam/addresses/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
		a, err := del("address", "address")(r, b)
		if err != nil {
			return nil, err
		}
		out := map[string]any{"address": a}
		if r.URL.Query().Get("force") != "true" {
			out["quarantined_until"] = "2025-06-01T12:10:00Z"
		}
		return out, nil
	})

	// VLAN groups and VNI pools, VLANs and VNIs.
	for _, k := range []struct{ pools, ids, kind, number, filter, listField, idListField string }{
		{"vlan-groups", "vlans", "vlan", "vid", "group_id", "vlan_groups", "vlans"},
		{"vni-pools", "vnis", "vni", "vni", "pool_id", "vni_pools", "vnis"},
	} {
		poolKind := k.pools[:len(k.pools)-1]
		handle("GET /v1/ipam/"+k.pools, 200, func(*http.Request, map[string]any) (any, error) {
			return map[string]any{k.listField: f.objs[poolKind].all()}, nil
		})
		handle("POST /v1/ipam/"+k.pools, 201, func(_ *http.Request, b map[string]any) (any, error) {
			if err := allow(b, "name", "ranges", "tenant", "description"); err != nil {
				return nil, err
			}
			ranges := b["ranges"]
			if ranges == nil {
				ranges = []any{map[string]any{"first": 1, "last": 4094}}
			}
			o := map[string]any{"id": f.nextID("g"), "kind": k.kind, "name": str(b, "name"), "ranges": ranges,
				"utilization":  map[string]any{"used": 0, "size": 4094, "percent": 0},
				"create_index": f.seq, "modify_index": f.seq, "created_at": fakeTime}
			copyFields(o, b, "tenant", "description")
			f.objs[poolKind].add(o)
			return o, nil
		})
		handle("GET /v1/ipam/"+k.pools+"/{id}", 200, func(r *http.Request, _ map[string]any) (any, error) {
			return f.pool(poolKind, r.PathValue("id"))
		})
		handle("PATCH /v1/ipam/"+k.pools+"/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
			if err := allow(b, "name", "ranges", "description", "tenant"); err != nil {
				return nil, err
			}
			p, err := f.pool(poolKind, r.PathValue("id"))
			if err != nil {
				return nil, err
			}
			copyFields(p, b, "name", "ranges", "description", "tenant")
			return p, nil
		})
		handle("DELETE /v1/ipam/"+k.pools+"/{id}", 200, func(r *http.Request, _ map[string]any) (any, error) {
			p, err := f.pool(poolKind, r.PathValue("id"))
			if err != nil {
				return nil, err
			}
			f.objs[poolKind].del(p["id"].(string))
			return p, nil
		})
		handle("POST /v1/ipam/"+k.pools+"/{id}/allocate", 201, func(r *http.Request, b map[string]any) (any, error) {
			if err := allow(b, k.number, "fallback", "name", "tenant", "owner", "description"); err != nil {
				return nil, err
			}
			p, err := f.pool(poolKind, r.PathValue("id"))
			if err != nil {
				return nil, err
			}
			used := map[int]bool{}
			for _, v := range f.objs[k.kind].m {
				if v["pool_id"] == p["id"] {
					used[v[k.number].(int)] = true
				}
			}
			n := num(b, k.number)
			if n != 0 && used[n] && b["fallback"] != true {
				return nil, errConflict(k.number, "%s %d is taken", strings.ToUpper(k.kind), n)
			}
			if n == 0 || used[n] {
				n = 0
				rs, _ := json.Marshal(p["ranges"])
				var ranges []struct{ First, Last int }
				_ = json.Unmarshal(rs, &ranges)
				for _, rg := range ranges {
					for i := rg.First; i <= rg.Last && n == 0; i++ {
						if !used[i] {
							n = i
						}
					}
				}
				if n == 0 {
					return nil, &fakeError{409, "exhausted", "no free " + strings.ToUpper(k.kind), k.number}
				}
			}
			o := map[string]any{"id": f.nextID(k.kind[:2]), "kind": k.kind, "pool_id": p["id"], k.number: n,
				"create_index": f.seq, "created_at": fakeTime}
			copyFields(o, b, "name", "tenant", "owner", "description")
			f.objs[k.kind].add(o)
			return o, nil
		})
		handle("GET /v1/ipam/"+k.ids, 200, func(r *http.Request, _ map[string]any) (any, error) {
			list := f.objs[k.kind].all()
			if g := r.URL.Query().Get(k.filter); g != "" {
				p, err := f.pool(poolKind, g)
				if err != nil {
					return nil, err
				}
				var keep []map[string]any
				for _, v := range list {
					if v["pool_id"] == p["id"] {
						keep = append(keep, v)
					}
				}
				list = keep
			}
			return map[string]any{k.idListField: filter(list, r, map[string]string{"tenant": "tenant"})}, nil
		})
		handle("GET /v1/ipam/"+k.ids+"/{id}", 200, get(k.kind, strings.ToUpper(k.kind)))
		handle("PATCH /v1/ipam/"+k.ids+"/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
			if err := allow(b, "name", "tenant", "project", "owner", "description"); err != nil {
				return nil, err
			}
			v, ok := f.objs[k.kind].m[r.PathValue("id")]
			if !ok {
				return nil, errNotFound(strings.ToUpper(k.kind), r.PathValue("id"))
			}
			copyFields(v, b, "name", "tenant", "project", "owner", "description")
			v["modify_index"], v["updated_at"] = f.seq, fakeTime
			return v, nil
		})
		handle("DELETE /v1/ipam/"+k.ids+"/{id}", 200, del(k.kind, strings.ToUpper(k.kind)))
	}

	// DNS zones.
	handle("GET /v1/dns/zones", 200, func(*http.Request, map[string]any) (any, error) {
		return map[string]any{"zones": f.objs["zone"].all()}, nil
	})
	handle("POST /v1/dns/zones", 201, func(_ *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "name", "ttl", "tenant", "description"); err != nil {
			return nil, err
		}
		name := strings.TrimSuffix(strings.ToLower(str(b, "name")), ".")
		if name == "" || strings.Contains(name, " ") {
			return nil, errInvalid("name", "%q is not a DNS name", str(b, "name"))
		}
		if _, ok := f.objs["zone"].m[name]; ok {
			return nil, errConflict("name", "zone %s exists", name)
		}
		ttl := num(b, "ttl")
		if ttl == 0 {
			ttl = 300
		}
		o := map[string]any{"id": name, "ttl": ttl, "create_index": 30, "created_at": fakeTime}
		copyFields(o, b, "tenant", "description")
		f.objs["zone"].add(o)
		return o, nil
	})
	handle("GET /v1/dns/zones/{id}", 200, get("zone", "zone"))
	handle("PATCH /v1/dns/zones/{id}", 200, func(r *http.Request, b map[string]any) (any, error) {
		if err := allow(b, "ttl", "description"); err != nil {
			return nil, err
		}
		z, ok := f.objs["zone"].m[r.PathValue("id")]
		if !ok {
			return nil, errNotFound("zone", r.PathValue("id"))
		}
		copyFields(z, b, "ttl", "description")
		z["modify_index"], z["updated_at"] = f.seq, fakeTime
		return z, nil
	})
	handle("DELETE /v1/dns/zones/{id}", 200, del("zone", "zone"))
}
