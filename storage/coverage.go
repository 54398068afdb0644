package storage

import (
	"slices"
	"strings"
	"time"
)

// BackupRecord is one backup of a guest found on a backup storage.
type BackupRecord struct {
	VMID   int
	Time   time.Time
	VolID  string
	Policy string
}

// CoverageEntry is one guest of the coverage report.
type CoverageEntry struct {
	VMID   int    `json:"vmid"`
	Name   string `json:"name,omitempty"`
	Node   string `json:"node,omitempty"`
	Tenant string `json:"tenant,omitempty"`
	// Policies are the IDs of the enabled backup policies selecting the
	// guest, sorted.
	Policies []string `json:"policies,omitempty"`
	// LastBackup and LastVolID are the newest backup of the guest.
	LastBackup time.Time `json:"last_backup,omitzero"`
	LastVolID  string    `json:"last_volid,omitempty"`
	// Protected is true when a policy selects the guest.
	Protected bool `json:"protected"`
}

// PolicySelector is what the coverage report knows of a backup policy.
type PolicySelector struct {
	ID       string
	Selector Selector
	Disabled bool
}

// Coverage lists every guest that is not a template, sorted by VMID (the
// first of guests sharing a VMID), with the enabled backup policies
// selecting it and its newest backup (of equal times, the greatest
// VolID).
func Coverage(guests []Guest, policies []PolicySelector, backups []BackupRecord) []CoverageEntry {
	x := newGuestIndex(guests)
	entries := make([]CoverageEntry, len(x.all))
	for u, id := range x.all {
		g := &guests[x.first[u]]
		entries[u] = CoverageEntry{VMID: id, Name: g.Name, Node: g.Node, Tenant: g.Tenant}
	}
	var enabled []PolicySelector
	for _, p := range policies {
		if !p.Disabled {
			enabled = append(enabled, p)
		}
	}
	slices.SortStableFunc(enabled, func(a, b PolicySelector) int { return strings.Compare(a.ID, b.ID) })
	// Mark the guests of each policy in a bitset, then fill in each
	// guest's policies in order from one array.
	words := (len(entries) + 63) / 64
	selected := make([]uint64, len(enabled)*words)
	total := 0
	for i, p := range enabled {
		set := selected[i*words : (i+1)*words]
		x.each(p.Selector, func(u int) { set[u/64] |= 1 << (u % 64); total++ })
	}
	ids := make([]string, 0, total)
	for u := range entries {
		start := len(ids)
		for i, p := range enabled {
			if selected[i*words+u/64]&(1<<(u%64)) != 0 {
				ids = append(ids, p.ID)
			}
		}
		if len(ids) > start {
			entries[u].Policies = ids[start:len(ids):len(ids)]
			entries[u].Protected = true
		}
	}
	for _, b := range backups {
		u, ok := x.unique[b.VMID]
		if !ok {
			continue
		}
		e := &entries[u]
		if c := b.Time.Compare(e.LastBackup); c > 0 || c == 0 && b.VolID > e.LastVolID {
			e.LastBackup, e.LastVolID = b.Time, b.VolID
		}
	}
	return entries
}
