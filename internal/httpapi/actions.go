package httpapi

import (
	"context"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// jobAction resolves what every single-job route starts with: a user, the
// project (404 if invisible), read access to its jobs (403), and the job of
// the given kinds (404).
func (a *API) jobAction(r *http.Request, kinds ...ci.JobKind) (*projectView, *ci.Job, error) {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return nil, nil, err
	}
	return a.jobFor(r, ident, kinds...)
}

// jobFor is jobAction for a caller already authenticated.
func (a *API) jobFor(r *http.Request, ident *identity, kinds ...ci.JobKind) (*projectView, *ci.Job, error) {
	if _, _, err := pathID(r, "job_id"); err != nil {
		return nil, nil, err
	}
	pv, err := a.findProjectForBuilds(r, ident)
	if err != nil {
		return nil, nil, err
	}
	j, err := a.findJob(r, pv, kinds...)
	if err != nil {
		return nil, nil, err
	}
	return pv, j, nil
}

// reload re-reads a job after an action and processes its pipeline, so the
// answer shows the job's state after the move.
func (a *API) reload(r *http.Request, pv *projectView, j *ci.Job) (*ci.Job, error) {
	if err := a.processNow(r, j.PipelineID); err != nil {
		return nil, err
	}
	return a.store.JobByID(r.Context(), pv.project.ID, j.ID)
}

// cancelable is GitLab's set of statuses the cancel event applies to.
func cancelable(s ci.JobStatus) bool {
	switch s {
	case ci.StatusCreated, ci.StatusWaitingForResource, ci.StatusPreparing, ci.StatusWaitingForCallback,
		ci.StatusPending, ci.StatusRunning, ci.StatusManual, ci.StatusScheduled:
		return true
	}
	return false
}

// retryable is GitLab's retry event: a finished job not yet retried.
func retryable(j *ci.Job) bool {
	return !j.Retried && (j.Status == ci.StatusSuccess || j.Status == ci.StatusFailed || j.Status == ci.StatusCanceled || j.Status == ci.StatusCanceling)
}

// playable is a manual or delayed job waiting to be started.
func playable(j *ci.Job) bool {
	return (j.When == "manual" || j.When == "delayed") && (j.Status == ci.StatusManual || j.Status == ci.StatusScheduled)
}

// mayErase is erase_build: maintainers, or developers on their own jobs.
func mayErase(pv *projectView, j *ci.Job) bool {
	own := j.UserID != nil && pv.viewer.User != nil && *j.UserID == pv.viewer.User.ID
	return ci.CanAdminBuilds(pv.project, pv.viewer) || own && pv.canUpdateBuilds()
}

// erasable is a finished job, not yet erased, with a log or artifacts.
func (a *API) erasable(ctx context.Context, j *ci.Job) (bool, error) {
	if !j.Status.Completed() || j.ErasedAt != nil {
		return false, nil
	}
	arts, err := a.store.ArtifactsByJobIDs(ctx, []int64{j.ID})
	if err != nil {
		return false, err
	}
	if len(arts[j.ID]) > 0 {
		return true, nil
	}
	size, err := a.store.TraceSize(ctx, j.ID)
	return size > 0, err
}

// JobAbilities are the actions a user may take on a job now.
type JobAbilities struct {
	Cancel, Retry, Play, Erase bool
}

// JobAbilities applies the rules the action routes enforce, so a page
// shows only the buttons that would work (the routes still check).
func (a *API) JobAbilities(ctx context.Context, user *ci.User, p *ci.Project, j *ci.Job) (JobAbilities, error) {
	var out JobAbilities
	if user == nil || user.State != "active" || a.archived(j, a.now()) {
		return out, nil
	}
	pv := &projectView{project: p, viewer: ci.Viewer{User: user}}
	var err error
	if pv.viewer.Access, err = a.store.ProjectAccess(ctx, user.ID, p); err != nil {
		return out, err
	}
	if !pv.canReadBuilds() {
		return out, nil
	}
	refOK, err := a.refAllows(ctx, pv, j.Ref, j.Tag)
	if err != nil || !refOK {
		return out, err
	}
	update := pv.canUpdateBuilds()
	out.Cancel = update && j.Kind == ci.KindBuild && cancelable(j.Status)
	out.Retry = update && retryable(j)
	out.Play = update && playable(j)
	if j.Kind == ci.KindBuild && mayErase(pv, j) {
		if out.Erase, err = a.erasable(ctx, j); err != nil {
			return out, err
		}
	}
	return out, nil
}

