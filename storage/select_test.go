package storage

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

// testGuests are a few guests of two tenants, with a template and a VMID
// listed twice.
func testGuests() []Guest {
	return []Guest{
		{VMID: 104, Name: "files", Node: "pve2", Tenant: "acme"},
		{VMID: 101, Name: "web1", Node: "pve1", Tenant: "acme", Tags: []string{"web"}},
		{VMID: 102, Name: "db1", Node: "pve1", Tenant: "globex", Tags: []string{"db", "web"}},
		{VMID: 103, Name: "tmpl", Node: "pve1", Tenant: "acme", Tags: []string{"web"}, Template: true},
		{VMID: 105, Name: "cache", Node: "pve2", Tags: []string{"db", "db"}},
		{VMID: 101, Name: "web1-again", Node: "pve3", Tenant: "globex", Tags: []string{"db"}},
	}
}

func TestSelectorMatches(t *testing.T) {
	tests := []struct {
		name string
		sel  Selector
		want []int // the VMIDs of testGuests it matches, sorted and unique
	}{
		{"all", Selector{All: true}, []int{101, 102, 104, 105}},
		{"vmids", Selector{VMIDs: []int{105, 103, 999}}, []int{105}},
		{"tenant", Selector{Tenant: "acme"}, []int{101, 104}},
		{"tags any", Selector{Tags: []string{"web", "nope"}}, []int{101, 102}},
		{"tenant and tags", Selector{Tenant: "acme", Tags: []string{"web", "db"}}, []int{101}},
		{"vmids of a tenant", Selector{VMIDs: []int{105, 102, 101}, Tenant: "globex"}, []int{101, 102}},
		{"unknown tenant", Selector{Tenant: "initech"}, []int{}},
		{"empty", Selector{}, []int{}},
	}
	guests := testGuests()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []int
			for i := range guests {
				if tt.sel.Matches(&guests[i]) {
					got = append(got, guests[i].VMID)
				}
			}
			slices.Sort(got)
			got = slices.Compact(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Matches selects %v, want %v", got, tt.want)
			}
			if idx := newGuestIndex(guests).selectVMIDs(tt.sel); !slices.Equal(idx, tt.want) {
				t.Errorf("selectVMIDs = %v, want %v", idx, tt.want)
			}
		})
	}
}

func TestSelectVMIDsAgreesWithMatches(t *testing.T) {
	// 300 guests of 7 tenants with tags from a set of 5, templates every
	// 11th, VMIDs out of order with some listed twice.
	var guests []Guest
	tags := []string{"a", "b", "c", "d", "e"}
	for i := range 300 {
		g := Guest{VMID: 100 + (i*37)%250, Tenant: []string{"", "t1", "t2", "t3", "t4", "t5", "t6"}[i%7], Template: i%11 == 0}
		for j, tag := range tags {
			if (i>>j)&1 == 1 {
				g.Tags = append(g.Tags, tag)
			}
		}
		guests = append(guests, g)
	}
	selectors := []Selector{
		{All: true}, {Tenant: "t3"}, {Tags: []string{"a"}}, {Tags: []string{"c", "e"}},
		{Tenant: "t2", Tags: []string{"b", "d"}}, {VMIDs: []int{100, 137, 174, 9999}},
		{VMIDs: []int{100, 211}, Tenant: "t1", Tags: []string{"e"}}, {Tenant: ""},
	}
	index := newGuestIndex(guests)
	for _, s := range selectors {
		var want []int
		for i := range guests {
			if s.Matches(&guests[i]) {
				want = append(want, guests[i].VMID)
			}
		}
		slices.Sort(want)
		want = slices.Compact(want)
		if got := index.selectVMIDs(s); !slices.Equal(got, want) {
			t.Errorf("selectVMIDs(%+v) = %v, want %v", s, got, want)
		}
	}
}

func TestSelectorValidate(t *testing.T) {
	tests := []struct {
		sel        Selector
		field, msg string
	}{
		{Selector{All: true}, "", ""},
		{Selector{VMIDs: []int{100, 999999999}}, "", ""},
		{Selector{Tenant: "acme"}, "", ""},
		{Selector{Tenant: "acme", Tags: []string{"web", "db_1", "a.b+c-d", strings.Repeat("x", 64)}}, "", ""},
		{Selector{VMIDs: []int{101}, Tags: []string{"web"}}, "", ""},
		{Selector{}, "selector", "select guests with one of all, vmids, tenant or tags"},
		{Selector{All: true, VMIDs: []int{101}}, "selector.all", "all excludes vmids, tenant and tags"},
		{Selector{All: true, Tenant: "acme"}, "selector.all", "all excludes vmids, tenant and tags"},
		{Selector{All: true, Tags: []string{"web"}}, "selector.all", "all excludes vmids, tenant and tags"},
		{Selector{VMIDs: []int{99}}, "selector.vmids", "vmid 99 is out of range 100..999999999"},
		{Selector{VMIDs: []int{1000000000}}, "selector.vmids", "vmid 1000000000 is out of range 100..999999999"},
		{Selector{VMIDs: []int{101, 102, 101}}, "selector.vmids", "vmid 101 is listed twice"},
		{Selector{Tags: []string{"Web"}}, "selector.tags", `tag "Web" is not 1 to 64 of a-z, 0-9, '_', '.', '+' and '-'`},
		{Selector{Tags: []string{""}}, "selector.tags", `tag "" is not 1 to 64 of a-z, 0-9, '_', '.', '+' and '-'`},
		{Selector{Tags: []string{"a b"}}, "selector.tags", `tag "a b" is not 1 to 64 of a-z, 0-9, '_', '.', '+' and '-'`},
		{Selector{Tags: []string{strings.Repeat("x", 65)}}, "selector.tags", `tag "` + strings.Repeat("x", 65) + `" is not 1 to 64 of a-z, 0-9, '_', '.', '+' and '-'`},
	}
	for _, tt := range tests {
		err := tt.sel.Validate()
		if tt.field == "" {
			if err != nil {
				t.Errorf("%+v.Validate() = %v", tt.sel, err)
			}
			continue
		}
		var fe *FieldError
		if !errors.As(err, &fe) || fe.Field != tt.field || fe.Message != tt.msg {
			t.Errorf("%+v.Validate() = %#v, want %s: %s", tt.sel, err, tt.field, tt.msg)
			continue
		}
		if want := tt.field + ": " + tt.msg; err.Error() != want {
			t.Errorf("Error() = %q, want %q", err.Error(), want)
		}
	}
}
