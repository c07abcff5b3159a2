package httpapi

import (
	"net/http"

	"gantry/internal/ci"
)

// addRoutes is the whole public API surface. Every GET also answers HEAD.
func (a *API) addRoutes(mux Router) {
	h := a.wrap
	const v4 = "/api/v4"

	mux.Handle("GET "+v4+"/version", h(a.handleVersion))
	mux.Handle("GET "+v4+"/user", h(a.handleCurrentUser))
	mux.Handle("GET "+v4+"/users/{id}", h(a.handleGetUser))
	mux.Handle("POST "+v4+"/users", h(a.handleCreateUser))
	mux.Handle("POST "+v4+"/users/{id}/personal_access_tokens", h(a.handleCreateUserToken))

	mux.Handle("POST "+v4+"/groups", h(a.handleCreateGroup))
	mux.Handle("GET "+v4+"/groups/{id}", h(a.handleGetGroup))
	mux.Handle("POST "+v4+"/groups/{id}/members", h(a.handleAddGroupMember))

	mux.Handle("GET "+v4+"/projects", h(a.handleListProjects))
	mux.Handle("POST "+v4+"/projects", h(a.handleCreateProject))
	mux.Handle("GET "+v4+"/projects/{id}", h(a.handleGetProject))
	mux.Handle("PUT "+v4+"/projects/{id}", h(a.handleUpdateProject))
	mux.Handle("POST "+v4+"/projects/{id}/members", h(a.handleAddProjectMember))

	mux.Handle("GET "+v4+"/projects/{id}/jobs", h(a.handleListProjectJobs))
	mux.Handle("GET "+v4+"/projects/{id}/jobs/search", h(a.handleSearchJobLogs))
	mux.Handle("GET "+v4+"/projects/{id}/jobs/{job_id}", h(a.handleGetJob))
	mux.Handle("GET "+v4+"/projects/{id}/jobs/{job_id}/trace", h(a.handleGetTrace))
	mux.Handle("GET "+v4+"/projects/{id}/jobs/{job_id}/queue", h(a.handleJobQueue))
	mux.Handle("POST "+v4+"/projects/{id}/jobs/{job_id}/cancel", h(a.handleCancelJob))
	mux.Handle("POST "+v4+"/projects/{id}/jobs/{job_id}/retry", h(a.handleRetryJob))
	mux.Handle("POST "+v4+"/projects/{id}/jobs/{job_id}/erase", h(a.handleEraseJob))
	mux.Handle("POST "+v4+"/projects/{id}/jobs/{job_id}/play", h(a.handlePlayJob))
	mux.Handle("GET "+v4+"/projects/{id}/jobs/{job_id}/artifacts", h(a.handleDownloadJobArtifacts))
	mux.Handle("GET "+v4+"/projects/{id}/jobs/{job_id}/{rest...}", h(a.handleJobSubtree))
	mux.Handle("POST "+v4+"/projects/{id}/jobs/{job_id}/artifacts/keep", h(a.handleKeepArtifacts))
	mux.Handle("DELETE "+v4+"/projects/{id}/jobs/{job_id}/artifacts", h(a.handleDeleteJobArtifacts))
	mux.Handle("DELETE "+v4+"/projects/{id}/artifacts", h(a.handleDeleteProjectArtifacts))
	mux.Handle("GET "+v4+"/projects/{id}/pipelines/{pipeline_id}/jobs", h(a.handleListPipelineJobs(ci.KindBuild)))
	mux.Handle("GET "+v4+"/projects/{id}/pipelines/{pipeline_id}/bridges", h(a.handleListPipelineJobs(ci.KindBridge)))
	mux.Handle("GET "+v4+"/projects/{id}/pipelines/{pipeline_id}/trigger_jobs", h(a.handleListPipelineJobs(ci.KindBridge)))
	mux.Handle("GET "+v4+"/job", h(a.handleGetJobOfToken))
	mux.Handle("GET "+v4+"/job/allowed_agents", h(a.handleAllowedAgents))
	for kind, path := range map[ci.RefKind]string{ci.RefBranch: "protected_branches", ci.RefTag: "protected_tags"} {
		mux.Handle("GET "+v4+"/projects/{id}/"+path, h(a.handleListProtected(kind)))
		mux.Handle("POST "+v4+"/projects/{id}/"+path, h(a.handleCreateProtected(kind)))
		mux.Handle("GET "+v4+"/projects/{id}/"+path+"/{name}", h(a.handleGetProtected(kind)))
		mux.Handle("DELETE "+v4+"/projects/{id}/"+path+"/{name}", h(a.handleDeleteProtected(kind)))
	}
	mux.Handle("GET "+v4+"/projects/{id}/cluster_agents", h(a.handleListAgents))
	mux.Handle("POST "+v4+"/projects/{id}/cluster_agents", h(a.handleCreateAgent))
	mux.Handle("GET "+v4+"/projects/{id}/cluster_agents/{agent_id}", h(a.handleGetAgent))
	mux.Handle("DELETE "+v4+"/projects/{id}/cluster_agents/{agent_id}", h(a.handleDeleteAgent))

	mux.Handle("GET "+v4+"/projects/{id}/pipelines", h(a.handleListPipelines))
	mux.Handle("POST "+v4+"/projects/{id}/pipeline", h(a.handleCreatePipeline))
	mux.Handle("GET "+v4+"/projects/{id}/pipelines/{pipeline_id}", h(a.handleGetPipeline))
	mux.Handle("DELETE "+v4+"/projects/{id}/pipelines/{pipeline_id}", h(a.handleDeletePipeline))
	mux.Handle("POST "+v4+"/projects/{id}/pipelines/{pipeline_id}/cancel", h(a.handleCancelPipeline))
	mux.Handle("POST "+v4+"/projects/{id}/pipelines/{pipeline_id}/retry", h(a.handleRetryPipeline))
	mux.Handle("GET "+v4+"/projects/{id}/pipelines/{pipeline_id}/variables", h(a.handlePipelineVariables))
	mux.Handle("GET "+v4+"/projects/{id}/pipelines/{pipeline_id}/test_report", h(a.handleTestReport))

	mux.Handle("POST "+v4+"/projects/{id}/triggers", h(a.handleCreateTrigger))
	mux.Handle("GET "+v4+"/projects/{id}/triggers", h(a.handleListTriggers))
	mux.Handle("DELETE "+v4+"/projects/{id}/triggers/{trigger_id}", h(a.handleDeleteTrigger))
	mux.Handle("POST "+v4+"/projects/{id}/trigger/pipeline", h(a.handleTriggerPipeline))
	mux.Handle("POST "+v4+"/projects/{id}/ci/lint", h(a.handleLint))

	mux.Handle("POST "+v4+"/projects/{id}/repository/files/{file_path}", h(a.handleWriteFile(true)))
	mux.Handle("PUT "+v4+"/projects/{id}/repository/files/{file_path}", h(a.handleWriteFile(false)))
	mux.Handle("POST "+v4+"/projects/{id}/repository/commits", h(a.handleCreateCommit))
	mux.Handle("GET "+v4+"/projects/{id}/repository/branches", h(a.handleListBranches))

	mux.Handle("GET "+v4+"/projects/{id}/job_token_scope", h(a.handleGetJobTokenScope))
	mux.Handle("PATCH "+v4+"/projects/{id}/job_token_scope", h(a.handlePatchJobTokenScope))
	mux.Handle("GET "+v4+"/projects/{id}/job_token_scope/allowlist", h(a.handleJobTokenAllowlist))
	mux.Handle("POST "+v4+"/projects/{id}/job_token_scope/allowlist", h(a.handleAddJobTokenAllowlist(false)))
	mux.Handle("DELETE "+v4+"/projects/{id}/job_token_scope/allowlist/{target_id}", h(a.handleDeleteJobTokenAllowlist(false)))
	mux.Handle("GET "+v4+"/projects/{id}/job_token_scope/groups_allowlist", h(a.handleJobTokenGroupsAllowlist))
	mux.Handle("POST "+v4+"/projects/{id}/job_token_scope/groups_allowlist", h(a.handleAddJobTokenAllowlist(true)))
	mux.Handle("DELETE "+v4+"/projects/{id}/job_token_scope/groups_allowlist/{target_id}", h(a.handleDeleteJobTokenAllowlist(true)))

	mux.Handle("GET "+v4+"/projects/{id}/events/stream", h(a.handleEventStream))
	mux.Handle("GET "+v4+"/projects/{id}/hooks", h(a.handleListHooks))
	mux.Handle("POST "+v4+"/projects/{id}/hooks", h(a.handleCreateHook))
	mux.Handle("GET "+v4+"/projects/{id}/hooks/{hook_id}", h(a.handleGetHook))
	mux.Handle("PUT "+v4+"/projects/{id}/hooks/{hook_id}", h(a.handleUpdateHook))
	mux.Handle("DELETE "+v4+"/projects/{id}/hooks/{hook_id}", h(a.handleDeleteHook))
	mux.Handle("GET "+v4+"/projects/{id}/hooks/{hook_id}/events", h(a.handleHookEvents))

	mux.Handle("POST "+v4+"/user/runners", h(a.handleCreateRunner))
	mux.Handle("GET "+v4+"/runners", h(a.handleListRunners))
	mux.Handle("GET "+v4+"/runners/all", h(a.handleListAllRunners))
	mux.Handle("GET "+v4+"/runners/{id}", h(a.handleGetRunner))
	mux.Handle("PUT "+v4+"/runners/{id}", h(a.handleUpdateRunner))
	mux.Handle("DELETE "+v4+"/runners/{id}", h(a.handleDeleteRunner))
	mux.Handle("GET "+v4+"/runners/{id}/jobs", h(a.handleRunnerJobs))
	mux.Handle("GET "+v4+"/projects/{id}/runners", h(a.handleProjectRunners))

	for _, m := range a.mounts {
		m(mux)
	}
}

// Router is what routes are registered on.
type Router interface {
	Handle(pattern string, h http.Handler)
}

// patternRecorder is a Router that only notes patterns.
type patternRecorder []string

func (p *patternRecorder) Handle(pattern string, _ http.Handler) { *p = append(*p, pattern) }

// RoutePatterns lists every route the API serves ("METHOD /path"),
// mounted ones included, for tests that must cover the whole surface.
func (a *API) RoutePatterns() []string {
	var rec patternRecorder
	a.addRoutes(&rec)
	return rec
}
