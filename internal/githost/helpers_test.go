package githost

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func testCtx(t *testing.T) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

func newRepos(t *testing.T) *Repos {
	t.Helper()
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	return &Repos{Root: filepath.Join(t.TempDir(), "repos")}
}

func mustInit(t *testing.T, r *Repos, id int64) {
	t.Helper()
	if err := r.Init(testCtx(t), id, "main"); err != nil {
		t.Fatalf("Init(%d): %v", id, err)
	}
}

// clientEnv isolates client-side git from the user's configuration.
func clientEnv(home string) []string {
	return []string{
		"PATH=" + os.Getenv("PATH"),
		"HOME=" + home,
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		"GIT_AUTHOR_NAME=Test Author",
		"GIT_AUTHOR_EMAIL=author@example.com",
		"GIT_COMMITTER_NAME=Test Committer",
		"GIT_COMMITTER_EMAIL=committer@example.com",
		"LC_ALL=C",
	}
}

// gitc runs client git in dir; it fails the test on error.
func gitc(t *testing.T, dir string, args ...string) string {
	t.Helper()
	out, err := gitcErr(t, dir, args...)
	if err != nil {
		t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return strings.TrimSpace(out)
}

// gitcErr runs client git in dir and returns combined output.
func gitcErr(t *testing.T, dir string, args ...string) (string, error) {
	t.Helper()
	full := append([]string{"-c", "init.defaultBranch=main", "-c", "credential.helper=", "-c", "protocol.version=2"}, args...)
	cmd := exec.CommandContext(testCtx(t), "git", full...)
	cmd.Dir = dir
	cmd.Env = clientEnv(t.TempDir())
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// fakeAuth is a minimal Authorizer: projects by full path, users with
// passwords, per-project reader and writer sets.
type fakeAuth struct {
	mu       sync.Mutex
	users    map[string]string // user → password
	projects map[string]*fakeProject
	seen     []string // full paths passed to Authorize
}

type fakeProject struct {
	id      int64
	public  bool
	readers map[string]bool
	writers map[string]bool
}

func (f *fakeAuth) Authorize(r *http.Request, fullPath string) (Access, bool, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = append(f.seen, fullPath)
	if fullPath == "boom/error" {
		return Access{}, false, false, errors.New("authorizer failure")
	}
	user, pass, hasCreds := r.BasicAuth()
	authed := hasCreds && pass != "" && f.users[user] == pass
	p := f.projects[fullPath]
	if p == nil {
		return Access{}, false, authed, nil
	}
	canRead := p.public || authed && (p.readers[user] || p.writers[user])
	if !canRead {
		return Access{}, false, authed, nil
	}
	return Access{ProjectID: p.id, CanRead: true, CanWrite: authed && p.writers[user], User: user}, true, authed, nil
}

type pushRecorder struct {
	mu      sync.Mutex
	calls   [][]RefUpdate
	ids     []int64
	chunked int // chunked request bodies seen by the test server
}

func (p *pushRecorder) hook(ctx context.Context, projectID int64, ups []RefUpdate) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls = append(p.calls, ups)
	p.ids = append(p.ids, projectID)
}

func (p *pushRecorder) take(t *testing.T) []RefUpdate {
	t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	if len(p.calls) != 1 {
		t.Fatalf("want exactly 1 push hook call, got %d: %v", len(p.calls), p.calls)
	}
	ups := p.calls[0]
	p.calls, p.ids = nil, nil
	return ups
}

func (p *pushRecorder) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.calls)
}

// testServer starts the git handler with two projects:
// acme/app (id 1, private; alice writes, bob reads) and
// acme/pub (id 2, public; alice writes).
func testServer(t *testing.T, r *Repos) (*httptest.Server, *fakeAuth, *pushRecorder) {
	t.Helper()
	auth := &fakeAuth{
		users: map[string]string{"alice": "alice-pat", "bob": "bob-pat", "gitlab-ci-token": "job-token"},
		projects: map[string]*fakeProject{
			"acme/app": {id: 1, readers: map[string]bool{"bob": true, "gitlab-ci-token": true}, writers: map[string]bool{"alice": true}},
			"acme/pub": {id: 2, public: true, writers: map[string]bool{"alice": true}},
		},
	}
	mustInit(t, r, 1)
	mustInit(t, r, 2)
	rec := &pushRecorder{}
	h := r.Handler(auth, rec.hook, nil)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked" {
			rec.mu.Lock()
			rec.chunked++
			rec.mu.Unlock()
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	return srv, auth, rec
}

// repoURL builds a clone URL with optional credentials.
func repoURL(srv *httptest.Server, user, pass, path string) string {
	u := strings.TrimPrefix(srv.URL, "http://")
	if user != "" {
		return "http://" + user + ":" + pass + "@" + u + "/" + path
	}
	return "http://" + u + "/" + path
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}
