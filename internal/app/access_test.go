package app_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/testenv"
)

// accessActors are the callers of the access matrix, in the order of the
// columns of every expectation.
var accessActors = []string{"anonymous", "outsider", "guest", "reporter", "developer", "maintainer", "admin",
	"job token", "other project's job token", "allowlisted project's job token", "finished job token"}

// The access matrix sends every route, filled with the private project's
// ids and a body that passes parameter validation, as every kind of caller,
// each in a freshly seeded world, and compares each answer with the
// expected status of accessCases. A route without an expectation fails the
// test. Besides, a private project never leaks to those who cannot see it
// (anonymous: 401 or 404; outsiders: 404 Project Not Found, or a parameter
// error that GitLab checks first), foreign and finished job tokens never
// succeed, and no caller ever gets a 5xx.
func TestAccessMatrix(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			var patterns []string
			var cases map[string]accessCase
			pairs, exact, unexpected := 0, 0, 0
			report := func(format string, args ...any) {
				unexpected++
				if unexpected <= 400 {
					t.Errorf(format, args...)
				}
			}
			for col, actor := range accessActors {
				// The fixture's clock, so that its artifacts are unexpired.
				a, fx, srv := seededAppAt(t, b, func() time.Time { return testenv.T0 })
				w := newAccessWorld(t, a, fx, srv.URL)
				if actor == "allowlisted project's job token" {
					if err := a.Store.AllowJobTokens(context.Background(), fx.Project.ID, fx.Other.ID, 0, testenv.T0); err != nil {
						t.Fatal(err)
					}
				}
				header := w.header(actor)
				cases = accessCases(w)
				patterns = a.API.RoutePatterns()
				for _, pat := range accessOrder(patterns) {
					c, ok := cases[pat]
					if !ok {
						if col == 0 {
							report("%s: no expectation in accessCases", pat)
						}
						continue
					}
					method, path, _ := strings.Cut(pat, " ")
					concrete := fillPath(path, c.path, w.values)
					if c.query != "" {
						concrete += "?" + c.query
					}
					body := c.body
					if body == "" {
						body = "{}"
					}
					status, answer := accessRequest(t, srv.URL, method, concrete, body, header)
					pairs++
					want := strings.Fields(c.want)
					if len(want) != len(accessActors) {
						if col == 0 {
							report("%s: %d expectations for %d actors", pat, len(want), len(accessActors))
						}
						continue
					}
					if isExact(want[col]) {
						exact++
					}
					msg := ""
					switch {
					case status >= 500:
						msg = "server error"
					case !statusMatches(want[col], status):
						msg = "want " + want[col]
					case strings.HasPrefix(path, "/api/v4/projects/{id}"):
						msg = accessInvariant(actor, status, answer)
					}
					if msg != "" {
						report("%s %s as %s: %d %v: %s", method, concrete, actor, status, answer, msg)
					}
				}
			}
			for pat := range cases {
				if !containsString(patterns, pat) {
					report("accessCases names %q, which is no route", pat)
				}
			}
			fmt.Printf("MATRIX access %s: %d route×actor pairs (%d routes, %d actors), %d exact expectations, %d unexpected\n",
				b.Name, pairs, len(patterns), len(accessActors), exact, unexpected)
		})
	}
}

// accessInvariant holds whatever the table says: nothing leaks, and tokens
// of other or finished jobs never succeed.
func accessInvariant(actor string, status int, body map[string]any) string {
	switch actor {
	case "anonymous":
		if !(revealsNothing(status, body) || status == 401 || status == 404 && body["message"] == "404 Project Not Found") {
			return "want 401 or 404 Project Not Found"
		}
	case "outsider":
		if !(revealsNothing(status, body) || status == 404 && body["message"] == "404 Project Not Found") {
			return "want 404 Project Not Found"
		}
	case "finished job token", "other project's job token":
		if status < 300 {
			return "succeeded"
		}
	case "admin":
		if status == 404 && body["message"] == "404 Project Not Found" {
			return "an administrator was told the project does not exist"
		}
	}
	return ""
}

// revealsNothing accepts answers that do not depend on the project: a
// parameter error (GitLab validates parameters before the lookup) and the
// catch-all for a path no route serves.
func revealsNothing(status int, body map[string]any) bool {
	return status == 400 && body["error"] != nil || status == 404 && body["error"] == "404 Not Found"
}

// isExact tells an exact status ("403") from a class ("4xx").
func isExact(want string) bool { _, err := strconv.Atoi(want); return err == nil }

