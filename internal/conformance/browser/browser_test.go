// Package browser_test drives gantry's web UI in a real browser: Debian's
// chromium, headless, through playwright-core (installed by `npm ci` in
// web/e2e from its lockfile), running web/e2e/ui.mjs with node against a
// live gantry node whose pipeline a real gantry runner executes.
package browser_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/conformance/scriptrun"
	"gantry/internal/runner"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

const (
	chromium     = "/usr/bin/chromium"
	rootToken    = "glpat-browser-root-0123456789abcdef"
	rootPassword = "root-password-for-browsers"
)

// The slow job prints a line every 200 ms for two minutes: long enough to
// watch and cancel, never long enough to finish during the test.
const pipelineYAML = `stages: [build, test, deploy]
build:
  stage: build
  script:
    - mkdir -p out
    - echo "artifact content" > out/result.txt
  artifacts:
    paths: [out/]
slow:
  stage: test
  script:
    - 'for i in $(seq 1 600); do echo "tick $i"; sleep 0.2; done'
deploy:
  stage: deploy
  needs: [build]
  when: manual
  script:
    - echo "deploying with GREETING=$GREETING"
`

func TestBrowser(t *testing.T) {
	env := scriptrun.CleanEnv("NODE_OPTIONS", "NODE_PATH")
	script := scriptrun.RepoPath(t, "web", "e2e", "ui.mjs")
	_, err := os.Stat(chromium)
	if err == nil {
		_, err = scriptrun.Probe(env, "node", "-p", "require(require('path').join(process.argv[1], 'node_modules/playwright-core/package.json')).version", scriptrun.RepoPath(t, "web", "e2e"))
	}
	scriptrun.Require(t, err, "chromium or node with playwright-core is missing; apt-get install chromium nodejs npm and run `npm ci` in web/e2e (scripts/test does)")
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			fixture := startPipeline(t, b)
			scriptrun.RunFixture(t, scriptrun.Script{Client: "browser", Path: script, Command: []string{"node", script}, Env: env, Timeout: 4 * time.Minute}, b.Name, fixture)
		})
	}
}

type node struct {
	t    *testing.T
	base string
	st   store.Store
}

func (n *node) api(method, path string, body any, out any) {
	n.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, n.base+"/api/v4"+path, bytes.NewReader(b))
	req.Header.Set("PRIVATE-TOKEN", rootToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		n.t.Fatalf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			n.t.Fatal(err)
		}
	}
}

// startPipeline starts a node and a runner, pushes the pipeline, waits
// until its slow job is running, and returns the script's fixture.
func startPipeline(t *testing.T, b testenv.Backend) []byte {
	st := b.Open(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	cfg := config.Defaults()
	cfg.DataDir, cfg.ExternalURL, cfg.Listen = t.TempDir(), base, l.Addr().String()
	cfg.InitialRootToken, cfg.InitialRootPassword = rootToken, rootPassword
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Bootstrap(ctx); err != nil {
		t.Fatal(err)
	}
	a.Start(ctx)
	srv := &http.Server{Handler: a.Handler()}
	go func() { _ = srv.Serve(l) }()
	n := &node{t: t, base: base, st: st}

	var proj struct {
		ID                int64
		PathWithNamespace string `json:"path_with_namespace"`
	}
	n.api("POST", "/projects", map[string]any{"name": "web", "visibility": "private"}, &proj)
	var rita struct{ ID int64 }
	n.api("POST", "/users", map[string]any{"username": "rita", "name": "Rita", "email": "rita@example.com", "password": "reporter-password"}, &rita)
	n.api("POST", fmt.Sprintf("/projects/%d/members", proj.ID), map[string]any{"user_id": rita.ID, "access_level": 20}, nil)
	var rn struct{ Token string }
	n.api("POST", "/user/runners", map[string]any{"runner_type": "instance_type", "description": "browser-runner"}, &rn)
	r, err := runner.New(runner.Config{URL: base, Token: rn.Token, Concurrent: 2, BuildsDir: t.TempDir(), UpdateInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		a.Close()
	})
	n.api("POST", fmt.Sprintf("/projects/%d/repository/commits", proj.ID), map[string]any{"branch": "main", "commit_message": "ci",
		"actions": []map[string]any{{"action": "create", "file_path": ".gitlab-ci.yml", "content": pipelineYAML}}}, nil)

	// Wait until build succeeded and slow has written some log.
	jobs := map[string]*ci.Job{}
	deadline := time.Now().Add(90 * time.Second)
	for {
		list, err := st.ListJobs(ctx, store.JobFilter{ProjectID: proj.ID, Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range list {
			jobs[j.Name] = j
		}
		var size int64
		if s := jobs["slow"]; s != nil && s.Status == ci.StatusRunning {
			size, _ = st.TraceSize(ctx, s.ID)
		}
		if jobs["build"] != nil && jobs["build"].Status == ci.StatusSuccess && jobs["deploy"] != nil && jobs["deploy"].Status == ci.StatusManual && size > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the pipeline did not get going: %+v", jobs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	fixture, _ := json.Marshal(map[string]any{
		"url": base, "chromium": chromium, "project": proj.PathWithNamespace, "pipeline_id": jobs["build"].PipelineID,
		"build_job_id": jobs["build"].ID, "slow_job_id": jobs["slow"].ID, "deploy_job_id": jobs["deploy"].ID,
		"admin":    map[string]string{"username": "root", "password": rootPassword},
		"reporter": map[string]string{"username": "rita", "password": "reporter-password"},
	})
	return fixture
}
