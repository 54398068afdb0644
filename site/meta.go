package site

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/hashicorp/memberlist"
)

// meta is what a server publishes in its memberlist node meta. Keys are
// short because the whole must fit in memberlist.MetaMaxSize (512 bytes).
// With Site at most 32 bytes, Node 64 and API address 128, everything but
// the votes takes at most 301 bytes (TestMeta_SizeBound), which leaves room
// for at least 5 votes of 32-byte site names (35 bytes each with quotes and
// comma), and about 28 of 4-byte ones.
type meta struct {
	Site    string   `json:"s"`
	Node    string   `json:"n"`
	Role    string   `json:"r"`
	API     string   `json:"a"`
	Leader  bool     `json:"l,omitempty"`
	Healthy bool     `json:"h,omitempty"`
	Down    []string `json:"d,omitempty"`
	// FailedOver lists the sites this server's site failed over.
	FailedOver []string `json:"f,omitempty"`
	// Instance identifies this run of the server (random at Start), so that
	// a leave notice of an earlier run never applies to a later one.
	Instance string `json:"i"`
}

// encodeMeta encodes m within limit bytes. If the votes do not all fit, the
// last ones are left out and returned in dropped.
func encodeMeta(m meta, limit int) (b []byte, dropped []string, err error) {
	all := m.Down
	for n := len(all); n >= 0; n-- {
		m.Down = all[:n]
		b, err := json.Marshal(m)
		if err != nil {
			return nil, nil, err
		}
		if len(b) <= limit {
			return b, all[n:], nil
		}
	}
	return nil, nil, fmt.Errorf("site: meta of %s/%s does not fit in %d bytes", m.Site, m.Node, limit)
}

// decodeMeta decodes and checks a member's meta.
func decodeMeta(b []byte) (meta, error) {
	var m meta
	if len(b) > memberlist.MetaMaxSize {
		return m, fmt.Errorf("meta is %d bytes, over %d", len(b), memberlist.MetaMaxSize)
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return meta{}, fmt.Errorf("meta: %w", err)
	}
	if !siteNameRe.MatchString(m.Site) {
		return meta{}, fmt.Errorf("meta: bad site %q", m.Site)
	}
	if !nodeIDRe.MatchString(m.Node) {
		return meta{}, fmt.Errorf("meta: bad node %q", m.Node)
	}
	if m.Role != RoleServer && m.Role != RoleWitness {
		return meta{}, fmt.Errorf("meta: bad role %q", m.Role)
	}
	if !instanceRe.MatchString(m.Instance) {
		return meta{}, fmt.Errorf("meta: bad instance %q", m.Instance)
	}
	if err := checkAPIAddress(m.API); err != nil {
		return meta{}, fmt.Errorf("meta: API address: %w", err)
	}
	if len(m.Down) == 0 {
		m.Down = nil
	}
	if len(m.FailedOver) == 0 {
		m.FailedOver = nil
	}
	for _, s := range m.FailedOver {
		if !siteNameRe.MatchString(s) {
			return meta{}, fmt.Errorf("meta: bad site %q in failed over", s)
		}
	}
	seen := make(map[string]bool, len(m.Down))
	for _, s := range m.Down {
		if !siteNameRe.MatchString(s) {
			return meta{}, fmt.Errorf("meta: bad site %q in votes", s)
		}
		if seen[s] {
			return meta{}, errors.New("meta: duplicate vote for " + s)
		}
		seen[s] = true
	}
	return m, nil
}
