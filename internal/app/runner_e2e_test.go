package app_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gantry/internal/config"
	"gantry/internal/runner"
	"gantry/internal/testenv"
)

const e2eYAML = `stages: [build, test, deploy]
variables:
  GREETING: hello
build:
  stage: build
  script:
    - mkdir -p out
    - echo "built $CI_COMMIT_SHORT_SHA" > out/result.txt
    - echo "$GREETING from $CI_JOB_NAME"
  artifacts:
    paths: [out/]
unit:
  stage: test
  script:
    - cat out/result.txt
    - test -f README.md
    - 'echo "Coverage: 87.5%"' 
  coverage: '/Coverage: \d+\.\d+/'
flaky:
  stage: test
  script:
    - echo "about to fail"
    - exit 3
  allow_failure: true
broken:
  stage: test
  script: [false]
deploy:
  stage: deploy
  script: [echo deploying]
  when: manual
`

func TestGantryRunnerEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { runnerEndToEnd(t, startNode(t, b)) })
	}
}

// TestObjectStoreEndToEnd runs the same pipeline with blobs on S3
// (versitygw), configured the way an operator does: URL and keys.
func TestObjectStoreEndToEnd(t *testing.T) {
	srv := testenv.S3(t)
	o := srv.NewBucket(t)
	n := startNodeWith(t, testenv.Backends(t)[0], func(cfg *config.Config) {
		url := fmt.Sprintf("s3://%s/ci?endpoint=%s&region=us-east-1&insecure=true&path_style=true", o.Bucket, o.Endpoint)
		store, err := config.ParseObjectStoreURL(url, o.AccessKey, o.SecretKey)
		if err != nil {
			t.Fatal(err)
		}
		cfg.ObjectStoreURL, cfg.ObjectStore = url, store
	})
	runnerEndToEnd(t, n)
	objects, err := srv.Contents(context.Background(), o.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if len(objects) == 0 || !strings.HasPrefix(objects[0], "ci/") {
		t.Fatalf("the artifacts did not go to the bucket: %q", objects)
	}
	if _, err := os.Stat(filepath.Join(n.app.Config.DataDir, "blobs")); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("blobs written under the data dir too: %v", err)
	}
}

func runnerEndToEnd(t *testing.T, n *node) {
	var proj struct{ ID int64 }
	n.api("POST", "/projects", map[string]any{"name": "demo"}, &proj)
	n.api("POST", fmt.Sprintf("/projects/%d/repository/commits", proj.ID), map[string]any{"branch": "main", "commit_message": "init",
		"actions": []map[string]any{{"action": "create", "file_path": "README.md", "content": "demo\n"}, {"action": "create", "file_path": ".gitlab-ci.yml", "content": e2eYAML}}}, nil)
	token := n.newRunner()
	ctx, cancel := context.WithCancel(context.Background())
	r, err := runner.New(runner.Config{URL: n.base, Token: token, Concurrent: 2, BuildsDir: t.TempDir(), UpdateInterval: 200 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	defer func() {
		cancel()
		<-done
	}()
	var pls []pipelineJSON
	waitFor(t, "pipeline", func() bool { pls = n.pipelines(proj.ID); return len(pls) == 1 })
	pid := pls[0].ID
	var jobs map[string]jobJSON
	deadline := time.Now().Add(60 * time.Second)
	for {
		jobs = n.jobs(proj.ID, pid)
		if jobs["unit"].Status == "success" && jobs["flaky"].Status == "failed" && jobs["broken"].Status == "failed" && jobs["deploy"].Status == "skipped" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("jobs did not finish: %+v", jobs)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if jobs["build"].Status != "success" {
		t.Fatalf("build %+v", jobs["build"])
	}
	var full map[string]any
	n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", proj.ID, jobs["build"].ID), nil, &full)
	if full["runner"] == nil || full["runner_manager"] == nil || full["duration"] == nil || full["artifacts_file"] == nil || full["started_at"] == nil {
		t.Fatalf("build job fields %v", full)
	}
	trace := func(id int64) string {
		req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v4/projects/%d/jobs/%d/trace", n.base, proj.ID, id), nil)
		req.Header.Set("PRIVATE-TOKEN", rootToken)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return string(b)
	}
	if log := trace(jobs["build"].ID); !strings.Contains(log, "hello from build") {
		t.Fatalf("build log: %q", log)
	}
	if log := trace(jobs["unit"].ID); !strings.Contains(log, "built ") {
		t.Fatalf("the artifact did not reach the next stage: %q", log)
	}
	n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", proj.ID, jobs["unit"].ID), nil, &full)
	if full["coverage"] != 87.5 {
		t.Fatalf("coverage %v", full["coverage"])
	}
	n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", proj.ID, jobs["flaky"].ID), nil, &full)
	if full["failure_reason"] != "script_failure" || full["allow_failure"] != true {
		t.Fatalf("flaky %v %v", full["failure_reason"], full["allow_failure"])
	}
	if log := trace(jobs["flaky"].ID); !strings.Contains(log, "about to fail") || !strings.Contains(log, "exit code 3") {
		t.Fatalf("flaky log %q", log)
	}
	var pl map[string]any
	waitFor(t, "pipeline failed", func() bool {
		n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", proj.ID, pid), nil, &pl)
		return pl["status"] == "failed"
	})
}
