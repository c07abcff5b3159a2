package runnerapi

import (
	"context"
	"errors"
	"slices"
	"sort"
	"sync"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// scope is what a runner may take, loaded once per poll.
type scope struct {
	runner     *ci.Runner
	projects   map[int64]bool
	namespaces map[int64]bool
}

func (s *scope) canTake(c Candidate) bool {
	r := s.runner
	if r.Paused {
		return false
	}
	switch r.Type {
	case ci.ProjectRunner:
		if !s.projects[c.ProjectID] {
			return false
		}
	case ci.GroupRunner:
		ok := false
		for _, n := range c.Chain {
			if s.namespaces[n] {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if r.AccessLevel == "ref_protected" && !c.Protected {
		return false
	}
	if len(c.Tags) == 0 {
		return r.RunUntagged
	}
	for _, t := range c.Tags {
		found := false
		for _, have := range r.TagList {
			if have == t {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (a *API) loadScope(ctx context.Context, r *ci.Runner) (*scope, error) {
	s := &scope{runner: r, projects: map[int64]bool{}, namespaces: map[int64]bool{}}
	if r.Type == ci.InstanceRunner {
		return s, nil
	}
	projects, namespaces, err := a.store.RunnerScope(ctx, r.ID)
	if err != nil {
		return nil, err
	}
	for _, p := range projects {
		s.projects[p] = true
	}
	for _, n := range namespaces {
		s.namespaces[n] = true
	}
	return s, nil
}

// chains caches projects' namespace chains (they change only on transfer).
type chains struct {
	mu sync.Mutex
	m  map[int64][]int64
}

func (c *chains) get(ctx context.Context, st store.Store, projectID int64) ([]int64, error) {
	c.mu.Lock()
	v, ok := c.m[projectID]
	c.mu.Unlock()
	if ok {
		return v, nil
	}
	v, err := st.ProjectNamespaceChain(ctx, projectID)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.m == nil || len(c.m) > 100000 {
		c.m = map[int64][]int64{}
	}
	c.m[projectID] = v
	c.mu.Unlock()
	return v, nil
}

// pendingTTL is how long a claim trusts the last list of projects with
// pending builds. Every claim needs the list, and on PostgreSQL its query
// was a claim's costliest statement after the claim itself.
const pendingTTL = 250 * time.Millisecond

// pendingProjects caches the store's PendingProjects. Projects this node
// learns of through JobsPending are added before any runner is woken, so
// a woken runner never looks at a list that misses its job; RecheckAll
// drops the list. A listed project whose jobs are gone costs one claim
// that finds nothing.
type pendingProjects struct {
	mu    sync.Mutex
	ids   []int64 // ascending
	until time.Time
	adds  uint64 // bumped by add, so a refresh keeps adds made meanwhile
}

func (c *pendingProjects) get(ctx context.Context, st store.Store, now time.Time) ([]int64, error) {
	c.mu.Lock()
	if now.Before(c.until) {
		ids := slices.Clone(c.ids)
		c.mu.Unlock()
		return ids, nil
	}
	adds := c.adds
	c.mu.Unlock()
	ids, err := st.PendingProjects(ctx)
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.adds != adds {
		// A project added during the query may be missing from its answer.
		for _, p := range c.ids {
			ids = insertSorted(ids, p)
		}
	}
	c.ids, c.until = ids, now.Add(pendingTTL)
	return slices.Clone(ids), nil
}

func (c *pendingProjects) add(projectID int64) {
	c.mu.Lock()
	c.ids = insertSorted(c.ids, projectID)
	c.adds++
	c.mu.Unlock()
}

func (c *pendingProjects) drop() {
	c.mu.Lock()
	c.until = time.Time{}
	c.mu.Unlock()
}

func insertSorted(ids []int64, id int64) []int64 {
	i, found := slices.BinarySearch(ids, id)
	if found {
		return ids
	}
	return slices.Insert(ids, i, id)
}

// candidatesPerProject bounds how far into one project's queue a poll looks.
const candidatesPerProject = 25

// claim finds the next job the runner may take and claims it. Projects are
// served fewest-running-jobs first (fair across projects); within a
// project, oldest first. The claim itself is one conditional update, so
// two runners never get the same job.
func (a *API) claim(ctx context.Context, s *scope, managerID int64) (*claimedJob, error) {
	if s.runner.Paused {
		return nil, nil
	}
	projects, err := a.pending.get(ctx, a.store, time.Now())
	if err != nil || len(projects) == 0 {
		return nil, err
	}
	var eligible []int64
	for _, p := range projects {
		switch s.runner.Type {
		case ci.ProjectRunner:
			if !s.projects[p] {
				continue
			}
		case ci.GroupRunner:
			chain, err := a.chains.get(ctx, a.store, p)
			if err != nil {
				return nil, err
			}
			if !(&scope{runner: &ci.Runner{Type: ci.GroupRunner, RunUntagged: true}, namespaces: s.namespaces}).canTake(Candidate{ProjectID: p, Chain: chain}) {
				continue
			}
		}
		eligible = append(eligible, p)
	}
	if len(eligible) == 0 {
		return nil, nil
	}
	if len(eligible) > 1 { // fairness only matters between projects
		running, err := a.store.RunningCounts(ctx, eligible)
		if err != nil {
			return nil, err
		}
		sort.SliceStable(eligible, func(i, j int) bool {
			if running[eligible[i]] != running[eligible[j]] {
				return running[eligible[i]] < running[eligible[j]]
			}
			return eligible[i] < eligible[j]
		})
	}
	maxTimeout := 0
	if s.runner.MaximumTimeout != nil {
		maxTimeout = *s.runner.MaximumTimeout
	}
	for _, p := range eligible {
		token := ci.NewSecret(ci.JobTokenPrefix)
		c, err := a.store.ClaimNext(ctx, store.ClaimNextParams{ProjectID: p, RunnerID: s.runner.ID, ManagerID: managerID,
			RunnerTags: s.runner.TagList, RunUntagged: s.runner.RunUntagged, ProtectedOnly: s.runner.AccessLevel == "ref_protected", TokenDigest: ci.HashToken(token),
			MaxTimeout: maxTimeout, DefaultTimeout: int(defaultJobTimeout / time.Second), Now: a.now()})
		if errors.Is(err, ci.ErrNotFound) {
			continue // nothing this runner may take in that project
		}
		if err != nil {
			return nil, err
		}
		if a.pipelines != nil {
			a.pipelines.Enqueue(c.Job.PipelineID)
		}
		return &claimedJob{Claimed: *c, token: token}, nil
	}
	return nil, nil
}

// defaultJobTimeout is a project's default job timeout (GitLab: 60 minutes).
const defaultJobTimeout = time.Hour

// RecheckAll has every held job request look for work again: wake-ups
// from other nodes may have been lost.
func (a *API) RecheckAll() {
	a.pending.drop()
	a.broker.WakeAll()
}

// JobsPending tells waiting runners about jobs that became pending.
func (a *API) JobsPending(projectID int64, jobIDs []int64) {
	ctx := context.Background()
	jobs, err := a.store.JobsByIDs(ctx, projectID, jobIDs)
	if err != nil {
		a.log.Warn("wake runners: read jobs", "project", projectID, "err", err)
		return
	}
	var builds []ci.PendingBuild
	var pipelineIDs []int64
	for _, j := range jobs {
		if j.Kind != ci.KindBuild {
			continue
		}
		builds = append(builds, ci.PendingBuild{JobID: j.ID, Tags: j.TagList})
		pipelineIDs = append(pipelineIDs, j.PipelineID)
	}
	pls, _ := a.store.PipelinesByIDs(ctx, pipelineIDs)
	for i := range builds {
		if pl := pls[pipelineIDs[i]]; pl != nil {
			builds[i].Protected = pl.Protected
		}
	}
	a.BuildsPending(projectID, builds)
}

// BuildsPending is JobsPending for builds whose tags and protection the
// caller already knows (the pipeline processor read them): nothing is read
// before runners are woken.
func (a *API) BuildsPending(projectID int64, builds []ci.PendingBuild) {
	if len(builds) == 0 {
		return
	}
	chain, _ := a.chains.get(context.Background(), a.store, projectID)
	cands := make([]Candidate, len(builds))
	for i, b := range builds {
		cands[i] = Candidate{ProjectID: projectID, Chain: chain, Tags: b.Tags, Protected: b.Protected}
	}
	a.pending.add(projectID)
	a.broker.Notify(cands)
}
