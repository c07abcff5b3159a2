package ci

import "sort"

// Pipeline processing, as GitLab's atomic processing service does it: a
// created job is decided once everything it waits for is complete — the
// jobs of earlier stages, or, with `needs`, exactly the needed jobs. The
// decision depends on its `when` and on the composite status of what it
// waited for. Everything here is pure; the store applies the result in one
// transaction, which makes processing idempotent and crash-safe.

// StatusItem is one job's contribution to a composite status.
type StatusItem struct {
	Status       JobStatus
	AllowFailure bool
}

// CompositeStatus folds statuses the way GitLab's Composite does: failed or
// canceled jobs that may fail count as "success with warnings", manual jobs
// that may fail are ignored. dag applies the stricter rule for `needs`.
// ok is false when items is empty.
func CompositeStatus(items []StatusItem, dag bool) (status JobStatus, ok bool) {
	if len(items) == 0 {
		return "", false
	}
	const (
		warn    = "success_with_warnings"
		ignored = "ignored"
	)
	set := map[string]bool{}
	for _, it := range items {
		switch {
		case it.AllowFailure && (it.Status == StatusFailed || it.Status == StatusCanceled):
			set[warn] = true
		case it.AllowFailure && it.Status == StatusManual:
			set[ignored] = true
		case it.Status == StatusCanceling:
			// Still executing until the runner confirms.
			set[string(StatusRunning)] = true
		default:
			set[string(it.Status)] = true
		}
	}
	only := func(names ...string) bool {
		n := 0
		for _, name := range names {
			if set[name] {
				n++
			}
		}
		return n > 0 && n == len(set)
	}
	any := func(names ...string) bool {
		for _, name := range names {
			if set[name] {
				return true
			}
		}
		return false
	}
	s := func(x JobStatus) string { return string(x) }
	switch {
	case dag && any(s(StatusSkipped), ignored):
		return StatusSkipped, true
	case dag && !only(s(StatusSuccess), s(StatusFailed), s(StatusCanceled), s(StatusSkipped), warn):
		return StatusPending, true
	case only(s(StatusSkipped), ignored):
		return StatusSkipped, true
	case only(s(StatusSuccess), s(StatusSkipped), warn, ignored):
		return StatusSuccess, true
	case only(s(StatusCreated), warn, ignored):
		return StatusCreated, true
	case only(s(StatusPreparing), warn, ignored):
		return StatusPreparing, true
	case only(s(StatusCanceled), s(StatusSuccess), s(StatusSkipped), warn, ignored):
		return StatusCanceled, true
	case only(s(StatusPending), s(StatusCreated), s(StatusSkipped), warn, ignored):
		return StatusPending, true
	case any(s(StatusRunning), s(StatusPending)):
		return StatusRunning, true
	case any(s(StatusWaitingForResource)):
		return StatusWaitingForResource, true
	case any(s(StatusWaitingForCallback)):
		return StatusWaitingForCallback, true
	case any(s(StatusManual)):
		return StatusManual, true
	case any(s(StatusScheduled)):
		return StatusScheduled, true
	case any(s(StatusPreparing)):
		return StatusPreparing, true
	case any(s(StatusCreated)):
		return StatusRunning, true
	}
	return StatusFailed, true
}

// ProcJob is what processing needs to know about a job.
type ProcJob struct {
	ID            int64
	Name          string
	StageIdx      int
	Status        JobStatus
	AllowFailure  bool
	When          string // on_success, on_failure, always, manual, delayed
	DAG           bool   // scheduled by `needs` rather than by stage
	Needs         []string
	ResourceGroup string
	Kind          JobKind
	Tags          []string // the runner tags the job asks for
}

// Transition is one decided move.
type Transition struct {
	JobID    int64
	From, To JobStatus
	Kind     JobKind
	Tags     []string // the job's runner tags, for waking runners
}

// PendingBuild is a build job that has just become pending, with what
// dispatch matches runners against, so waking them needs no read.
type PendingBuild struct {
	JobID     int64
	Tags      []string
	Protected bool // its pipeline runs for a protected ref
}

// ProcessPipeline decides every created job that can be decided now, in
// stage order and, within a stage, in needs order, and returns the moves
// and the pipeline's resulting status. Jobs must exclude retried ones.
func ProcessPipeline(jobs []ProcJob) ([]Transition, JobStatus) {
	cur := make([]ProcJob, len(jobs))
	copy(cur, jobs)
	sort.SliceStable(cur, func(a, b int) bool { return cur[a].StageIdx < cur[b].StageIdx })
	byName := map[string][]int{}
	for i, j := range cur {
		byName[j.Name] = append(byName[j.Name], i)
	}
	var out []Transition
	// Decisions can unlock jobs earlier in the slice (needs on later
	// stages), so repeat until nothing moves; each pass decides at least
	// one job or stops, so len(cur)+1 passes bound it.
	for pass := 0; pass <= len(cur); pass++ {
		moved := false
		for i := range cur {
			j := &cur[i]
			if j.Status != StatusCreated {
				continue
			}
			prev, ready := previousStatus(cur, byName, i)
			if !ready {
				continue
			}
			to := decide(j, prev)
			out = append(out, Transition{JobID: j.ID, From: j.Status, To: to, Kind: j.Kind, Tags: j.Tags})
			j.Status = to
			moved = true
		}
		if !moved {
			break
		}
	}
	items := make([]StatusItem, len(cur))
	for i, j := range cur {
		items[i] = StatusItem{Status: j.Status, AllowFailure: j.AllowFailure}
	}
	status, ok := CompositeStatus(items, false)
	if !ok {
		status = StatusSkipped
	}
	return out, status
}

// previousStatus is the composite status of what job i waits for, and
// whether that is complete.
func previousStatus(cur []ProcJob, byName map[string][]int, i int) (JobStatus, bool) {
	j := cur[i]
	var items []StatusItem
	if j.DAG {
		for _, n := range j.Needs {
			for _, k := range byName[n] {
				items = append(items, StatusItem{Status: cur[k].Status, AllowFailure: cur[k].AllowFailure})
			}
		}
	} else {
		for _, other := range cur {
			if other.StageIdx < j.StageIdx {
				items = append(items, StatusItem{Status: other.Status, AllowFailure: other.AllowFailure})
			}
		}
	}
	status, ok := CompositeStatus(items, j.DAG)
	if !ok {
		return StatusSuccess, true
	}
	return status, status.Completed()
}

// decide applies `when` to the completed status of the predecessors.
func decide(j *ProcJob, prev JobStatus) JobStatus {
	valid := false
	switch j.When {
	case "on_failure":
		valid = prev == StatusFailed
	case "always":
		valid = prev == StatusSuccess || prev == StatusFailed || prev == StatusSkipped
	default: // on_success, manual, delayed
		valid = prev == StatusSuccess || (!j.DAG && prev == StatusSkipped)
	}
	if !valid {
		return StatusSkipped
	}
	switch {
	case j.When == "delayed":
		return StatusScheduled
	case j.When == "manual":
		return StatusManual
	case j.ResourceGroup != "":
		return StatusWaitingForResource
	}
	return StatusPending
}
