package app_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/testenv"
)

// raw sends a runner-protocol request and returns status, headers, body.
func (n *node) raw(method, path string, body []byte, headers map[string]string) (int, http.Header, []byte) {
	n.t.Helper()
	req, _ := http.NewRequest(method, n.base+"/api/v4"+path, bytes.NewReader(body))
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func (n *node) requestJob(token, lastUpdate string) (int, http.Header, map[string]any) {
	body := map[string]any{"token": token, "system_id": "s_0123456789ab", "info": map[string]any{"name": "test", "version": "17.9.3", "platform": "linux", "architecture": "amd64"}}
	if lastUpdate != "" {
		body["last_update"] = lastUpdate
	}
	b, _ := json.Marshal(body)
	code, h, raw := n.raw("POST", "/jobs/request", b, map[string]string{"Content-Type": "application/json"})
	var out map[string]any
	if code == 201 {
		if err := json.Unmarshal(raw, &out); err != nil {
			n.t.Fatalf("payload: %v %s", err, raw)
		}
	}
	return code, h, out
}

// setupProject creates a project whose main branch holds ci.
func (n *node) setupProject(name, ciYAML string) int64 {
	var proj struct{ ID int64 }
	n.api("POST", "/projects", map[string]any{"name": name}, &proj)
	if code := n.api("POST", fmt.Sprintf("/projects/%d/repository/files/.gitlab-ci.yml", proj.ID), map[string]any{"branch": "main", "content": ciYAML, "commit_message": "ci"}, nil); code != 201 {
		n.t.Fatalf("commit %d", code)
	}
	return proj.ID
}

func (n *node) newRunner(tags ...string) string {
	var out struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if code := n.api("POST", "/user/runners", map[string]any{"runner_type": "instance_type", "tag_list": strings.Join(tags, ","), "description": "t"}, &out); code != 201 || !strings.HasPrefix(out.Token, "glrt-") {
		n.t.Fatalf("create runner %d %+v", code, out)
	}
	return out.Token
}

func TestRunnerProtocol(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			token := n.newRunner()
			// verify and the legacy flow's refusal
			vb, _ := json.Marshal(map[string]string{"token": token, "system_id": "s_0123456789ab"})
			if code, _, body := n.raw("POST", "/runners/verify", vb, nil); code != 200 || !strings.Contains(string(body), `"id"`) {
				t.Fatalf("verify %d %s", code, body)
			}
			bad, _ := json.Marshal(map[string]string{"token": "glrt-nope"})
			if code, _, _ := n.raw("POST", "/runners/verify", bad, nil); code != 403 {
				t.Fatalf("verify bad token %d", code)
			}
			if code, _, _ := n.requestJob("glrt-nope", ""); code != 403 {
				t.Fatalf("request with a bad token %d", code)
			}
			// No job yet: 204 with a version.
			code, h, _ := n.requestJob(token, "")
			if code != 204 || h.Get("X-GitLab-Last-Update") == "" {
				t.Fatalf("idle request %d %v", code, h)
			}
			// A long poll is woken by a job that becomes pending.
			type result struct {
				code    int
				payload map[string]any
				took    time.Duration
			}
			got := make(chan result, 1)
			go func() {
				t0 := time.Now()
				c, _, p := n.requestJob(token, h.Get("X-GitLab-Last-Update"))
				got <- result{c, p, time.Since(t0)}
			}()
			time.Sleep(100 * time.Millisecond)
			pid := n.setupProject("app", "build:\n  stage: build\n  script: [\"echo hi\"]\n  variables:\n    GREETING: hello\n  artifacts:\n    paths: [out/]\ntest:\n  stage: test\n  script: [make test]\n")
			var res result
			select {
			case res = <-got:
			case <-time.After(10 * time.Second):
				t.Fatal("long poll not woken")
			}
			if res.code != 201 {
				t.Fatalf("woken poll %d", res.code)
			}
			p := res.payload
			jobID := int64(p["id"].(float64))
			jobToken := p["token"].(string)
			gi := p["git_info"].(map[string]any)
			if !strings.Contains(gi["repo_url"].(string), "gitlab-ci-token:"+jobToken+"@") || len(gi["sha"].(string)) != 40 {
				t.Fatalf("git_info %v", gi)
			}
			vars := map[string]map[string]any{}
			for _, v := range p["variables"].([]any) {
				m := v.(map[string]any)
				vars[m["key"].(string)] = m
			}
			if vars["CI_JOB_TOKEN"]["masked"] != true || vars["CI_JOB_ID"]["value"] != fmt.Sprint(jobID) || vars["GREETING"]["value"] != "hello" || vars["CI_PROJECT_ID"]["value"] != fmt.Sprint(pid) {
				t.Fatalf("variables %v", vars)
			}
			steps := p["steps"].([]any)
			if steps[0].(map[string]any)["name"] != "script" || p["runner_info"].(map[string]any)["timeout"].(float64) != 3600 {
				t.Fatalf("steps/runner_info %v %v", steps, p["runner_info"])
			}
			// The job is running, with the runner recorded, and GET /job answers its token.
			var job map[string]any
			n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, jobID), nil, &job)
			if job["status"] != "running" || job["runner"] == nil || job["runner_manager"] == nil {
				t.Fatalf("claimed job %v", job)
			}
			if code, _, body := n.raw("GET", "/job", nil, map[string]string{"JOB-TOKEN": jobToken}); code != 200 || !strings.Contains(string(body), fmt.Sprintf(`"id":%d`, jobID)) {
				t.Fatalf("GET /job %d %s", code, body)
			}
			// Trace: appends, a mismatch answers 416 with the length, resends are idempotent.
			trace := func(start int, data string) (int, http.Header) {
				c, hh, _ := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", jobID), []byte(data), map[string]string{
					"JOB-TOKEN": jobToken, "Content-Type": "text/plain", "Content-Range": fmt.Sprintf("%d-%d", start, start+len(data)-1)})
				return c, hh
			}
			if c, hh := trace(0, "hello "); c != 202 || hh.Get("Range") != "0-6" || hh.Get("Job-Status") != "running" || hh.Get("X-GitLab-Trace-Update-Interval") == "" {
				t.Fatalf("first chunk %d %v", c, hh)
			}
			if c, hh := trace(0, "hello "); c != 416 || hh.Get("Range") != "0-6" {
				t.Fatalf("resend %d %v", c, hh)
			}
			if c, _ := trace(6, "world\n"); c != 202 {
				t.Fatalf("second chunk %d", c)
			}
			if c, _, _ := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", jobID), []byte("x"), map[string]string{"JOB-TOKEN": jobToken}); c != 400 {
				t.Fatalf("no Content-Range %d", c)
			}
			if c, _, _ := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", jobID), []byte("x"), map[string]string{"JOB-TOKEN": "glcbt-wrong", "Content-Range": "12-12"}); c != 403 {
				t.Fatalf("wrong token %d", c)
			}
			req, _ := http.NewRequest("GET", fmt.Sprintf("%s/api/v4/projects/%d/jobs/%d/trace", n.base, pid, jobID), nil)
			req.Header.Set("PRIVATE-TOKEN", rootToken)
			resp, _ := http.DefaultClient.Do(req)
			live, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if string(live) != "hello world\n" {
				t.Fatalf("live log %q", live)
			}
			// Reading live shortens the runner's update interval.
			if _, hh := trace(12, "more\n"); hh.Get("X-GitLab-Trace-Update-Interval") != "1" {
				t.Fatalf("watched interval %q", hh.Get("X-GitLab-Trace-Update-Interval"))
			}
			// Artifacts: a multipart upload, then a later job downloads it.
			var zbuf bytes.Buffer
			zw := zip.NewWriter(&zbuf)
			f, _ := zw.Create("out/a.txt")
			f.Write([]byte("artifact data"))
			zw.Close()
			var mbuf bytes.Buffer
			mw := multipart.NewWriter(&mbuf)
			part, _ := mw.CreateFormFile("file", "artifacts.zip")
			part.Write(zbuf.Bytes())
			mw.Close()
			if c, _, body := n.raw("POST", fmt.Sprintf("/jobs/%d/artifacts?artifact_format=zip&artifact_type=archive&expire_in=1+day", jobID), mbuf.Bytes(),
				map[string]string{"JOB-TOKEN": jobToken, "Content-Type": mw.FormDataContentType()}); c != 201 {
				t.Fatalf("upload %d %s", c, body)
			}
			// A final update with another token is refused and changes nothing.
			wrong, _ := json.Marshal(map[string]any{"token": "glcbt-wrong", "state": "success"})
			if c, _, _ := n.raw("PUT", fmt.Sprintf("/jobs/%d", jobID), wrong, map[string]string{"Content-Type": "application/json"}); c != 403 {
				t.Fatalf("final PUT with another token %d", c)
			}
			n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, jobID), nil, &job)
			if job["status"] != "running" {
				t.Fatalf("after a refused final PUT the job is %v", job["status"])
			}
			// Final update.
			fin, _ := json.Marshal(map[string]any{"token": jobToken, "state": "success", "checksum": "crc32:00000000"})
			if c, hh, _ := n.raw("PUT", fmt.Sprintf("/jobs/%d", jobID), fin, map[string]string{"Content-Type": "application/json"}); c != 200 || hh.Get("Job-Status") != "success" {
				t.Fatalf("final PUT %d %v", c, hh)
			}
			if c, hh, _ := n.raw("PUT", fmt.Sprintf("/jobs/%d", jobID), fin, map[string]string{"Content-Type": "application/json"}); c != 403 || hh.Get("Job-Status") != "success" {
				t.Fatalf("PUT after the end %d %v", c, hh)
			}
			if c, _, _ := n.raw("GET", "/job", nil, map[string]string{"JOB-TOKEN": jobToken}); c != 401 {
				t.Fatalf("finished job's token still works: %d", c)
			}
			n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, jobID), nil, &job)
			if job["status"] != "success" || job["artifacts_file"] == nil || job["duration"] == nil {
				t.Fatalf("finished job %v", job)
			}
			// The next stage's job gets the artifact as a dependency and downloads it.
			var p2 map[string]any
			waitFor(t, "test job", func() bool { c, _, pl := n.requestJob(token, ""); p2 = pl; return c == 201 })
			deps := p2["dependencies"].([]any)
			if len(deps) != 1 || deps[0].(map[string]any)["artifacts_file"].(map[string]any)["filename"] != "artifacts.zip" {
				t.Fatalf("dependencies %v", deps)
			}
			c, _, zipped := n.raw("GET", fmt.Sprintf("/jobs/%d/artifacts?direct_download=true", jobID), nil, map[string]string{"JOB-TOKEN": p2["token"].(string)})
			if c != 200 || !bytes.Equal(zipped, zbuf.Bytes()) {
				t.Fatalf("download %d (%d bytes)", c, len(zipped))
			}
			// Canceling the pipeline asks the running job to stop: the runner
			// hears "canceling", runs after_script, and its final update
			// (failed, as gitlab-runner sends it) leaves the job canceled.
			test2 := int64(p2["id"].(float64))
			n.api("POST", fmt.Sprintf("/projects/%d/pipelines/%v/cancel", pid, p2["job_info"].(map[string]any)["pipeline_id"]), nil, nil)
			jobToken2 := p2["token"].(string)
			if c, hh, _ := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", test2), []byte("x"), map[string]string{"JOB-TOKEN": jobToken2, "Content-Range": "0-0"}); c != 202 || hh.Get("Job-Status") != "canceling" {
				t.Fatalf("canceling job's PATCH %d %v", c, hh)
			}
			final, _ := json.Marshal(map[string]any{"token": jobToken2, "state": "failed", "failure_reason": "unknown_failure"})
			if c, _, body := n.raw("PUT", fmt.Sprintf("/jobs/%d", test2), final, map[string]string{"Content-Type": "application/json"}); c != 200 {
				t.Fatalf("final update of a canceling job: %d %s", c, body)
			}
			n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, test2), nil, &job)
			if job["status"] != "canceled" {
				t.Fatalf("after the runner confirmed: %v", job["status"])
			}
			if c, hh, _ := n.raw("PATCH", fmt.Sprintf("/jobs/%d/trace", test2), []byte("y"), map[string]string{"JOB-TOKEN": jobToken2, "Content-Range": "1-1"}); c != 403 || hh.Get("Job-Status") != "canceled" {
				t.Fatalf("canceled job's PATCH %d %v", c, hh)
			}
		})
	}
}

