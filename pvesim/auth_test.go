package pvesim_test

import (
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	proxmox "github.com/luthermonson/go-proxmox"
	"github.com/moxxie/moxxie/pvesim"
)

func TestAuth_TicketLoginAndCSRF(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()

	// go-proxmox logs in with POST /access/ticket on the first 401.
	c := newTestClient(e.srv, proxmox.WithCredentials(&proxmox.Credentials{Username: "root@pam", Password: testPassword}))
	if _, err := c.Nodes(ctx); err != nil {
		t.Fatalf("nodes with a ticket: %v", err)
	}
	sess := c.Session()
	if sess == nil || !strings.HasPrefix(sess.Ticket, "PVE:root@pam:") || sess.CSRFPreventionToken == "" ||
		sess.Username != "root@pam" || sess.ClusterName != "pvesim" || sess.Cap["vms"]["VM.Allocate"] != 1 {
		t.Fatalf("session: %+v", sess)
	}
	// A write with ticket and CSRF token works.
	task, err := testVM(t, c, "pve1", 103).Start(ctx)
	if err != nil {
		t.Fatalf("start with a ticket: %v", err)
	}
	waitTaskOK(t, task)
	// Renewal: the ticket as the password.
	if err := c.RefreshTicket(ctx); err != nil {
		t.Fatalf("refresh ticket: %v", err)
	}

	post := func(header http.Header) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/api2/json/nodes/pve1/qemu/103/status/stop", nil)
		req.Header = header
		res, err := e.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		return res.StatusCode, res.Status
	}
	sess = c.Session()
	cookie := "PVEAuthCookie=" + url.QueryEscape(sess.Ticket)
	cases := []struct {
		name   string
		header http.Header
		code   int
		status string
	}{
		{"no credentials", http.Header{}, 401, "401 No ticket"},
		{"ticket without CSRF token", http.Header{"Cookie": {cookie}}, 401, "401 Permission denied - invalid csrf token"},
		{"ticket with a wrong CSRF token", http.Header{"Cookie": {cookie}, "Csrfpreventiontoken": {"00000000:abc"}}, 401, "401 Permission denied - invalid csrf token"},
		{"forged ticket", http.Header{"Cookie": {"PVEAuthCookie=PVE:root@pam:00000000::AAAA"}}, 401, "401 Authentication failed!"},
		{"ticket and CSRF token", http.Header{"Cookie": {cookie}, "Csrfpreventiontoken": {sess.CSRFPreventionToken}}, 200, "200 OK"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			code, status := post(tc.header)
			if code != tc.code || status != tc.status {
				t.Fatalf("got %q, want %q", status, tc.status)
			}
		})
	}

	bad := newTestClient(e.srv, proxmox.WithCredentials(&proxmox.Credentials{Username: "root@pam", Password: "wrong"}))
	if _, err := bad.Nodes(ctx); err == nil || !proxmox.IsNotAuthorized(err) {
		t.Fatalf("wrong password: %v", err)
	}
}

func TestAuth_Token(t *testing.T) {
	e := newTestEnv(t, pvesim.Config{})
	ctx := context.Background()
	cases := []struct {
		name    string
		id, sec string
		ok      bool
	}{
		{"right token", testTokenID, testTokenSecret, true},
		{"wrong secret", testTokenID, "nope", false},
		{"unknown token", "root@pam!other", testTokenSecret, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(e.srv, proxmox.WithAPIToken(tc.id, tc.sec))
			_, err := c.Nodes(ctx)
			if tc.ok && err != nil {
				t.Fatalf("nodes: %v", err)
			}
			if !tc.ok && !proxmox.IsNotAuthorized(err) {
				t.Fatalf("nodes: %v, want not authorized", err)
			}
		})
	}
	// A refused write with a body still gets its 401 (not a reset
	// connection).
	bad := newTestClient(e.srv, proxmox.WithAPIToken(testTokenID, "nope"))
	_, err := (&proxmox.Node{Name: "pve1"}).New(bad, "pve1").NewVirtualMachine(ctx, 777, proxmox.VirtualMachineOption{Name: "memory", Value: 512})
	if !proxmox.IsNotAuthorized(err) {
		t.Fatalf("write with a wrong token: %v", err)
	}

	// A token needs no CSRF token for writes.
	task, err := testVM(t, e.client, "pve1", 103).Start(ctx)
	if err != nil {
		t.Fatal(err)
	}
	waitTaskOK(t, task)

	// Unauthenticated answers say only {"data":null}.
	res, err := e.srv.Client().Get(e.srv.URL + "/api2/json/nodes")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != 401 || string(body) != `{"data":null}` {
		t.Fatalf("no auth: %s %q", res.Status, body)
	}
}
