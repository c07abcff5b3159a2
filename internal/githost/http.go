package githost

import (
	"context"
	"errors"
	"fmt"
	"log"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"strconv"
	"strings"
	"time"

	"gantry/internal/ci"
)

// Access is what an Authorizer grants for one request.
type Access struct {
	ProjectID int64
	CanRead   bool
	CanWrite  bool
	// User optionally names the authenticated user; it becomes the CGI
	// REMOTE_USER (reflog identity). Defaults to the Basic auth username,
	// or "anonymous".
	User string
	// Rules are the protected branches and tags a push must respect.
	Rules []RefRule
	// DefaultBranch, if set, lets the handler create a missing repository
	// on first access (Init with this default branch) instead of answering
	// 404.
	DefaultBranch string
}

// Authorizer maps a request and a project full path to an Access.
type Authorizer interface {
	// Authorize resolves fullPath (e.g. "acme/tools/app") for the
	// credentials in the request (HTTP Basic: username + password; the
	// password may be a personal access token, or user "gitlab-ci-token"
	// with a job token). Return found=false for unknown or invisible
	// projects (→ 404), authenticated=false when credentials are missing or
	// wrong and the project is not public (→ 401 with a Basic challenge).
	Authorize(r *http.Request, fullPath string) (acc Access, found, authenticated bool, err error)
}

// RefUpdate is one ref change. Before is ZeroSHA for a creation, After is
// ZeroSHA for a deletion. Values are the raw ref targets (for annotated
// tags the tag object, as in a post-receive hook; ResolveRef peels them).
type RefUpdate struct {
	Ref    string // full ref name, e.g. "refs/heads/main", "refs/tags/v1"
	Before string
	After  string
}

// PushHook is told about the refs a push moved.
type PushHook func(ctx context.Context, projectID int64, updates []RefUpdate)

const (
	svcUpload  = "git-upload-pack"
	svcReceive = "git-receive-pack"
)

// Handler serves git smart HTTP for paths "/<full_path>.git/info/refs",
// "/<full_path>.git/git-upload-pack" and "/<full_path>.git/git-receive-pack"
// (the ".git" suffix is optional). Mount it where those paths arrive
// unchanged, or below http.StripPrefix.
//
// Only the smart protocol is served: info/refs requires
// ?service=git-upload-pack|git-receive-pack, the service endpoints require
// POST; anything else (including dumb-protocol file requests) is 404.
//
// Authorization: fetching needs CanRead, pushing (including the
// receive-pack ref advertisement) needs CanWrite. When access is
// insufficient the answer is 401 with `WWW-Authenticate: Basic
// realm="GitLab"` if the request carried no credentials or the Authorizer
// reports them as not authenticated (git then retries with credentials;
// unknown projects are not distinguished from private ones here), otherwise
// 403 for a push to a readable project or a fetch from a visible one, and
// 404 in all other cases.
//
// The repository is chosen only by Access.ProjectID; fullPath is never used
// to touch the filesystem. The real `git http-backend` runs as a CGI
// program with GIT_PROJECT_ROOT=Root and PATH_INFO=/<id>.git/...; request
// and response bodies are streamed (chunked and gzip-encoded request bodies
// are passed through; http-backend inflates them).
//
// Pushes to one project are serialised, also across processes sharing
// Root (see the package comment). All refs are snapshotted before and
// after receive-pack runs; if anything moved, onPush is called (after the
// response has been written, before ServeHTTP returns, outside the
// project lock, with a context that is not cancelled when the client goes
// away) with one RefUpdate per created, moved or deleted ref, sorted by
// ref name. onPush and log may be nil.
func (r *Repos) Handler(auth Authorizer, onPush PushHook, logger *slog.Logger) http.Handler {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &gitHandler{repos: r, auth: auth, onPush: onPush, log: logger}
}

type gitHandler struct {
	repos  *Repos
	auth   Authorizer
	onPush PushHook
	log    *slog.Logger
}

