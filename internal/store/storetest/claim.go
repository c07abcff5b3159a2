package storetest

import (
	"context"
	"errors"
	"slices"
	"strconv"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() { extra["ClaimNext"] = testClaimNext }

// A claim takes the oldest pending build the runner's tags allow, moves it
// to running with the runner, its token digest and timeout in the same
// statement, and returns the job's spec with it.
func testClaimNext(t *testing.T, st store.Store) {
	ctx := context.Background()
	u, p, _ := seedProject(t, st)
	tagged := newJob("tagged", 0, "on_success")
	tagged.Job.TagList = []string{"gpu"}
	tagged.Spec = []byte(`{"script":["nvidia-smi"]}`)
	pl := ok[*ci.Pipeline](t)(st.CreatePipeline(ctx, store.NewPipeline{
		Pipeline:  ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: "main", Status: ci.StatusCreated, Source: ci.SourcePush, UserID: &u.ID, CreatedAt: t0, UpdatedAt: t0},
		Variables: []store.Variable{{Key: "Z_VAR", Value: "z", VariableType: "env_var"}, {Key: "A_FILE", Value: "a", VariableType: "file"}},
		Jobs:      []store.NewJob{tagged, newJob("plain", 0, "on_success"), newJob("deploy", 0, "manual")},
	}))
	ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(time.Second), ci.ProcessPipeline))
	var deploy *ci.Job
	for _, j := range ok[[]*ci.Job](t)(st.ListJobs(ctx, store.JobFilter{ProjectID: p.ID, PipelineID: pl.ID, Limit: 10})) {
		if j.Name == "deploy" {
			deploy = j
		}
	}
	r := ok[*ci.Runner](t)(st.InsertRunner(ctx, ci.Runner{Type: ci.InstanceRunner, Description: "r", RunUntagged: true, CreatedAt: t0}, "claim-digest"))
	params := store.ClaimNextParams{ProjectID: p.ID, RunnerID: r.ID, RunUntagged: true, TokenDigest: "job-digest-1", MaxTimeout: 600, DefaultTimeout: 3600, Now: t0.Add(2 * time.Second)}

	// Untagged runner: only the untagged job, though the tagged one is older.
	c := ok[*store.Claimed](t)(st.ClaimNext(ctx, params))
	if c.Job.Name != "plain" || c.Job.Status != ci.StatusRunning || c.Job.RunnerID == nil || *c.Job.RunnerID != r.ID ||
		c.Job.TimeoutSeconds == nil || *c.Job.TimeoutSeconds != 600 || string(c.Spec) != `{"script":["true"]}` {
		t.Fatalf("claimed %+v spec %s", c.Job, c.Spec)
	}
	if byToken := ok[*ci.Job](t)(st.JobByTokenDigest(ctx, "job-digest-1")); byToken.ID != c.Job.ID {
		t.Fatalf("token digest points at %d, claimed %d", byToken.ID, c.Job.ID)
	}
	if len(c.Variables) != 0 {
		t.Fatalf("variables of a job nobody played: %v", c.Variables)
	}
	// A store that reads the pipeline with the claim reads what
	// PipelineByID and PipelineVariables would.
	if c.Pipeline != nil {
		byID := ok[*ci.Pipeline](t)(st.PipelineByID(ctx, p.ID, pl.ID))
		if c.Pipeline.ID != byID.ID || c.Pipeline.IID != byID.IID || c.Pipeline.SHA != byID.SHA || c.Pipeline.Ref != byID.Ref ||
			c.Pipeline.Protected != byID.Protected || c.Pipeline.Source != byID.Source || !c.Pipeline.CreatedAt.Equal(byID.CreatedAt) ||
			c.Pipeline.UserID == nil || *c.Pipeline.UserID != u.ID {
			t.Fatalf("claimed pipeline %+v, PipelineByID %+v", c.Pipeline, byID)
		}
		want := ok[[]store.Variable](t)(st.PipelineVariables(ctx, pl.ID))
		if len(want) != 2 || !slices.Equal(c.PipelineVariables, want) {
			t.Fatalf("claimed pipeline variables %v, PipelineVariables %v", c.PipelineVariables, want)
		}
	} else if c.PipelineVariables != nil {
		t.Fatal("pipeline variables without their pipeline")
	}
	if _, err := st.ClaimNext(ctx, params); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("nothing left for an untagged runner: %v", err)
	}
	// A manual job played with variables hands them over with the claim,
	// in JobVariables' order.
	ok[*ci.Job](t)(st.PlayJob(ctx, deploy.ID, u.ID, []store.Variable{{Key: "Z", Value: "last"}, {Key: "A", Value: "first"}}, t0.Add(2*time.Second)))
	params.TokenDigest = "job-digest-3"
	c = ok[*store.Claimed](t)(st.ClaimNext(ctx, params))
	want := ok[[]store.Variable](t)(st.JobVariables(ctx, deploy.ID))
	if c.Job.ID != deploy.ID || len(want) != 2 || !slices.Equal(c.Variables, want) || c.Variables[0].Key != "A" {
		t.Fatalf("claimed %s with %v, JobVariables %v", c.Job.Name, c.Variables, want)
	}
	params.RunnerTags, params.TokenDigest = []string{"gpu", "linux"}, "job-digest-2"
	c = ok[*store.Claimed](t)(st.ClaimNext(ctx, params))
	if c.Job.Name != "tagged" || string(c.Spec) != `{"script":["nvidia-smi"]}` {
		t.Fatalf("claimed %s spec %s", c.Job.Name, c.Spec)
	}
}

