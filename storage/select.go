package storage

import (
	"cmp"
	"fmt"
	"math/bits"
	"slices"
)

// The range of Proxmox VMIDs.
const (
	minVMID = 100
	maxVMID = 999999999
)

// maxTagLen bounds the length of a tag.
const maxTagLen = 64

// Selector says which guests a policy applies to: every guest, or the
// listed VMIDs and the guests with any of some tags, of Tenant only when
// it is set (every guest of Tenant when neither is given). Templates never
// match.
type Selector struct {
	All    bool     `json:"all,omitempty"`
	VMIDs  []int    `json:"vmids,omitempty"`
	Tenant string   `json:"tenant,omitempty"`
	Tags   []string `json:"tags,omitempty"`
}

// Guest is what a selector and the coverage report know of a guest.
type Guest struct {
	VMID     int
	Name     string
	Node     string
	Kind     string
	Tenant   string
	Status   string
	Tags     []string
	Template bool
}

// Validate checks the selector; errors are *FieldError. It must name
// something to select; All excludes the other fields ("selector.all");
// VMIDs lie in 100..999999999 without duplicates ("selector.vmids");
// tags are 1 to 64 of a-z, 0-9, '_', '.', '+' and '-' ("selector.tags").
func (s Selector) Validate() error {
	if !s.All && len(s.VMIDs) == 0 && s.Tenant == "" && len(s.Tags) == 0 {
		return fieldErr("selector", "select guests with one of all, vmids, tenant or tags")
	}
	if s.All && (len(s.VMIDs) > 0 || s.Tenant != "" || len(s.Tags) > 0) {
		return fieldErr("selector.all", "all excludes vmids, tenant and tags")
	}
	seen := make(map[int]bool, len(s.VMIDs))
	for _, id := range s.VMIDs {
		if id < minVMID || id > maxVMID {
			return fieldErr("selector.vmids", fmt.Sprintf("vmid %d is out of range %d..%d", id, minVMID, maxVMID))
		}
		if seen[id] {
			return fieldErr("selector.vmids", fmt.Sprintf("vmid %d is listed twice", id))
		}
		seen[id] = true
	}
	for _, tag := range s.Tags {
		if !validTag(tag) {
			return fieldErr("selector.tags", fmt.Sprintf("tag %q is not 1 to %d of a-z, 0-9, '_', '.', '+' and '-'", tag, maxTagLen))
		}
	}
	return nil
}

// validTag reports whether tag matches [a-z0-9_.+-]{1,64}.
func validTag(tag string) bool {
	if tag == "" || len(tag) > maxTagLen {
		return false
	}
	for i := range len(tag) {
		switch b := tag[i]; {
		case 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '_', b == '.', b == '+', b == '-':
		default:
			return false
		}
	}
	return true
}

// Matches reports whether the selector selects g: a guest that is not a
// template and is either selected by All, or of Tenant when it is set and
// then listed in VMIDs or carrying one of Tags (every guest of Tenant when
// neither is set). Tenant narrows the other fields, so a tenant's policy
// never reaches another tenant's guests.
func (s Selector) Matches(g *Guest) bool {
	switch {
	case g.Template:
		return false
	case s.All:
		return true
	case s.Tenant != "" && g.Tenant != s.Tenant:
		return false
	case len(s.VMIDs) == 0 && len(s.Tags) == 0:
		return s.Tenant != ""
	}
	return slices.Contains(s.VMIDs, g.VMID) || slices.ContainsFunc(g.Tags, func(t string) bool { return slices.Contains(s.Tags, t) })
}

