package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/store"
)

// RunnersOptions configure the dispatch benchmark.
type RunnersOptions struct {
	IdleRunners int           // long-polling runners while pickup latency is measured (500)
	Pickups     int           // jobs made pending one at a time (300)
	WorkRunners int           // runners driving no-op jobs (50)
	Jobs        int           // no-op jobs for the throughput run (5000)
	LogJobs     int           // running jobs appending logs (1000)
	LogChunk    int           // bytes per append (4096)
	LogEvery    time.Duration // paced appends: one per job per LogEvery (3s)
	IdleFor     time.Duration // how long idle polling is observed (5s)
	IdleConns   int           // connections held for the RSS figure (10000)
	DatabaseURL string
	Stores      []string
	TempDir     string
	LongPoll    time.Duration // server long-poll hold (default 20s)
}

// RunnersReport is one store's figures.
type RunnersReport struct {
	Store                 string
	PickupP50, PickupP99  time.Duration
	IdleRequestsPerRunner float64 // per second
	WritesPerIdlePoll     float64
	JobsPerSecond         float64
	JobsCeilingPerSecond  float64 // a plain handler answering the same requests
	IngestMBps            float64 // flat out
	IngestCeilingMBps     float64 // a plain handler taking the same appends
	PacedAppendP50        time.Duration
	PacedAppendP99        time.Duration
	RSSIdleMB             float64
}

type benchNode struct {
	app  *app.App
	base string
	stop func()
}

const benchRootToken = "glpat-bench-root-0123456789abcdef"

func startBenchNode(ctx context.Context, name string, o RunnersOptions) (*benchNode, error) {
	dir, err := os.MkdirTemp(o.TempDir, "gantry-bench-node-")
	if err != nil {
		return nil, err
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.InitialRootToken, cfg.LongPoll, cfg.ReadCacheTTL = dir, benchRootToken, o.LongPoll, time.Second
	if name == "postgres" {
		db, closeDB, err := openBenchStore(ctx, "postgres", JobsListOptions{DatabaseURL: o.DatabaseURL})
		if err != nil {
			return nil, err
		}
		closeDB()
		_ = db
		cfg.DatabaseURL = o.DatabaseURL
		cfg.DBMaxConns = 32
	}
	base, stopSrv, err := serveLater()
	if err != nil {
		return nil, err
	}
	cfg.ExternalURL, cfg.Listen = base.url, base.addr
	a, err := app.New(ctx, cfg, app.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := a.Bootstrap(ctx); err != nil {
		return nil, err
	}
	actx, cancel := context.WithCancel(ctx)
	a.Start(actx)
	base.start(a.Handler())
	return &benchNode{app: a, base: base.url, stop: func() { cancel(); stopSrv(); a.Close(); os.RemoveAll(dir) }}, nil
}

func (n *benchNode) api(method, path string, body any, out any) error {
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, n.base+"/api/v4"+path, bytes.NewReader(b))
	req.Header.Set("PRIVATE-TOKEN", benchRootToken)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, res.StatusCode, raw)
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}

func (n *benchNode) runnerToken() (string, error) {
	var out struct{ Token string }
	err := n.api("POST", "/user/runners", map[string]any{"runner_type": "instance_type"}, &out)
	return out.Token, err
}

// simRunner speaks the runner protocol over one keep-alive connection.
type simRunner struct {
	base, token string
	client      *http.Client
	lastUpdate  string
	requests    atomic.Int64
	// pollBody is the encoded request for lastUpdate: a runner's request
	// changes only when its last_update does.
	pollBody       []byte
	pollBodyUpdate string
	// lastPayload is the first job payload this runner was handed.
	lastPayload []byte
}

