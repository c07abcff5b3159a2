package httpapi

import (
	"errors"
	"log/slog"
	"net/http"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// apiError is an answer in one of GitLab's error shapes.
type apiError struct {
	status int
	body   any
	header map[string]string
}

func (e *apiError) Error() string { return http.StatusText(e.status) }

// GitLab's helper errors: {"message": ...}.
func errMessage(status int, message string) *apiError {
	return &apiError{status: status, body: map[string]string{"message": message}}
}

// Parameter validation errors: {"error": ...}.
func errParam(message string) *apiError {
	return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": message}}
}

var (
	errUnauthorized     = errMessage(http.StatusUnauthorized, "401 Unauthorized")
	errForbidden        = errMessage(http.StatusForbidden, "403 Forbidden")
	errProjectNotFound  = errMessage(http.StatusNotFound, "404 Project Not Found")
	errRecordNotFound   = errMessage(http.StatusNotFound, "404 Not found")
	errNotFound         = errMessage(http.StatusNotFound, "404 Not Found")
	errJobNotFound      = errMessage(http.StatusNotFound, "404 Job Not Found")
	errUserNotFound     = errMessage(http.StatusNotFound, "404 User Not Found")
	errGroupNotFound    = errMessage(http.StatusNotFound, "404 Group Not Found")
	errNamespaceMissing = errMessage(http.StatusNotFound, "404 Namespace Not Found")
	// errUnavailable answers while the database cannot be reached; clients
	// and runners retry it.
	errUnavailable   = &apiError{status: http.StatusServiceUnavailable, body: map[string]string{"message": "503 Service Unavailable"}, header: map[string]string{"Retry-After": "1"}}
	errRouteNotFound = &apiError{status: http.StatusNotFound, body: map[string]string{"error": "404 Not Found"}}
)

func errForbiddenReason(reason string) *apiError {
	return errMessage(http.StatusForbidden, "403 Forbidden - "+reason)
}

func errBadRequest(reason string) *apiError {
	if reason == "" {
		return errMessage(http.StatusBadRequest, "400 Bad request")
	}
	return errMessage(http.StatusBadRequest, "400 Bad request - "+reason)
}

// Bearer-token middleware errors (expired, revoked, insufficient scope).
func errInvalidToken(description string) *apiError {
	return &apiError{
		status: http.StatusUnauthorized,
		body:   map[string]string{"error": "invalid_token", "error_description": description},
		header: map[string]string{"WWW-Authenticate": `Bearer realm="", error="invalid_token", error_description="` + description + `"`},
	}
}

func errInsufficientScope() *apiError {
	const d = "The request requires higher privileges than provided by the access token."
	return &apiError{
		status: http.StatusForbidden,
		body:   map[string]string{"error": "insufficient_scope", "error_description": d, "scope": "api"},
		header: map[string]string{"WWW-Authenticate": `Bearer realm="", error="insufficient_scope", error_description="` + d + `", scope="api"`},
	}
}

// writeError renders err. Domain kinds map to statuses here and only here;
// anything unknown is logged and answered with a bare 500.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	var ae *apiError
	switch {
	case errors.As(err, &ae):
	case errors.Is(err, ci.ErrNotFound):
		ae = errRecordNotFound
	case errors.Is(err, ci.ErrForbidden):
		ae = errForbidden
	case errors.Is(err, ci.ErrUnauthorized):
		ae = errUnauthorized
	case errors.Is(err, ci.ErrConflict):
		ae = errMessage(http.StatusConflict, "409 Conflict")
	case errors.Is(err, ci.ErrInvalid):
		ae = errBadRequest("")
	case store.Unavailable(err) && r.Context().Err() == nil:
		log.Warn("backend unavailable", "method", r.Method, "path", r.URL.Path, "err", err)
		ae = errUnavailable
	default:
		if r.Context().Err() != nil {
			// The client went away; nobody reads this answer.
			ae = errMessage(499, "499 Client Closed Request")
		} else {
			log.Error("internal error", "method", r.Method, "path", r.URL.Path, "err", err)
			ae = errMessage(http.StatusInternalServerError, "500 Internal Server Error")
		}
	}
	for k, v := range ae.header {
		w.Header().Set(k, v)
	}
	writeJSON(w, ae.status, ae.body)
}
