package httpapi_test

import (
	"fmt"
	"net/url"
	"testing"

	"gantry/internal/ci"
)

func TestAuthentication(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		jobs := "/api/v4/projects/" + pid(e) + "/jobs"
		dev := e.fx.Tokens["developer"]
		expect(t, e.get(jobs, ""), 401, `{"message":"401 Unauthorized"}`)
		// Anonymous with bad params is still 401: auth comes first.
		expect(t, e.get(jobs+"?scope=bogus", ""), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.get(jobs, "glpat-unknown"), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.get(jobs+"?private_token="+url.QueryEscape(dev), ""), 200, "")
		expect(t, e.req("GET", jobs, "", "Authorization: Bearer "+dev), 200, "")
		expect(t, e.req("GET", jobs, "", "private-token: "+dev), 200, "")
		r := e.get(jobs, e.fx.Tokens["expired"])
		expect(t, r, 401, `{"error":"invalid_token","error_description":"Token has expired."}`)
		if r.header.Get("WWW-Authenticate") == "" {
			t.Error("no WWW-Authenticate on invalid_token")
		}
		expect(t, e.get(jobs, e.fx.Tokens["revoked"]), 401, `{"error":"invalid_token","error_description":"Token has been revoked."}`)
		// read_api reads, but cannot write.
		expect(t, e.get(jobs, e.fx.Tokens["readonly"]), 200, "")
		r = e.req("POST", "/api/v4/projects", `{"name":"x"}`, "PRIVATE-TOKEN: "+e.fx.Tokens["readonly"])
		if r.status != 403 || r.json(t).(map[string]any)["error"] != "insufficient_scope" {
			t.Errorf("read_api write: %d %s", r.status, r.body)
		}
		// Job tokens: the project's own running job may list its jobs.
		expect(t, e.req("GET", jobs, "", "JOB-TOKEN: "+e.fx.JobToken), 200, "")
		expect(t, e.get(jobs+"?job_token="+e.fx.JobToken, ""), 200, "")
		expect(t, e.req("GET", jobs, "", "Authorization: Bearer "+e.fx.JobToken), 200, "")
		expect(t, e.req("GET", jobs, "", "JOB-TOKEN: "+e.fx.FinishedJobToken), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.req("GET", jobs, "", "JOB-TOKEN: glcbt-nope"), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.req("GET", jobs, "", "JOB-TOKEN: "+e.fx.OtherJobToken), 403,
			`{"message":"403 Forbidden - Authentication by CI/CD job token not allowed from acme/other to acme/tools/app.core."}`)
		// Routes without job-token support ignore JOB-TOKEN: no user → 401.
		one := fmt.Sprintf("%s/%d", jobs, e.fx.JobsByStatus[ci.StatusRunning].ID)
		expect(t, e.req("GET", one, "", "JOB-TOKEN: "+e.fx.JobToken), 401, `{"message":"401 Unauthorized"}`)
		// A PAT wins over a job token when both are sent.
		expect(t, e.req("GET", jobs, "", "JOB-TOKEN: "+e.fx.OtherJobToken, "PRIVATE-TOKEN: "+dev), 200, "")
	})
}

func TestJobOfToken(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		running := e.fx.JobsByStatus[ci.StatusRunning]
		for _, r := range []response{
			e.req("GET", "/api/v4/job", "", "JOB-TOKEN: "+e.fx.JobToken),
			e.get("/api/v4/job?job_token="+e.fx.JobToken, ""),
			e.get("/api/v4/job?token="+e.fx.JobToken, ""),
			e.req("GET", "/api/v4/job", "", "Authorization: Bearer "+e.fx.JobToken),
		} {
			expect(t, r, 200, "")
			m := r.json(t).(map[string]any)
			if int64(m["id"].(float64)) != running.ID || m["finished_at"] != nil || m["erased_at"] != nil {
				t.Errorf("GET /job: %s", r.body)
			}
		}
		expect(t, e.get("/api/v4/job", e.fx.Tokens["developer"]), 404, `{"message":"404 Job Not Found"}`)
		expect(t, e.get("/api/v4/job", ""), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.req("GET", "/api/v4/job", "", "JOB-TOKEN: "+e.fx.FinishedJobToken), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.req("GET", "/api/v4/job", "", "JOB-TOKEN: garbage"), 401, `{"message":"401 Unauthorized"}`)
	})
}