func (r *simRunner) poll(ctx context.Context) (int64, string, error) {
	if r.pollBody == nil || r.pollBodyUpdate != r.lastUpdate {
		body := map[string]any{"token": r.token, "system_id": "s_benchbenchbe", "info": map[string]any{"name": "bench", "version": "17.9.3"}}
		if r.lastUpdate != "" {
			body["last_update"] = r.lastUpdate
		}
		r.pollBody, _ = json.Marshal(body)
		r.pollBodyUpdate = r.lastUpdate
	}
	req, _ := http.NewRequestWithContext(ctx, "POST", r.base+"/api/v4/jobs/request", bytes.NewReader(r.pollBody))
	req.Header.Set("Content-Type", "application/json")
	r.requests.Add(1)
	res, err := r.client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if res.StatusCode == http.StatusNoContent {
		r.lastUpdate = res.Header.Get("X-GitLab-Last-Update")
		return 0, "", nil
	}
	if res.StatusCode != http.StatusCreated {
		return 0, "", fmt.Errorf("jobs/request: %d %s", res.StatusCode, raw)
	}
	if r.lastPayload == nil {
		r.lastPayload = raw
	}
	if id, token, ok := payloadHead(raw); ok {
		return id, token, nil
	}
	var p struct {
		ID    int64  `json:"id"`
		Token string `json:"token"`
	}
	if err := json.Unmarshal(raw, &p); err != nil {
		return 0, "", err
	}
	if p.ID <= 0 || p.Token == "" {
		return 0, "", fmt.Errorf("jobs/request: payload without id or token: %.200s", raw)
	}
	return p.ID, p.Token, nil
}

// payloadHead reads the id and token from a payload that begins
// {"id":N,"token":"…", as gantry's and GitLab's do, without decoding the
// rest: the simulated runners share the machine with the server, and
// decoding whole payloads was a sixth of the benchmark's CPU. Anything
// else is left to encoding/json.
func payloadHead(raw []byte) (int64, string, bool) {
	rest, ok := bytes.CutPrefix(raw, []byte(`{"id":`))
	if !ok {
		return 0, "", false
	}
	n := 0
	for n < len(rest) && rest[n] >= '0' && rest[n] <= '9' {
		n++
	}
	id, err := strconv.ParseInt(string(rest[:n]), 10, 64)
	if err != nil || id <= 0 {
		return 0, "", false
	}
	if rest, ok = bytes.CutPrefix(rest[n:], []byte(`,"token":"`)); !ok {
		return 0, "", false
	}
	end := bytes.IndexByte(rest, '"')
	if end <= 0 || bytes.IndexByte(rest[:end], '\\') >= 0 || !bytes.HasPrefix(rest[end:], []byte(`",`)) {
		return 0, "", false
	}
	return id, string(rest[:end]), true
}

func (r *simRunner) do(ctx context.Context, method, path string, body []byte, h map[string]string) (int, error) {
	req, _ := http.NewRequestWithContext(ctx, method, r.base+"/api/v4"+path, bytes.NewReader(body))
	for k, v := range h {
		req.Header.Set(k, v)
	}
	res, err := r.client.Do(req)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode, nil
}

func (r *simRunner) finish(ctx context.Context, id int64, token string) error {
	b, _ := json.Marshal(map[string]any{"token": token, "state": "success"})
	code, err := r.do(ctx, "PUT", "/jobs/"+strconv.FormatInt(id, 10), b, map[string]string{"Content-Type": "application/json"})
	if err == nil && code != 200 {
		err = fmt.Errorf("PUT: %d", code)
	}
	return err
}

func (r *simRunner) appendLog(ctx context.Context, id int64, token string, offset int, data []byte) error {
	code, err := r.do(ctx, "PATCH", "/jobs/"+strconv.FormatInt(id, 10)+"/trace", data, map[string]string{
		"JOB-TOKEN": token, "Content-Type": "text/plain", "Content-Range": fmt.Sprintf("%d-%d", offset, offset+len(data)-1)})
	if err == nil && code != 202 {
		err = fmt.Errorf("PATCH: %d", code)
	}
	return err
}

// Runners runs the dispatch benchmark on each store.
func Runners(ctx context.Context, o RunnersOptions, out io.Writer) ([]RunnersReport, error) {
	if o.LongPoll == 0 {
		o.LongPoll = 20 * time.Second
	}
	if o.LogEvery == 0 {
		o.LogEvery = 3 * time.Second
	}
	reps, err := perStore(o.Stores, func(name string) (RunnersReport, error) { return runnersOne(ctx, name, o, out) })
	if err != nil {
		return reps, err
	}
	fmt.Fprintf(out, "\n%-9s %12s %12s %14s %14s %10s %14s %12s %13s %10s\n", "store", "pickup p50", "pickup p99", "idle req/s/rn", "writes/idle poll", "jobs/s", "ceiling jobs/s", "ingest MB/s", "ceiling MB/s", "RSS MB")
	for _, r := range reps {
		fmt.Fprintf(out, "%-9s %10.2fms %10.2fms %14.3f %16.4f %10.0f %14.0f %12.1f %13.1f %10.0f\n", r.Store, ms(r.PickupP50), ms(r.PickupP99),
			r.IdleRequestsPerRunner, r.WritesPerIdlePoll, r.JobsPerSecond, r.JobsCeilingPerSecond, r.IngestMBps, r.IngestCeilingMBps, r.RSSIdleMB)
	}
	return reps, nil
}

