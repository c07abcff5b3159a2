package app

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/githost"
	"gantry/internal/store"
)

// gitAuth authorises smart-HTTP requests: HTTP Basic with a personal
// access token as the password, or the user gitlab-ci-token with the token
// of a running job (read access to that job's project).
type gitAuth struct {
	store store.Store
	repos *githost.Repos
	now   func() time.Time
}

// credentials resolves Basic credentials to a user; job tokens also give
// the job. ok is false when credentials are absent or wrong; err is a
// store failure, which must not pass for wrong credentials (the client
// would be told to log in again instead of to retry).
func credentials(ctx context.Context, st store.Store, r *http.Request, now time.Time) (user *ci.User, job *ci.Job, ok bool, err error) {
	name, secret, has := r.BasicAuth()
	if !has || secret == "" {
		return nil, nil, false, nil
	}
	unknown := func(err error) (*ci.User, *ci.Job, bool, error) {
		if errors.Is(err, ci.ErrNotFound) {
			return nil, nil, false, nil
		}
		return nil, nil, false, err
	}
	if name == "gitlab-ci-token" || strings.HasPrefix(secret, ci.JobTokenPrefix) {
		j, err := st.JobByTokenDigest(ctx, ci.HashToken(secret))
		if err != nil {
			return unknown(err)
		}
		if !j.Status.Executing() || j.UserID == nil {
			return nil, nil, false, nil
		}
		u, err := st.UserByID(ctx, *j.UserID)
		if err != nil {
			return unknown(err)
		}
		if u.State != "active" {
			return nil, nil, false, nil
		}
		return u, j, true, nil
	}
	tok, u, err := st.TokenByDigest(ctx, ci.HashToken(secret))
	if err != nil {
		return unknown(err)
	}
	if tok.Revoked || u.State != "active" || tok.ExpiresAt != nil && !tok.ExpiresAt.After(now) {
		return nil, nil, false, nil
	}
	return u, nil, true, nil
}

func (g *gitAuth) Authorize(r *http.Request, fullPath string) (githost.Access, bool, bool, error) {
	ctx := r.Context()
	p, err := g.store.ProjectByFullPath(ctx, fullPath)
	if errors.Is(err, ci.ErrNotFound) {
		return githost.Access{}, false, false, nil
	}
	if err != nil {
		return githost.Access{}, false, false, unavailable(err)
	}
	user, job, authed, err := credentials(ctx, g.store, r, g.now())
	if err != nil {
		return githost.Access{}, false, false, unavailable(err)
	}
	v := ci.Viewer{User: user}
	if user != nil && job == nil {
		if v.Access, err = g.store.ProjectAccess(ctx, user.ID, p); err != nil {
			return githost.Access{}, false, false, err
		}
	}
	acc := githost.Access{ProjectID: p.ID}
	switch {
	case job != nil:
		// A job token reads its own project, public projects, and projects
		// whose inbound allowlist admits the job's project.
		if job.ProjectID != p.ID && p.Visibility != ci.Public {
			allowed, err := g.store.JobTokenAllowed(ctx, job.ProjectID, p.ID)
			if err != nil {
				return githost.Access{}, false, false, err
			}
			if !allowed {
				return githost.Access{}, false, true, nil
			}
			// The token acts as the job's user, who must see the project too.
			if v.Access, err = g.store.ProjectAccess(ctx, user.ID, p); err != nil {
				return githost.Access{}, false, false, err
			}
			if !ci.CanReadProject(p, v) {
				return githost.Access{}, false, true, nil
			}
		}
		acc.CanRead = true
	default:
		if !ci.CanReadProject(p, v) {
			if !authed {
				// Unknown to anonymous callers; ask for credentials.
				return githost.Access{}, true, false, nil
			}
			return githost.Access{}, false, true, nil
		}
		acc.CanRead = ci.CanReadCode(p, v)
		acc.CanWrite = user != nil && (user.Admin || v.Access >= ci.Developer)
		if acc.CanWrite {
			if acc.Rules, err = pushRules(ctx, g.store, p.ID, v); err != nil {
				return githost.Access{}, false, false, err
			}
		}
	}
	if err := g.repos.Init(ctx, p.ID, p.DefaultBranch); err != nil {
		return githost.Access{}, false, false, err
	}
	return acc, true, authed, nil
}

// unavailable marks a store failure that means the database cannot be
// reached, so the git handler answers 503 (retry) rather than 500.
func unavailable(err error) error {
	if store.Unavailable(err) && !errors.Is(err, ci.ErrUnavailable) {
		return fmt.Errorf("%w: %w", ci.ErrUnavailable, err)
	}
	return err
}

// pushRules turns the project's protected branches and tags into what the
// pusher may do to them: push (branches, push access only: merge access is
// for merge requests) or create (tags), and force-push where allowed.
func pushRules(ctx context.Context, st store.Store, projectID int64, v ci.Viewer) ([]githost.RefRule, error) {
	var rules []githost.RefRule
	for _, kind := range []ci.RefKind{ci.RefBranch, ci.RefTag} {
		rs, err := st.ProtectedRefs(ctx, projectID, kind)
		if err != nil {
			return nil, err
		}
		for _, p := range rs {
			if kind == ci.RefTag {
				rules = append(rules, githost.RefRule{Tag: true, Pattern: p.Name, CanUpdate: p.Allows(ci.ActionCreate, v)})
				continue
			}
			rules = append(rules, githost.RefRule{Pattern: p.Name, CanUpdate: p.Allows(ci.ActionPush, v), AllowForce: p.AllowForcePush})
		}
	}
	return rules, nil
}
