package fsm

import (
	"errors"
	"testing"
)

func TestIDCursor_RoundTrip(t *testing.T) {
	for _, c := range []*IDCursor{{PoolID: "01a21f38-5859-7267-9074-599ce31de7f1", Number: 4094}, {PoolID: "g", Number: 16777215}, {PoolID: "g", Number: 0}} {
		got, err := ParseIDCursor(c.String())
		if err != nil || *got != *c {
			t.Errorf("%+v: parsed %+v, %v", c, got, err)
		}
	}
	for _, bad := range []string{"", "!", "AQ", (&IDCursor{PoolID: "", Number: 1}).String(), (&IDCursor{PoolID: "g", Number: 16777216}).String()} {
		if _, err := ParseIDCursor(bad); !errors.Is(err, errBadIDCursor) {
			t.Errorf("%q: %v, want errBadIDCursor", bad, err)
		}
	}
}

func FuzzParseIDCursor(f *testing.F) {
	f.Add((&IDCursor{PoolID: "01a21f38-5859-7267-9074-599ce31de7f1", Number: 100}).String())
	f.Add((&IDCursor{PoolID: "g", Number: 16777215}).String())
	f.Add("")
	f.Add("AQFn_wE")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseIDCursor(s)
		if err != nil {
			if !errors.Is(err, errBadIDCursor) {
				t.Fatalf("%q: error %v does not wrap errBadIDCursor", s, err)
			}
			return
		}
		if c.String() != s || c.PoolID == "" || c.Number < 0 {
			t.Fatalf("%q parsed to %+v, which encodes to %q", s, c, c.String())
		}
	})
}