type writeCounter interface{ Writes() int64 }

func writes(st store.Store) int64 {
	for {
		if w, ok := st.(writeCounter); ok {
			return w.Writes()
		}
		u, ok := st.(interface{ Unwrap() store.Store })
		if !ok {
			return -1
		}
		st = u.Unwrap()
	}
}

func runnersOne(ctx context.Context, name string, o RunnersOptions, out io.Writer) (RunnersReport, error) {
	rep := RunnersReport{Store: name}
	n, err := startBenchNode(ctx, name, o)
	if err != nil {
		return rep, err
	}
	defer n.stop()
	var proj struct{ ID int64 }
	if err := n.api("POST", "/projects", map[string]any{"name": "bench"}, &proj); err != nil {
		return rep, err
	}
	// One job per pipeline for pickups: a config with a single job.
	if err := n.api("POST", fmt.Sprintf("/projects/%d/repository/files/.gitlab-ci.yml", proj.ID), map[string]any{"branch": "main", "commit_message": "ci",
		"content": "noop:\n  script: [\"true\"]\n"}, nil); err != nil {
		return rep, err
	}
	// The commit made a pipeline; drain it later with the work runners.
	// The benchmark's own pipelines are on that commit, as pushed ones are.
	var pls []struct{ SHA string }
	if err := n.api("GET", fmt.Sprintf("/projects/%d/pipelines", proj.ID), nil, &pls); err != nil || len(pls) == 0 {
		return rep, fmt.Errorf("pipeline of the first commit: %v", err)
	}
	benchSHA := pls[0].SHA
	token, err := n.runnerToken()
	if err != nil {
		return rep, err
	}
	pctx, cancel := context.WithCancel(ctx)
	// --- pickup latency with IdleRunners long-polling ---
	got := make(chan int64, o.IdleRunners)
	finished := make(chan struct{}, o.IdleRunners)
	var wg sync.WaitGroup
	runners := make([]*simRunner, o.IdleRunners)
	for i := range runners {
		r := &simRunner{base: n.base, token: token, client: newClient(1)}
		runners[i] = r
		wg.Add(1)
		go func() {
			defer wg.Done()
			for pctx.Err() == nil {
				id, tok, err := r.poll(pctx)
				if err != nil || id == 0 {
					continue
				}
				got <- id
				_ = r.finish(pctx, id, tok)
				finished <- struct{}{}
			}
		}()
	}
	// Drain the job created by the commit, then let every runner settle into a long poll.
	select {
	case <-got:
		<-finished
	case <-time.After(30 * time.Second):
		cancel()
		return rep, fmt.Errorf("first job never picked up")
	}
	time.Sleep(time.Second)
	st := n.app.Store
	var lat, withMove []time.Duration
	for i := 0; i < o.Pickups; i++ {
		job, build, err := createdJob(ctx, st, proj.ID, benchSHA)
		if err != nil {
			cancel()
			return rep, err
		}
		// The job is pending once its move commits: the clock starts then,
		// as the pipeline processor would then tell dispatch. The time of
		// the move itself is reported beside it.
		tMove := time.Now()
		if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: job.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: tMove}); err != nil {
			cancel()
			return rep, err
		}
		t0 := time.Now()
		n.app.Runners.BuildsPending(proj.ID, []ci.PendingBuild{build})
		select {
		case id := <-got:
			if id != job.ID {
				cancel()
				return rep, fmt.Errorf("picked %d, want %d", id, job.ID)
			}
			lat, withMove = append(lat, time.Since(t0)), append(withMove, time.Since(tMove))
			// The runners are idle again before the next job: its pickup
			// is not measured against this one's finish and processing.
			<-finished
			time.Sleep(5 * time.Millisecond)
		case <-time.After(30 * time.Second):
			cancel()
			return rep, fmt.Errorf("job %d not picked up", job.ID)
		}
	}
	slices.Sort(lat)
	slices.Sort(withMove)
	rep.PickupP50, rep.PickupP99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	fmt.Fprintf(out, "[%s] pickup with %d long-polling runners: p50 %.2f ms, p99 %.2f ms (%d jobs); counting the move to pending too: p50 %.2f ms, p99 %.2f ms\n",
		name, o.IdleRunners, ms(rep.PickupP50), ms(rep.PickupP99), len(lat), ms(withMove[len(withMove)/2]), ms(withMove[min(len(withMove)-1, len(withMove)*99/100)]))
	// --- idle polling: requests and database writes ---
	// Let processing of the pickup jobs' pipelines finish first.
	for i := 0; i < 100; i++ {
		ids, err := st.PipelinesNeedingProcessing(ctx, 1)
		if err == nil && len(ids) == 0 {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond)
	var before int64
	for _, r := range runners {
		before += r.requests.Load()
	}
	w0 := writes(st)
	time.Sleep(o.IdleFor)
	var after int64
	for _, r := range runners {
		after += r.requests.Load()
	}
	w1 := writes(st)
	polls := float64(after - before)
	rep.IdleRequestsPerRunner = polls / o.IdleFor.Seconds() / float64(o.IdleRunners)
	if polls > 0 {
		rep.WritesPerIdlePoll = float64(w1-w0) / polls
	}
	fmt.Fprintf(out, "[%s] idle: %.0f polls in %s from %d runners (%.3f req/s each), %d database writes\n", name, polls, o.IdleFor, o.IdleRunners, rep.IdleRequestsPerRunner, w1-w0)
	// --- RSS while the runners long-poll ---
	rep.RSSIdleMB = rssMB()
	cancel()
	wg.Wait()
	// --- throughput of no-op jobs through WorkRunners ---
	rate, payload, err := throughput(ctx, n, proj.ID, benchSHA, token, o)
	if err != nil {
		return rep, err
	}
	rep.JobsPerSecond = rate
	if rep.JobsCeilingPerSecond, err = throughputCeiling(ctx, token, payload, o); err != nil {
		return rep, err
	}
	fmt.Fprintf(out, "[%s] %d no-op jobs through %d runners: %.0f jobs/s; plain handler answering the same requests: %.0f jobs/s (%.0f%%)\n",
		name, o.Jobs, o.WorkRunners, rep.JobsPerSecond, rep.JobsCeilingPerSecond, 100*rep.JobsPerSecond/rep.JobsCeilingPerSecond)
	// Whether log archiving keeps up with the jobs' end.
	fmt.Fprintf(out, "[%s] logs archived by then: %d\n", name, n.app.LogArchiver.Stats().Archived)
	in, err := ingest(ctx, n, proj.ID, benchSHA, token, o)
	if err != nil {
		return rep, err
	}
	rep.IngestMBps, rep.IngestCeilingMBps = in.MBps, in.CeilingMBps
	rep.PacedAppendP50, rep.PacedAppendP99 = in.PacedP50, in.PacedP99
	fmt.Fprintf(out, "[%s] log ingest, %d running jobs each appending %d bytes every %s: %.2f MB/s, append p50 %.2f ms, p99 %.2f ms\n",
		name, o.LogJobs, o.LogChunk, o.LogEvery, in.PacedMBps, ms(in.PacedP50), ms(in.PacedP99))
	fmt.Fprintf(out, "[%s] log ingest flat out through 64 connections: %.1f MB/s; plain handler reading the same PATCHes: %.1f MB/s (%.0f%%)\n",
		name, in.MBps, in.CeilingMBps, 100*in.MBps/in.CeilingMBps)
	return rep, nil
}

