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
