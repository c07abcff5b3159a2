package httpapi_test

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"gantry/internal/ci"
)

func pid(e *env) string { return strconv.FormatInt(e.fx.Project.ID, 10) }

func TestGoldenEntities(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		for _, s := range ci.AllStatuses {
			j := e.fx.JobsByStatus[s]
			r := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d", pid(e), j.ID), dev)
			expect(t, r, 200, "")
			golden(t, "job_"+string(s), r.body)
		}
		r := e.get(fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/bridges", pid(e), e.fx.Pipeline.ID), dev)
		expect(t, r, 200, "")
		golden(t, "bridges", r.body)
		r = e.get(fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/jobs?per_page=3", pid(e), e.fx.Pipeline.ID), dev)
		expect(t, r, 200, "")
		golden(t, "pipeline_jobs_page1", r.body)
		r = e.req("GET", "/api/v4/job", "", "JOB-TOKEN: "+e.fx.JobToken)
		expect(t, r, 200, "")
		golden(t, "job_of_token", r.body)
		r = e.get("/api/v4/user", dev)
		expect(t, r, 200, "")
		golden(t, "current_user", r.body)
		r = e.get("/api/v4/projects/"+url.PathEscape(e.fx.Project.FullPath), dev)
		expect(t, r, 200, "")
		golden(t, "project", r.body)
	})
}

