package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"gantry/internal/ci"
)

// protectedAccessEntity is GitLab's ProtectedRefAccess entity.
type protectedAccessEntity struct {
	AccessLevel            int    `json:"access_level"`
	AccessLevelDescription string `json:"access_level_description"`
}

type protectedBranchEntity struct {
	ID                int64                   `json:"id"`
	Name              string                  `json:"name"`
	PushAccessLevels  []protectedAccessEntity `json:"push_access_levels"`
	MergeAccessLevels []protectedAccessEntity `json:"merge_access_levels"`
	AllowForcePush    bool                    `json:"allow_force_push"`
}

type protectedTagEntity struct {
	Name               string                  `json:"name"`
	CreateAccessLevels []protectedAccessEntity `json:"create_access_levels"`
}

func accessEntities(p *ci.ProtectedRef, a ci.ProtectedAction) []protectedAccessEntity {
	out := []protectedAccessEntity{}
	for _, l := range p.Levels(a) {
		out = append(out, protectedAccessEntity{AccessLevel: int(l), AccessLevelDescription: ci.AccessLevelDescription(l)})
	}
	return out
}

func protectedEntity(p *ci.ProtectedRef) any {
	if p.Kind == ci.RefTag {
		return protectedTagEntity{Name: p.Name, CreateAccessLevels: accessEntities(p, ci.ActionCreate)}
	}
	return protectedBranchEntity{ID: p.ID, Name: p.Name, PushAccessLevels: accessEntities(p, ci.ActionPush),
		MergeAccessLevels: accessEntities(p, ci.ActionMerge), AllowForcePush: p.AllowForcePush}
}

// protectedRefsProject authorises the protected-ref routes: branches are
// readable by anyone who reads the code and managed by maintainers; tags
// are maintainers' throughout.
func (a *API) protectedRefsProject(r *http.Request, kind ci.RefKind, write bool) (*projectView, *params, error) {
	// GitLab's protected branches and tags APIs have no authentication
	// hook: an anonymous caller meets the project lookup (404 when private).
	ident, err := a.authenticate(r, authUser)
	if err != nil {
		return nil, nil, err
	}
	pv, p, err := a.paramsAndProject(r, ident)
	if err != nil {
		return nil, nil, err
	}
	if write || kind == ci.RefTag {
		if !ci.CanAdminBuilds(pv.project, pv.viewer) {
			return nil, nil, errForbidden
		}
	} else if !ci.CanReadCode(pv.project, pv.viewer) {
		return nil, nil, errForbidden
	}
	return pv, p, nil
}

// GET /projects/:id/protected_branches and /protected_tags
func (a *API) handleListProtected(kind ci.RefKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, p, err := a.protectedRefsProject(r, kind, false)
		if err != nil {
			return err
		}
		pp, err := p.pagination()
		if err != nil {
			return err
		}
		all, err := a.store.ProtectedRefs(r.Context(), pv.project.ID, kind)
		if err != nil {
			return err
		}
		if kind == ci.RefBranch {
			if q := p.str("search"); q != "" {
				var hits ci.RefProtection
				for _, x := range all {
					if containsFold(x.Name, q) {
						hits = append(hits, x)
					}
				}
				all = hits
			}
		}
		start := min((pp.Page-1)*pp.PerPage, len(all))
		end := min(start+pp.PerPage, len(all))
		a.offsetHeaders(w, r, p, pp, end < len(all), len(all), map[string]string{"id": r.PathValue("id")})
		out := make([]any, 0, end-start)
		for _, x := range all[start:end] {
			out = append(out, protectedEntity(x))
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// GET /projects/:id/protected_branches/:name and /protected_tags/:name
func (a *API) handleGetProtected(kind ci.RefKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, _, err := a.protectedRefsProject(r, kind, false)
		if err != nil {
			return err
		}
		x, err := a.store.ProtectedRefByName(r.Context(), pv.project.ID, kind, r.PathValue("name"))
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, protectedEntity(x))
		return nil
	}
}

// protectedLevelParam reads an optional access level, limited to the
// levels GitLab allows on protected refs.
func protectedLevelParam(p *params, name string) (ci.AccessLevel, error) {
	v, ok, err := p.intParam(name)
	if err != nil {
		return 0, err
	}
	if !ok {
		return ci.Maintainer, nil
	}
	switch l := ci.AccessLevel(v); l {
	case ci.NoAccess, ci.Developer, ci.Maintainer, ci.AdminLevel:
		return l, nil
	}
	return 0, errParam(name + " does not have a valid value")
}

// POST /projects/:id/protected_branches and /protected_tags
func (a *API) handleCreateProtected(kind ci.RefKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, p, err := a.protectedRefsProject(r, kind, true)
		if err != nil {
			return err
		}
		if !p.has("name") {
			return errParam("name is missing")
		}
		name := p.str("name")
		x := ci.ProtectedRef{ProjectID: pv.project.ID, Kind: kind, Name: name, CreatedAt: a.now()}
		if kind == ci.RefTag {
			level, err := protectedLevelParam(p, "create_access_level")
			if err != nil {
				return err
			}
			x.Access = []ci.ProtectedAccess{{Action: ci.ActionCreate, AccessLevel: level}}
		} else {
			push, err := protectedLevelParam(p, "push_access_level")
			if err != nil {
				return err
			}
			merge, err := protectedLevelParam(p, "merge_access_level")
			if err != nil {
				return err
			}
			if x.AllowForcePush, _, err = p.boolParam("allow_force_push"); err != nil {
				return err
			}
			x.Access = []ci.ProtectedAccess{{Action: ci.ActionPush, AccessLevel: push}, {Action: ci.ActionMerge, AccessLevel: merge}}
		}
		if name == "" {
			return errMessage422("Name can't be blank")
		}
		taken := func() error {
			if kind == ci.RefTag {
				return errMessage422("Name has already been taken")
			}
			return errMessage(http.StatusConflict, "Protected branch '"+name+"' already exists")
		}
		// Looked up first, as GitLab does; the unique index settles races.
		if _, err := a.store.ProtectedRefByName(r.Context(), pv.project.ID, kind, name); err == nil {
			return taken()
		} else if !errors.Is(err, ci.ErrNotFound) {
			return err
		}
		created, err := a.store.CreateProtectedRef(r.Context(), x)
		if errors.Is(err, ci.ErrConflict) {
			return taken()
		}
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, protectedEntity(created))
		return nil
	}
}

// errMessage422 is a model validation failure: {"message": [messages]}.
func errMessage422(msgs ...string) *apiError {
	return &apiError{status: http.StatusUnprocessableEntity, body: map[string][]string{"message": msgs}}
}

// DELETE /projects/:id/protected_branches/:name and /protected_tags/:name
func (a *API) handleDeleteProtected(kind ci.RefKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, _, err := a.protectedRefsProject(r, kind, true)
		if err != nil {
			return err
		}
		x, err := a.store.ProtectedRefByName(r.Context(), pv.project.ID, kind, r.PathValue("name"))
		if err != nil {
			return err
		}
		if err := a.store.DeleteProtectedRef(r.Context(), pv.project.ID, x.ID); err != nil {
			return err
		}
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
}

// containsFold is a case-insensitive substring test.
func containsFold(s, sub string) bool {
	return strings.Contains(strings.ToLower(s), strings.ToLower(sub))
}
