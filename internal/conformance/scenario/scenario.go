// Package scenario builds a live world for the client conformance suites:
// a whole gantry node on 127.0.0.1 where users, tokens, a nested group, a
// project and memberships are created through the API, a .gitlab-ci.yml is
// pushed with git over smart HTTP, and the pipeline is run by the real
// `gantry runner` binary (shell executor). Then a job is canceled, a manual
// job played with a variable, a failed job retried and a finished job
// erased, all through the API. Document describes the result, so harnesses
// in any language can assert on values.
package scenario

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
	"runtime"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/config"
	"gantry/internal/testenv"
)

// rootToken is root's token on the scenario node.
const rootToken = "glpat-scenario-root-0123456789abcdef"

// settleTimeout bounds each wait for the pipeline to reach a state; it
// is a guard against a hang, not a measurement.
const settleTimeout = 30 * time.Second

// User is a scenario user.
type User struct {
	ID       int64  `json:"id"`
	Username string `json:"username"`
}

// Job is a job as the scenario expects clients to see it.
type Job struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Stage         string `json:"stage"`
	Status        string `json:"status"`
	AllowFailure  bool   `json:"allow_failure"`
	FailureReason string `json:"failure_reason,omitempty"`
	PipelineID    int64  `json:"pipeline_id"`
}

// Bridge is the trigger job and its child pipeline.
type Bridge struct {
	Job
	DownstreamPipelineID int64 `json:"downstream_pipeline_id"`
}

// JunitTotals are the pipeline's test report totals.
type JunitTotals struct {
	Total     int     `json:"total_count"`
	Success   int     `json:"success_count"`
	Failed    int     `json:"failed_count"`
	Skipped   int     `json:"skipped_count"`
	Error     int     `json:"error_count"`
	TotalTime float64 `json:"total_time"`
	Suite     string  `json:"suite_name"`
	JobID     int64   `json:"job_id"`
}

// Document is everything a client needs to assert on the scenario.
type Document struct {
	URL string `json:"url"`
	// Tokens by role: root (admin), developer, guest, reporter,
	// maintainer, outsider (no membership).
	Tokens map[string]string `json:"tokens"`
	Users  map[string]User   `json:"users"`

	GroupID     int64    `json:"group_id"`
	SubgroupID  int64    `json:"subgroup_id"`
	ProjectID   int64    `json:"project_id"`
	ProjectPath string   `json:"project_path"`
	SHA         string   `json:"sha"`
	Ref         string   `json:"ref"`
	Stages      []string `json:"stages"`

	PipelineID          int64  `json:"pipeline_id"`
	PipelineStatus      string `json:"pipeline_status"`
	ChildPipelineID     int64  `json:"child_pipeline_id"`
	ChildPipelineStatus string `json:"child_pipeline_status"`
	// Jobs are the parent pipeline's builds by name (latest attempts).
	Jobs      map[string]Job `json:"jobs"`
	ChildJobs map[string]Job `json:"child_jobs"`
	Bridge    Bridge         `json:"bridge"`
	// Build ids, id descending: the parent pipeline's latest attempts,
	// the same with retried attempts, and every build of the project.
	PipelineBuildIDs            []int64  `json:"pipeline_build_ids"`
	PipelineBuildIDsWithRetried []int64  `json:"pipeline_build_ids_with_retried"`
	ProjectBuildIDs             []int64  `json:"project_build_ids"`
	ProjectBuildStatuses        []string `json:"project_build_statuses"`

	RetriedName   string `json:"retried_name"`
	RetriedOldID  int64  `json:"retried_old_id"`
	RetriedNewID  int64  `json:"retried_new_id"`
	ErasedJobID   int64  `json:"erased_job_id"`
	CanceledJobID int64  `json:"canceled_job_id"`

	PlayedJobID    int64  `json:"played_job_id"`
	PlayedVariable string `json:"played_variable"`
	PlayedValue    string `json:"played_value"`

	// WhoamiJobID's log holds the answer of GET /job with its own token.
	WhoamiJobID int64 `json:"whoami_job_id"`
	// Traces are substrings each job's log must contain, by job id.
	Traces map[int64][]string `json:"traces"`

	ArtifactJobID   int64  `json:"artifact_job_id"`
	ArtifactJobName string `json:"artifact_job_name"`
	ArtifactPath    string `json:"artifact_path"`
	ArtifactContent string `json:"artifact_content"`
	// BinaryArtifactPath is served as application/octet-stream.
	BinaryArtifactPath    string `json:"binary_artifact_path"`
	BinaryArtifactContent string `json:"binary_artifact_content"`
	StableBinaryContent   string `json:"stable_binary_content"`
	// ArtifactArchive is the archive's file name in artifacts_file.
	ArtifactArchive string `json:"artifact_archive"`
	// The branch stable's pipeline (one build job) succeeded: artifacts by
	// ref come from it (main's pipeline has not succeeded).
	StableRef             string `json:"stable_ref"`
	StablePipelineID      int64  `json:"stable_pipeline_id"`
	StableJobID           int64  `json:"stable_job_id"`
	StableArtifactContent string `json:"stable_artifact_content"`

	Junit JunitTotals `json:"junit"`

	// JobToken belongs to the job `hold`, which keeps running.
	JobToken      string `json:"job_token"`
	JobTokenJobID int64  `json:"job_token_job_id"`

	// Jobs left for the clients' own actions.
	ToPlay   int64 `json:"to_play"`
	ToRetry  int64 `json:"to_retry"`
	ToCancel int64 `json:"to_cancel"`
	ToErase  int64 `json:"to_erase"`

	RunnerID int64 `json:"runner_id"`
}

