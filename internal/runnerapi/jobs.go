package runnerapi

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gantry/internal/ci"
)

// jobToken is the job token a runner request carries: given in the body,
// else the JOB-TOKEN header, else the token parameter.
func jobToken(r *http.Request, fromBody string) string {
	if fromBody != "" {
		return fromBody
	}
	if token := r.Header.Get("Job-Token"); token != "" {
		return token
	}
	return r.URL.Query().Get("token")
}

// jobFromToken resolves :job_id and checks the job token against it.
// A job that is not executing answers 403 with its status in Job-Status.
func (a *API) jobFromToken(r *http.Request, token string) (*ci.Job, error) {
	id, err := strconv.ParseInt(r.PathValue("job_id"), 10, 64)
	if err != nil || id <= 0 {
		return nil, &apiError{status: http.StatusNotFound, body: map[string]string{"message": "404 Not Found"}}
	}
	token = jobToken(r, token)
	if token == "" {
		return nil, fail(http.StatusForbidden, "403 Forbidden")
	}
	job, err := a.store.JobByTokenDigest(r.Context(), ci.HashToken(token))
	if err != nil && !errors.Is(err, ci.ErrNotFound) {
		return nil, err // a 403 would make the runner abandon the job
	}
	if err != nil || job.ID != id {
		return nil, fail(http.StatusForbidden, "403 Forbidden")
	}
	if !job.Status.Executing() {
		return nil, &apiError{status: http.StatusForbidden, body: map[string]string{"message": "403 Forbidden - Job is not running"},
			header: map[string]string{"Job-Status": string(job.Status)}}
	}
	return job, nil
}

func (a *API) statusHeaders(w http.ResponseWriter, job *ci.Job) {
	w.Header().Set("Job-Status", string(job.Status))
	w.Header().Set("X-GitLab-Trace-Update-Interval", strconv.Itoa(int(a.updateInterval(job.ID)/time.Second)))
}

type updateBody struct {
	Token         string `json:"token"`
	State         string `json:"state"`
	FailureReason string `json:"failure_reason"`
	ExitCode      *int   `json:"exit_code"`
	Checksum      string `json:"checksum"`
	Output        struct {
		Checksum string `json:"checksum"`
		Bytesize int64  `json:"bytesize"`
	} `json:"output"`
}

// PUT /jobs/:id: the runner reports progress or the final state.
func (a *API) handleUpdateJob(w http.ResponseWriter, r *http.Request) error {
	var body updateBody
	if err := decodeBody(r, &body); err != nil {
		return err
	}
	if done, err := a.finishMine(w, r, &body); done || err != nil {
		return err
	}
	ctx := r.Context()
	job, err := a.jobFromToken(r, body.Token)
	if err != nil {
		return err
	}
	switch body.State {
	case "", "running", "pending":
		if err := a.recordUpdate(ctx, job.ID); err != nil {
			return err
		}
		a.statusHeaders(w, job)
		w.WriteHeader(http.StatusOK)
		return nil
	case "success", "failed":
	default:
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "state does not have a valid value"}}
	}
	err = a.finish(w, r, job.ID, &body, "")
	if errors.Is(err, ci.ErrConflict) {
		cur, _ := a.store.JobByID(ctx, job.ProjectID, job.ID)
		if cur != nil {
			a.statusHeaders(w, cur)
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	return err
}

// finishMine serves the usual final update, success or failure of a job
// this node handed out, with the one statement that checks the token as
// it ends the job; anything else (done false), including a refused token
// or a job no longer running, takes the full path, which reads the job
// first and answers as GitLab does.
func (a *API) finishMine(w http.ResponseWriter, r *http.Request, body *updateBody) (done bool, err error) {
	if body.State != "success" && body.State != "failed" {
		return false, nil
	}
	id, perr := strconv.ParseInt(r.PathValue("job_id"), 10, 64)
	token := jobToken(r, body.Token)
	if perr != nil || token == "" {
		return false, nil
	}
	if !a.handedOutHere(id) {
		return false, nil
	}
	err = a.finish(w, r, id, body, ci.HashToken(token))
	if errors.Is(err, ci.ErrNotFound) || errors.Is(err, ci.ErrConflict) {
		return false, nil
	}
	return true, err
}

// finish ends the job in the body's state (success or failed) and
// answers 200; with tokenDigest set, only if the job holds that token.
// A job not running is ErrConflict, with nothing written to w.
func (a *API) finish(w http.ResponseWriter, r *http.Request, jobID int64, body *updateBody, tokenDigest string) error {
	ctx := r.Context()
	state := ci.JobStatus(body.State)
	var reason ci.FailureReason
	if state == ci.StatusFailed {
		reason = ci.ParseFailureReason(body.FailureReason)
		if body.FailureReason == "" {
			reason = ci.FailureUnknown
		}
	}
	var coverage *float64
	if state == ci.StatusSuccess {
		if expr := a.coverageExpr(ctx, jobID); expr != "" {
			coverage = a.coverage(ctx, jobID, expr)
		}
	}
	p := finishParams(jobID, state, reason, body.ExitCode, coverage, a.now())
	p.TokenDigest = tokenDigest
	finished, err := a.store.FinishJob(ctx, p)
	if err != nil {
		return err
	}
	a.forgetRunning(jobID)
	a.jobFinished(jobID)
	if a.pipelines != nil {
		a.pipelines.Enqueue(finished.PipelineID)
	}
	a.statusHeaders(w, finished)
	w.WriteHeader(http.StatusOK)
	return nil
}

// coverage applies the job's coverage regex to its log: the last match's
// first number is the coverage, as GitLab reads it.
func (a *API) coverage(ctx context.Context, jobID int64, expr string) *float64 {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil
	}
	trace, err := a.store.ReadTrace(ctx, jobID)
	if err != nil || len(trace) == 0 {
		return nil
	}
	matches := re.FindAll(trace, -1)
	if len(matches) == 0 {
		return nil
	}
	num := regexp.MustCompile(`\d+(\.\d+)?`).Find(matches[len(matches)-1])
	if num == nil {
		return nil
	}
	v, err := strconv.ParseFloat(string(num), 64)
	if err != nil {
		return nil
	}
	return &v
}

