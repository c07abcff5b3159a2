// Package runnerapi is the runner-facing API: what gitlab-runner (and
// gantry's own runner) call to register, take jobs, stream logs, report
// results and move artifacts. It answers exactly as GitLab does, and hands
// jobs out through long polls woken the moment a matching job is pending.
package runnerapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/pipeline"
	"gantry/internal/store"
)

// Config tunes the runner API.
type Config struct {
	ExternalURL string
	// LongPoll is how long jobs/request holds a runner with nothing to do.
	LongPoll time.Duration
	// Recheck, if set, is how often a held request looks for work again
	// (a wake-up from another node may be lost); 0 relies on wake-ups.
	Recheck time.Duration
	// UpdateInterval is X-GitLab-Trace-Update-Interval; WatchedInterval
	// applies while someone reads the job's log live.
	UpdateInterval, WatchedInterval time.Duration
	// RegistrationToken enables the legacy POST /runners flow ("" disables it).
	RegistrationToken string
	// MaxArtifactSize bounds one upload (bytes).
	MaxArtifactSize int64
	// ContactEvery throttles contacted_at writes.
	ContactEvery time.Duration
	Version      string
}

// API serves /api/v4 routes for runners.
type API struct {
	cfg       Config
	store     store.Store
	blobs     blob.Store
	pipelines *pipeline.Service
	log       *slog.Logger
	now       func() time.Time
	broker    *Broker
	chains    chains
	pending   pendingProjects

	mu       sync.Mutex
	contacts map[[2]int64]time.Time // (runner, manager) → last contact written
	managers map[string]int64       // runner:system_id → manager id
	watched  map[int64]time.Time    // job id → until when someone follows its log
	// running keeps, per job, the last runner_updated_at this node wrote
	// (to throttle those writes) and the coverage regex read for its
	// payload (so finishing the job reads no spec again).
	running map[int64]runningJob
	// undelivered holds, per runner, jobs claimed for it whose payload
	// could not be built (the database went away after the claim); the
	// runner's next request gets them first.
	undelivered map[int64][]*claimedJob

	// OnTrace, when set, is told about every appended log chunk.
	OnTrace func(jobID int64)
	// OnJobFinished, when set, is told about every job this API ended.
	OnJobFinished func(jobID int64)
}

// New builds the runner API.
func New(cfg Config, st store.Store, blobs blob.Store, pipes *pipeline.Service, log *slog.Logger, now func() time.Time) *API {
	if cfg.LongPoll == 0 {
		cfg.LongPoll = 50 * time.Second
	}
	if cfg.UpdateInterval == 0 {
		cfg.UpdateInterval = 3 * time.Second
	}
	if cfg.WatchedInterval == 0 {
		cfg.WatchedInterval = time.Second
	}
	if cfg.MaxArtifactSize == 0 {
		cfg.MaxArtifactSize = 100 << 20
	}
	if cfg.ContactEvery == 0 {
		cfg.ContactEvery = time.Minute
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &API{cfg: cfg, store: st, blobs: blobs, pipelines: pipes, log: log, now: now, broker: NewBroker(),
		contacts: map[[2]int64]time.Time{}, managers: map[string]int64{}, watched: map[int64]time.Time{},
		running: map[int64]runningJob{}, undelivered: map[int64][]*claimedJob{}}
}

// Routes registers the runner endpoints on mux.
func (a *API) Routes(mux interface {
	Handle(pattern string, h http.Handler)
}) {
	const v4 = "/api/v4"
	h := a.wrap
	mux.Handle("POST "+v4+"/runners", h(a.handleRegister))
	mux.Handle("DELETE "+v4+"/runners", h(a.handleUnregister))
	mux.Handle("POST "+v4+"/runners/verify", h(a.handleVerify))
	mux.Handle("DELETE "+v4+"/runners/managers", h(a.handleDeleteManager))
	mux.Handle("POST "+v4+"/runners/reset_authentication_token", h(a.handleResetToken))
	mux.Handle("POST "+v4+"/jobs/request", h(a.handleRequest))
	mux.Handle("PUT "+v4+"/jobs/{job_id}", h(a.handleUpdateJob))
	mux.Handle("PATCH "+v4+"/jobs/{job_id}/trace", h(a.handlePatchTrace))
	mux.Handle("POST "+v4+"/jobs/{job_id}/artifacts", h(a.handleUploadArtifacts))
	mux.Handle("GET "+v4+"/jobs/{job_id}/artifacts", h(a.handleDownloadArtifacts))
}

type handlerFunc func(w http.ResponseWriter, r *http.Request) error

type apiError struct {
	status int
	body   any
	header map[string]string
}

func (e *apiError) Error() string { return http.StatusText(e.status) }

func fail(status int, msg string) *apiError {
	return &apiError{status: status, body: map[string]string{"message": msg}}
}

func (a *API) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		err := h(w, r)
		if err == nil {
			return
		}
		ae, ok := err.(*apiError)
		switch {
		case ok:
		case store.Unavailable(err):
			// The runner retries a 503 and keeps the job; a 500 or 403
			// here would make it give up on work the database still has.
			if r.Context().Err() == nil {
				a.log.Warn("runner api: backend unavailable", "path", r.URL.Path, "err", err)
			}
			ae = &apiError{status: http.StatusServiceUnavailable, body: map[string]string{"message": "503 Service Unavailable"}, header: map[string]string{"Retry-After": "1"}}
		default:
			if r.Context().Err() == nil {
				a.log.Error("runner api", "path", r.URL.Path, "err", err)
			}
			ae = fail(http.StatusInternalServerError, "500 Internal Server Error")
		}
		for k, v := range ae.header {
			w.Header().Set(k, v)
		}
		writeJSON(w, ae.status, ae.body)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// maxJSONBody bounds runner JSON bodies.
const maxJSONBody = 1 << 20

func decodeBody(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, maxJSONBody+1))
	if err != nil {
		return fail(http.StatusBadRequest, "400 Bad request - unreadable body")
	}
	if len(b) > maxJSONBody {
		return fail(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	if len(b) == 0 {
		return nil
	}
	if err := json.Unmarshal(b, v); err != nil {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "body is not valid JSON"}}
	}
	return nil
}

