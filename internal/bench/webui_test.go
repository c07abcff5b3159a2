package bench_test

import (
	"context"
	"io"
	"testing"

	"gantry/internal/bench"
	"gantry/internal/testenv"
)

// A small run of the web page benchmark: every page must answer 200 on
// each store. (Timing is reported by `gantry bench webui`, never asserted.)
func TestWebUISmoke(t *testing.T) {
	stores := []string{"sqlite"}
	url := ""
	if testenv.PostgresURL() != "" {
		u, _ := testenv.NewPostgresSchema(t)
		url, stores = u, append(stores, "postgres")
	}
	reps, err := bench.WebUI(context.Background(), bench.WebUIOptions{Jobs: 2000, Requests: 3, LogMiB: 2, DatabaseURL: url, Stores: stores, TempDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range reps {
		if len(r.Pages) < 10 {
			t.Fatalf("%s: %d pages timed", r.Store, len(r.Pages))
		}
		for _, p := range r.Pages {
			if p.Bytes < 1000 {
				t.Errorf("%s %s: a %d-byte page", r.Store, p.Page, p.Bytes)
			}
		}
	}
}
