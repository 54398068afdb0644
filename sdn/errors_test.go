package sdn

import (
	"errors"
	"testing"
)

func TestError(t *testing.T) {
	err := errorf("mtu", "MTU %d is bad", 3)
	if err.Error() != "MTU 3 is bad" {
		t.Fatalf("Error() = %q", err.Error())
	}
	cases := []struct {
		path, field, want string
	}{
		{"zones[z1]", "mtu", "zones[z1].mtu"},
		{"zones[z1]", "", "zones[z1]"},
		{"hosts[pve1]", "address", "hosts[pve1].address"},
	}
	for _, c := range cases {
		got := within(c.path, &Error{Field: c.field, Msg: "m"})
		checkField(t, got, c.want, "m")
	}
	plain := errors.New("plain")
	if got := within("x", plain); got != plain {
		t.Fatalf("within changed a foreign error: %v", got)
	}
}