// runnerToken finds the runner token: body, then headers.
func runnerToken(r *http.Request, body string) string {
	if body != "" {
		return body
	}
	for _, h := range []string{"Runner-Token", "Private-Token"} {
		if v := r.Header.Get(h); v != "" {
			return v
		}
	}
	return r.URL.Query().Get("token")
}

func (a *API) authRunner(ctx context.Context, token string) (*ci.Runner, error) {
	if token == "" {
		// GitLab declares the token required: a parameter error, not a refusal.
		return nil, &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "token is missing"}}
	}
	r, err := a.store.RunnerByTokenDigest(ctx, ci.HashToken(token))
	if errors.Is(err, ci.ErrNotFound) {
		return nil, fail(http.StatusForbidden, "403 Forbidden")
	}
	if err != nil {
		return nil, err // a 403 would make the runner stop asking for a long while
	}
	return r, nil
}

// touch records contact at most every ContactEvery, so idle polls write nothing.
func (a *API) touch(ctx context.Context, runnerID, managerID int64) {
	now := a.now()
	key := [2]int64{runnerID, managerID}
	a.mu.Lock()
	last := a.contacts[key]
	fresh := now.Sub(last) < a.cfg.ContactEvery
	if !fresh {
		a.contacts[key] = now
	}
	a.mu.Unlock()
	if fresh {
		return
	}
	if err := a.store.TouchRunner(ctx, runnerID, managerID, now); err != nil {
		a.log.Warn("record runner contact", "runner", runnerID, "err", err)
	}
}

// WatchLog marks a job's log as followed live: its runner is asked to send
// updates more often for a while.
func (a *API) WatchLog(jobID int64) {
	a.mu.Lock()
	a.watched[jobID] = a.now().Add(time.Minute)
	if len(a.watched) > 10000 {
		for id, until := range a.watched {
			if until.Before(a.now()) {
				delete(a.watched, id)
			}
		}
	}
	a.mu.Unlock()
}

func (a *API) updateInterval(jobID int64) time.Duration {
	a.mu.Lock()
	defer a.mu.Unlock()
	if until, ok := a.watched[jobID]; ok && until.After(a.now()) {
		return a.cfg.WatchedInterval
	}
	return a.cfg.UpdateInterval
}

func (a *API) spec(ctx context.Context, jobID int64) (*pipeline.JobSpec, error) {
	raw, err := a.store.JobSpec(ctx, jobID)
	if err != nil {
		return nil, err
	}
	return pipeline.ParseSpec(raw)
}

// HeldRequests counts the job requests held open waiting for work.
func (a *API) HeldRequests() int { return a.broker.Waiting() }
