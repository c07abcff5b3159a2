package githost

import (
	"bytes"
	"compress/gzip"
	"crypto/rand"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestPushReportsRefUpdates(t *testing.T) {
	r := newRepos(t)
	srv, _, rec := testServer(t, r)
	ctx := testCtx(t)
	url := repoURL(srv, "alice", "alice-pat", "acme/app.git")

	work := filepath.Join(t.TempDir(), "work")
	out := gitc(t, "", "clone", url, work)
	_ = out
	if rec.count() != 0 {
		t.Fatalf("clone must not call the push hook")
	}

	// First push: one commit on main.
	writeFile(t, filepath.Join(work, "README.md"), "hello\n")
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-m", "first")
	c1 := gitc(t, work, "rev-parse", "HEAD")
	gitc(t, work, "push", "origin", "main")
	if got, want := rec.take(t), []RefUpdate{{"refs/heads/main", ZeroSHA, c1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("first push: got %v want %v", got, want)
	}

	// Second push: main moves, a new branch and an annotated tag.
	gitc(t, work, "tag", "-a", "v1.0", "-m", "release", c1)
	tagObj := gitc(t, work, "rev-parse", "refs/tags/v1.0")
	writeFile(t, filepath.Join(work, "main.go"), "package main\n")
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-m", "second")
	c2 := gitc(t, work, "rev-parse", "HEAD")
	gitc(t, work, "checkout", "-q", "-b", "feature", c1)
	writeFile(t, filepath.Join(work, "feature.txt"), "f\n")
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-m", "feature work")
	c3 := gitc(t, work, "rev-parse", "HEAD")
	gitc(t, work, "push", "origin", "main", "feature", "v1.0")
	want := []RefUpdate{
		{"refs/heads/feature", ZeroSHA, c3},
		{"refs/heads/main", c1, c2},
		{"refs/tags/v1.0", ZeroSHA, tagObj},
	}
	if got := rec.take(t); !reflect.DeepEqual(got, want) {
		t.Fatalf("second push: got %v want %v", got, want)
	}
	if sha, err := r.ResolveRef(ctx, 1, "v1.0"); err != nil || sha != c1 {
		t.Fatalf("ResolveRef(v1.0) = %s, %v; want peeled %s", sha, err, c1)
	}

	// Deleting a branch reports After = zero.
	gitc(t, work, "push", "origin", "--delete", "feature")
	if got, want := rec.take(t), []RefUpdate{{"refs/heads/feature", c3, ZeroSHA}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("delete: got %v want %v", got, want)
	}

	// Force push (non fast-forward) is allowed and reported.
	gitc(t, work, "push", "-f", "origin", c1+":refs/heads/main")
	if got, want := rec.take(t), []RefUpdate{{"refs/heads/main", c2, c1}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("force push: got %v want %v", got, want)
	}

	// A push that changes nothing does not call the hook.
	gitc(t, work, "push", "origin", c1+":refs/heads/main")
	if rec.count() != 0 {
		t.Fatalf("no-op push called the hook")
	}

	// Large push (> http.postBuffer, so the body is sent chunked).
	gitc(t, work, "checkout", "-q", "-B", "main", c1)
	big := make([]byte, 3<<20)
	rand.Read(big)
	if err := os.WriteFile(filepath.Join(work, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-m", "big file")
	c4 := gitc(t, work, "rev-parse", "HEAD")
	gitc(t, work, "push", "origin", "main")
	if rec.chunked == 0 {
		t.Fatalf("expected the large push to use a chunked request body")
	}
	if got, want := rec.take(t), []RefUpdate{{"refs/heads/main", c1, c4}}; !reflect.DeepEqual(got, want) {
		t.Fatalf("big push: got %v want %v", got, want)
	}
	if data, err := r.ReadFile(ctx, 1, c4, "big.bin"); err != nil || !bytes.Equal(data, big) {
		t.Fatalf("ReadFile(big.bin): len %d, %v", len(data), err)
	}

	// A fresh clone (protocol v2 and v0) sees the history.
	for _, proto := range []string{"2", "0"} {
		clone := filepath.Join(t.TempDir(), "clone")
		gitc(t, "", "-c", "protocol.version="+proto, "clone", "-q", url, clone)
		log := gitc(t, clone, "log", "--format=%s", "main")
		if log != "big file\nfirst" {
			t.Fatalf("protocol %s: git log = %q", proto, log)
		}
		gitc(t, clone, "fetch", "-q", "--tags")
		if tags := gitc(t, clone, "tag"); tags != "v1.0" {
			t.Fatalf("tags = %q", tags)
		}
	}
	// The CI job token can fetch (read-only).
	ci := filepath.Join(t.TempDir(), "ci")
	gitc(t, "", "clone", "-q", "--depth", "1", repoURL(srv, "gitlab-ci-token", "job-token", "acme/app.git"), ci)
}

func TestGzipUploadPackRequest(t *testing.T) {
	r := newRepos(t)
	srv, _, _ := testServer(t, r)
	ctx := testCtx(t)
	res, err := r.CommitFiles(ctx, 2, CommitRequest{Branch: "main", Message: "init", AuthorName: "A", AuthorEmail: "a@x",
		Actions: []Action{{Action: "create", FilePath: "a.txt", Content: []byte("a")}}})
	if err != nil {
		t.Fatal(err)
	}
	pkt := func(s string) string { return fmt.Sprintf("%04x%s", len(s)+4, s) }
	body := pkt("want "+res.SHA+" no-progress\n") + "0000" + pkt("done\n")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte(body))
	zw.Close()
	req, _ := http.NewRequest("POST", srv.URL+"/acme/pub.git/git-upload-pack", &gz)
	req.Header.Set("Content-Type", "application/x-git-upload-pack-request")
	req.Header.Set("Content-Encoding", "gzip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !bytes.Contains(data, []byte("NAK")) || !bytes.Contains(data, []byte("PACK")) {
		t.Fatalf("gzip upload-pack: status %d body %q", resp.StatusCode, truncate(string(data), 200))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-git-upload-pack-result" {
		t.Fatalf("content type %q", ct)
	}
}

func TestHTTPAuthorization(t *testing.T) {
	r := newRepos(t)
	srv, auth, rec := testServer(t, r)

	type tc struct {
		name, method, path, user, pass string
		want                           int
	}
	cases := []tc{
		{"anon pull private", "GET", "/acme/app.git/info/refs?service=git-upload-pack", "", "", 401},
		{"wrong password", "GET", "/acme/app.git/info/refs?service=git-upload-pack", "bob", "nope", 401},
		{"reader pull", "GET", "/acme/app.git/info/refs?service=git-upload-pack", "bob", "bob-pat", 200},
		{"reader pull without .git", "GET", "/acme/app/info/refs?service=git-upload-pack", "bob", "bob-pat", 200},
		{"reader push", "GET", "/acme/app.git/info/refs?service=git-receive-pack", "bob", "bob-pat", 403},
		{"reader push rpc", "POST", "/acme/app.git/git-receive-pack", "bob", "bob-pat", 403},
		{"writer push", "GET", "/acme/app.git/info/refs?service=git-receive-pack", "alice", "alice-pat", 200},
		{"anon push private", "GET", "/acme/app.git/info/refs?service=git-receive-pack", "", "", 401},
		{"unknown project authed", "GET", "/acme/nope.git/info/refs?service=git-upload-pack", "alice", "alice-pat", 404},
		{"unknown project anon", "GET", "/acme/nope.git/info/refs?service=git-upload-pack", "", "", 401},
		{"invisible project authed", "GET", "/acme/app.git/info/refs?service=git-upload-pack", "gitlab-ci-token", "wrong", 401},
		{"anon pull public", "GET", "/acme/pub.git/info/refs?service=git-upload-pack", "", "", 200},
		{"anon push public", "GET", "/acme/pub.git/info/refs?service=git-receive-pack", "", "", 401},
		{"bob push public", "GET", "/acme/pub.git/info/refs?service=git-receive-pack", "bob", "bob-pat", 403},
		{"dumb info/refs", "GET", "/acme/pub.git/info/refs", "", "", 404},
		{"dumb bad service", "GET", "/acme/pub.git/info/refs?service=git-upload-archive", "", "", 404},
		{"dumb HEAD", "GET", "/acme/pub.git/HEAD", "", "", 404},
		{"dumb objects", "GET", "/acme/pub.git/objects/info/packs", "", "", 404},
		{"GET rpc", "GET", "/acme/pub.git/git-upload-pack", "", "", 404},
		{"POST info/refs", "POST", "/acme/pub.git/info/refs?service=git-upload-pack", "", "", 404},
		{"traversal", "GET", "/acme/../../etc/info/refs?service=git-upload-pack", "alice", "alice-pat", 404},
		{"traversal dot", "GET", "/./acme/pub.git/info/refs?service=git-upload-pack", "alice", "alice-pat", 404},
		{"empty segment", "GET", "/acme//pub.git/info/refs?service=git-upload-pack", "alice", "alice-pat", 404},
		{"no path", "GET", "/.git/info/refs?service=git-upload-pack", "alice", "alice-pat", 404},
		{"authorizer error", "GET", "/boom/error.git/info/refs?service=git-upload-pack", "", "", 500},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req, err := http.NewRequest(c.method, srv.URL+c.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if c.user != "" {
				req.SetBasicAuth(c.user, c.pass)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != c.want {
				t.Fatalf("status %d, want %d (%s)", resp.StatusCode, c.want, body)
			}
			challenge := resp.Header.Get("WWW-Authenticate")
			if c.want == 401 && challenge != `Basic realm="GitLab"` {
				t.Fatalf("401 without Basic challenge: %q", challenge)
			}
			if c.want != 401 && challenge != "" {
				t.Fatalf("unexpected challenge on %d", c.want)
			}
			if c.want == 200 {
				svc := strings.TrimPrefix(c.path[strings.Index(c.path, "service="):], "service=")
				if ct := resp.Header.Get("Content-Type"); ct != "application/x-"+svc+"-advertisement" {
					t.Fatalf("content type %q", ct)
				}
			}
		})
	}
	for _, p := range auth.seen {
		if strings.Contains(p, "..") || strings.HasPrefix(p, ".") || strings.Contains(p, "//") {
			t.Fatalf("authorizer was asked about unsanitised path %q", p)
		}
	}

	// Real git: unauthenticated push is challenged; git fails without
	// credentials (no prompt), succeeds with credentials in the URL.
	work := filepath.Join(t.TempDir(), "w")
	gitc(t, "", "init", "-q", work)
	writeFile(t, filepath.Join(work, "f.txt"), "x\n")
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-q", "-m", "c")
	out, err := gitcErr(t, work, "push", repoURL(srv, "", "", "acme/pub.git"), "main")
	if err == nil || !(strings.Contains(out, "could not read Username") || strings.Contains(out, "Authentication failed")) {
		t.Fatalf("anonymous push: err=%v out=%s", err, out)
	}
	out, err = gitcErr(t, work, "push", repoURL(srv, "bob", "bob-pat", "acme/app.git"), "main")
	if err == nil || !strings.Contains(out, "403") {
		t.Fatalf("read-only push: err=%v out=%s", err, out)
	}
	out, err = gitcErr(t, work, "push", repoURL(srv, "alice", "wrong", "acme/app.git"), "main")
	if err == nil || !strings.Contains(out, "Authentication failed") {
		t.Fatalf("wrong password push: err=%v out=%s", err, out)
	}
	out, err = gitcErr(t, work, "push", repoURL(srv, "alice", "alice-pat", "acme/missing.git"), "main")
	if err == nil || !strings.Contains(out, "not found") {
		t.Fatalf("unknown project push: err=%v out=%s", err, out)
	}
	if rec.count() != 0 {
		t.Fatalf("failed pushes called the hook")
	}
	gitc(t, work, "push", repoURL(srv, "alice", "alice-pat", "acme/pub.git"), "main")
	if rec.count() != 1 || rec.ids[0] != 2 {
		t.Fatalf("push hook project ids %v", rec.ids)
	}
	ups := rec.take(t)
	if len(ups) != 1 || ups[0].Ref != "refs/heads/main" || ups[0].Before != ZeroSHA {
		t.Fatalf("push hook: %v", ups)
	}
	// Anonymous clone of the public project works.
	clone := filepath.Join(t.TempDir(), "anon")
	gitc(t, "", "clone", "-q", repoURL(srv, "", "", "acme/pub.git"), clone)
	if s := gitc(t, clone, "log", "--format=%s"); s != "c" {
		t.Fatalf("anon clone log %q", s)
	}
}

func TestHandlerMissingRepository(t *testing.T) {
	r := newRepos(t)
	auth := &lazyAuth{fakeAuth: fakeAuth{users: map[string]string{"alice": "pw"}, projects: map[string]*fakeProject{
		"g/p": {id: 7, writers: map[string]bool{"alice": true}},
		"g/q": {id: 8, writers: map[string]bool{"alice": true}},
	}}}
	rec := &pushRecorder{}
	srv := httptest.NewServer(r.Handler(auth, rec.hook, nil))
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/g/p.git/info/refs?service=git-upload-pack", nil)
	req.SetBasicAuth("alice", "pw")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 404 {
		t.Fatalf("missing repository: status %d", resp.StatusCode)
	}
	// With Access.DefaultBranch the repository is created on first use.
	work := filepath.Join(t.TempDir(), "w")
	gitc(t, "", "clone", "-q", strings.Replace(srv.URL, "http://", "http://alice:pw@", 1)+"/g/q.git", work)
	writeFile(t, filepath.Join(work, "x"), "x")
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-q", "-m", "x")
	gitc(t, work, "push", "-q", "origin", "HEAD:trunk")
	if ups := rec.take(t); len(ups) != 1 || ups[0].Ref != "refs/heads/trunk" {
		t.Fatalf("updates %v", ups)
	}
	if def, err := r.DefaultBranch(testCtx(t), 8); err != nil || def != "trunk" {
		t.Fatalf("default branch %q %v", def, err)
	}
}

// lazyAuth grants DefaultBranch "trunk" for project 8 only.
type lazyAuth struct{ fakeAuth }

func (l *lazyAuth) Authorize(r *http.Request, fullPath string) (Access, bool, bool, error) {
	acc, found, authed, err := l.fakeAuth.Authorize(r, fullPath)
	if acc.ProjectID == 8 {
		acc.DefaultBranch = "trunk"
	}
	return acc, found, authed, err
}

// Commits made through CommitFiles while pushes run are never attributed
// to a push.
func TestPushAndCommitFilesInterleave(t *testing.T) {
	r := newRepos(t)
	srv, _, rec := testServer(t, r)
	ctx := testCtx(t)
	url := repoURL(srv, "alice", "alice-pat", "acme/app.git")
	base, err := r.CommitFiles(ctx, 1, CommitRequest{Branch: "main", Message: "base", AuthorName: "A", AuthorEmail: "a@x",
		Actions: []Action{{Action: "create", FilePath: "base", Content: []byte("b")}}})
	if err != nil {
		t.Fatal(err)
	}
	work := filepath.Join(t.TempDir(), "w")
	gitc(t, "", "clone", "-q", url, work)

	done := make(chan error)
	go func() {
		for i := 0; i < 10; i++ {
			req := CommitRequest{Branch: "api", StartBranch: "main", Message: fmt.Sprint("api ", i), AuthorName: "A", AuthorEmail: "a@x",
				Actions: []Action{{Action: "create", FilePath: fmt.Sprint("api/", i), Content: []byte("x")}}}
			if i > 0 {
				req.StartBranch = ""
			}
			if _, err := r.CommitFiles(ctx, 1, req); err != nil {
				done <- err
				return
			}
		}
		done <- nil
	}()
	for i := 0; i < 5; i++ {
		writeFile(t, filepath.Join(work, fmt.Sprint("f", i)), "x")
		gitc(t, work, "add", ".")
		gitc(t, work, "commit", "-q", "-m", fmt.Sprint("push ", i))
		gitc(t, work, "push", "-q", "origin", "main")
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	rec.mu.Lock()
	defer rec.mu.Unlock()
	if len(rec.calls) != 5 {
		t.Fatalf("hook calls %d, want 5", len(rec.calls))
	}
	prev := base.SHA
	for _, ups := range rec.calls {
		if len(ups) != 1 || ups[0].Ref != "refs/heads/main" || ups[0].Before != prev {
			t.Fatalf("push updates %v", ups)
		}
		prev = ups[0].After
	}
}