// JSON is the document for harnesses in other languages.
func (d *Document) JSON() []byte {
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		panic(err)
	}
	return b
}

// Binary builds cmd/gantry once into a directory of t and returns its path;
// every scenario of the test runs that binary as its runner.
func Binary(t testing.TB) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	root := filepath.Join(filepath.Dir(file), "..", "..", "..")
	bin := filepath.Join(t.TempDir(), "gantry")
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "./cmd/gantry")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/gantry: %v\n%s", err, out)
	}
	return bin
}

// builder holds what building the scenario needs.
type builder struct {
	t    testing.TB
	base string
	doc  *Document
}

// phase logs how long the part of the build since *start took (for
// whoever wonders where the seconds go; nothing asserts on it).
func (bd *builder) phase(what string, start *time.Time) {
	bd.t.Logf("scenario: %s took %v", what, time.Since(*start).Round(time.Millisecond))
	*start = time.Now()
}

// Build starts a node on b's store, builds the scenario on it with the
// gantry binary bin as runner, and returns its document. The node and the
// runner stop when t ends.
func Build(t testing.TB, b testenv.Backend, bin string) *Document {
	t.Helper()
	bd := &builder{t: t, doc: &Document{Tokens: map[string]string{"root": rootToken}, Users: map[string]User{}, Ref: "main",
		Stages: []string{"build", "test", "deploy"}, Traces: map[int64][]string{}}}
	start := time.Now()
	bd.startNode(b)
	bd.doc.URL = bd.base
	bd.people()
	bd.push()
	bd.phase("node, people and push", &start)
	bd.run(bin, &start)
	return bd.doc
}

func (bd *builder) startNode(b testenv.Backend) {
	t := bd.t
	st := b.Open(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	bd.base = "http://" + l.Addr().String()
	cfg := config.Defaults()
	cfg.DataDir, cfg.ExternalURL, cfg.InitialRootToken, cfg.Listen = t.TempDir(), bd.base, rootToken, l.Addr().String()
	ctx, cancel := context.WithCancel(context.Background())
	a, err := app.New(ctx, cfg, app.Options{Store: st})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if _, err := a.Bootstrap(ctx); err != nil {
		cancel()
		t.Fatal(err)
	}
	a.Start(ctx)
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		cancel()
		_ = srv.Close()
		_ = a.Close()
	})
}

// call sends a JSON request as token and decodes the answer into out; a
// status other than want fails the test.
func (bd *builder) call(token, method, path string, body any, want int, out any) {
	bd.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, bd.base+"/api/v4"+path, rd)
	req.Header.Set("PRIVATE-TOKEN", token)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		bd.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode != want {
		bd.t.Fatalf("scenario: %s %s = %d, want %d: %s", method, path, res.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			bd.t.Fatalf("scenario: %s %s: %v: %s", method, path, err, raw)
		}
	}
}

func (bd *builder) root(method, path string, body any, want int, out any) {
	bd.t.Helper()
	bd.call(rootToken, method, path, body, want, out)
}

