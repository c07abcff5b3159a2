package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/store"
	"gantry/internal/store/cache"
	"gantry/internal/store/postgres"
	"gantry/internal/store/sqldb"
	"gantry/internal/store/sqlite"
)

// JobsListOptions configure the project-jobs list benchmark.
type JobsListOptions struct {
	Jobs        int           // jobs loaded into one project (1,000,000)
	Conns       int           // concurrent connections (32)
	Duration    time.Duration // per load phase
	PerPage     int           // 20
	DatabaseURL string        // PostgreSQL; empty runs SQLite only
	Stores      []string      // "sqlite", "postgres"
	TempDir     string
}

// JobsListReport is one store's figures.
type JobsListReport struct {
	Store             string
	Load              time.Duration
	Gantry, Ceiling   Result
	Ratio             float64
	Page1, Page5000   time.Duration
	PageBytes         int
	KeysetFirstPageMs float64
}

const benchToken = "glpat-bench-root-token-0123456789"

func openBenchStore(ctx context.Context, name string, o JobsListOptions) (*sqldb.DB, func(), error) {
	switch name {
	case "sqlite":
		dir, err := os.MkdirTemp(o.TempDir, "gantry-bench-")
		if err != nil {
			return nil, nil, err
		}
		db, err := sqlite.Open(ctx, filepath.Join(dir, "gantry.db"), sqlite.Options{Readers: 4})
		if err != nil {
			return nil, nil, err
		}
		return db, func() { db.Close(); os.RemoveAll(dir) }, nil
	case "postgres":
		if o.DatabaseURL == "" {
			return nil, nil, errors.New("postgres: pass --database-url or set GANTRY_BENCH_DATABASE_URL")
		}
		db, err := postgres.Open(ctx, o.DatabaseURL, postgres.Options{MaxConns: 16})
		if err != nil {
			return nil, nil, err
		}
		// Start from empty tables so ids and sizes are the same every run.
		if _, err := db.WritePool().ExecContext(ctx, `TRUNCATE users, namespaces, projects, members, commits, pipelines, runners, runner_managers, jobs, artifacts, trace_chunks, personal_access_tokens RESTART IDENTITY CASCADE`); err != nil {
			db.Close()
			return nil, nil, err
		}
		return db, func() { db.Close() }, nil
	}
	return nil, nil, fmt.Errorf("unknown store %q", name)
}

// seedBench creates root, a project with 100 pipelines and o.Jobs jobs.
func seedBench(ctx context.Context, db *sqldb.DB, n int) (*ci.Project, error) {
	now := time.Now().UTC().Add(-24 * time.Hour)
	root, err := db.CreateUser(ctx, store.CreateUserParams{Username: "root", Name: "Administrator", Email: "admin@example.com", Admin: true, Now: now})
	if err != nil {
		return nil, err
	}
	if _, err := db.CreateToken(ctx, store.CreateTokenParams{UserID: root.ID, Name: "bench", Digest: ci.HashToken(benchToken), Scopes: []ci.Scope{ci.ScopeAPI}, Now: now}); err != nil {
		return nil, err
	}
	ns, err := db.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "Bench", Path: "bench", Kind: ci.NamespaceGroup, Visibility: ci.Private, Now: now})
	if err != nil {
		return nil, err
	}
	p, err := db.CreateProject(ctx, store.CreateProjectParams{NamespaceID: ns.ID, Name: "big", Path: "big", Visibility: ci.Private, CreatorID: root.ID, Now: now})
	if err != nil {
		return nil, err
	}
	sha := "3f1c0e0d5b8a9c2e4f6a7b8c9d0e1f2a3b4c5d6e"
	if err := db.UpsertCommit(ctx, p.ID, ci.Commit{SHA: sha, Title: "bench", Message: "bench\n", AuthorName: "Root", AuthorEmail: "admin@example.com",
		AuthoredDate: now, CommitterName: "Root", CommitterEmail: "admin@example.com", CommittedDate: now}); err != nil {
		return nil, err
	}
	var pipelines []int64
	for i := 0; i < 100; i++ {
		pl, err := db.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: sha, Ref: "main", Status: ci.StatusSuccess, Source: ci.SourcePush, UserID: &root.ID, CreatedAt: now, UpdatedAt: now})
		if err != nil {
			return nil, err
		}
		pipelines = append(pipelines, pl.ID)
	}
	r, err := db.InsertRunner(ctx, ci.Runner{Type: ci.InstanceRunner, Description: "bench", RunUntagged: true, CreatedAt: now, ContactedAt: &now}, ci.HashToken("glrt-bench"))
	if err != nil {
		return nil, err
	}
	return p, db.SeedSyntheticJobs(ctx, p.ID, pipelines, root.ID, r.ID, n, now)
}