// Many runners race for many jobs: every job runs exactly once.
func TestDispatchRace(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			const jobsPerPipeline, pipelines, runners = 50, 4, 10
			var cfg strings.Builder
			for i := 0; i < jobsPerPipeline; i++ {
				fmt.Fprintf(&cfg, "j%d:\n  script: [\"true\"]\n", i)
			}
			pid := n.setupProject("race", cfg.String())
			for i := 1; i < pipelines; i++ {
				n.api("POST", fmt.Sprintf("/projects/%d/pipeline", pid), map[string]any{"ref": "main"}, nil)
			}
			waitFor(t, "every job pending", func() bool {
				var pls []map[string]any
				n.api("GET", fmt.Sprintf("/projects/%d/pipelines", pid), nil, &pls)
				if len(pls) != pipelines {
					return false
				}
				for _, p := range pls {
					if p["status"] != "pending" {
						return false
					}
				}
				return true
			})
			tokens := make([]string, runners)
			for i := range tokens {
				tokens[i] = n.newRunner()
			}
			var mu sync.Mutex
			seen := map[int64]int{}
			var wg sync.WaitGroup
			for _, tok := range tokens {
				wg.Add(1)
				go func(tok string) {
					defer wg.Done()
					idle := 0
					for idle < 3 {
						c, _, p := n.requestJob(tok, "")
						if c != 201 {
							idle++
							time.Sleep(50 * time.Millisecond)
							continue
						}
						idle = 0
						id := int64(p["id"].(float64))
						mu.Lock()
						seen[id]++
						mu.Unlock()
						fin, _ := json.Marshal(map[string]any{"token": p["token"], "state": "success"})
						n.raw("PUT", fmt.Sprintf("/jobs/%d", id), fin, nil)
					}
				}(tok)
			}
			wg.Wait()
			if len(seen) != jobsPerPipeline*pipelines {
				t.Fatalf("%d distinct jobs ran, want %d", len(seen), jobsPerPipeline*pipelines)
			}
			for id, count := range seen {
				if count != 1 {
					t.Fatalf("job %d ran %d times", id, count)
				}
			}
		})
	}
}

