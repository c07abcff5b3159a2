// Package storetest is the storage conformance suite. Run calls it with
// each adapter, so SQLite and PostgreSQL are held to the same behaviour.
package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 123456000, time.UTC)

// extra holds groups registered by the other files of the suite.
var extra = map[string]func(t *testing.T, st store.Store){}

// Run exercises every store behaviour against stores from open.
func Run(t *testing.T, open func(t testing.TB) store.Store) {
	tests := map[string]func(t *testing.T, st store.Store){
		"UsersAndTokens":         testUsersAndTokens,
		"NamespacesProjects":     testNamespacesProjects,
		"Access":                 testAccess,
		"JobsRoundTrip":          testJobsRoundTrip,
		"JobFilters":             testJobFilters,
		"Transitions":            testTransitions,
		"ConcurrentTransition":   testConcurrentTransition,
		"Traces":                 testTraces,
		"ListProjects":           testListProjects,
		"ArtifactKeepAndDelete":  testArtifactKeepAndDelete,
		"ArtifactLocksAndExpiry": testArtifactLocksAndExpiry,
		"LatestArtifactsJob":     testLatestArtifactsJob,
	}
	for name, fn := range extra {
		tests[name] = fn
	}
	for name, fn := range tests {
		t.Run(name, func(t *testing.T) { fn(t, open(t)) })
	}
}

func ok[T any](t *testing.T) func(T, error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

func seedProject(t *testing.T, st store.Store) (*ci.User, *ci.Project, *ci.Pipeline) {
	ctx := context.Background()
	u := ok[*ci.User](t)(st.CreateUser(ctx, store.CreateUserParams{Username: "u1", Name: "U One", Email: "u1@example.com", Now: t0}))
	ns := ok[*ci.Namespace](t)(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "G", Path: "g", Kind: ci.NamespaceGroup, Visibility: ci.Private, Now: t0}))
	p := ok[*ci.Project](t)(st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: ns.ID, Name: "P", Path: "p", Visibility: ci.Private, CreatorID: u.ID, Now: t0}))
	pl := ok[*ci.Pipeline](t)(st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: "main", Status: ci.StatusCreated, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0}))
	return u, p, pl
}

