package joblog_test

import (
	"bytes"
	"context"
	"syscall"
	"testing"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/joblog"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// BenchmarkArchiveSweep archives the 64-byte logs of 100 ended jobs per
// sweep, as a busy node's archiver does, on every test store, into files
// and into the tiered store the server uses (such logs become rows); besides
// time it reports the process's CPU time and the store's write
// transactions per log:
//
//	go test ./internal/joblog -run '^$' -bench ArchiveSweep -benchtime 20x
func BenchmarkArchiveSweep(b *testing.B) {
	const perSweep = 100
	for _, be := range testenv.Backends(b) {
		for _, tier := range []string{"files", "tiered"} {
			b.Run(be.Name+"/"+tier, func(b *testing.B) {
				ctx := context.Background()
				st := be.Open(b)
				fx := testenv.Seed(b, st)
				var blobs blob.Store = &blob.FS{Root: b.TempDir()}
				if tier == "tiered" { // as the server runs: small logs are rows
					blobs = &blob.Tiered{Large: blobs, Small: st, Prefix: joblog.BlobKeyPrefix, Max: blob.DefaultSmallMax}
				}
				archiver := &joblog.Archiver{Store: st, Blobs: blobs}
				if archiver.Sweep(ctx) < 0 { // the fixture's own logs
					b.Fatal()
				}
				writes, _ := st.(interface{ Writes() int64 })
				log := bytes.Repeat([]byte("ok \x1b[32m✓\x1b[0m\r\n"), 4)[:64]
				var cpu time.Duration
				var wrote int64
				for b.Loop() {
					b.StopTimer()
					for range perSweep {
						j, err := st.InsertJob(ctx, ci.Job{ProjectID: fx.Project.ID, PipelineID: fx.Pipeline.ID, Kind: ci.KindBuild, Name: "noop", Stage: "test", Status: ci.StatusRunning, Ref: "main", CreatedAt: testenv.T0})
						if err == nil {
							_, err = st.AppendTrace(ctx, j.ID, 0, log)
						}
						if err == nil {
							_, err = st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: testenv.T0})
						}
						if err != nil {
							b.Fatal(err)
						}
					}
					c0, w0 := processCPU(), int64(0)
					if writes != nil {
						w0 = writes.Writes()
					}
					b.StartTimer()
					if n := archiver.Sweep(ctx); n != perSweep {
						b.Fatalf("archived %d of %d logs", n, perSweep)
					}
					b.StopTimer()
					cpu += processCPU() - c0
					if writes != nil {
						wrote += writes.Writes() - w0
					}
					b.StartTimer()
				}
				b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*perSweep), "µs/log")
				b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*perSweep), "cpu-µs/log")
				if writes != nil {
					b.ReportMetric(float64(wrote)/float64(b.N*perSweep), "writes/log")
				}
			})
		}
	}
}

func processCPU() time.Duration {
	var r syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &r); err != nil {
		return 0
	}
	return time.Duration(r.Utime.Nano() + r.Stime.Nano())
}
