package httpapi_test

import (
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

func (e *env) action(role string, j *ci.Job, verb, body string) response {
	e.t.Helper()
	path := fmt.Sprintf("/api/v4/projects/%s/jobs/%d/%s", pid(e), j.ID, verb)
	if role == "" {
		return e.req("POST", path, body)
	}
	return e.req("POST", path, body, "PRIVATE-TOKEN: "+e.fx.Tokens[role])
}

func status(t *testing.T, r response) string {
	t.Helper()
	return r.json(t).(map[string]any)["status"].(string)
}

func TestCancelJob(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		js := e.fx.JobsByStatus
		expect(t, e.action("", js[ci.StatusPending], "cancel", ""), 401, `{"message":"401 Unauthorized"}`)
		// Authentication comes before parameter validation, which comes before the lookup.
		expect(t, e.action("", js[ci.StatusPending], "cancel", `{"force":"maybe"}`), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.action("outsider", js[ci.StatusPending], "cancel", `{"force":"maybe"}`), 400, `{"error":"force is invalid"}`)
		expect(t, e.action("reporter", js[ci.StatusPending], "cancel", ""), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.action("outsider", js[ci.StatusPending], "cancel", ""), 404, `{"message":"404 Project Not Found"}`)
		expect(t, e.action("developer", e.fx.Bridge, "cancel", ""), 404, `{"message":"404 Not found"}`)
		// Pending → canceled; running → canceling; finished → unchanged, still 201.
		r := e.action("developer", js[ci.StatusPending], "cancel", "")
		if r.status != 201 || status(t, r) != "canceled" {
			t.Fatalf("pending: %d %s", r.status, r.body)
		}
		r = e.action("developer", js[ci.StatusSuccess], "cancel", "{}")
		if r.status != 201 || status(t, r) != "success" {
			t.Fatalf("success: %d %s", r.status, r.body)
		}
		r = e.action("developer", js[ci.StatusRunning], "cancel", "")
		if r.status != 201 || status(t, r) != "canceling" {
			t.Fatalf("running: %d %s", r.status, r.body)
		}
		// force: developers may not; maintainers move canceling to canceled, running stays.
		expect(t, e.action("developer", js[ci.StatusCanceling], "cancel", `{"force":true}`), 403, `{"message":"403 Forbidden"}`)
		r = e.action("maintainer", js[ci.StatusCanceling], "cancel", `{"force":true}`)
		if r.status != 201 || status(t, r) != "canceled" {
			t.Fatalf("force: %d %s", r.status, r.body)
		}
		r = e.action("maintainer", js[ci.StatusManual], "cancel", "null")
		if r.status != 201 || status(t, r) != "canceled" {
			t.Fatalf("manual: %d %s", r.status, r.body)
		}
	})
}

