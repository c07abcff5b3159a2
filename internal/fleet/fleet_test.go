package fleet_test

import (
	"bytes"
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/fleet"
	"gantry/internal/testenv"
)

// binary is the gantry binary built once for the package's tests.
var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "gantry-fleet-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := func() int {
		defer os.RemoveAll(dir)
		if testenv.PostgresURL() != "" || os.Getenv("GANTRY_TEST_REQUIRE_POSTGRES") == "1" {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
			defer cancel()
			if binary, err = fleet.Build(ctx, dir); err != nil {
				fmt.Fprintln(os.Stderr, err)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// envInt reads a positive count from the environment, else def.
func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// startNodes starts n gantry server processes on one fresh PostgreSQL
// schema, reached at dbHost (the server itself, or a proxy in front of
// it), with artifacts and archived logs in one fresh S3 bucket.
func startNodes(t *testing.T, n int, dbHost func(real string) string, env ...string) *fleet.Cluster {
	t.Helper()
	testenv.PostgresOnly(t, "nodes share state through PostgreSQL")
	s3 := testenv.S3(t)
	bucket := s3.NewBucket(t)
	dbURL, _ := testenv.NewPostgresSchema(t)
	u, err := url.Parse(dbURL)
	if err != nil {
		t.Fatal(err)
	}
	if dbHost != nil {
		u.Host = dbHost(u.Host)
	}
	// What is under test is the nodes, not PostgreSQL's own durability:
	// commits need not wait for the disk (scripts/test's cluster runs so).
	q := u.Query()
	q.Set("synchronous_commit", "off")
	u.RawQuery = q.Encode()
	env = append(env,
		fmt.Sprintf("GANTRY_OBJECT_STORE_URL=s3://%s?endpoint=%s&region=us-east-1&insecure=true&path_style=true", bucket.Bucket, bucket.Endpoint),
		"GANTRY_OBJECT_STORE_ACCESS_KEY="+bucket.AccessKey, "GANTRY_OBJECT_STORE_SECRET_KEY="+bucket.SecretKey,
		"GANTRY_DB_MAX_CONNS=12")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	c, err := fleet.StartCluster(ctx, fleet.ClusterOptions{Binary: binary, Nodes: n, Dir: t.TempDir(), DatabaseURL: u.String(), Env: env})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			for _, nd := range c.Nodes {
				errs := nd.LogLines("level=ERROR")
				t.Logf("%s: %d errors logged, the first: %q; log tail:\n%s", nd.Name, len(errs), errs[:min(len(errs), 5)], nd.LogTail(10))
			}
		}
		c.Stop()
	})
	return c
}

