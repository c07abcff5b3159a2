package app_test

import (
	"fmt"
	"strconv"

	"gantry/internal/ci"
)

// accessCase is what the access matrix sends on one route and what each
// actor must get back.
type accessCase struct {
	// want holds one status per actor, in accessActors order: an exact
	// status ("403") or a class ("4xx").
	want  string
	path  map[string]string // path values beyond the world's defaults
	query string
	body  string // JSON; "{}" when empty
}

// Expectations shared by routes with one rule. Columns: anonymous,
// outsider, guest, reporter, developer, maintainer, admin, job token, other
// project's job token, allowlisted project's job token, finished job token.
// Sources: jobs-api.md §0.4 (which routes take job tokens: a job token
// elsewhere is no credential at all), §0.5 (abilities), §5 (visibility),
// and GitLab's lib/api files named per route.
const (
	// A signed-in user of any kind; job tokens are no credential here.
	anyUser = "401 200 200 200 200 200 200 401 401 401 401"
	// Administrators only (authenticated_as_admin!).
	adminOnly201 = "401 403 403 403 403 403 201 401 401 401 401"
	// Jobs API reads: a user (401), the project (404), read_build:
	// reporter and above (403) — §1.6, §1.7.
	jobRead = "401 404 403 200 200 200 200 401 401 401 401"
	// Job actions: update_build, developer and above — §1.8–§1.11.
	jobAction201 = "401 404 403 403 201 201 201 401 401 401 401"
	// Reads that take job tokens without forcing authentication (the
	// pipelines API and artifact downloads authenticate only non-GET
	// requests): anonymous callers meet the private project's 404; a job
	// token of a project not on the allowlist gets 403 — §1.1, §1.2, §5.
	jobTokenRead = "404 404 403 200 200 200 200 200 403 200 401"
	// Project settings that need maintainer (admin_project and friends),
	// on routes that authenticate! first.
	maintainerRead  = "401 404 403 403 403 200 200 401 401 401 401"
	maintainer201   = "401 404 403 403 403 201 201 401 401 401 401"
	maintainer204   = "401 404 403 403 403 204 204 401 401 401 401"
	developerCommit = "401 404 403 403 201 201 201 401 401 401 401"
	// Routes without any authentication hook (protected branches and tags,
	// branches): everyone who cannot see the private project, anonymous
	// and job-token callers included, meets its 404.
	readCodeNoAuth       = "404 404 403 200 200 200 200 404 404 404 404"
	maintainerNoAuthRead = "404 404 403 403 403 200 200 404 404 404 404"
	maintainerNoAuth201  = "404 404 403 403 403 201 201 404 404 404 404"
	maintainerNoAuth204  = "404 404 403 403 403 204 204 404 404 404 404"
	// Pipelines API reads that take no job tokens: anonymous (and job
	// token) callers meet the 404 of the private project.
	pipelineRead = "404 404 403 200 200 200 200 404 404 404 404"
	// The runner protocol authenticates with a runner or job token in the
	// request; none of the actors' credentials count, and a missing token
	// is a parameter error (requires :token).
	runnerTokenMissing = "400 400 400 400 400 400 400 400 400 400 400"
	// Runner-token routes: gantry also reads the runner token from the
	// Runner-Token and PRIVATE-TOKEN headers (gitlab-runner's header), so a
	// personal token there is a wrong runner token (403).
	runnerTokenWrong = "400 403 403 403 403 403 403 400 400 400 400"
	// Job-token routes of the runner protocol without a token: 403.
	runnerJobForbidden = "403 403 403 403 403 403 403 %s 403 403 403"
	// Runner management: instance runners are shown to every user; only
	// administrators change them.
	runnerAdmin = "401 403 403 403 403 403 %s 401 401 401 401"
)

