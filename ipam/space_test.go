package ipam

import "testing"

func TestIDRangesOverlap(t *testing.T) {
	r := func(first, last int) IDRange { return IDRange{first, last} }
	for _, c := range []struct {
		name   string
		a, b   []IDRange
		ok     bool
		ga, gb IDRange
	}{
		{"apart", []IDRange{r(1, 10)}, []IDRange{r(11, 20)}, false, IDRange{}, IDRange{}},
		{"touching at one number", []IDRange{r(1, 10)}, []IDRange{r(10, 20)}, true, r(1, 10), r(10, 20)},
		{"inside", []IDRange{r(5, 5)}, []IDRange{r(1, 10)}, true, r(5, 5), r(1, 10)},
		{"second range of each", []IDRange{r(1, 2), r(50, 60)}, []IDRange{r(3, 4), r(55, 55)}, true, r(50, 60), r(55, 55)},
		{"none stands for all", nil, []IDRange{r(7, 8)}, true, r(1, 100), r(7, 8)},
		{"both all", nil, nil, true, r(1, 100), r(1, 100)},
		{"between ranges", []IDRange{r(1, 2), r(9, 10)}, []IDRange{r(3, 8)}, false, IDRange{}, IDRange{}},
	} {
		ga, gb, ok := IDRangesOverlap(c.a, c.b, 1, 100)
		if ok != c.ok || ga != c.ga || gb != c.gb {
			t.Errorf("%s: %v %v %v, want %v %v %v", c.name, ga, gb, ok, c.ga, c.gb, c.ok)
		}
	}
}
