package app_test

import (
	"context"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/store"
)

// TestCrossNodePickupLatency measures how long a job made pending on one
// node takes to reach a runner long-polling another. It reports, asserting
// nothing about time; GANTRY_MEASURE_PICKUPS sets the count (default 20).
func TestCrossNodePickupLatency(t *testing.T) {
	pickups := 20
	if s := os.Getenv("GANTRY_MEASURE_PICKUPS"); s != "" {
		pickups, _ = strconv.Atoi(s)
	}
	a, b := startCluster(t)
	token := a.newRunner()
	pid := b.setupProject("latency", "job:\n  script: [make]\n")
	ids := make(chan int64)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		lastUpdate := ""
		for ctx.Err() == nil {
			p, err := pollJob(ctx, a, token, lastUpdate)
			switch {
			case err != nil:
			case p.code == http.StatusCreated:
				select {
				case ids <- p.id:
				case <-ctx.Done():
				}
			case p.code == http.StatusNoContent:
				lastUpdate = p.lastUpdate
			}
		}
	}()
	defer func() { cancel(); <-done }()
	<-ids // the commit's own job
	st := b.app.Store
	var lat []time.Duration
	for range pickups {
		time.Sleep(50 * time.Millisecond) // the runner parks again
		job := createdJob(t, st, pid)
		t0 := time.Now()
		if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: job.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: t0}); err != nil {
			t.Fatal(err)
		}
		b.app.Pipelines.OnJobsPending(pid, []int64{job.ID})
		select {
		case id := <-ids:
			if id != job.ID {
				t.Fatalf("picked %d, want %d", id, job.ID)
			}
			lat = append(lat, time.Since(t0))
		case <-time.After(30 * time.Second):
			t.Fatalf("job %d not picked up", job.ID)
		}
	}
	slices.Sort(lat)
	t.Logf("cross-node pickup over %d jobs: p50 %v, p99 %v, max %v", len(lat), lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)], lat[len(lat)-1])
}

// TestHeldRequestRechecks: a job made pending with no notification at all
// (as when one is lost) still reaches a held request, by its re-check.
func TestHeldRequestRechecks(t *testing.T) {
	a, _ := startCluster(t, func(c *config.Config) { c.JobRecheck = 300 * time.Millisecond })
	token := a.newRunner()
	pid := a.setupProject("quiet", "job:\n  script: [make]\n")
	waitFor(t, "the commit's job taken", func() bool {
		p, err := pollJob(context.Background(), a, token, "")
		return err == nil && p.code == http.StatusCreated
	})
	got := heldRequest(t, a, token)
	job := createdJob(t, a.app.Store, pid)
	if _, err := a.app.Store.TransitionJob(context.Background(), store.TransitionParams{JobID: job.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	select {
	case p := <-got:
		if p.code != http.StatusCreated || p.id != job.ID {
			t.Fatalf("held request answered %+v, want job %d", p, job.ID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("an unannounced pending job did not reach the held request within 5 s (long poll 50 s)")
	}
}

// createdJob inserts a job not yet pending, in a pipeline of its own.
func createdJob(t *testing.T, st store.Store, projectID int64) *ci.Job {
	t.Helper()
	ctx, now := context.Background(), time.Now()
	pl, err := st.InsertPipeline(ctx, ci.Pipeline{ProjectID: projectID, SHA: strings.Repeat("a", 40), Ref: "main", Status: ci.StatusRunning, Source: ci.SourceAPI, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	job, err := st.InsertJob(ctx, ci.Job{ProjectID: projectID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "noop", Stage: "test", Status: ci.StatusCreated, Ref: "main", CreatedAt: now})
	if err != nil {
		t.Fatal(err)
	}
	return job
}