// accessCases maps every route pattern to its request and expectations.
func accessCases(w *accessWorld) map[string]accessCase {
	fx := w.fx
	id := func(v int64) string { return strconv.FormatInt(v, 10) }
	alice := map[string]string{"id": id(fx.Alice.ID)}
	group := map[string]string{"id": id(fx.Group.ID)}
	runner := map[string]string{"id": id(fx.Runner.ID)}
	job := func(s ci.JobStatus) map[string]string { return map[string]string{"job_id": w.job(s)} }
	success := job(ci.StatusSuccess)
	return map[string]accessCase{
		"GET /api/v4/version": {want: anyUser},
		"GET /api/v4/user":    {want: anyUser},
		// Users are public to anyone, signed in or not, on a default instance.
		"GET /api/v4/users/{id}": {want: "200 200 200 200 200 200 200 200 200 200 200", path: alice},
		"POST /api/v4/users": {want: adminOnly201,
			body: `{"username":"newbie","name":"Newbie","email":"newbie@example.com","password":"a-long-password-1"}`},
		"POST /api/v4/users/{id}/personal_access_tokens": {want: adminOnly201, path: alice, body: `{"name":"ci","scopes":["api"]}`},

		// Any user may create a top-level group.
		"POST /api/v4/groups": {want: "401 201 201 201 201 201 201 401 401 401 401", body: `{"name":"Fresh","path":"fresh"}`},
		// A private group is seen by its members and by members of any
		// project or subgroup below it (GroupPolicy has_projects); the
		// groups API does not force authentication.
		"GET /api/v4/groups/{id}": {want: "404 404 200 200 200 200 200 404 404 404 404", path: group},
		// admin_group_member: owners (alice is a developer of the group).
		"POST /api/v4/groups/{id}/members": {want: "401 404 403 403 403 403 201 401 401 401 401", path: group,
			body: fmt.Sprintf(`{"user_id":%d,"access_level":10}`, fx.Outsider.ID)},

		"GET /api/v4/projects":  {want: "200 200 200 200 200 200 200 200 200 200 200"},
		"POST /api/v4/projects": {want: "401 201 201 201 201 201 201 401 401 401 401", body: `{"name":"Fresh","path":"fresh"}`},
		// The projects API does not force authentication on GET.
		"GET /api/v4/projects/{id}": {want: "404 404 200 200 200 200 200 404 404 404 404"},
		"PUT /api/v4/projects/{id}": {want: "401 404 403 403 403 200 200 401 401 401 401", body: `{"description":"tools"}`},
		// admin_project_member: maintainers.
		"POST /api/v4/projects/{id}/members": {want: maintainer201, body: fmt.Sprintf(`{"user_id":%d,"access_level":10}`, fx.Outsider.ID)},

		"GET /api/v4/projects/{id}/jobs":                {want: "401 404 403 200 200 200 200 200 403 200 401"},
		"GET /api/v4/projects/{id}/jobs/{job_id}":       {want: jobRead},
		"GET /api/v4/projects/{id}/jobs/{job_id}/trace": {want: jobRead},
		// gantry's log search reads logs, so it is authorised like the trace.
		"GET /api/v4/projects/{id}/jobs/search": {want: jobRead, query: "q=hello"},
		// gantry's extension, readable like the job.
		"GET /api/v4/projects/{id}/jobs/{job_id}/queue":   {want: jobRead, path: job(ci.StatusPending)},
		"POST /api/v4/projects/{id}/jobs/{job_id}/cancel": {want: jobAction201, path: job(ci.StatusPending)},
		"POST /api/v4/projects/{id}/jobs/{job_id}/retry":  {want: jobAction201, path: job(ci.StatusCanceled)},
		// erase_build: maintainers, or the developer who triggered the job
		// (every fixture job is alice's, and alice is the developer).
		"POST /api/v4/projects/{id}/jobs/{job_id}/erase": {want: jobAction201, path: job(ci.StatusFailed)},
		// Play answers 200, not 201 (§1.11).
		"POST /api/v4/projects/{id}/jobs/{job_id}/play":     {want: "401 404 403 403 200 200 200 401 401 401 401", path: job(ci.StatusManual)},
		"GET /api/v4/projects/{id}/jobs/{job_id}/artifacts": {want: jobTokenRead, path: success},
		"GET /api/v4/projects/{id}/jobs/{job_id}/{rest...}": {want: jobTokenRead,
			path: map[string]string{"job_id": w.job(ci.StatusSuccess), "rest": "artifacts/report.txt"}},
		// keep_job_artifacts is update_build (§1.12), answered with 200.
		"POST /api/v4/projects/{id}/jobs/{job_id}/artifacts/keep": {want: "401 404 403 403 200 200 200 401 401 401 401", path: success},
		// destroy_artifacts: maintainers (§1.12).
		"DELETE /api/v4/projects/{id}/jobs/{job_id}/artifacts":           {want: maintainer204, path: success},
		"DELETE /api/v4/projects/{id}/artifacts":                         {want: "401 404 403 403 403 202 202 401 401 401 401"},
		"GET /api/v4/projects/{id}/pipelines/{pipeline_id}/jobs":         {want: jobTokenRead},
		"GET /api/v4/projects/{id}/pipelines/{pipeline_id}/bridges":      {want: jobTokenRead},
		"GET /api/v4/projects/{id}/pipelines/{pipeline_id}/trigger_jobs": {want: jobTokenRead},
		// The job of the token; any other credential is told 404 (§1.4).
		"GET /api/v4/job":                {want: "401 404 404 404 404 404 404 200 200 200 401"},
		"GET /api/v4/job/allowed_agents": {want: "401 404 404 404 404 404 404 200 200 200 401"},

		// Protected tags: manage_protected_tags, maintainers.
		"GET /api/v4/projects/{id}/protected_tags":           {want: maintainerNoAuthRead},
		"POST /api/v4/projects/{id}/protected_tags":          {want: maintainerNoAuth201, body: `{"name":"rc-*"}`},
		"GET /api/v4/projects/{id}/protected_tags/{name}":    {want: maintainerNoAuthRead, path: map[string]string{"name": "stable-*"}},
		"DELETE /api/v4/projects/{id}/protected_tags/{name}": {want: maintainerNoAuth204, path: map[string]string{"name": "stable-*"}},
		// Protected branches: reading needs read_code (reporter), changing
		// needs maintainer.
		"GET /api/v4/projects/{id}/protected_branches":           {want: readCodeNoAuth},
		"POST /api/v4/projects/{id}/protected_branches":          {want: maintainerNoAuth201, body: `{"name":"hotfix/*"}`},
		"GET /api/v4/projects/{id}/protected_branches/{name}":    {want: readCodeNoAuth, path: map[string]string{"name": "release%2F*"}},
		"DELETE /api/v4/projects/{id}/protected_branches/{name}": {want: maintainerNoAuth204, path: map[string]string{"name": "release%2F*"}},
		// Cluster agents: read_cluster_agent is developer and above, and
		// those below are told the agents do not exist; create_cluster and
		// admin_cluster are maintainer.
		"GET /api/v4/projects/{id}/cluster_agents":               {want: "401 404 404 404 200 200 200 401 401 401 401"},
		"POST /api/v4/projects/{id}/cluster_agents":              {want: maintainer201, body: `{"name":"builder"}`},
		"GET /api/v4/projects/{id}/cluster_agents/{agent_id}":    {want: "401 404 404 404 200 200 200 401 401 401 401"},
		"DELETE /api/v4/projects/{id}/cluster_agents/{agent_id}": {want: maintainer204},

		// Pipelines API (lib/api/ci/pipelines.rb): job tokens on the list and
		// the single pipeline, not on variables and the test report.
		"GET /api/v4/projects/{id}/pipelines": {want: jobTokenRead},
		// create_pipeline: developers; the project has no repository, so
		// the ref is not found (400).
		"POST /api/v4/projects/{id}/pipeline":               {want: "401 404 403 403 400 400 400 401 401 401 401", body: `{"ref":"main"}`},
		"GET /api/v4/projects/{id}/pipelines/{pipeline_id}": {want: jobTokenRead},
		// destroy_pipeline: owners only (root, as admin).
		"DELETE /api/v4/projects/{id}/pipelines/{pipeline_id}": {want: "401 404 403 403 403 403 204 401 401 401 401",
			path: map[string]string{"pipeline_id": id(fx.Pipeline2.ID)}},
		"POST /api/v4/projects/{id}/pipelines/{pipeline_id}/cancel": {want: "401 404 403 403 200 200 200 401 401 401 401"},
		"POST /api/v4/projects/{id}/pipelines/{pipeline_id}/retry":  {want: jobAction201},
		// read_pipeline_variable: developers.
		"GET /api/v4/projects/{id}/pipelines/{pipeline_id}/variables":   {want: "404 404 403 403 200 200 200 404 404 404 404"},
		"GET /api/v4/projects/{id}/pipelines/{pipeline_id}/test_report": {want: pipelineRead},

		// Triggers: admin_build, maintainers.
		"POST /api/v4/projects/{id}/triggers":                {want: maintainer201, body: `{"description":"weekly"}`},
		"GET /api/v4/projects/{id}/triggers":                 {want: maintainerRead},
		"DELETE /api/v4/projects/{id}/triggers/{trigger_id}": {want: maintainer204},

		// gantry's event stream reads as the jobs list does; without
		// Accept: text/event-stream those who may read it get 406 (a stream
		// would never end).
		"GET /api/v4/projects/{id}/events/stream": {want: "401 404 403 406 406 406 406 406 403 406 401"},
		// Webhooks: admin_project (maintainer), after authenticate!.
		"GET /api/v4/projects/{id}/hooks":                  {want: maintainerRead},
		"POST /api/v4/projects/{id}/hooks":                 {want: maintainer201, body: `{"url":"http://127.0.0.1:9/other","job_events":true}`},
		"GET /api/v4/projects/{id}/hooks/{hook_id}":        {want: maintainerRead},
		"PUT /api/v4/projects/{id}/hooks/{hook_id}":        {want: maintainerRead, body: `{"pipeline_events":false}`},
		"DELETE /api/v4/projects/{id}/hooks/{hook_id}":     {want: maintainer204},
		"GET /api/v4/projects/{id}/hooks/{hook_id}/events": {want: maintainerRead},
		// Authenticated by the trigger token in the body alone; without
		// one the parameters fail first, for everybody.
		"POST /api/v4/projects/{id}/trigger/pipeline": {want: runnerTokenMissing},
		// create_pipeline: developers.
		"POST /api/v4/projects/{id}/ci/lint": {want: "401 404 403 403 200 200 200 401 401 401 401",
			body: `{"content":"build:\n  script: [make]\n"}`},

		// push_code: developers.
		"POST /api/v4/projects/{id}/repository/files/{file_path}": {want: developerCommit,
			body: `{"branch":"main","content":"hello\n","commit_message":"Add README"}`},
		// Runs after the POST above created the file.
		"PUT /api/v4/projects/{id}/repository/files/{file_path}": {want: "401 404 403 403 200 200 200 401 401 401 401",
			body: `{"branch":"main","content":"hello again\n","commit_message":"Change README"}`},
		"POST /api/v4/projects/{id}/repository/commits": {want: developerCommit,
			body: `{"branch":"main","commit_message":"Add docs","actions":[{"action":"create","file_path":"docs/a.md","content":"a\n"}]}`},
		"GET /api/v4/projects/{id}/repository/branches": {want: readCodeNoAuth},

		// Job token scope: admin_project, maintainers.
		"GET /api/v4/projects/{id}/job_token_scope":           {want: maintainerRead},
		"PATCH /api/v4/projects/{id}/job_token_scope":         {want: maintainer204, body: `{"enabled":true}`},
		"GET /api/v4/projects/{id}/job_token_scope/allowlist": {want: maintainerRead},
		"POST /api/v4/projects/{id}/job_token_scope/allowlist": {want: maintainer201,
			body: fmt.Sprintf(`{"target_project_id":%d}`, fx.Public.ID)},
		"DELETE /api/v4/projects/{id}/job_token_scope/allowlist/{target_id}": {want: maintainer204},
		"GET /api/v4/projects/{id}/job_token_scope/groups_allowlist":         {want: maintainerRead},
		"POST /api/v4/projects/{id}/job_token_scope/groups_allowlist": {want: maintainer201,
			body: fmt.Sprintf(`{"target_group_id":%d}`, w.spareGroup)},
		"DELETE /api/v4/projects/{id}/job_token_scope/groups_allowlist/{target_id}": {want: maintainer204,
			path: map[string]string{"target_id": id(w.outsideGroup)}},

		// create_runner on the project: maintainers.
		"POST /api/v4/user/runners": {want: "401 403 403 403 403 201 201 401 401 401 401",
			body: fmt.Sprintf(`{"runner_type":"project_type","project_id":%d}`, fx.Project.ID)},
		"GET /api/v4/runners":     {want: anyUser},
		"GET /api/v4/runners/all": {want: fmt.Sprintf(runnerAdmin, "200")},
		// "Instance runner details are available to all authenticated users."
		"GET /api/v4/runners/{id}":          {want: anyUser, path: runner},
		"PUT /api/v4/runners/{id}":          {want: fmt.Sprintf(runnerAdmin, "200"), path: runner, body: `{"description":"renamed"}`},
		"DELETE /api/v4/runners/{id}":       {want: fmt.Sprintf(runnerAdmin, "204"), path: runner},
		"GET /api/v4/runners/{id}/jobs":     {want: fmt.Sprintf(runnerAdmin, "200"), path: runner},
		"GET /api/v4/projects/{id}/runners": {want: maintainerRead},

		"POST /api/v4/runners":                            {want: runnerTokenMissing},
		"DELETE /api/v4/runners":                          {want: runnerTokenWrong},
		"POST /api/v4/runners/verify":                     {want: runnerTokenWrong},
		"DELETE /api/v4/runners/managers":                 {want: runnerTokenWrong},
		"POST /api/v4/runners/reset_authentication_token": {want: runnerTokenWrong},
		"POST /api/v4/jobs/request":                       {want: runnerTokenWrong},
		// GitLab requires the job token in the body here; gantry also takes
		// the JOB-TOKEN header, as on the trace and artifact routes.
		"PUT /api/v4/jobs/{job_id}": {want: fmt.Sprintf(runnerJobForbidden, "200")},
		// Content-Range is checked after the job token.
		"PATCH /api/v4/jobs/{job_id}/trace":    {want: fmt.Sprintf(runnerJobForbidden, "400")},
		"POST /api/v4/jobs/{job_id}/artifacts": {want: fmt.Sprintf(runnerJobForbidden, "400")},
		// A job downloading the artifacts of a job it depends on; the
		// running job has no archive. gantry looks only at job tokens and
		// only within the caller's pipeline, so a personal token is no
		// credential (401; current GitLab authenticates the user, then
		// refuses a request without a job token with 403).
		"GET /api/v4/jobs/{job_id}/artifacts": {want: "401 401 401 401 401 401 401 404 404 404 401"},
	}
}