// people creates users of every role with tokens, a nested group, the
// project and the memberships: developer through the top group,
// maintainer through the subgroup, guest and reporter on the project.
func (bd *builder) people() {
	d := bd.doc
	var me struct {
		ID       int64
		Username string
	}
	bd.root("GET", "/user", nil, 200, &me)
	d.Users["root"] = User{ID: me.ID, Username: me.Username}
	for _, u := range []struct{ role, name string }{
		{"developer", "alice"}, {"guest", "gina"}, {"reporter", "remy"}, {"maintainer", "maya"}, {"outsider", "otto"},
	} {
		var created User
		bd.root("POST", "/users", map[string]any{"username": u.name, "name": strings.ToUpper(u.name[:1]) + u.name[1:] + " Example",
			"email": u.name + "@example.com"}, 201, &created)
		var tok struct{ Token string }
		bd.root("POST", fmt.Sprintf("/users/%d/personal_access_tokens", created.ID), map[string]any{"name": "conformance", "scopes": []string{"api"}}, 201, &tok)
		d.Users[u.role], d.Tokens[u.role] = created, tok.Token
	}
	var group, sub struct{ ID int64 }
	bd.root("POST", "/groups", map[string]any{"name": "Acme", "path": "acme"}, 201, &group)
	bd.root("POST", "/groups", map[string]any{"name": "Tools", "path": "tools", "parent_id": group.ID}, 201, &sub)
	d.GroupID, d.SubgroupID = group.ID, sub.ID
	var proj struct {
		ID       int64  `json:"id"`
		FullPath string `json:"path_with_namespace"`
	}
	bd.root("POST", "/projects", map[string]any{"name": "App Core", "path": "app.core", "namespace_id": sub.ID, "public_jobs": false}, 201, &proj)
	d.ProjectID, d.ProjectPath = proj.ID, proj.FullPath
	member := func(path string, role string, level int) {
		bd.root("POST", path, map[string]any{"user_id": d.Users[role].ID, "access_level": level}, 201, nil)
	}
	member(fmt.Sprintf("/groups/%d/members", group.ID), "developer", 30)
	member(fmt.Sprintf("/groups/%d/members", sub.ID), "maintainer", 40)
	member(fmt.Sprintf("/projects/%d/members", proj.ID), "guest", 10)
	member(fmt.Sprintf("/projects/%d/members", proj.ID), "reporter", 20)
}

// git runs git in dir with a clean configuration.
func (bd *builder) git(dir string, args ...string) string {
	bd.t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null", "HOME="+dir, "GIT_TERMINAL_PROMPT=0",
		"GIT_AUTHOR_NAME=Alice Example", "GIT_AUTHOR_EMAIL=alice@example.com", "GIT_COMMITTER_NAME=Alice Example", "GIT_COMMITTER_EMAIL=alice@example.com")
	out, err := cmd.CombinedOutput()
	if err != nil {
		bd.t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// push clones the empty project as the developer and pushes the CI
// configuration, the child pipeline's file and a README to main, and a
// branch stable with a one-job configuration.
func (bd *builder) push() {
	d := bd.doc
	u, _ := url.Parse(bd.base + "/" + d.ProjectPath + ".git")
	u.User = url.UserPassword("alice", d.Tokens["developer"])
	dir := bd.t.TempDir()
	bd.git(dir, "clone", "-q", u.String(), "work")
	work := filepath.Join(dir, "work")
	bd.git(work, "checkout", "-q", "-b", "main")
	for name, content := range map[string]string{".gitlab-ci.yml": CIYAML, "child.yml": ChildYAML, "README.md": "# App Core\n"} {
		if err := os.WriteFile(filepath.Join(work, name), []byte(content), 0o644); err != nil {
			bd.t.Fatal(err)
		}
	}
	bd.git(work, "add", ".")
	bd.git(work, "commit", "-q", "-m", "Add CI")
	d.SHA = bd.git(work, "rev-parse", "HEAD")
	bd.git(work, "checkout", "-q", "-b", StableRef)
	if err := os.WriteFile(filepath.Join(work, ".gitlab-ci.yml"), []byte(StableYAML), 0o644); err != nil {
		bd.t.Fatal(err)
	}
	bd.git(work, "commit", "-q", "-am", "Stable CI")
	bd.git(work, "push", "-q", "origin", "main", StableRef)
}

type apiJob struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Stage         string `json:"stage"`
	Status        string `json:"status"`
	AllowFailure  bool   `json:"allow_failure"`
	FailureReason string `json:"failure_reason"`
	Pipeline      struct {
		ID int64 `json:"id"`
	} `json:"pipeline"`
	DownstreamPipeline *struct {
		ID     int64  `json:"id"`
		Status string `json:"status"`
	} `json:"downstream_pipeline"`
}

