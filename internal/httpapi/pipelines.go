package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/junit"
	"gantry/internal/pipeline"
	"gantry/internal/store"
)

type detailedStatus struct {
	Icon         string  `json:"icon"`
	Text         string  `json:"text"`
	Label        string  `json:"label"`
	Group        string  `json:"group"`
	Tooltip      string  `json:"tooltip"`
	HasDetails   bool    `json:"has_details"`
	DetailsPath  string  `json:"details_path"`
	Illustration *string `json:"illustration"`
	Favicon      string  `json:"favicon"`
}

func statusText(s ci.JobStatus) string { return s.Label() }

// pipelineEntity is GitLab's full Pipeline entity.
type pipelineEntity struct {
	pipelineBasicEntity
	BeforeSHA      string           `json:"before_sha"`
	Tag            bool             `json:"tag"`
	YamlErrors     *string          `json:"yaml_errors"`
	User           *userBasicEntity `json:"user"`
	StartedAt      *Time            `json:"started_at"`
	FinishedAt     *Time            `json:"finished_at"`
	CommittedAt    *Time            `json:"committed_at"`
	Duration       *int64           `json:"duration"`
	QueuedDuration *int64           `json:"queued_duration"`
	Coverage       *string          `json:"coverage"`
	DetailedStatus detailedStatus   `json:"detailed_status"`
	Archived       bool             `json:"archived"`
}

func (a *API) pipelineEntity(r *http.Request, p *ci.Project, pl *ci.Pipeline) (*pipelineEntity, error) {
	e := &pipelineEntity{pipelineBasicEntity: *a.pipelineBasic(p, pl), BeforeSHA: pl.BeforeSHA, Tag: pl.Tag,
		StartedAt: tp(pl.StartedAt), FinishedAt: tp(pl.FinishedAt)}
	if pl.ConfigErrors != "" {
		e.YamlErrors = &pl.ConfigErrors
	}
	if pl.UserID != nil {
		if u, err := a.store.UserByID(r.Context(), *pl.UserID); err == nil {
			e.User = &userBasicEntity{ID: u.ID, Username: u.Username, Name: u.Name, State: u.State, Locked: u.State == "blocked", WebURL: a.cfg.ExternalURL + "/" + u.Username}
		}
	}
	if cm, err := a.store.CommitsBySHA(r.Context(), p.ID, []string{pl.SHA}); err == nil && cm[pl.SHA] != nil {
		t := cm[pl.SHA].CommittedDate
		e.CommittedAt = tp(&t)
	}
	if pl.Duration != nil {
		d := int64(*pl.Duration)
		e.Duration = &d
	}
	if pl.StartedAt != nil {
		q := int64(pl.StartedAt.Sub(pl.CreatedAt).Seconds())
		e.QueuedDuration = &q
	}
	group := string(pl.Status)
	if pl.Status == ci.StatusSuccess {
		group = "success"
	}
	e.DetailedStatus = detailedStatus{Icon: "status_" + group, Text: statusText(pl.Status), Label: statusText(pl.Status), Group: group,
		Tooltip: statusText(pl.Status), HasDetails: true, DetailsPath: "/" + p.FullPath + "/-/pipelines/" + strconv.FormatInt(pl.ID, 10),
		Favicon: "/assets/ci_favicons/favicon_status_" + group + ".png"}
	return e, nil
}

// pipelineAccess says how a pipelines route authenticates.
type pipelineAccess int

const (
	// pipelineRead: anonymous callers and job tokens are allowed.
	pipelineRead pipelineAccess = iota
	// pipelineReadNoJobToken: anonymous callers are allowed, and a job
	// token is no credential (GitLab's variables and test report).
	pipelineReadNoJobToken
	// pipelineWrite: a user is required.
	pipelineWrite
)

// pipelineProject authenticates (anonymous allowed for reads) and checks read_pipeline.
func (a *API) pipelineProject(r *http.Request, access pipelineAccess) (*projectView, *params, error) {
	var ident *identity
	var err error
	switch access {
	case pipelineWrite:
		ident, err = a.requireUser(r, authUser)
	case pipelineReadNoJobToken:
		ident, err = a.authenticate(r, authUser)
	default:
		ident, err = a.authenticate(r, authUserOrJob)
	}
	if err != nil {
		return nil, nil, err
	}
	pv, p, err := a.paramsAndProject(r, ident)
	if err != nil {
		return nil, nil, err
	}
	if !ci.CanReadPipelines(pv.project, pv.viewer) {
		return nil, nil, errForbidden
	}
	return pv, p, nil
}

