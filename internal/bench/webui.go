package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/store"
	"gantry/internal/store/cache"
	"gantry/internal/store/sqldb"
	"gantry/internal/web"
)

// WebUIOptions configure the web page benchmark.
type WebUIOptions struct {
	Jobs        int // jobs loaded into one project (1,000,000)
	Requests    int // sequential requests per page (200)
	LogMiB      int // size of one job's log (50)
	DatabaseURL string
	Stores      []string
	TempDir     string
}

// PageTiming is one page's latency over loopback (the server renders it
// whole before sending, so this is its render time plus a local round trip).
type PageTiming struct {
	Page     string
	P50, P99 time.Duration
	Bytes    int
}

// WebUIReport is one store's figures.
type WebUIReport struct {
	Store string
	Load  time.Duration
	Pages []PageTiming
}

const benchSessionID = "bench-web-session-0123456789"

// WebUI seeds a large project on each store and times every kind of page.
func WebUI(ctx context.Context, o WebUIOptions, out io.Writer) ([]WebUIReport, error) {
	reports, err := perStore(o.Stores, func(name string) (WebUIReport, error) { return webUIOne(ctx, name, o, out) })
	if err != nil {
		return reports, err
	}
	fmt.Fprintf(out, "\n%-9s %-34s %9s %9s %10s\n", "store", "page", "p50 ms", "p99 ms", "bytes")
	for _, r := range reports {
		for _, p := range r.Pages {
			fmt.Fprintf(out, "%-9s %-34s %9.2f %9.2f %10d\n", r.Store, p.Page, ms(p.P50), ms(p.P99), p.Bytes)
		}
	}
	return reports, nil
}

// seedWebExtras adds what the synthetic jobs lack: a pipeline shaped like
// a real one (stages, needs, a manual job) and a job with a long log.
func seedWebExtras(ctx context.Context, db *sqldb.DB, p *ci.Project, logMiB int) (*ci.Pipeline, *ci.Job, error) {
	now := time.Now().UTC()
	var jobs []store.NewJob
	stages := []string{"build", "test", "deploy"}
	for i := 0; i < 60; i++ {
		idx := min(i/20, 2)
		nj := store.NewJob{Job: ci.Job{Kind: ci.KindBuild, Name: "job-" + strconv.Itoa(i), Stage: stages[idx], StageIdx: idx, Status: ci.StatusCreated,
			Ref: "main", When: "on_success", CreatedAt: now}, Spec: []byte(`{"script":["true"]}`)}
		if idx > 0 && i%3 == 0 {
			nj.DAG, nj.Needs = true, []string{"job-" + strconv.Itoa(i%20)}
		}
		if i == 59 {
			nj.Job.When = "manual"
		}
		jobs = append(jobs, nj)
	}
	pl, err := db.CreatePipeline(ctx, store.NewPipeline{Pipeline: ci.Pipeline{ProjectID: p.ID, SHA: "3f1c0e0d5b8a9c2e4f6a7b8c9d0e1f2a3b4c5d6e", Ref: "main",
		Status: ci.StatusCreated, Source: ci.SourcePush, CreatedAt: now, UpdatedAt: now}, Jobs: jobs})
	if err != nil {
		return nil, nil, err
	}
	if _, err := db.ProcessPipeline(ctx, pl.ID, now, ci.ProcessPipeline); err != nil {
		return nil, nil, err
	}
	list, err := db.ListJobs(ctx, store.JobFilter{ProjectID: p.ID, PipelineID: pl.ID, Limit: 1})
	if err != nil {
		return nil, nil, err
	}
	// A log of coloured lines with sections, appended 1 MiB at a time as
	// a runner sends it.
	var chunk bytes.Buffer
	line := 0
	var off int64
	for off < int64(logMiB)<<20 {
		chunk.Reset()
		for chunk.Len() < 1<<20 {
			line++
			if line%1000 == 1 {
				fmt.Fprintf(&chunk, "section_start:%d:step_%d\r\x1b[0K\x1b[36;1mStep %d\x1b[0;m\n", now.Unix(), line, line)
			}
			fmt.Fprintf(&chunk, "\x1b[32;1m$ ./run --step %d\x1b[0;m output line %d with some ordinary text to fill the width of a terminal\n", line, line)
			if line%1000 == 0 {
				fmt.Fprintf(&chunk, "section_end:%d:step_%d\r\x1b[0K\n", now.Unix()+3, line-999)
			}
		}
		if off, err = db.AppendTrace(ctx, list[0].ID, off, chunk.Bytes()); err != nil {
			return nil, nil, err
		}
	}
	return pl, list[0], nil
}

