package sdn

import (
	"errors"
	"strings"
	"testing"
)

// checkField fails t unless err is nil when field is "" or else an *Error
// naming field whose message holds msg.
func checkField(t *testing.T, err error, field, msg string) {
	t.Helper()
	if field == "" {
		if err != nil {
			t.Fatalf("unexpected error (field %q): %v", fieldOf(err), err)
		}
		return
	}
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *sdn.Error on field %q", err, err, field)
	}
	if e.Field != field {
		t.Fatalf("field = %q (%v), want %q", e.Field, e, field)
	}
	if !strings.Contains(e.Msg, msg) {
		t.Fatalf("message %q does not contain %q", e.Msg, msg)
	}
}

func fieldOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Field
	}
	return ""
}
