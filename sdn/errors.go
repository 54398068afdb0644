package sdn

import "fmt"

// Error is what every validation and compile error of this package is: a
// message about one field of the input. Field is the field's JSON path,
// relative to the object validated ("id", "mtu", "tag") for the Validate
// functions and to the Intent ("zones[z1].mtu", "vnets[v1].tag",
// "hosts[pve1].uplink") for Compile, where objects are named by their ID
// or host name. API handlers answer it with 400 and the field.
type Error struct {
	// Field is the JSON path of the offending field.
	Field string
	// Msg says what is wrong, naming the value.
	Msg string
}

// Error returns Msg; the field travels separately.
func (e *Error) Error() string { return e.Msg }

// errorf returns an *Error about field with a formatted message.
func errorf(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// within returns err with its field placed under path ("zones[z1]" and
// "mtu" give "zones[z1].mtu"); errors of other types pass unchanged.
func within(path string, err error) error {
	e, ok := err.(*Error)
	if !ok {
		return err
	}
	f := path
	if e.Field != "" {
		f = path + "." + e.Field
	}
	return &Error{Field: f, Msg: e.Msg}
}
