package bench

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/joblog"
	"gantry/internal/logsearch"
	"gantry/internal/store"
	"gantry/internal/store/sqldb"
)

// LogSearchOptions configure `gantry bench logsearch`.
type LogSearchOptions struct {
	Logs        int // archived logs in one project (10,000)
	LogSize     int // bytes per log (1 MiB)
	Runs        int // requests per query (p50 and p99 over them)
	ScanRuns    int // requests of the unindexed baseline (it reads every log)
	DatabaseURL string
	Stores      []string
	TempDir     string
}

// LogSearchReport is one store's figures.
type LogSearchReport struct {
	Store                     string
	Load, Index               time.Duration
	LogBytes, IndexBytes      int64
	Segments                  int
	Rare, Absent, Common      Result
	RareHits                  int
	RareScanned, AbsentPruned int
	// ScanRare is the rare search without the index (P50 is the mean of
	// ScanRuns), reading ScanBytes.
	ScanRare  Result
	ScanBytes int64
}

// rareLine is planted in one log of every thousand.
const rareLine = "FATAL: segfault in libfoo.so.3 at 0x7f3a"

// LogSearch loads o.Logs archived logs of o.LogSize bytes into a project,
// indexes them, and times searches over HTTP on loopback: a rare string
// (in 0.1 % of the logs, every log read or ruled out), an absent one, and
// a common one (in every log: the first page fills at once). The same
// rare search without the index shows what the index saves.
func LogSearch(ctx context.Context, o LogSearchOptions, out io.Writer) ([]LogSearchReport, error) {
	var reports []LogSearchReport
	for _, name := range o.Stores {
		rep, err := logSearchOne(ctx, name, o, out)
		if err != nil {
			return reports, fmt.Errorf("%s: %w", name, err)
		}
		reports = append(reports, rep)
	}
	fmt.Fprintf(out, "\n%-9s %6s %8s %9s %9s %8s %14s %14s %14s %14s\n", "store", "logs", "log MB", "index MB", "index s", "load s",
		"rare p50/p99", "absent p50/p99", "common p50/p99", "unindexed rare (read)")
	for _, r := range reports {
		fmt.Fprintf(out, "%-9s %6d %8.0f %9.1f %9.1f %8.1f %6.1f/%6.1f ms %6.1f/%6.1f ms %6.1f/%6.1f ms %8.0f ms (%.0f MB)\n", r.Store, o.Logs,
			float64(r.LogBytes)/1e6, float64(r.IndexBytes)/1e6, r.Index.Seconds(), r.Load.Seconds(),
			ms(r.Rare.P50), ms(r.Rare.P99), ms(r.Absent.P50), ms(r.Absent.P99), ms(r.Common.P50), ms(r.Common.P99), ms(r.ScanRare.P50), float64(r.ScanBytes)/1e6)
	}
	return reports, nil
}

