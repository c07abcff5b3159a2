package store

import (
	"database/sql"
	"database/sql/driver"
	"errors"
	"io"
	"net"

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
	return errors.Is(err, ci.ErrUnavailable) || errors.As(err, &netErr) ||
		errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, driver.ErrBadConn) || errors.Is(err, sql.ErrConnDone)
}
