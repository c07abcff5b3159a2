package ci_test

import (
	"testing"

	"gantry/internal/ci"
)

func TestCompositeStatus(t *testing.T) {
	it := func(s ci.JobStatus, af bool) ci.StatusItem { return ci.StatusItem{Status: s, AllowFailure: af} }
	cases := []struct {
		items []ci.StatusItem
		dag   bool
		want  ci.JobStatus
	}{
		{[]ci.StatusItem{it(ci.StatusSuccess, false), it(ci.StatusSuccess, false)}, false, ci.StatusSuccess},
		{[]ci.StatusItem{it(ci.StatusSuccess, false), it(ci.StatusFailed, true)}, false, ci.StatusSuccess},
		{[]ci.StatusItem{it(ci.StatusSuccess, false), it(ci.StatusFailed, false)}, false, ci.StatusFailed},
		{[]ci.StatusItem{it(ci.StatusSkipped, false)}, false, ci.StatusSkipped},
		{[]ci.StatusItem{it(ci.StatusManual, true), it(ci.StatusSuccess, false)}, false, ci.StatusSuccess},
		{[]ci.StatusItem{it(ci.StatusManual, false), it(ci.StatusSuccess, false)}, false, ci.StatusManual},
		{[]ci.StatusItem{it(ci.StatusRunning, false), it(ci.StatusFailed, false)}, false, ci.StatusRunning},
		{[]ci.StatusItem{it(ci.StatusPending, false), it(ci.StatusCreated, false)}, false, ci.StatusPending},
		{[]ci.StatusItem{it(ci.StatusCreated, false)}, false, ci.StatusCreated},
		{[]ci.StatusItem{it(ci.StatusCanceled, false), it(ci.StatusSuccess, false)}, false, ci.StatusCanceled},
		{[]ci.StatusItem{it(ci.StatusSuccess, false), it(ci.StatusCreated, false)}, false, ci.StatusRunning},
		{[]ci.StatusItem{it(ci.StatusScheduled, false), it(ci.StatusSuccess, false)}, false, ci.StatusScheduled},
		// DAG: a skipped or ignored need skips; an incomplete one waits.
		{[]ci.StatusItem{it(ci.StatusSkipped, false), it(ci.StatusSuccess, false)}, true, ci.StatusSkipped},
		{[]ci.StatusItem{it(ci.StatusManual, true)}, true, ci.StatusSkipped},
		{[]ci.StatusItem{it(ci.StatusRunning, false)}, true, ci.StatusPending},
		{[]ci.StatusItem{it(ci.StatusFailed, true)}, true, ci.StatusSuccess},
	}
	for i, c := range cases {
		if got, _ := ci.CompositeStatus(c.items, c.dag); got != c.want {
			t.Errorf("case %d: got %s want %s", i, got, c.want)
		}
	}
	if _, ok := ci.CompositeStatus(nil, false); ok {
		t.Error("empty composite")
	}
}

func job(id int64, name string, stage int, when string, st ci.JobStatus) ci.ProcJob {
	return ci.ProcJob{ID: id, Name: name, StageIdx: stage, When: when, Status: st}
}

func apply(jobs []ci.ProcJob, ts []ci.Transition) map[string]ci.JobStatus {
	out := map[string]ci.JobStatus{}
	for _, j := range jobs {
		out[j.Name] = j.Status
	}
	for _, tr := range ts {
		for _, j := range jobs {
			if j.ID == tr.JobID {
				out[j.Name] = tr.To
			}
		}
	}
	return out
}

