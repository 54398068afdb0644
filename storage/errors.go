package storage

// FieldError is a validation error about one field of a policy: Field is
// its JSON name (for example "keep_daily" or "selector.tags") and Message
// says what is wrong.
type FieldError struct {
	Field   string
	Message string
}

// Error returns "Field: Message".
func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

// fieldErr returns a *FieldError for field with message.
func fieldErr(field, message string) error {
	return &FieldError{Field: field, Message: message}
}