// guestIndex indexes the guests of one call of Evaluate or Coverage so
// that selecting the guests of a policy costs in proportion to what it
// selects, not to the number of guests. Guests sharing a VMID count as
// one, selected if any of them is; templates are left out.
type guestIndex struct {
	guests   []Guest
	all      []int              // the VMIDs of the guests, ascending, each once
	first    []int32            // per VMID of all, the first guest with it
	unique   map[int]int32      // VMID to its index in all
	uniqueOf []int32            // per guest, the index of its VMID in all
	byTenant map[string][]int32 // tenant to guests
	byTag    map[string][]int32 // tag to guests
	marks    []uint64           // scratch bitset over indexes into all
}

// newGuestIndex indexes the guests.
func newGuestIndex(guests []Guest) *guestIndex {
	order := make([]int32, 0, len(guests))
	for i := range guests {
		if !guests[i].Template {
			order = append(order, int32(i))
		}
	}
	slices.SortFunc(order, func(a, b int32) int {
		if c := cmp.Compare(guests[a].VMID, guests[b].VMID); c != 0 {
			return c
		}
		return cmp.Compare(a, b)
	})
	x := &guestIndex{
		guests:   guests,
		all:      make([]int, 0, len(order)),
		first:    make([]int32, 0, len(order)),
		unique:   make(map[int]int32, len(order)),
		uniqueOf: make([]int32, len(guests)),
		byTenant: make(map[string][]int32),
		byTag:    make(map[string][]int32),
	}
	for _, g := range order {
		id := guests[g].VMID
		if n := len(x.all); n == 0 || x.all[n-1] != id {
			x.unique[id] = int32(n)
			x.all = append(x.all, id)
			x.first = append(x.first, g)
		}
		x.uniqueOf[g] = int32(len(x.all) - 1)
	}
	for i := range guests {
		g := &guests[i]
		if g.Template {
			continue
		}
		if g.Tenant != "" {
			x.byTenant[g.Tenant] = append(x.byTenant[g.Tenant], int32(i))
		}
		for _, tag := range g.Tags {
			x.byTag[tag] = append(x.byTag[tag], int32(i))
		}
	}
	x.marks = make([]uint64, (len(x.all)+63)/64)
	return x
}

// each calls visit with the index into all of every VMID s selects, in
// ascending order.
func (x *guestIndex) each(s Selector, visit func(u int)) {
	if s.All {
		for u := range x.all {
			visit(u)
		}
		return
	}
	clear(x.marks)
	mark := func(u int32) { x.marks[u/64] |= 1 << (u % 64) }
	ofTenant := func(g int32) bool { return s.Tenant == "" || x.guests[g].Tenant == s.Tenant }
	if s.Tenant == "" {
		for _, id := range s.VMIDs {
			if u, ok := x.unique[id]; ok {
				mark(u)
			}
		}
	} else if len(s.VMIDs) > 0 {
		for _, g := range x.byTenant[s.Tenant] {
			if slices.Contains(s.VMIDs, x.guests[g].VMID) {
				mark(x.uniqueOf[g])
			}
		}
	}
	for _, tag := range s.Tags {
		for _, g := range x.byTag[tag] {
			if ofTenant(g) {
				mark(x.uniqueOf[g])
			}
		}
	}
	if len(s.VMIDs) == 0 && len(s.Tags) == 0 && s.Tenant != "" {
		for _, g := range x.byTenant[s.Tenant] {
			mark(x.uniqueOf[g])
		}
	}
	for w, word := range x.marks {
		for ; word != 0; word &= word - 1 {
			visit(w*64 + bits.TrailingZeros64(word))
		}
	}
}

// SelectVMIDs returns the sorted VMIDs of the guests s selects, each
// once, as Evaluate selects them for a run.
func SelectVMIDs(guests []Guest, s Selector) []int { return newGuestIndex(guests).selectVMIDs(s) }

// selectVMIDs returns the sorted VMIDs of the guests s selects.
func (x *guestIndex) selectVMIDs(s Selector) []int {
	if s.All {
		return slices.Clone(x.all)
	}
	out := []int{}
	x.each(s, func(u int) { out = append(out, x.all[u]) })
	return out
}