// TestThreeNodes sends GANTRY_FLEET_JOBS jobs (20,000) through
// GANTRY_FLEET_RUNNERS simulated runners (200) spread over three gantry
// processes sharing one repositories directory: each project is created
// through one node and committed to through another, its pipelines are
// created through every node, runners poll every node. Every job must run
// exactly once and its whole log must read back through a node other than
// the one that took it. Git pushes through every node must each start one
// pipeline. Then it measures how long a job made pending on one node takes
// to reach a runner held by another, and prints it (figures, not
// assertions).
func TestThreeNodes(t *testing.T) {
	jobs := envInt(t, "GANTRY_FLEET_JOBS", 20000)
	runners := envInt(t, "GANTRY_FLEET_RUNNERS", 200)
	c := startNodes(t, 3, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	pickups := envInt(t, "GANTRY_FLEET_PICKUPS", 50)
	// Pickup latency is defined on idle long-polling runners, so it is
	// measured first on the quiet cluster, and again after the run, while
	// the nodes still archive and index its logs.
	printPickups(t, ctx, c, pickups, "quiet cluster")
	work := fleet.Work{Chunks: 3, ChunkSize: 200}
	run, err := fleet.StartLoad(ctx, c, fleet.Load{Jobs: jobs, JobsPerPipeline: 200, Runners: runners, Work: work})
	if err != nil {
		t.Fatal(err)
	}
	if err := run.WaitFinished(ctx, run.Total); err != nil {
		run.Stop()
		t.Fatal(err)
	}
	elapsed := time.Since(run.Started)
	run.Stop()
	fmt.Printf("FLEET 3 nodes: %d jobs (%d log bytes each, %d PATCHes) through %d runners in %.1f s: %.0f jobs/s\n",
		run.Total, work.Chunks*work.ChunkSize, work.Chunks, runners, elapsed.Seconds(), float64(run.Total)/elapsed.Seconds())
	verify(t, c, run, false)
	if n := run.Ledger.ServerErrors(); len(n) > 0 {
		t.Errorf("runners met server errors without any fault injected: %v", n)
	}

	pushThroughEveryNode(t, c)

	printPickups(t, ctx, c, pickups, "right after the run")
}

// printPickups measures jobs made pending through node 2 and taken by a
// runner held on node 1, and prints the figures.
func printPickups(t *testing.T, ctx context.Context, c *fleet.Cluster, n int, when string) {
	t.Helper()
	lat, err := fleet.MeasurePickups(ctx, c, 0, 1, n)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Printf("FLEET cross-node pickup, %s (job made pending through node 2, runner held by node 1), %d jobs: queued→taken p50 %.1f ms, p99 %.1f ms; pipeline POST→runner p50 %.1f ms, p99 %.1f ms\n",
		when, len(lat.Queue), ms(fleet.Percentile(lat.Queue, 50)), ms(fleet.Percentile(lat.Queue, 99)), ms(fleet.Percentile(lat.Trip, 50)), ms(fleet.Percentile(lat.Trip, 99)))
}

// pushThroughEveryNode clones a project through one node and pushes to it
// through each node in turn, with real git: every node serves every
// repository, and each push starts exactly one pipeline, for its commit.
func pushThroughEveryNode(t *testing.T, c *fleet.Cluster) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	p, err := c.CreateProject(ctx, 0, "pushes", "work:\n  tags: [nobody]\n  script: [\"true\"]\n")
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	git := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.CommandContext(ctx, "git", args...)
		cmd.Dir = dir
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_TERMINAL_PROMPT=0", "GIT_AUTHOR_NAME=Fleet", "GIT_AUTHOR_EMAIL=fleet@example.com",
			"GIT_COMMITTER_NAME=Fleet", "GIT_COMMITTER_EMAIL=fleet@example.com", "LC_ALL=C"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return strings.TrimSpace(string(out))
	}
	remote := func(i int) string {
		return strings.Replace(c.Nodes[i].URL, "http://", "http://root:"+fleet.RootToken+"@", 1) + "/" + p.Path + ".git"
	}
	work := filepath.Join(t.TempDir(), "work")
	git("", "clone", "-q", remote(1), work)
	for i := range c.Nodes {
		file := fmt.Sprintf("pushed-through-node%d", i+1)
		if err := os.WriteFile(filepath.Join(work, file), []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		git(work, "add", file)
		git(work, "commit", "-q", "-m", file)
		git(work, "push", "-q", remote(i), "HEAD:main")
		sha := git(work, "rev-parse", "HEAD")
		// The node that took the push creates the pipeline once it
		// has answered; read it through another node.
		var pipelines []struct {
			ID int64 `json:"id"`
		}
		for {
			path := fmt.Sprintf("/projects/%d/pipelines?sha=%s", p.ID, sha)
			if err := c.API((i+1)%len(c.Nodes)).Do(ctx, "GET", path, nil, &pipelines); err != nil {
				t.Fatal(err)
			}
			if len(pipelines) > 0 || ctx.Err() != nil {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
		if len(pipelines) != 1 {
			t.Fatalf("push through node %d: %d pipelines for %s, want 1", i+1, len(pipelines), sha)
		}
	}
	// And nothing else: the commit that added the CI configuration, then one per push.
	var all []struct {
		SHA string `json:"sha"`
	}
	if err := c.API(2%len(c.Nodes)).Do(ctx, "GET", fmt.Sprintf("/projects/%d/pipelines?per_page=100", p.ID), nil, &all); err != nil {
		t.Fatal(err)
	}
	if len(all) != len(c.Nodes)+1 {
		t.Fatalf("%d pipelines, want %d (one for the CI configuration's commit, one per push): %v", len(all), len(c.Nodes)+1, all)
	}
	fmt.Printf("FLEET pushes: one repository cloned through node 2, pushed to through each of %d nodes, one pipeline per push\n", len(c.Nodes))
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// verify reads every job back through a node other than the one it was
// written through: each job ran at most once; with faults, only jobs no
// runner ever received may have failed (stuck, by the watchdog); every
// acknowledged log byte and artifact is there, and nothing else.
func verify(t *testing.T, c *fleet.Cluster, run *fleet.Run, faults bool) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	ledger := run.Ledger.Jobs()
	work := run.Runners[0].Work
	type check struct {
		project int64
		id      int64
		node    int
		rec     fleet.JobRecord
	}
	var checks []check
	total, orphans := 0, 0
	for pi, p := range run.Projects {
		jobs, err := c.API((pi+1)%len(c.Nodes)).Jobs(ctx, p.ID)
		if err != nil {
			t.Fatal(err)
		}
		for _, j := range jobs {
			total++
			rec, taken := ledger[j.ID]
			switch {
			case rec.Claims > 1:
				t.Errorf("job %d was handed to runners %d times", j.ID, rec.Claims)
			case j.Status == "success" && rec.Finished:
			case faults && !taken && j.Status == "failed" && j.FailureReason == "stuck_or_timeout_failure":
				orphans++ // claimed, but the answer never reached a runner
			default:
				t.Errorf("job %d: status %s (%s); runners: %+v", j.ID, j.Status, j.FailureReason, rec)
			}
			// Read back through a node the log was not written through.
			node := (pi + 1) % len(c.Nodes)
			for k := range c.Nodes {
				if !rec.WrittenVia[c.Nodes[k].URL] {
					node = k
					break
				}
			}
			checks = append(checks, check{project: p.ID, id: j.ID, node: node, rec: rec})
		}
	}
	if total != run.Total {
		t.Errorf("%d jobs listed, want %d", total, run.Total)
	}
	if faults {
		fmt.Printf("FLEET faults: %d jobs claimed by a request whose answer was lost, failed by the watchdog\n", orphans)
	}
	var mu sync.Mutex
	var wg sync.WaitGroup
	next := make(chan check)
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range next {
				api := c.API(ch.node)
				trace, err := api.Trace(ctx, ch.project, ch.id)
				want := work.ExpectedLog(ch.id)
				mu.Lock()
				switch {
				case err != nil:
					t.Errorf("job %d: trace: %v", ch.id, err)
				case int64(len(trace)) < ch.rec.AckedLog:
					t.Errorf("job %d: trace has %d bytes, %d were acknowledged", ch.id, len(trace), ch.rec.AckedLog)
				case !bytes.HasPrefix(want, trace):
					t.Errorf("job %d: trace %q is not the log its runner wrote", ch.id, trace)
				case ch.rec.Finished && !bytes.Equal(trace, want):
					t.Errorf("job %d: finished with %d log bytes, want %d", ch.id, len(trace), len(want))
				}
				mu.Unlock()
				if ch.rec.ArtifactAck {
					art, err := api.Artifact(ctx, ch.project, ch.id)
					if err != nil || !bytes.Equal(art, fleet.ExpectedArtifact(ch.id)) {
						mu.Lock()
						t.Errorf("job %d: acknowledged artifact reads back %d bytes, err %v", ch.id, len(art), err)
						mu.Unlock()
					}
				}
			}
		}()
	}
	for _, ch := range checks {
		if t.Failed() && ctx.Err() != nil {
			break
		}
		next <- ch
	}
	close(next)
	wg.Wait()
}

