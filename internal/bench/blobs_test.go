package bench_test

import (
	"context"
	"io"
	"testing"

	"gantry/internal/bench"
	"gantry/internal/testenv"
)

// A small run of the blob benchmark on both stores: every object is
// written and read back whole. (Throughput is reported by `gantry bench blobs`.)
func TestBlobsSmoke(t *testing.T) {
	reps, err := bench.Blobs(context.Background(), bench.BlobsOptions{Size: 6 << 20, Runs: 1, Stores: []string{"fs", "s3"},
		VersityGW: testenv.VersityGW(t), TempDir: t.TempDir()}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if len(reps) != 2 {
		t.Fatalf("%+v", reps)
	}
	for _, r := range reps {
		if r.PutMBps <= 0 || r.GetMBps <= 0 {
			t.Errorf("%+v", r)
		}
	}
}