// createdJob inserts a job in created status into a fresh pipeline.
// createdJob makes a created job in a pipeline of its own, and what the
// pipeline processor would tell dispatch once the job is pending.
func createdJob(ctx context.Context, st store.Store, projectID int64, sha string) (*ci.Job, ci.PendingBuild, error) {
	now := time.Now()
	pl, err := st.InsertPipeline(ctx, ci.Pipeline{ProjectID: projectID, SHA: sha, Ref: "main", Status: ci.StatusRunning, Source: ci.SourceAPI, CreatedAt: now, UpdatedAt: now})
	if err != nil {
		return nil, ci.PendingBuild{}, err
	}
	job, err := st.InsertJob(ctx, ci.Job{ProjectID: projectID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "noop", Stage: "test", Status: ci.StatusCreated, Ref: "main", CreatedAt: now})
	if err != nil {
		return nil, ci.PendingBuild{}, err
	}
	return job, ci.PendingBuild{JobID: job.ID, Tags: job.TagList, Protected: pl.Protected}, nil
}

// pendingJobs makes n pending jobs through the store, in pipelines of 100.
func pendingJobs(ctx context.Context, st store.Store, projectID int64, sha string, n int) error {
	now := time.Now()
	for made := 0; made < n; made += jobsPerBenchPipeline {
		np := store.NewPipeline{Pipeline: ci.Pipeline{ProjectID: projectID, SHA: sha, Ref: "main", Status: ci.StatusCreated, Source: ci.SourceAPI, CreatedAt: now, UpdatedAt: now}}
		for i := 0; i < min(jobsPerBenchPipeline, n-made); i++ {
			np.Jobs = append(np.Jobs, store.NewJob{Job: ci.Job{Kind: ci.KindBuild, Name: "j" + strconv.Itoa(i), Stage: "test", Status: ci.StatusCreated, Ref: "main", CreatedAt: now}})
		}
		pl, err := st.CreatePipeline(ctx, np)
		if err != nil {
			return err
		}
		if _, err := st.ProcessPipeline(ctx, pl.ID, now, ci.ProcessPipeline); err != nil {
			return err
		}
	}
	return nil
}