func testUsersAndTokens(t *testing.T, st store.Store) {
	ctx := context.Background()
	u := ok[*ci.User](t)(st.CreateUser(ctx, store.CreateUserParams{Username: "Alice", Name: "A", Email: "a@example.com", Now: t0}))
	if u.State != "active" || !u.CreatedAt.Equal(t0.Truncate(time.Microsecond)) {
		t.Fatalf("user %+v", u)
	}
	if _, err := st.CreateUser(ctx, store.CreateUserParams{Username: "alice", Name: "B", Email: "b@example.com", Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("case-insensitive duplicate username: %v", err)
	}
	if _, err := st.CreateUser(ctx, store.CreateUserParams{Username: "bob", Name: "B", Email: "A@example.com", Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate email: %v", err)
	}
	got := ok[*ci.User](t)(st.UserByUsername(ctx, "ALICE"))
	if got.ID != u.ID {
		t.Fatal("lookup by username is case-insensitive")
	}
	if _, err := st.UserByID(ctx, 9999); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("missing user: %v", err)
	}
	exp := t0.Add(time.Hour)
	tok := ok[*ci.Token](t)(st.CreateToken(ctx, store.CreateTokenParams{UserID: u.ID, Name: "t", Digest: "d1", Scopes: []ci.Scope{ci.ScopeReadAPI}, ExpiresAt: &exp, Now: t0}))
	if _, err := st.CreateToken(ctx, store.CreateTokenParams{UserID: u.ID, Name: "t2", Digest: "d1", Scopes: []ci.Scope{ci.ScopeAPI}, Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate digest: %v", err)
	}
	if _, err := st.CreateToken(ctx, store.CreateTokenParams{UserID: u.ID, Name: "t3", Digest: "d3", Scopes: []ci.Scope{"sudo"}, Now: t0}); !errors.Is(err, ci.ErrInvalid) {
		t.Fatalf("unknown scope: %v", err)
	}
	gt, gu, err := st.TokenByDigest(ctx, "d1")
	if err != nil || gt.ID != tok.ID || gu.ID != u.ID || !gt.Has(ci.ScopeReadAPI) || gt.Has(ci.ScopeAPI) || gt.ExpiresAt == nil || !gt.ExpiresAt.Equal(exp) || gt.Revoked {
		t.Fatalf("token lookup: %+v %+v %v", gt, gu, err)
	}
	if err := st.RevokeToken(ctx, tok.ID); err != nil {
		t.Fatal(err)
	}
	if gt, _, _ := st.TokenByDigest(ctx, "d1"); !gt.Revoked {
		t.Fatal("revocation not stored")
	}
	if _, _, err := st.TokenByDigest(ctx, "nope"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("unknown digest: %v", err)
	}
	if n := ok[int64](t)(st.CountUsers(ctx)); n != 1 {
		t.Fatalf("count %d", n)
	}
	m := ok[map[int64]*ci.User](t)(st.UsersByIDs(ctx, []int64{u.ID, u.ID, 777}))
	if len(m) != 1 || m[u.ID].Username != "Alice" {
		t.Fatalf("UsersByIDs %v", m)
	}
}

func testNamespacesProjects(t *testing.T, st store.Store) {
	ctx := context.Background()
	u := ok[*ci.User](t)(st.CreateUser(ctx, store.CreateUserParams{Username: "u", Name: "U", Email: "u@example.com", Now: t0}))
	top := ok[*ci.Namespace](t)(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "Acme", Path: "acme", Kind: ci.NamespaceGroup, Visibility: ci.Public, Now: t0}))
	sub := ok[*ci.Namespace](t)(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "Tools", Path: "tools", Kind: ci.NamespaceGroup, ParentID: &top.ID, Visibility: ci.Private, Now: t0}))
	if sub.FullPath != "acme/tools" || sub.FullName != "Acme / Tools" {
		t.Fatalf("full path %q %q", sub.FullPath, sub.FullName)
	}
	p := ok[*ci.Project](t)(st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: sub.ID, Name: "App", Path: "app", Visibility: ci.Internal, PublicBuilds: true, CreatorID: u.ID, Now: t0}))
	if p.FullPath != "acme/tools/app" || p.DefaultBranch != "main" || p.Namespace.ID != sub.ID || !p.PublicBuilds {
		t.Fatalf("project %+v", p)
	}
	if got := ok[*ci.Project](t)(st.ProjectByFullPath(ctx, "ACME/Tools/App")); got.ID != p.ID {
		t.Fatal("path lookup is case-insensitive")
	}
	if _, err := st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: sub.ID, Name: "App2", Path: "APP", Visibility: ci.Private, CreatorID: u.ID, Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate project path: %v", err)
	}
	if _, err := st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "x", Path: "app", Kind: ci.NamespaceGroup, ParentID: &sub.ID, Visibility: ci.Private, Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("group over a project path: %v", err)
	}
	anc := ok[[]*ci.Namespace](t)(st.NamespaceAncestors(ctx, sub.ID))
	if len(anc) != 2 || anc[0].ID != sub.ID || anc[1].ID != top.ID {
		t.Fatalf("ancestors %v", anc)
	}
	if _, err := st.ProjectByID(ctx, 4242); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("missing project: %v", err)
	}
	c := ci.Commit{SHA: "deadbeef", ParentIDs: []string{"p1", "p2"}, Title: "t", Message: "t\n", AuthorName: "a", AuthorEmail: "a@x",
		AuthoredDate: t0.In(time.FixedZone("", -5*3600)), CommitterName: "c", CommitterEmail: "c@x", CommittedDate: t0}
	if err := st.UpsertCommit(ctx, p.ID, c); err != nil {
		t.Fatal(err)
	}
	if err := st.UpsertCommit(ctx, p.ID, c); err != nil {
		t.Fatal("upsert must be idempotent:", err)
	}
	cm := ok[map[string]*ci.Commit](t)(st.CommitsBySHA(ctx, p.ID, []string{"deadbeef", "missing"}))
	got := cm["deadbeef"]
	if len(cm) != 1 || !slices.Equal(got.ParentIDs, c.ParentIDs) {
		t.Fatalf("commit %+v", got)
	}
	if _, off := got.AuthoredDate.Zone(); off != -5*3600 || !got.AuthoredDate.Equal(c.AuthoredDate.Truncate(time.Microsecond)) {
		t.Fatalf("authored date zone lost: %v", got.AuthoredDate)
	}
}

