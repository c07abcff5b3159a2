package bench

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io"
	"net/url"
	"os"
	"sync"
	"time"

	"gantry/internal/fleet"
)

// NodesOptions configure the multi-node benchmark.
type NodesOptions struct {
	Binary      string // the gantry binary the nodes run
	DatabaseURL string // each cluster gets a fresh schema in this database
	NodeCounts  []int  // cluster sizes measured (1, 2, 3)
	Runners     int    // simulated runners working jobs (100)
	Jobs        int    // jobs per cluster size (3000)
	Pickups     int    // cross-node pickups measured (50)
	// IdleRunners are the long-polling runner counts at which database
	// load is measured, on the largest cluster (0, 100, 1000, 10000).
	IdleRunners []int
	IdleFor     time.Duration // each idle window (15 s)
	TempDir     string
}

// NodesReport is one cluster size's figures.
type NodesReport struct {
	Nodes                int
	JobsPerSecond        float64
	PickupP50, PickupP99 time.Duration
}

// IdleLoad is the database's load with some runners long-polling.
type IdleLoad struct {
	Runners        int
	RequestsPerSec float64 // HTTP requests from all runners
	XactPerSec     float64 // committed transactions in the whole database
	ScansPerSec    float64 // table scans (sequential + index) in the cluster's schema
	RowsPerSec     float64 // rows read by those scans
}

// Nodes measures job throughput and cross-node pickup latency on
// clusters of each size, then how the database's load grows with idle
// long-polling runners on the largest.
func Nodes(ctx context.Context, o NodesOptions, out io.Writer) ([]NodesReport, []IdleLoad, error) {
	var reps []NodesReport
	var idle []IdleLoad
	for i, n := range o.NodeCounts {
		last := i == len(o.NodeCounts)-1
		rep, il, err := nodesOne(ctx, o, n, last, out)
		if err != nil {
			return reps, idle, fmt.Errorf("%d nodes: %w", n, err)
		}
		reps = append(reps, rep)
		idle = append(idle, il...)
	}
	fmt.Fprintf(out, "\n%-6s %10s %12s %12s %12s\n", "nodes", "jobs/s", "vs 1st", "pickup p50", "pickup p99")
	for _, r := range reps {
		fmt.Fprintf(out, "%-6d %10.0f %11.2fx %10.1fms %10.1fms\n", r.Nodes, r.JobsPerSecond, r.JobsPerSecond/reps[0].JobsPerSecond, ms(r.PickupP50), ms(r.PickupP99))
	}
	if len(idle) > 0 {
		fmt.Fprintf(out, "\n%-12s %12s %14s %14s %14s %20s\n", "idle runners", "requests/s", "db xact/s", "schema scans/s", "rows read/s", "added scans/s per added runner")
		// Against the previous step: the first window also sees the
		// background work the throughput phase left (log archiving).
		for i, l := range idle {
			per := "-"
			if i > 0 && l.Runners > idle[i-1].Runners {
				per = fmt.Sprintf("%.5f", (l.ScansPerSec-idle[i-1].ScansPerSec)/float64(l.Runners-idle[i-1].Runners))
			}
			fmt.Fprintf(out, "%-12d %12.1f %14.1f %14.1f %14.1f %20s\n", l.Runners, l.RequestsPerSec, l.XactPerSec, l.ScansPerSec, l.RowsPerSec, per)
		}
	}
	return reps, idle, nil
}

func nodesOne(ctx context.Context, o NodesOptions, n int, measureIdle bool, out io.Writer) (NodesReport, []IdleLoad, error) {
	rep := NodesReport{Nodes: n}
	dbURL, schema, drop, err := freshSchema(ctx, o.DatabaseURL)
	if err != nil {
		return rep, nil, err
	}
	defer drop()
	dir, err := os.MkdirTemp(o.TempDir, "gantry-bench-nodes-")
	if err != nil {
		return rep, nil, err
	}
	defer os.RemoveAll(dir)
	c, err := fleet.StartCluster(ctx, fleet.ClusterOptions{Binary: o.Binary, Nodes: n, Dir: dir, DatabaseURL: dbURL})
	if err != nil {
		return rep, nil, err
	}
	defer c.Stop()
	run, err := fleet.StartLoad(ctx, c, fleet.Load{Jobs: o.Jobs, JobsPerPipeline: 100, Runners: o.Runners, PipelinesFirst: true,
		Work: fleet.Work{Chunks: 2, ChunkSize: 256}})
	if err != nil {
		return rep, nil, err
	}
	err = run.WaitFinished(ctx, run.Total)
	elapsed := time.Since(run.Started)
	run.Stop()
	if err != nil {
		return rep, nil, err
	}
	rep.JobsPerSecond = float64(run.Total) / elapsed.Seconds()
	fmt.Fprintf(out, "[%d nodes] %d jobs (2 log PATCHes each) through %d runners: %.0f jobs/s\n", n, run.Total, o.Runners, rep.JobsPerSecond)
	p, err := fleet.MeasurePickups(ctx, c, 0, n-1, o.Pickups)
	if err != nil {
		return rep, nil, err
	}
	rep.PickupP50, rep.PickupP99 = fleet.Percentile(p.Queue, 50), fleet.Percentile(p.Queue, 99)
	fmt.Fprintf(out, "[%d nodes] pickup, runner held by node 1, job made pending through node %d: p50 %.1f ms, p99 %.1f ms (queued→taken, %d jobs); POST→runner p50 %.1f ms\n",
		n, n, ms(rep.PickupP50), ms(rep.PickupP99), len(p.Queue), ms(fleet.Percentile(p.Trip, 50)))
	if !measureIdle {
		return rep, nil, nil
	}
	idle, err := idleLoad(ctx, c, dbURL, schema, o, out)
	return rep, idle, err
}