func throughput(ctx context.Context, n *benchNode, projectID int64, sha, token string, o RunnersOptions) (float64, []byte, error) {
	if err := pendingJobs(ctx, n.app.Store, projectID, sha, o.Jobs); err != nil {
		return 0, nil, err
	}
	return driveNoOpJobs(ctx, n.base, token, o)
}

// throughputCeiling drives the same simulated runners against a plain
// net/http handler that answers each of a job's requests at once: the
// request with payload (a real one), the log append with 202, the final
// update with 200. It reads every body, as gantry must. It is the rate
// this machine allows the three requests of a no-op job, with the load
// generator on the same cores.
func throughputCeiling(ctx context.Context, token string, payload []byte, o RunnersOptions) (float64, error) {
	base, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		switch {
		case r.Method == "POST" && r.URL.Path == "/api/v4/jobs/request":
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("Content-Length", strconv.Itoa(len(payload)))
			w.WriteHeader(http.StatusCreated)
			_, _ = w.Write(payload)
		case r.Method == "PATCH":
			w.Header().Set("Range", "0-"+strconv.Itoa(len(b)))
			w.Header().Set("Job-Status", "running")
			w.WriteHeader(http.StatusAccepted)
		default:
			w.Header().Set("Job-Status", "success")
			w.WriteHeader(http.StatusOK)
		}
	}))
	if err != nil {
		return 0, err
	}
	defer stop()
	rate, _, err := driveNoOpJobs(ctx, base, token, o)
	return rate, err
}

