package httpapi_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/testenv"
)

// addTimedJobs adds builds to the fixture's pipeline, one per hour after
// T0, named lint or unit in turn, each updated a minute after creation;
// it returns them id ascending.
func addTimedJobs(t *testing.T, e *env, n int) []*ci.Job {
	t.Helper()
	var out []*ci.Job
	for i := range n {
		name := []string{"lint", "unit"}[i%2]
		status := []ci.JobStatus{ci.StatusSuccess, ci.StatusFailed, ci.StatusPending}[i%3]
		created := testenv.T0.Add(time.Duration(i+1) * time.Hour)
		j, err := e.st.InsertJob(t.Context(), ci.Job{ProjectID: e.fx.Project.ID, PipelineID: e.fx.Pipeline.ID, Kind: ci.KindBuild, Name: name,
			Stage: "test", StageIdx: 1, Status: status, Ref: e.fx.Pipeline.Ref, CreatedAt: created, UpdatedAt: created.Add(time.Minute)})
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, j)
	}
	return out
}

func jobIDs(jobs []*ci.Job, keep func(*ci.Job) bool) []int64 {
	var out []int64
	for _, j := range jobs {
		if keep(j) {
			out = append(out, j.ID)
		}
	}
	return out
}

func TestJobListFilters(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		added := addTimedJobs(t, e, 6)
		desc := slices.Clone(added)
		slices.Reverse(desc)
		at := func(h int) string { return testenv.T0.Add(time.Duration(h) * time.Hour).Format(time.RFC3339) }
		base := "/api/v4/projects/" + pid(e) + "/jobs?per_page=100&"
		cases := []struct {
			query string
			want  []int64
		}{
			{"name=lint", jobIDs(desc, func(j *ci.Job) bool { return j.Name == "lint" })},
			{"name=lint&scope[]=success", jobIDs(desc, func(j *ci.Job) bool { return j.Name == "lint" && j.Status == ci.StatusSuccess })},
			{"name=nope", nil},
			{"created_after=" + at(3), jobIDs(desc, func(j *ci.Job) bool { return j.CreatedAt.After(testenv.T0.Add(3 * time.Hour)) })},
			// Both bounds are exclusive.
			{"created_after=" + at(1) + "&created_before=" + at(4), ids2(added[2], added[1])},
			{"updated_after=" + at(5), ids2(added[5], added[4])},
			{"updated_before=" + testenv.T0.Add(time.Hour+2*time.Minute).Format(time.RFC3339) + "&updated_after=" + at(0), ids2(added[0])},
			{"updated_after=2999-01-01", nil},
			{"name=unit&updated_after=" + at(2) + "&scope[]=failed&scope[]=pending", jobIDs(desc, func(j *ci.Job) bool {
				return j.Name == "unit" && j.UpdatedAt.After(testenv.T0.Add(2*time.Hour)) && j.Status != ci.StatusSuccess
			})},
			{"created_after=" + at(1) + "&sort=asc", jobIDs(added, func(j *ci.Job) bool { return j.CreatedAt.After(testenv.T0.Add(time.Hour)) })},
			// A time with a zone offset and fractions; an unencoded "+" arrives as a space.
			{"created_after=" + strings.ReplaceAll(testenv.T0.Add(5*time.Hour).In(time.FixedZone("", 3600)).Format("2006-01-02T15:04:05.000-07:00"), "+", "%2B"), ids2(added[5])},
			{"created_after=" + testenv.T0.Add(5*time.Hour).In(time.FixedZone("", 3600)).Format("2006-01-02T15:04:05-07:00"), ids2(added[5])},
		}
		for _, c := range cases {
			r := e.get(base+c.query, dev)
			expect(t, r, 200, "")
			if got := ids(r.list(t)); !slices.Equal(got, c.want) {
				t.Errorf("%s: got %v, want %v", c.query, got, c.want)
			}
		}
		// sort=asc is the reverse of the default, and pages walk in that order.
		all := buildIDs(e, nil)
		all = append(jobIDs(desc, func(*ci.Job) bool { return true }), all...)
		asc := slices.Clone(all)
		slices.Reverse(asc)
		walked := walk(t, e, "/api/v4/projects/"+pid(e)+"/jobs?sort=asc&per_page=4", dev, nil)
		if !slices.Equal(walked, asc) {
			t.Errorf("sort=asc walk: got %v, want %v", walked, asc)
		}
		r := e.get(base+"sort=desc", dev)
		if got := ids(r.list(t)); !slices.Equal(got, all) {
			t.Errorf("sort=desc: got %v, want %v", got, all)
		}
		// Filters walk under keyset pagination too.
		walked = walk(t, e, "/api/v4/projects/"+pid(e)+"/jobs?pagination=keyset&per_page=2&name=unit&created_after="+at(0), dev, func(_ response, l map[string]string) {
			if next := l["next"]; next != "" && (!strings.Contains(next, "name=unit") || !strings.Contains(next, "created_after=")) {
				t.Fatalf("next link lost the filters: %s", next)
			}
		})
		if want := jobIDs(desc, func(j *ci.Job) bool { return j.Name == "unit" }); !slices.Equal(walked, want) {
			t.Errorf("keyset walk: got %v, want %v", walked, want)
		}
		// Bad input.
		for _, name := range []string{"created_after", "created_before", "updated_after", "updated_before"} {
			for _, bad := range []string{"yesterday", "2024-13-01", "2024-01-01T25:00:00Z", "1700000000"} {
				expect(t, e.get(base+name+"="+bad, dev), 400, fmt.Sprintf(`{"error":"%s is invalid"}`, name))
			}
		}
		expect(t, e.get(base+"created_after=x&updated_before=y", dev), 400, `{"error":"created_after is invalid, updated_before is invalid"}`)
		expect(t, e.get(base+"sort=sideways", dev), 400, `{"error":"sort does not have a valid value"}`)
		expect(t, e.get(base+"sort=sideways&pagination=keyset", dev), 405, `{"error":"Keyset pagination is not yet available for this type of request"}`)
		// Parameters are checked before the project is looked up.
		expect(t, e.get("/api/v4/projects/999999/jobs?updated_after=never", dev), 400, `{"error":"updated_after is invalid"}`)
	})
}

