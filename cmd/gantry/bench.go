package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"gantry/internal/bench"
	"gantry/internal/s3gw"
)

const benchUsage = `usage: gantry bench <name> [-blockprofile file] [-cpuprofile file] [flags]

benchmarks:
  jobs-list   GET /projects/:id/jobs (keyset) on a project of 1,000,000 jobs,
              against a plain net/http handler serving the same bytes
  pipeline    compile and create a 500-job pipeline with needs, then process
              it to completion with jobs finished through the store
  idle-conns  the server's memory with 10,000 long-polling runners (separate process)
  runners     job pickup latency with idle long-polling runners, idle polls'
              requests and database writes, no-op job throughput, log ingest
  nodes       1, 2 and 3 gantry server processes on one PostgreSQL: job
              throughput, cross-node pickup latency, and the database's load
              with 0 to 10,000 idle long-polling runners (needs PostgreSQL)
  webui       every kind of web page (sequential requests, p50 and p99) on a
              project of 1,000,000 jobs with a 50 MiB job log
  blobs       blob Put and Open+read throughput (MB/s) on the file store and
              on S3 (a versitygw started on loopback, data on the same disk)
  logsearch   GET /projects/:id/jobs/search over 10,000 archived 1 MB logs:
              index size and build time, rare/absent/common string latency
`

