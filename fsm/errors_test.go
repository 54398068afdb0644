package fsm

import (
	"errors"
	"fmt"
	"testing"
)

func TestNotFoundError(t *testing.T) {
	for _, c := range []struct {
		err  *NotFoundError
		want string
	}{
		{&NotFoundError{What: "address", ID: "nope"}, `address "nope" not found`},
		{&NotFoundError{What: "setting", ID: "dns zone"}, `setting "dns zone" not found`},
	} {
		if got := c.err.Error(); got != c.want {
			t.Errorf("%+v: %q, want %q", *c.err, got, c.want)
		}
		wrapped := fmt.Errorf("apply: %w", c.err)
		var nf *NotFoundError
		if !errors.Is(wrapped, ErrNotFound) || !errors.As(wrapped, &nf) || nf.ID != c.err.ID {
			t.Errorf("%+v: not found as ErrNotFound and *NotFoundError through a wrap", *c.err)
		}
	}
}
