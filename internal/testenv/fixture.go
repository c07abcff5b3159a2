package testenv

import (
	"context"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// T0 is the fixture's fixed "now"; every seeded time is relative to it.
var T0 = time.Date(2026, 1, 15, 10, 0, 0, 0, time.UTC)

// Fixture is a seeded world: users of every role, a project in a nested
// group with pipelines, retried jobs, a bridge with its downstream pipeline
// and jobs in every status; and a second, private project.
type Fixture struct {
	Root, Alice, Bob, Guest, Reporter, Maintainer, Outsider *ci.User
	// Tokens by role name: root, developer (alice), developer2 (bob), guest,
	// reporter, maintainer, outsider, readonly (alice, read_api), expired, revoked.
	Tokens map[string]string

	Group, Subgroup *ci.Namespace
	Project         *ci.Project // acme/tools/app.core, private
	Other           *ci.Project // acme/other, private, alice is not a member
	Public          *ci.Project // acme/public-app, public with public pipelines

	Pipeline   *ci.Pipeline // main, several stages
	Downstream *ci.Pipeline // child pipeline of Bridge
	Pipeline2  *ci.Pipeline // a tag pipeline
	OtherPipe  *ci.Pipeline

	// JobsByStatus holds one build per status in Pipeline.
	JobsByStatus map[ci.JobStatus]*ci.Job
	RetriedOld   *ci.Job // superseded attempt
	RetriedNew   *ci.Job // its retry
	Bridge       *ci.Job
	ChildJob     *ci.Job
	TagJob       *ci.Job
	OtherJob     *ci.Job
	AllBuilds    []*ci.Job // every build of Project, id descending

	Runner  *ci.Runner
	Manager *ci.RunnerManager

	// JobToken authenticates as the running job; OtherJobToken as a
	// running job of Other; FinishedJobToken belongs to a finished job.
	JobToken, OtherJobToken, FinishedJobToken string
	Trace                                     []byte
	// Hook is a webhook of Project (job and pipeline events) whose URL
	// nothing listens on.
	Hook *ci.ProjectHook
}

// must turns (value, error) into a check run against t: must(f())(t).
func must[T any](v T, err error) func(testing.TB) T {
	return func(t testing.TB) T {
		t.Helper()
		if err != nil {
			t.Fatalf("seed: %v", err)
		}
		return v
	}
}

func at(d time.Duration) *time.Time { v := T0.Add(d); return &v }

// Seed fills st with the fixture. Ids are deterministic on a fresh store.
func Seed(t testing.TB, st store.Store) *Fixture {
	t.Helper()
	ctx := context.Background()
	f := &Fixture{Tokens: map[string]string{}, JobsByStatus: map[ci.JobStatus]*ci.Job{}}
	user := func(name string, admin bool) *ci.User {
		return must(st.CreateUser(ctx, store.CreateUserParams{Username: name, Name: name + " Example", Email: name + "@example.com", Admin: admin, Now: T0.Add(-30 * 24 * time.Hour)}))(t)
	}
	token := func(key string, u *ci.User, scopes []ci.Scope, exp *time.Time) string {
		secret := "glpat-fixture-" + key + "-0123456789abcdef"
		must(st.CreateToken(ctx, store.CreateTokenParams{UserID: u.ID, Name: key, Digest: ci.HashToken(secret), Scopes: scopes, ExpiresAt: exp, Now: T0.Add(-time.Hour)}))(t)
		f.Tokens[key] = secret
		return secret
	}
	api := []ci.Scope{ci.ScopeAPI}
	f.Root = user("root", true)
	f.Alice = user("alice", false)
	f.Bob = user("bob", false)
	f.Guest = user("gina", false)
	f.Reporter = user("remy", false)
	f.Maintainer = user("maya", false)
	f.Outsider = user("otto", false)
	token("root", f.Root, api, nil)
	token("developer", f.Alice, api, nil)
	token("developer2", f.Bob, api, nil)
	token("guest", f.Guest, api, nil)
	token("reporter", f.Reporter, api, nil)
	token("maintainer", f.Maintainer, api, nil)
	token("outsider", f.Outsider, api, nil)
	token("readonly", f.Alice, []ci.Scope{ci.ScopeReadAPI}, nil)
	token("expired", f.Alice, api, at(-time.Minute))
	revoked := token("revoked", f.Alice, api, nil)
	tok, _, err := st.TokenByDigest(ctx, ci.HashToken(revoked))
	if err != nil {
		t.Fatal(err)
	}
	if err := st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}

	f.Group = must(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "Acme", Path: "acme", Kind: ci.NamespaceGroup, Visibility: ci.Private, Now: T0.Add(-20 * 24 * time.Hour)}))(t)
	f.Subgroup = must(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "Tools", Path: "tools", Kind: ci.NamespaceGroup, ParentID: &f.Group.ID, Visibility: ci.Private, Now: T0.Add(-20 * 24 * time.Hour)}))(t)
	project := func(ns *ci.Namespace, name, path string, vis ci.Visibility, publicBuilds bool) *ci.Project {
		return must(st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: ns.ID, Name: name, Path: path, Visibility: vis, PublicBuilds: publicBuilds, CreatorID: f.Root.ID, Now: T0.Add(-10 * 24 * time.Hour)}))(t)
	}
	f.Project = project(f.Subgroup, "App Core", "app.core", ci.Private, false)
	f.Other = project(f.Group, "Other", "other", ci.Private, false)
	f.Public = project(f.Group, "Public App", "public-app", ci.Public, true)
	member := func(src store.MemberSource, id int64, u *ci.User, l ci.AccessLevel) {
		if err := st.AddMember(ctx, store.AddMemberParams{Source: src, SourceID: id, UserID: u.ID, AccessLevel: l, Now: T0.Add(-9 * 24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	// Alice is a developer through the top group; the others on the project.
	member(store.MemberOfNamespace, f.Group.ID, f.Alice, ci.Developer)
	member(store.MemberOfProject, f.Project.ID, f.Bob, ci.Developer)
	member(store.MemberOfProject, f.Project.ID, f.Guest, ci.Guest)
	member(store.MemberOfProject, f.Project.ID, f.Reporter, ci.Reporter)
	member(store.MemberOfNamespace, f.Subgroup.ID, f.Maintainer, ci.Maintainer)
	member(store.MemberOfProject, f.Other.ID, f.Bob, ci.Developer)

	sha1 := "3f1c0e0d5b8a9c2e4f6a7b8c9d0e1f2a3b4c5d6e"
	sha2 := "9a8b7c6d5e4f3a2b1c0d9e8f7a6b5c4d3e2f1a0b"
	cet := time.FixedZone("", 3600)
	for _, c := range []ci.Commit{
		{SHA: sha1, ParentIDs: []string{sha2}, Title: "Fix parser", Message: "Fix parser\n\nLonger body.\n", AuthorName: "Alice Example", AuthorEmail: "alice@example.com",
			AuthoredDate: T0.Add(-2 * time.Hour).In(cet), CommitterName: "Alice Example", CommitterEmail: "alice@example.com", CommittedDate: T0.Add(-2 * time.Hour).In(cet)},
		{SHA: sha2, ParentIDs: nil, Title: "Initial commit", Message: "Initial commit\n", AuthorName: "Root", AuthorEmail: "admin@example.com",
			AuthoredDate: T0.Add(-48 * time.Hour), CommitterName: "Root", CommitterEmail: "admin@example.com", CommittedDate: T0.Add(-48 * time.Hour)},
	} {
		if err := st.UpsertCommit(ctx, f.Project.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	pipeline := func(p *ci.Project, sha, ref string, tag bool, status ci.JobStatus, src ci.PipelineSource, parent *int64) *ci.Pipeline {
		return must(st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: sha, BeforeSHA: sha2, Ref: ref, Tag: tag, Status: status, Source: src,
			UserID: &f.Alice.ID, ParentID: parent, CreatedAt: T0.Add(-time.Hour), UpdatedAt: T0.Add(-time.Minute), StartedAt: at(-59 * time.Minute)}))(t)
	}
	f.Pipeline = pipeline(f.Project, sha1, "main", false, ci.StatusRunning, ci.SourcePush, nil)
	f.Downstream = pipeline(f.Project, sha1, "main", false, ci.StatusSuccess, ci.SourceParentPipeline, &f.Pipeline.ID)
	f.Pipeline2 = pipeline(f.Project, sha2, "v1.0.0", true, ci.StatusSuccess, ci.SourcePush, nil)
	f.OtherPipe = pipeline(f.Other, sha1, "main", false, ci.StatusRunning, ci.SourcePush, nil)

	f.Runner = must(st.InsertRunner(ctx, ci.Runner{Type: ci.InstanceRunner, Description: "shared-1", RunUntagged: true, TagList: []string{"linux", "docker"},
		CreatedAt: T0.Add(-5 * 24 * time.Hour), ContactedAt: at(-10 * time.Second)}, ci.HashToken("glrt-fixture-runner")))(t)
	v, rev, plat, arch, ip := "17.9.3", "abcdef12", "linux", "amd64", "127.0.0.1"
	f.Manager = must(st.InsertRunnerManager(ctx, ci.RunnerManager{RunnerID: f.Runner.ID, SystemID: "s_0123456789ab", Version: &v, Revision: &rev,
		Platform: &plat, Architecture: &arch, IPAddress: &ip, CreatedAt: T0.Add(-5 * 24 * time.Hour), ContactedAt: at(-10 * time.Second)}))(t)

	job := func(pl *ci.Pipeline, p *ci.Project, name, stage string, idx int, status ci.JobStatus, kind ci.JobKind) ci.Job {
		j := ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: kind, Name: name, Stage: stage, StageIdx: idx, Status: status, Ref: pl.Ref, Tag: pl.Tag,
			When: "on_success", CreatedAt: T0.Add(-50 * time.Minute), UserID: &f.Alice.ID, TagList: []string{"linux", "docker"}}
		switch status {
		case ci.StatusPending:
			j.QueuedAt = at(-40 * time.Minute)
		case ci.StatusRunning, ci.StatusCanceling:
			j.QueuedAt, j.StartedAt = at(-40*time.Minute), at(-30*time.Minute)
			j.RunnerID, j.RunnerManagerID = &f.Runner.ID, &f.Manager.ID
		case ci.StatusSuccess, ci.StatusFailed, ci.StatusCanceled:
			j.QueuedAt, j.StartedAt, j.FinishedAt = at(-40*time.Minute), at(-39*time.Minute-500*time.Millisecond), at(-38*time.Minute)
			j.RunnerID, j.RunnerManagerID = &f.Runner.ID, &f.Manager.ID
		case ci.StatusManual:
			j.When = "manual"
			j.AllowFailure = true
		case ci.StatusScheduled:
			j.When = "delayed"
		}
		if status == ci.StatusFailed {
			j.FailureReason = ci.FailureScript
		}
		return j
	}
	insert := func(j ci.Job) *ci.Job { return must(st.InsertJob(ctx, j))(t) }

	// One build per status, in GitLab's status order (ids ascending).
	for i, s := range ci.AllStatuses {
		j := job(f.Pipeline, f.Project, "job-"+string(s), []string{"build", "test", "deploy"}[i%3], i%3, s, ci.KindBuild)
		if s == ci.StatusSuccess {
			cov := 81.5
			j.Coverage = &cov
			j.ArtifactsExpireAt = at(30 * 24 * time.Hour)
		}
		f.JobsByStatus[s] = insert(j)
	}
	old := job(f.Pipeline, f.Project, "flaky", "test", 1, ci.StatusFailed, ci.KindBuild)
	old.Retried = true
	f.RetriedOld = insert(old)
	f.RetriedNew = insert(job(f.Pipeline, f.Project, "flaky", "test", 1, ci.StatusSuccess, ci.KindBuild))
	br := job(f.Pipeline, f.Project, "trigger-child", "deploy", 2, ci.StatusSuccess, ci.KindBridge)
	br.RunnerID, br.RunnerManagerID, br.TagList = nil, nil, nil
	br.DownstreamPipelineID = &f.Downstream.ID
	f.Bridge = insert(br)
	f.ChildJob = insert(job(f.Downstream, f.Project, "child-test", "test", 0, ci.StatusSuccess, ci.KindBuild))
	f.TagJob = insert(job(f.Pipeline2, f.Project, "release", "deploy", 0, ci.StatusSuccess, ci.KindBuild))
	f.OtherJob = insert(job(f.OtherPipe, f.Other, "other-build", "build", 0, ci.StatusRunning, ci.KindBuild))

	// Artifacts of the successful job: archive, metadata and its log.
	success := f.JobsByStatus[ci.StatusSuccess]
	for _, a := range []ci.Artifact{
		{FileType: "archive", FileFormat: "zip", Filename: "artifacts.zip", Size: 2048},
		{FileType: "metadata", FileFormat: "gzip", Filename: "metadata.gz", Size: 190},
		{FileType: "trace", FileFormat: "raw", Filename: "job.log", Size: 5120},
	} {
		a.JobID, a.ProjectID, a.BlobKey, a.ExpireAt, a.CreatedAt = success.ID, f.Project.ID, "fixture/"+a.Filename, success.ArtifactsExpireAt, T0.Add(-38*time.Minute)
		must(st.InsertArtifact(ctx, a))(t)
	}
	// A log for the failed job, with ANSI colours and a section marker.
	f.Trace = []byte("\x1b[0KRunning with gantry\n\x1b[0Ksection_start:1768469400:step_script\r\x1b[0K\x1b[32;1m$ make test\x1b[0;m\nFAIL parser_test.go:12\n\x1b[31;1mERROR: Job failed: exit code 1\n\x1b[0;m")
	failed := f.JobsByStatus[ci.StatusFailed]
	if _, err := st.AppendTrace(ctx, failed.ID, 0, f.Trace[:20]); err != nil {
		t.Fatal(err)
	}
	if _, err := st.AppendTrace(ctx, failed.ID, 20, f.Trace[20:]); err != nil {
		t.Fatal(err)
	}
	// Job tokens.
	f.JobToken, f.OtherJobToken, f.FinishedJobToken = "glcbt-fixture-running", "glcbt-fixture-other", "glcbt-fixture-finished"
	for tokenValue, j := range map[string]*ci.Job{f.JobToken: f.JobsByStatus[ci.StatusRunning], f.OtherJobToken: f.OtherJob, f.FinishedJobToken: success} {
		if err := st.SetJobToken(ctx, j.ID, ci.HashToken(tokenValue)); err != nil {
			t.Fatal(err)
		}
	}
	all := must(st.ListJobs(ctx, store.JobFilter{ProjectID: f.Project.ID, Kind: ci.KindBuild, IncludeRetried: true, Limit: 1000}))(t)
	f.AllBuilds = all
	f.Hook = must(st.CreateHook(ctx, ci.ProjectHook{ProjectID: f.Project.ID, URL: "http://127.0.0.1:9/hook", Token: "fixture-hook-secret",
		JobEvents: true, PipelineEvents: true, EnableSSLVerification: true, CreatedAt: T0}))(t)
	return f
}