func (j apiJob) job() Job {
	return Job{ID: j.ID, Name: j.Name, Stage: j.Stage, Status: j.Status, AllowFailure: j.AllowFailure, FailureReason: j.FailureReason, PipelineID: j.Pipeline.ID}
}

// pipelineJobs lists a pipeline's builds (or bridges) as root.
func (bd *builder) pipelineJobs(pipelineID int64, what string, retried bool) []apiJob {
	bd.t.Helper()
	var out []apiJob
	bd.root("GET", fmt.Sprintf("/projects/%d/pipelines/%d/%s?per_page=100&include_retried=%t", bd.doc.ProjectID, pipelineID, what, retried), nil, 200, &out)
	return out
}

func byName(jobs []apiJob) map[string]apiJob {
	m := map[string]apiJob{}
	for _, j := range jobs {
		m[j.Name] = j
	}
	return m
}

// waitFor polls cond until it holds; after settleTimeout the test fails
// with what and the last state cond described.
func (bd *builder) waitFor(what string, cond func() (bool, string)) {
	bd.t.Helper()
	deadline := time.Now().Add(settleTimeout)
	for {
		ok, state := cond()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			bd.t.Fatalf("scenario: %s did not happen within %v; last state: %s", what, settleTimeout, state)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func statuses(m map[string]apiJob) string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%s ", n, m[n].Status)
	}
	return b.String()
}

// startRunner creates an instance runner through the API and starts the
// gantry binary as that runner; it is stopped (gracefully, killing its
// jobs) before the node.
func (bd *builder) startRunner(bin string) string {
	t := bd.t
	var rn struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	bd.root("POST", "/user/runners", map[string]any{"runner_type": "instance_type", "description": "scenario runner", "run_untagged": true}, 201, &rn)
	bd.doc.RunnerID = rn.ID
	builds := t.TempDir()
	cmd := exec.Command(bin, "runner", "--url", bd.base, "--token", rn.Token, "--concurrent", "8", "--builds-dir", builds,
		"--name", "scenario-runner", "--shutdown-timeout", "1s", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0")
	var logs bytes.Buffer
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start gantry runner: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-done
			t.Logf("gantry runner did not stop on SIGTERM; killed. Its output:\n%s", logs.String())
		}
	})
	return builds
}