func webUIOne(ctx context.Context, name string, o WebUIOptions, out io.Writer) (WebUIReport, error) {
	rep := WebUIReport{Store: name}
	db, closeDB, err := openBenchStore(ctx, name, JobsListOptions{DatabaseURL: o.DatabaseURL, TempDir: o.TempDir})
	if err != nil {
		return rep, err
	}
	defer closeDB()
	t0 := time.Now()
	p, err := seedBench(ctx, db, o.Jobs)
	if err != nil {
		return rep, fmt.Errorf("seed: %w", err)
	}
	pl, logJob, err := seedWebExtras(ctx, db, p, o.LogMiB)
	if err != nil {
		return rep, fmt.Errorf("seed: %w", err)
	}
	root, err := db.UserByUsername(ctx, "root")
	if err != nil {
		return rep, err
	}
	if err := db.CreateSession(ctx, store.Session{Digest: ci.HashToken(benchSessionID), UserID: root.ID, CreatedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		return rep, err
	}
	rep.Load = time.Since(t0)
	fmt.Fprintf(out, "[%s] loaded %d jobs and a %d MiB log in %s\n", name, o.Jobs, o.LogMiB, rep.Load.Round(time.Millisecond))

	st := cache.New(db, time.Second, nil)
	api := httpapi.New(httpapi.Config{ExternalURL: "http://127.0.0.1", Version: "17.9.3"}, httpapi.Deps{Store: st})
	ui, err := web.New(web.Config{ExternalURL: "http://127.0.0.1", Version: "17.9.3"}, web.Deps{Store: st, API: api})
	if err != nil {
		return rep, err
	}
	base, stop, err := serve(ui.Handler())
	if err != nil {
		return rep, err
	}
	defer stop()
	hdr := http.Header{"Cookie": {"_gantry_session=" + benchSessionID}}
	proj := base + "/" + p.FullPath
	id := func(n int64) string { return strconv.FormatInt(n, 10) }
	pages := []struct{ name, url string }{
		{"projects", base + "/"},
		{"pipelines", proj + "/-/pipelines"},
		{"pipelines status+ref", proj + "/-/pipelines?status=success&ref=main"},
		{"pipelines page 4", proj + "/-/pipelines?page=4"},
		{"pipeline (60 jobs, needs)", proj + "/-/pipelines/" + id(pl.ID)},
		{"jobs", proj + "/-/jobs"},
		{"jobs scope=failed", proj + "/-/jobs?scope=failed"},
		{"jobs name=job-7", proj + "/-/jobs?name=job-7"},
		{"jobs older (mid-project)", proj + "/-/jobs?before=" + id(int64(o.Jobs/2))},
		{"job (synthetic)", proj + "/-/jobs/" + id(int64(o.Jobs/2))},
		{"job (" + strconv.Itoa(o.LogMiB) + " MiB log, tail)", proj + "/-/jobs/" + id(logJob.ID)},
		{"runners (admin)", base + "/admin/runners"},
	}
	for _, pg := range pages {
		body, _, err := fetch(ctx, pg.url, hdr)
		if err != nil {
			return rep, err
		}
		lat, err := Latencies(ctx, o.Requests, pg.url, hdr)
		if err != nil {
			return rep, err
		}
		t := PageTiming{Page: pg.name, P50: lat[len(lat)/2], P99: lat[min(len(lat)-1, len(lat)*99/100)], Bytes: len(body)}
		rep.Pages = append(rep.Pages, t)
		fmt.Fprintf(out, "[%s] %-34s p50 %7.2f ms  p99 %7.2f ms  %d bytes\n", name, pg.name, ms(t.P50), ms(t.P99), t.Bytes)
	}
	return rep, nil
}
