package pvesim_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/moxxie/moxxie/pvesim"
	"github.com/moxxie/moxxie/pvesim/schema"
)

// The fidelity test holds the simulator to the official Proxmox VE API
// schema in pvesim/schema: it serves exactly the extract's routes, its GET
// answers have the schema's shape, it rejects bad parameters with Proxmox's
// 400 body, and it wants authentication where Proxmox does.

const (
	fidelityTokenID     = "root@pam!moxxie"
	fidelityTokenSecret = "0b6a3f9e-fidelity"
	fidelityUser        = "root@pam"
	fidelityPassword    = "fidelity-password"
)

func newFidelitySim(t *testing.T) *pvesim.Sim {
	t.Helper()
	sim, err := pvesim.New(pvesim.Config{
		Tokens: map[string]string{fidelityTokenID: fidelityTokenSecret},
		Users:  map[string]string{fidelityUser: fidelityPassword},
	})
	if err != nil {
		t.Fatalf("pvesim.New: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// fidelityResponse is one answer of the simulated API.
type fidelityResponse struct {
	Code   int
	Header http.Header
	Body   []byte
}

// envelope decodes Proxmox's {"data": ...} envelope. It reports whether the
// body is a JSON object with a "data" member.
func (r fidelityResponse) envelope() (data any, errs map[string]string, message string, ok bool) {
	var env map[string]json.RawMessage
	if err := json.Unmarshal(r.Body, &env); err != nil {
		return nil, nil, "", false
	}
	raw, ok := env["data"]
	if !ok {
		return nil, nil, "", false
	}
	if err := json.Unmarshal(raw, &data); err != nil {
		return nil, nil, "", false
	}
	if e, has := env["errors"]; has {
		if err := json.Unmarshal(e, &errs); err != nil {
			return nil, nil, "", false
		}
	}
	if m, has := env["message"]; has {
		_ = json.Unmarshal(m, &message)
	}
	return data, errs, message, true
}

// call sends one request to h: parameters go in the query string for GET
// and DELETE and in a form body for POST and PUT. auth is the
// Authorization header; empty sends none.
func fidelityCall(h http.Handler, method, path string, params url.Values, auth string) fidelityResponse {
	target := "/api2/json" + path
	var body *strings.Reader
	if method == http.MethodPost || method == http.MethodPut {
		body = strings.NewReader(params.Encode())
	} else {
		if len(params) > 0 {
			target += "?" + params.Encode()
		}
		body = strings.NewReader("")
	}
	req := httptest.NewRequest(method, target, body)
	if method == http.MethodPost || method == http.MethodPut {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return fidelityResponse{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
}

func fidelityAuth() string {
	return "PVEAPIToken=" + fidelityTokenID + "=" + fidelityTokenSecret
}

// fidelityIDs are the objects of a seeded simulator that fill path parameters.
type fidelityIDs struct {
	node                 string // the first node
	qemuNode, qemuVMID   string
	lxcNode, lxcVMID     string
	storageNode, storage string
	zone, vnet           string
	taskNode, upid       string
}

// discover finds objects to address in a seeded simulator, through the API
// as a client would: /cluster/resources for nodes, guests and storage, the
// SDN lists for a zone and a vnet (created when the seed has none), and
// /nodes/{node}/tasks for a task (started when there is none).
func fidelityDiscover(t *testing.T, h http.Handler) fidelityIDs {
	t.Helper()
	get := func(path string) any {
		t.Helper()
		resp := fidelityCall(h, http.MethodGet, path, nil, fidelityAuth())
		data, _, _, ok := resp.envelope()
		if resp.Code != http.StatusOK || !ok {
			t.Fatalf("GET %s: %d %s", path, resp.Code, resp.Body)
		}
		return data
	}
	post := func(path string, params url.Values) any {
		t.Helper()
		resp := fidelityCall(h, http.MethodPost, path, params, fidelityAuth())
		data, _, _, ok := resp.envelope()
		if resp.Code != http.StatusOK || !ok {
			t.Fatalf("POST %s %v: %d %s", path, params, resp.Code, resp.Body)
		}
		return data
	}
	str := func(m map[string]any, k string) string {
		switch v := m[k].(type) {
		case string:
			return v
		case float64:
			return strconv.FormatFloat(v, 'f', -1, 64)
		}
		return ""
	}

	var ids fidelityIDs
	var nodes []string
	for _, it := range fidelityList(get("/nodes")) {
		if n := str(it, "node"); n != "" {
			nodes = append(nodes, n)
		}
	}
	sort.Strings(nodes)
	if len(nodes) == 0 {
		t.Fatal("GET /nodes lists no node")
	}
	ids.node = nodes[0]

	var stoppedQemu map[string]any
	for _, r := range fidelityList(get("/cluster/resources")) {
		switch str(r, "type") {
		case "qemu":
			if str(r, "template") == "1" || r["template"] == true {
				continue
			}
			if ids.qemuVMID == "" {
				ids.qemuNode, ids.qemuVMID = str(r, "node"), str(r, "vmid")
			}
			if stoppedQemu == nil && str(r, "status") == "stopped" {
				stoppedQemu = r
			}
		case "lxc":
			if ids.lxcVMID == "" && r["template"] != true && str(r, "template") != "1" {
				ids.lxcNode, ids.lxcVMID = str(r, "node"), str(r, "vmid")
			}
		case "storage":
			if ids.storage == "" {
				ids.storageNode, ids.storage = str(r, "node"), str(r, "storage")
			}
		}
	}
	if ids.qemuVMID == "" || ids.lxcVMID == "" || ids.storage == "" {
		t.Fatalf("/cluster/resources lacks a VM, a container or a storage: %+v", ids)
	}

	zones := fidelityList(get("/cluster/sdn/zones"))
	if len(zones) == 0 {
		post("/cluster/sdn/zones", url.Values{"zone": {"fzone"}, "type": {"simple"}})
		zones = fidelityList(get("/cluster/sdn/zones"))
	}
	if len(zones) == 0 {
		t.Fatal("no SDN zone, even after creating one")
	}
	ids.zone = str(zones[0], "zone")
	vnets := fidelityList(get("/cluster/sdn/vnets"))
	if len(vnets) == 0 {
		post("/cluster/sdn/vnets", url.Values{"vnet": {"fvnet"}, "zone": {ids.zone}})
		vnets = fidelityList(get("/cluster/sdn/vnets"))
	}
	if len(vnets) == 0 {
		t.Fatal("no SDN vnet, even after creating one")
	}
	ids.vnet = str(vnets[0], "vnet")

	for _, n := range nodes {
		if tasks := fidelityList(get("/nodes/" + n + "/tasks")); len(tasks) > 0 {
			ids.taskNode, ids.upid = n, str(tasks[0], "upid")
			break
		}
	}
	if ids.upid == "" {
		action := "stop"
		node, vmid := ids.qemuNode, ids.qemuVMID
		if stoppedQemu != nil {
			action, node, vmid = "start", str(stoppedQemu, "node"), str(stoppedQemu, "vmid")
		}
		upid, _ := post("/nodes/"+node+"/qemu/"+vmid+"/status/"+action, nil).(string)
		if !strings.HasPrefix(upid, "UPID:"+node+":") {
			t.Fatalf("%s of VM %s answered %q, not a UPID of node %s", action, vmid, upid, node)
		}
		ids.taskNode, ids.upid = node, upid
	}
	return ids
}

// fidelityList returns the objects of a decoded JSON array.
func fidelityList(data any) []map[string]any {
	list, _ := data.([]any)
	var out []map[string]any
	for _, it := range list {
		if m, ok := it.(map[string]any); ok {
			out = append(out, m)
		}
	}
	return out
}

// fill turns a route template into a concrete path, choosing the node that
// holds the addressed guest, storage or task.
func (ids fidelityIDs) fill(template string) string {
	node := ids.node
	switch {
	case strings.Contains(template, "/qemu/{vmid}"):
		node = ids.qemuNode
	case strings.Contains(template, "/lxc/{vmid}"):
		node = ids.lxcNode
	case strings.Contains(template, "/storage/{storage}"):
		node = ids.storageNode
	case strings.Contains(template, "/tasks/{upid}"):
		node = ids.taskNode
	}
	vmid := ids.qemuVMID
	if strings.Contains(template, "/lxc/") {
		vmid = ids.lxcVMID
	}
	return strings.NewReplacer(
		"{node}", url.PathEscape(node),
		"{vmid}", vmid,
		"{storage}", url.PathEscape(ids.storage),
		"{upid}", url.PathEscape(ids.upid),
		"{zone}", url.PathEscape(ids.zone),
		"{vnet}", url.PathEscape(ids.vnet),
		"{snapname}", "fidelity",
		"{volume}", url.PathEscape(ids.storage+":fidelity"),
	).Replace(template)
}

// pathParams returns the path parameters of the filled template, as
// Proxmox validates them along with the others.
func fidelityPathParams(e *schema.Endpoint, path string) url.Values {
	_, params, ok := schema.Load().Lookup(e.Method, path)
	if !ok {
		return nil
	}
	v := url.Values{}
	for k, p := range params {
		v.Set(k, p)
	}
	return v
}

func fidelityRouteName(method, path string) string { return method + " " + path }

// TestFidelityRoutes checks that the simulator serves exactly the routes
// of the schema extract.
func TestFidelityRoutes(t *testing.T) {
	sim := newFidelitySim(t)
	served := make(map[string]bool)
	for _, r := range sim.Routes() {
		name := fidelityRouteName(r.Method, r.Path)
		if served[name] {
			t.Errorf("route %s listed twice", name)
		}
		served[name] = true
	}
	want := make(map[string]bool)
	for _, e := range schema.Load().Endpoints() {
		want[fidelityRouteName(e.Method, e.Path)] = true
	}
	for name := range served {
		if !want[name] {
			t.Errorf("the simulator serves %s, which is not in the Proxmox VE %s schema extract", name, schema.Load().Version())
		}
	}
	for name := range want {
		if !served[name] {
			t.Errorf("the simulator does not serve %s", name)
		}
	}
}

// TestFidelityGet calls every GET route of the extract on a seeded
// simulator and checks the answer against the route's "returns" schema.
func TestFidelityGet(t *testing.T) {
	sim := newFidelitySim(t)
	h := sim.Handler()
	ids := fidelityDiscover(t, h)
	for _, e := range schema.Load().Endpoints() {
		if e.Method != http.MethodGet {
			continue
		}
		path := ids.fill(e.Path)
		t.Run(e.Path, func(t *testing.T) {
			resp := fidelityCall(h, http.MethodGet, path, nil, fidelityAuth())
			if resp.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200; body %s", path, resp.Code, resp.Body)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("GET %s: Content-Type %q, want application/json", path, ct)
			}
			data, _, _, ok := resp.envelope()
			if !ok {
				t.Fatalf("GET %s: body is not a {\"data\": ...} envelope: %s", path, resp.Body)
			}
			for _, p := range e.CheckReturns(data) {
				t.Errorf("GET %s: %s", path, p)
			}
		})
	}
}

// fidelityBadRequest derives a request that Proxmox rejects from the schema: a
// required parameter left out, else an integer parameter given "abc", else
// a boolean given "maybe", else a parameter the schema does not define. It
// returns the parameters (path parameters not included), the parameter the
// answer must name and Proxmox's message for it.
func fidelityBadRequest(e *schema.Endpoint) (params url.Values, field, message string) {
	inPath := make(map[string]bool)
	for _, name := range e.PathParams() {
		inPath[name] = true
	}
	var names []string
	for name := range e.Parameters.Properties {
		if !inPath[name] && !strings.HasSuffix(name, "[n]") {
			names = append(names, name)
		}
	}
	sort.Strings(names)
	props := e.Parameters.Properties
	for _, name := range names {
		if !props[name].Optional {
			return url.Values{}, name, "property is missing and it is not optional"
		}
	}
	for _, name := range names {
		if props[name].Type == "integer" {
			return url.Values{name: {"abc"}}, name, "type check ('integer') failed - got 'abc'"
		}
	}
	for _, name := range names {
		if props[name].Type == "boolean" {
			return url.Values{name: {"maybe"}}, name, "type check ('boolean') failed - got 'maybe'"
		}
	}
	return url.Values{"fidelity-bogus": {"1"}}, "fidelity-bogus",
		"property is not defined in schema and the schema does not allow additional properties"
}

// TestFidelityBadParameters sends every route a request the schema
// rejects and checks for Proxmox's 400 answer. Each request goes to a new
// simulator, so that one that wrongly succeeds (a delete, a stop) cannot
// disturb the next.
func TestFidelityBadParameters(t *testing.T) {
	for _, e := range schema.Load().Endpoints() {
		t.Run(e.Method+" "+e.Path, func(t *testing.T) {
			sim := newFidelitySim(t)
			h := sim.Handler()
			ids := fidelityDiscover(t, h)
			path := ids.fill(e.Path)
			params, field, message := fidelityBadRequest(e)
			fidelityCheckRejected(t, h, e, path, params, field, message)
		})
	}
}

// TestFidelityBadPathParameters gives every route with a VMID in its path
// the VMID "abc", which Proxmox rejects before looking for the guest.
func TestFidelityBadPathParameters(t *testing.T) {
	for _, e := range schema.Load().Endpoints() {
		if !strings.Contains(e.Path, "{vmid}") {
			continue
		}
		t.Run(e.Method+" "+e.Path, func(t *testing.T) {
			sim := newFidelitySim(t)
			h := sim.Handler()
			ids := fidelityDiscover(t, h)
			ids.qemuVMID, ids.lxcVMID = "abc", "abc"
			path := ids.fill(e.Path)
			params := url.Values{}
			// Leave out nothing else, so that vmid is the parameter at fault.
			for name, p := range e.Parameters.Properties {
				if !p.Optional && !strings.Contains(e.Path, "{"+name+"}") {
					params.Set(name, fidelityValidValue(p))
				}
			}
			fidelityCheckRejected(t, h, e, path, params, "vmid", "type check ('integer') failed - got 'abc'")
		})
	}
}

// fidelityValidValue is a value of a required parameter that passes the schema
// checks, for the requests that must fail on another parameter.
func fidelityValidValue(p *schema.Prop) string {
	if len(p.Enum) > 0 {
		return p.Enum[0]
	}
	switch p.Type {
	case "integer", "number":
		if p.Minimum != nil {
			return strconv.FormatFloat(*p.Minimum, 'f', -1, 64)
		}
		return "100"
	case "boolean":
		return "1"
	}
	switch p.Format {
	case "pve-node":
		return "pve1"
	case "pve-vmid":
		return "100"
	case "pve-storage-id":
		return "local"
	}
	return "fidelity"
}

// fidelityCheckRejected sends the request and checks for Proxmox's 400 answer
// naming field with message, and errors exactly as the schema's Validate
// finds them.
func fidelityCheckRejected(t *testing.T, h http.Handler, e *schema.Endpoint, path string, params url.Values, field, message string) {
	t.Helper()
	resp := fidelityCall(h, e.Method, path, params, fidelityAuth())
	if resp.Code != http.StatusBadRequest {
		t.Fatalf("%s %s %v: status %d, want 400; body %s", e.Method, path, params, resp.Code, resp.Body)
	}
	data, errs, msg, ok := resp.envelope()
	if !ok {
		t.Fatalf("%s %s %v: body is not a {\"data\": ...} envelope: %s", e.Method, path, params, resp.Body)
	}
	if data != nil {
		t.Errorf("%s %s: data = %v, want null", e.Method, path, data)
	}
	if msg != "Parameter verification failed.\n" {
		t.Errorf("%s %s: message %q, want %q", e.Method, path, msg, "Parameter verification failed.\n")
	}
	if got, ok := errs[field]; !ok {
		t.Errorf("%s %s %v: errors %q do not name %s", e.Method, path, params, errs, field)
	} else if got != message {
		t.Errorf("%s %s %v: errors[%s] = %q, want %q", e.Method, path, params, field, got, message)
	}
	all := fidelityPathParams(e, path)
	for k, vs := range params {
		all[k] = vs
	}
	if want := e.Validate(all); !reflect.DeepEqual(errs, want) {
		t.Errorf("%s %s %v: errors\n got: %q\nwant: %q", e.Method, path, params, errs, want)
	}
}

// TestFidelityUnauthenticated checks that every route but the login wants
// credentials, and that a wrong token secret is refused.
func TestFidelityUnauthenticated(t *testing.T) {
	sim := newFidelitySim(t)
	h := sim.Handler()
	ids := fidelityDiscover(t, h)
	for _, e := range schema.Load().Endpoints() {
		if e.Method == http.MethodPost && e.Path == "/access/ticket" {
			continue
		}
		path := ids.fill(e.Path)
		for _, auth := range []string{
			"",
			"PVEAPIToken=" + fidelityTokenID + "=wrong-secret",
			"PVEAPIToken=root@pam!nosuch=" + fidelityTokenSecret,
			"Bearer " + fidelityTokenSecret,
		} {
			// No parameters: a 400 here would mean the simulator checks
			// parameters before credentials, which Proxmox does not.
			resp := fidelityCall(h, e.Method, path, nil, auth)
			if resp.Code != http.StatusUnauthorized {
				t.Errorf("%s %s with Authorization %q: status %d, want 401; body %s", e.Method, path, auth, resp.Code, resp.Body)
			}
		}
	}
}

// TestFidelityTicket logs in with a password, checks the answer against the
// schema, and uses the ticket: reads need only the cookie, writes also the
// CSRF token.
func TestFidelityTicket(t *testing.T) {
	sim := newFidelitySim(t)
	h := sim.Handler()
	e, _, ok := schema.Load().Lookup(http.MethodPost, "/access/ticket")
	if !ok {
		t.Fatal("no POST /access/ticket in the schema")
	}
	resp := fidelityCall(h, http.MethodPost, "/access/ticket", url.Values{"username": {fidelityUser}, "password": {"wrong"}}, "")
	if resp.Code != http.StatusUnauthorized {
		t.Errorf("login with a wrong password: status %d, want 401; body %s", resp.Code, resp.Body)
	}
	resp = fidelityCall(h, http.MethodPost, "/access/ticket", url.Values{"username": {fidelityUser}, "password": {fidelityPassword}}, "")
	data, _, _, ok := resp.envelope()
	if resp.Code != http.StatusOK || !ok {
		t.Fatalf("login: status %d; body %s", resp.Code, resp.Body)
	}
	for _, p := range e.CheckReturns(data) {
		t.Errorf("POST /access/ticket: %s", p)
	}
	m, _ := data.(map[string]any)
	ticket, _ := m["ticket"].(string)
	csrf, _ := m["CSRFPreventionToken"].(string)
	if ticket == "" || csrf == "" {
		t.Fatalf("login answered no ticket or CSRF token: %s", resp.Body)
	}

	withTicket := func(method, path string, params url.Values, csrfToken string) fidelityResponse {
		var body *strings.Reader
		if method == http.MethodPost || method == http.MethodPut {
			body = strings.NewReader(params.Encode())
		} else {
			body = strings.NewReader("")
		}
		req := httptest.NewRequest(method, "/api2/json"+path, body)
		if method == http.MethodPost || method == http.MethodPut {
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		}
		req.AddCookie(&http.Cookie{Name: "PVEAuthCookie", Value: ticket})
		if csrfToken != "" {
			req.Header.Set("CSRFPreventionToken", csrfToken)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		return fidelityResponse{Code: rec.Code, Header: rec.Header(), Body: rec.Body.Bytes()}
	}
	if resp := withTicket(http.MethodGet, "/version", nil, ""); resp.Code != http.StatusOK {
		t.Errorf("GET /version with a ticket: status %d, want 200; body %s", resp.Code, resp.Body)
	}
	ids := fidelityDiscover(t, h)
	path := fmt.Sprintf("/nodes/%s/qemu/%s/config", ids.qemuNode, ids.qemuVMID)
	params := url.Values{"description": {"fidelity"}}
	if resp := withTicket(http.MethodPut, path, params, ""); resp.Code != http.StatusUnauthorized {
		t.Errorf("PUT %s with a ticket but no CSRF token: status %d, want 401; body %s", path, resp.Code, resp.Body)
	}
	if resp := withTicket(http.MethodPut, path, params, csrf); resp.Code != http.StatusOK {
		t.Errorf("PUT %s with a ticket and CSRF token: status %d, want 200; body %s", path, resp.Code, resp.Body)
	}
}

// fidelityGuest is one guest of the seed, found through the API.
type fidelityGuest struct{ node, vmid string }

// fidelityGuests finds a running and a stopped guest of each kind (templates
// left out), the VM or container template to use for creation, and a free
// VMID.
type fidelityGuests struct {
	running, stopped map[string]fidelityGuest // by kind: "qemu", "lxc"
	nodes            []string
	ctTemplate       string // a volid of vztmpl content on the first node
	nextID           string
}

func fidelityDiscoverGuests(t *testing.T, h http.Handler) fidelityGuests {
	t.Helper()
	g := fidelityGuests{running: map[string]fidelityGuest{}, stopped: map[string]fidelityGuest{}}
	resp := fidelityCall(h, http.MethodGet, "/cluster/resources", nil, fidelityAuth())
	data, _, _, ok := resp.envelope()
	if resp.Code != http.StatusOK || !ok {
		t.Fatalf("GET /cluster/resources: %d %s", resp.Code, resp.Body)
	}
	for _, r := range fidelityList(data) {
		typ, _ := r["type"].(string)
		switch typ {
		case "node":
			n, _ := r["node"].(string)
			g.nodes = append(g.nodes, n)
		case "qemu", "lxc":
			if r["template"] == true || r["template"] == float64(1) {
				continue
			}
			node, _ := r["node"].(string)
			vmid, _ := r["vmid"].(float64)
			ref := fidelityGuest{node, strconv.Itoa(int(vmid))}
			if r["status"] == "running" {
				if _, seen := g.running[typ]; !seen {
					g.running[typ] = ref
				}
			} else if _, seen := g.stopped[typ]; !seen {
				g.stopped[typ] = ref
			}
		}
	}
	sort.Strings(g.nodes)
	for _, kind := range []string{"qemu", "lxc"} {
		if g.running[kind].vmid == "" || g.stopped[kind].vmid == "" {
			t.Fatalf("the seed lacks a running or a stopped %s guest", kind)
		}
	}
	resp = fidelityCall(h, http.MethodGet, "/nodes/"+g.nodes[0]+"/storage/local/content", url.Values{"content": {"vztmpl"}}, fidelityAuth())
	data, _, _, _ = resp.envelope()
	for _, v := range fidelityList(data) {
		if volid, _ := v["volid"].(string); volid != "" {
			g.ctTemplate = volid
			break
		}
	}
	resp = fidelityCall(h, http.MethodGet, "/cluster/nextid", nil, fidelityAuth())
	data, _, _, _ = resp.envelope()
	switch id := data.(type) {
	case string:
		g.nextID = id
	case float64:
		g.nextID = strconv.Itoa(int(id))
	}
	if g.ctTemplate == "" || g.nextID == "" {
		t.Fatalf("no container template on %s/local or no next VMID: %q %q", g.nodes[0], g.ctTemplate, g.nextID)
	}
	return g
}

// otherNode returns a node other than n.
func (g fidelityGuests) otherNode(n string) string {
	for _, m := range g.nodes {
		if m != n {
			return m
		}
	}
	return n
}

// fidelityWaitTask polls a task until it has stopped and returns its exit status.
// It waits on the condition, not for a time: the test's own deadline
// bounds it.
func fidelityWaitTask(t *testing.T, h http.Handler, upid string) string {
	t.Helper()
	parts := strings.Split(upid, ":")
	if len(parts) < 2 {
		t.Fatalf("%q is not a UPID", upid)
	}
	path := "/nodes/" + parts[1] + "/tasks/" + url.PathEscape(upid) + "/status"
	for {
		resp := fidelityCall(h, http.MethodGet, path, nil, fidelityAuth())
		data, _, _, ok := resp.envelope()
		if resp.Code != http.StatusOK || !ok {
			t.Fatalf("GET %s: %d %s", path, resp.Code, resp.Body)
		}
		m, _ := data.(map[string]any)
		if m["status"] == "stopped" {
			exit, _ := m["exitstatus"].(string)
			return exit
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// fidelityWrite sends a write that has to succeed and returns its data.
func fidelityWrite(t *testing.T, h http.Handler, method, path string, params url.Values) any {
	t.Helper()
	resp := fidelityCall(h, method, path, params, fidelityAuth())
	data, _, _, ok := resp.envelope()
	if resp.Code != http.StatusOK || !ok {
		t.Fatalf("%s %s %v: %d %s", method, path, params, resp.Code, resp.Body)
	}
	return data
}

// TestFidelityWrites sends every write route a valid request and checks
// the answer against the route's "returns" schema (a UPID string for
// tasks, null for synchronous changes). Each request goes to a new
// simulator.
func TestFidelityWrites(t *testing.T) {
	type write struct {
		method, path string
		params       url.Values
	}
	// snapshotted prepares a guest with a finished snapshot "fidelity".
	snapshotted := func(t *testing.T, h http.Handler, kind string, g fidelityGuest) {
		t.Helper()
		base := "/nodes/" + g.node + "/" + kind + "/" + g.vmid
		upid, _ := fidelityWrite(t, h, http.MethodPost, base+"/snapshot", url.Values{"snapname": {"fidelity"}}).(string)
		if exit := fidelityWaitTask(t, h, upid); exit != "OK" {
			t.Fatalf("snapshot task ended %q", exit)
		}
	}
	cases := map[string]func(t *testing.T, h http.Handler, g fidelityGuests) write{
		"POST /nodes/{node}/qemu": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", "/nodes/" + g.nodes[0] + "/qemu", url.Values{
				"vmid": {g.nextID}, "name": {"fidelity"}, "memory": {"1024"}, "cores": {"1"}, "ostype": {"l26"},
				"net0": {"virtio,bridge=vmbr0"}, "scsi0": {"local-lvm:4"}, "scsihw": {"virtio-scsi-single"},
			}}
		},
		"POST /nodes/{node}/lxc": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", "/nodes/" + g.nodes[0] + "/lxc", url.Values{
				"vmid": {g.nextID}, "hostname": {"fidelity"}, "ostemplate": {g.ctTemplate}, "memory": {"512"},
				"rootfs": {"local-lvm:8"}, "net0": {"name=eth0,bridge=vmbr0,ip=dhcp"}, "unprivileged": {"1"},
			}}
		},
		"POST /nodes/{node}/vzdump": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			r := g.running["qemu"]
			return write{"POST", "/nodes/" + r.node + "/vzdump", url.Values{"vmid": {r.vmid}, "storage": {"local"}, "mode": {"snapshot"}}}
		},
		"DELETE /nodes/{node}/tasks/{upid}": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped["qemu"]
			upid, _ := fidelityWrite(t, h, "POST", "/nodes/"+s.node+"/qemu/"+s.vmid+"/status/start", nil).(string)
			return write{"DELETE", "/nodes/" + s.node + "/tasks/" + url.PathEscape(upid), nil}
		},
		"POST /cluster/sdn/zones": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}}}
		},
		"PUT /cluster/sdn/zones/{zone}": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			fidelityWrite(t, h, "POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}})
			return write{"PUT", "/cluster/sdn/zones/fnew", url.Values{"nodes": {g.nodes[0]}}}
		},
		"DELETE /cluster/sdn/zones/{zone}": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			fidelityWrite(t, h, "POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}})
			return write{"DELETE", "/cluster/sdn/zones/fnew", nil}
		},
		"POST /cluster/sdn/vnets": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			fidelityWrite(t, h, "POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}})
			return write{"POST", "/cluster/sdn/vnets", url.Values{"vnet": {"fvnew"}, "zone": {"fnew"}}}
		},
		"PUT /cluster/sdn/vnets/{vnet}": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			fidelityWrite(t, h, "POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}})
			fidelityWrite(t, h, "POST", "/cluster/sdn/vnets", url.Values{"vnet": {"fvnew"}, "zone": {"fnew"}})
			return write{"PUT", "/cluster/sdn/vnets/fvnew", url.Values{"alias": {"fidelity"}}}
		},
		"DELETE /cluster/sdn/vnets/{vnet}": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			fidelityWrite(t, h, "POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}})
			fidelityWrite(t, h, "POST", "/cluster/sdn/vnets", url.Values{"vnet": {"fvnew"}, "zone": {"fnew"}})
			return write{"DELETE", "/cluster/sdn/vnets/fvnew", nil}
		},
		"PUT /cluster/sdn": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			fidelityWrite(t, h, "POST", "/cluster/sdn/zones", url.Values{"zone": {"fnew"}, "type": {"simple"}})
			return write{"PUT", "/cluster/sdn", nil}
		},
		"POST /nodes/{node}/qemu/{vmid}/config": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped["qemu"]
			return write{"POST", "/nodes/" + s.node + "/qemu/" + s.vmid + "/config", url.Values{"description": {"fidelity"}}}
		},
		"POST /nodes/{node}/qemu/{vmid}/template": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped["qemu"]
			return write{"POST", "/nodes/" + s.node + "/qemu/" + s.vmid + "/template", nil}
		},
		"PUT /nodes/{node}/qemu/{vmid}/resize": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped["qemu"]
			return write{"PUT", "/nodes/" + s.node + "/qemu/" + s.vmid + "/resize", url.Values{"disk": {"scsi0"}, "size": {"+1G"}}}
		},
		"PUT /nodes/{node}/lxc/{vmid}/resize": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped["lxc"]
			return write{"PUT", "/nodes/" + s.node + "/lxc/" + s.vmid + "/resize", url.Values{"disk": {"rootfs"}, "size": {"+1G"}}}
		},
		"POST /nodes/{node}/qemu/{vmid}/move_disk": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.running["qemu"]
			return write{"POST", "/nodes/" + s.node + "/qemu/" + s.vmid + "/move_disk", url.Values{
				"disk": {"scsi0"}, "storage": {"nfs-shared"}, "delete": {"1"}}}
		},
		"POST /nodes/{node}/lxc/{vmid}/move_volume": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped["lxc"]
			return write{"POST", "/nodes/" + s.node + "/lxc/" + s.vmid + "/move_volume", url.Values{
				"volume": {"rootfs"}, "storage": {"nfs-shared"}}}
		},
		"DELETE /nodes/{node}/storage/{storage}/content/{volume}": func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"DELETE", "/nodes/" + g.nodes[0] + "/storage/local/content/" + url.PathEscape(g.ctTemplate), nil}
		},
	}
	for _, kind := range []string{"qemu", "lxc"} {
		guestPath := func(g fidelityGuest) string { return "/nodes/" + g.node + "/" + kind + "/" + g.vmid }
		prefix := "/nodes/{node}/" + kind + "/{vmid}"
		cases["POST "+prefix+"/status/start"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", guestPath(g.stopped[kind]) + "/status/start", nil}
		}
		cases["POST "+prefix+"/status/stop"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", guestPath(g.running[kind]) + "/status/stop", nil}
		}
		cases["POST "+prefix+"/status/shutdown"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", guestPath(g.running[kind]) + "/status/shutdown", url.Values{"timeout": {"30"}}}
		}
		cases["PUT "+prefix+"/config"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"PUT", guestPath(g.running[kind]) + "/config", url.Values{"description": {"fidelity"}}}
		}
		cases["POST "+prefix+"/clone"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			name := "name"
			if kind == "lxc" {
				name = "hostname"
			}
			return write{"POST", guestPath(g.stopped[kind]) + "/clone", url.Values{"newid": {g.nextID}, name: {"fidelity-clone"}, "full": {"1"}}}
		}
		cases["DELETE "+prefix] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"DELETE", guestPath(g.stopped[kind]), url.Values{"purge": {"1"}}}
		}
		cases["POST "+prefix+"/migrate"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			s := g.stopped[kind]
			return write{"POST", guestPath(s) + "/migrate", url.Values{"target": {g.otherNode(s.node)}}}
		}
		cases["POST "+prefix+"/snapshot"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			return write{"POST", guestPath(g.stopped[kind]) + "/snapshot", url.Values{"snapname": {"fidelity"}, "description": {"before"}}}
		}
		cases["DELETE "+prefix+"/snapshot/{snapname}"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			snapshotted(t, h, kind, g.stopped[kind])
			return write{"DELETE", guestPath(g.stopped[kind]) + "/snapshot/fidelity", nil}
		}
		cases["POST "+prefix+"/snapshot/{snapname}/rollback"] = func(t *testing.T, h http.Handler, g fidelityGuests) write {
			snapshotted(t, h, kind, g.stopped[kind])
			return write{"POST", guestPath(g.stopped[kind]) + "/snapshot/fidelity/rollback", nil}
		}
	}

	for _, e := range schema.Load().Endpoints() {
		if e.Method == http.MethodGet || e.Path == "/access/ticket" {
			continue // TestFidelityGet and TestFidelityTicket
		}
		name := e.Method + " " + e.Path
		build, ok := cases[name]
		if !ok {
			t.Errorf("no valid request for %s", name)
			continue
		}
		t.Run(name, func(t *testing.T) {
			sim := newFidelitySim(t)
			h := sim.Handler()
			w := build(t, h, fidelityDiscoverGuests(t, h))
			if lookedUp, _, ok := schema.Load().Lookup(w.method, w.path); !ok || lookedUp != e {
				t.Fatalf("%s %s is not a request for %s", w.method, w.path, name)
			}
			resp := fidelityCall(h, w.method, w.path, w.params, fidelityAuth())
			if resp.Code != http.StatusOK {
				t.Fatalf("%s %s %v: status %d, want 200; body %s", w.method, w.path, w.params, resp.Code, resp.Body)
			}
			data, _, _, ok := resp.envelope()
			if !ok {
				t.Fatalf("%s %s: body is not a {\"data\": ...} envelope: %s", w.method, w.path, resp.Body)
			}
			for _, p := range e.CheckReturns(data) {
				t.Errorf("%s %s: %s", w.method, w.path, p)
			}
			if upid, ok := data.(string); ok && strings.HasPrefix(upid, "UPID:") {
				if exit := fidelityWaitTask(t, h, upid); exit != "OK" && name != "DELETE /nodes/{node}/tasks/{upid}" {
					t.Errorf("%s %s: task %s ended %q, want OK", w.method, w.path, upid, exit)
				}
			}
		})
	}
}