// The watchdog fails jobs whose runner vanished or whose time ran out.
func TestWatchdog(t *testing.T) {
	b := testenv.Backends(t)[0]
	n := startNode(t, b)
	token := n.newRunner()
	pid := n.setupProject("wd", "a:\n  script: [x]\n  timeout: 10 minutes\nb:\n  script: [y]\n")
	var ids []int64
	for len(ids) < 2 {
		c, _, p := n.requestJob(token, "")
		if c == 201 {
			ids = append(ids, int64(p["id"].(float64)))
		}
	}
	wd := n.app.Runners.NewWatchdog()
	wd.Silent = time.Hour
	ctx := context.Background()
	if got := wd.Sweep(ctx); got != 0 {
		t.Fatalf("fresh jobs failed: %d", got)
	}
	wd.Silent = time.Nanosecond
	time.Sleep(time.Millisecond)
	if got := wd.Sweep(ctx); got != 2 {
		t.Fatalf("swept %d", got)
	}
	for _, id := range ids {
		var job map[string]any
		n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, id), nil, &job)
		if job["status"] != "failed" || job["failure_reason"] != string(ci.FailureStuckOrTimeout) {
			t.Fatalf("job %d: %v %v", id, job["status"], job["failure_reason"])
		}
	}
}

// One project's long queue does not starve another project's single job:
// projects with fewer running jobs are served first.
func TestDispatchFairness(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			var big strings.Builder
			for i := 0; i < 30; i++ {
				fmt.Fprintf(&big, "j%d:\n  script: [\"true\"]\n", i)
			}
			busy := n.setupProject("busy", big.String())
			small := n.setupProject("small", "only:\n  script: [\"true\"]\n")
			// Processing is asynchronous: wait until both queues are filled.
			waitFor(t, "pending jobs in both projects", func() bool {
				var a, b []jobJSON
				n.api("GET", fmt.Sprintf("/projects/%d/jobs?scope=pending&per_page=100", busy), nil, &a)
				n.api("GET", fmt.Sprintf("/projects/%d/jobs?scope=pending", small), nil, &b)
				return len(a) == 30 && len(b) == 1
			})
			token := n.newRunner()
			var claimed []float64
			for len(claimed) < 3 {
				c, _, p := n.requestJob(token, "")
				if c == 201 {
					claimed = append(claimed, p["job_info"].(map[string]any)["project_id"].(float64))
				}
			}
			// The first claim may go to either project; by the second, the
			// small project (no running jobs) must have been served.
			if claimed[0] != float64(small) && claimed[1] != float64(small) {
				t.Fatalf("claims by project: %v (busy %d, small %d)", claimed, busy, small)
			}
		})
	}
}

