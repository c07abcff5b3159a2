package httpapi

import (
	"errors"
	"net/http"

	"gantry/internal/ci"
)

// GET /projects/:id/job_token_scope
func (a *API) handleGetJobTokenScope(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	on, err := a.store.JobTokenInbound(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]bool{"inbound_enabled": on, "outbound_enabled": false})
	return nil
}

// PATCH /projects/:id/job_token_scope
func (a *API) handlePatchJobTokenScope(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	enabled, ok, err := p.boolParam("enabled")
	if err != nil {
		return err
	}
	if !ok {
		return errParam("enabled is missing")
	}
	if err := a.store.SetJobTokenInbound(r.Context(), pv.project.ID, enabled); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /projects/:id/job_token_scope/allowlist
func (a *API) handleJobTokenAllowlist(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	projects, _, err := a.store.JobTokenAllowlist(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	out := []*projectEntity{}
	for _, id := range projects {
		if p, err := a.store.ProjectByID(r.Context(), id); err == nil {
			out = append(out, a.projectEntity(p, ci.NoAccess, false))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /projects/:id/job_token_scope/groups_allowlist
func (a *API) handleJobTokenGroupsAllowlist(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	_, groups, err := a.store.JobTokenAllowlist(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	out := []*groupEntity{}
	for _, id := range groups {
		if ns, err := a.store.NamespaceByID(r.Context(), id); err == nil {
			out = append(out, a.groupEntity(ns))
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// POST /projects/:id/job_token_scope/allowlist and .../groups_allowlist
func (a *API) handleAddJobTokenAllowlist(group bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, p, err := a.maintainerProject(r)
		if err != nil {
			return err
		}
		key := "target_project_id"
		if group {
			key = "target_group_id"
		}
		id, ok, err := p.intParam(key)
		if err != nil {
			return err
		}
		if !ok {
			return errParam(key + " is missing")
		}
		ctx := r.Context()
		var srcProject, srcGroup int64
		if group {
			ns, err := a.store.NamespaceByID(ctx, id)
			if err != nil || ns.Kind != ci.NamespaceGroup {
				return errGroupNotFound
			}
			if _, _, err := a.findGroupByID(r, pv.ident, ns); err != nil {
				return err
			}
			srcGroup = ns.ID
		} else {
			target, err := a.store.ProjectByID(ctx, id)
			if err != nil {
				return errProjectNotFound
			}
			access, err := a.store.ProjectAccess(ctx, pv.ident.User.ID, target)
			if err != nil {
				return err
			}
			if !ci.CanReadProject(target, ci.Viewer{User: pv.ident.User, Access: access}) {
				return errProjectNotFound
			}
			srcProject = target.ID
		}
		err = a.store.AllowJobTokens(ctx, pv.project.ID, srcProject, srcGroup, a.now())
		if errors.Is(err, ci.ErrConflict) {
			return errBadRequest("Target project is already in the job token scope")
		}
		if err != nil {
			return err
		}
		body := map[string]int64{"source_project_id": pv.project.ID, key: id}
		writeJSON(w, http.StatusCreated, body)
		return nil
	}
}

// findGroupByID checks that ident may see the group.
func (a *API) findGroupByID(r *http.Request, ident *identity, ns *ci.Namespace) (*ci.Namespace, ci.AccessLevel, error) {
	access, err := a.groupAccess(r, ident, ns)
	if err != nil {
		return nil, 0, err
	}
	if !(ns.Visibility == ci.Public || (ns.Visibility == ci.Internal && ident != nil) || access >= ci.Guest || ident.admin()) {
		return nil, 0, errGroupNotFound
	}
	return ns, access, nil
}

// DELETE /projects/:id/job_token_scope/allowlist/:target_id and .../groups_allowlist/:target_id
func (a *API) handleDeleteJobTokenAllowlist(group bool) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, _, err := a.maintainerProject(r)
		if err != nil {
			return err
		}
		id, ok, err := pathID(r, "target_id")
		if err != nil {
			return err
		}
		if !ok {
			return errRecordNotFound
		}
		var srcProject, srcGroup int64 = id, 0
		if group {
			srcProject, srcGroup = 0, id
		}
		if err := a.store.DisallowJobTokens(r.Context(), pv.project.ID, srcProject, srcGroup); errors.Is(err, ci.ErrNotFound) {
			return errRecordNotFound
		} else if err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}