// walk follows rel="next" links from path and returns every id seen;
// check, when set, inspects each page and its links.
func walk(t *testing.T, e *env, path, token string, check func(r response, l map[string]string)) []int64 {
	t.Helper()
	var got []int64
	for i := 0; path != ""; i++ {
		if i > 20 {
			t.Fatal("pagination does not end")
		}
		r := e.get(path, token)
		expect(t, r, 200, "")
		got = append(got, ids(r.list(t))...)
		l := links(t, r)
		if check != nil {
			check(r, l)
		}
		path = ""
		if l["next"] != "" {
			path = follow(t, l["next"])
		}
	}
	return got
}

// checkKeysetPage checks what every keyset page has: no X- pagination
// headers and at most a rel="next" link, carrying the cursor.
func checkKeysetPage(t *testing.T, r response, l map[string]string) {
	t.Helper()
	if r.header.Get("X-Page") != "" || r.header.Get("X-Next-Page") != "" || r.header.Get("X-Total") != "" {
		t.Fatal("keyset mode sends no X- pagination headers")
	}
	if len(l) > 1 || (len(l) == 1 && l["next"] == "") {
		t.Fatalf("keyset Link has only rel=next: %v", l)
	}
	if l["next"] != "" && (!strings.Contains(l["next"], "cursor=") || !strings.Contains(l["next"], "pagination=keyset")) {
		t.Fatalf("next link %s", l["next"])
	}
}

func ids2(jobs ...*ci.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func TestPipelineJobsKeyset(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		dev := e.fx.Tokens["developer"]
		addTimedJobs(t, e, 5)
		base := fmt.Sprintf("/api/v4/projects/%s/pipelines/%d/jobs", pid(e), e.fx.Pipeline.ID)
		r := e.get(base+"?per_page=100", dev)
		expect(t, r, 200, "")
		want := ids(r.list(t))
		for _, q := range []string{"", "&include_retried=true", "&scope[]=success&scope[]=failed"} {
			r := e.get(base+"?per_page=100"+q, dev)
			want = ids(r.list(t))
			got := walk(t, e, base+"?pagination=keyset&per_page=3"+q, dev, func(r response, l map[string]string) {
				checkKeysetPage(t, r, l)
				if l["next"] != "" && !strings.Contains(l["next"], "pipeline_id=") {
					t.Fatalf("next link %s", l["next"])
				}
			})
			if len(want) < 4 || !slices.Equal(got, want) {
				t.Errorf("keyset %q: got %v, want %v", q, got, want)
			}
		}
		const notYet = `{"error":"Keyset pagination is not yet available for this type of request"}`
		expect(t, e.get(base+"?pagination=keyset&sort=asc", dev), 405, notYet)
		expect(t, e.get(base+"?pagination=keyset&cursor=!!!", dev), 400, `{"error":"cursor is invalid"}`)
		expect(t, e.get(base+"?pagination=sideways", dev), 400, `{"error":"pagination does not have a valid value"}`)
	})
}
