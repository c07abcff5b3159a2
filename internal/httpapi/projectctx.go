package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/ci"
)

// projectView is a project as one caller sees it.
type projectView struct {
	project *ci.Project
	viewer  ci.Viewer
	ident   *identity
}

func (pv *projectView) canReadBuilds() bool   { return ci.CanReadBuilds(pv.project, pv.viewer) }
func (pv *projectView) canUpdateBuilds() bool { return ci.CanUpdateBuilds(pv.project, pv.viewer) }

func (pv *projectView) canAdminBuilds() bool { return ci.CanAdminBuilds(pv.project, pv.viewer) }

// canDestroyArtifacts is GitLab's destroy_artifacts: maintainer and above.
func (pv *projectView) canDestroyArtifacts() bool { return pv.canAdminBuilds() }

// lookupProject resolves :id (numeric id or URL-encoded full path). Every
// way of not finding or not seeing the project answers the same 404.
func (a *API) lookupProject(ctx context.Context, raw string) (*ci.Project, error) {
	var p *ci.Project
	var err error
	switch {
	case isDigits(raw):
		id, perr := strconv.ParseInt(raw, 10, 64)
		if perr != nil || id <= 0 {
			return nil, errProjectNotFound
		}
		p, err = a.store.ProjectByID(ctx, id)
	case strings.Contains(raw, "/"):
		p, err = a.store.ProjectByFullPath(ctx, raw)
	default:
		return nil, errProjectNotFound
	}
	if errors.Is(err, ci.ErrNotFound) {
		return nil, errProjectNotFound
	}
	return p, err
}

// findProject looks the project up and checks that ident may see it.
func (a *API) findProject(r *http.Request, ident *identity) (*projectView, error) {
	ctx := r.Context()
	p, err := a.lookupProject(ctx, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	pv := &projectView{project: p, ident: ident}
	if ident != nil && ident.User != nil {
		pv.viewer.User = ident.User
		if pv.viewer.Access, err = a.store.ProjectAccess(ctx, ident.User.ID, p); err != nil {
			return nil, err
		}
	}
	if !ci.CanReadProject(p, pv.viewer) {
		return nil, errProjectNotFound
	}
	if ident != nil && ident.Job != nil && ident.Job.ProjectID != p.ID {
		allowed, err := a.store.JobTokenAllowed(ctx, ident.Job.ProjectID, p.ID)
		if err != nil {
			return nil, err
		}
		if !allowed {
			src, err := a.store.ProjectByID(ctx, ident.Job.ProjectID)
			if err != nil {
				return nil, err
			}
			return nil, errForbiddenReason("Authentication by CI/CD job token not allowed from " + src.FullPath + " to " + p.FullPath + ".")
		}
	}
	return pv, nil
}

// userProject is the start of most signed-in project routes, in GitLab's
// order: a user (401), the parameters (400), then the project (404).
func (a *API) userProject(r *http.Request) (*projectView, *params, error) {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return nil, nil, err
	}
	return a.paramsAndProject(r, ident)
}

// paramsAndProject reads the parameters, then resolves :id for ident.
func (a *API) paramsAndProject(r *http.Request, ident *identity) (*projectView, *params, error) {
	p, err := readParams(r)
	if err != nil {
		return nil, nil, err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return nil, nil, err
	}
	return pv, p, nil
}

// byPathID resolves a numeric path segment with find; a malformed id is
// 400, and an id out of range or not found is 404 Not found.
func byPathID[T any](r *http.Request, name string, find func(id int64) (T, error)) (T, error) {
	var zero T
	id, ok, err := pathID(r, name)
	if err != nil {
		return zero, err
	}
	if !ok {
		return zero, errRecordNotFound
	}
	v, err := find(id)
	if errors.Is(err, ci.ErrNotFound) {
		return zero, errRecordNotFound
	}
	return v, err
}

// refAllows applies protected branches and tags: acting on CI for a
// protected ref needs the right to push or merge to it (create, for a tag).
func (a *API) refAllows(ctx context.Context, pv *projectView, ref string, tag bool) (bool, error) {
	rs, err := a.store.ProtectedRefs(ctx, pv.project.ID, ci.RefKindOf(tag))
	if err != nil {
		return false, err
	}
	return ci.CanUpdateRef(rs, tag, ref, pv.viewer), nil
}

// canUpdateRef is update_build (update_pipeline) on a job (pipeline) of a
// ref: developer rights on the project and on the ref.
func (a *API) canUpdateRef(r *http.Request, pv *projectView, ref string, tag bool) error {
	if !pv.canUpdateBuilds() {
		return errForbidden
	}
	ok, err := a.refAllows(r.Context(), pv, ref, tag)
	if err != nil {
		return err
	}
	if !ok {
		return errForbidden
	}
	return nil
}

// authorizedProject resolves a user (401), the named integer path parameters
// (400), the project (404) and an ability on it (403): the start of most
// project-level writes, in GitLab's order.
func (a *API) authorizedProject(r *http.Request, can func(*projectView) bool, pathIDs ...string) (*projectView, error) {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return nil, err
	}
	for _, name := range pathIDs {
		if _, _, err := pathID(r, name); err != nil {
			return nil, err
		}
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return nil, err
	}
	if !can(pv) {
		return nil, errForbidden
	}
	return pv, nil
}

// findProjectForBuilds is findProject for routes that read jobs
// (read_build): a project seen without that ability answers 403.
func (a *API) findProjectForBuilds(r *http.Request, ident *identity) (*projectView, error) {
	pv, err := a.findProject(r, ident)
	if err != nil {
		return nil, err
	}
	if !pv.canReadBuilds() {
		return nil, errForbidden
	}
	return pv, nil
}