func TestJobEntityRules(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		get := func(s ci.JobStatus) map[string]any {
			r := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d", pid(e), e.fx.JobsByStatus[s].ID), dev)
			expect(t, r, 200, "")
			return r.json(t).(map[string]any)
		}
		if _, ok := get(ci.StatusSuccess)["failure_reason"]; ok {
			t.Error("a successful job must not carry failure_reason")
		}
		if fr := get(ci.StatusFailed)["failure_reason"]; fr != "script_failure" {
			t.Errorf("failure_reason = %v", fr)
		}
		pending := get(ci.StatusPending)
		if pending["duration"] != nil || pending["queued_duration"].(float64) != 2400 {
			t.Errorf("pending durations: %v %v", pending["duration"], pending["queued_duration"])
		}
		if _, ok := pending["artifacts_file"]; ok {
			t.Error("job without artifacts has artifacts_file")
		}
		if arts := pending["artifacts"].([]any); len(arts) != 0 {
			t.Errorf("artifacts = %v", arts)
		}
		succ := get(ci.StatusSuccess)
		if af := succ["artifacts_file"].(map[string]any); af["filename"] != "artifacts.zip" || af["size"].(float64) != 2048 {
			t.Errorf("artifacts_file = %v", af)
		}
		if d := succ["duration"].(float64); d != 60.5 {
			t.Errorf("duration = %v, want 60.5", d)
		}
		if tags := succ["tag_list"].([]any); len(tags) != 2 || tags[0] != "docker" || tags[1] != "linux" {
			t.Errorf("tag_list not sorted: %v", tags)
		}
		ts := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$`)
		for _, k := range []string{"created_at", "started_at", "finished_at"} {
			if s, _ := succ[k].(string); !ts.MatchString(s) {
				t.Errorf("%s = %q is not ISO 8601 UTC with milliseconds", k, s)
			}
		}
		// A bridge id is not a job on this route.
		r := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d", pid(e), e.fx.Bridge.ID), dev)
		expect(t, r, 404, `{"message":"404 Not found"}`)
		// A job of another project is not found through this one.
		r = e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d", pid(e), e.fx.OtherJob.ID), e.fx.Tokens["root"])
		expect(t, r, 404, `{"message":"404 Not found"}`)
	})
}

func ids(rows []map[string]any) []int64 {
	out := make([]int64, len(rows))
	for i, r := range rows {
		out[i] = int64(r["id"].(float64))
	}
	return out
}

func buildIDs(e *env, keep func(*ci.Job) bool) []int64 {
	var out []int64
	for _, j := range e.fx.AllBuilds {
		if keep == nil || keep(j) {
			out = append(out, j.ID)
		}
	}
	return out
}

func TestScopeForms(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		base := "/api/v4/projects/" + pid(e) + "/jobs?per_page=100&"
		only := func(statuses ...ci.JobStatus) []int64 {
			return buildIDs(e, func(j *ci.Job) bool { return slices.Contains(statuses, j.Status) })
		}
		cases := []struct {
			query string
			want  []int64
		}{
			{"scope=pending", only(ci.StatusPending)},
			{"scope[]=pending&scope[]=running", only(ci.StatusPending, ci.StatusRunning)},
			{"scope%5B%5D=failed&scope%5B%5D=success", only(ci.StatusFailed, ci.StatusSuccess)},
			{"scope=failed&scope=success", only(ci.StatusFailed, ci.StatusSuccess)},
			{"scope[a]=manual&scope[b]=canceled", only(ci.StatusManual, ci.StatusCanceled)},
			{"", buildIDs(e, nil)},
		}
		for _, c := range cases {
			r := e.get(base+c.query, dev)
			expect(t, r, 200, "")
			if got := ids(r.list(t)); !slices.Equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.query, got, c.want)
			}
		}
		for _, bad := range []string{"scope=bogus", "scope[]=pending&scope[]=bogus", "scope=PENDING", "scope[a]=nope"} {
			expect(t, e.get(base+bad, dev), 400, `{"error":"scope does not have a valid value"}`)
		}
		// Pipeline lists refuse a hash-valued scope but accept the rest.
		pbase := fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/jobs?", pid(e), e.fx.Pipeline.ID)
		expect(t, e.get(pbase+"scope[a]=success", dev), 400, `{"error":"scope does not have a valid value"}`)
		r := e.get(pbase+"scope=failed&scope=success", dev)
		expect(t, r, 200, "")
		for _, row := range r.list(t) {
			if s := row["status"]; s != "failed" && s != "success" {
				t.Errorf("scope filter leaked status %v", s)
			}
		}
		// Bad scope beats a missing project (params before lookup).
		expect(t, e.get("/api/v4/projects/999999/jobs?scope=bogus", dev), 400, `{"error":"scope does not have a valid value"}`)
	})
}

var linkRE = regexp.MustCompile(`^<[^>]+>; rel="(next|prev|first|last)"(, <[^>]+>; rel="(next|prev|first|last)")*$`)

func links(t *testing.T, r response) map[string]string {
	t.Helper()
	out := map[string]string{}
	h := r.header.Get("Link")
	if h == "" {
		return out
	}
	if !linkRE.MatchString(h) {
		t.Fatalf("malformed Link header %q", h)
	}
	for _, part := range strings.Split(h, ", ") {
		u, rel, _ := strings.Cut(part, "; ")
		out[strings.TrimSuffix(strings.TrimPrefix(rel, `rel="`), `"`)] = strings.Trim(u, "<>")
	}
	return out
}

// follow turns an absolute Link URL on the external base into a local path.
func follow(t *testing.T, link string) string {
	t.Helper()
	if !strings.HasPrefix(link, externalURL) {
		t.Fatalf("link %q is not on the external URL", link)
	}
	return strings.TrimPrefix(link, externalURL)
}

func TestOffsetPaginationWalk(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		path := "/api/v4/projects/" + url.PathEscape(e.fx.Project.FullPath) + "/jobs?per_page=4&scope[]=success&scope[]=failed&scope[]=running&scope[]=pending&scope[]=created&scope[]=manual"
		want := buildIDs(e, func(j *ci.Job) bool {
			return slices.Contains([]ci.JobStatus{ci.StatusSuccess, ci.StatusFailed, ci.StatusRunning, ci.StatusPending, ci.StatusCreated, ci.StatusManual}, j.Status)
		})
		var got []int64
		for page := 1; path != ""; page++ {
			if page > 20 {
				t.Fatal("pagination does not end")
			}
			r := e.get(path, dev)
			expect(t, r, 200, "")
			if r.header.Get("X-Total") != "" || r.header.Get("X-Total-Pages") != "" {
				t.Fatal("project jobs must not send totals")
			}
			if r.header.Get("X-Page") != strconv.Itoa(page) || r.header.Get("X-Per-Page") != "4" {
				t.Fatalf("page headers %q %q", r.header.Get("X-Page"), r.header.Get("X-Per-Page"))
			}
			l := links(t, r)
			if _, ok := l["last"]; ok {
				t.Fatal("rel=last without totals")
			}
			if !strings.Contains(l["first"], "scope%5B%5D=success") || !strings.Contains(l["first"], "id=acme%2Ftools%2Fapp.core") {
				t.Fatalf("first link lost parameters: %s", l["first"])
			}
			got = append(got, ids(r.list(t))...)
			if next := l["next"]; next != "" {
				if r.header.Get("X-Next-Page") != strconv.Itoa(page+1) {
					t.Fatalf("X-Next-Page %q", r.header.Get("X-Next-Page"))
				}
				path = follow(t, next)
			} else {
				if r.header.Get("X-Next-Page") != "" {
					t.Fatal("X-Next-Page set on the last page")
				}
				path = ""
			}
		}
		if !slices.Equal(got, want) {
			t.Fatalf("walk gave %v, want %v", got, want)
		}
		// per_page=1 is the newest; page=2&per_page=1 the second newest.
		all := buildIDs(e, nil)
		r := e.get("/api/v4/projects/"+pid(e)+"/jobs?per_page=1", dev)
		if got := ids(r.list(t)); !slices.Equal(got, all[:1]) {
			t.Errorf("per_page=1: %v", got)
		}
		r = e.get("/api/v4/projects/"+pid(e)+"/jobs?per_page=1&page=2", dev)
		if got := ids(r.list(t)); !slices.Equal(got, all[1:2]) {
			t.Errorf("page=2: %v", got)
		}
		if r.header.Get("X-Prev-Page") != "1" {
			t.Errorf("X-Prev-Page %q", r.header.Get("X-Prev-Page"))
		}
		// Past the end: 200 [].
		r = e.get("/api/v4/projects/"+pid(e)+"/jobs?page=999", dev)
		expect(t, r, 200, "[]")
		// Negative page and per_page fall back to defaults; huge per_page is capped.
		r = e.get("/api/v4/projects/"+pid(e)+"/jobs?page=-1&per_page=-5", dev)
		if r.status != 200 || r.header.Get("X-Page") != "1" || r.header.Get("X-Per-Page") != "20" {
			t.Errorf("negative page: %d %v", r.status, r.header)
		}
		r = e.get("/api/v4/projects/"+pid(e)+"/jobs?per_page=1000", dev)
		if r.status != 200 || r.header.Get("X-Per-Page") != "100" {
			t.Errorf("per_page cap: %d %q", r.status, r.header.Get("X-Per-Page"))
		}
	})
}

func TestKeysetPaginationWalk(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		for _, q := range []string{"", "&scope[]=success", "&ref=main", "&order_by=id&sort=desc"} {
			got := walk(t, e, "/api/v4/projects/"+pid(e)+"/jobs?pagination=keyset&per_page=3"+q, dev, func(r response, l map[string]string) {
				checkKeysetPage(t, r, l)
			})
			want := buildIDs(e, func(j *ci.Job) bool {
				switch q {
				case "&scope[]=success":
					return j.Status == ci.StatusSuccess
				case "&ref=main":
					return j.Ref == "main"
				}
				return true
			})
			if !slices.Equal(got, want) {
				t.Errorf("keyset %q: got %v, want %v", q, got, want)
			}
		}
		const notYet = `{"error":"Keyset pagination is not yet available for this type of request"}`
		expect(t, e.get("/api/v4/projects/"+pid(e)+"/jobs?pagination=keyset&order_by=name", dev), 405, notYet)
		expect(t, e.get("/api/v4/projects/"+pid(e)+"/jobs?pagination=keyset&sort=asc", dev), 405, notYet)
		for _, c := range []string{"!!!", "e30=", "eyJpZCI6ImFiYyJ9", "eyJpZCI6Ii01In0="} {
			expect(t, e.get("/api/v4/projects/"+pid(e)+"/jobs?pagination=keyset&cursor="+c, dev), 400, `{"error":"cursor is invalid"}`)
		}
		expect(t, e.get("/api/v4/projects/"+pid(e)+"/jobs?pagination=sideways", dev), 400, `{"error":"pagination does not have a valid value"}`)
	})
}

func TestRefFilter(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		r := e.get("/api/v4/projects/"+pid(e)+"/jobs?ref=v1.0.0", dev)
		if got := ids(r.list(t)); !slices.Equal(got, []int64{e.fx.TagJob.ID}) {
			t.Errorf("ref=v1.0.0: %v", got)
		}
		expect(t, e.get("/api/v4/projects/"+pid(e)+"/jobs?ref=nope", dev), 200, "[]")
		r = e.get("/api/v4/projects/"+pid(e)+"/jobs?ref=%20%20&per_page=100", dev)
		if got := ids(r.list(t)); !slices.Equal(got, buildIDs(e, nil)) {
			t.Errorf("blank ref should not filter: %v", got)
		}
	})
}

func TestPipelineJobsAndBridges(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		base := fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/", pid(e), e.fx.Pipeline.ID)
		r := e.get(base+"jobs?per_page=100", dev)
		expect(t, r, 200, "")
		got := ids(r.list(t))
		if slices.Contains(got, e.fx.RetriedOld.ID) || !slices.Contains(got, e.fx.RetriedNew.ID) {
			t.Errorf("retried job shown by default: %v", got)
		}
		if slices.Contains(got, e.fx.ChildJob.ID) || slices.Contains(got, e.fx.Bridge.ID) {
			t.Errorf("jobs of other pipelines or bridges leaked: %v", got)
		}
		if r.header.Get("X-Total") != strconv.Itoa(len(got)) || r.header.Get("X-Total-Pages") != "1" {
			t.Errorf("totals %q %q for %d", r.header.Get("X-Total"), r.header.Get("X-Total-Pages"), len(got))
		}
		if l := links(t, r); l["last"] == "" || !strings.Contains(l["first"], "include_retried=false") || !strings.Contains(l["first"], "pipeline_id=") {
			t.Errorf("links %v", l)
		}
		r = e.get(base+"jobs?per_page=100&include_retried=True", dev)
		if got := ids(r.list(t)); !slices.Contains(got, e.fx.RetriedOld.ID) {
			t.Errorf("include_retried=True: %v", got)
		}
		r = e.get(base+"bridges", dev)
		rows := r.list(t)
		if len(rows) != 1 || int64(rows[0]["id"].(float64)) != e.fx.Bridge.ID {
			t.Fatalf("bridges: %s", r.body)
		}
		dp := rows[0]["downstream_pipeline"].(map[string]any)
		if int64(dp["id"].(float64)) != e.fx.Downstream.ID || dp["source"] != "parent_pipeline" {
			t.Errorf("downstream_pipeline %v", dp)
		}
		for _, k := range []string{"artifacts", "runner", "runner_manager", "tag_list", "archived"} {
			if _, ok := rows[0][k]; ok {
				t.Errorf("bridge has %s", k)
			}
		}
		r2 := e.get(fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/trigger_jobs", pid(e), e.fx.Pipeline.ID), dev)
		if string(r2.body) != string(r.body) {
			t.Error("trigger_jobs differs from bridges")
		}
		expect(t, e.get(fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/jobs", pid(e), e.fx.OtherPipe.ID), dev), 404, `{"message":"404 Not found"}`)
		expect(t, e.get(fmt.Sprintf("/api/v4/projects/%s/pipelines/abc/jobs", pid(e)), dev), 400, `{"error":"pipeline_id is invalid"}`)
		expect(t, e.get(fmt.Sprintf("/api/v4/projects/%s/pipelines/99999999999999999999999/jobs", pid(e)), dev), 404, `{"message":"404 Not found"}`)
		// Anonymous: private → 404, not 401.
		expect(t, e.get(base+"jobs", ""), 404, `{"message":"404 Project Not Found"}`)
		expect(t, e.get(base+"jobs", e.fx.Tokens["guest"]), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.get(base+"jobs", e.fx.Tokens["reporter"]), 200, "")
		// Job tokens of the project are accepted here.
		expect(t, e.req("GET", base+"jobs", "", "JOB-TOKEN: "+e.fx.JobToken), 200, "")
		// include_retried must be a boolean.
		expect(t, e.get(base+"jobs?include_retried=maybe", dev), 400, `{"error":"include_retried is invalid"}`)
	})
}

func TestTrace(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		failed := e.fx.JobsByStatus[ci.StatusFailed]
		path := fmt.Sprintf("/api/v4/projects/%s/jobs/%d/trace", pid(e), failed.ID)
		r := e.req("GET", path, "", "PRIVATE-TOKEN: "+dev, "Accept: application/json")
		if r.status != 200 || string(r.body) != string(e.fx.Trace) {
			t.Fatalf("trace %d %q", r.status, r.body)
		}
		if r.header.Get("Content-Type") != "text/plain" || r.header.Get("Content-Disposition") != fmt.Sprintf(`infile; filename="%d.log"`, failed.ID) {
			t.Errorf("headers %v", r.header)
		}
		n := len(e.fx.Trace)
		for q, want := range map[string]string{
			"?byte_offset=5&byte_limit=10":       string(e.fx.Trace[5:15]),
			"?byte_offset=20":                    string(e.fx.Trace[20:]),
			"?byte_limit=7":                      string(e.fx.Trace[:7]),
			"?byte_offset=" + strconv.Itoa(n+10): "",
		} {
			if r := e.get(path+q, dev); r.status != 200 || string(r.body) != want {
				t.Errorf("%s: %d %q", q, r.status, r.body)
			}
		}
		for _, q := range []string{"?byte_offset=-1", "?byte_limit=0", "?byte_limit=512001"} {
			if r := e.get(path+q, dev); r.status != 400 {
				t.Errorf("%s: %d", q, r.status)
			}
		}
		expect(t, e.get(path+"?byte_offset=x", dev), 400, `{"error":"byte_offset is invalid"}`)
		// No log at all: 200 with an empty body.
		r = e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d/trace", pid(e), e.fx.JobsByStatus[ci.StatusCreated].ID), dev)
		if r.status != 200 || len(r.body) != 0 {
			t.Errorf("no log: %d %q", r.status, r.body)
		}
		expect(t, e.get(path, ""), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.get(path, e.fx.Tokens["guest"]), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.get(path, e.fx.Tokens["reporter"]), 200, "")
	})
}
