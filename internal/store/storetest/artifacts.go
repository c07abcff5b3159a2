package storetest

import (
	"context"
	"errors"
	"reflect"
	"slices"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// artifactWorld is a project with pipelines on main in the order
// first(success) < second(success) < third(failed) < fourth(running), a child
// pipeline of first and of second, a tag pipeline and another project.
type artifactWorld struct {
	st                                store.Store
	project, other                    *ci.Project
	first, second, third, fourth, tag *ci.Pipeline
	childOfFirst, childOfSecond       *ci.Pipeline
	otherPipeline                     *ci.Pipeline
}

var (
	expiredAt = t0.Add(24 * time.Hour)
	liveUntil = t0.Add(30 * 24 * time.Hour)
	sweepAt   = t0.Add(10 * 24 * time.Hour)
)

func newArtifactWorld(t *testing.T, st store.Store) *artifactWorld {
	ctx := context.Background()
	u, p, _ := seedProject(t, st)
	ns := ok[*ci.Namespace](t)(st.NamespaceByID(ctx, p.NamespaceID))
	other := ok[*ci.Project](t)(st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: ns.ID, Name: "O", Path: "o", Visibility: ci.Private, CreatorID: u.ID, Now: t0}))
	w := &artifactWorld{st: st, project: p, other: other}
	pipeline := func(p *ci.Project, ref string, tag bool, status ci.JobStatus, parent *ci.Pipeline) *ci.Pipeline {
		pl := ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: ref, Tag: tag, Status: status, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0}
		if parent != nil {
			pl.ParentID, pl.Source = &parent.ID, ci.SourceParentPipeline
		}
		return ok[*ci.Pipeline](t)(st.InsertPipeline(ctx, pl))
	}
	w.first = pipeline(p, "main", false, ci.StatusSuccess, nil)
	w.childOfFirst = pipeline(p, "main", false, ci.StatusSuccess, w.first)
	w.second = pipeline(p, "main", false, ci.StatusSuccess, nil)
	w.childOfSecond = pipeline(p, "main", false, ci.StatusSuccess, w.second)
	w.third = pipeline(p, "main", false, ci.StatusFailed, nil)
	w.fourth = pipeline(p, "main", false, ci.StatusRunning, nil)
	w.tag = pipeline(p, "v1.0", true, ci.StatusSuccess, nil)
	w.otherPipeline = pipeline(other, "main", false, ci.StatusSuccess, nil)
	pipeline(other, "main", false, ci.StatusSuccess, nil)
	return w
}

// job inserts a finished build of pl with one artifact per file type, each
// expiring at exp; the blob keys are "<name>/<file type>".
func (w *artifactWorld) job(t *testing.T, pl *ci.Pipeline, name string, exp *time.Time, fileTypes ...string) *ci.Job {
	ctx := context.Background()
	j := ok[*ci.Job](t)(w.st.InsertJob(ctx, ci.Job{ProjectID: pl.ProjectID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: name, Stage: "test",
		Status: ci.StatusSuccess, Ref: pl.Ref, Tag: pl.Tag, When: "on_success", CreatedAt: t0}))
	for _, ft := range fileTypes {
		ok[*ci.Artifact](t)(w.st.InsertArtifact(ctx, ci.Artifact{JobID: j.ID, ProjectID: pl.ProjectID, FileType: ft, FileFormat: "zip",
			Filename: ft, Size: 10, BlobKey: name + "/" + ft, ExpireAt: exp, CreatedAt: t0}))
	}
	return j
}

func (w *artifactWorld) fileTypes(t *testing.T, j *ci.Job) []string {
	arts := ok[map[int64][]*ci.Artifact](t)(w.st.ArtifactsByJobIDs(context.Background(), []int64{j.ID}))
	var out []string
	for _, a := range arts[j.ID] {
		out = append(out, a.FileType)
	}
	return out
}