// POST /projects/:id/jobs/:job_id/cancel
func (a *API) handleCancelJob(w http.ResponseWriter, r *http.Request) error {
	// GitLab's order: authentication, then parameters, then the lookup.
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	force, _, err := p.boolParam("force")
	if err != nil {
		return err
	}
	pv, j, err := a.jobFor(r, ident, ci.KindBuild)
	if err != nil {
		return err
	}
	if err := a.canUpdateRef(r, pv, j.Ref, j.Tag); err != nil {
		return err
	}
	if a.archived(j, a.now()) {
		return errForbidden
	}
	ctx := r.Context()
	now := a.now()
	switch {
	case force:
		if !ci.CanAdminBuilds(pv.project, pv.viewer) {
			return errForbidden
		}
		if j.Status == ci.StatusCanceling {
			if _, err := a.store.FinishJob(ctx, store.FinishParams{JobID: j.ID, State: ci.StatusCanceled, Now: now}); err != nil && !errors.Is(err, ci.ErrConflict) {
				return err
			}
		}
	case j.Status == ci.StatusRunning:
		// The runner is told through Job-Status and runs after_script.
		if _, err := a.store.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: j.Status, To: ci.StatusCanceling, Now: now}); err != nil && !errors.Is(err, ci.ErrConflict) {
			return err
		}
	case cancelable(j.Status):
		if _, err := a.store.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: j.Status, To: ci.StatusCanceled, Now: now}); err != nil && !errors.Is(err, ci.ErrConflict) {
			return err
		}
	}
	if j, err = a.reload(r, pv, j); err != nil {
		return err
	}
	return a.writeJob(w, r, http.StatusCreated, pv.project, j)
}

// POST /projects/:id/jobs/:job_id/retry
func (a *API) handleRetryJob(w http.ResponseWriter, r *http.Request) error {
	// gantry's extension: new variables for the new run, as play takes them.
	pv, j, vars, err := a.jobUpdateWithVariables(r)
	if err != nil {
		return err
	}
	if !retryable(j) || a.archived(j, a.now()) {
		return errForbiddenReason("Job is not retryable")
	}
	ids, err := a.store.RetryJobs(r.Context(), store.RetryParams{PipelineID: j.PipelineID, JobIDs: []int64{j.ID}, UserID: &pv.ident.User.ID,
		SetVariables: len(vars) > 0, Variables: vars, Now: a.now()})
	if errors.Is(err, ci.ErrConflict) {
		return errForbiddenReason("Job is not retryable")
	}
	if err != nil {
		return err
	}
	fresh := &ci.Job{ID: ids[0], PipelineID: j.PipelineID}
	if fresh, err = a.reload(r, pv, fresh); err != nil {
		return err
	}
	return a.writeJob(w, r, http.StatusCreated, pv.project, fresh)
}

// POST /projects/:id/jobs/:job_id/erase
func (a *API) handleEraseJob(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := a.jobAction(r, ci.KindBuild)
	if err != nil {
		return err
	}
	ctx := r.Context()
	if !mayErase(pv, j) || a.archived(j, a.now()) {
		return errForbidden
	}
	if ok, err := a.refAllows(ctx, pv, j.Ref, j.Tag); err != nil {
		return err
	} else if !ok {
		return errForbidden
	}
	if ok, err := a.erasable(ctx, j); err != nil {
		return err
	} else if !ok {
		return errForbiddenReason("Job is not erasable!")
	}
	keys, err := a.store.EraseJob(ctx, j.ID, pv.ident.User.ID, a.now())
	if err != nil {
		return err
	}
	a.deleteBlobs(ctx, keys)
	if j, err = a.store.JobByID(ctx, pv.project.ID, j.ID); err != nil {
		return err
	}
	return a.writeJob(w, r, http.StatusCreated, pv.project, j)
}

