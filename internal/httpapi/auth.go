package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"

	"gantry/internal/ci"
)

// identity is who a request acts as.
type identity struct {
	User  *ci.User
	Token *ci.Token // personal access token, when that authenticated
	Job   *ci.Job   // the job, when a job token authenticated
}

func (id *identity) userID() int64 {
	if id == nil || id.User == nil {
		return 0
	}
	return id.User.ID
}

func (id *identity) admin() bool { return id != nil && id.User != nil && id.User.Admin }

type signedInKey struct{}

// AsSignedIn marks a request context as made by a user the web UI signed
// in (by session): the API then acts as that user, as GitLab's session
// authentication does. Only server code can set it; nothing in a request can.
func AsSignedIn(ctx context.Context, u *ci.User) context.Context {
	return context.WithValue(ctx, signedInKey{}, u)
}

// authMode says which credentials a route accepts.
type authMode int

const (
	// authUser: personal access tokens only.
	authUser authMode = iota
	// authUserOrJob: personal access tokens and job tokens.
	authUserOrJob
)

func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate follows GitLab's lookup order: a Bearer job token (job-token
// routes only), then a personal token (private_token param, PRIVATE-TOKEN
// header, Bearer), then a job token (job_token or token param, JOB-TOKEN
// header; job-token routes only). It returns a nil identity for anonymous
// requests; a presented but bad credential is an error.
func (a *API) authenticate(r *http.Request, mode authMode) (*identity, error) {
	ctx := r.Context()
	if u, ok := ctx.Value(signedInKey{}).(*ci.User); ok {
		if u.State != "active" {
			return nil, errForbiddenReason("Your account has been blocked.")
		}
		return &identity{User: u}, nil
	}
	q := r.URL.Query()
	bear := bearer(r)
	if mode == authUserOrJob && bear != "" {
		if id, err := a.jobTokenIdentity(ctx, bear); err == nil {
			return id, nil
		}
	}
	pat := q.Get("private_token")
	if pat == "" {
		pat = r.Header.Get("Private-Token")
	}
	if pat == "" && bear != "" && !strings.HasPrefix(bear, ci.JobTokenPrefix) {
		pat = bear
	}
	if pat != "" {
		return a.personalTokenIdentity(r, pat)
	}
	if mode == authUserOrJob {
		jt := q.Get("job_token")
		if jt == "" {
			jt = q.Get("token")
		}
		if jt == "" {
			jt = r.Header.Get("Job-Token")
		}
		if jt != "" {
			id, err := a.jobTokenIdentity(ctx, jt)
			if err != nil {
				return nil, errUnauthorized
			}
			return id, nil
		}
	}
	return nil, nil
}

func (a *API) personalTokenIdentity(r *http.Request, secret string) (*identity, error) {
	tok, user, err := a.store.TokenByDigest(r.Context(), ci.HashToken(secret))
	if errors.Is(err, ci.ErrNotFound) {
		return nil, errUnauthorized
	}
	if err != nil {
		return nil, err
	}
	now := a.now()
	switch {
	case tok.Revoked:
		return nil, errInvalidToken("Token has been revoked.")
	case tok.ExpiresAt != nil && !now.Before(*tok.ExpiresAt):
		return nil, errInvalidToken("Token has expired.")
	}
	if user.State != "active" {
		return nil, errForbiddenReason("Your account has been blocked.")
	}
	if !tok.Has(ci.ScopeAPI) {
		if !tok.Has(ci.ScopeReadAPI) || (r.Method != http.MethodGet && r.Method != http.MethodHead) {
			return nil, errInsufficientScope()
		}
	}
	return &identity{User: user, Token: tok}, nil
}

// jobTokenIdentity accepts the token of an executing job only.
func (a *API) jobTokenIdentity(ctx context.Context, secret string) (*identity, error) {
	job, err := a.store.JobByTokenDigest(ctx, ci.HashToken(secret))
	if err != nil {
		return nil, err
	}
	if !job.Status.Executing() || job.ErasedAt != nil || job.UserID == nil {
		return nil, ci.ErrUnauthorized
	}
	user, err := a.store.UserByID(ctx, *job.UserID)
	if err != nil {
		return nil, err
	}
	if user.State != "active" {
		return nil, ci.ErrUnauthorized
	}
	return &identity{User: user, Job: job}, nil
}

// requireUser authenticates and insists on a user.
func (a *API) requireUser(r *http.Request, mode authMode) (*identity, error) {
	id, err := a.authenticate(r, mode)
	if err != nil {
		return nil, err
	}
	if id == nil || id.User == nil {
		return nil, errUnauthorized
	}
	return id, nil
}

// requireAdmin authenticates and insists on an administrator.
func (a *API) requireAdmin(r *http.Request) (*identity, error) {
	id, err := a.requireUser(r, authUser)
	if err != nil {
		return nil, err
	}
	if !id.admin() {
		return nil, errForbidden
	}
	return id, nil
}
