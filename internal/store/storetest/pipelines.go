package storetest

import (
	"context"
	"slices"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() {
	extra["PipelineProcessing"] = testPipelineProcessing
	extra["PipelineListAndDelete"] = testPipelineListAndDelete
}

func newJob(name string, stage int, when string) store.NewJob {
	return store.NewJob{Job: ci.Job{Kind: ci.KindBuild, Name: name, Stage: "s", StageIdx: stage, Status: ci.StatusCreated, Ref: "main", When: when, CreatedAt: t0},
		Spec: []byte(`{"script":["true"]}`)}
}

func statuses(t *testing.T, st store.Store, p *ci.Project, pl *ci.Pipeline) map[string]ci.JobStatus {
	t.Helper()
	jobs := ok[[]*ci.Job](t)(st.ListJobs(context.Background(), store.JobFilter{ProjectID: p.ID, PipelineID: pl.ID, Limit: 100}))
	out := map[string]ci.JobStatus{}
	for _, j := range jobs {
		out[j.Name] = j.Status
	}
	return out
}

func testPipelineProcessing(t *testing.T, st store.Store) {
	ctx := context.Background()
	u, p, _ := seedProject(t, st)
	dag := newJob("fast", 1, "on_success")
	dag.DAG, dag.Needs = true, []string{"build"}
	pl := ok[*ci.Pipeline](t)(st.CreatePipeline(ctx, store.NewPipeline{
		Pipeline:  ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: "main", Status: ci.StatusCreated, Source: ci.SourcePush, UserID: &u.ID, CreatedAt: t0, UpdatedAt: t0},
		Variables: []store.Variable{{Key: "B", Value: "2"}, {Key: "A", Value: "1", VariableType: "file"}},
		Jobs:      []store.NewJob{newJob("build", 0, "on_success"), newJob("test", 1, "on_success"), dag, newJob("deploy", 2, "manual")},
	}))
	if ids := ok[[]int64](t)(st.PipelinesNeedingProcessing(ctx, 10)); !slices.Contains(ids, pl.ID) {
		t.Fatalf("new pipeline not flagged: %v", ids)
	}
	vars := ok[[]store.Variable](t)(st.PipelineVariables(ctx, pl.ID))
	if len(vars) != 2 || vars[0].Key != "A" || vars[0].VariableType != "file" || vars[1].VariableType != "env_var" {
		t.Fatalf("variables %v", vars)
	}
	res := ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(time.Second), ci.ProcessPipeline))
	if len(res.Transitions) != 1 || res.Pipeline.Status != ci.StatusPending || !res.StatusChanged {
		t.Fatalf("first processing %+v %s", res.Transitions, res.Pipeline.Status)
	}
	if ids := ok[[]int64](t)(st.PipelinesNeedingProcessing(ctx, 10)); slices.Contains(ids, pl.ID) {
		t.Fatal("flag not cleared")
	}
	got := statuses(t, st, p, pl)
	if got["build"] != ci.StatusPending || got["test"] != ci.StatusCreated || got["fast"] != ci.StatusCreated {
		t.Fatalf("%v", got)
	}
	jobs := ok[[]*ci.Job](t)(st.ListJobs(ctx, store.JobFilter{ProjectID: p.ID, PipelineID: pl.ID, Limit: 100}))
	var build *ci.Job
	for _, j := range jobs {
		if j.Name == "build" {
			build = j
		}
	}
	if build.QueuedAt == nil {
		t.Fatal("queued_at not set by processing")
	}
	needs := ok[map[int64][]string](t)(st.PipelineNeeds(ctx, pl.ID))
	if len(needs) != 1 {
		t.Fatalf("needs %v", needs)
	}
	for id, n := range needs {
		if fast := ok[*ci.Job](t)(st.JobByID(ctx, p.ID, id)); fast.Name != "fast" || !slices.Equal(n, []string{"build"}) {
			t.Fatalf("needs of %s: %v", fast.Name, n)
		}
	}
	if named := ok[[]*ci.Job](t)(st.ListJobs(ctx, store.JobFilter{ProjectID: p.ID, Name: "test", Limit: 10})); len(named) != 1 || named[0].Name != "test" {
		t.Fatalf("jobs named test: %v", named)
	}
	if spec := ok[[]byte](t)(st.JobSpec(ctx, build.ID)); string(spec) != `{"script":["true"]}` {
		t.Fatalf("spec %s", spec)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: build.ID, From: ci.StatusPending, To: ci.StatusRunning, Now: t0.Add(2 * time.Second)}))
	if ids := ok[[]int64](t)(st.PipelinesNeedingProcessing(ctx, 10)); !slices.Contains(ids, pl.ID) {
		t.Fatal("a job move must flag its pipeline")
	}
	res = ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(3*time.Second), ci.ProcessPipeline))
	if res.Pipeline.Status != ci.StatusRunning || res.Pipeline.StartedAt == nil {
		t.Fatalf("running pipeline %+v", res.Pipeline)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: build.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: t0.Add(4 * time.Second)}))
	ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(5*time.Second), ci.ProcessPipeline))
	got = statuses(t, st, p, pl)
	if got["test"] != ci.StatusPending || got["fast"] != ci.StatusPending || got["deploy"] != ci.StatusCreated {
		t.Fatalf("after build %v", got)
	}
	// Processing again without events changes nothing.
	if res := ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(6*time.Second), ci.ProcessPipeline)); len(res.Transitions) != 0 || res.StatusChanged {
		t.Fatalf("not idempotent %+v", res)
	}
}