// maxTraceChunk bounds one PATCH body (the runner sends at most 1 MiB).
const maxTraceChunk = 4 << 20

// PATCH /jobs/:id/trace: append a log chunk at Content-Range's start.
func (a *API) handlePatchTrace(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	if done, err := a.appendFast(w, r); done || err != nil {
		return err
	}
	job, err := a.jobFromToken(r, "")
	if err != nil {
		return err
	}
	cr := r.Header.Get("Content-Range")
	start, end, ok := parseContentRange(cr)
	if !ok {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"message": "400 Bad request - Content-Range is missing or malformed"}}
	}
	data, err := io.ReadAll(io.LimitReader(r.Body, maxTraceChunk+1))
	if err != nil {
		return fail(http.StatusBadRequest, "400 Bad request - unreadable body")
	}
	if len(data) > maxTraceChunk {
		return fail(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	if end >= 0 && end-start+1 != int64(len(data)) && len(data) > 0 {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"message": "400 Bad request - Content-Range does not match the body"}}
	}
	size, err := a.store.AppendTrace(ctx, job.ID, start, data)
	if errors.Is(err, ci.ErrConflict) {
		cur, serr := a.store.TraceSize(ctx, job.ID)
		if serr != nil {
			return serr
		}
		w.Header().Set("Range", "0-"+strconv.FormatInt(cur, 10))
		a.statusHeaders(w, job)
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return nil
	}
	if err != nil {
		return err
	}
	return a.appended(w, r, job, size)
}

