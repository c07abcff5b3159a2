package bench_test

import (
	"context"
	"io"
	"testing"

	"gantry/internal/bench"
	"gantry/internal/testenv"
)

// A small run of the pipeline benchmark: every pipeline must reach success
// on each store. (Timing is reported by `gantry bench pipeline`.)
func TestPipelineSmoke(t *testing.T) {
	stores, url := []string{"sqlite"}, ""
	if testenv.PostgresURL() != "" {
		u, _ := testenv.NewPostgresSchema(t)
		url, stores = u, append(stores, "postgres")
	}
	reps, err := bench.Pipeline(context.Background(), bench.PipelineOptions{Jobs: 40, Stages: 4, Runs: 1, DatabaseURL: url, Stores: stores, TempDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.ProcessSteps < 5 || r.Create <= 0 || r.Process <= 0 {
			t.Errorf("%+v", r)
		}
	}
}