// run starts the runner, lets the pipeline settle, performs the actions
// and records the outcome.
func (bd *builder) run(bin string, start *time.Time) {
	t, d := bd.t, bd.doc
	builds := bd.startRunner(bin)
	var pls []struct {
		ID     int64  `json:"id"`
		SHA    string `json:"sha"`
		Ref    string `json:"ref"`
		Source string `json:"source"`
		Status string `json:"status"`
	}
	bd.waitFor("the push's pipelines", func() (bool, string) {
		bd.root("GET", fmt.Sprintf("/projects/%d/pipelines", d.ProjectID), nil, 200, &pls)
		return len(pls) == 2, fmt.Sprintf("%d pipelines", len(pls))
	})
	for _, pl := range pls {
		switch {
		case pl.Ref == "main" && pl.SHA == d.SHA && pl.Source == "push":
			d.PipelineID = pl.ID
		case pl.Ref == StableRef && pl.Source == "push":
			d.StablePipelineID = pl.ID
		}
	}
	if d.PipelineID == 0 || d.StablePipelineID == 0 {
		t.Fatalf("scenario: pipelines %+v, want one of main at %s and one of %s", pls, d.SHA, StableRef)
	}

	// The long job is canceled once it runs.
	var jobs map[string]apiJob
	bd.waitFor("long running", func() (bool, string) {
		jobs = byName(bd.pipelineJobs(d.PipelineID, "jobs", false))
		if jobs["long"].Status == "running" {
			return true, ""
		}
		var pl struct {
			Status     string  `json:"status"`
			YamlErrors *string `json:"yaml_errors"`
		}
		bd.root("GET", fmt.Sprintf("/projects/%d/pipelines/%d", d.ProjectID, d.PipelineID), nil, 200, &pl)
		errs := ""
		if pl.YamlErrors != nil {
			errs = *pl.YamlErrors
		}
		return false, fmt.Sprintf("pipeline %s %q; jobs %s", pl.Status, errs, statuses(jobs))
	})
	var canceled apiJob
	bd.call(d.Tokens["developer"], "POST", fmt.Sprintf("/projects/%d/jobs/%d/cancel", d.ProjectID, jobs["long"].ID), nil, 201, &canceled)
	d.CanceledJobID = canceled.ID
	bd.phase("runner start to long running", start)

	settled := func(want map[string]string) func() (bool, string) {
		return func() (bool, string) {
			jobs = byName(bd.pipelineJobs(d.PipelineID, "jobs", false))
			for name, st := range want {
				if jobs[name].Status != st {
					return false, statuses(jobs)
				}
			}
			return true, ""
		}
	}
	bd.waitFor("the pipeline to settle", settled(map[string]string{
		"build": "success", "unit": "success", "broken": "failed", "flaky": "failed", "whoami": "success", "long": "canceled",
		"spare": "success", "deploy": "manual", "approve": "manual", "hold": "running", "late": "skipped",
	}))
	var bridges []apiJob
	bd.waitFor("the child pipeline to succeed", func() (bool, string) {
		bridges = bd.pipelineJobs(d.PipelineID, "bridges", false)
		ok := len(bridges) == 1 && bridges[0].Status == "success" && bridges[0].DownstreamPipeline != nil
		return ok, fmt.Sprintf("%+v", bridges)
	})
	d.ChildPipelineID = bridges[0].DownstreamPipeline.ID

	// The held job wrote its token into the builds directory.
	tokenFile := filepath.Join(builds, "hold.token")
	bd.waitFor("the held job's token", func() (bool, string) {
		b, err := os.ReadFile(tokenFile)
		d.JobToken = strings.TrimSpace(string(b))
		return err == nil && strings.HasPrefix(d.JobToken, "glcbt-"), fmt.Sprint(err)
	})
	d.JobTokenJobID = jobs["hold"].ID
	bd.phase("settling", start)

	// Actions: play with a variable, retry the failed job, erase a
	// finished one.
	dev := d.Tokens["developer"]
	d.PlayedJobID, d.PlayedVariable, d.PlayedValue = jobs["deploy"].ID, DeployVariable, DeployValue
	bd.call(dev, "POST", fmt.Sprintf("/projects/%d/jobs/%d/play", d.ProjectID, d.PlayedJobID),
		map[string]any{"job_variables_attributes": []map[string]string{{"key": DeployVariable, "value": DeployValue}}}, 200, nil)
	var retried apiJob
	d.RetriedName, d.RetriedOldID = "broken", jobs["broken"].ID
	bd.call(dev, "POST", fmt.Sprintf("/projects/%d/jobs/%d/retry", d.ProjectID, d.RetriedOldID), nil, 201, &retried)
	d.RetriedNewID = retried.ID
	d.ErasedJobID = jobs["flaky"].ID
	bd.call(d.Tokens["maintainer"], "POST", fmt.Sprintf("/projects/%d/jobs/%d/erase", d.ProjectID, d.ErasedJobID), nil, 201, nil)
	bd.waitFor("the played and retried jobs to finish", settled(finalStatus))
	var stable []apiJob
	bd.waitFor("the stable pipeline to succeed", func() (bool, string) {
		stable = bd.pipelineJobs(d.StablePipelineID, "jobs", false)
		return len(stable) == 1 && stable[0].Status == "success", fmt.Sprintf("%+v", stable)
	})
	d.StableRef, d.StableJobID, d.StableArtifactContent = StableRef, stable[0].ID, StableContent
	bd.phase("actions and their jobs", start)
	if jobs["broken"].ID != d.RetriedNewID {
		t.Fatalf("scenario: latest broken is %d, want the retry %d", jobs["broken"].ID, d.RetriedNewID)
	}
	bd.record(jobs, bridges[0])
	bd.phase("recording and checking", start)
}