func testAccess(t *testing.T, st store.Store) {
	ctx := context.Background()
	u, p, _ := seedProject(t, st)
	if l := ok[ci.AccessLevel](t)(st.ProjectAccess(ctx, u.ID, p)); l != ci.NoAccess {
		t.Fatalf("non-member access %d", l)
	}
	if err := st.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfNamespace, SourceID: p.NamespaceID, UserID: u.ID, AccessLevel: ci.Reporter, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if l := ok[ci.AccessLevel](t)(st.ProjectAccess(ctx, u.ID, p)); l != ci.Reporter {
		t.Fatalf("group access %d", l)
	}
	if err := st.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfProject, SourceID: p.ID, UserID: u.ID, AccessLevel: ci.Maintainer, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if l := ok[ci.AccessLevel](t)(st.ProjectAccess(ctx, u.ID, p)); l != ci.Maintainer {
		t.Fatalf("max access %d", l)
	}
	// Updating a membership replaces its level.
	if err := st.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfProject, SourceID: p.ID, UserID: u.ID, AccessLevel: ci.Guest, Now: t0}); err != nil {
		t.Fatal(err)
	}
	if l := ok[ci.AccessLevel](t)(st.ProjectAccess(ctx, u.ID, p)); l != ci.Reporter {
		t.Fatalf("after downgrade %d", l)
	}
	if err := st.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfProject, SourceID: p.ID, UserID: u.ID, AccessLevel: 35, Now: t0}); !errors.Is(err, ci.ErrInvalid) {
		t.Fatalf("invalid level: %v", err)
	}
}

