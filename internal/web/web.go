// Package web is gantry's browser UI: server-rendered pages (html/template,
// assets embedded) over the same store and rules as the API. The only
// script is what live updates need: following a running job's log and
// loading more of a long one.
package web

import (
	"bytes"
	"context"
	"embed"
	"errors"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/joblog"
	"gantry/internal/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Config is what the UI needs to know about the instance.
type Config struct {
	// ExternalURL is the instance's base URL; https makes cookies Secure.
	ExternalURL string
	// SessionTTL is how long a sign-in lasts.
	SessionTTL time.Duration
	// LogFollowPoll is how often a live log looks for unannounced changes.
	LogFollowPoll time.Duration
	Version       string
}

// Deps are the UI's collaborators.
type Deps struct {
	Store store.Store
	// API runs job actions and artifact downloads for the signed-in user,
	// so they are checked by exactly the rules the API enforces.
	API    *httpapi.API
	Blobs  blob.Store
	LogHub *joblog.Hub
	// OnLogRead is told when someone watches a running job's log.
	OnLogRead func(jobID int64)
	Logger    *slog.Logger
	Now       func() time.Time
}

// Server serves the UI.
type Server struct {
	cfg       Config
	store     store.Store
	api       http.Handler
	abilities *httpapi.API
	blobs     blob.Store
	logs      *joblog.Reader
	logHub    *joblog.Hub
	onLogRead func(int64)
	log       *slog.Logger
	now       func() time.Time
	pages     map[string]*template.Template
	secure    bool
}

// New parses the templates and builds the UI.
func New(cfg Config, d Deps) (*Server, error) {
	if d.Now == nil {
		d.Now = time.Now
	}
	if d.Logger == nil {
		d.Logger = slog.Default()
	}
	if d.LogHub == nil {
		d.LogHub = joblog.NewHub()
	}
	if cfg.SessionTTL <= 0 {
		cfg.SessionTTL = 7 * 24 * time.Hour
	}
	s := &Server{cfg: cfg, store: d.Store, api: d.API.Handler(), abilities: d.API, blobs: d.Blobs,
		logs: &joblog.Reader{Store: d.Store, Blobs: d.Blobs}, logHub: d.LogHub, onLogRead: d.OnLogRead,
		log: d.Logger, now: d.Now, pages: map[string]*template.Template{},
		secure: strings.HasPrefix(cfg.ExternalURL, "https://")}
	layout, err := template.New("layout.html").Funcs(s.funcs()).ParseFS(templateFS, "templates/layout.html")
	if err != nil {
		return nil, err
	}
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, name := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(name, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.Must(layout.Clone()).ParseFS(templateFS, name)
		if err != nil {
			return nil, err
		}
		s.pages[base] = t
	}
	return s, nil
}

type ctxKey int

const (
	viewerKey ctxKey = iota
	projectPathKey
)

// viewer is who is looking, and the session that says so.
type viewer struct {
	user      *ci.User
	sessionID string // the cookie's secret, when signed in
}

func viewerOf(r *http.Request) *viewer {
	v, _ := r.Context().Value(viewerKey).(*viewer)
	if v == nil {
		return &viewer{}
	}
	return v
}

// Handler is the UI; it answers every path it is given (unknown ones 404).
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	s.addRoutes(mux)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Frame-Options", "DENY")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'; form-action 'self'")
		v, err := s.identify(r)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		mux.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), viewerKey, v)))
	})
}

// page is what every template gets.
type page struct {
	Title   string
	Viewer  *ci.User
	CSRF    string
	Project *ci.Project
	Nav     string // the current section, for aria-current
	Data    any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, p page) {
	v := viewerOf(r)
	p.Viewer = v.user
	p.CSRF = s.csrfToken(w, r, v)
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "layout", p); err != nil {
		s.log.Error("render page", "page", name, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// httpError is an answer with a status and a message for people.
type httpError struct {
	status  int
	message string
}

func (e *httpError) Error() string { return e.message }

var (
	errNotFound  = &httpError{http.StatusNotFound, "The page could not be found, or you do not have access to it."}
	errForbidden = &httpError{http.StatusForbidden, "You are not allowed to do that."}
	errBadCSRF   = &httpError{http.StatusForbidden, "The form has expired or did not come from this site; reload the page and try again."}
)

func badRequest(msg string) *httpError { return &httpError{http.StatusBadRequest, msg} }

// fail answers an error as a page.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	var he *httpError
	if !errors.As(err, &he) {
		if errors.Is(err, ci.ErrNotFound) {
			he = errNotFound
		} else {
			s.log.Error("web", "method", r.Method, "path", r.URL.Path, "err", err)
			he = &httpError{http.StatusInternalServerError, "Something went wrong on the server."}
		}
	}
	s.render(w, r, he.status, "error", page{Title: http.StatusText(he.status), Data: struct{ Error string }{he.message}})
}

// handler adapts a handler that returns its error.
func (s *Server) handler(h func(w http.ResponseWriter, r *http.Request) error) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := h(w, r); err != nil {
			s.fail(w, r, err)
		}
	})
}

func (s *Server) staticHandler() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	files := http.FileServer(http.FS(sub))
	return http.StripPrefix("/-/static/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		files.ServeHTTP(w, r)
	}))
}
