package app_test

import (
	"context"
	"log/slog"
	"sync"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/lease"
	"gantry/internal/store"
	"gantry/internal/store/postgres"
	"gantry/internal/testenv"
)

// newClusterApp builds (without starting) a node on the shared database u.
func newClusterApp(t *testing.T, u string, clock *testenv.Clock) *app.App {
	t.Helper()
	st, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Defaults()
	cfg.DataDir, cfg.DatabaseURL, cfg.ExternalURL = t.TempDir(), u, "http://gantry.example"
	a, err := app.New(context.Background(), cfg, app.Options{Store: st, Now: clock.Now, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	return a
}

// Two nodes on one PostgreSQL database run the same background workers;
// each periodic sweep runs on the node holding its lease, so every ended
// job's log is archived by exactly one node. When the holder stops
// renewing, the lease moves to the other node once it expires; a node
// that releases its leases hands them over at once.
func TestLeasesShareSweepsBetweenNodes(t *testing.T) {
	testenv.PostgresOnly(t, "leases matter to nodes sharing PostgreSQL")
	ctx := context.Background()
	u, _ := testenv.NewPostgresSchema(t)
	clock := testenv.NewClock(testenv.T0)
	a := newClusterApp(t, u, clock)
	b := newClusterApp(t, u, clock)
	fx := testenv.Seed(t, a.Store)

	// Ended builds to give logs to, half before and half after the lease
	// moves.
	var ended []*ci.Job
	for _, j := range fx.AllBuilds {
		if j.Status.Completed() {
			size, err := a.Store.TraceSize(ctx, j.ID)
			_, archived := a.Store.TraceArchiveOf(ctx, j.ID)
			if err == nil && size == 0 && archived != nil {
				ended = append(ended, j)
			}
		}
	}
	if len(ended) < 4 {
		t.Fatalf("fixture has %d ended builds without a log", len(ended))
	}
	already, err := a.Store.UnarchivedTraces(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	giveLogs := func(jobs []*ci.Job) {
		for _, j := range jobs {
			if _, err := a.Store.AppendTrace(ctx, j.ID, 0, []byte("log of "+j.Name+"\n")); err != nil {
				t.Fatal(err)
			}
		}
	}
	// tickBoth runs one round of every periodic worker on both nodes at
	// once and returns the logs each archived.
	tickBoth := func() (int, int) {
		var wg sync.WaitGroup
		var na, nb int
		for _, n := range []struct {
			a   *app.App
			out *int
		}{{a, &na}, {b, &nb}} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				*n.out = n.a.LogArchiver.Tick(ctx)
				n.a.Watchdog.Tick(ctx)
				if _, err := n.a.Expiry.Tick(ctx); err != nil {
					t.Error(err)
				}
			}()
		}
		wg.Wait()
		return na, nb
	}
	holds := func(n *app.App) (all, none bool) {
		all, none = true, true
		for _, name := range lease.All {
			h := n.Leases.Held(name)
			all, none = all && h, none && !h
		}
		return all, none
	}

	half := len(ended) / 2
	giveLogs(ended[:half])
	a.Leases.Renew(ctx)
	b.Leases.Renew(ctx)
	if all, _ := holds(a); !all {
		t.Fatal("the first node to claim does not hold every lease")
	}
	if _, none := holds(b); !none {
		t.Fatal("the second node holds a lease the first holds")
	}
	na, nb := tickBoth()
	if want := half + len(already); na != want || nb != 0 {
		t.Fatalf("archived %d on the holder and %d on the other node, want %d and 0", na, nb, want)
	}

	// a stops renewing (as a dead node would). Within the lifetime b
	// still cannot take over; past it, b's next renewal takes every lease.
	clock.Advance(lease.DefaultTTL - time.Second)
	b.Leases.Renew(ctx)
	if _, none := holds(b); !none {
		t.Fatal("a lease moved before it expired")
	}
	clock.Advance(time.Second)
	b.Leases.Renew(ctx)
	if all, _ := holds(b); !all {
		t.Fatal("the leases did not move once their holder stopped renewing")
	}
	if _, none := holds(a); !none {
		t.Fatal("the old holder still counts a lease it let expire as held")
	}
	giveLogs(ended[half:])
	na, nb = tickBoth()
	if want := len(ended) - half; na != 0 || nb != want {
		t.Fatalf("after the move archived %d on the old holder and %d on the new one, want 0 and %d", na, nb, want)
	}
	// The old holder comes back: the leases stay where they are.
	a.Leases.Renew(ctx)
	if _, none := holds(a); !none {
		t.Fatal("a returning node took leases back from a live holder")
	}

	// b shuts down: it releases its leases, and a takes them at once,
	// without waiting out their lifetime.
	b.Leases.Stop()
	a.Leases.Renew(ctx)
	if all, _ := holds(a); !all {
		t.Fatal("released leases were not free at once")
	}
	var left []store.UnarchivedTrace
	if left, err = a.Store.UnarchivedTraces(ctx, 0, 1000); err != nil || len(left) != 0 {
		t.Fatalf("logs left unarchived: %v %v", left, err)
	}
}

// A job that ends on a node not holding the archive lease is archived at
// once by the holder, woken through the other node's notification (the
// holder's own periodic look is out of reach).
func TestEndedJobWakesTheArchiveHolder(t *testing.T) {
	holder, other := startCluster(t, func(c *config.Config) { c.LogArchiveInterval = time.Hour })
	if !holder.app.Leases.Held(lease.LogArchive) || other.app.Leases.Held(lease.LogArchive) {
		t.Fatal("the first node started does not hold the archive lease alone")
	}
	_, jobID, jobToken := other.runningJob("ended-elsewhere")
	other.appendLog(jobID, jobToken, 0, []byte("archived by the holder\n"))
	other.finishJob(jobID, jobToken, "success")
	waitFor(t, "the log archived", func() bool { return chunkCount(t, holder.app.Store, jobID) == 0 })
	if h, o := holder.app.LogArchiver.Stats().Archived, other.app.LogArchiver.Stats().Archived; h != 1 || o != 0 {
		t.Fatalf("archived %d on the holder, %d on the other node", h, o)
	}
}