func serve(h http.Handler) (string, func(), error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h}
	go func() { _ = srv.Serve(l) }()
	return "http://" + l.Addr().String(), func() { srv.Close() }, nil
}

// JobsList runs the benchmark on each store and writes a report.
func JobsList(ctx context.Context, o JobsListOptions, out io.Writer) ([]JobsListReport, error) {
	reports, err := perStore(o.Stores, func(name string) (JobsListReport, error) { return jobsListOne(ctx, name, o, out) })
	if err != nil {
		return reports, err
	}
	fmt.Fprintf(out, "\n%-9s %10s %12s %12s %7s %9s %9s %10s %11s\n", "store", "jobs", "gantry rps", "ceiling rps", "ratio", "p50 ms", "p99 ms", "page1 ms", "page5000 ms")
	for _, r := range reports {
		fmt.Fprintf(out, "%-9s %10d %12.0f %12.0f %6.1f%% %9.2f %9.2f %10.2f %11.2f\n", r.Store, o.Jobs, r.Gantry.RPS(), r.Ceiling.RPS(), 100*r.Ratio,
			ms(r.Gantry.P50), ms(r.Gantry.P99), ms(r.Page1), ms(r.Page5000))
	}
	return reports, nil
}

func jobsListOne(ctx context.Context, name string, o JobsListOptions, out io.Writer) (JobsListReport, error) {
	rep := JobsListReport{Store: name}
	db, closeDB, err := openBenchStore(ctx, name, o)
	if err != nil {
		return rep, err
	}
	defer closeDB()
	t0 := time.Now()
	p, err := seedBench(ctx, db, o.Jobs)
	if err != nil {
		return rep, fmt.Errorf("seed: %w", err)
	}
	rep.Load = time.Since(t0)
	fmt.Fprintf(out, "[%s] loaded %d jobs in %s\n", name, o.Jobs, rep.Load.Round(time.Millisecond))

	api := httpapi.New(httpapi.Config{ExternalURL: "http://127.0.0.1", Version: "17.9.3"}, httpapi.Deps{Store: cache.New(db, time.Second, nil)})
	base, stop, err := serve(api.Handler())
	if err != nil {
		return rep, err
	}
	defer stop()
	hdr := http.Header{"Private-Token": {benchToken}}
	jobsURL := base + "/api/v4/projects/" + strconv.FormatInt(p.ID, 10) + "/jobs"
	keyset := func(before int64) string {
		return jobsURL + "?pagination=keyset&per_page=" + strconv.Itoa(o.PerPage) + "&cursor=" + httpapi.EncodeCursor(before)
	}
	// Capture one real response for the ceiling handler.
	sample, sampleHdr, err := fetch(ctx, keyset(int64(o.Jobs/2)), hdr)
	if err != nil {
		return rep, err
	}
	rep.PageBytes = len(sample)
	ceilingBase, stopCeiling, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range sampleHdr {
			w.Header()[k] = v
		}
		_, _ = w.Write(sample)
	}))
	if err != nil {
		return rep, err
	}
	defer stopCeiling()

	maxID := int64(o.Jobs) + 1
	rng := func(w, i int) int64 { return 1 + int64(rand.N(maxID-int64(o.PerPage))) + int64(o.PerPage) }
	_ = Load(ctx, o.Conns, o.Duration/4, func(w, i int) (string, http.Header) { return keyset(rng(w, i)), hdr }) // warm up
	rep.Gantry = Load(ctx, o.Conns, o.Duration, func(w, i int) (string, http.Header) { return keyset(rng(w, i)), hdr })
	fmt.Fprintf(out, "[%s] gantry keyset : %s\n", name, rep.Gantry)
	rep.Ceiling = Load(ctx, o.Conns, o.Duration, func(w, i int) (string, http.Header) { return ceilingBase + "/", hdr })
	fmt.Fprintf(out, "[%s] ceiling       : %s (%d-byte page)\n", name, rep.Ceiling, rep.PageBytes)
	rep.Ratio = rep.Gantry.RPS() / rep.Ceiling.RPS()
	if rep.Page1, err = Sequential(ctx, 50, jobsURL+"?per_page=20&page=1", hdr); err != nil {
		return rep, err
	}
	if rep.Page5000, err = Sequential(ctx, 50, jobsURL+"?per_page=20&page=5000", hdr); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "[%s] offset page 1: %.2f ms, page 5000: %.2f ms (median of 50)\n", name, ms(rep.Page1), ms(rep.Page5000))
	return rep, nil
}

func fetch(ctx context.Context, u string, h http.Header) ([]byte, http.Header, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	req.Header = h
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK {
		return nil, nil, fmt.Errorf("%s: %d %s", u, res.StatusCode, b)
	}
	return b, res.Header, err
}
