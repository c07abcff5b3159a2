package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// GET /projects/:id/jobs
func (a *API) handleListProjectJobs(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUserOrJob)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	scopes, err := p.scopes(true)
	if err != nil {
		return err
	}
	f := store.JobFilter{Kind: ci.KindBuild, Statuses: scopes, IncludeRetried: true, Ref: strings.TrimSpace(p.str("ref")), Name: p.str("name")}
	if err := p.jobTimeFilters(&f); err != nil {
		return err
	}
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	// Keyset first: there GitLab answers any sort but desc with 405.
	keyset, cursor, err := p.keyset()
	if err != nil {
		return err
	}
	if f.Ascending, err = p.sortAscending(); err != nil {
		return err
	}
	pv, err := a.findProjectForBuilds(r, ident)
	if err != nil {
		return err
	}
	f.ProjectID = pv.project.ID
	jobs, arts, err := a.listJobPage(r, f, pp, keyset, cursor)
	if err != nil {
		return err
	}
	jobs, hasNext := pageOf(jobs, pp.PerPage)
	pathParams := map[string]string{"id": r.PathValue("id")}
	if keyset {
		a.keysetLink(w, r, p, pp, jobs, hasNext, pathParams)
	} else {
		a.offsetHeaders(w, r, p, pp, hasNext, -1, pathParams)
	}
	return a.writeJobs(w, r, pv.project, jobs, arts)
}

// jobTimeFilters reads created_after, created_before, updated_after and
// updated_before into f; every malformed one is named in the error.
func (p *params) jobTimeFilters(f *store.JobFilter) error {
	var errs []string
	for _, b := range []struct {
		name string
		into *time.Time
	}{{"created_after", &f.CreatedAfter}, {"created_before", &f.CreatedBefore}, {"updated_after", &f.UpdatedAfter}, {"updated_before", &f.UpdatedBefore}} {
		t, err := p.timeParam(b.name)
		if err != nil {
			errs = append(errs, b.name+" is invalid")
		}
		*b.into = t
	}
	if len(errs) > 0 {
		return errParam(strings.Join(errs, ", "))
	}
	return nil
}

// sortAscending reads sort=asc|desc (desc when absent).
func (p *params) sortAscending() (bool, error) {
	switch p.str("sort") {
	case "", "desc":
		return false, nil
	case "asc":
		return true, nil
	}
	return false, errParam("sort does not have a valid value")
}

var errKeysetNotYet = &apiError{status: http.StatusMethodNotAllowed, body: map[string]string{"error": "Keyset pagination is not yet available for this type of request"}}

// keyset reads pagination=offset|keyset and, in keyset mode, the cursor.
// Keyset knows only id descending, as in GitLab.
func (p *params) keyset() (bool, keysetCursor, error) {
	mode := p.str("pagination")
	if mode != "" && mode != "offset" && mode != "keyset" {
		return false, keysetCursor{}, errParam("pagination does not have a valid value")
	}
	if mode != "keyset" {
		return false, keysetCursor{}, nil
	}
	if ob := p.str("order_by"); ob != "" && ob != "id" {
		return false, keysetCursor{}, errKeysetNotYet
	}
	if s := p.str("sort"); s != "" && s != "desc" {
		return false, keysetCursor{}, errKeysetNotYet
	}
	var cursor keysetCursor
	if c := p.str("cursor"); c != "" {
		var err error
		if cursor, err = decodeCursor(c); err != nil {
			return false, keysetCursor{}, err
		}
	}
	return true, cursor, nil
}

// listJobPage reads one page (plus a row of lookahead) of f.
func (a *API) listJobPage(r *http.Request, f store.JobFilter, pp pageParams, keyset bool, cursor keysetCursor) ([]*ci.Job, map[int64][]*ci.Artifact, error) {
	f.Limit = pp.PerPage + 1
	if keyset {
		f.BeforeID = cursor.ID
	} else {
		f.Offset = (pp.Page - 1) * pp.PerPage
	}
	return a.store.ListJobsWithArtifacts(r.Context(), f)
}

