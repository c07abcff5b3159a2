package bench

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/githost"
	"gantry/internal/pipeline"
	"gantry/internal/store"
	"gantry/internal/store/sqldb"
)

// PipelineOptions configure the pipeline benchmark.
type PipelineOptions struct {
	Jobs        int // jobs in the generated .gitlab-ci.yml (500)
	Stages      int // stages they are spread over (5)
	Runs        int // pipelines created and processed per store (5)
	DatabaseURL string
	Stores      []string
	TempDir     string
}

// PipelineReport is one store's figures (medians over the runs).
type PipelineReport struct {
	Store            string
	Create           time.Duration // compile + create the pipeline and its jobs
	Process          time.Duration // process to completion, jobs finished through the store
	ProcessSteps     int           // processing steps that run took
	PerJobProcessing time.Duration // same, but one processing step after every single job
}

// GenerateConfig writes a configuration of n jobs over stages stages in
// which every job after the first stage needs up to three jobs of the stage
// before it.
func GenerateConfig(n, stages int) string {
	var b strings.Builder
	b.WriteString("stages: [")
	for s := 0; s < stages; s++ {
		if s > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "s%d", s)
	}
	b.WriteString("]\n")
	per := n / stages
	for i := 0; i < n; i++ {
		s := min(i/per, stages-1)
		fmt.Fprintf(&b, "job-%d:\n  stage: s%d\n  script: [\"echo %d\"]\n", i, s, i)
		if s > 0 {
			b.WriteString("  needs: [")
			for k := 0; k < 3; k++ {
				if k > 0 {
					b.WriteString(", ")
				}
				fmt.Fprintf(&b, "job-%d", (s-1)*per+(i+k)%per)
			}
			b.WriteString("]\n")
		}
	}
	return b.String()
}

// Pipeline runs the benchmark on each store and writes a report.
func Pipeline(ctx context.Context, o PipelineOptions, out io.Writer) ([]PipelineReport, error) {
	reps, err := perStore(o.Stores, func(name string) (PipelineReport, error) { return pipelineOne(ctx, name, o, out) })
	if err != nil {
		return reps, err
	}
	fmt.Fprintf(out, "\n%-9s %6s %12s %14s %8s %18s\n", "store", "jobs", "create ms", "process ms", "steps", "per-job steps ms")
	for _, r := range reps {
		fmt.Fprintf(out, "%-9s %6d %12.1f %14.1f %8d %18.1f\n", r.Store, o.Jobs, ms(r.Create), ms(r.Process), r.ProcessSteps, ms(r.PerJobProcessing))
	}
	return reps, nil
}

func pipelineOne(ctx context.Context, name string, o PipelineOptions, out io.Writer) (PipelineReport, error) {
	rep := PipelineReport{Store: name}
	db, closeDB, err := openBenchStore(ctx, name, JobsListOptions{DatabaseURL: o.DatabaseURL, TempDir: o.TempDir})
	if err != nil {
		return rep, err
	}
	defer closeDB()
	p, err := seedBench(ctx, db, 1)
	if err != nil {
		return rep, err
	}
	root, err := db.UserByUsername(ctx, "root")
	if err != nil {
		return rep, err
	}
	dir, err := os.MkdirTemp(o.TempDir, "gantry-bench-repos-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	repos := &githost.Repos{Root: filepath.Join(dir, "repos")}
	if err := repos.Init(ctx, p.ID, "main"); err != nil {
		return rep, err
	}
	res, err := repos.CommitFiles(ctx, p.ID, githost.CommitRequest{Branch: "main", Message: "ci", AuthorName: "Bench", AuthorEmail: "bench@example.com",
		Actions: []githost.Action{{Action: "create", FilePath: ".gitlab-ci.yml", Content: []byte(GenerateConfig(o.Jobs, o.Stages))}}, Now: time.Now()})
	if err != nil {
		return rep, err
	}
	svc := pipeline.New(pipeline.Config{ExternalURL: "http://127.0.0.1"}, db, pipeline.GitSource{Repos: repos}, nil, nil)
	var creates, processes, perJob []time.Duration
	for run := 0; run < o.Runs; run++ {
		t0 := time.Now()
		pl, err := svc.Create(ctx, pipeline.CreateRequest{Project: p, Ref: "main", SHA: res.SHA, Source: ci.SourceAPI, User: root})
		if err != nil {
			return rep, err
		}
		creates = append(creates, time.Since(t0))
		d, steps, err := drive(ctx, db, svc, pl, false)
		if err != nil {
			return rep, err
		}
		processes, rep.ProcessSteps = append(processes, d), steps
		pl2, err := svc.Create(ctx, pipeline.CreateRequest{Project: p, Ref: "main", SHA: res.SHA, Source: ci.SourceAPI, User: root})
		if err != nil {
			return rep, err
		}
		d, _, err = drive(ctx, db, svc, pl2, true)
		if err != nil {
			return rep, err
		}
		perJob = append(perJob, d)
	}
	rep.Create, rep.Process, rep.PerJobProcessing = median(creates), median(processes), median(perJob)
	fmt.Fprintf(out, "[%s] create %.1f ms, process %.1f ms in %d steps, one step per job %.1f ms (medians of %d)\n",
		name, ms(rep.Create), ms(rep.Process), rep.ProcessSteps, ms(rep.PerJobProcessing), o.Runs)
	return rep, nil
}

// drive processes a pipeline to completion, finishing every pending job
// through the store as a runner would. With perJob it processes after each
// job, as un-coalesced events would; otherwise after each wave of jobs.
func drive(ctx context.Context, db *sqldb.DB, svc *pipeline.Service, pl *ci.Pipeline, perJob bool) (time.Duration, int, error) {
	t0 := time.Now()
	steps := 0
	step := func() error { steps++; return svc.Process(ctx, pl.ID) }
	if err := step(); err != nil {
		return 0, 0, err
	}
	for i := 0; i < 10000; i++ {
		jobs, err := db.ListJobs(ctx, store.JobFilter{ProjectID: pl.ProjectID, PipelineID: pl.ID, Statuses: []ci.JobStatus{ci.StatusPending}, Limit: 10000})
		if err != nil {
			return 0, 0, err
		}
		if len(jobs) == 0 {
			break
		}
		for _, j := range jobs {
			now := time.Now()
			if _, err := db.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusPending, To: ci.StatusRunning, Now: now}); err != nil {
				return 0, 0, err
			}
			if _, err := db.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: now}); err != nil {
				return 0, 0, err
			}
			if perJob {
				if err := step(); err != nil {
					return 0, 0, err
				}
			}
		}
		if !perJob {
			if err := step(); err != nil {
				return 0, 0, err
			}
		}
	}
	final, err := db.PipelineByID(ctx, pl.ProjectID, pl.ID)
	if err != nil {
		return 0, 0, err
	}
	if final.Status != ci.StatusSuccess {
		return 0, 0, fmt.Errorf("pipeline ended %s", final.Status)
	}
	return time.Since(t0), steps, nil
}

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}
