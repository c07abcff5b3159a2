package joblog_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"testing"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/joblog"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// BenchmarkLogRange reads the first and the last 64 KiB of a 50 MB log,
// from live chunks and from its archived blob, on every test store:
//
//	go test ./internal/joblog -run '^$' -bench LogRange -benchtime 200x
func BenchmarkLogRange(b *testing.B) {
	const (
		logSize   = 50 << 20
		pieceSize = 64 << 10 // one runner PATCH
		rangeSize = 64 << 10
	)
	for _, be := range testenv.Backends(b) {
		b.Run(be.Name, func(b *testing.B) {
			ctx := context.Background()
			st := be.Open(b)
			fx := testenv.Seed(b, st)
			job := fx.JobsByStatus[ci.StatusRunning]
			base, err := st.TraceSize(ctx, job.ID)
			if err != nil {
				b.Fatal(err)
			}
			line := []byte("0123456789abcdef \x1b[32mok\x1b[0m\r\n")
			piece := bytes.Repeat(line, pieceSize/len(line)+1)[:pieceSize]
			for off := base; off < base+logSize; off += pieceSize {
				if _, err := st.AppendTrace(ctx, job.ID, off, piece); err != nil {
					b.Fatal(err)
				}
			}
			size := base + logSize
			reader := &joblog.Reader{Store: st, Blobs: &blob.FS{Root: b.TempDir()}}
			read := func(b *testing.B, from int64) {
				for b.Loop() {
					l, err := reader.Open(ctx, job.ID)
					if err != nil {
						b.Fatal(err)
					}
					n, err := l.CopyRange(ctx, io.Discard, from, from+rangeSize)
					l.Close()
					if err != nil || n != rangeSize {
						b.Fatal(n, err)
					}
				}
			}
			for _, where := range []string{"chunks", "archive"} {
				if where == "archive" {
					if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: job.ID, From: ci.StatusRunning, To: ci.StatusSuccess, Now: testenv.T0}); err != nil {
						b.Fatal(err)
					}
					archiver := &joblog.Archiver{Store: st, Blobs: reader.Blobs}
					if err := archiver.ArchiveJob(ctx, store.UnarchivedTrace{JobID: job.ID, ProjectID: job.ProjectID, Size: size}); err != nil {
						b.Fatal(err)
					}
				}
				b.Run(fmt.Sprintf("%s/first64KiB", where), func(b *testing.B) { read(b, 0) })
				b.Run(fmt.Sprintf("%s/last64KiB", where), func(b *testing.B) { read(b, size-rangeSize) })
			}
		})
	}
}