// appended answers an accepted append: 202 with the log's new length.
func (a *API) appended(w http.ResponseWriter, r *http.Request, job *ci.Job, size int64) error {
	if err := a.recordUpdate(r.Context(), job.ID); err != nil {
		return err
	}
	a.notifyTrace(job.ID)
	w.Header().Set("Range", "0-"+strconv.FormatInt(size, 10))
	a.statusHeaders(w, job)
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// appendFast serves the usual PATCH, a well-formed append by the running
// job this node handed out, with one statement that checks the token and
// the status as it appends; anything else (done false) takes the full
// path, which reads the job first and answers every refusal as GitLab
// does. The body is read here only for a job this node is running.
func (a *API) appendFast(w http.ResponseWriter, r *http.Request) (done bool, err error) {
	id, perr := strconv.ParseInt(r.PathValue("job_id"), 10, 64)
	token := r.Header.Get("Job-Token")
	if perr != nil || token == "" {
		return false, nil
	}
	start, end, ok := parseContentRange(r.Header.Get("Content-Range"))
	if !a.handedOutHere(id) || !ok || r.ContentLength <= 0 || r.ContentLength > maxTraceChunk || (end >= 0 && end-start+1 != r.ContentLength) {
		return false, nil
	}
	data := make([]byte, r.ContentLength)
	if _, err := io.ReadFull(r.Body, data); err != nil {
		return true, fail(http.StatusBadRequest, "400 Bad request - unreadable body")
	}
	size, status, err := a.store.AppendTraceAs(r.Context(), id, ci.HashToken(token), start, data)
	if errors.Is(err, ci.ErrNotFound) {
		// Refused: the full path reads the job and says why. It reads
		// the body again, so hand it the bytes.
		r.Body = io.NopCloser(bytes.NewReader(data))
		return false, nil
	}
	if err != nil {
		return true, err
	}
	return true, a.appended(w, r, &ci.Job{ID: id, Status: status}, size)
}

// notifyTrace is a hook for live log readers (set by the log streamer).
func (a *API) notifyTrace(jobID int64) {
	if a.OnTrace != nil {
		a.OnTrace(jobID)
	}
}

// parseContentRange reads the runner's "start-end" (inclusive end, no
// unit); "bytes start-end/total" is accepted too.
func parseContentRange(v string) (start, end int64, ok bool) {
	v = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), "bytes"))
	v = strings.TrimSpace(strings.TrimPrefix(v, "="))
	if i := strings.IndexByte(v, '/'); i >= 0 {
		v = v[:i]
	}
	s, e, found := strings.Cut(v, "-")
	if !found {
		return 0, 0, false
	}
	start, err := strconv.ParseInt(s, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false
	}
	end, err = strconv.ParseInt(e, 10, 64)
	if err != nil || end < start-1 {
		return 0, 0, false
	}
	return start, end, true
}

// runningJob is what this node keeps about a job its runner is running.
type runningJob struct {
	contact time.Time // runner_updated_at as this node last wrote it
	// coverage is the job's coverage regex (possibly empty), known when
	// this node built the job's payload.
	coverage      string
	coverageKnown bool
}

// maxRunning bounds a.running; a full map is emptied, which costs only
// extra writes and reads.
const maxRunning = 100000

// putRunningLocked stores what is kept about a job; a.mu is held.
func (a *API) putRunningLocked(jobID int64, rj runningJob) {
	if len(a.running) > maxRunning {
		a.running = map[int64]runningJob{}
	}
	a.running[jobID] = rj
}

// handedOut remembers, for a job just claimed, the contact the claim
// itself recorded and its coverage regex (possibly empty).
func (a *API) handedOut(jobID int64, contact time.Time, coverageExpr string) {
	a.mu.Lock()
	a.putRunningLocked(jobID, runningJob{contact: contact, coverage: coverageExpr, coverageKnown: true})
	a.mu.Unlock()
}

// handedOutHere tells whether this node handed the job out and it has not
// ended through this node since.
func (a *API) handedOutHere(jobID int64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	_, ok := a.running[jobID]
	return ok
}

// forgetRunning drops what was kept about a job.
func (a *API) forgetRunning(jobID int64) {
	a.mu.Lock()
	delete(a.running, jobID)
	a.mu.Unlock()
}

// coverageExpr is the job's coverage regex: remembered from the payload
// when this node handed the job out, else read from its spec.
func (a *API) coverageExpr(ctx context.Context, jobID int64) string {
	a.mu.Lock()
	rj := a.running[jobID]
	a.mu.Unlock()
	if rj.coverageKnown {
		return rj.coverage
	}
	spec, err := a.spec(ctx, jobID)
	if err != nil || spec == nil {
		return ""
	}
	return spec.Coverage
}

// recordUpdate notes runner contact for a job at most every 10 seconds:
// the watchdog only needs minutes of precision, and log appends are frequent.
func (a *API) recordUpdate(ctx context.Context, jobID int64) error {
	now := a.now()
	a.mu.Lock()
	rj := a.running[jobID]
	fresh := !rj.contact.IsZero() && now.Sub(rj.contact) < 10*time.Second
	if !fresh {
		rj.contact = now
		a.putRunningLocked(jobID, rj)
	}
	a.mu.Unlock()
	if fresh {
		return nil
	}
	return a.store.RecordRunnerUpdate(ctx, jobID, now)
}
