package storetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func init() {
	extra["StatusEvents"] = testStatusEvents
	extra["Hooks"] = testHooks
	extra["HookDeliveryClaims"] = testHookDeliveryClaims
}

// Every status change is recorded, whichever method makes it, with what
// the job or pipeline looked like at that moment; refused moves are not.
func testStatusEvents(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "build", Stage: "test",
		Status: ci.StatusCreated, Ref: "main", CreatedAt: t0}))
	if evs := ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID})); len(evs) != 0 {
		t.Fatalf("inserting created rows recorded %d events", len(evs))
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: t0.Add(time.Second)}))
	if _, err := st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: t0}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("stale move: %v", err)
	}
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusPending, To: ci.StatusRunning, Now: t0.Add(2 * time.Second)}))
	ok[*ci.Job](t)(st.FinishJob(ctx, store.FinishParams{JobID: j.ID, State: ci.StatusFailed, FailureReason: ci.FailureScript, Now: t0.Add(3 * time.Second)}))
	ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(4*time.Second), func([]ci.ProcJob) ([]ci.Transition, ci.JobStatus) {
		return nil, ci.StatusFailed
	}))
	// Processing again without a change records nothing.
	ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(5*time.Second), func([]ci.ProcJob) ([]ci.Transition, ci.JobStatus) {
		return nil, ci.StatusFailed
	}))

	evs := ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID}))
	type step struct {
		kind     ci.EventKind
		from, to ci.JobStatus
	}
	want := []step{{ci.EventJob, ci.StatusCreated, ci.StatusPending}, {ci.EventJob, ci.StatusPending, ci.StatusRunning},
		{ci.EventJob, ci.StatusRunning, ci.StatusFailed}, {ci.EventPipeline, ci.StatusCreated, ci.StatusFailed}}
	if len(evs) != len(want) {
		t.Fatalf("got %d events, want %d: %+v", len(evs), len(want), evs)
	}
	for i, w := range want {
		e := evs[i]
		if e.Kind != w.kind || e.PreviousStatus != w.from || e.Status != w.to || e.ProjectID != p.ID || e.PipelineID != pl.ID || e.Ref != "main" || e.SHA != "abc" {
			t.Fatalf("event %d = %+v, want %+v", i, e, w)
		}
		if i > 0 && e.ID <= evs[i-1].ID {
			t.Fatalf("ids not ascending: %d after %d", e.ID, evs[i-1].ID)
		}
	}
	run, failed := evs[1], evs[2]
	if run.ObjectID != j.ID || run.Name != "build" || run.Stage != "test" || run.StartedAt == nil || run.FinishedAt != nil || !run.At.Equal(t0.Add(2*time.Second)) {
		t.Fatalf("running event %+v", run)
	}
	if failed.FailureReason != ci.FailureScript || failed.FinishedAt == nil || !failed.CreatedAt.Equal(t0) {
		t.Fatalf("failed event %+v", failed)
	}
	if evs[3].ObjectID != pl.ID || evs[3].FinishedAt == nil {
		t.Fatalf("pipeline event %+v", evs[3])
	}

	// Filters: kind, statuses, after, limit, project.
	if got := ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID, Kind: ci.EventPipeline})); len(got) != 1 || got[0].ID != evs[3].ID {
		t.Fatalf("kind filter: %+v", got)
	}
	got := ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID, Statuses: []ci.JobStatus{ci.StatusFailed, ci.StatusRunning}}))
	if len(got) != 3 || got[0].ID != run.ID {
		t.Fatalf("status filter: %+v", got)
	}
	got = ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID, AfterID: run.ID, Limit: 1}))
	if len(got) != 1 || got[0].ID != failed.ID {
		t.Fatalf("after+limit: %+v", got)
	}
	if got := ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID + 1000})); len(got) != 0 {
		t.Fatalf("another project's events: %+v", got)
	}

	// A pipeline born failed (an invalid configuration) is an event too.
	bad := ok[*ci.Pipeline](t)(st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: "def", Ref: "dev", Status: ci.StatusFailed, Source: ci.SourcePush,
		CreatedAt: t0.Add(6 * time.Second), UpdatedAt: t0.Add(6 * time.Second)}))
	got = ok[[]*ci.StatusEvent](t)(st.StatusEvents(ctx, store.EventFilter{ProjectID: p.ID, AfterID: evs[3].ID}))
	if len(got) != 1 || got[0].ObjectID != bad.ID || got[0].PreviousStatus != "" || got[0].Status != ci.StatusFailed || got[0].SHA != "def" {
		t.Fatalf("born-failed pipeline: %+v", got)
	}

	oldest, latest := ok2(t)(st.EventLogBounds(ctx))
	if oldest != evs[0].ID || latest != got[0].ID {
		t.Fatalf("bounds %d..%d, want %d..%d", oldest, latest, evs[0].ID, got[0].ID)
	}
	// Pruning goes by the time of the change.
	if n := ok[int64](t)(st.PruneStatusEvents(ctx, t0.Add(3*time.Second))); n != 2 {
		t.Fatalf("pruned %d, want 2", n)
	}
	if oldest, _ := ok2(t)(st.EventLogBounds(ctx)); oldest != failed.ID {
		t.Fatalf("oldest after prune %d, want %d", oldest, failed.ID)
	}
}