// keysetLink sets the rel="next" Link of a keyset page (none on the last).
func (a *API) keysetLink(w http.ResponseWriter, r *http.Request, p *params, pp pageParams, jobs []*ci.Job, hasNext bool, pathParams map[string]string) {
	if !hasNext {
		return
	}
	extra := map[string]string{"cursor": encodeCursor(keysetCursor{ID: jobs[len(jobs)-1].ID, Direction: "n"}), "per_page": strconv.Itoa(pp.PerPage)}
	for k, v := range pathParams {
		extra[k] = v
	}
	w.Header().Set("Link", "<"+a.linkURL(r, p, extra)+`>; rel="next"`)
}

// writeJobs renders a page of builds; arts are their artifacts.
func (a *API) writeJobs(w http.ResponseWriter, r *http.Request, p *ci.Project, jobs []*ci.Job, arts map[int64][]*ci.Artifact) error {
	jc, err := a.loadJobContext(r.Context(), p, jobs, arts)
	if err != nil {
		return err
	}
	bp := listBuffers.Get().(*[]byte)
	buf := (*bp)[:0]
	buf = append(buf, '[')
	for i, j := range jobs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = a.appendJob(buf, jc, j)
	}
	buf = append(buf, ']')
	writeRawJSON(w, http.StatusOK, buf)
	if cap(buf) <= maxPooledListBuffer {
		*bp = buf
		listBuffers.Put(bp)
	}
	return nil
}

// listBuffers recycles the buffers job lists are rendered into: a page is
// tens of kilobytes, and allocating it per request was most of the list
// endpoint's garbage. The response writer has copied or sent the bytes by
// the time Write returns, so the buffer can be reused.
var listBuffers = sync.Pool{New: func() any { b := make([]byte, 0, 64<<10); return &b }}

// maxPooledListBuffer keeps one huge page from pinning its buffer forever.
const maxPooledListBuffer = 1 << 20

// pipelineListRequest is what the pipeline jobs and bridges lists share,
// parsed and checked in GitLab's order: parameters, then the lookups.
type pipelineListRequest struct {
	pv     *projectView
	pl     *ci.Pipeline
	p      *params
	pp     pageParams
	scopes []ci.JobStatus
	keyset bool
	cursor keysetCursor
}

func (a *API) readPipelineListRequest(r *http.Request) (*pipelineListRequest, error) {
	ident, err := a.authenticate(r, authUserOrJob)
	if err != nil {
		return nil, err
	}
	req := &pipelineListRequest{}
	if req.p, err = readParams(r); err != nil {
		return nil, err
	}
	pipelineID, pipelineOK, err := pathID(r, "pipeline_id")
	if err != nil {
		return nil, err
	}
	if req.scopes, err = req.p.scopes(false); err != nil {
		return nil, err
	}
	if req.pp, err = req.p.pagination(); err != nil {
		return nil, err
	}
	if req.keyset, req.cursor, err = req.p.keyset(); err != nil {
		return nil, err
	}
	if req.pv, err = a.findProject(r, ident); err != nil {
		return nil, err
	}
	if !ci.CanReadPipelines(req.pv.project, req.pv.viewer) {
		return nil, errForbidden
	}
	if !pipelineOK {
		return nil, errRecordNotFound
	}
	req.pl, err = a.store.PipelineByID(r.Context(), req.pv.project.ID, pipelineID)
	if errors.Is(err, ci.ErrNotFound) {
		return nil, errRecordNotFound
	}
	if err != nil {
		return nil, err
	}
	return req, nil
}

// totalsCap: above this many matches, lists omit X-Total like GitLab.
const totalsCap = 10000

