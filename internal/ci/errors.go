package ci

import "errors"

// Error kinds. Every layer wraps one of these; the HTTP layer maps them to
// statuses in one table.
var (
	ErrNotFound     = errors.New("not found")
	ErrConflict     = errors.New("conflict")
	ErrInvalid      = errors.New("invalid")
	ErrUnauthorized = errors.New("unauthorized")
	ErrForbidden    = errors.New("forbidden")
	// ErrUnavailable: a backend (the database) could not be reached; the
	// request may succeed when retried.
	ErrUnavailable = errors.New("unavailable")
)