// A tagged runner takes jobs whose tags it has, and untagged jobs only when
// it runs untagged ones; a job with a tag it lacks waits.
func TestTaggedRunnerClaims(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid := n.setupProject("tags", "gpu:\n  tags: [gpu]\n  script: [\"true\"]\nlinux:\n  tags: [linux]\n  script: [\"true\"]\n")
			waitFor(t, "pending jobs", func() bool {
				pls := n.pipelines(pid)
				return len(pls) == 1 && n.jobs(pid, pls[0].ID)["linux"].Status == "pending" && n.jobs(pid, pls[0].ID)["gpu"].Status == "pending"
			})
			token := n.newRunner("linux", "docker")
			code, _, p := n.requestJob(token, "")
			if code != 201 || p["job_info"].(map[string]any)["name"] != "linux" {
				t.Fatalf("tagged runner: %d %v", code, p["job_info"])
			}
			if code, _, _ := n.requestJob(token, ""); code != 204 {
				t.Fatalf("a job with a tag the runner lacks was taken: %d", code)
			}
		})
	}
}

// PUT /runners/:id checks its parameters as GitLab does: after
// authentication and before looking the runner up.
func TestUpdateRunnerParams(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			var created struct{ ID int64 }
			if code := n.api("POST", "/user/runners", map[string]any{"runner_type": "instance_type", "description": "r"}, &created); code != 201 {
				t.Fatalf("create runner %d", code)
			}
			root := map[string]string{"PRIVATE-TOKEN": rootToken, "Content-Type": "application/json"}
			missing := `{"error":"description, active, paused, tag_list, run_untagged, locked, access_level, maximum_timeout, maintenance_note are missing, at least one parameter must be provided"}`
			for _, c := range []struct {
				path, body string
				headers    map[string]string
				code       int
				want       string
			}{
				{fmt.Sprintf("/runners/%d", created.ID), `{}`, nil, 401, `{"message":"401 Unauthorized"}`},
				{fmt.Sprintf("/runners/%d", created.ID), `{}`, root, 400, missing},
				{"/runners/999999", `{}`, root, 400, missing},
				{fmt.Sprintf("/runners/%d", created.ID), `{"active":true,"paused":true}`, root, 400, `{"error":"active, paused are mutually exclusive"}`},
				{"/runners/999999", `{"paused":true}`, root, 404, `{"message":"404 Runner Not Found"}`},
			} {
				code, _, body := n.raw("PUT", c.path, []byte(c.body), c.headers)
				if code != c.code || strings.TrimSpace(string(body)) != c.want {
					t.Errorf("PUT %s %s: %d %s, want %d %s", c.path, c.body, code, body, c.code, c.want)
				}
			}
			var got struct {
				Paused      bool     `json:"paused"`
				Description string   `json:"description"`
				TagList     []string `json:"tag_list"`
			}
			code, _, body := n.raw("PUT", fmt.Sprintf("/runners/%d", created.ID), []byte(`{"active":false,"tag_list":["a","b"]}`), root)
			if code != 200 || json.Unmarshal(body, &got) != nil || !got.Paused || got.Description != "r" || len(got.TagList) != 2 {
				t.Fatalf("update %d %s", code, body)
			}
		})
	}
}