func TestPermissions(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		jobs := "/api/v4/projects/" + pid(e) + "/jobs"
		for role, want := range map[string]int{
			"root": 200, "maintainer": 200, "developer": 200, "developer2": 200, "reporter": 200, "guest": 403, "outsider": 404,
		} {
			r := e.get(jobs, e.fx.Tokens[role])
			if r.status != want {
				t.Errorf("%s: %d %s, want %d", role, r.status, r.body, want)
			}
		}
		expect(t, e.get(jobs, e.fx.Tokens["outsider"]), 404, `{"message":"404 Project Not Found"}`)
		// The public project with public pipelines: anyone may read its pipeline lists.
		pub := fmt.Sprintf("/api/v4/projects/%d/jobs", e.fx.Public.ID)
		expect(t, e.get(pub, e.fx.Tokens["outsider"]), 200, "[]")
		expect(t, e.get(pub, ""), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.get(fmt.Sprintf("/api/v4/projects/%d", e.fx.Public.ID), ""), 200, "")
		expect(t, e.get("/api/v4/projects/"+pid(e), ""), 404, `{"message":"404 Project Not Found"}`)
	})
}

func TestBadInput(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		p := "/api/v4/projects/" + pid(e)
		cases := []struct {
			path   string
			status int
			body   string
		}{
			{p + "/jobs?per_page=0", 400, `{"error":"per_page has a value not allowed"}`},
			{p + "/jobs?per_page=abc", 400, `{"error":"per_page is invalid"}`},
			{p + "/jobs?page=abc", 400, `{"error":"page is invalid"}`},
			{p + "/jobs?page=x&per_page=y", 400, `{"error":"page is invalid, per_page is invalid"}`},
			{p + "/jobs/abc", 400, `{"error":"job_id is invalid"}`},
			{p + "/jobs/-1", 404, `{"message":"404 Not found"}`},
			{p + "/jobs/0", 404, `{"message":"404 Not found"}`},
			{p + "/jobs/99999999999999999999999999", 404, `{"message":"404 Not found"}`},
			{p + "/jobs/1.5", 400, `{"error":"job_id is invalid"}`},
			{"/api/v4/projects/999999999/jobs", 404, `{"message":"404 Project Not Found"}`},
			{"/api/v4/projects/99999999999999999999999/jobs", 404, `{"message":"404 Project Not Found"}`},
			{"/api/v4/projects/nopath/jobs", 404, `{"message":"404 Project Not Found"}`},
			{"/api/v4/projects/-1/jobs", 404, `{"message":"404 Project Not Found"}`},
			{"/api/v4/projects/acme%2Fmissing/jobs", 404, `{"message":"404 Project Not Found"}`},
			{"/api/v4/no/such/route", 404, `{"error":"404 Not Found"}`},
			{p + "/jobs?scope=%ff", 400, `{"message":"400 Bad request - invalid byte sequence in UTF-8"}`},
		}
		for _, c := range cases {
			r := e.get(c.path, dev)
			if r.status != c.status || string(r.body) != c.body {
				t.Errorf("%s: got %d %s, want %d %s", c.path, r.status, r.body, c.status, c.body)
			}
		}
		// Wrong method on a known path: the catch-all.
		expect(t, e.req("DELETE", p+"/jobs", "", "PRIVATE-TOKEN: "+dev), 404, `{"error":"404 Not Found"}`)
		// Path lookup is case-insensitive and accepts %2E.
		expect(t, e.get("/api/v4/projects/ACME%2Ftools%2Fapp%2Ecore/jobs", dev), 200, "")
	})
}
