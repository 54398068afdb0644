package api

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/hashicorp/go-memdb"
	"github.com/moxxie/moxxie/fsm"
)

// ZoneList is the body of GET /v1/dns/zones.
type ZoneList struct {
	Zones []*fsm.Zone `json:"zones"`
}

// ZoneCreateRequest is the body of POST /v1/dns/zones. No TTL means the
// default (fsm.DefaultZoneTTL); an explicit 0 is refused rather than read
// as that default.
type ZoneCreateRequest struct {
	Name        string  `json:"name"`
	TTL         *uint32 `json:"ttl"`
	Tenant      string  `json:"tenant"`
	Description string  `json:"description"`
}

// ZoneUpdateRequest is the body of PATCH /v1/dns/zones/{name}; absent
// fields are left alone.
type ZoneUpdateRequest struct {
	TTL         *uint32 `json:"ttl"`
	Description *string `json:"description"`
}

// zoneName returns the {name} path value as zones are stored: lower case,
// without the trailing dot.
func zoneName(c *call) (string, error) {
	name := c.r.PathValue("name")
	if name == "" || len(name) > 254 {
		return "", invalid("name", "must be 1 to 254 characters (a DNS name, with its trailing dot)")
	}
	return strings.ToLower(strings.TrimSuffix(name, ".")), nil
}

// maxZoneNameLen is the longest name a new zone may have, without the
// trailing dot: its SOA names hostmaster.ZONE, which must fit in the 255
// octets of a name on the wire.
const maxZoneNameLen = 253 - len("hostmaster.")

// handleZoneList lists the forward DNS zones; it supports blocking
// queries.
func (s *server) handleZoneList(c *call) error {
	return serveList(s, c, func(st *fsm.Store, ws memdb.WatchSet) (uint64, []*fsm.Zone, error) {
		idx, l, err := st.Zones(ws)
		return idx, filterVisible(c, l, zoneTenant), err
	}, func(l []*fsm.Zone) any { return ZoneList{Zones: l} })
}

func zoneTenant(z *fsm.Zone) string { return z.Tenant }

// handleZoneGet returns one zone; it supports blocking queries.
func (s *server) handleZoneGet(c *call) error {
	name, err := zoneName(c)
	if err != nil {
		return err
	}
	return serveTenantGet(s, c, "name", "zone", name, zoneTenant, func(st *fsm.Store, ws memdb.WatchSet) (uint64, *fsm.Zone, error) {
		return st.Zone(ws, name)
	})
}

// handleZoneCreate creates a forward DNS zone.
func (s *server) handleZoneCreate(c *call) error {
	var req ZoneCreateRequest
	if err := decodeJSON(c.body, &req, true); err != nil {
		return err
	}
	var ttl uint32
	if req.TTL != nil {
		if *req.TTL == 0 {
			return invalid("ttl", "must be 1 to %d seconds: leave it out for the default of %d", fsm.MaxZoneTTL, fsm.DefaultZoneTTL)
		}
		ttl = *req.TTL
	}
	cmd := &fsm.ZoneCreateRequest{Zone: fsm.Zone{ID: req.Name, TTL: ttl, Tenant: req.Tenant, Description: req.Description}, NameRules: true}
	if err := cmd.Validate(); err != nil {
		return err
	}
	if why := unservable(cmd.Zone.ID); why != "" {
		return invalid("name", "%s %s", cmd.Zone.ID, why)
	}
	if len(cmd.Zone.ID) > maxZoneNameLen {
		return invalid("name", "a zone name may have at most %d characters (this one has %d), so that its SOA's mailbox hostmaster.NAME fits in a DNS name", maxZoneNameLen, len(cmd.Zone.ID))
	}
	var err error
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusCreated, nil)
}

// specialZone returns the special-use domain (RFC 6761) that the zone
// name is or lies under, or "": localhost, whose names are the loopback,
// and invalid, which has none.
func specialZone(name string) string {
	for _, d := range []string{"localhost", "invalid"} {
		if name == d || strings.HasSuffix(name, "."+d) {
			return d
		}
	}
	return ""
}

// handleZoneUpdate changes a forward DNS zone's TTL or description; the
// records of its names are served with the new TTL at once, and its SOA
// serial moves on.
func (s *server) handleZoneUpdate(c *call) error {
	name, err := zoneName(c)
	if err != nil {
		return err
	}
	var req ZoneUpdateRequest
	if err := decodePatch(c.body, &req); err != nil {
		return err
	}
	if req == (ZoneUpdateRequest{}) && !keyed(c) {
		// Nothing to change: the zone as it is, without a write.
		return s.handleZoneGet(c)
	}
	cmd := &fsm.ZoneUpdateRequest{ID: name, TTL: req.TTL, Description: req.Description}
	if err := cmd.Validate(); err != nil {
		return err
	}
	if same, err := s.unchanged(c, sameZone(cmd)); err != nil {
		return err
	} else if same {
		return s.handleZoneGet(c)
	}
	if cmd.WriteMeta, err = s.writeMeta(c); err != nil {
		return err
	}
	return s.apply(c, cmd, http.StatusOK, nil)
}

// handleZoneDelete deletes a forward DNS zone; its names stop resolving.
func (s *server) handleZoneDelete(c *call) error {
	name, err := zoneName(c)
	if err != nil {
		return err
	}
	force := false
	if c.r.URL.RawQuery != "" {
		if force, err = boolParam(c, "force"); err != nil {
			return err
		}
	}
	if !force {
		// Deleting a zone takes every name it serves off the air at once.
		if n, a, up := s.b.State().ZoneNames(name); n > 0 {
			names := "1 name: " + a.DNSName
			if n > 1 {
				names = fmt.Sprintf("%d names, such as %s", n, a.DNSName)
			}
			effect := "take them out of DNS"
			if up != nil {
				effect = fmt.Sprintf("hand them to zone %s, which the naming rules keep them out of", up.ID)
			}
			return &apiError{status: http.StatusConflict, code: CodeConflict, field: "name",
				message: fmt.Sprintf("zone %s serves %s (address %s, id %s); deleting it would %s: rename or release them first, or delete with force", name, names, a.Address, a.ID, effect)}
		}
	}
	meta, err := s.writeMeta(c)
	if err != nil {
		return err
	}
	return s.apply(c, &fsm.ZoneDeleteRequest{WriteMeta: meta, ID: name}, http.StatusOK, nil)
}
