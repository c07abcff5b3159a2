package bench

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"gantry/internal/blob"
	"gantry/internal/s3gw"
)

// BlobsOptions configure the blob store benchmark.
type BlobsOptions struct {
	Size      int64    // bytes per object (64 MiB)
	Runs      int      // objects written and read back per store (3)
	Stores    []string // "fs" and/or "s3"
	VersityGW string   // versitygw binary, started on loopback for "s3"
	TempDir   string
}

// BlobsReport is one store's median throughput, in MB/s (10^6 bytes).
type BlobsReport struct {
	Store   string
	PutMBps float64 // Put of a streamed object, until it is durable
	GetMBps float64 // Open and read to the end
}

// Blobs writes and reads back objects on each store. Both stores keep
// their data on the same disk (under TempDir): the S3 figures are the FS
// ones plus what HTTP, signing and versitygw add.
func Blobs(ctx context.Context, o BlobsOptions, out io.Writer) ([]BlobsReport, error) {
	var reps []BlobsReport
	for _, name := range o.Stores {
		r, err := blobsOne(ctx, name, o)
		if err != nil {
			return reps, fmt.Errorf("%s: %w", name, err)
		}
		reps = append(reps, r)
	}
	fmt.Fprintf(out, "\n%-6s %10s %6s %14s %14s\n", "store", "object MiB", "runs", "put MB/s", "get MB/s")
	for _, r := range reps {
		fmt.Fprintf(out, "%-6s %10.1f %6d %14.1f %14.1f\n", r.Store, float64(o.Size)/(1<<20), o.Runs, r.PutMBps, r.GetMBps)
	}
	return reps, nil
}

func blobsOne(ctx context.Context, name string, o BlobsOptions) (BlobsReport, error) {
	dir, err := os.MkdirTemp(o.TempDir, "gantry-blobs-")
	if err != nil {
		return BlobsReport{}, err
	}
	defer os.RemoveAll(dir)
	var st blob.Store
	switch name {
	case "fs":
		st = &blob.FS{Root: filepath.Join(dir, "blobs")}
	case "s3":
		gw, err := s3gw.Start(ctx, o.VersityGW, dir)
		if err != nil {
			return BlobsReport{}, err
		}
		defer gw.Stop()
		opts, err := gw.NewBucket(ctx)
		if err != nil {
			return BlobsReport{}, err
		}
		if st, err = blob.NewS3(ctx, opts); err != nil {
			return BlobsReport{}, err
		}
	default:
		return BlobsReport{}, fmt.Errorf("unknown blob store %q (fs, s3)", name)
	}
	block := make([]byte, 1<<20)
	_, _ = rand.Read(block) // incompressible, generated once: the source costs nothing
	var puts, gets []time.Duration
	for i := range o.Runs {
		key := fmt.Sprintf("bench/%d", i)
		t0 := time.Now()
		n, err := st.Put(ctx, key, &repeatReader{block: block, left: o.Size}, 0)
		if err != nil {
			return BlobsReport{}, err
		}
		if n != o.Size {
			return BlobsReport{}, fmt.Errorf("put %d of %d bytes", n, o.Size)
		}
		puts = append(puts, time.Since(t0))
		t0 = time.Now()
		r, size, err := st.Open(ctx, key)
		if err != nil {
			return BlobsReport{}, err
		}
		read, err := io.Copy(io.Discard, r)
		r.Close()
		if err != nil || read != size || size != o.Size {
			return BlobsReport{}, fmt.Errorf("read back %d of %d bytes (%d written): %v", read, size, o.Size, err)
		}
		gets = append(gets, time.Since(t0))
	}
	return BlobsReport{Store: name, PutMBps: mbps(o.Size, median(puts)), GetMBps: mbps(o.Size, median(gets))}, nil
}

func mbps(n int64, d time.Duration) float64 { return float64(n) / 1e6 / d.Seconds() }

// repeatReader streams left bytes by repeating block.
type repeatReader struct {
	block []byte
	off   int
	left  int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n := copy(p, r.block[r.off:])
	r.off = (r.off + n) % len(r.block)
	r.left -= int64(n)
	return n, nil
}