func testJobsRoundTrip(t *testing.T, st store.Store) {
	ctx := context.Background()
	u, p, pl := seedProject(t, st)
	cov := 12.25
	started, finished, exp := t0.Add(time.Second), t0.Add(3*time.Second+250*time.Millisecond), t0.Add(24*time.Hour)
	in := ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "unit", Stage: "test", StageIdx: 1, Status: ci.StatusFailed,
		Ref: "main", Coverage: &cov, AllowFailure: true, When: "manual", CreatedAt: t0, QueuedAt: &t0, StartedAt: &started, FinishedAt: &finished,
		UserID: &u.ID, FailureReason: ci.FailureScript, ArtifactsExpireAt: &exp, TagList: []string{"z", "a"}}
	j := ok[*ci.Job](t)(st.InsertJob(ctx, in))
	if j.ID == 0 || j.Name != "unit" || j.Status != ci.StatusFailed || *j.Coverage != cov || !j.AllowFailure || j.When != "manual" ||
		!j.StartedAt.Equal(started) || !j.FinishedAt.Equal(finished) || *j.UserID != u.ID || j.FailureReason != ci.FailureScript ||
		!slices.Equal(j.TagList, []string{"a", "z"}) || j.Retried || j.Kind != ci.KindBuild {
		t.Fatalf("round trip %+v", j)
	}
	if d := j.Duration(t0); d == nil || *d != 2.25 {
		t.Fatalf("duration %v", d)
	}
	if _, err := st.JobByID(ctx, p.ID+1, j.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("job looked up through another project: %v", err)
	}
	if _, err := st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Status: "bogus", CreatedAt: t0}); !errors.Is(err, ci.ErrInvalid) {
		t.Fatalf("bogus status: %v", err)
	}
	if err := st.SetJobToken(ctx, j.ID, "jobdigest"); err != nil {
		t.Fatal(err)
	}
	if got := ok[*ci.Job](t)(st.JobByTokenDigest(ctx, "jobdigest")); got.ID != j.ID {
		t.Fatal("job by token")
	}
	a := ok[*ci.Artifact](t)(st.InsertArtifact(ctx, ci.Artifact{JobID: j.ID, ProjectID: p.ID, FileType: "archive", FileFormat: "zip", Filename: "artifacts.zip", Size: 10, BlobKey: "k", CreatedAt: t0}))
	arts := ok[map[int64][]*ci.Artifact](t)(st.ArtifactsByJobIDs(ctx, []int64{j.ID}))
	if len(arts[j.ID]) != 1 || arts[j.ID][0].ID != a.ID || arts[j.ID][0].Size != 10 {
		t.Fatalf("artifacts %v", arts)
	}
	name := "r1"
	r := ok[*ci.Runner](t)(st.InsertRunner(ctx, ci.Runner{Type: ci.ProjectRunner, Description: "d", Name: &name, TagList: []string{"b", "a"}, CreatedAt: t0}, "rdigest"))
	if r.AccessLevel != "not_protected" || !slices.Equal(r.TagList, []string{"a", "b"}) || *r.Name != "r1" {
		t.Fatalf("runner %+v", r)
	}
	m := ok[*ci.RunnerManager](t)(st.InsertRunnerManager(ctx, ci.RunnerManager{RunnerID: r.ID, SystemID: "s_1", CreatedAt: t0}))
	if m.Version != nil || m.SystemID != "s_1" {
		t.Fatalf("manager %+v", m)
	}
	if _, err := st.InsertRunnerManager(ctx, ci.RunnerManager{RunnerID: r.ID, SystemID: "s_1", CreatedAt: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("duplicate system_id: %v", err)
	}
}

