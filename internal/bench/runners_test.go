package bench_test

import (
	"context"
	"io"
	"testing"
	"time"

	"gantry/internal/bench"
	"gantry/internal/testenv"
)

// A small run of the dispatch benchmark: every job is picked up and
// finished, idle polls write nothing, on each store.
func TestRunnersSmoke(t *testing.T) {
	stores, url := []string{"sqlite"}, ""
	if testenv.PostgresURL() != "" {
		u, _ := testenv.NewPostgresSchema(t)
		url, stores = u, append(stores, "postgres")
	}
	reps, err := bench.Runners(context.Background(), bench.RunnersOptions{IdleRunners: 20, Pickups: 20, WorkRunners: 5, Jobs: 100, LogJobs: 20, LogChunk: 4096, LogEvery: 200 * time.Millisecond,
		IdleFor: 500 * time.Millisecond, LongPoll: 5 * time.Second, DatabaseURL: url, Stores: stores, TempDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.JobsPerSecond <= 0 || r.JobsCeilingPerSecond <= 0 || r.PickupP99 <= 0 || r.IngestMBps <= 0 || r.IngestCeilingMBps <= 0 || r.PacedAppendP99 <= 0 {
			t.Errorf("%+v", r)
		}
		if r.WritesPerIdlePoll != 0 {
			t.Errorf("%s: idle polls wrote to the database: %.3f writes per poll", r.Store, r.WritesPerIdlePoll)
		}
	}
}