func statusMatches(want string, status int) bool {
	if isExact(want) {
		return want == strconv.Itoa(status)
	}
	return len(want) == 3 && want[1:] == "xx" && want[0] == strconv.Itoa(status)[0]
}

func containsString(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// accessOrder puts reads before writes (keeping the route table's order
// otherwise), so that what one actor's writes change never decides its reads.
func accessOrder(patterns []string) []string {
	out := append([]string(nil), patterns...)
	sort.SliceStable(out, func(i, j int) bool {
		return strings.HasPrefix(out[i], "GET ") && !strings.HasPrefix(out[j], "GET ")
	})
	return out
}

// accessWorld is the seeded fixture plus the records the routes with
// sub-resources need (a protected branch and tag, an agent, a trigger,
// allowlist entries, an artifacts archive), and the path values that
// address them.
type accessWorld struct {
	fx     *testenv.Fixture
	values map[string]string
	// outsideGroup is on the project's groups allowlist; spareGroup is not.
	outsideGroup, spareGroup int64
}

func newAccessWorld(t *testing.T, a *app.App, fx *testenv.Fixture, base string) *accessWorld {
	t.Helper()
	ctx := context.Background()
	w := &accessWorld{fx: fx, values: fixturePathValues(fx)}
	root := map[string]string{"PRIVATE-TOKEN": fx.Tokens["root"], "Content-Type": "application/json"}
	project := "/api/v4/projects/" + strconv.FormatInt(fx.Project.ID, 10)
	create := func(path, body string) map[string]any {
		status, answer := accessRequest(t, base, "POST", path, body, root)
		if status != http.StatusCreated {
			t.Fatalf("setting up the access matrix: POST %s: %d %v", path, status, answer)
		}
		return answer
	}
	id := func(m map[string]any) string { return strconv.FormatFloat(m["id"].(float64), 'f', -1, 64) }
	create(project+"/protected_branches", `{"name":"release/*"}`)
	create(project+"/protected_tags", `{"name":"stable-*"}`)
	w.values["agent_id"] = id(create(project+"/cluster_agents", `{"name":"deployer"}`))
	w.values["trigger_id"] = id(create(project+"/triggers", `{"description":"nightly"}`))
	// Public groups and a public project, so that maintainers may name
	// them in allowlists.
	outside := create("/api/v4/groups", `{"name":"Outside","path":"outside","visibility":"public"}`)
	w.outsideGroup = int64(outside["id"].(float64))
	w.spareGroup = int64(create("/api/v4/groups", `{"name":"Spare","path":"spare","visibility":"public"}`)["id"].(float64))
	shared := create("/api/v4/projects", fmt.Sprintf(`{"name":"Shared","path":"shared","namespace_id":%d,"visibility":"public"}`, w.outsideGroup))
	create(project+"/job_token_scope/allowlist", fmt.Sprintf(`{"target_project_id":%s}`, id(shared)))
	create(project+"/job_token_scope/groups_allowlist", fmt.Sprintf(`{"target_group_id":%d}`, w.outsideGroup))
	w.values["target_id"] = id(shared)

	// The successful job's archive, so that downloads can succeed.
	var zipped bytes.Buffer
	zw := zip.NewWriter(&zipped)
	f, err := zw.Create("report.txt")
	if err == nil {
		_, err = f.Write([]byte("all green\n"))
	}
	if err == nil {
		err = zw.Close()
	}
	if err == nil {
		_, err = a.Blobs.Put(ctx, "fixture/artifacts.zip", &zipped, 0)
	}
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func (w *accessWorld) header(actor string) map[string]string {
	h := map[string]string{"Content-Type": "application/json"}
	role := map[string]string{"outsider": "outsider", "guest": "guest", "reporter": "reporter", "developer": "developer",
		"maintainer": "maintainer", "admin": "root"}[actor]
	switch actor {
	case "anonymous":
	case "job token":
		h["JOB-TOKEN"] = w.fx.JobToken
	case "other project's job token", "allowlisted project's job token":
		h["JOB-TOKEN"] = w.fx.OtherJobToken
	case "finished job token":
		h["JOB-TOKEN"] = w.fx.FinishedJobToken
	default:
		h["PRIVATE-TOKEN"] = w.fx.Tokens[role]
	}
	return h
}

// job is the id of the fixture's build in status s.
func (w *accessWorld) job(s ci.JobStatus) string {
	return strconv.FormatInt(w.fx.JobsByStatus[s].ID, 10)
}

func accessRequest(t *testing.T, base, method, path, body string, header map[string]string) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequest(method, base+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	var answer map[string]any
	_ = json.Unmarshal(raw, &answer)
	return res.StatusCode, answer
}
