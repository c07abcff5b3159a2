// Package httpapi is gantry's public REST API, shaped after GitLab's API v4.
package httpapi

import (
	"fmt"
	"gantry/internal/agents"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"gantry/internal/blob"
	"gantry/internal/githost"
	"gantry/internal/joblog"
	"gantry/internal/logsearch"
	"gantry/internal/pipeline"
	"gantry/internal/store"
)

// Config is what the API needs to know about the instance.
type Config struct {
	// ExternalURL is the base of every URL the API writes, without a trailing slash.
	ExternalURL string
	// Version is reported by GET /version.
	Version  string
	Revision string
	// ArchiveBuildsOlderThan archives jobs older than this (0: never).
	ArchiveBuildsOlderThan time.Duration
	// LogFollowPoll is how often live streams (logs, events) look for
	// unannounced changes (0: their defaults).
	LogFollowPoll time.Duration
	// EventKeepAlive is how often an idle event stream sends a comment (0:
	// every 15 s).
	EventKeepAlive time.Duration
}

// API serves /api/v4.
type API struct {
	cfg     Config
	store   store.Store
	log     *slog.Logger
	now     func() time.Time
	metrics *metrics
	encoded encodedMemo

	repos     *githost.Repos
	pipelines *pipeline.Service
	mounts    []func(r Router)
	blobs     blob.Store
	onLogRead func(jobID int64)
	agents    *agents.Service
	logs      *joblog.Reader
	logHub    *joblog.Hub
	search    *logsearch.Searcher
	eventHub  *joblog.Hub
}

// Deps are the API's collaborators.
type Deps struct {
	Store    store.Store
	Logger   *slog.Logger
	Now      func() time.Time
	Registry prometheus.Registerer
	// Repos and Pipelines enable the repository and pipeline routes.
	Repos     *githost.Repos
	Pipelines *pipeline.Service
	// Mount adds routes served by other packages (the runner API) to the
	// same route table, behind the same catch-all and metrics.
	Mount []func(r Router)
	// OnLogRead is told when someone reads a running job's log.
	OnLogRead func(jobID int64)
	// Blobs holds artifacts (erase deletes them) and archived logs.
	Blobs blob.Store
	// Agents keeps cluster agents' CI access (allowed_agents).
	Agents *agents.Service
	// LogHub announces log appends and job ends to live followers; nil
	// makes followers rely on polling alone.
	LogHub *joblog.Hub
	// EventHub, keyed by project id, announces new status events to the
	// project's event streams; nil makes them rely on polling alone.
	EventHub *joblog.Hub
}

// New builds the API.
func New(cfg Config, d Deps) *API {
	cfg.ExternalURL = strings.TrimRight(cfg.ExternalURL, "/")
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.LogHub == nil {
		d.LogHub = joblog.NewHub()
	}
	if d.EventHub == nil {
		d.EventHub = joblog.NewHub()
	}
	logs := &joblog.Reader{Store: d.Store, Blobs: d.Blobs}
	return &API{cfg: cfg, store: d.Store, log: d.Logger, now: d.Now, metrics: newMetrics(d.Registry), repos: d.Repos, pipelines: d.Pipelines, mounts: d.Mount, onLogRead: d.OnLogRead, blobs: d.Blobs,
		agents: d.Agents, logs: logs, logHub: d.LogHub, eventHub: d.EventHub, search: &logsearch.Searcher{Store: d.Store, Blobs: d.Blobs, Logs: logs, Log: d.Logger}}
}

// handlerFunc is a handler that returns its error for writeError.
type handlerFunc func(w http.ResponseWriter, r *http.Request) error

// Handler returns the API as an http.Handler, with the catch-all 404,
// panic recovery and per-route metrics around the route table.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	a.addRoutes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		var h http.Handler = mux // serving through the mux sets the path values
		_, pattern := mux.Handler(r)
		if err := checkString(r.URL.Path); err != nil {
			// Path segments become parameters too.
			h = a.wrap(func(http.ResponseWriter, *http.Request) error { return err })
			pattern = "malformed"
		} else if pattern == "" {
			// Unknown path or wrong method: GitLab's catch-all.
			h = a.wrap(func(http.ResponseWriter, *http.Request) error { return errRouteNotFound })
			pattern = "unmatched"
		}
		a.serveRecovering(h, sw, r)
		if sw.status == 0 {
			sw.status = http.StatusOK
		}
		a.metrics.requests.WithLabelValues(pattern, strconv.Itoa(sw.status)).Inc()
		a.metrics.latency.WithLabelValues(pattern).Observe(time.Since(start).Seconds())
	})
}

func (a *API) wrap(h handlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			writeError(w, r, a.log, err)
		}
	})
}

func (a *API) serveRecovering(h http.Handler, w *statusWriter, r *http.Request) {
	defer func() {
		if v := recover(); v != nil {
			if v == http.ErrAbortHandler {
				panic(v)
			}
			a.log.Error("panic", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			if w.status == 0 {
				writeError(w, r, a.log, errMessage(http.StatusInternalServerError, "500 Internal Server Error"))
			}
		}
	}()
	h.ServeHTTP(w, r)
}

type metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "gantry_http_requests_total", Help: "HTTP requests by route and status code.",
		}, []string{"route", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "gantry_http_request_duration_seconds", Help: "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
	}
	if reg != nil {
		reg.MustRegister(m.requests, m.latency)
	}
	return m
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.status == 0 {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
