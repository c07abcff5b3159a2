package bench_test

import (
	"context"
	"io"
	"testing"

	"gantry/internal/bench"
	"gantry/internal/testenv"
)

// A small run of the log search benchmark: the rare string is found in
// every log it was planted in, the index rules out every log for the
// absent one. (Timing is reported by `gantry bench logsearch`.)
func TestLogSearchSmoke(t *testing.T) {
	stores, url := []string{"sqlite"}, ""
	if testenv.PostgresURL() != "" {
		u, _ := testenv.NewPostgresSchema(t)
		url, stores = u, append(stores, "postgres")
	}
	reps, err := bench.LogSearch(context.Background(), bench.LogSearchOptions{Logs: 600, LogSize: 4 << 10, Runs: 3, ScanRuns: 1,
		DatabaseURL: url, Stores: stores, TempDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if r.RareHits != 1 || r.AbsentPruned != 600 || r.Segments != 1 || r.IndexBytes <= 0 || r.RareScanned >= 600 {
			t.Errorf("%+v", r)
		}
	}
}