// IsGitRequest tells repository traffic from pages: a path with a
// segment ending in .git, or a smart-HTTP request. Whatever follows a
// "/-/" segment is a page's (GitLab reserves "-" as a path segment).
func IsGitRequest(req *http.Request) bool {
	p := req.URL.Path
	if i := strings.Index(p, "/-/"); i >= 0 {
		p = p[:i]
	}
	if strings.Contains(p, ".git/") || strings.HasSuffix(p, ".git") {
		return true
	}
	_, _, _, ok := parseGitPath(req)
	return ok
}

// parseGitPath splits a smart-HTTP URL path into the project full path and
// the service; ok is false for anything that is not a smart-HTTP request.
func parseGitPath(req *http.Request) (fullPath, service, suffix string, ok bool) {
	p := req.URL.Path
	switch {
	case strings.HasSuffix(p, "/info/refs"):
		if req.Method != http.MethodGet {
			return
		}
		service = req.URL.Query().Get("service")
		if service != svcUpload && service != svcReceive {
			return // dumb protocol
		}
		suffix = "info/refs"
	case strings.HasSuffix(p, "/"+svcUpload):
		service, suffix = svcUpload, svcUpload
	case strings.HasSuffix(p, "/"+svcReceive):
		service, suffix = svcReceive, svcReceive
	default:
		return
	}
	if suffix != "info/refs" && req.Method != http.MethodPost {
		return
	}
	fullPath = strings.TrimPrefix(strings.TrimSuffix(p, "/"+suffix), "/")
	fullPath = strings.TrimSuffix(fullPath, ".git")
	if !validProjectPath(fullPath) {
		return "", "", "", false
	}
	return fullPath, service, suffix, true
}

// validProjectPath accepts "group/sub/project"-shaped paths.
func validProjectPath(p string) bool {
	if p == "" || len(p) > 1024 {
		return false
	}
	for _, seg := range strings.Split(p, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
		for i := 0; i < len(seg); i++ {
			if c := seg[i]; c < 0x20 || c == 0x7f || c == '\\' {
				return false
			}
		}
	}
	return true
}

