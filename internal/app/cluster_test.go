package app_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/config"
	"gantry/internal/store/postgres"
	"gantry/internal/testenv"
)

// startCluster runs two nodes on one PostgreSQL schema. Their fallbacks
// (re-checking held job requests, polling followed logs) are pushed out of
// reach, so only the nodes' notifications can deliver in time; adjust
// changes both nodes' configuration further.
func startCluster(t testing.TB, adjust ...func(*config.Config)) (*node, *node) {
	t.Helper()
	testenv.PostgresOnly(t, "nodes share state only through PostgreSQL")
	u, _ := testenv.NewPostgresSchema(t)
	configure := func(c *config.Config) {
		c.DatabaseURL = u
		c.LongPoll = 50 * time.Second
		c.JobRecheck = time.Hour
		c.LogFollowPoll = time.Hour
		for _, f := range adjust {
			f(c)
		}
	}
	start := func() *node {
		st, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 8})
		if err != nil {
			t.Fatalf("open postgres: %v", err)
		}
		n, stop := launchNode(t.(*testing.T), st, t.TempDir(), app.Options{}, configure)
		t.Cleanup(stop)
		waitFor(t.(*testing.T), "listener", func() bool { return n.app.Events.ListenerPID() != 0 })
		return n
	}
	return start(), start()
}

// polledJob is one answer to POST /jobs/request.
type polledJob struct {
	code       int
	lastUpdate string
	id         int64
	token      string
}

// pollJob asks n for a job as a runner does, until ctx ends; it is safe off
// the test's goroutine.
func pollJob(ctx context.Context, n *node, runnerToken, lastUpdate string) (polledJob, error) {
	body := map[string]any{"token": runnerToken, "system_id": "s_0123456789ab", "info": map[string]any{"name": "test", "version": "17.9.3"}}
	if lastUpdate != "" {
		body["last_update"] = lastUpdate
	}
	b, _ := json.Marshal(body)
	req, _ := http.NewRequestWithContext(ctx, "POST", n.base+"/api/v4/jobs/request", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return polledJob{}, err
	}
	defer res.Body.Close()
	out := polledJob{code: res.StatusCode, lastUpdate: res.Header.Get("X-GitLab-Last-Update")}
	if res.StatusCode == http.StatusCreated {
		var p struct {
			ID    int64  `json:"id"`
			Token string `json:"token"`
		}
		if err := json.NewDecoder(res.Body).Decode(&p); err != nil {
			return out, err
		}
		out.id, out.token = p.ID, p.Token
	}
	return out, nil
}

// heldRequest long-polls a for a job in the background, as a runner that
// has nothing to do; the answer arrives on the channel.
func heldRequest(t *testing.T, a *node, token string) <-chan polledJob {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	first, err := pollJob(ctx, a, token, "")
	if err != nil || first.code != http.StatusNoContent {
		t.Fatalf("first poll: %+v %v", first, err)
	}
	got := make(chan polledJob, 1)
	go func() {
		p, _ := pollJob(ctx, a, token, first.lastUpdate)
		got <- p
	}()
	// Let the request park before the job exists.
	time.Sleep(300 * time.Millisecond)
	return got
}

func TestNodesWakeEachOther(t *testing.T) {
	a, b := startCluster(t)
	token := a.newRunner()
	got := heldRequest(t, a, token)
	start := time.Now()
	pid := b.setupProject("across", "job:\n  script: [make]\n")
	var job polledJob
	select {
	case job = <-got:
		if job.code != http.StatusCreated {
			t.Fatalf("the held request ended without a job: %+v", job)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a job made pending on node B did not reach the runner held by node A within 5 s (long poll 50 s)")
	}
	t.Logf("job reached node A's runner %v after the commit on node B", time.Since(start))
	jobID, jobToken := job.id, job.token

	// Follow the log on A while the runner writes it through B.
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	_, events := a.follow(ctx, pid, jobID, "")
	end := b.appendLog(jobID, jobToken, 0, []byte("hello from B\n"))
	if s := collect(t, events, end); s != "hello from B\n" {
		t.Fatalf("followed %q", s)
	}
	b.finishJob(jobID, jobToken, "success")
	if ev := nextEvent(t, events); ev.event != "end" {
		t.Fatalf("after the job ended: %+v", ev)
	}
}