func testPipelineListAndDelete(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, first := seedProject(t, st)
	var ids []int64
	for i, ref := range []string{"main", "dev", "main"} {
		pl := ok[*ci.Pipeline](t)(st.CreatePipeline(ctx, store.NewPipeline{
			Pipeline: ci.Pipeline{ProjectID: p.ID, SHA: "s" + ref, Ref: ref, Status: ci.StatusCreated, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0.Add(time.Duration(i) * time.Hour)},
			Jobs:     []store.NewJob{newJob("j", 0, "on_success")},
		}))
		ids = append([]int64{pl.ID}, ids...)
	}
	list := func(f store.PipelineFilter) []int64 {
		f.ProjectID, f.Limit = p.ID, 50
		var out []int64
		for _, pl := range ok[[]*ci.Pipeline](t)(st.ListPipelines(ctx, f)) {
			out = append(out, pl.ID)
		}
		return out
	}
	if got := list(store.PipelineFilter{}); !slices.Equal(got, append(ids, first.ID)) {
		t.Fatalf("all %v", got)
	}
	if got := list(store.PipelineFilter{Ref: "dev"}); !slices.Equal(got, ids[1:2]) {
		t.Fatalf("ref %v", got)
	}
	after := t0.Add(30 * time.Minute)
	if got := list(store.PipelineFilter{UpdatedAfter: &after}); len(got) != 2 {
		t.Fatalf("updated_after %v", got)
	}
	if n := ok[int](t)(st.CountPipelines(ctx, store.PipelineFilter{ProjectID: p.ID, SHA: "smain"}, 100)); n != 2 {
		t.Fatalf("count %d", n)
	}
	// Deleting a pipeline names the blobs of the artifacts it took along.
	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: ids[0], Kind: ci.KindBuild, Name: "b", Stage: "s", Status: ci.StatusSuccess, Ref: "main", CreatedAt: t0}))
	ok[*ci.Artifact](t)(st.InsertArtifact(ctx, ci.Artifact{JobID: j.ID, ProjectID: p.ID, FileType: "archive", FileFormat: "zip", Filename: "artifacts.zip", Size: 1, BlobKey: "blob/one", CreatedAt: t0}))
	if keys, err := st.DeletePipeline(ctx, p.ID, ids[0]); err != nil || !slices.Equal(keys, []string{"blob/one"}) {
		t.Fatalf("delete: %v %v", keys, err)
	}
	if _, err := st.DeletePipeline(ctx, p.ID, ids[0]); err == nil {
		t.Fatal("second delete succeeded")
	}
	if got := list(store.PipelineFilter{}); slices.Contains(got, ids[0]) {
		t.Fatal("deleted pipeline listed")
	}
}