// storeFlags registers the flags every benchmark shares; resolve returns
// the stores to measure (SQLite only when no PostgreSQL URL is given).
func storeFlags(fs *flag.FlagSet, getenv func(string) string, stderr io.Writer) (dbURL *string, resolve func() []string) {
	stores := fs.String("stores", "sqlite,postgres", "comma-separated stores to measure")
	dbURL = fs.String("database-url", getenv("GANTRY_BENCH_DATABASE_URL"), "PostgreSQL URL (GANTRY_BENCH_DATABASE_URL); its tables are emptied")
	return dbURL, func() []string {
		if *dbURL == "" && strings.Contains(*stores, "postgres") {
			fmt.Fprintln(stderr, "note: no PostgreSQL URL given; measuring SQLite only")
			return []string{"sqlite"}
		}
		return strings.Split(*stores, ",")
	}
}

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 1 {
		fmt.Fprint(stderr, benchUsage)
		return errors.New("missing benchmark name")
	}
	// A block profile (where goroutines wait) of the whole run.
	if len(args) > 2 && args[1] == "-blockprofile" {
		f, err := os.Create(args[2])
		if err != nil {
			return err
		}
		runtime.SetBlockProfileRate(int(10 * time.Microsecond))
		defer func() {
			_ = pprof.Lookup("block").WriteTo(f, 0)
			f.Close()
		}()
		args = append([]string{args[0]}, args[3:]...)
	}
	// A CPU profile of the whole run, for finding where a benchmark's time goes.
	if len(args) > 2 && args[1] == "-cpuprofile" {
		f, err := os.Create(args[2])
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
		args = append([]string{args[0]}, args[3:]...)
	}
	switch args[0] {
	case "jobs-list":
		fs := flag.NewFlagSet("gantry bench jobs-list", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.JobsListOptions{}
		dbURL, stores := storeFlags(fs, getenv, stderr)
		fs.IntVar(&o.Jobs, "jobs", 1_000_000, "jobs loaded into the project")
		fs.IntVar(&o.Conns, "conns", 32, "concurrent connections")
		fs.IntVar(&o.PerPage, "per-page", 20, "page size")
		fs.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each load phase")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Stores, o.DatabaseURL = stores(), *dbURL
		_, err := bench.JobsList(ctx, o, stdout)
		return err
	case "webui":
		fs := flag.NewFlagSet("gantry bench webui", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.WebUIOptions{}
		dbURL, stores := storeFlags(fs, getenv, stderr)
		fs.IntVar(&o.Jobs, "jobs", 1_000_000, "jobs loaded into the project")
		fs.IntVar(&o.Requests, "requests", 200, "sequential requests per page")
		fs.IntVar(&o.LogMiB, "log-mib", 50, "size of one job's log in MiB")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Stores, o.DatabaseURL = stores(), *dbURL
		_, err := bench.WebUI(ctx, o, stdout)
		return err
	case "logsearch":
		fs := flag.NewFlagSet("gantry bench logsearch", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.LogSearchOptions{}
		dbURL, stores := storeFlags(fs, getenv, stderr)
		fs.IntVar(&o.Logs, "logs", 10000, "archived logs in the project")
		sizeKiB := fs.Int("size-kib", 1024, "size of each log in KiB")
		fs.IntVar(&o.Runs, "runs", 50, "requests per query (p50 and p99 over them)")
		fs.IntVar(&o.ScanRuns, "scan-runs", 3, "runs of the unindexed baseline")
		fs.StringVar(&o.TempDir, "dir", "", "where the database and logs are written (the system temporary directory when empty)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.LogSize, o.Stores, o.DatabaseURL = *sizeKiB<<10, stores(), *dbURL
		_, err := bench.LogSearch(ctx, o, stdout)
		return err
	case "pipeline":
		fs := flag.NewFlagSet("gantry bench pipeline", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.PipelineOptions{}
		dbURL, stores := storeFlags(fs, getenv, stderr)
		fs.IntVar(&o.Jobs, "jobs", 500, "jobs in the pipeline")
		fs.IntVar(&o.Stages, "stages", 5, "stages")
		fs.IntVar(&o.Runs, "runs", 5, "pipelines per store (medians are reported)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Stores, o.DatabaseURL = stores(), *dbURL
		_, err := bench.Pipeline(ctx, o, stdout)
		return err
	case "idle-conns":
		fs := flag.NewFlagSet("gantry bench idle-conns", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.IdleConnsOptions{}
		fs.IntVar(&o.Conns, "conns", 10000, "long polls held open")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Binary = exe
		_, _, _, err = bench.IdleConns(ctx, o, stdout)
		return err
	case "runners":
		fs := flag.NewFlagSet("gantry bench runners", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.RunnersOptions{}
		dbURL, stores := storeFlags(fs, getenv, stderr)
		fs.IntVar(&o.IdleRunners, "idle-runners", 500, "long-polling runners during the pickup measurement")
		fs.IntVar(&o.Pickups, "pickups", 300, "jobs made pending one at a time")
		fs.IntVar(&o.WorkRunners, "work-runners", 50, "runners driving no-op jobs")
		fs.IntVar(&o.Jobs, "jobs", 5000, "no-op jobs")
		fs.IntVar(&o.LogJobs, "log-jobs", 1000, "running jobs appending logs")
		fs.IntVar(&o.LogChunk, "log-chunk", 4096, "bytes per log append")
		fs.DurationVar(&o.LogEvery, "log-every", 3*time.Second, "paced log appends: one per running job per this interval")
		fs.DurationVar(&o.IdleFor, "idle-for", 10*time.Second, "how long idle polling is observed")
		fs.DurationVar(&o.LongPoll, "long-poll", 20*time.Second, "server long-poll hold")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Stores, o.DatabaseURL = stores(), *dbURL
		_, err := bench.Runners(ctx, o, stdout)
		return err
	case "nodes":
		fs := flag.NewFlagSet("gantry bench nodes", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.NodesOptions{}
		dbURL := fs.String("database-url", getenv("GANTRY_BENCH_DATABASE_URL"), "PostgreSQL URL (GANTRY_BENCH_DATABASE_URL); each cluster gets a schema of its own, dropped afterwards")
		counts := fs.String("nodes", "1,2,3", "cluster sizes")
		idle := fs.String("idle-runners", "0,100,1000,10000", "idle long-polling runner counts at which database load is measured (largest cluster)")
		fs.IntVar(&o.Runners, "runners", 100, "runners working jobs")
		fs.IntVar(&o.Jobs, "jobs", 3000, "jobs per cluster size")
		fs.IntVar(&o.Pickups, "pickups", 50, "cross-node pickups measured")
		fs.DurationVar(&o.IdleFor, "idle-for", 15*time.Second, "each idle window")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if *dbURL == "" {
			return errors.New("gantry bench nodes needs PostgreSQL: -database-url or GANTRY_BENCH_DATABASE_URL")
		}
		var err error
		if o.NodeCounts, err = positiveInts(*counts, 1); err != nil {
			return fmt.Errorf("-nodes: %w", err)
		}
		if o.IdleRunners, err = positiveInts(*idle, 0); err != nil {
			return fmt.Errorf("-idle-runners: %w", err)
		}
		exe, err := os.Executable()
		if err != nil {
			return err
		}
		o.Binary, o.DatabaseURL = exe, *dbURL
		_, _, err = bench.Nodes(ctx, o, stdout)
		return err
	case "blobs":
		fs := flag.NewFlagSet("gantry bench blobs", flag.ContinueOnError)
		fs.SetOutput(stderr)
		o := bench.BlobsOptions{}
		sizeMiB := fs.Int64("size-mib", 64, "object size in MiB")
		fs.IntVar(&o.Runs, "runs", 3, "objects written and read per store (medians are reported)")
		stores := fs.String("stores", "fs,s3", "comma-separated blob stores to measure")
		fs.StringVar(&o.VersityGW, "versitygw", "", "versitygw binary for s3 ("+s3gw.BinaryEnv+", PATH or the go install directory)")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		o.Size, o.Stores = *sizeMiB<<20, strings.Split(*stores, ",")
		if o.VersityGW == "" && slices.Contains(o.Stores, "s3") {
			bin, err := s3gw.Find(getenv)
			if err != nil {
				fmt.Fprintf(stderr, "note: %v; measuring the file store only\n", err)
				o.Stores = slices.DeleteFunc(o.Stores, func(s string) bool { return s == "s3" })
			}
			o.VersityGW = bin
		}
		if o.Size <= 0 || o.Runs <= 0 {
			return errors.New("-size-mib and -runs must be positive")
		}
		_, err := bench.Blobs(ctx, o, stdout)
		return err
	}
	fmt.Fprint(stderr, benchUsage)
	return fmt.Errorf("unknown benchmark %q", args[0])
}

// positiveInts parses a comma-separated list of integers of at least least.
func positiveInts(s string, least int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < least {
			return nil, fmt.Errorf("%q: want integers of at least %d", f, least)
		}
		out = append(out, n)
	}
	return out, nil
}
