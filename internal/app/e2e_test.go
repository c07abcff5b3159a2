package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

const rootToken = "glpat-e2e-root-0123456789abcdef"

type node struct {
	t    *testing.T
	app  *app.App
	base string
}

// startNode runs a whole gantry (API, git hosting, pipeline processor) on
// a loopback port against the backend's store.
func startNode(t *testing.T, b testenv.Backend) *node {
	t.Helper()
	return serveNode(t, b.Open(t), app.Options{}, func(*config.Config) {})
}

// startNodeWith is startNode with the configuration adjusted by configure.
func startNodeWith(t *testing.T, b testenv.Backend, configure func(*config.Config)) *node {
	t.Helper()
	return serveNode(t, b.Open(t), app.Options{}, configure)
}

// serveNode is startNode on a given store, with options and configuration
// changes (the store in opt is replaced by st), stopped when the test ends.
func serveNode(t *testing.T, st store.Store, opt app.Options, configure func(*config.Config)) *node {
	t.Helper()
	n, stop := launchNode(t, st, t.TempDir(), opt, configure)
	t.Cleanup(stop)
	return n
}

// startNodeAt runs a node on st with its files under dataDir; stop ends
// it as a killed process would leave things: nothing is flushed or
// finished, the store is closed.
func startNodeAt(t *testing.T, st store.Store, dataDir string) (*node, func()) {
	t.Helper()
	return launchNode(t, st, dataDir, app.Options{}, func(*config.Config) {})
}

func launchNode(t *testing.T, st store.Store, dataDir string, opt app.Options, configure func(*config.Config)) (*node, func()) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	cfg := config.Defaults()
	cfg.DataDir, cfg.ExternalURL, cfg.InitialRootToken, cfg.Listen = dataDir, base, rootToken, l.Addr().String()
	configure(&cfg)
	ctx, cancel := context.WithCancel(context.Background())
	opt.Store = st
	a, err := app.New(ctx, cfg, opt)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	a.Start(ctx)
	srv := &http.Server{Handler: a.Handler()}
	go func() { _ = srv.Serve(l) }()
	return &node{t: t, app: a, base: base}, func() {
		cancel()
		srv.Close()
		a.Pipelines.Stop()
		a.Expiry.Stop()
		a.LogArchiver.Stop()
		a.Hooks.Stop()
		a.CloseEvents()
		st.Close()
	}
}

func (n *node) api(method, path string, body any, out any) int {
	n.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, n.base+"/api/v4"+path, rd)
	req.Header.Set("PRIVATE-TOKEN", rootToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			n.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
		}
	}
	return res.StatusCode
}

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir, "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Dev", "GIT_AUTHOR_EMAIL=dev@example.com", "GIT_COMMITTER_NAME=Dev", "GIT_COMMITTER_EMAIL=dev@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

type pipelineJSON struct {
	ID        int64  `json:"id"`
	SHA       string `json:"sha"`
	BeforeSHA string `json:"before_sha"`
	Ref       string `json:"ref"`
	Status    string `json:"status"`
	Source    string `json:"source"`
}

type jobJSON struct {
	ID     int64  `json:"id"`
	Name   string `json:"name"`
	Stage  string `json:"stage"`
	Status string `json:"status"`
}

const ciYAML = `stages: [build, test, deploy]
build:
  stage: build
  script: [make]
unit:
  stage: test
  script: [make test]
lint:
  stage: test
  script: [make lint]
  allow_failure: true
deploy:
  stage: deploy
  script: [make deploy]
  when: manual
child:
  stage: deploy
  trigger:
    include: child.yml
    strategy: depend
`

const childYAML = `child-job:
  script: [echo child]
`

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func (n *node) pipelines(pid int64) []pipelineJSON {
	var out []pipelineJSON
	n.api("GET", fmt.Sprintf("/projects/%d/pipelines", pid), nil, &out)
	return out
}

func (n *node) jobs(pid, pipelineID int64) map[string]jobJSON {
	var out []jobJSON
	n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d/jobs?per_page=100", pid, pipelineID), nil, &out)
	m := map[string]jobJSON{}
	for _, j := range out {
		m[j.Name] = j
	}
	return m
}

// finish moves a job through running to its end, as a runner would.
func (n *node) finish(jobID int64, to ci.JobStatus) {
	n.t.Helper()
	ctx := context.Background()
	st := n.app.Store
	now := time.Now()
	if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: jobID, From: ci.StatusPending, To: ci.StatusRunning, Now: now}); err != nil {
		n.t.Fatal(err)
	}
	j, err := st.TransitionJob(ctx, store.TransitionParams{JobID: jobID, From: ci.StatusRunning, To: to, FailureReason: ci.FailureScript, Now: now})
	if err != nil {
		n.t.Fatal(err)
	}
	n.app.Pipelines.Enqueue(j.PipelineID)
}