// TestThreeNodesFaults runs GANTRY_FLEET_FAULT_JOBS jobs (3,000, each with
// a log in four PATCHes and an artifact) through three nodes whose
// database is reached through a proxy, kills one node with SIGKILL a
// quarter of the way, restarts it, and cuts the database for 10 s half
// way. Every job must reach a final state and run at most once, every
// acknowledged log byte and artifact must read back, and runners of the
// dead node must carry on through the others.
func TestThreeNodesFaults(t *testing.T) {
	jobs := envInt(t, "GANTRY_FLEET_FAULT_JOBS", 3000)
	runners := envInt(t, "GANTRY_FLEET_FAULT_RUNNERS", 60)
	var proxy *testenv.TCPProxy
	c := startNodes(t, 3, func(real string) string {
		proxy = testenv.StartTCPProxy(t, real)
		return proxy.Addr
	}, "GANTRY_JOB_SILENT_TIMEOUT=45s")
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	run, err := fleet.StartLoad(ctx, c, fleet.Load{Jobs: jobs, JobsPerPipeline: 100, Runners: runners, PipelinesFirst: true,
		Work: fleet.Work{Chunks: 4, ChunkSize: 200, Artifacts: true}})
	if err != nil {
		t.Fatal(err)
	}
	defer run.Stop()
	victim := c.Nodes[1]
	if err := run.WaitFinished(ctx, run.Total/4); err != nil {
		t.Fatal(err)
	}
	failoversBefore := run.Ledger.Failovers.Load()
	victim.Kill()
	t.Logf("killed %s (SIGKILL) after %d jobs", victim.Name, run.Ledger.Finished.Load())
	time.Sleep(2 * time.Second)
	if err := victim.Restart(ctx); err != nil {
		t.Fatal(err)
	}
	if err := run.WaitFinished(ctx, run.Total/2); err != nil {
		t.Fatal(err)
	}
	proxy.Cut()
	t.Logf("database cut after %d jobs", run.Ledger.Finished.Load())
	time.Sleep(10 * time.Second)
	proxy.Restore()
	t.Logf("database back after %d jobs", run.Ledger.Finished.Load())

	// Every job ends: by its runner, or by the watchdog for a job whose
	// claim never reached a runner.
	waitFinal(t, ctx, c, run)
	run.Stop()
	failovers := run.Ledger.Failovers.Load() - failoversBefore
	fmt.Printf("FLEET faults: %d jobs, %d runners; %d requests failed over to another node, %d retried; 5xx answers by status %v\n",
		run.Total, runners, failovers, run.Ledger.Retries.Load(), run.Ledger.ServerErrors())
	if failovers == 0 {
		t.Error("no runner failed over to another node after the kill")
	}
	if n := run.Ledger.ServerErrors()[500]; n > 0 {
		t.Errorf("runners got %d answers 500 (a database outage must answer 503, which runners retry)", n)
	}
	verify(t, c, run, true)
}

// waitFinal waits until no job of the run is created, pending or running.
func waitFinal(t *testing.T, ctx context.Context, c *fleet.Cluster, run *fleet.Run) {
	t.Helper()
	for {
		open := 0
		for _, p := range run.Projects {
			jobs, err := c.API(0).Jobs(ctx, p.ID, "created", "pending", "running")
			if err != nil {
				t.Fatal(err)
			}
			open += len(jobs)
		}
		if open == 0 {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%d jobs still open", open)
		case <-time.After(time.Second):
		}
	}
}