func init() { extra["AppendTraceAs"] = testAppendTraceAs }

// An append by the holder of a job's token checks the token and the status
// in the statement that appends; every refusal is ErrNotFound and leaves
// the log as it was.
func testAppendTraceAs(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, ids := claimedJobs(t, st, "the-digest")
	id := ids[0]
	if n, status, err := st.AppendTraceAs(ctx, id, "the-digest", 0, []byte("abc")); err != nil || n != 3 || status != ci.StatusRunning {
		t.Fatalf("append: %d %s %v", n, status, err)
	}
	refused := func(why, digest string, offset int64) {
		t.Helper()
		if _, _, err := st.AppendTraceAs(ctx, id, digest, offset, []byte("zz")); !errors.Is(err, ci.ErrNotFound) {
			t.Fatalf("%s: %v", why, err)
		}
	}
	refused("another job's token", "other-digest", 3)
	refused("an offset that is not the length", "the-digest", 1)
	if _, _, err := st.AppendTraceAs(ctx, id+1000, "the-digest", 3, []byte("zz")); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("another job id: %v", err)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: id, From: ci.StatusRunning, To: ci.StatusCanceling, Now: t0.Add(3 * time.Second)}))
	if n, status, err := st.AppendTraceAs(ctx, id, "the-digest", 3, []byte("de")); err != nil || n != 5 || status != ci.StatusCanceling {
		t.Fatalf("append while canceling: %d %s %v", n, status, err)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: id, From: ci.StatusCanceling, To: ci.StatusCanceled, Now: t0.Add(4 * time.Second)}))
	refused("a job no longer running", "the-digest", 5)
	if b := ok[[]byte](t)(st.ReadTrace(ctx, id)); string(b) != "abcde" {
		t.Fatalf("log %q", b)
	}
}

func init() { extra["FinishJobWithToken"] = testFinishJobWithToken }

// A finish that names the job's token digest ends the job only for the
// holder of that token: any other digest is ErrNotFound and changes
// nothing; a canceling job still ends canceled, an ended one conflicts.
func testFinishJobWithToken(t *testing.T, st store.Store) {
	ctx := context.Background()
	p, ids := claimedJobs(t, st, "digest-one", "digest-two")
	one, two := ids[0], ids[1]
	finish := func(id int64, digest string) (*ci.Job, error) {
		return st.FinishJob(ctx, store.FinishParams{JobID: id, State: ci.StatusSuccess, Now: t0.Add(3 * time.Second), TokenDigest: digest})
	}
	if _, err := finish(one, "digest-two"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("another job's token: %v", err)
	}
	if j := ok[*ci.Job](t)(st.JobByID(ctx, p.ID, one)); j.Status != ci.StatusRunning || j.FinishedAt != nil {
		t.Fatalf("a refused finish changed the job: %s", j.Status)
	}
	if j := ok[*ci.Job](t)(finish(one, "digest-one")); j.Status != ci.StatusSuccess || j.FinishedAt == nil {
		t.Fatalf("finished as %s", j.Status)
	}
	if _, err := finish(one, "digest-one"); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("finishing an ended job: %v", err)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: two, From: ci.StatusRunning, To: ci.StatusCanceling, Now: t0.Add(3 * time.Second)}))
	if _, err := finish(two, "digest-one"); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("a canceling job, another token: %v", err)
	}
	if j := ok[*ci.Job](t)(finish(two, "digest-two")); j.Status != ci.StatusCanceled {
		t.Fatalf("a canceling job finished as %s", j.Status)
	}
}

// claimedJobs seeds a project with one pipeline of len(digests) jobs and
// claims them in order, each with its token digest.
func claimedJobs(t *testing.T, st store.Store, digests ...string) (*ci.Project, []int64) {
	t.Helper()
	ctx := context.Background()
	u, p, _ := seedProject(t, st)
	np := store.NewPipeline{Pipeline: ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: "main", Status: ci.StatusCreated, Source: ci.SourcePush, UserID: &u.ID, CreatedAt: t0, UpdatedAt: t0}}
	for i := range digests {
		np.Jobs = append(np.Jobs, newJob("job"+strconv.Itoa(i), 0, "on_success"))
	}
	pl := ok[*ci.Pipeline](t)(st.CreatePipeline(ctx, np))
	ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(time.Second), ci.ProcessPipeline))
	r := ok[*ci.Runner](t)(st.InsertRunner(ctx, ci.Runner{Type: ci.InstanceRunner, Description: "r", RunUntagged: true, CreatedAt: t0}, "claimed-jobs-runner"))
	var ids []int64
	for _, digest := range digests {
		c := ok[*store.Claimed](t)(st.ClaimNext(ctx, store.ClaimNextParams{ProjectID: p.ID, RunnerID: r.ID, RunUntagged: true, TokenDigest: digest, DefaultTimeout: 3600, Now: t0.Add(2 * time.Second)}))
		ids = append(ids, c.Job.ID)
	}
	return p, ids
}