// idleLoad adds long-polling runners in steps and, once all of them are
// held, counts what the database does over IdleFor.
func idleLoad(ctx context.Context, c *fleet.Cluster, dbURL, schema string, o NodesOptions, out io.Writer) ([]IdleLoad, error) {
	db, err := sql.Open("pgx", dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	tokens, err := fleet.CreateRunners(ctx, c, 100, nil)
	if err != nil {
		return nil, err
	}
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	var runners []*fleet.Runner
	ledger := fleet.NewLedger()
	var loads []IdleLoad
	for _, target := range o.IdleRunners {
		for len(runners) < target {
			i := len(runners)
			r := fleet.NewRunner(tokens[i%len(tokens)], fmt.Sprintf("s_idle%08d", i), c.URLs(), i, fleet.Work{}, ledger)
			runners = append(runners, r)
			wg.Add(1)
			go func() { defer wg.Done(); r.Run(rctx) }()
			if i%500 == 499 {
				time.Sleep(50 * time.Millisecond) // spare the accept backlogs
			}
		}
		// Held: every runner has sent its second request (the first is
		// answered at once).
		deadline := time.Now().Add(5 * time.Minute)
		for requests(runners) < 2*int64(len(runners)) {
			if time.Now().After(deadline) {
				return loads, fmt.Errorf("%d runners not all long-polling after 5 minutes", len(runners))
			}
			time.Sleep(100 * time.Millisecond)
		}
		time.Sleep(2 * time.Second) // stragglers' statistics reach PostgreSQL
		r0, s0, err := dbCounters(ctx, db, schema)
		if err != nil {
			return loads, err
		}
		q0, t0 := requests(runners), time.Now()
		time.Sleep(o.IdleFor)
		r1, s1, err := dbCounters(ctx, db, schema)
		if err != nil {
			return loads, err
		}
		secs := time.Since(t0).Seconds()
		l := IdleLoad{Runners: target, RequestsPerSec: float64(requests(runners)-q0) / secs,
			XactPerSec: float64(r1.xact-r0.xact) / secs, ScansPerSec: float64(s1.scans-s0.scans) / secs, RowsPerSec: float64(s1.rows-s0.rows) / secs}
		fmt.Fprintf(out, "[idle] %d runners long-polling %d nodes: %.1f requests/s, %.1f db transactions/s (whole database), %.1f table scans/s and %.1f rows/s (this schema)\n",
			target, len(c.Nodes), l.RequestsPerSec, l.XactPerSec, l.ScansPerSec, l.RowsPerSec)
		loads = append(loads, l)
	}
	return loads, nil
}

func requests(rs []*fleet.Runner) int64 {
	var n int64
	for _, r := range rs {
		n += r.Requests()
	}
	return n
}

type dbCount struct{ xact, scans, rows int64 }

// dbCounters reads the database's committed transactions and the
// schema's table scans from PostgreSQL's cumulative statistics.
func dbCounters(ctx context.Context, db *sql.DB, schema string) (dbCount, dbCount, error) {
	var whole, mine dbCount
	conn, err := db.Conn(ctx)
	if err != nil {
		return whole, mine, err
	}
	defer conn.Close()
	// Read fresh counters, not this session's snapshot.
	if _, err := conn.ExecContext(ctx, `SELECT pg_stat_clear_snapshot()`); err != nil {
		return whole, mine, err
	}
	if err := conn.QueryRowContext(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&whole.xact); err != nil {
		return whole, mine, err
	}
	err = conn.QueryRowContext(ctx, `SELECT COALESCE(SUM(COALESCE(seq_scan, 0) + COALESCE(idx_scan, 0)), 0), COALESCE(SUM(COALESCE(seq_tup_read, 0) + COALESCE(idx_tup_fetch, 0)), 0)
		FROM pg_stat_user_tables WHERE schemaname = $1`, schema).Scan(&mine.scans, &mine.rows)
	return whole, mine, err
}

// freshSchema creates an empty schema in base's database and returns a
// URL whose connections use it, and a function dropping it.
func freshSchema(ctx context.Context, base string) (string, string, func(), error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		return "", "", nil, err
	}
	if _, err := admin.ExecContext(ctx, `CREATE SCHEMA `+schema); err != nil {
		admin.Close()
		return "", "", nil, err
	}
	drop := func() {
		_, _ = admin.ExecContext(context.Background(), `DROP SCHEMA `+schema+` CASCADE`)
		admin.Close()
	}
	u, err := url.Parse(base)
	if err != nil {
		drop()
		return "", "", nil, err
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema, drop, nil
}