func testJobFilters(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	pl2 := ok[*ci.Pipeline](t)(st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: "def", Ref: "dev", Status: ci.StatusCreated, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0}))
	if pl2.IID != pl.IID+1 {
		t.Fatalf("iid %d after %d", pl2.IID, pl.IID)
	}
	var all []int64
	for i := 0; i < 12; i++ {
		target := pl
		if i%3 == 0 {
			target = pl2
		}
		status := []ci.JobStatus{ci.StatusSuccess, ci.StatusFailed, ci.StatusPending}[i%3]
		kind := ci.KindBuild
		if i == 11 {
			kind = ci.KindBridge
		}
		j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: target.ID, Kind: kind, Name: "j", Stage: "s", Status: status,
			Ref: target.Ref, CreatedAt: t0, Retried: i == 4}))
		all = append([]int64{j.ID}, all...)
		if i == 2 || i == 7 {
			// Names with JSON specials: the list query carries artifacts as JSON.
			exp := t0.Add(time.Hour)
			ok[*ci.Artifact](t)(st.InsertArtifact(ctx, ci.Artifact{JobID: j.ID, ProjectID: p.ID, FileType: "archive", FileFormat: "zip",
				Filename: `a"rt\é.zip`, Size: 1 << 40, BlobKey: "k/" + strconv.Itoa(i), ExpireAt: &exp, CreatedAt: t0}))
			ok[*ci.Artifact](t)(st.InsertArtifact(ctx, ci.Artifact{JobID: j.ID, ProjectID: p.ID, FileType: "trace", FileFormat: "raw",
				Filename: "job.log", Size: 3, BlobKey: "t/" + strconv.Itoa(i), CreatedAt: t0.Add(time.Second)}))
		}
	}
	list := func(f store.JobFilter) []int64 {
		f.ProjectID = p.ID
		if f.Limit == 0 {
			f.Limit = 100
		}
		jobs := ok[[]*ci.Job](t)(st.ListJobs(ctx, f))
		out := make([]int64, len(jobs))
		for i, j := range jobs {
			out[i] = j.ID
		}
		// The variant with artifacts lists the same jobs, and the artifacts
		// the separate lookup finds.
		withJobs, arts, err := st.ListJobsWithArtifacts(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(withJobs, jobs) {
			t.Fatalf("ListJobsWithArtifacts jobs differ from ListJobs for %+v", f)
		}
		want := ok[map[int64][]*ci.Artifact](t)(st.ArtifactsByJobIDs(ctx, out))
		if !reflect.DeepEqual(arts, want) {
			t.Fatalf("ListJobsWithArtifacts artifacts %v, want %v", arts, want)
		}
		return out
	}
	if got := list(store.JobFilter{IncludeRetried: true}); !slices.Equal(got, all) {
		t.Fatalf("all %v want %v", got, all)
	}
	if got := list(store.JobFilter{IncludeRetried: true, Kind: ci.KindBridge}); !slices.Equal(got, all[:1]) {
		t.Fatalf("bridges %v", got)
	}
	if got := list(store.JobFilter{IncludeRetried: true, Kind: ci.KindBuild, Statuses: []ci.JobStatus{ci.StatusSuccess}}); len(got) != 4 {
		t.Fatalf("success %v", got)
	}
	if got := list(store.JobFilter{Kind: ci.KindBuild}); len(got) != 10 {
		t.Fatalf("without retried %v", got)
	}
	if got := list(store.JobFilter{IncludeRetried: true, Ref: "dev"}); len(got) != 4 {
		t.Fatalf("ref dev %v", got)
	}
	if got := list(store.JobFilter{IncludeRetried: true, PipelineID: pl2.ID}); len(got) != 4 {
		t.Fatalf("pipeline %v", got)
	}
	if got := list(store.JobFilter{IncludeRetried: true, BeforeID: all[5], Limit: 3}); !slices.Equal(got, all[6:9]) {
		t.Fatalf("keyset %v want %v", got, all[6:9])
	}
	if got := list(store.JobFilter{IncludeRetried: true, Offset: 10, Limit: 5}); !slices.Equal(got, all[10:]) {
		t.Fatalf("offset %v", got)
	}
	byIDs := ok[[]*ci.Job](t)(st.JobsByIDs(ctx, p.ID, []int64{all[0], all[3], all[0], all[0] + 1000}))
	if len(byIDs) != 2 || byIDs[0].ID != all[3] || byIDs[1].ID != all[0] {
		t.Fatalf("jobs by ids %v", byIDs)
	}
	if other := ok[[]*ci.Job](t)(st.JobsByIDs(ctx, p.ID+1, []int64{all[0]})); len(other) != 0 {
		t.Fatalf("another project's jobs by ids %v", other)
	}
	if n := ok[int](t)(st.CountJobs(ctx, store.JobFilter{ProjectID: p.ID, IncludeRetried: true}, 100)); n != 12 {
		t.Fatalf("count %d", n)
	}
	if n := ok[int](t)(st.CountJobs(ctx, store.JobFilter{ProjectID: p.ID, IncludeRetried: true}, 5)); n != 5 {
		t.Fatalf("capped count %d", n)
	}
}

func testTransitions(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: ci.StatusCreated, Ref: "main", CreatedAt: t0}))
	step := func(from, to ci.JobStatus, at time.Time) *ci.Job {
		t.Helper()
		return ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: from, To: to, Now: at}))
	}
	j1 := step(ci.StatusCreated, ci.StatusPending, t0.Add(time.Second))
	if j1.QueuedAt == nil || !j1.QueuedAt.Equal(t0.Add(time.Second)) || j1.LockVersion != 1 {
		t.Fatalf("pending %+v", j1)
	}
	j2 := step(ci.StatusPending, ci.StatusRunning, t0.Add(2*time.Second))
	if j2.StartedAt == nil {
		t.Fatal("started_at not set")
	}
	if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusPending, Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("illegal move: %v", err)
	}
	if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusPending, To: ci.StatusRunning, Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("stale from: %v", err)
	}
	j3 := ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusFailed, Now: t0.Add(5 * time.Second)}))
	if j3.FailureReason != ci.FailureUnknown || j3.FinishedAt == nil {
		t.Fatalf("failed %+v", j3)
	}
}