func TestPushToPipelines(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			var group struct{ ID int64 }
			n.api("POST", "/groups", map[string]any{"name": "Acme", "path": "acme"}, &group)
			var proj struct {
				ID   int64  `json:"id"`
				HTTP string `json:"http_url_to_repo"`
			}
			if code := n.api("POST", "/projects", map[string]any{"name": "app", "namespace_id": group.ID}, &proj); code != 201 {
				t.Fatalf("create project %d", code)
			}
			u, _ := url.Parse(proj.HTTP)
			u.User = url.UserPassword("root", rootToken)
			dir := t.TempDir()
			git(t, dir, "clone", "-q", u.String(), "work")
			work := filepath.Join(dir, "work")
			git(t, work, "checkout", "-q", "-b", "main")
			os.WriteFile(filepath.Join(work, ".gitlab-ci.yml"), []byte(ciYAML), 0o644)
			os.WriteFile(filepath.Join(work, "child.yml"), []byte(childYAML), 0o644)
			git(t, work, "add", ".")
			git(t, work, "commit", "-q", "-m", "Add CI")
			first := git(t, work, "rev-parse", "HEAD")
			git(t, work, "push", "-q", "origin", "main")

			var pls []pipelineJSON
			waitFor(t, "first pipeline", func() bool { pls = n.pipelines(proj.ID); return len(pls) == 1 })
			p1 := pls[0]
			n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, p1.ID), nil, &p1)
			if p1.SHA != first || p1.Ref != "main" || p1.Source != "push" || p1.BeforeSHA != strings.Repeat("0", 40) {
				t.Fatalf("first pipeline %+v", p1)
			}
			// Unauthenticated push is challenged.
			anon, _ := url.Parse(proj.HTTP)
			cmd := exec.Command("git", "ls-remote", anon.String())
			cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
			if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "Authentication failed") && !strings.Contains(string(out), "could not read Username") {
				t.Fatalf("anonymous ls-remote of a private project: %v %s", err, out)
			}

			// Processing: build first.
			var jobs map[string]jobJSON
			waitFor(t, "build pending", func() bool { jobs = n.jobs(proj.ID, p1.ID); return jobs["build"].Status == "pending" })
			if jobs["unit"].Status != "created" || jobs["deploy"].Status != "created" {
				t.Fatalf("jobs %v", jobs)
			}
			n.finish(jobs["build"].ID, ci.StatusSuccess)
			waitFor(t, "test stage", func() bool {
				jobs = n.jobs(proj.ID, p1.ID)
				return jobs["unit"].Status == "pending" && jobs["lint"].Status == "pending"
			})
			n.finish(jobs["lint"].ID, ci.StatusFailed) // allowed to fail
			n.finish(jobs["unit"].ID, ci.StatusSuccess)
			waitFor(t, "deploy stage", func() bool { jobs = n.jobs(proj.ID, p1.ID); return jobs["deploy"].Status == "manual" })

			// The bridge created a child pipeline and follows it.
			var bridges []struct {
				ID                 int64         `json:"id"`
				Status             string        `json:"status"`
				DownstreamPipeline *pipelineJSON `json:"downstream_pipeline"`
			}
			waitFor(t, "child pipeline", func() bool {
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d/bridges", proj.ID, p1.ID), nil, &bridges)
				// The downstream link and the bridge's own move are two steps.
				return len(bridges) == 1 && bridges[0].DownstreamPipeline != nil && bridges[0].Status == "running"
			})
			child := bridges[0].DownstreamPipeline
			if bridges[0].Status != "running" || child.Source != "parent_pipeline" {
				t.Fatalf("bridge %+v child %+v", bridges[0], child)
			}
			var cj map[string]jobJSON
			waitFor(t, "child job pending", func() bool { cj = n.jobs(proj.ID, child.ID); return cj["child-job"].Status == "pending" })
			n.finish(cj["child-job"].ID, ci.StatusSuccess)
			waitFor(t, "bridge success", func() bool {
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d/bridges", proj.ID, p1.ID), nil, &bridges)
				return bridges[0].Status == "success"
			})
			var got pipelineJSON
			waitFor(t, "pipeline success", func() bool {
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, p1.ID), nil, &got)
				return got.Status == "success"
			})

			// A second push: a second pipeline with the right before_sha.
			os.WriteFile(filepath.Join(work, "README"), []byte("hi\n"), 0o644)
			git(t, work, "add", ".")
			git(t, work, "commit", "-q", "-m", "README")
			second := git(t, work, "rev-parse", "HEAD")
			git(t, work, "push", "-q", "origin", "main")
			waitFor(t, "second pipeline", func() bool { pls = n.pipelines(proj.ID); return len(pls) >= 3 })
			var p2 *pipelineJSON
			for i := range pls {
				if pls[i].Source == "push" && pls[i].SHA == second {
					p2 = &pls[i]
				}
			}
			if p2 != nil {
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, p2.ID), nil, p2)
			}
			if p2 == nil || p2.BeforeSHA != first {
				t.Fatalf("second pipeline: %+v", pls)
			}

			// A failing build skips what depends on it.
			// The pipeline is listed before its processor has queued the first stage.
			waitFor(t, "build pending", func() bool { jobs = n.jobs(proj.ID, p2.ID); return jobs["build"].Status == "pending" })
			n.finish(jobs["build"].ID, ci.StatusFailed)
			waitFor(t, "skips", func() bool {
				jobs = n.jobs(proj.ID, p2.ID)
				return jobs["unit"].Status == "skipped" && jobs["deploy"].Status == "skipped"
			})
			waitFor(t, "failed pipeline", func() bool {
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, p2.ID), nil, &got)
				return got.Status == "failed"
			})

			// The Files and Commits APIs make commits git log shows, with pipelines.
			if code := n.api("POST", fmt.Sprintf("/projects/%d/repository/files/docs%%2Fa.md", proj.ID), map[string]any{
				"branch": "main", "content": "# A\n", "commit_message": "Add docs"}, nil); code != 201 {
				t.Fatalf("files API %d", code)
			}
			var commit struct {
				ID string `json:"id"`
			}
			if code := n.api("POST", fmt.Sprintf("/projects/%d/repository/commits", proj.ID), map[string]any{
				"branch": "feature", "start_branch": "main", "commit_message": "Feature work",
				"actions": []map[string]any{{"action": "create", "file_path": "f.txt", "content": "x"}, {"action": "move", "file_path": "docs/b.md", "previous_path": "docs/a.md"}},
			}, &commit); code != 201 || len(commit.ID) != 40 {
				t.Fatalf("commits API %d %+v", code, commit)
			}
			git(t, work, "fetch", "-q", "origin")
			if log := git(t, work, "log", "--format=%s", "origin/feature"); !strings.HasPrefix(log, "Feature work\nAdd docs\nREADME") {
				t.Fatalf("git log: %q", log)
			}
			waitFor(t, "feature pipeline", func() bool {
				for _, p := range n.pipelines(proj.ID) {
					if p.Ref == "feature" && p.SHA == commit.ID {
						return true
					}
				}
				return false
			})
			var branches []struct{ Name string }
			n.api("GET", fmt.Sprintf("/projects/%d/repository/branches", proj.ID), nil, &branches)
			if len(branches) != 2 || branches[0].Name != "feature" || branches[1].Name != "main" {
				t.Fatalf("branches %+v", branches)
			}
			// One push of several refs: one pipeline per ref.
			git(t, work, "branch", "b1")
			git(t, work, "tag", "v1.0")
			before := len(n.pipelines(proj.ID))
			git(t, work, "push", "-q", "origin", "b1", "v1.0")
			waitFor(t, "a pipeline per pushed ref", func() bool {
				refs := map[string]bool{}
				for _, p := range n.pipelines(proj.ID) {
					refs[p.Ref] = true
				}
				return refs["b1"] && refs["v1.0"] && len(n.pipelines(proj.ID)) == before+2
			})
			// A running job's token reads its project over git; a finished one's does not.
			jobs = n.jobs(proj.ID, p2.ID)
			var running int64
			for _, p := range n.pipelines(proj.ID) {
				if p.Ref == "b1" {
					waitFor(t, "b1 build pending", func() bool { return n.jobs(proj.ID, p.ID)["build"].Status == "pending" })
					running = n.jobs(proj.ID, p.ID)["build"].ID
				}
			}
			ctx := context.Background()
			if _, err := n.app.Store.TransitionJob(ctx, store.TransitionParams{JobID: running, From: ci.StatusPending, To: ci.StatusRunning, Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			if err := n.app.Store.SetJobToken(ctx, running, ci.HashToken("glcbt-e2e-job-token")); err != nil {
				t.Fatal(err)
			}
			jobURL, _ := url.Parse(proj.HTTP)
			jobURL.User = url.UserPassword("gitlab-ci-token", "glcbt-e2e-job-token")
			if out := git(t, dir, "ls-remote", jobURL.String()); !strings.Contains(out, "refs/heads/main") {
				t.Fatalf("job token ls-remote: %s", out)
			}
			if _, err := n.app.Store.TransitionJob(ctx, store.TransitionParams{JobID: running, From: ci.StatusRunning, To: ci.StatusSuccess, Now: time.Now()}); err != nil {
				t.Fatal(err)
			}
			cmd = exec.Command("git", "ls-remote", jobURL.String())
			cmd.Env = append(os.Environ(), "GIT_TERMINAL_PROMPT=0", "GIT_CONFIG_NOSYSTEM=1", "HOME="+dir)
			if out, err := cmd.CombinedOutput(); err == nil {
				t.Fatalf("a finished job's token still reads the repository: %s", out)
			}
			// Deleting a ref creates no pipeline.
			before = len(n.pipelines(proj.ID))
			git(t, work, "push", "-q", "origin", "--delete", "feature")
			time.Sleep(200 * time.Millisecond)
			if after := len(n.pipelines(proj.ID)); after != before {
				t.Fatalf("ref deletion created a pipeline: %d → %d", before, after)
			}
		})
	}
}