// GET /projects/:id/pipelines/:pipeline_id/jobs and .../bridges (trigger_jobs);
// pagination=keyset works on them too (gantry's extension).
func (a *API) handleListPipelineJobs(kind ci.JobKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		req, err := a.readPipelineListRequest(r)
		if err != nil {
			return err
		}
		pv, pl, p, pp, scopes, keyset, cursor := req.pv, req.pl, req.p, req.pp, req.scopes, req.keyset, req.cursor
		var includeRetried bool
		if kind == ci.KindBuild {
			if includeRetried, _, err = p.boolParam("include_retried"); err != nil {
				return err
			}
		} else {
			// The bridges finder reads the raw parameter: any non-empty value includes retried bridges.
			includeRetried = p.str("include_retried") != ""
		}
		f := store.JobFilter{ProjectID: pv.project.ID, PipelineID: pl.ID, Kind: kind, Statuses: scopes, IncludeRetried: includeRetried}
		total := -1
		if !keyset {
			if total, err = a.store.CountJobs(r.Context(), f, totalsCap+1); err != nil {
				return err
			}
		}
		jobs, arts, err := a.listJobPage(r, f, pp, keyset, cursor)
		if err != nil {
			return err
		}
		jobs, hasNext := pageOf(jobs, pp.PerPage)
		pathParams := map[string]string{"id": r.PathValue("id"), "pipeline_id": r.PathValue("pipeline_id")}
		if kind == ci.KindBuild {
			pathParams["include_retried"] = strconv.FormatBool(includeRetried)
		}
		if keyset {
			a.keysetLink(w, r, p, pp, jobs, hasNext, pathParams)
		} else {
			a.offsetHeaders(w, r, p, pp, hasNext, total, pathParams)
		}
		if kind == ci.KindBuild {
			return a.writeJobs(w, r, pv.project, jobs, arts)
		}
		jc, err := a.loadJobContext(r.Context(), pv.project, jobs, arts)
		if err != nil {
			return err
		}
		out := make([]*bridgeEntity, len(jobs))
		for i, j := range jobs {
			out[i] = a.bridgeEntityOf(jc, j)
		}
		writeJSON(w, http.StatusOK, out)
		return nil
	}
}

// findBuild resolves :job_id to a build of the project (bridges are not found).
func (a *API) findJob(r *http.Request, pv *projectView, kinds ...ci.JobKind) (*ci.Job, error) {
	id, ok, err := pathID(r, "job_id")
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, errRecordNotFound
	}
	j, err := a.store.JobByID(r.Context(), pv.project.ID, id)
	if errors.Is(err, ci.ErrNotFound) {
		return nil, errRecordNotFound
	}
	if err != nil {
		return nil, err
	}
	for _, k := range kinds {
		if j.Kind == k {
			return j, nil
		}
	}
	return nil, errRecordNotFound
}

// GET /projects/:id/jobs/:job_id
func (a *API) handleGetJob(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := a.jobAction(r, ci.KindBuild)
	if err != nil {
		return err
	}
	return a.writeJob(w, r, http.StatusOK, pv.project, j)
}

func (a *API) writeJob(w http.ResponseWriter, r *http.Request, status int, p *ci.Project, j *ci.Job) error {
	jc, err := a.loadJobContext(r.Context(), p, []*ci.Job{j}, nil)
	if err != nil {
		return err
	}
	writeJSON(w, status, a.jobEntityOf(jc, j))
	return nil
}

// GET /job: the job that owns the presented job token.
func (a *API) handleGetJobOfToken(w http.ResponseWriter, r *http.Request) error {
	ident, p, err := a.tokenJob(r)
	if err != nil {
		return err
	}
	return a.writeJob(w, r, http.StatusOK, p, ident.Job)
}

// tokenJob resolves the /job routes' caller: only a running job's token
// will do (401 without credentials, 404 "Job Not Found" for any other
// kind), with the job's project.
func (a *API) tokenJob(r *http.Request) (*identity, *ci.Project, error) {
	ident, err := a.authenticate(r, authUserOrJob)
	if err != nil {
		return nil, nil, err
	}
	if ident == nil {
		return nil, nil, errUnauthorized
	}
	if ident.Job == nil {
		return nil, nil, errJobNotFound
	}
	p, err := a.store.ProjectByID(r.Context(), ident.Job.ProjectID)
	if err != nil {
		return nil, nil, err
	}
	return ident, p, nil
}