// pipelineRequest resolves what every single-pipeline route starts with.
func (a *API) pipelineRequest(r *http.Request, access pipelineAccess) (*projectView, *ci.Pipeline, error) {
	pv, _, err := a.pipelineProject(r, access)
	if err != nil {
		return nil, nil, err
	}
	pl, err := a.findPipeline(r, pv)
	return pv, pl, err
}

func (a *API) findPipeline(r *http.Request, pv *projectView) (*ci.Pipeline, error) {
	return byPathID(r, "pipeline_id", func(id int64) (*ci.Pipeline, error) {
		return a.store.PipelineByID(r.Context(), pv.project.ID, id)
	})
}

// GET /projects/:id/pipelines
func (a *API) handleListPipelines(w http.ResponseWriter, r *http.Request) error {
	pv, p, err := a.pipelineProject(r, pipelineRead)
	if err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	f := store.PipelineFilter{ProjectID: pv.project.ID, Ref: p.str("ref"), SHA: p.str("sha"), Source: p.str("source")}
	switch scope := p.str("scope"); scope {
	case "":
	case "running":
		f.Statuses = []ci.JobStatus{ci.StatusRunning}
	case "pending":
		f.Statuses = []ci.JobStatus{ci.StatusPending}
	case "finished":
		f.Statuses = []ci.JobStatus{ci.StatusSuccess, ci.StatusFailed, ci.StatusCanceled, ci.StatusSkipped}
	case "branches", "tags":
		tag := scope == "tags"
		f.Tag = &tag
	default:
		return errParam("scope does not have a valid value")
	}
	if st := p.str("status"); st != "" {
		s := ci.JobStatus(st)
		if !s.Valid() {
			return errParam("status does not have a valid value")
		}
		f.Statuses = []ci.JobStatus{s}
	}
	for _, k := range []string{"updated_after", "updated_before"} {
		if v := p.str(k); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return errParam(k + " is invalid")
			}
			if k == "updated_after" {
				f.UpdatedAfter = &t
			} else {
				f.UpdatedBefore = &t
			}
		}
	}
	if ob := p.str("order_by"); ob != "" && ob != "id" {
		if ob != "status" && ob != "ref" && ob != "updated_at" && ob != "user_id" {
			return errParam("order_by does not have a valid value")
		}
	}
	switch p.str("sort") {
	case "", "desc":
	case "asc":
		f.Ascending = true
	default:
		return errParam("sort does not have a valid value")
	}
	total, err := a.store.CountPipelines(r.Context(), f, totalsCap+1)
	if err != nil {
		return err
	}
	f.Offset, f.Limit = (pp.Page-1)*pp.PerPage, pp.PerPage+1
	list, err := a.store.ListPipelines(r.Context(), f)
	if err != nil {
		return err
	}
	list, hasNext := pageOf(list, pp.PerPage)
	a.offsetHeaders(w, r, p, pp, hasNext, total, map[string]string{"id": r.PathValue("id")})
	out := make([]*pipelineBasicEntity, len(list))
	for i, pl := range list {
		out[i] = a.pipelineBasic(pv.project, pl)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// GET /projects/:id/pipelines/:pipeline_id
func (a *API) handleGetPipeline(w http.ResponseWriter, r *http.Request) error {
	pv, pl, err := a.pipelineRequest(r, pipelineRead)
	if err != nil {
		return err
	}
	return a.writePipeline(w, r, http.StatusOK, pv.project, pl)
}

func (a *API) writePipeline(w http.ResponseWriter, r *http.Request, status int, p *ci.Project, pl *ci.Pipeline) error {
	e, err := a.pipelineEntity(r, p, pl)
	if err != nil {
		return err
	}
	writeJSON(w, status, e)
	return nil
}

// pipelineBaseError is GitLab's 400 for a pipeline that cannot be created.
func pipelineBaseError(msgs ...string) *apiError {
	return &apiError{status: http.StatusBadRequest, body: map[string]any{"message": map[string][]string{"base": msgs}}}
}

// variablesParam reads variables as [{key, value, variable_type}] (JSON or
// form variables[0][key]=…) or, for triggers, variables[KEY]=value.
func variablesParam(p *params, hashForm bool) ([]store.Variable, error) {
	var out []store.Variable
	if p.json != nil {
		if raw, ok := p.json["variables"]; ok {
			switch vs := raw.(type) {
			case []any:
				for i, e := range vs {
					m, ok := e.(map[string]any)
					if !ok {
						return nil, errParam("variables[" + strconv.Itoa(i) + "] is invalid")
					}
					k, _ := m["key"].(string)
					if k == "" {
						return nil, errParam("variables[" + strconv.Itoa(i) + "][key] is missing")
					}
					v := store.Variable{Key: k, VariableType: "env_var"}
					switch val := m["value"].(type) {
					case string:
						v.Value = val
					case nil:
					default:
						return nil, errParam("variables[" + strconv.Itoa(i) + "][value] is invalid")
					}
					if vt, _ := m["variable_type"].(string); vt != "" {
						if vt != "env_var" && vt != "file" {
							return nil, errParam("variables[" + strconv.Itoa(i) + "][variable_type] does not have a valid value")
						}
						v.VariableType = vt
					}
					out = append(out, v)
				}
			case map[string]any:
				for k, val := range vs {
					s, _ := val.(string)
					out = append(out, store.Variable{Key: k, Value: s, VariableType: "env_var"})
				}
			default:
				return nil, errParam("variables is invalid")
			}
			return out, nil
		}
	}
	indexed := map[string]*store.Variable{}
	var order []string
	for k, vs := range p.values {
		if !strings.HasPrefix(k, "variables[") || len(vs) == 0 {
			continue
		}
		rest := strings.TrimPrefix(k, "variables[")
		idx, field, found := strings.Cut(rest, "][")
		if found && strings.HasSuffix(field, "]") {
			field = strings.TrimSuffix(field, "]")
			v := indexed[idx]
			if v == nil {
				v = &store.Variable{VariableType: "env_var"}
				indexed[idx] = v
				order = append(order, idx)
			}
			switch field {
			case "key":
				v.Key = vs[0]
			case "value":
				v.Value = vs[0]
			case "variable_type":
				v.VariableType = vs[0]
			}
		} else if hashForm && strings.HasSuffix(rest, "]") {
			out = append(out, store.Variable{Key: strings.TrimSuffix(rest, "]"), Value: vs[0], VariableType: "env_var"})
		}
	}
	for _, idx := range order {
		v := indexed[idx]
		if v.Key == "" {
			return nil, errParam("variables[" + idx + "][key] is missing")
		}
		if v.VariableType != "env_var" && v.VariableType != "file" {
			return nil, errParam("variables[" + idx + "][variable_type] does not have a valid value")
		}
		out = append(out, *v)
	}
	return out, nil
}

// createPipelineAnswer maps pipeline creation errors to GitLab's answers.
func (a *API) createPipelineAnswer(w http.ResponseWriter, r *http.Request, p *ci.Project, pl *ci.Pipeline, err error) error {
	var cerr *pipeline.ConfigError
	switch {
	case errors.As(err, &cerr):
		return pipelineBaseError(strings.Split(cerr.Error(), "\n")...)
	case errors.Is(err, pipeline.ErrNoConfig), errors.Is(err, pipeline.ErrNoJobs), errors.Is(err, pipeline.ErrRefNotFound), errors.Is(err, pipeline.ErrWorkflow):
		return pipelineBaseError(err.Error())
	case err != nil:
		return err
	}
	return a.writePipeline(w, r, http.StatusCreated, p, pl)
}

// POST /projects/:id/pipeline
func (a *API) handleCreatePipeline(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if err := p.requireStr("ref"); err != nil {
		return err
	}
	vars, err := variablesParam(p, false)
	if err != nil {
		return err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return err
	}
	if !pv.canUpdateBuilds() {
		return errForbidden
	}
	if a.pipelines == nil {
		return errMessage(http.StatusServiceUnavailable, "503 Service Unavailable")
	}
	ref := p.str("ref")
	tag, err := a.branchOrTag(r, pv.project.ID, ref)
	if err != nil {
		return err
	}
	if ok, err := a.refAllows(r.Context(), pv, ref, tag); err != nil {
		return err
	} else if !ok {
		return pipelineBaseError("Insufficient permissions for protected ref '" + ref + "'")
	}
	pl, err := a.pipelines.Create(r.Context(), pipeline.CreateRequest{Project: pv.project, Ref: ref, Tag: tag, Source: ci.SourceAPI, User: ident.User, Variables: vars})
	return a.createPipelineAnswer(w, r, pv.project, pl, err)
}

// POST /projects/:id/pipelines/:pipeline_id/cancel
func (a *API) handleCancelPipeline(w http.ResponseWriter, r *http.Request) error {
	pv, pl, err := a.pipelineRequest(r, pipelineWrite)
	if err != nil {
		return err
	}
	if err := a.canUpdateRef(r, pv, pl.Ref, pl.Tag); err != nil {
		return err
	}
	if _, err := a.store.CancelPipeline(r.Context(), pl.ID, a.now()); err != nil {
		return err
	}
	if err := a.processNow(r, pl.ID); err != nil {
		return err
	}
	if pl, err = a.store.PipelineByID(r.Context(), pv.project.ID, pl.ID); err != nil {
		return err
	}
	return a.writePipeline(w, r, http.StatusOK, pv.project, pl)
}

// processNow processes a pipeline synchronously so the answer shows the result.
func (a *API) processNow(r *http.Request, pipelineID int64) error {
	if a.pipelines == nil {
		return nil
	}
	return a.pipelines.Process(r.Context(), pipelineID)
}

// POST /projects/:id/pipelines/:pipeline_id/retry
func (a *API) handleRetryPipeline(w http.ResponseWriter, r *http.Request) error {
	pv, pl, err := a.pipelineRequest(r, pipelineWrite)
	if err != nil {
		return err
	}
	if err := a.canUpdateRef(r, pv, pl.Ref, pl.Tag); err != nil {
		return err
	}
	jobs, err := a.store.ListJobs(r.Context(), store.JobFilter{ProjectID: pv.project.ID, PipelineID: pl.ID, Statuses: []ci.JobStatus{ci.StatusFailed, ci.StatusCanceled}, Limit: 10000})
	if err != nil {
		return err
	}
	var ids []int64
	for _, j := range jobs {
		ids = append(ids, j.ID)
	}
	if len(ids) > 0 {
		if _, err := a.store.RetryJobs(r.Context(), store.RetryParams{PipelineID: pl.ID, JobIDs: ids, UserID: &pv.ident.User.ID, Now: a.now()}); err != nil {
			return err
		}
		if err := a.processNow(r, pl.ID); err != nil {
			return err
		}
	}
	if pl, err = a.store.PipelineByID(r.Context(), pv.project.ID, pl.ID); err != nil {
		return err
	}
	return a.writePipeline(w, r, http.StatusCreated, pv.project, pl)
}

// DELETE /projects/:id/pipelines/:pipeline_id
func (a *API) handleDeletePipeline(w http.ResponseWriter, r *http.Request) error {
	pv, pl, err := a.pipelineRequest(r, pipelineWrite)
	if err != nil {
		return err
	}
	if pv.viewer.Access < ci.Owner && !pv.ident.admin() {
		return errForbidden
	}
	keys, err := a.store.DeletePipeline(r.Context(), pv.project.ID, pl.ID)
	if err != nil {
		return err
	}
	a.deleteBlobs(r.Context(), keys)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// GET /projects/:id/pipelines/:pipeline_id/variables
func (a *API) handlePipelineVariables(w http.ResponseWriter, r *http.Request) error {
	pv, pl, err := a.pipelineRequest(r, pipelineReadNoJobToken)
	if err != nil {
		return err
	}
	if !pv.canUpdateBuilds() {
		return errForbidden
	}
	vars, err := a.store.PipelineVariables(r.Context(), pl.ID)
	if err != nil {
		return err
	}
	type variable struct {
		VariableType string `json:"variable_type"`
		Key          string `json:"key"`
		Value        string `json:"value"`
		Raw          bool   `json:"raw"`
	}
	out := make([]variable, len(vars))
	for i, v := range vars {
		out[i] = variable{VariableType: v.VariableType, Key: v.Key, Value: v.Value}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// branchOrTag says whether ref names a tag (false: a branch); neither is
// GitLab's "Reference not found".
func (a *API) branchOrTag(r *http.Request, projectID int64, ref string) (bool, error) {
	if _, err := a.repos.ResolveRef(r.Context(), projectID, "refs/heads/"+ref); err == nil {
		return false, nil
	}
	if _, err := a.repos.ResolveRef(r.Context(), projectID, "refs/tags/"+ref); err == nil {
		return true, nil
	}
	return false, pipelineBaseError("Reference not found")
}

// maxReportJobs bounds how many jobs one test report reads.
const maxReportJobs = 10000

// GET /projects/:id/pipelines/:pipeline_id/test_report: the pipeline's
// junit reports summed, one suite per job (parallel jobs share one).
func (a *API) handleTestReport(w http.ResponseWriter, r *http.Request) error {
	pv, pl, err := a.pipelineRequest(r, pipelineReadNoJobToken)
	if err != nil {
		return err
	}
	if !pv.canReadBuilds() {
		return errForbidden
	}
	ctx := r.Context()
	jobs, arts, err := a.store.ListJobsWithArtifacts(ctx, store.JobFilter{ProjectID: pv.project.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Limit: maxReportJobs})
	if err != nil {
		return err
	}
	report := junit.NewReport()
	for i := len(jobs) - 1; i >= 0; i-- { // oldest first, as GitLab reads them
		j := jobs[i]
		for _, art := range arts[j.ID] {
			if art.FileType != "junit" || a.blobs == nil {
				continue
			}
			rc, _, err := a.blobs.Open(ctx, art.BlobKey)
			if err != nil {
				a.log.Warn("test report: junit artifact unreadable", "job", j.ID, "err", err)
				continue
			}
			report.Add(j.Name, rc)
			rc.Close()
		}
	}
	writeJSON(w, http.StatusOK, report.Finish())
	return nil
}