func logSearchOne(ctx context.Context, name string, o LogSearchOptions, out io.Writer) (LogSearchReport, error) {
	rep := LogSearchReport{Store: name}
	db, closeDB, err := openBenchStore(ctx, name, JobsListOptions{DatabaseURL: o.DatabaseURL, TempDir: o.TempDir})
	if err != nil {
		return rep, err
	}
	defer closeDB()
	dir, err := os.MkdirTemp(o.TempDir, "gantry-bench-blobs-")
	if err != nil {
		return rep, err
	}
	defer os.RemoveAll(dir)
	blobs := &blob.FS{Root: dir}
	p, err := seedBench(ctx, db, 1) // one job without a log: the seed needs one
	if err != nil {
		return rep, err
	}
	start := time.Now()
	if rep.LogBytes, err = loadLogs(ctx, db, blobs, p, o); err != nil {
		return rep, err
	}
	rep.Load = time.Since(start)
	fmt.Fprintf(out, "%s: %d logs (%.0f MB) loaded and archived in %s\n", name, o.Logs, float64(rep.LogBytes)/1e6, rep.Load.Round(time.Millisecond))

	reader := &joblog.Reader{Store: db, Blobs: blobs}
	start = time.Now()
	ix := &logsearch.Indexer{Store: db, Blobs: blobs, Logs: reader}
	if _, err := ix.Sweep(ctx, true); err != nil {
		return rep, err
	}
	rep.Index = time.Since(start)
	segs, err := db.LogSegments(ctx, p.ID, 0, math.MaxInt64)
	if err != nil {
		return rep, err
	}
	for _, s := range segs {
		rep.IndexBytes += s.IndexBytes
	}
	rep.Segments = len(segs)
	fmt.Fprintf(out, "%s: indexed in %s: %d segments, %.1f MB (%.1f %% of the logs)\n", name, rep.Index.Round(time.Millisecond), len(segs),
		float64(rep.IndexBytes)/1e6, 100*float64(rep.IndexBytes)/float64(rep.LogBytes))

	// What one search does, for the report.
	s := &logsearch.Searcher{Store: db, Blobs: blobs, Logs: reader}
	res, err := s.Search(ctx, logsearch.Query{Filter: store.LogSearchFilter{ProjectID: p.ID}, Text: []byte("segfault in libfoo"), Jobs: 100})
	if err != nil {
		return rep, err
	}
	rep.RareHits, rep.RareScanned = len(res.Hits), res.Scanned
	res, err = s.Search(ctx, logsearch.Query{Filter: store.LogSearchFilter{ProjectID: p.ID}, Text: []byte("OutOfMemoryError"), Jobs: 100})
	if err != nil {
		return rep, err
	}
	rep.AbsentPruned = res.Pruned
	fmt.Fprintf(out, "%s: rare string: %d hits, %d of %d logs read; absent string: %d logs ruled out by the index\n",
		name, rep.RareHits, rep.RareScanned, o.Logs, rep.AbsentPruned)

	api := httpapi.New(httpapi.Config{ExternalURL: "http://127.0.0.1"}, httpapi.Deps{Store: db, Blobs: blobs})
	base, stop, err := serve(api.Handler())
	if err != nil {
		return rep, err
	}
	defer stop()
	path := base + "/api/v4/projects/" + strconv.FormatInt(p.ID, 10) + "/jobs/search?per_page=20&q="
	if rep.Rare, err = timeRequests(ctx, path+url.QueryEscape("segfault in libfoo"), o.Runs); err != nil {
		return rep, err
	}
	if rep.Absent, err = timeRequests(ctx, path+"OutOfMemoryError", o.Runs); err != nil {
		return rep, err
	}
	if rep.Common, err = timeRequests(ctx, path+url.QueryEscape("--- PASS: TestHandler"), o.Runs); err != nil {
		return rep, err
	}
	// The baseline: without segments every log is read (one request
	// stops after logsearch.MaxScanBytes and answers with a cursor).
	scan := &logsearch.Searcher{Store: db, Logs: reader}
	for range max(o.ScanRuns, 1) {
		t0 := time.Now()
		res, err := scan.Search(ctx, logsearch.Query{Filter: store.LogSearchFilter{ProjectID: p.ID}, Text: []byte("segfault in libfoo"), Jobs: 20})
		if err != nil {
			return rep, err
		}
		rep.ScanRare.Requests++
		rep.ScanRare.Elapsed += time.Since(t0)
		rep.ScanBytes = res.ScannedBytes
	}
	rep.ScanRare.P50 = rep.ScanRare.Elapsed / time.Duration(rep.ScanRare.Requests)
	fmt.Fprintf(out, "%s: rare %s\n%s: absent %s\n%s: common %s\n%s: unindexed rare: %.0f ms for %.0f MB read (%.2f GB/s)\n", name, rep.Rare, name, rep.Absent, name, rep.Common,
		name, ms(rep.ScanRare.P50), float64(rep.ScanBytes)/1e6, float64(rep.ScanBytes)/1e9/rep.ScanRare.P50.Seconds())
	return rep, nil
}

// loadLogs adds o.Logs finished builds whose logs go through the runner's
// path (appended) and the archiver (into blobs, pending for the indexer).
func loadLogs(ctx context.Context, db *sqldb.DB, blobs blob.Store, p *ci.Project, o LogSearchOptions) (int64, error) {
	now := time.Now().UTC().Add(-time.Hour)
	pl, err := db.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: "3f1c0e0d5b8a9c2e4f6a7b8c9d0e1f2a3b4c5d6e", Ref: "main", Status: ci.StatusSuccess, Source: ci.SourcePush, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return 0, err
	}
	archiver := &joblog.Archiver{Store: db, Blobs: blobs}
	r := rand.New(rand.NewSource(1))
	var total int64
	for i := range o.Logs {
		j, err := db.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "test", Stage: "test", Status: ci.StatusSuccess,
			Ref: "main", CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return total, err
		}
		log := logsearch.GenerateLog(r, o.LogSize, int64(i))
		if i%1000 == 500 {
			log = append(log[:len(log)/2:len(log)/2], append([]byte(rareLine+"\n"), log[len(log)/2:]...)...)
		}
		// At most 1 MiB per append, as a runner sends.
		for off := 0; off < len(log); off += 1 << 20 {
			if _, err := db.AppendTrace(ctx, j.ID, int64(off), log[off:min(off+1<<20, len(log))]); err != nil {
				return total, err
			}
		}
		if err := archiver.ArchiveJob(ctx, store.UnarchivedTrace{JobID: j.ID, ProjectID: p.ID, Size: int64(len(log))}); err != nil {
			return total, err
		}
		total += int64(len(log))
	}
	return total, nil
}

// timeRequests sends n GETs one after another and reports their latency.
func timeRequests(ctx context.Context, u string, n int) (Result, error) {
	client := newClient(1)
	defer client.CloseIdleConnections()
	var lat []time.Duration
	start := time.Now()
	for range max(n, 1) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
		if err != nil {
			return Result{}, err
		}
		req.Header.Set("PRIVATE-TOKEN", benchToken)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			return Result{}, err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return Result{}, fmt.Errorf("GET %s: %s", u, resp.Status)
		}
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	return Result{Requests: len(lat), Elapsed: time.Since(start), P50: lat[len(lat)/2], P99: lat[(len(lat)*99)/100]}, nil
}