func (h *gitHandler) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	fullPath, service, suffix, ok := parseGitPath(req)
	if !ok {
		http.NotFound(w, req)
		return
	}
	acc, found, authenticated, err := h.auth.Authorize(req, fullPath)
	if errors.Is(err, ci.ErrUnavailable) {
		// The database is out of reach: git clients and runners retry.
		h.log.Warn("githost: authorize", "path", fullPath, "err", err)
		w.Header().Set("Retry-After", "1")
		http.Error(w, "503 Service Unavailable", http.StatusServiceUnavailable)
		return
	}
	if err != nil {
		h.log.Error("githost: authorize", "path", fullPath, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	push := service == svcReceive
	allowed := found && acc.ProjectID > 0 && (push && acc.CanWrite || !push && acc.CanRead)
	if !allowed {
		hasCreds := req.Header.Get("Authorization") != ""
		switch {
		case !authenticated || !hasCreds:
			w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
			http.Error(w, "HTTP Basic: Access denied", http.StatusUnauthorized)
		case found && push && acc.CanRead:
			http.Error(w, "You are not allowed to push code to this project.", http.StatusForbidden)
		case found && !push && acc.ProjectID > 0:
			// The project is visible (a guest of a private one) but its code is not.
			http.Error(w, "You are not allowed to download code from this project.", http.StatusForbidden)
		default:
			http.Error(w, "The project you were looking for could not be found or you don't have permission to view it.", http.StatusNotFound)
		}
		return
	}

	if _, err := h.repos.repo(acc.ProjectID); err != nil {
		if acc.DefaultBranch == "" {
			h.log.Warn("githost: repository missing", "project_id", acc.ProjectID, "path", fullPath)
			http.Error(w, "The project repository could not be found.", http.StatusNotFound)
			return
		}
		if err := h.repos.Init(req.Context(), acc.ProjectID, acc.DefaultBranch); err != nil {
			h.log.Error("githost: init repository", "project_id", acc.ProjectID, "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}

	backend, err := h.repos.backendPath(req.Context())
	if err != nil {
		h.log.Error("githost: locate git-http-backend", "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}

	user := acc.User
	if user == "" {
		user, _, _ = req.BasicAuth()
	}
	user = sanitizeIdent(user)
	if user == "" {
		user = "anonymous"
	}

	// The CGI request: same method, query, headers and (streamed) body,
	// but the path names the repository by project ID only.
	cr := req.Clone(req.Context())
	cr.URL.Path = "/" + strconv.FormatInt(acc.ProjectID, 10) + ".git/" + suffix
	cr.URL.RawPath = ""
	cr.RequestURI = cr.URL.RequestURI()
	for _, hd := range []string{"Authorization", "Proxy-Authorization", "Cookie", "Private-Token", "Job-Token"} {
		cr.Header.Del(hd)
	}
	// net/http/cgi refuses chunked request bodies. Dropping the transfer
	// encoding leaves ContentLength at -1: the (already de-chunked) body
	// is piped to http-backend until EOF and CONTENT_LENGTH is unset,
	// which http-backend handles by reading to EOF.
	cr.TransferEncoding = nil

	env := h.repos.baseEnv()
	if push && suffix != "info/refs" {
		if env, err = h.repos.pushEnv(acc.Rules); err != nil {
			h.log.Error("githost: push environment", "err", err)
			http.Error(w, "internal error", http.StatusInternalServerError)
			return
		}
	}
	logw := &logWriter{log: h.log, project: acc.ProjectID}
	cg := &cgi.Handler{
		Path:   backend,
		Root:   "/",
		Dir:    h.repos.Root,
		Logger: log.New(logw, "", 0),
		Stderr: logw,
		Env: append(env,
			"GIT_PROJECT_ROOT="+h.repos.Root,
			"GIT_HTTP_EXPORT_ALL=1",
			"REMOTE_USER="+user,
		),
	}
	// git reads the request body while writing progress; allow it.
	_ = http.NewResponseController(w).EnableFullDuplex()
	sw := &statusWriter{ResponseWriter: w}
	start := time.Now()

	if !push || suffix == "info/refs" {
		cg.ServeHTTP(sw, cr)
		h.log.Debug("githost: served", "project_id", acc.ProjectID, "service", service, "suffix", suffix, "status", sw.status(), "duration", time.Since(start))
		return
	}

	dir := h.repos.Path(acc.ProjectID)
	unlock, err := h.repos.lock(req.Context(), acc.ProjectID)
	if err != nil {
		http.Error(w, "request cancelled", http.StatusServiceUnavailable)
		return
	}
	// Another process may have deleted the repository while we waited.
	if _, err := h.repos.repo(acc.ProjectID); err != nil {
		unlock()
		http.Error(w, "The project repository could not be found.", http.StatusNotFound)
		return
	}
	// Snapshot with a context that survives a client disconnect: once
	// the backend ran, we must learn what moved.
	sctx := context.WithoutCancel(req.Context())
	before, err := h.repos.snapshot(sctx, dir, "")
	if err != nil {
		unlock()
		h.log.Error("githost: snapshot refs", "project_id", acc.ProjectID, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	cg.ServeHTTP(sw, cr)
	// Deliver the report-status to the client before the hook runs.
	_ = http.NewResponseController(w).Flush()
	after, err := h.repos.snapshot(sctx, dir, "")
	unlock()
	if err != nil {
		h.log.Error("githost: snapshot refs after push", "project_id", acc.ProjectID, "err", err)
		return
	}
	updates := diffRefs(before, after)
	h.log.Info("githost: push", "project_id", acc.ProjectID, "user", user, "status", sw.status(), "updates", len(updates), "duration", time.Since(start))
	if len(updates) > 0 && h.onPush != nil {
		h.onPush(sctx, acc.ProjectID, updates)
	}
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(p []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(p)
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

func (s *statusWriter) status() int {
	if s.code == 0 {
		return http.StatusOK
	}
	return s.code
}

// logWriter forwards http-backend's stderr and CGI errors to slog.
type logWriter struct {
	log     *slog.Logger
	project int64
}

func (l *logWriter) Write(p []byte) (int, error) {
	msg := strings.TrimSpace(string(p))
	if msg != "" {
		l.log.Warn("githost: http-backend", "project_id", l.project, "msg", truncate(msg, 2000))
	}
	return len(p), nil
}

// String implements fmt.Stringer for debugging.
func (u RefUpdate) String() string {
	return fmt.Sprintf("%s %s..%s", u.Ref, u.Before, u.After)
}