// jobVariablesParam reads job_variables_attributes: [{key, value}], both required.
func jobVariablesParam(p *params) ([]store.Variable, error) {
	var out []store.Variable
	if p.json != nil {
		raw, ok := p.json["job_variables_attributes"]
		if !ok || raw == nil {
			return nil, nil
		}
		list, ok := raw.([]any)
		if !ok {
			return nil, errParam("job_variables_attributes is invalid")
		}
		for i, e := range list {
			m, ok := e.(map[string]any)
			if !ok {
				return nil, errParam("job_variables_attributes[" + strconv.Itoa(i) + "] is invalid")
			}
			k, hasK := m["key"].(string)
			v, hasV := m["value"].(string)
			switch {
			case !hasK:
				return nil, errParam("job_variables_attributes[" + strconv.Itoa(i) + "][key] is missing")
			case !hasV:
				return nil, errParam("job_variables_attributes[" + strconv.Itoa(i) + "][value] is missing")
			}
			out = append(out, store.Variable{Key: k, Value: v, VariableType: "env_var"})
		}
		return out, nil
	}
	type entry struct {
		v        store.Variable
		hasValue bool
	}
	indexed := map[string]*entry{}
	var order []string
	const prefix = "job_variables_attributes["
	for k, vs := range p.values {
		if !strings.HasPrefix(k, prefix) || len(vs) == 0 {
			continue
		}
		idx, field, ok := strings.Cut(strings.TrimPrefix(k, prefix), "][")
		if !ok || !strings.HasSuffix(field, "]") {
			continue
		}
		e := indexed[idx]
		if e == nil {
			e = &entry{v: store.Variable{VariableType: "env_var"}}
			indexed[idx] = e
			order = append(order, idx)
		}
		switch strings.TrimSuffix(field, "]") {
		case "key":
			e.v.Key = vs[0]
		case "value":
			e.v.Value, e.hasValue = vs[0], true
		}
	}
	sort.Strings(order)
	for _, idx := range order {
		e := indexed[idx]
		if e.v.Key == "" {
			return nil, errParam(prefix + idx + "][key] is missing")
		}
		if !e.hasValue {
			return nil, errParam(prefix + idx + "][value] is missing")
		}
		out = append(out, e.v)
	}
	return out, nil
}

// jobUpdateWithVariables starts retry and play: a user, the
// job_variables_attributes parameter, the job (a build or a bridge) and the
// right to update it.
func (a *API) jobUpdateWithVariables(r *http.Request) (*projectView, *ci.Job, []store.Variable, error) {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return nil, nil, nil, err
	}
	p, err := readParams(r)
	if err != nil {
		return nil, nil, nil, err
	}
	vars, err := jobVariablesParam(p)
	if err != nil {
		return nil, nil, nil, err
	}
	pv, j, err := a.jobFor(r, ident, ci.KindBuild, ci.KindBridge)
	if err != nil {
		return nil, nil, nil, err
	}
	if err := a.canUpdateRef(r, pv, j.Ref, j.Tag); err != nil {
		return nil, nil, nil, err
	}
	return pv, j, vars, nil
}

// POST /projects/:id/jobs/:job_id/play
func (a *API) handlePlayJob(w http.ResponseWriter, r *http.Request) error {
	pv, j, vars, err := a.jobUpdateWithVariables(r)
	if err != nil {
		return err
	}
	if !playable(j) || a.archived(j, a.now()) {
		return errBadRequest("Unplayable Job")
	}
	played, err := a.store.PlayJob(r.Context(), j.ID, pv.ident.User.ID, vars, a.now())
	if errors.Is(err, ci.ErrConflict) {
		return errBadRequest("Unplayable Job")
	}
	if err != nil {
		return err
	}
	// The store moved the job to pending itself: processing sees no
	// transition, so runners waiting for work are told here.
	if played.Kind == ci.KindBuild && played.Status == ci.StatusPending && a.pipelines != nil {
		a.pipelines.JobsPending(pv.project.ID, []int64{played.ID})
	}
	if played, err = a.reload(r, pv, played); err != nil {
		return err
	}
	if played.Kind == ci.KindBridge {
		jc, err := a.loadJobContext(r.Context(), pv.project, []*ci.Job{played}, nil)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusOK, a.bridgeEntityOf(jc, played))
		return nil
	}
	return a.writeJob(w, r, http.StatusOK, pv.project, played)
}
