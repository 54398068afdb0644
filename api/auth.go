package api

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/auth"
	"github.com/moxxie/moxxie/fsm"
)

// RoleAdmin is the role of the bootstrap token.
const RoleAdmin = string(auth.RoleAdmin)

// secretPrefix starts every token secret, so leaked secrets are easy to
// recognise (and to scan for).
const secretPrefix = "mxx_"

const (
	challenge        = `Bearer realm="moxxie"`
	challengeInvalid = `Bearer realm="moxxie", error="invalid_token"`
)

var secretEncoding = base32.StdEncoding.WithPadding(base32.NoPadding)

// authenticate checks the bearer token of the request against the local
// store and records the token in the call. Only the SHA-256 of a secret is
// ever stored or compared. A request without a token may authenticate
// with an agent certificate instead (certauth.go).
func (s *server) authenticate(c *call) error {
	h := c.r.Header.Get("Authorization")
	if h == "" {
		if id, ok := clientCertIdentity(c.r); ok {
			return s.authenticateCert(c, id)
		}
		return unauthorized("missing bearer token (Authorization: Bearer <secret>)", challenge)
	}
	scheme, secret, ok := strings.Cut(h, " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return unauthorized("Authorization header must be \"Bearer <secret>\"", challengeInvalid)
	}
	hash, tok, err := s.lookupBearer(c.w, secret)
	if err != nil {
		return internal(err)
	}
	if tok == nil || subtle.ConstantTimeCompare([]byte(tok.SecretHash), []byte(hash)) != 1 {
		return unauthorized("invalid token", challengeInvalid)
	}
	if tok.ExpiresAt != 0 && tok.ExpiresAt <= s.b.Now().UnixNano() {
		return unauthorized("token expired", challengeInvalid)
	}
	d := auth.Authorize(auth.Role(tok.Role), tok.Tenant, c.rt.Perm, c.rt.Scope)
	if !d.Allowed {
		return &apiError{status: http.StatusForbidden, code: CodeForbidden, message: d.Reason}
	}
	c.token, c.tenant = tok, d.Tenant
	return nil
}

// localAuthWait bounds how long a follower waits for a token it does not
// know on a route it must answer itself (authenticateLagging).
const localAuthWait = time.Second

// authenticateLagging retries, as the tokens change and for at most
// localAuthWait, an authentication that a follower refused with err (a
// 401) on a route it must answer itself (KindLocal): the token may be new,
// committed on the leader and not yet applied here. Forwarded to the
// leader, which would know it, the request would get the leader's answer
// (its configuration, its logs, its profile) instead of this server's.
func (s *server) authenticateLagging(c *call, err error) error {
	var ae *apiError
	if !errors.As(err, &ae) || ae.status != http.StatusUnauthorized {
		return err
	}
	// Only a bearer token this server does not know may be new; a missing
	// or malformed header, or a known token refused (expired), is not.
	scheme, secret, ok := strings.Cut(c.r.Header.Get("Authorization"), " ")
	secret = strings.TrimSpace(secret)
	if !ok || !strings.EqualFold(scheme, "Bearer") || secret == "" {
		return err
	}
	if _, tok, lerr := s.lookupBearer(nil, secret); lerr != nil || tok != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(c.r.Context(), localAuthWait)
	defer cancel()
	for {
		ws := memdb.NewWatchSet()
		if _, _, terr := s.b.State().Tokens(ws); terr != nil {
			return err
		}
		c.w.bearer = bearerLookup{} // read the store again
		aerr := s.authenticate(c)
		if !errors.As(aerr, &ae) || ae.status != http.StatusUnauthorized {
			return aerr
		}
		if ws.WatchCtx(ctx) != nil {
			return aerr
		}
	}
}

// bearerLookup is a bearer secret's hash and the token the store holds
// under it (nil: none).
type bearerLookup struct {
	secret, hash string
	tok          *fsm.Token
}

// lookupBearer hashes secret and looks its token up, once per request: the
// rate limit and authentication both need it, and the hash and the lookup
// were a few percent of a server's work for each request. rw may be nil.
func (s *server) lookupBearer(rw *responseWriter, secret string) (string, *fsm.Token, error) {
	if rw != nil && rw.bearer.hash != "" && rw.bearer.secret == secret {
		return rw.bearer.hash, rw.bearer.tok, nil
	}
	hash := HashSecret(secret)
	tok, err := s.b.State().TokenBySecretHash(hash)
	if err != nil {
		return "", nil, err
	}
	if rw != nil {
		rw.bearer = bearerLookup{secret: secret, hash: hash, tok: tok}
	}
	return hash, tok, nil
}

// HashSecret returns the hex SHA-256 of a token secret, the form in which
// the store keeps it.
func HashSecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// newAccessorID returns a random UUID (version 4 layout).
func newAccessorID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	var out [36]byte
	hex.Encode(out[0:8], b[0:4])
	out[8] = '-'
	hex.Encode(out[9:13], b[4:6])
	out[13] = '-'
	hex.Encode(out[14:18], b[6:8])
	out[18] = '-'
	hex.Encode(out[19:23], b[8:10])
	out[23] = '-'
	hex.Encode(out[24:], b[10:])
	return string(out[:])
}

// newSecret returns a new token secret: "mxx_" and 32 random bytes in
// lowercase base32.
func newSecret() string {
	var b [32]byte
	_, _ = rand.Read(b[:])
	return secretPrefix + strings.ToLower(secretEncoding.EncodeToString(b[:]))
}
