package app_test

import (
	"bytes"
	"compress/gzip"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"testing"

	"gantry/internal/config"
	"gantry/internal/testenv"
)

// Jobs upload junit reports through the runner API; the pipeline's test
// report sums them, one suite per job, parallel jobs sharing one.
func TestPipelineTestReport(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNode(t, b)
			pid := n.setupProject("tests", "rspec:\n  parallel: 2\n  script: [\"true\"]\n  artifacts:\n    reports:\n      junit: report.xml\n")
			token := n.newRunner()
			reports := []string{
				`<testsuite name="a"><testcase classname="A" name="passes" time="0.5"/><testcase classname="A" name="fails" time="1"><failure>boom</failure></testcase></testsuite>`,
				`<testsuites><testsuite name="b"><testcase classname="B" name="skips"><skipped/></testcase></testsuite></testsuites>`,
			}
			var pipelineID int64
			for i, doc := range reports {
				var p map[string]any
				waitFor(t, "a job", func() bool { c, _, pl := n.requestJob(token, ""); p = pl; return c == 201 })
				jobID, jobToken := int64(p["id"].(float64)), p["token"].(string)
				pipelineID = int64(p["job_info"].(map[string]any)["pipeline_id"].(float64))
				var gzbuf bytes.Buffer
				zw := gzip.NewWriter(&gzbuf)
				zw.Write([]byte(doc))
				zw.Close()
				var mbuf bytes.Buffer
				mw := multipart.NewWriter(&mbuf)
				part, _ := mw.CreateFormFile("file", "junit.xml.gz")
				part.Write(gzbuf.Bytes())
				mw.Close()
				if c, _, body := n.raw("POST", fmt.Sprintf("/jobs/%d/artifacts?artifact_format=gzip&artifact_type=junit", jobID), mbuf.Bytes(),
					map[string]string{"JOB-TOKEN": jobToken, "Content-Type": mw.FormDataContentType()}); c != 201 {
					t.Fatalf("upload %d: %d %s", i, c, body)
				}
				state := []string{"failed", "success"}[i]
				fin, _ := json.Marshal(map[string]any{"token": jobToken, "state": state, "failure_reason": "script_failure"})
				if c, _, body := n.raw("PUT", fmt.Sprintf("/jobs/%d", jobID), fin, map[string]string{"Content-Type": "application/json"}); c != 200 {
					t.Fatalf("finish %d: %d %s", i, c, body)
				}
			}
			var report struct {
				TotalCount   int     `json:"total_count"`
				SuccessCount int     `json:"success_count"`
				FailedCount  int     `json:"failed_count"`
				SkippedCount int     `json:"skipped_count"`
				TotalTime    float64 `json:"total_time"`
				TestSuites   []struct {
					Name      string
					TestCases []struct{ Status, Name string } `json:"test_cases"`
				} `json:"test_suites"`
			}
			code, _, body := n.raw("GET", fmt.Sprintf("/projects/%d/pipelines/%d/test_report", pid, pipelineID), nil, map[string]string{"PRIVATE-TOKEN": rootToken})
			if code != 200 {
				t.Fatalf("test_report %d %s", code, body)
			}
			if err := json.Unmarshal(body, &report); err != nil {
				t.Fatal(err)
			}
			if report.TotalCount != 3 || report.SuccessCount != 1 || report.FailedCount != 1 || report.SkippedCount != 1 || report.TotalTime != 1.5 ||
				len(report.TestSuites) != 1 || report.TestSuites[0].Name != "rspec" || report.TestSuites[0].TestCases[0].Status != "failed" {
				t.Fatalf("report %s", body)
			}
			// Like the other pipeline reads: a private project does not exist for anonymous callers.
			if code, _, body := n.raw("GET", fmt.Sprintf("/projects/%d/pipelines/%d/test_report", pid, pipelineID), nil, nil); code != 404 || string(body) != `{"message":"404 Project Not Found"}` {
				t.Fatalf("anonymous: %d %s", code, body)
			}
		})
	}
}

// An artifact past the instance limit is refused with 413, whether its
// size is announced or only found while streaming, and nothing is kept.
func TestArtifactUploadLimit(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			n := startNodeWith(t, b, func(c *config.Config) { c.MaxArtifactSizeMB = 1 })
			n.setupProject("big", "build:\n  script: [\"true\"]\n")
			token := n.newRunner()
			var p map[string]any
			waitFor(t, "a job", func() bool { c, _, pl := n.requestJob(token, ""); p = pl; return c == 201 })
			jobID, jobToken := int64(p["id"].(float64)), p["token"].(string)
			var mbuf bytes.Buffer
			mw := multipart.NewWriter(&mbuf)
			part, _ := mw.CreateFormFile("file", "artifacts.zip")
			part.Write(bytes.Repeat([]byte("x"), 1<<20+1))
			mw.Close()
			url := fmt.Sprintf("%s/api/v4/jobs/%d/artifacts?artifact_format=zip&artifact_type=archive", n.base, jobID)
			for _, announced := range []bool{true, false} {
				var body io.Reader = bytes.NewReader(mbuf.Bytes())
				if !announced {
					body = io.MultiReader(body) // hides the length: chunked
				}
				req, _ := http.NewRequest("POST", url, body)
				req.Header.Set("JOB-TOKEN", jobToken)
				req.Header.Set("Content-Type", mw.FormDataContentType())
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				raw, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusRequestEntityTooLarge {
					t.Fatalf("announced=%v: %d %s", announced, res.StatusCode, raw)
				}
			}
			pid := int64(p["job_info"].(map[string]any)["project_id"].(float64))
			var job map[string]any
			n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, jobID), nil, &job)
			if arts := job["artifacts"].([]any); len(arts) != 0 {
				t.Fatalf("refused upload recorded: %v", arts)
			}
			// A project's own limit (administrators set it) overrides the instance's.
			var maint struct{ ID int64 }
			n.api("POST", "/users", map[string]any{"username": "maint", "name": "M", "email": "m@example.com", "password": "password-1234"}, &maint)
			n.api("POST", fmt.Sprintf("/projects/%d/members", pid), map[string]any{"user_id": maint.ID, "access_level": 40}, nil)
			var tok struct{ Token string }
			n.api("POST", fmt.Sprintf("/users/%d/personal_access_tokens", maint.ID), map[string]any{"name": "t", "scopes": []string{"api"}}, &tok)
			if c, _, body := n.raw("PUT", fmt.Sprintf("/projects/%d", pid), []byte(`{"max_artifacts_size":2}`),
				map[string]string{"PRIVATE-TOKEN": tok.Token, "Content-Type": "application/json"}); c != 403 {
				t.Fatalf("maintainer setting max_artifacts_size: %d %s", c, body)
			}
			if c := n.api("PUT", fmt.Sprintf("/projects/%d", pid), map[string]any{"max_artifacts_size": 2}, nil); c != 200 {
				t.Fatalf("admin setting max_artifacts_size: %d", c)
			}
			req, _ := http.NewRequest("POST", url, bytes.NewReader(mbuf.Bytes()))
			req.Header.Set("JOB-TOKEN", jobToken)
			req.Header.Set("Content-Type", mw.FormDataContentType())
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusCreated {
				t.Fatalf("upload under the project's limit: %d", res.StatusCode)
			}
		})
	}
}
