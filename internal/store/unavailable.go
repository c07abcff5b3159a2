package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"
	"strings"

	"gantry/internal/ci"
)

// Unavailable reports whether err means the database (or another backend
// reached over the network) could not be reached or dropped the
// connection, rather than that the request was wrong: the answer is then
// 503, which runners and clients retry, never 403 or 404, and the caller
// must not treat the outcome as known.
func Unavailable(err error) bool {
	if err == nil {
		return false
	}
	var netErr net.Error
	if errors.Is(err, ci.ErrUnavailable) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone) {
		return true
	}
	// Driver errors, recognised by behaviour so the seam names no driver:
	// a connection that was already closed (pgx says so with SafeToRetry),
	// and PostgreSQL's connection-exception and shutdown states.
	var retry interface{ SafeToRetry() bool }
	if errors.As(err, &retry) && retry.SafeToRetry() {
		return true
	}
	var state interface{ SQLState() string }
	if errors.As(err, &state) {
		code := state.SQLState()
		return strings.HasPrefix(code, "08") || strings.HasPrefix(code, "57P") || code == "53300"
	}
	return false
}
