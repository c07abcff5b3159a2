package app_test

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"sync"
	"testing"

	"gantry/internal/app"
	"gantry/internal/config"
	"gantry/internal/store/postgres"
	"gantry/internal/testenv"
)

// readiness returns the status of GET /-/readiness.
func (n *node) readiness() int {
	n.t.Helper()
	res, err := http.Get(n.base + "/-/readiness")
	if err != nil {
		n.t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

// A node whose database becomes unreachable reports not ready, and ready
// again once the database is back, without a restart; its listening
// connection comes back too, so other nodes' wake-ups reach it again.
func TestReadinessFollowsTheDatabase(t *testing.T) {
	testenv.PostgresOnly(t, "the cut is made between a node and PostgreSQL")
	ctx := context.Background()
	u, _ := testenv.NewPostgresSchema(t)
	proxy, viaProxy := testenv.ProxyPostgres(t, u)
	configure := func(url string) func(*config.Config) {
		return func(c *config.Config) {
			c.DatabaseURL = url
			c.JobRecheck = 1 << 40 // only a notification can wake a held request
		}
	}
	openAt := func(url string) *node {
		st, err := postgres.Open(ctx, url, postgres.Options{MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		n, stop := launchNode(t, st, t.TempDir(), app.Options{}, configure(url))
		t.Cleanup(stop)
		waitFor(t, "the listener", func() bool { return n.app.Events.ListenerPID() != 0 })
		return n
	}
	cut := openAt(viaProxy)
	other := openAt(u)
	if code := cut.readiness(); code != http.StatusOK {
		t.Fatalf("readiness before the cut: %d", code)
	}
	listener := cut.app.Events.ListenerPID()
	// A project and a token the node has not looked up yet, for a git
	// request during the cut (nothing of them is cached).
	var proj struct {
		Path string `json:"path_with_namespace"`
	}
	var tok struct{ Token string }
	if cut.api("POST", "/projects", map[string]any{"name": "git-during-cut"}, &proj) != http.StatusCreated ||
		cut.api("POST", "/users/1/personal_access_tokens", map[string]any{"name": "git", "scopes": []string{"api"}}, &tok) != http.StatusCreated {
		t.Fatal("project or token")
	}

	proxy.Cut()
	if code := cut.readiness(); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness with the database cut off: %d", code)
	}
	// Git is told to retry, not that its valid credentials are wrong.
	req, _ := http.NewRequest("GET", cut.base+"/"+proj.Path+".git/info/refs?service=git-upload-pack", nil)
	req.SetBasicAuth("root", tok.Token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusServiceUnavailable || res.Header.Get("Retry-After") == "" {
		t.Fatalf("git with the database cut off: %d %v", res.StatusCode, res.Header)
	}
	waitFor(t, "the listener to notice the cut", func() bool { return cut.app.Events.ListenerPID() == 0 })
	if code := cut.readiness(); code != http.StatusServiceUnavailable {
		t.Fatalf("readiness still cut off: %d", code)
	}

	proxy.Restore()
	waitFor(t, "readiness after the database is back", func() bool { return cut.readiness() == http.StatusOK })
	waitFor(t, "the listener to reconnect", func() bool {
		pid := cut.app.Events.ListenerPID()
		return pid != 0 && pid != listener
	})
	// Wake-ups flow again: a job made pending on the other node reaches a
	// runner held by this one (with re-checks out of reach).
	token := cut.newRunner()
	got := heldRequest(t, cut, token)
	other.setupProject("after-the-cut", "job:\n  script: [make]\n")
	if job := <-got; job.code != http.StatusCreated {
		t.Fatalf("the held request ended without a job: %+v", job)
	}
}

// Idle runners cost no database connection: requests held waiting for
// work hold none, so far more runners than the pool has connections wait
// at once and the API still answers.
func TestHeldJobRequestsHoldNoConnection(t *testing.T) {
	const held = 40
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			pool, ok := st.(interface{ PoolStats() sql.DBStats })
			if !ok {
				t.Fatalf("%T reports no pool statistics", st)
			}
			n := serveNode(t, st, app.Options{}, func(*config.Config) {})
			token := n.newRunner()
			first, err := pollJob(context.Background(), n, token, "")
			if err != nil || first.code != http.StatusNoContent {
				t.Fatalf("first poll: %+v %v", first, err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer func() { cancel(); wg.Wait() }()
			for range held {
				wg.Add(1)
				go func() {
					defer wg.Done()
					_, _ = pollJob(ctx, n, token, first.lastUpdate)
				}()
			}
			waitFor(t, fmt.Sprintf("%d held requests", held), func() bool { return n.app.Runners.HeldRequests() == held })
			// More requests wait than the pool has connections: were each
			// to hold one, the pool would stay exhausted.
			if max := pool.PoolStats().MaxOpenConnections; max >= held {
				t.Fatalf("pool of %d is no smaller than %d held requests", max, held)
			}
			// A request counts as held once subscribed, just before its
			// first look for work; once those looks end, nothing is in use.
			waitFor(t, "no connection in use", func() bool { return pool.PoolStats().InUse == 0 })
			var user struct{ Username string }
			if code := n.api("GET", "/user", nil, &user); code != http.StatusOK {
				t.Fatalf("API beside %d held requests: %d", held, code)
			}
		})
	}
}
