package bench_test

import (
	"context"
	"io"
	"testing"
	"time"

	"gantry/internal/bench"
	"gantry/internal/testenv"
)

// A small run of the shipped benchmark: it must load, serve every request
// with 200 and report figures on each store. (Timing is reported by
// `gantry bench jobs-list`, never asserted.)
func TestJobsListSmoke(t *testing.T) {
	stores := []string{"sqlite"}
	url := ""
	if testenv.PostgresURL() != "" {
		u, _ := testenv.NewPostgresSchema(t)
		url, stores = u, append(stores, "postgres")
	}
	reps, err := bench.JobsList(context.Background(), bench.JobsListOptions{
		Jobs: 3000, Conns: 4, Duration: 300 * time.Millisecond, PerPage: 20, DatabaseURL: url, Stores: stores, TempDir: t.TempDir(),
	}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != len(stores) {
		t.Fatalf("%d reports for %d stores", len(reps), len(stores))
	}
	for _, r := range reps {
		if r.Gantry.Requests == 0 || r.Gantry.Errors != 0 || r.Ceiling.Errors != 0 || r.PageBytes < 20*500 {
			t.Errorf("%s: %+v", r.Store, r)
		}
	}
}