func TestRetryJob(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		js := e.fx.JobsByStatus
		expect(t, e.action("", js[ci.StatusFailed], "retry", ""), 401, `{"message":"401 Unauthorized"}`)
		expect(t, e.action("reporter", js[ci.StatusFailed], "retry", ""), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.action("developer", js[ci.StatusCreated], "retry", ""), 403, `{"message":"403 Forbidden - Job is not retryable"}`)
		expect(t, e.action("developer", e.fx.RetriedOld, "retry", ""), 403, `{"message":"403 Forbidden - Job is not retryable"}`)
		r := e.action("developer", js[ci.StatusCanceled], "retry", "")
		if r.status != 201 {
			t.Fatalf("retry: %d %s", r.status, r.body)
		}
		m := r.json(t).(map[string]any)
		if int64(m["id"].(float64)) == js[ci.StatusCanceled].ID || m["name"] != "job-canceled" || m["status"] != "created" {
			t.Fatalf("new job %v", m)
		}
		if m["user"].(map[string]any)["username"] != "alice" {
			t.Fatalf("retried by %v", m["user"])
		}
		// The original keeps its status and is now hidden as retried.
		old := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d", pid(e), js[ci.StatusCanceled].ID), e.fx.Tokens["developer"])
		if status(t, old) != "canceled" {
			t.Fatalf("original %s", old.body)
		}
		expect(t, e.action("developer", js[ci.StatusCanceled], "retry", ""), 403, `{"message":"403 Forbidden - Job is not retryable"}`)
		// gantry's extension: a retry may set new variables, which later
		// retries inherit.
		expect(t, e.action("developer", js[ci.StatusFailed], "retry", `{"job_variables_attributes":[{"value":"1"}]}`), 400,
			`{"error":"job_variables_attributes[0][key] is missing"}`)
		r = e.action("developer", js[ci.StatusFailed], "retry", `{"job_variables_attributes":[{"key":"TARGET","value":"canary"}]}`)
		if r.status != 201 {
			t.Fatalf("retry with variables: %d %s", r.status, r.body)
		}
		first := int64(r.json(t).(map[string]any)["id"].(float64))
		if vars, err := e.st.JobVariables(t.Context(), first); err != nil || len(vars) != 1 || vars[0].Key != "TARGET" || vars[0].Value != "canary" {
			t.Fatalf("variables of the retry %v %v", vars, err)
		}
		for _, step := range [][2]ci.JobStatus{{ci.StatusCreated, ci.StatusPending}, {ci.StatusPending, ci.StatusRunning}, {ci.StatusRunning, ci.StatusFailed}} {
			if _, err := e.st.TransitionJob(t.Context(), store.TransitionParams{JobID: first, From: step[0], To: step[1], Now: testenv.T0}); err != nil {
				t.Fatal(err)
			}
		}
		r = e.action("developer", &ci.Job{ID: first}, "retry", "")
		if r.status != 201 {
			t.Fatalf("second retry: %d %s", r.status, r.body)
		}
		second := int64(r.json(t).(map[string]any)["id"].(float64))
		if vars, err := e.st.JobVariables(t.Context(), second); err != nil || len(vars) != 1 || vars[0].Value != "canary" {
			t.Fatalf("inherited variables %v %v", vars, err)
		}
		// Bridges retry too, rendered as jobs.
		r = e.action("developer", e.fx.Bridge, "retry", "")
		if r.status != 201 || r.json(t).(map[string]any)["tag_list"].([]any)[0] != "bridge" {
			t.Fatalf("bridge retry %d %s", r.status, r.body)
		}
	})
}

func TestEraseJob(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		js := e.fx.JobsByStatus
		expect(t, e.action("developer", js[ci.StatusRunning], "erase", ""), 403, `{"message":"403 Forbidden - Job is not erasable!"}`)
		expect(t, e.action("developer", js[ci.StatusCanceled], "erase", ""), 403, `{"message":"403 Forbidden - Job is not erasable!"}`)
		// Alice triggered the fixture's jobs: Bob (developer) may not erase them.
		expect(t, e.action("developer2", js[ci.StatusSuccess], "erase", ""), 403, `{"message":"403 Forbidden"}`)
		r := e.action("developer", js[ci.StatusSuccess], "erase", "")
		if r.status != 201 {
			t.Fatalf("erase %d %s", r.status, r.body)
		}
		m := r.json(t).(map[string]any)
		if m["erased_at"] == nil || len(m["artifacts"].([]any)) != 0 || m["artifacts_expire_at"] != nil {
			t.Fatalf("erased job %v", m)
		}
		if _, ok := m["artifacts_file"]; ok {
			t.Fatal("artifacts_file after erase")
		}
		expect(t, e.action("developer", js[ci.StatusSuccess], "erase", ""), 403, `{"message":"403 Forbidden - Job is not erasable!"}`)
		// A maintainer erases someone else's job; its log is gone.
		r = e.action("maintainer", js[ci.StatusFailed], "erase", "")
		if r.status != 201 {
			t.Fatalf("maintainer erase %d %s", r.status, r.body)
		}
		tr := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d/trace", pid(e), js[ci.StatusFailed].ID), e.fx.Tokens["developer"])
		if tr.status != 200 || len(tr.body) != 0 {
			t.Fatalf("log after erase: %d %q", tr.status, tr.body)
		}
	})
}

