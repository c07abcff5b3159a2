package httpapi

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

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
	pp, err := p.pagination()
	if err != nil {
		return err
	}
	mode := p.str("pagination")
	if mode != "" && mode != "offset" && mode != "keyset" {
		return errParam("pagination does not have a valid value")
	}
	keyset := mode == "keyset"
	var cursor keysetCursor
	if keyset {
		if ob := p.str("order_by"); ob != "" && ob != "id" {
			return &apiError{status: http.StatusMethodNotAllowed, body: map[string]string{"error": "Keyset pagination is not yet available for this type of request"}}
		}
		if s := p.str("sort"); s != "" && s != "desc" {
			return &apiError{status: http.StatusMethodNotAllowed, body: map[string]string{"error": "Keyset pagination is not yet available for this type of request"}}
		}
		if c := p.str("cursor"); c != "" {
			if cursor, err = decodeCursor(c); err != nil {
				return err
			}
		}
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return err
	}
	if !pv.canReadBuilds() {
		return errForbidden
	}
	f := store.JobFilter{
		ProjectID: pv.project.ID, Kind: ci.KindBuild, Statuses: scopes, IncludeRetried: true,
		Ref: strings.TrimSpace(p.str("ref")), Limit: pp.PerPage + 1,
	}
	if keyset {
		f.BeforeID = cursor.ID
	} else {
		f.Offset = (pp.Page - 1) * pp.PerPage
	}
	jobs, arts, err := a.store.ListJobsWithArtifacts(r.Context(), f)
	if err != nil {
		return err
	}
	jobs, hasNext := pageOf(jobs, pp.PerPage)
	if keyset {
		if hasNext {
			next := encodeCursor(keysetCursor{ID: jobs[len(jobs)-1].ID, Direction: "n"})
			extra := map[string]string{"cursor": next, "id": r.PathValue("id"), "per_page": strconv.Itoa(pp.PerPage)}
			w.Header().Set("Link", "<"+a.linkURL(r, p, extra)+`>; rel="next"`)
		}
	} else {
		a.offsetHeaders(w, r, p, pp, hasNext, -1, map[string]string{"id": r.PathValue("id")})
	}
	return a.writeJobs(w, r, pv.project, jobs, arts)
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

// pipelineJobsRequest parses what the pipeline jobs and bridges lists share.
func (a *API) pipelineListRequest(r *http.Request) (*projectView, *ci.Pipeline, *params, pageParams, []ci.JobStatus, error) {
	ident, err := a.authenticate(r, authUserOrJob)
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	p, err := readParams(r)
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	pipelineID, pipelineOK, err := pathID(r, "pipeline_id")
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	scopes, err := p.scopes(false)
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	pp, err := p.pagination()
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	pv, err := a.findProject(r, ident)
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	if !ci.CanReadPipelines(pv.project, pv.viewer) {
		return nil, nil, nil, pageParams{}, nil, errForbidden
	}
	if !pipelineOK {
		return nil, nil, nil, pageParams{}, nil, errRecordNotFound
	}
	pl, err := a.store.PipelineByID(r.Context(), pv.project.ID, pipelineID)
	if errors.Is(err, ci.ErrNotFound) {
		return nil, nil, nil, pageParams{}, nil, errRecordNotFound
	}
	if err != nil {
		return nil, nil, nil, pageParams{}, nil, err
	}
	return pv, pl, p, pp, scopes, nil
}

// totalsCap: above this many matches, lists omit X-Total like GitLab.
const totalsCap = 10000

// GET /projects/:id/pipelines/:pipeline_id/jobs and .../bridges (trigger_jobs).
func (a *API) handleListPipelineJobs(kind ci.JobKind) handlerFunc {
	return func(w http.ResponseWriter, r *http.Request) error {
		pv, pl, p, pp, scopes, err := a.pipelineListRequest(r)
		if err != nil {
			return err
		}
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
		total, err := a.store.CountJobs(r.Context(), f, totalsCap+1)
		if err != nil {
			return err
		}
		f.Limit, f.Offset = pp.PerPage+1, (pp.Page-1)*pp.PerPage
		jobs, arts, err := a.store.ListJobsWithArtifacts(r.Context(), f)
		if err != nil {
			return err
		}
		jobs, hasNext := pageOf(jobs, pp.PerPage)
		pathParams := map[string]string{"id": r.PathValue("id"), "pipeline_id": r.PathValue("pipeline_id")}
		if kind == ci.KindBuild {
			pathParams["include_retried"] = strconv.FormatBool(includeRetried)
		}
		a.offsetHeaders(w, r, p, pp, hasNext, total, pathParams)
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
