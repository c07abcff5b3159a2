package httpapi

import (
	"errors"
	"net/http"

	"gantry/internal/ci"
	"gantry/internal/pipeline"
)

type triggerEntity struct {
	ID          int64            `json:"id"`
	Token       string           `json:"token"`
	Description string           `json:"description"`
	CreatedAt   Time             `json:"created_at"`
	UpdatedAt   Time             `json:"updated_at"`
	LastUsed    *Time            `json:"last_used"`
	Owner       *userBasicEntity `json:"owner"`
	ExpiresAt   *Time            `json:"expires_at"`
}

func (a *API) triggerEntity(r *http.Request, t *ci.Trigger, token string) triggerEntity {
	e := triggerEntity{ID: t.ID, Token: token, Description: t.Description, CreatedAt: Time(t.CreatedAt), UpdatedAt: Time(t.UpdatedAt), LastUsed: tp(t.LastUsed)}
	if e.Token == "" {
		// Only the creation answer shows the whole token; it is stored hashed.
		e.Token = t.TokenPrefix
	}
	if u, err := a.store.UserByID(r.Context(), t.OwnerID); err == nil {
		e.Owner = &userBasicEntity{ID: u.ID, Username: u.Username, Name: u.Name, State: u.State, WebURL: a.cfg.ExternalURL + "/" + u.Username}
	}
	return e
}

// maintainerProject authenticates and requires maintainer access.
func (a *API) maintainerProject(r *http.Request) (*projectView, *params, error) {
	pv, p, err := a.userProject(r)
	if err != nil {
		return nil, nil, err
	}
	if !ci.CanAdminBuilds(pv.project, pv.viewer) {
		return nil, nil, errForbidden
	}
	return pv, p, nil
}

// POST /projects/:id/triggers
func (a *API) handleCreateTrigger(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("description"); err != nil {
		return err
	}
	secret := ci.NewSecret(ci.TriggerTokenPrefix)
	t, err := a.store.CreateTrigger(r.Context(), ci.Trigger{ProjectID: pv.project.ID, OwnerID: pv.ident.User.ID, Description: p.str("description"),
		TokenPrefix: secret[:len(ci.TriggerTokenPrefix)+4], CreatedAt: a.now()}, ci.HashToken(secret))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, a.triggerEntity(r, t, secret))
	return nil
}

// GET /projects/:id/triggers
func (a *API) handleListTriggers(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	list, err := a.store.Triggers(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	out := []triggerEntity{}
	for _, t := range list {
		out = append(out, a.triggerEntity(r, t, ""))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// DELETE /projects/:id/triggers/:trigger_id
func (a *API) handleDeleteTrigger(w http.ResponseWriter, r *http.Request) error {
	pv, _, err := a.maintainerProject(r)
	if err != nil {
		return err
	}
	id, ok, err := pathID(r, "trigger_id")
	if err != nil {
		return err
	}
	if !ok {
		return errMessage(http.StatusNotFound, "404 Trigger Not Found")
	}
	if err := a.store.DeleteTrigger(r.Context(), pv.project.ID, id); errors.Is(err, ci.ErrNotFound) {
		return errMessage(http.StatusNotFound, "404 Trigger Not Found")
	} else if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// POST /projects/:id/trigger/pipeline: a trigger token starts a pipeline.
func (a *API) handleTriggerPipeline(w http.ResponseWriter, r *http.Request) error {
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("token", "ref"); err != nil {
		return err
	}
	vars, err := variablesParam(p, true)
	if err != nil {
		return err
	}
	project, err := a.lookupProject(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	t, err := a.store.TriggerByDigest(r.Context(), ci.HashToken(p.str("token")))
	if err != nil || t.ProjectID != project.ID {
		return errMessage(http.StatusNotFound, "404 Not Found")
	}
	owner, err := a.store.UserByID(r.Context(), t.OwnerID)
	if err != nil {
		return err
	}
	access, err := a.store.ProjectAccess(r.Context(), owner.ID, project)
	if err != nil {
		return err
	}
	if access < ci.Developer && !owner.Admin {
		return errForbidden
	}
	_ = a.store.TouchTrigger(r.Context(), t.ID, a.now())
	if a.pipelines == nil {
		return errMessage(http.StatusServiceUnavailable, "503 Service Unavailable")
	}
	ref := p.str("ref")
	tag, err := a.branchOrTag(r, project.ID, ref)
	if err != nil {
		return err
	}
	pl, err := a.pipelines.Create(r.Context(), pipeline.CreateRequest{Project: project, Ref: ref, Tag: tag, Source: ci.SourceTrigger, User: owner, Variables: vars})
	return a.createPipelineAnswer(w, r, project, pl, err)
}
