package pvesim

import (
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// ticketLifetime is how long a Proxmox ticket (and its CSRF token) is valid.
const ticketLifetime = 2 * time.Hour

var (
	errNoTicket   = &apiError{status: http.StatusUnauthorized, msg: "No ticket"}
	errAuthFailed = &apiError{status: http.StatusUnauthorized, msg: "Authentication failed!"}
	errBadCSRF    = &apiError{status: http.StatusUnauthorized, msg: "Permission denied - invalid csrf token"}
	errLoginFail  = &apiError{status: http.StatusUnauthorized, msg: "authentication failure"}
)

// authValue extracts "KEY=value" (or "KEY value") from a Cookie or
// Authorization header, as pve-http-server's extract_auth_value does.
func authValue(header, key string) string {
	for _, part := range strings.Split(header, ";") {
		part = strings.TrimSpace(part)
		for _, sep := range []string{"=", " "} {
			if v, ok := strings.CutPrefix(part, key+sep); ok {
				if u, err := url.QueryUnescape(v); err == nil && strings.Contains(v, "%") {
					return u
				}
				return v
			}
		}
	}
	return ""
}

// authenticate checks a request's credentials like PVE::HTTPServer's
// auth_handler and returns the user: a ticket (cookie PVEAuthCookie, CSRF
// token required for writes) or an API token (no CSRF token needed).
func (s *Sim) authenticate(r *http.Request, rel string) (string, *apiError) {
	if rel == "/access/ticket" && (r.Method == http.MethodGet || r.Method == http.MethodPost) {
		return "", nil
	}
	authz := r.Header.Get("Authorization")
	ticket := authValue(r.Header.Get("Cookie"), "PVEAuthCookie")
	if ticket == "" {
		ticket = authValue(authz, "PVEAuthCookie")
	}
	if ticket == "" {
		token := authValue(authz, "PVEAPIToken")
		if token == "" {
			return "", errNoTicket
		}
		user, ok := s.verifyToken(token)
		if !ok {
			return "", errAuthFailed
		}
		return user, nil
	}
	user, ok := s.verifyTicket(ticket, time.Now())
	if !ok {
		return "", errAuthFailed
	}
	if r.Method != http.MethodGet && !s.verifyCSRF(user, r.Header.Get("CSRFPreventionToken"), time.Now()) {
		return "", errBadCSRF
	}
	return user, nil
}

// verifyToken checks "USER@REALM!TOKENID=SECRET" in constant time.
func (s *Sim) verifyToken(token string) (string, bool) {
	i := strings.LastIndexByte(token, '=')
	if i < 0 {
		return "", false
	}
	id, secret := token[:i], token[i+1:]
	want, known := s.cfg.Tokens[id]
	if !known {
		want = "pvesim-no-such-token-0000000000000"
	}
	ok := subtle.ConstantTimeCompare([]byte(secret), []byte(want)) == 1
	return id, ok && known && strings.Contains(id, "!")
}

func (s *Sim) mac(key []byte, msg string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return h.Sum(nil)
}

// newTicket returns a ticket for user in Proxmox's format,
// "PVE:root@pam:6786A1B2::<signature>".
func (s *Sim) newTicket(user string, now time.Time) string {
	plain := fmt.Sprintf("PVE:%s:%08X", user, now.Unix())
	return plain + "::" + base64.StdEncoding.EncodeToString(s.mac(s.ticketKey, plain))
}

func (s *Sim) verifyTicket(ticket string, now time.Time) (string, bool) {
	plain, sig, ok := strings.Cut(ticket, "::")
	if !ok {
		return "", false
	}
	parts := strings.Split(plain, ":")
	if len(parts) != 3 || parts[0] != "PVE" {
		return "", false
	}
	want := base64.StdEncoding.EncodeToString(s.mac(s.ticketKey, plain))
	if subtle.ConstantTimeCompare([]byte(sig), []byte(want)) != 1 {
		return "", false
	}
	if !fresh(parts[2], now) {
		return "", false
	}
	return parts[1], true
}

// newCSRF returns the CSRF prevention token for user: "<hex time>:<sig>".
func (s *Sim) newCSRF(user string, now time.Time) string {
	ts := fmt.Sprintf("%08X", now.Unix())
	return ts + ":" + base64.RawStdEncoding.EncodeToString(s.mac(s.csrfKey, ts+":"+user))
}

func (s *Sim) verifyCSRF(user, token string, now time.Time) bool {
	ts, sig, ok := strings.Cut(token, ":")
	if !ok || !fresh(ts, now) {
		return false
	}
	want := base64.RawStdEncoding.EncodeToString(s.mac(s.csrfKey, ts+":"+user))
	return subtle.ConstantTimeCompare([]byte(sig), []byte(want)) == 1
}

// fresh reports whether a hex timestamp is within the ticket lifetime
// (allowing a few minutes of clock skew into the future).
func fresh(hexTime string, now time.Time) bool {
	t, err := strconv.ParseInt(hexTime, 16, 64)
	if err != nil {
		return false
	}
	age := now.Sub(time.Unix(t, 0))
	return age >= -5*time.Minute && age <= ticketLifetime
}

// rootCaps is the "cap" of a ticket for a user with every privilege.
var rootCaps = map[string]map[string]int{
	"vms": {"VM.Allocate": 1, "VM.Audit": 1, "VM.Backup": 1, "VM.Clone": 1, "VM.Config.CDROM": 1,
		"VM.Config.CPU": 1, "VM.Config.Cloudinit": 1, "VM.Config.Disk": 1, "VM.Config.HWType": 1,
		"VM.Config.Memory": 1, "VM.Config.Network": 1, "VM.Config.Options": 1, "VM.Console": 1,
		"VM.Migrate": 1, "VM.PowerMgmt": 1, "VM.Snapshot": 1, "VM.Snapshot.Rollback": 1, "Permissions.Modify": 1},
	"storage": {"Datastore.Allocate": 1, "Datastore.AllocateSpace": 1, "Datastore.AllocateTemplate": 1,
		"Datastore.Audit": 1, "Permissions.Modify": 1},
	"access": {"Group.Allocate": 1, "Permissions.Modify": 1, "Realm.Allocate": 1, "Realm.AllocateUser": 1,
		"User.Modify": 1},
	"nodes": {"Permissions.Modify": 1, "Sys.Audit": 1, "Sys.Console": 1, "Sys.Incoming": 1,
		"Sys.Modify": 1, "Sys.PowerMgmt": 1, "Sys.Syslog": 1},
	"dc":      {"Sys.Audit": 1, "Sys.Modify": 1, "SDN.Allocate": 1, "SDN.Audit": 1, "SDN.Use": 1},
	"sdn":     {"Permissions.Modify": 1, "SDN.Allocate": 1, "SDN.Audit": 1, "SDN.Use": 1},
	"mapping": {"Mapping.Audit": 1, "Mapping.Modify": 1, "Mapping.Use": 1, "Permissions.Modify": 1},
}

// handleTicket serves POST /access/ticket: a login with a password, or the
// renewal of a ticket passed as the password.
func (s *Sim) handleTicket(q *req) (any, error) {
	user := q.str("username")
	if realm := q.str("realm"); realm != "" && !strings.Contains(user, "@") {
		user += "@" + realm
	}
	password := q.str("password")
	now := time.Now()
	want, known := s.cfg.Users[user]
	if !known {
		want = "pvesim-no-such-user-000000000000"
	}
	ok := subtle.ConstantTimeCompare([]byte(password), []byte(want)) == 1 && known
	if !ok && strings.HasPrefix(password, "PVE:") {
		if tu, valid := s.verifyTicket(password, now); valid && tu == user {
			ok = true
		}
	}
	if !ok || strings.Contains(user, "!") {
		return nil, errLoginFail
	}
	if q.has("path") && q.has("privs") {
		return map[string]any{"username": user}, nil
	}
	out := map[string]any{
		"username":            user,
		"ticket":              s.newTicket(user, now),
		"CSRFPreventionToken": s.newCSRF(user, now),
		"cap":                 rootCaps,
	}
	s.mu.RLock()
	if s.clusterName != "" {
		out["clustername"] = s.clusterName
	}
	s.mu.RUnlock()
	return out, nil
}