// record fills the document from the settled pipelines and checks the
// scenario came out as designed, so a client failure is a client's.
func (bd *builder) record(jobs map[string]apiJob, bridge apiJob) {
	t, d := bd.t, bd.doc
	d.Jobs = map[string]Job{}
	for name, j := range jobs {
		if want := finalStatus[name]; j.Status != want {
			t.Fatalf("scenario: job %s is %s, want %s", name, j.Status, want)
		}
		d.Jobs[name] = j.job()
	}
	if len(jobs) != len(finalStatus) {
		t.Fatalf("scenario: jobs %s, want %d", statuses(jobs), len(finalStatus))
	}
	d.Bridge = Bridge{Job: bridge.job(), DownstreamPipelineID: bridge.DownstreamPipeline.ID}
	d.ChildJobs = map[string]Job{}
	child := bd.pipelineJobs(d.ChildPipelineID, "jobs", true)
	for _, j := range child {
		d.ChildJobs[j.Name] = j.job()
	}
	if len(child) != 1 || child[0].Name != "child-test" || child[0].Status != "success" {
		t.Fatalf("scenario: child pipeline jobs %+v", child)
	}
	ids := func(js []apiJob) []int64 {
		out := make([]int64, len(js))
		for i, j := range js {
			out[i] = j.ID
		}
		return out
	}
	d.PipelineBuildIDs = ids(bd.pipelineJobs(d.PipelineID, "jobs", false))
	withRetried := bd.pipelineJobs(d.PipelineID, "jobs", true)
	d.PipelineBuildIDsWithRetried = ids(withRetried)
	all := append(append(withRetried, child...), bd.pipelineJobs(d.StablePipelineID, "jobs", true)...)
	sort.Slice(all, func(i, j int) bool { return all[i].ID > all[j].ID })
	for _, j := range all {
		d.ProjectBuildIDs = append(d.ProjectBuildIDs, j.ID)
		d.ProjectBuildStatuses = append(d.ProjectBuildStatuses, j.Status)
	}
	if !slices.IsSortedFunc(d.PipelineBuildIDs, func(a, b int64) int { return int(b - a) }) || len(d.PipelineBuildIDsWithRetried) != len(d.PipelineBuildIDs)+1 {
		t.Fatalf("scenario: pipeline build ids %v, with retried %v", d.PipelineBuildIDs, d.PipelineBuildIDsWithRetried)
	}
	var pl struct{ Status string }
	bd.root("GET", fmt.Sprintf("/projects/%d/pipelines/%d", d.ProjectID, d.PipelineID), nil, 200, &pl)
	d.PipelineStatus = pl.Status
	bd.root("GET", fmt.Sprintf("/projects/%d/pipelines/%d", d.ProjectID, d.ChildPipelineID), nil, 200, &pl)
	d.ChildPipelineStatus = pl.Status
	if d.PipelineStatus != "running" || d.ChildPipelineStatus != "success" {
		t.Fatalf("scenario: pipeline %s, child %s; want running (hold runs) and success", d.PipelineStatus, d.ChildPipelineStatus)
	}

	d.WhoamiJobID = jobs["whoami"].ID
	d.ArtifactJobID, d.ArtifactJobName, d.ArtifactPath, d.ArtifactContent, d.ArtifactArchive = jobs["build"].ID, "build", ArtifactPath, ArtifactContent, "artifacts.zip"
	d.BinaryArtifactPath, d.BinaryArtifactContent, d.StableBinaryContent = BinaryPath, BinaryContent, StableBinary
	d.Junit = Junit
	d.Junit.JobID = jobs["unit"].ID
	d.ToPlay, d.ToRetry, d.ToCancel, d.ToErase = jobs["approve"].ID, d.RetriedNewID, jobs["hold"].ID, jobs["spare"].ID
	d.Traces = map[int64][]string{
		jobs["build"].ID:             {"hello from build", "Job succeeded"},
		jobs["unit"].ID:              {"scenario artifact on main"},
		d.RetriedOldID:               {fmt.Sprintf("broken attempt %d", d.RetriedOldID), "ERROR: Job failed: exit code 1"},
		d.RetriedNewID:               {fmt.Sprintf("broken attempt %d", d.RetriedNewID), "ERROR: Job failed: exit code 1"},
		d.WhoamiJobID:                {fmt.Sprintf(`{"id":%d,`, d.WhoamiJobID), `"name":"whoami"`, `"status":"running"`},
		d.PlayedJobID:                {"deploying to " + DeployValue},
		jobs["spare"].ID:             {"spare job for the clients"},
		d.ChildJobs["child-test"].ID: {"child says hi"},
	}
	for id, wants := range d.Traces {
		log := bd.trace(id)
		for _, w := range wants {
			if !strings.Contains(log, w) {
				t.Fatalf("scenario: log of job %d lacks %q:\n%s", id, w, log)
			}
		}
	}
	if log := bd.trace(d.ErasedJobID); log != "" {
		t.Fatalf("scenario: erased job %d still has a log: %q", d.ErasedJobID, log)
	}
}

func (bd *builder) trace(jobID int64) string {
	bd.t.Helper()
	req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v4/projects/%d/jobs/%d/trace", bd.base, bd.doc.ProjectID, jobID), nil)
	req.Header.Set("PRIVATE-TOKEN", rootToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		bd.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 {
		bd.t.Fatalf("scenario: trace of %d: %d %s", jobID, res.StatusCode, b)
	}
	return string(b)
}
