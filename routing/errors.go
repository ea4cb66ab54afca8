package routing

// FieldError is a validation error that names the offending field by its
// JSON path relative to the object validated, such as "when.text_regex",
// "shifts[1].days[2]" or "then.priority". Callers that validate a nested
// object pass the prefix in (see ValidateShifts), so the path they get back is
// ready to go into an error response's details.field.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string { return e.Field + ": " + e.Message }

func fieldErr(field, msg string) *FieldError { return &FieldError{Field: field, Message: msg} }