// listsMatch checks that a job list carries, for every job of the world's
// project, the artifacts the artifacts table holds: the list reads a copy
// that each write of the table must keep current.
func (w *artifactWorld) listsMatch(t *testing.T, what string) {
	t.Helper()
	ctx := context.Background()
	jobs, listed, err := w.st.ListJobsWithArtifacts(ctx, store.JobFilter{ProjectID: w.project.ID, IncludeRetried: true, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	want := ok[map[int64][]*ci.Artifact](t)(w.st.ArtifactsByJobIDs(ctx, ids))
	if !reflect.DeepEqual(listed, want) {
		t.Fatalf("%s: the job list has artifacts %v, the table %v", what, listed, want)
	}
}

func sameKeys(t *testing.T, what string, got []string, want ...string) {
	t.Helper()
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("%s deleted %v, want %v", what, got, want)
	}
}

func testArtifactKeepAndDelete(t *testing.T, st store.Store) {
	ctx := context.Background()
	w := newArtifactWorld(t, st)
	exp := liveUntil
	j := w.job(t, w.fourth, "build", &exp, "archive", "junit", "trace")
	w.listsMatch(t, "upload")
	// The archive's upload set the job's expiry.
	got := ok[*ci.Job](t)(st.JobByID(ctx, w.project.ID, j.ID))
	if got.ArtifactsExpireAt == nil || !got.ArtifactsExpireAt.Equal(exp) {
		t.Fatalf("artifacts_expire_at after upload = %v, want %v", got.ArtifactsExpireAt, exp)
	}
	if err := st.KeepArtifacts(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	w.listsMatch(t, "keep")
	got = ok[*ci.Job](t)(st.JobByID(ctx, w.project.ID, j.ID))
	if got.ArtifactsExpireAt != nil {
		t.Fatalf("kept job still expires at %v", got.ArtifactsExpireAt)
	}
	arts := ok[map[int64][]*ci.Artifact](t)(st.ArtifactsByJobIDs(ctx, []int64{j.ID}))
	for _, a := range arts[j.ID] {
		if a.ExpireAt != nil {
			t.Fatalf("kept %s still expires at %v", a.FileType, a.ExpireAt)
		}
	}
	if err := st.KeepArtifacts(ctx, 1<<40); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("keep of a missing job: %v", err)
	}
	// Deleting a job's artifacts keeps its log.
	sameKeys(t, "job delete", ok[[]string](t)(st.DeleteJobArtifacts(ctx, j.ID)), "build/archive", "build/junit")
	w.listsMatch(t, "erase")
	if ft := w.fileTypes(t, j); !slices.Equal(ft, []string{"trace"}) {
		t.Fatalf("after delete the job has %v", ft)
	}
	sameKeys(t, "second job delete", ok[[]string](t)(st.DeleteJobArtifacts(ctx, j.ID)))
}

func testArtifactLocksAndExpiry(t *testing.T, st store.Store) {
	ctx := context.Background()
	w := newArtifactWorld(t, st)
	exp, live := expiredAt, liveUntil
	// Unlocked: first (newer pipelines stopped and it is not the latest
	// success) and its child. Third stays locked: nothing newer has stopped.
	first := w.job(t, w.first, "first", &exp, "archive", "trace")
	firstLive := w.job(t, w.first, "first-live", &live, "archive", "trace")
	firstForever := w.job(t, w.first, "first-forever", nil, "archive", "trace")
	child := w.job(t, w.childOfFirst, "child", &exp, "archive")
	second := w.job(t, w.second, "second", &exp, "archive")
	childOfSecond := w.job(t, w.childOfSecond, "child-second", &exp, "archive")
	third := w.job(t, w.third, "third", &exp, "archive")
	fourth := w.job(t, w.fourth, "fourth", &exp, "archive")
	tag := w.job(t, w.tag, "tag", &exp, "archive")
	otherOld := w.job(t, w.otherPipeline, "other-old", &exp, "archive")

	// Not yet expired: nothing goes.
	sameKeys(t, "early sweep", ok[[]string](t)(st.DeleteExpiredArtifacts(ctx, t0, 100)))
	// The limit bounds one batch.
	batch := ok[[]string](t)(st.DeleteExpiredArtifacts(ctx, sweepAt, 1))
	if len(batch) != 1 {
		t.Fatalf("batch of 1 deleted %v", batch)
	}
	rest := ok[[]string](t)(st.DeleteExpiredArtifacts(ctx, sweepAt, 100))
	sameKeys(t, "expiry", append(batch, rest...), "first/archive", "first/trace", "child/archive", "other-old/archive")
	w.listsMatch(t, "expiry")
	for _, j := range []*ci.Job{second, childOfSecond, third, fourth, tag} {
		if ft := w.fileTypes(t, j); len(ft) != 1 {
			t.Fatalf("locked job %s lost its artifacts: %v", j.Name, ft)
		}
	}
	for _, j := range []*ci.Job{first, child, otherOld} {
		if ft := w.fileTypes(t, j); len(ft) != 0 {
			t.Fatalf("expired job %s kept %v", j.Name, ft)
		}
	}

	// The project-wide delete takes unlocked erasable artifacts whatever
	// their expiry, never logs, never locked ones, never other projects'.
	sameKeys(t, "project delete", ok[[]string](t)(st.DeleteProjectArtifacts(ctx, w.project.ID)), "first-live/archive", "first-forever/archive")
	w.listsMatch(t, "project delete")
	for _, j := range []*ci.Job{firstLive, firstForever} {
		if ft := w.fileTypes(t, j); !slices.Equal(ft, []string{"trace"}) {
			t.Fatalf("%s after project delete: %v", j.Name, ft)
		}
	}
	for _, j := range []*ci.Job{second, childOfSecond, third, fourth, tag} {
		if ft := w.fileTypes(t, j); len(ft) != 1 {
			t.Fatalf("project delete took locked %s: %v", j.Name, ft)
		}
	}

	// A newer pipeline stopping unlocks third; second stays the latest success.
	w.st.InsertPipeline(ctx, ci.Pipeline{ProjectID: w.project.ID, SHA: "abc", Ref: "main", Status: ci.StatusCanceled, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0})
	sameKeys(t, "after a newer stop", ok[[]string](t)(st.DeleteExpiredArtifacts(ctx, sweepAt, 100)), "third/archive", "fourth/archive")
	// A newer success unlocks second and its child.
	w.st.InsertPipeline(ctx, ci.Pipeline{ProjectID: w.project.ID, SHA: "abc", Ref: "main", Status: ci.StatusSuccess, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0})
	sameKeys(t, "after a newer success", ok[[]string](t)(st.DeleteExpiredArtifacts(ctx, sweepAt, 100)), "second/archive", "child-second/archive")
	if ft := w.fileTypes(t, tag); len(ft) != 1 {
		t.Fatalf("the tag's only pipeline lost its artifacts: %v", ft)
	}
}

func testLatestArtifactsJob(t *testing.T, st store.Store) {
	ctx := context.Background()
	w := newArtifactWorld(t, st)
	exp, live := expiredAt, liveUntil
	w.job(t, w.first, "build", &live, "archive")
	second := w.job(t, w.second, "build", &exp, "archive")
	child := w.job(t, w.childOfSecond, "child-build", &live, "archive")
	w.job(t, w.third, "build", &live, "archive") // failed pipeline: never chosen
	w.job(t, w.second, "no-archive", &live, "junit")
	tag := w.job(t, w.tag, "build", nil, "archive")

	find := func(ref, name string, now time.Time) (*ci.Job, error) {
		return st.LatestArtifactsJob(ctx, w.project.ID, ref, name, now)
	}
	if j, err := find("main", "build", t0); err != nil || j.ID != second.ID {
		t.Fatalf("latest build on main = %v, %v; want job %d", j, err, second.ID)
	}
	// Its archive expired: the older pipeline is not consulted.
	if _, err := find("main", "build", sweepAt); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("expired archive: %v", err)
	}
	if j, err := find("main", "child-build", sweepAt); err != nil || j.ID != child.ID {
		t.Fatalf("child pipeline job = %v, %v", j, err)
	}
	for _, name := range []string{"no-archive", "missing"} {
		if _, err := find("main", name, t0); !errors.Is(err, ci.ErrNotFound) {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := find("nope", "build", t0); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("unknown ref: %v", err)
	}
	if j, err := find("v1.0", "build", sweepAt); err != nil || j.ID != tag.ID {
		t.Fatalf("tag ref = %v, %v", j, err)
	}
	if _, err := st.LatestArtifactsJob(ctx, w.other.ID, "main", "build", t0); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("other project: %v", err)
	}
}