func TestProcessPipelineStages(t *testing.T) {
	jobs := []ci.ProcJob{
		job(1, "build", 0, "on_success", ci.StatusCreated),
		job(2, "test", 1, "on_success", ci.StatusCreated),
		job(3, "cleanup", 2, "always", ci.StatusCreated),
	}
	ts, st := ci.ProcessPipeline(jobs)
	got := apply(jobs, ts)
	if got["build"] != ci.StatusPending || got["test"] != ci.StatusCreated || st != ci.StatusPending {
		t.Fatalf("first pass %v %s", got, st)
	}
	// build fails: test is skipped, cleanup (always) runs.
	jobs[0].Status = ci.StatusFailed
	ts, st = ci.ProcessPipeline(jobs)
	got = apply(jobs, ts)
	if got["test"] != ci.StatusSkipped || got["cleanup"] != ci.StatusPending || st != ci.StatusRunning {
		t.Fatalf("after failure %v %s", got, st)
	}
	// Idempotent: processing the result again changes nothing.
	for i := range jobs {
		jobs[i].Status = got[jobs[i].Name]
	}
	if ts, _ := ci.ProcessPipeline(jobs); len(ts) != 0 {
		t.Fatalf("not idempotent: %v", ts)
	}
	jobs[2].Status = ci.StatusSuccess
	if _, st := ci.ProcessPipeline(jobs); st != ci.StatusFailed {
		t.Fatalf("final %s", st)
	}
}

func TestProcessPipelineAllowFailureManualNeeds(t *testing.T) {
	lint := job(1, "lint", 0, "on_success", ci.StatusFailed)
	lint.AllowFailure = true
	deploy := job(3, "deploy", 2, "manual", ci.StatusCreated)
	deploy.AllowFailure = true
	fast := job(4, "fast", 2, "on_success", ci.StatusCreated)
	fast.DAG, fast.Needs = true, []string{"build"}
	nothing := job(5, "early", 2, "on_success", ci.StatusCreated)
	nothing.DAG = true
	jobs := []ci.ProcJob{lint, job(2, "build", 0, "on_success", ci.StatusSuccess), job(6, "test", 1, "on_success", ci.StatusCreated), deploy, fast, nothing}
	ts, st := ci.ProcessPipeline(jobs)
	got := apply(jobs, ts)
	if got["test"] != ci.StatusPending || got["fast"] != ci.StatusPending || got["early"] != ci.StatusPending || got["deploy"] != ci.StatusCreated {
		t.Fatalf("%v", got)
	}
	if st != ci.StatusRunning {
		t.Fatalf("status %s", st)
	}
	for i := range jobs {
		jobs[i].Status = got[jobs[i].Name]
		if jobs[i].Status == ci.StatusPending {
			jobs[i].Status = ci.StatusSuccess
		}
	}
	ts, st = ci.ProcessPipeline(jobs)
	got = apply(jobs, ts)
	// A manual job that may fail blocks nothing: the pipeline succeeds.
	if got["deploy"] != ci.StatusManual || st != ci.StatusSuccess {
		t.Fatalf("manual: %v %s", got, st)
	}
	// A blocking manual job (allow_failure false) holds the pipeline in manual.
	jobs[3].AllowFailure = false
	jobs[3].Status = ci.StatusManual
	if _, st := ci.ProcessPipeline(jobs); st != ci.StatusManual {
		t.Fatalf("blocking manual: %s", st)
	}
}

func TestProcessPipelineWhenVariants(t *testing.T) {
	jobs := []ci.ProcJob{
		job(1, "a", 0, "on_success", ci.StatusSuccess),
		job(2, "onfail", 1, "on_failure", ci.StatusCreated),
		job(3, "later", 1, "delayed", ci.StatusCreated),
	}
	rg := job(4, "deploy", 1, "on_success", ci.StatusCreated)
	rg.ResourceGroup = "prod"
	jobs = append(jobs, rg)
	got := apply(jobs, first(ci.ProcessPipeline(jobs)))
	if got["onfail"] != ci.StatusSkipped || got["later"] != ci.StatusScheduled || got["deploy"] != ci.StatusWaitingForResource {
		t.Fatalf("%v", got)
	}
}

func first(ts []ci.Transition, _ ci.JobStatus) []ci.Transition { return ts }
