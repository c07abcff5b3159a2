package web

import (
	"context"
	"net/http"
	"strings"
)

// addRoutes is the whole UI. Project pages live under GitLab's URLs,
// /<full path>/-/<page>: the project part is cut off and the rest is
// routed by projectRoutes.
func (s *Server) addRoutes(mux *http.ServeMux) {
	h := s.handler
	mux.Handle("GET /{$}", h(s.handleProjects))
	mux.Handle("GET /users/sign_in", h(s.handleSignInForm))
	mux.Handle("POST /users/sign_in", h(s.handleSignIn))
	mux.Handle("POST /users/sign_out", h(s.handleSignOut))
	mux.Handle("GET /admin/runners", h(s.handleAdminRunners))
	mux.Handle("GET /-/static/", s.staticHandler())

	project := http.NewServeMux()
	s.projectRoutes(project)
	mux.Handle("/", h(func(w http.ResponseWriter, r *http.Request) error {
		full, rest, ok := strings.Cut(strings.TrimPrefix(r.URL.Path, "/"), "/-/")
		if full == "" || strings.HasPrefix(r.URL.Path, "/-/") {
			return errNotFound
		}
		if !ok {
			// A project's own URL: its pipelines are its front page here.
			full = strings.TrimSuffix(full, "/")
			if r.Method != http.MethodGet || strings.Count(full, "/") < 1 {
				return errNotFound
			}
			http.Redirect(w, r, "/"+full+"/-/pipelines", http.StatusFound)
			return nil
		}
		r2 := r.Clone(context.WithValue(r.Context(), projectPathKey, full))
		r2.URL.Path = "/-/" + rest
		r2.URL.RawPath = ""
		if _, pattern := project.Handler(r2); pattern == "" {
			return errNotFound
		}
		project.ServeHTTP(w, r2)
		return nil
	}))
}

// projectRoutes are the pages and actions of one project.
func (s *Server) projectRoutes(mux *http.ServeMux) {
	h := s.handler
	mux.Handle("GET /-/pipelines", h(s.handlePipelines))
	mux.Handle("GET /-/pipelines/{id}", h(s.handlePipeline))
	mux.Handle("GET /-/jobs", h(s.handleJobs))
	mux.Handle("GET /-/jobs/{id}", h(s.handleJob))
	mux.Handle("GET /-/jobs/{id}/raw", h(s.handleRawLog))
	mux.Handle("GET /-/jobs/{id}/follow", h(s.handleFollowLog))
	mux.Handle("GET /-/jobs/{id}/artifacts/download", h(s.handleArtifactsDownload))
	mux.Handle("GET /-/jobs/{id}/artifacts/browse", h(s.handleArtifactsBrowse))
	mux.Handle("GET /-/jobs/{id}/artifacts/browse/{dir...}", h(s.handleArtifactsBrowse))
	mux.Handle("GET /-/jobs/{id}/artifacts/file/{file...}", h(s.handleArtifactFile))
	for _, action := range []string{"cancel", "retry", "play", "erase"} {
		mux.Handle("POST /-/jobs/{id}/"+action, h(s.handleJobAction(action)))
	}
	mux.Handle("GET /-/runners", h(s.handleProjectRunners))
}