// Two writers race the same move; exactly one wins.
func testConcurrentTransition(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: ci.StatusPending, Ref: "main", CreatedAt: t0}))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins, conflicts := 0, 0
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusPending, To: ci.StatusRunning, Now: t0})
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, ci.ErrConflict):
				conflicts++
			default:
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || conflicts != 7 {
		t.Fatalf("wins %d conflicts %d", wins, conflicts)
	}
}

func testTraces(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: ci.StatusRunning, Ref: "main", CreatedAt: t0}))
	if b := ok[[]byte](t)(st.ReadTrace(ctx, j.ID)); len(b) != 0 {
		t.Fatalf("empty trace %q", b)
	}
	if n := ok[int64](t)(st.AppendTrace(ctx, j.ID, 0, []byte("hello "))); n != 6 {
		t.Fatalf("length %d", n)
	}
	if _, err := st.AppendTrace(ctx, j.ID, 3, []byte("x")); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("wrong offset: %v", err)
	}
	if n := ok[int64](t)(st.AppendTrace(ctx, j.ID, 6, []byte("world\x00\xff"))); n != 13 {
		t.Fatalf("length %d", n)
	}
	if b := ok[[]byte](t)(st.ReadTrace(ctx, j.ID)); string(b) != "hello world\x00\xff" {
		t.Fatalf("trace %q", b)
	}
}

func testListProjects(t *testing.T, st store.Store) {
	ctx := context.Background()
	u := ok[*ci.User](t)(st.CreateUser(ctx, store.CreateUserParams{Username: "m", Name: "M", Email: "m@example.com", Now: t0}))
	v := ok[*ci.User](t)(st.CreateUser(ctx, store.CreateUserParams{Username: "v", Name: "V", Email: "v@example.com", Now: t0}))
	g := ok[*ci.Namespace](t)(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "g", Path: "g", Kind: ci.NamespaceGroup, Visibility: ci.Private, Now: t0}))
	mk := func(path string, vis ci.Visibility) *ci.Project {
		return ok[*ci.Project](t)(st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: g.ID, Name: path, Path: path, Visibility: vis, CreatorID: u.ID, Now: t0}))
	}
	priv, intl, pub := mk("priv", ci.Private), mk("intl", ci.Internal), mk("pub", ci.Public)
	if err := st.AddMember(ctx, store.AddMemberParams{Source: store.MemberOfNamespace, SourceID: g.ID, UserID: u.ID, AccessLevel: ci.Guest, Now: t0}); err != nil {
		t.Fatal(err)
	}
	names := func(f store.ProjectFilter) []string {
		f.Limit = 50
		var out []string
		for _, p := range ok[[]*ci.Project](t)(st.ListProjects(ctx, f)) {
			out = append(out, p.Path)
		}
		return out
	}
	if got := names(store.ProjectFilter{}); !slices.Equal(got, []string{pub.Path}) {
		t.Fatalf("anonymous %v", got)
	}
	if got := names(store.ProjectFilter{ViewerID: v.ID}); !slices.Equal(got, []string{pub.Path, intl.Path}) {
		t.Fatalf("outsider %v", got)
	}
	if got := names(store.ProjectFilter{ViewerID: u.ID}); !slices.Equal(got, []string{pub.Path, intl.Path, priv.Path}) {
		t.Fatalf("member %v", got)
	}
	if got := names(store.ProjectFilter{ViewerID: u.ID, Membership: true, Search: "PRI"}); !slices.Equal(got, []string{priv.Path}) {
		t.Fatalf("membership search %v", got)
	}
}