func ok2(t *testing.T) func(a, b int64, err error) (int64, int64) {
	return func(a, b int64, err error) (int64, int64) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return a, b
	}
}

// Hooks round-trip; a status change creates one pending delivery per hook
// that wants its kind, in its own project only.
func testHooks(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	h := ok[*ci.ProjectHook](t)(st.CreateHook(ctx, ci.ProjectHook{ProjectID: p.ID, URL: "http://127.0.0.1:1/hook", Token: "s3cret",
		JobEvents: true, PushEvents: true, EnableSSLVerification: true, CreatedAt: t0}))
	pipeHook := ok[*ci.ProjectHook](t)(st.CreateHook(ctx, ci.ProjectHook{ProjectID: p.ID, URL: "http://127.0.0.1:1/pipes", PipelineEvents: true, CreatedAt: t0}))
	got := ok[*ci.ProjectHook](t)(st.HookByID(ctx, p.ID, h.ID))
	if got.URL != h.URL || got.Token != "s3cret" || !got.JobEvents || got.PipelineEvents || !got.PushEvents || !got.EnableSSLVerification || !got.CreatedAt.Equal(t0) {
		t.Fatalf("read back %+v", got)
	}
	if _, err := st.HookByID(ctx, p.ID+1000, h.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("another project's hook: %v", err)
	}
	if list := ok[[]*ci.ProjectHook](t)(st.Hooks(ctx, p.ID)); len(list) != 2 || list[0].ID != h.ID {
		t.Fatalf("list %+v", list)
	}
	got.URL, got.PushEvents = "https://example.invalid/x", false
	up := ok[*ci.ProjectHook](t)(st.UpdateHook(ctx, *got))
	if up.URL != "https://example.invalid/x" || up.PushEvents || !up.JobEvents {
		t.Fatalf("updated %+v", up)
	}
	if _, err := st.UpdateHook(ctx, ci.ProjectHook{ID: h.ID, ProjectID: p.ID + 1000, URL: "x"}); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("update elsewhere: %v", err)
	}

	// Another project's job moves: no delivery here.
	_, other, otherPl := seedOtherProject(t, st)
	oj := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: other.ID, PipelineID: otherPl.ID, Kind: ci.KindBuild, Name: "o", Stage: "s", Status: ci.StatusCreated, Ref: "main", CreatedAt: t0}))
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: oj.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: t0}))

	j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: ci.StatusCreated, Ref: "main", CreatedAt: t0}))
	ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: t0.Add(time.Second)}))
	ok[*store.ProcessResult](t)(st.ProcessPipeline(ctx, pl.ID, t0.Add(2*time.Second), func([]ci.ProcJob) ([]ci.Transition, ci.JobStatus) {
		return nil, ci.StatusPending
	}))
	jobDeliveries := ok[[]*ci.HookDelivery](t)(st.HookDeliveries(ctx, h.ID, 10, 0))
	pipeDeliveries := ok[[]*ci.HookDelivery](t)(st.HookDeliveries(ctx, pipeHook.ID, 10, 0))
	if len(jobDeliveries) != 1 || jobDeliveries[0].Kind != ci.EventJob || jobDeliveries[0].State != ci.DeliveryPending || jobDeliveries[0].Attempts != 0 ||
		!jobDeliveries[0].NextAttemptAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("job hook deliveries %+v", jobDeliveries)
	}
	if len(pipeDeliveries) != 1 || pipeDeliveries[0].Kind != ci.EventPipeline {
		t.Fatalf("pipeline hook deliveries %+v", pipeDeliveries)
	}
	next := ok[*time.Time](t)(st.NextHookAttemptAt(ctx))
	if next == nil || !next.Equal(t0.Add(time.Second)) {
		t.Fatalf("next attempt %v", next)
	}

	// Deleting a hook takes its deliveries along.
	if err := st.DeleteHook(ctx, p.ID, pipeHook.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteHook(ctx, p.ID, pipeHook.ID); !errors.Is(err, ci.ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	if left := ok[[]*ci.HookDelivery](t)(st.HookDeliveries(ctx, pipeHook.ID, 10, 0)); len(left) != 0 {
		t.Fatalf("deliveries outlived their hook: %+v", left)
	}
}

func seedOtherProject(t *testing.T, st store.Store) (*ci.User, *ci.Project, *ci.Pipeline) {
	ctx := context.Background()
	u := ok[*ci.User](t)(st.CreateUser(ctx, store.CreateUserParams{Username: "u2", Name: "U Two", Email: "u2@example.com", Now: t0}))
	ns := ok[*ci.Namespace](t)(st.CreateNamespace(ctx, store.CreateNamespaceParams{Name: "G2", Path: "g2", Kind: ci.NamespaceGroup, Visibility: ci.Private, Now: t0}))
	p := ok[*ci.Project](t)(st.CreateProject(ctx, store.CreateProjectParams{NamespaceID: ns.ID, Name: "P2", Path: "p2", Visibility: ci.Private, CreatorID: u.ID, Now: t0}))
	pl := ok[*ci.Pipeline](t)(st.InsertPipeline(ctx, ci.Pipeline{ProjectID: p.ID, SHA: "abc", Ref: "main", Status: ci.StatusCreated, Source: ci.SourcePush, CreatedAt: t0, UpdatedAt: t0}))
	return u, p, pl
}

// Claims lease deliveries: a claimed delivery is not claimed again until
// its lease ends or a retry falls due, concurrent claimers never share
// one, and a worker whose lease was taken over cannot record its outcome.
func testHookDeliveryClaims(t *testing.T, st store.Store) {
	ctx := context.Background()
	_, p, pl := seedProject(t, st)
	h := ok[*ci.ProjectHook](t)(st.CreateHook(ctx, ci.ProjectHook{ProjectID: p.ID, URL: "http://127.0.0.1:1/hook", Token: "tok", JobEvents: true, CreatedAt: t0}))
	const jobs = 12
	for i := range jobs {
		j := ok[*ci.Job](t)(st.InsertJob(ctx, ci.Job{ProjectID: p.ID, PipelineID: pl.ID, Kind: ci.KindBuild, Name: "j", Stage: "s", Status: ci.StatusCreated, Ref: "main", CreatedAt: t0}))
		ok[*ci.Job](t)(st.TransitionJob(ctx, store.TransitionParams{JobID: j.ID, From: ci.StatusCreated, To: ci.StatusPending, Now: t0.Add(time.Duration(i) * time.Millisecond)}))
	}
	if early := ok[[]*store.ClaimedDelivery](t)(st.ClaimHookDeliveries(ctx, t0.Add(-time.Second), t0.Add(time.Minute), 100)); len(early) != 0 {
		t.Fatalf("claimed %d deliveries before they were due", len(early))
	}
	now := t0.Add(time.Second)
	lease := now.Add(time.Minute)
	var mu sync.Mutex
	seen := map[int64]int{}
	var wg sync.WaitGroup
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := st.ClaimHookDeliveries(ctx, now, lease, 2)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, c := range got {
					seen[c.Delivery.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(seen) != jobs {
		t.Fatalf("claimed %d distinct deliveries, want %d", len(seen), jobs)
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("delivery %d claimed %d times", id, n)
		}
	}
	// The lease ends: the deliveries are due again, as a second attempt.
	again := ok[[]*store.ClaimedDelivery](t)(st.ClaimHookDeliveries(ctx, lease, lease.Add(time.Minute), 1))
	if len(again) != 1 {
		t.Fatalf("after the lease: %d claimed", len(again))
	}
	c := again[0]
	if c.Delivery.Attempts != 2 || c.Hook.ID != h.ID || c.Hook.Token != "tok" || c.Event == nil || c.Event.ID != c.Delivery.EventID || c.Event.Status != ci.StatusPending {
		t.Fatalf("claimed %+v / %+v / %+v", c.Delivery, c.Hook, c.Event)
	}
	// The first worker's late report is refused; the current one's lands.
	if err := st.RecordHookAttempt(ctx, store.HookAttempt{DeliveryID: c.Delivery.ID, Attempt: 1, State: ci.DeliveryDelivered, Now: lease}); !errors.Is(err, ci.ErrConflict) {
		t.Fatalf("stale attempt recorded: %v", err)
	}
	status := 500
	retryAt := lease.Add(10 * time.Second)
	if err := st.RecordHookAttempt(ctx, store.HookAttempt{DeliveryID: c.Delivery.ID, Attempt: 2, State: ci.DeliveryPending, NextAttemptAt: retryAt,
		UUID: "u-1", Payload: []byte(`{"a":1}`), ResponseStatus: &status, ResponseExcerpt: "boom", Duration: 1500 * time.Millisecond, Now: lease}); err != nil {
		t.Fatal(err)
	}
	for _, x := range ok[[]*store.ClaimedDelivery](t)(st.ClaimHookDeliveries(ctx, retryAt.Add(-time.Millisecond), retryAt, 100)) {
		if x.Delivery.ID == c.Delivery.ID {
			t.Fatal("a delivery was retried before its time")
		}
	}
	third := ok[[]*store.ClaimedDelivery](t)(st.ClaimHookDeliveries(ctx, retryAt, retryAt.Add(time.Minute), 100))
	var d *store.ClaimedDelivery
	for _, x := range third {
		if x.Delivery.ID == c.Delivery.ID {
			d = x
		}
	}
	// The attempt in flight has no outcome yet: the last one's is cleared.
	if d == nil || d.Delivery.Attempts != 3 || string(d.Delivery.Payload) != `{"a":1}` || d.Delivery.UUID != "u-1" ||
		d.Delivery.ResponseStatus != nil || d.Delivery.ResponseExcerpt != "" || d.Delivery.Duration != nil {
		t.Fatalf("retry claim %+v", d)
	}
	if err := st.RecordHookAttempt(ctx, store.HookAttempt{DeliveryID: d.Delivery.ID, Attempt: 3, State: ci.DeliveryDelivered, NextAttemptAt: retryAt,
		UUID: "u-1", ResponseStatus: new(int), Now: retryAt.Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	log := ok[[]*ci.HookDelivery](t)(st.HookDeliveries(ctx, h.ID, 100, 0))
	if len(log) != jobs || log[0].ID < log[len(log)-1].ID {
		t.Fatalf("log of %d, want %d newest first", len(log), jobs)
	}
	var done *ci.HookDelivery
	for _, x := range log {
		if x.ID == d.Delivery.ID {
			done = x
		}
	}
	if done.State != ci.DeliveryDelivered || done.Attempts != 3 || string(done.Payload) != `{"a":1}` || done.ResponseStatus == nil || *done.ResponseStatus != 0 {
		t.Fatalf("delivered %+v", done)
	}
	// Pruning keeps pending deliveries whatever their age.
	if n := ok[int64](t)(st.PruneHookDeliveries(ctx, retryAt.Add(time.Hour))); n != 1 {
		t.Fatalf("pruned %d, want 1", n)
	}
	if left := ok[[]*ci.HookDelivery](t)(st.HookDeliveries(ctx, h.ID, 100, 0)); len(left) != jobs-1 {
		t.Fatalf("%d left", len(left))
	}
}
