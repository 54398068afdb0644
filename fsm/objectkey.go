package fsm

// ObjectKey names the one existing object cmd changes, for commands whose
// answer shows that object with its modify_index, and "" for others
// (creations, allocations, commands of many objects). The leader keeps two
// commands with the same key out of one log entry: every command of an
// entry applies at the entry's index, so two changes of one object in one
// entry would both answer with that index, each showing its own state,
// while only the second is the state at that index, and a client that
// waits for a change after it (?index=) would wait for the next one.
func ObjectKey(cmd Command) string {
	switch c := cmd.(type) {
	case *SettingUpsertRequest:
		return "setting/" + c.Key
	case *SettingDeleteRequest:
		return "setting/" + c.Key
	case *VRFDeleteRequest:
		return "vrf/" + c.ID
	case *PrefixUpdateRequest:
		return "prefix/" + c.ID
	case *PrefixDeleteRequest:
		return "prefix/" + c.ID
	case *IPRangeDeleteRequest:
		return "ip-range/" + c.ID
	case *AddressUpdateRequest:
		return "address/" + c.ID
	case *AddressReleaseRequest:
		return "address/" + c.ID
	case *PoolUpdateRequest:
		return "pool/" + c.ID
	case *PoolDeleteRequest:
		return "pool/" + c.ID
	case *IDUpdateRequest:
		return "id/" + c.ID
	case *IDReleaseRequest:
		return "id/" + c.ID
	case *ZoneDeleteRequest:
		return "zone/" + c.ID
	case *ZoneUpdateRequest:
		return "zone/" + c.ID
	case *TenantUpdateRequest:
		return "tenant/" + c.ID
	case *TenantDeleteRequest:
		return "tenant/" + c.ID
	case *ProjectUpdateRequest:
		return "project/" + c.ID
	case *ProjectDeleteRequest:
		return "project/" + c.ID
	}
	return ""
}
