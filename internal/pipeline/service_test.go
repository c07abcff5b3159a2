package pipeline_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/githost"
	"gantry/internal/pipeline"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

type world struct {
	st    store.Store
	repos *githost.Repos
	svc   *pipeline.Service
	fx    *testenv.Fixture
	sha   string
}

func setup(t *testing.T, b testenv.Backend, config string) *world {
	st := b.Open(t)
	fx := testenv.Seed(t, st)
	repos := &githost.Repos{Root: filepath.Join(t.TempDir(), "repos")}
	ctx := context.Background()
	if err := repos.Init(ctx, fx.Project.ID, "main"); err != nil {
		t.Fatal(err)
	}
	res, err := repos.CommitFiles(ctx, fx.Project.ID, githost.CommitRequest{Branch: "main", Message: "ci", AuthorName: "A", AuthorEmail: "a@example.com",
		Actions: []githost.Action{{Action: "create", FilePath: ".gitlab-ci.yml", Content: []byte(config)}}, Now: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	svc := pipeline.New(pipeline.Config{ExternalURL: "http://gantry.test"}, st, pipeline.GitSource{Repos: repos}, nil, nil)
	t.Cleanup(svc.Stop)
	return &world{st: st, repos: repos, svc: svc, fx: fx, sha: res.SHA}
}

func (w *world) create(t *testing.T) *ci.Pipeline {
	pl, err := w.svc.Create(context.Background(), pipeline.CreateRequest{Project: w.fx.Project, Ref: "main", SHA: w.sha, Source: ci.SourceAPI, User: w.fx.Alice})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

func (w *world) statuses(t *testing.T, pl *ci.Pipeline) map[string]ci.JobStatus {
	jobs, err := w.st.ListJobs(context.Background(), store.JobFilter{ProjectID: pl.ProjectID, PipelineID: pl.ID, Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]ci.JobStatus{}
	for _, j := range jobs {
		out[j.Name] = j.Status
	}
	return out
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A pipeline created while no processor runs (as after a crash between
// creation and processing) is processed when the processor starts.
func TestResumeAfterCrash(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			w := setup(t, b, "a:\n  script: [x]\nb:\n  stage: test\n  script: [y]\n")
			pl := w.create(t)
			if got := w.statuses(t, pl); got["a"] != ci.StatusCreated {
				t.Fatalf("processed without a processor: %v", got)
			}
			w.svc.Start(context.Background())
			eventually(t, "resumed processing", func() bool { return w.statuses(t, pl)["a"] == ci.StatusPending })
		})
	}
}

func TestDelayedAndResourceGroups(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			w := setup(t, b, "later:\n  script: [x]\n  when: delayed\n  start_in: 1 second\ndeploy:\n  script: [d]\n  resource_group: prod\n")
			w.svc.Start(context.Background())
			p1, p2 := w.create(t), w.create(t)
			eventually(t, "delayed job scheduled", func() bool { return w.statuses(t, p1)["later"] == ci.StatusScheduled })
			eventually(t, "one deploy at a time", func() bool {
				a, b := w.statuses(t, p1)["deploy"], w.statuses(t, p2)["deploy"]
				return a == ci.StatusPending && b == ci.StatusWaitingForResource
			})
			// The delayed job becomes pending once its time has come.
			eventually(t, "delayed job due", func() bool { return w.statuses(t, p1)["later"] == ci.StatusPending })
			// Finishing the first deploy grants the resource to the second.
			jobs, _ := w.st.ListJobs(context.Background(), store.JobFilter{ProjectID: p1.ProjectID, PipelineID: p1.ID, Limit: 10})
			for _, j := range jobs {
				if j.Name == "deploy" {
					ctx := context.Background()
					if _, err := w.st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusPending, To: ci.StatusRunning, Now: time.Now()}); err != nil {
						t.Fatal(err)
					}
					if _, err := w.st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: time.Now()}); err != nil {
						t.Fatal(err)
					}
					w.svc.Enqueue(p1.ID)
				}
			}
			eventually(t, "resource granted", func() bool { return w.statuses(t, p2)["deploy"] == ci.StatusPending })
		})
	}
}