func TestPlayJob(t *testing.T) {
	eachBackend(t, func(t *testing.T, e *env) {
		js := e.fx.JobsByStatus
		expect(t, e.action("developer", js[ci.StatusManual], "play", `{"job_variables_attributes":[{"value":"v"}]}`), 400,
			`{"error":"job_variables_attributes[0][key] is missing"}`)
		expect(t, e.action("developer", js[ci.StatusManual], "play", `{"job_variables_attributes":[{"key":"A","value":"1"},{"key":"B"}]}`), 400,
			`{"error":"job_variables_attributes[1][value] is missing"}`)
		expect(t, e.action("reporter", js[ci.StatusManual], "play", ""), 403, `{"message":"403 Forbidden"}`)
		expect(t, e.action("outsider", js[ci.StatusManual], "play", ""), 404, `{"message":"404 Project Not Found"}`)
		expect(t, e.action("developer", js[ci.StatusSuccess], "play", ""), 400, `{"message":"400 Bad request - Unplayable Job"}`)
		r := e.action("developer2", js[ci.StatusManual], "play", `{"job_variables_attributes":[{"key":"DEPLOY_TO","value":"prod"}]}`)
		if r.status != 200 {
			t.Fatalf("play %d %s", r.status, r.body)
		}
		m := r.json(t).(map[string]any)
		if m["status"] != "pending" || m["user"].(map[string]any)["username"] != "bob" {
			t.Fatalf("played %v %v", m["status"], m["user"])
		}
		vars, err := e.st.JobVariables(t.Context(), js[ci.StatusManual].ID)
		if err != nil || len(vars) != 1 || vars[0].Key != "DEPLOY_TO" || vars[0].Value != "prod" {
			t.Fatalf("job variables %v %v", vars, err)
		}
		expect(t, e.action("developer", js[ci.StatusManual], "play", ""), 400, `{"message":"400 Bad request - Unplayable Job"}`)
		// A delayed job can be started early; the Go client sends the literal body null.
		r = e.action("developer", js[ci.StatusScheduled], "play", "null")
		if r.status != 200 || status(t, r) != "pending" {
			t.Fatalf("scheduled: %d %s", r.status, r.body)
		}
	})
}

// With archive_builds_older_than set, old jobs are archived: the JSON says
// so and every action is refused.
func TestArchivedJobsRefuseActions(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			fx := testenv.Seed(t, st)
			api := httpapi.New(httpapi.Config{ExternalURL: externalURL, Version: "17.9.3", ArchiveBuildsOlderThan: time.Minute},
				httpapi.Deps{Store: st, Now: func() time.Time { return testenv.T0 }})
			srv := httptest.NewServer(api.Handler())
			t.Cleanup(srv.Close)
			e := &env{t: t, st: st, fx: fx, srv: srv}
			js := fx.JobsByStatus
			r := e.get(fmt.Sprintf("/api/v4/projects/%s/jobs/%d", pid(e), js[ci.StatusFailed].ID), fx.Tokens["developer"])
			if r.json(t).(map[string]any)["archived"] != true {
				t.Fatalf("archived flag: %s", r.body)
			}
			expect(t, e.action("developer", js[ci.StatusFailed], "retry", ""), 403, `{"message":"403 Forbidden - Job is not retryable"}`)
			expect(t, e.action("developer", js[ci.StatusManual], "play", ""), 400, `{"message":"400 Bad request - Unplayable Job"}`)
			expect(t, e.action("maintainer", js[ci.StatusSuccess], "erase", ""), 403, `{"message":"403 Forbidden"}`)
			expect(t, e.action("maintainer", js[ci.StatusPending], "cancel", ""), 403, `{"message":"403 Forbidden"}`)
		})
	}
}
