package api

import "github.com/moxxie/moxxie/fsm"

// unchanged reports whether a PATCH changes nothing: same reads the object
// from a store and says whether every field the PATCH gives has that value
// already (false for an object it does not find, which the write then
// refuses). Such a PATCH is answered with the object as it is, without a
// write, so that it neither wakes blocking reads nor moves a zone's SOA
// serial. Before it answers so, this server confirms with a quorum that
// it still leads and holds every acknowledged write: a leader that was
// deposed may lack a change the PATCH would undo. A PATCH with an
// Idempotency-Key is always written, so that the key is kept.
func (s *server) unchanged(c *call, same func(*fsm.Store) (bool, error)) (bool, error) {
	if keyed(c) {
		return false, nil
	}
	if ok, err := same(s.b.State()); err != nil || !ok {
		return false, err
	}
	if err := s.b.VerifyLeader(c.r.Context()); err != nil {
		return false, err
	}
	return same(s.b.State())
}

// has reports whether a PATCH field leaves the value v as it is: absent,
// or giving v itself.
func has[T comparable](field *T, v T) bool { return field == nil || *field == v }

// sameAddress is unchanged's test for a PATCH of address id.
func sameAddress(cmd *fsm.AddressUpdateRequest) func(*fsm.Store) (bool, error) {
	return func(st *fsm.Store) (bool, error) {
		_, a, err := st.Address(nil, cmd.ID)
		if err != nil || a == nil {
			return false, err
		}
		return has(cmd.Status, a.Status) && has(cmd.DNSName, a.DNSName) && has(cmd.Tenant, a.Tenant) &&
			has(cmd.Project, a.Project) && has(cmd.Owner, a.Owner) && has(cmd.Description, a.Description), nil
	}
}

// samePrefix is unchanged's test for a PATCH of a prefix.
func samePrefix(cmd *fsm.PrefixUpdateRequest) func(*fsm.Store) (bool, error) {
	return func(st *fsm.Store) (bool, error) {
		_, p, err := st.Prefix(nil, cmd.ID)
		if err != nil || p == nil {
			return false, err
		}
		return has(cmd.Tenant, p.Tenant) && has(cmd.Project, p.Project) && has(cmd.Description, p.Description) && has(cmd.IsPool, p.IsPool), nil
	}
}

// sameZone is unchanged's test for a PATCH of a zone.
func sameZone(cmd *fsm.ZoneUpdateRequest) func(*fsm.Store) (bool, error) {
	return func(st *fsm.Store) (bool, error) {
		_, z, err := st.Zone(nil, cmd.ID)
		if err != nil || z == nil {
			return false, err
		}
		return has(cmd.TTL, z.TTL) && has(cmd.Description, z.Description), nil
	}
}
