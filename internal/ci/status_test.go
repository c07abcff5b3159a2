package ci_test

import (
	"errors"
	"testing"
	"time"

	"gantry/internal/ci"
)

func TestTransitionTable(t *testing.T) {
	legal := [][2]ci.JobStatus{
		{ci.StatusCreated, ci.StatusPending}, {ci.StatusCreated, ci.StatusManual}, {ci.StatusCreated, ci.StatusScheduled},
		{ci.StatusPending, ci.StatusRunning}, {ci.StatusRunning, ci.StatusSuccess}, {ci.StatusRunning, ci.StatusFailed},
		{ci.StatusRunning, ci.StatusCanceling}, {ci.StatusCanceling, ci.StatusCanceled}, {ci.StatusManual, ci.StatusPending},
		{ci.StatusScheduled, ci.StatusManual}, {ci.StatusSkipped, ci.StatusCreated}, {ci.StatusWaitingForResource, ci.StatusPending},
	}
	for _, m := range legal {
		if err := ci.CheckTransition(m[0], m[1]); err != nil {
			t.Errorf("%s→%s refused: %v", m[0], m[1], err)
		}
	}
	illegal := [][2]ci.JobStatus{
		{ci.StatusSuccess, ci.StatusPending}, {ci.StatusFailed, ci.StatusRunning}, {ci.StatusCanceled, ci.StatusRunning},
		{ci.StatusRunning, ci.StatusPending}, {ci.StatusCanceling, ci.StatusSuccess}, {ci.StatusPending, ci.StatusManual},
	}
	for _, m := range illegal {
		if err := ci.CheckTransition(m[0], m[1]); !errors.Is(err, ci.ErrConflict) {
			t.Errorf("%s→%s allowed: %v", m[0], m[1], err)
		}
	}
	if err := ci.CheckTransition("bogus", ci.StatusPending); !errors.Is(err, ci.ErrInvalid) {
		t.Errorf("unknown status: %v", err)
	}
	// Final statuses have no way out; every status is in the table.
	for _, s := range ci.AllStatuses {
		out := ci.TransitionsFrom(s)
		final := s == ci.StatusSuccess || s == ci.StatusFailed || s == ci.StatusCanceled
		if final != (len(out) == 0) {
			t.Errorf("%s: final=%v but %d exits", s, final, len(out))
		}
		for _, to := range out {
			if !to.Valid() {
				t.Errorf("%s→%q: unknown target", s, to)
			}
		}
	}
}

func TestStatusGroups(t *testing.T) {
	if len(ci.AllStatuses) != 13 {
		t.Fatalf("%d statuses", len(ci.AllStatuses))
	}
	if !ci.StatusRunning.Executing() || !ci.StatusCanceling.Executing() || ci.StatusPending.Executing() {
		t.Error("executing group")
	}
	if _, err := ci.ParseJobStatus("runing"); !errors.Is(err, ci.ErrInvalid) {
		t.Error("typo accepted")
	}
	if ci.ParseFailureReason("made_up") != ci.FailureUnknown || ci.ParseFailureReason("script_failure") != ci.FailureScript {
		t.Error("failure reason parsing")
	}
}

func TestDurations(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	q, s, f := t0, t0.Add(2*time.Second), t0.Add(5500*time.Millisecond)
	j := ci.Job{QueuedAt: &q}
	if d := j.Duration(t0); d != nil {
		t.Error("duration before start")
	}
	if d := j.QueuedDuration(t0.Add(time.Second)); *d != 1 {
		t.Errorf("queued while pending %v", *d)
	}
	j.StartedAt, j.FinishedAt = &s, &f
	if *j.Duration(t0.Add(time.Hour)) != 3.5 || *j.QueuedDuration(t0.Add(time.Hour)) != 2 {
		t.Errorf("durations %v %v", *j.Duration(t0), *j.QueuedDuration(t0))
	}
}

func TestPolicy(t *testing.T) {
	priv := &ci.Project{Visibility: ci.Private}
	pub := &ci.Project{Visibility: ci.Public, PublicBuilds: true}
	u := &ci.User{ID: 1}
	admin := &ci.User{ID: 2, Admin: true}
	cases := []struct {
		p            *ci.Project
		v            ci.Viewer
		read, builds bool
	}{
		{priv, ci.Viewer{}, false, false},
		{priv, ci.Viewer{User: u}, false, false},
		{priv, ci.Viewer{User: u, Access: ci.Guest}, true, false},
		{priv, ci.Viewer{User: u, Access: ci.Reporter}, true, true},
		{priv, ci.Viewer{User: admin}, true, true},
		{pub, ci.Viewer{}, true, true},
	}
	for i, c := range cases {
		if ci.CanReadProject(c.p, c.v) != c.read || ci.CanReadBuilds(c.p, c.v) != c.builds {
			t.Errorf("case %d", i)
		}
	}
	if got := ci.RolesUpTo(ci.Developer); len(got) != 4 || got[3] != "developer" {
		t.Errorf("roles %v", got)
	}
}
