package events_test

import (
	"bufio"
	"context"
	"database/sql"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib"

	"gantry/internal/ci"
	"gantry/internal/events"
	"gantry/internal/joblog"
	"gantry/internal/store"
	"gantry/internal/store/postgres"
	"gantry/internal/testenv"
)

// served runs a stream of the project over HTTP on loopback; lines
// delivers the raw lines the client reads.
func served(t *testing.T, st store.Store, hub *joblog.Hub, projectID int64, lastEventID string) <-chan string {
	t.Helper()
	s := &events.Stream{Store: st, Hub: hub, Render: func(e *ci.StatusEvent) []byte { return []byte(`{"status":"` + string(e.Status) + `"}`) },
		Poll: time.Hour, KeepAlive: 20 * time.Millisecond}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		from, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64)
		_ = s.Serve(r.Context(), w, events.Filter{ProjectID: projectID}, from, err == nil)
	}))
	t.Cleanup(srv.Close)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	lines := make(chan string, 1000)
	go func() {
		defer res.Body.Close()
		defer close(lines)
		sc := bufio.NewScanner(res.Body)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	return lines
}

// nextLine returns the next line starting with prefix, skipping others.
func nextLine(t *testing.T, lines <-chan string, prefix string) string {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("the stream ended before a %q line", prefix)
			}
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-timeout:
			t.Fatalf("no %q line came", prefix)
		}
	}
}

func move(t *testing.T, st store.Store, j *ci.Job, from, to ci.JobStatus) {
	t.Helper()
	if _, err := st.TransitionJob(context.Background(), store.TransitionParams{JobID: j.ID, From: from, To: to, Now: testenv.T0}); err != nil {
		t.Fatal(err)
	}
}

// An idle stream sends keep-alive comments; a stream resumed from an id
// older than the kept log says so before going on.
func TestKeepAliveAndResync(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			st := b.Open(t)
			fx := testenv.Seed(t, st)
			hub := joblog.NewHub()
			live := served(t, st, hub, fx.Project.ID, "")
			nextLine(t, live, ": keep-alive")
			created := fx.JobsByStatus[ci.StatusCreated]
			move(t, st, created, ci.StatusCreated, ci.StatusPending)
			hub.Publish(fx.Project.ID)
			nextLine(t, live, "event: job")
			first := nextLine(t, live, "id: ")
			if l := nextLine(t, live, "data: "); l != `data: {"status":"pending"}` {
				t.Fatalf("data line %q", l)
			}

			// The next event is pruned with the first; a client resuming
			// from the first has missed it.
			move(t, st, created, ci.StatusPending, ci.StatusRunning)
			if _, err := st.PruneStatusEvents(context.Background(), time.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			move(t, st, created, ci.StatusRunning, ci.StatusSuccess)
			resumed := served(t, st, hub, fx.Project.ID, strings.TrimPrefix(first, "id: "))
			if l := nextLine(t, resumed, "event: "); l != "event: resync" {
				t.Fatalf("first event %q", l)
			}
			nextLine(t, resumed, "event: job")
			if l := nextLine(t, resumed, "data: "); l != `data: {"status":"success"}` {
				t.Fatalf("after resync %q", l)
			}
		})
	}
}

// On PostgreSQL an event's id is taken when the change is written, not
// when it commits: a transaction that commits late adds an event below
// ids already sent. The stream still delivers it.
func TestLateCommittedEvent(t *testing.T) {
	testenv.PostgresOnly(t, "only PostgreSQL commits concurrent writers out of id order")
	u, _ := testenv.NewPostgresSchema(t)
	st, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	fx := testenv.Seed(t, st)
	raw, err := sql.Open("pgx", u)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	hub := joblog.NewHub()
	lines := served(t, st, hub, fx.Project.ID, "")
	nextLine(t, lines, ": keep-alive") // the stream is up

	slow, err := raw.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer slow.Rollback()
	early := fx.JobsByStatus[ci.StatusManual]
	if _, err := slow.Exec(`UPDATE jobs SET status = 'pending', updated_at = $1 WHERE id = $2`, testenv.T0.UnixMicro(), early.ID); err != nil {
		t.Fatal(err)
	}
	move(t, st, fx.JobsByStatus[ci.StatusCreated], ci.StatusCreated, ci.StatusPending)
	hub.Publish(fx.Project.ID)
	later := nextLine(t, lines, "id: ")
	if err := slow.Commit(); err != nil {
		t.Fatal(err)
	}
	hub.Publish(fx.Project.ID)
	late := nextLine(t, lines, "id: ")
	a, _ := strconv.ParseInt(strings.TrimPrefix(later, "id: "), 10, 64)
	b, _ := strconv.ParseInt(strings.TrimPrefix(late, "id: "), 10, 64)
	if b >= a {
		t.Fatalf("the late event has id %d, not below %d: the test did not reproduce a late commit", b, a)
	}
}