// driveNoOpJobs runs o.Jobs no-op jobs through o.WorkRunners simulated
// runners (request, one log append, success) and returns jobs/s and one
// payload as the server sent it.
func driveNoOpJobs(ctx context.Context, base, token string, o RunnersOptions) (float64, []byte, error) {
	var done atomic.Int64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	var payload atomic.Pointer[[]byte]
	chunk := bytes.Repeat([]byte("x"), 64)
	// The run ends when the last job finishes: runners still long-polling
	// then (there is no more work) wait out their poll, which the clock
	// does not count. They are not cut off: a poll abandoned by its client
	// could still be handed the next phase's job.
	var elapsed atomic.Int64
	t0 := time.Now()
	for i := 0; i < o.WorkRunners; i++ {
		r := &simRunner{base: base, token: token, client: newClient(1)}
		wg.Add(1)
		go func() {
			defer wg.Done()
			for done.Load() < int64(o.Jobs) {
				id, tok, err := r.poll(ctx)
				if err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if id == 0 {
					continue
				}
				if payload.Load() == nil {
					payload.CompareAndSwap(nil, &r.lastPayload)
				}
				if err := r.appendLog(ctx, id, tok, 0, chunk); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if err := r.finish(ctx, id, tok); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				if done.Add(1) == int64(o.Jobs) {
					elapsed.Store(int64(time.Since(t0)))
				}
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, nil, e.(error)
	}
	if elapsed.Load() == 0 {
		return 0, nil, fmt.Errorf("throughput: %d of %d jobs finished", done.Load(), o.Jobs)
	}
	return float64(o.Jobs) / time.Duration(elapsed.Load()).Seconds(), *payload.Load(), nil
}

// ingestReport is the log ingest phase's figures.
type ingestReport struct {
	// Paced: every job appends LogChunk bytes every LogEvery (the issue's
	// workload); the achieved rate and the latency of one append.
	PacedMBps          float64
	PacedP50, PacedP99 time.Duration
	// Flat out: the same jobs' appends as fast as 64 connections go, and
	// a plain net/http handler that reads the same PATCHes and answers
	// 202, driven the same way (the practical ceiling of this machine).
	MBps, CeilingMBps float64
}

// ingest makes LogJobs jobs running, then measures their log appends
// paced and flat out, next to the ceiling.
func ingest(ctx context.Context, n *benchNode, projectID int64, sha, token string, o RunnersOptions) (ingestReport, error) {
	var rep ingestReport
	if err := pendingJobs(ctx, n.app.Store, projectID, sha, o.LogJobs); err != nil {
		return rep, err
	}
	var jobs []*appendingJob
	r := &simRunner{base: n.base, token: token, client: newClient(1)}
	for len(jobs) < o.LogJobs {
		id, tok, err := r.poll(ctx)
		if err != nil {
			return rep, err
		}
		if id != 0 {
			jobs = append(jobs, &appendingJob{id: id, token: tok})
		}
	}
	data := bytes.Repeat([]byte("0123456789abcdef"), o.LogChunk/16)
	// Paced: each job appends once per LogEvery, the jobs spread evenly
	// over the interval; two rounds.
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr atomic.Value
	t0 := time.Now()
	cl := &simRunner{base: n.base, client: newClient(256)}
	for k, j := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := t0.Add(o.LogEvery * time.Duration(k) / time.Duration(len(jobs)))
			for round := 0; round < 2; round++ {
				time.Sleep(time.Until(start.Add(time.Duration(round) * o.LogEvery)))
				a0 := time.Now()
				if err := cl.appendLog(ctx, j.id, j.token, j.offset, data); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				j.offset += len(data)
				mu.Lock()
				lat = append(lat, time.Since(a0))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return rep, fmt.Errorf("paced appends: %w", e.(error))
	}
	slices.Sort(lat)
	rep.PacedMBps = float64(len(lat)*len(data)) / time.Since(t0).Seconds() / 1e6
	rep.PacedP50, rep.PacedP99 = lat[len(lat)/2], lat[min(len(lat)-1, len(lat)*99/100)]
	// Flat out, against gantry and then against the ceiling handler.
	var err error
	if rep.MBps, err = appendFlatOut(ctx, n.base, jobs, data); err != nil {
		return rep, err
	}
	ceiling, stop, err := serve(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		start, _, _ := strings.Cut(r.Header.Get("Content-Range"), "-")
		off, _ := strconv.Atoi(start)
		w.Header().Set("Range", "0-"+strconv.Itoa(off+len(b)))
		w.Header().Set("Job-Status", "running")
		w.WriteHeader(http.StatusAccepted)
	}))
	if err != nil {
		return rep, err
	}
	defer stop()
	rep.CeilingMBps, err = appendFlatOut(ctx, ceiling, jobs, data)
	return rep, err
}

type appendingJob struct {
	id     int64
	token  string
	offset int
}

// appendFlatOut appends data to the jobs for 5 s through 64 connections,
// each with jobs of its own (an offset is only ever moved by one of them),
// and returns MB/s. Every append must be acknowledged.
func appendFlatOut(ctx context.Context, base string, jobs []*appendingJob, data []byte) (float64, error) {
	conns := min(64, len(jobs))
	var bytesIn atomic.Int64
	var firstErr atomic.Value
	deadline := time.Now().Add(5 * time.Second)
	var wg sync.WaitGroup
	for c := 0; c < conns; c++ {
		var mine []*appendingJob
		for k := c; k < len(jobs); k += conns {
			mine = append(mine, jobs[k])
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &simRunner{base: base, client: newClient(1)}
			for k := 0; time.Now().Before(deadline); k++ {
				j := mine[k%len(mine)]
				if err := cl.appendLog(ctx, j.id, j.token, j.offset, data); err != nil {
					firstErr.CompareAndSwap(nil, err)
					return
				}
				j.offset += len(data)
				bytesIn.Add(int64(len(data)))
			}
		}()
	}
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return 0, fmt.Errorf("appends: %w", e.(error))
	}
	return float64(bytesIn.Load()) / 5 / 1e6, nil
}

// rssMB reads this process's resident set size.
func rssMB() float64 {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			if len(f) >= 2 {
				kb, _ := strconv.ParseFloat(f[1], 64)
				return kb / 1024
			}
		}
	}
	return 0
}

// jobsPerBenchPipeline sizes the pipelines the throughput runs drain.
var jobsPerBenchPipeline = 100
