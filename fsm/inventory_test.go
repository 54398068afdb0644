package fsm

import (
	"errors"
	"testing"
)

func TestFSM_InventorySync(t *testing.T) {
	f := New()
	s := f.State()
	g := func(vmid int, node, status string, tags ...string) InvGuest {
		return InvGuest{VMID: vmid, Kind: GuestKindVM, Node: node, Name: "g", Status: status, Tags: tags}
	}
	applyOK(t, f, 1, &InventorySyncRequest{WriteMeta: WriteMeta{Now: 10},
		Nodes:   []InvNode{{Name: "pve1", Status: "online"}, {Name: "pve2", Status: "online"}},
		Guests:  []InvGuest{g(100, "pve1", "running", "web"), g(101, "pve2", "stopped")},
		Storage: []InvStorage{{ID: "pve1/local", Node: "pve1", Storage: "local"}},
	})
	_, st, _ := s.InventoryState(nil)
	if st.Nodes != 2 || st.Guests != 2 || st.Storage != 1 || st.LastSync != 10 || st.Stale {
		t.Fatalf("state after first sync: %+v", st)
	}

	// A change to one guest keeps its history; a later empty sync raises
	// last_seen of everything present without rewriting it.
	applyOK(t, f, 2, &InventorySyncRequest{WriteMeta: WriteMeta{Now: 20}, Guests: []InvGuest{g(100, "pve2", "running", "web")}})
	applyOK(t, f, 3, &InventorySyncRequest{WriteMeta: WriteMeta{Now: 30}})
	_, got, _ := s.InventoryGuest(nil, 100)
	if got.Node != "pve2" || got.FirstSeen != 10 || got.CreateIndex != 1 || got.LastChanged != 20 || got.ModifyIndex != 2 || got.LastSeen != 30 {
		t.Fatalf("guest 100 after move: %+v", got)
	}

	// Proxmox unreachable: the inventory stays, marked stale; the stale
	// time is the first failure's.
	applyOK(t, f, 4, &InventoryStaleRequest{WriteMeta: WriteMeta{Now: 40}, Error: "dial tcp: refused"})
	applyOK(t, f, 5, &InventoryStaleRequest{WriteMeta: WriteMeta{Now: 50}, Error: "timeout"})
	_, st, _ = s.InventoryState(nil)
	if !st.Stale || st.StaleSince != 40 || st.Error != "timeout" || st.Guests != 2 {
		t.Fatalf("stale state: %+v", st)
	}

	// A deleted guest is marked gone, not dropped; it comes back as new.
	applyOK(t, f, 6, &InventorySyncRequest{WriteMeta: WriteMeta{Now: 60}, GoneGuests: []int{101, 999}})
	_, st, _ = s.InventoryState(nil)
	if st.Stale || st.Guests != 1 {
		t.Fatalf("state after gone: %+v", st)
	}
	_, got, _ = s.InventoryGuest(nil, 101)
	if !got.Gone || got.GoneAt != 60 || got.LastSeen != 10 {
		t.Fatalf("gone guest: %+v", got)
	}
	_, list, _ := s.InventoryGuests(nil, GuestFilter{})
	if len(list) != 1 || list[0].VMID != 100 {
		t.Fatalf("guests without gone: %+v", list)
	}
	_, list, _ = s.InventoryGuests(nil, GuestFilter{Status: "gone"})
	if len(list) != 1 || list[0].VMID != 101 {
		t.Fatalf("gone guests: %+v", list)
	}
	applyOK(t, f, 7, &InventorySyncRequest{WriteMeta: WriteMeta{Now: 70}, Guests: []InvGuest{g(101, "pve1", "stopped")}})
	_, got, _ = s.InventoryGuest(nil, 101)
	if got.Gone || got.FirstSeen != 70 || got.CreateIndex != 7 {
		t.Fatalf("returned guest: %+v", got)
	}
}

func TestInventoryGuests_Filter(t *testing.T) {
	f := New()
	tmpl := true
	applyOK(t, f, 1, &InventorySyncRequest{WriteMeta: WriteMeta{Now: 1}, Guests: []InvGuest{
		{VMID: 300, Kind: GuestKindVM, Node: "pve2", Status: "running", Tenant: "acme", Tags: []string{"tenant.acme", "web"}},
		{VMID: 100, Kind: GuestKindVM, Node: "pve1", Status: "stopped", Template: true},
		{VMID: 200, Kind: GuestKindContainer, Node: "pve2", Status: "running"},
	}})
	cases := []struct {
		name string
		f    GuestFilter
		want []int
	}{
		{"all", GuestFilter{}, []int{100, 200, 300}},
		{"node", GuestFilter{Node: "pve2"}, []int{200, 300}},
		{"tenant", GuestFilter{Tenant: "acme"}, []int{300}},
		{"tag", GuestFilter{Tag: "web"}, []int{300}},
		{"status", GuestFilter{Status: "running"}, []int{200, 300}},
		{"kind", GuestFilter{Kind: GuestKindContainer}, []int{200}},
		{"template", GuestFilter{Template: &tmpl}, []int{100}},
		{"node and status", GuestFilter{Node: "pve2", Kind: GuestKindVM}, []int{300}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, got, err := f.State().InventoryGuests(nil, tc.f)
			if err != nil {
				t.Fatal(err)
			}
			var ids []int
			for _, g := range got {
				ids = append(ids, g.VMID)
			}
			if len(ids) != len(tc.want) {
				t.Fatalf("got %v, want %v", ids, tc.want)
			}
			for i := range ids {
				if ids[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", ids, tc.want)
				}
			}
		})
	}
}

func TestInventorySync_Validate(t *testing.T) {
	cases := map[string]*InventorySyncRequest{
		"nodes[0].name":  {Nodes: []InvNode{{}}},
		"guests[0].vmid": {Guests: []InvGuest{{VMID: 99, Kind: GuestKindVM, Node: "a"}}},
		"guests[1].vmid": {Guests: []InvGuest{{VMID: 100, Kind: GuestKindVM, Node: "a"}, {VMID: 100, Kind: GuestKindVM, Node: "a"}}},
		"guests[0].kind": {Guests: []InvGuest{{VMID: 100, Kind: "docker", Node: "a"}}},
		"guests[0].node": {Guests: []InvGuest{{VMID: 100, Kind: GuestKindVM}}},
		"storage[0].id":  {Storage: []InvStorage{{ID: "x", Node: "a", Storage: "b"}}},
		"gone_guests":    {Guests: []InvGuest{{VMID: 100, Kind: GuestKindVM, Node: "a"}}, GoneGuests: []int{100}},
		"gone_nodes":     {Nodes: []InvNode{{Name: "a"}}, GoneNodes: []string{"a"}},
		"gone_storage":   {Storage: []InvStorage{{ID: "a/b", Node: "a", Storage: "b"}}, GoneStorage: []string{"a/b"}},
		"nodes[1].name":  {Nodes: []InvNode{{Name: "a"}, {Name: "a"}}},
		"storage[1].id":  {Storage: []InvStorage{{ID: "a/b", Node: "a", Storage: "b"}, {ID: "a/b", Node: "a", Storage: "b"}}},
	}
	for field, req := range cases {
		t.Run(field, func(t *testing.T) {
			err := req.Validate()
			var fe *FieldError
			if !errors.As(err, &fe) || fe.Field != field {
				t.Fatalf("Validate() = %v, want a field error on %s", err, field)
			}
		})
	}
}
