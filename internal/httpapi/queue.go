package httpapi

import (
	"context"
	"net/http"
	"slices"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// QueueInfo is gantry's own answer to "why is my job still pending?".
type QueueInfo struct {
	JobID                 int64  `json:"job_id"`
	Status                string `json:"status"`
	Position              *int   `json:"position"`
	Reason                string `json:"reason"`
	MatchingRunners       int    `json:"matching_runners"`
	OnlineMatchingRunners int    `json:"online_matching_runners"`
	IdleMatchingRunners   int    `json:"idle_matching_runners"`
}

// Queue reasons.
const (
	reasonNotPending = "not_pending"
	reasonNoRunner   = "no_online_runner_matches"
	reasonPaused     = "matching_runners_paused"
	reasonBusy       = "matching_runners_busy"
	reasonWaiting    = "waiting_for_a_runner_to_poll"
)

// runnerMayTake mirrors dispatch's matching: scope, tags and run_untagged.
func (a *API) runnerMayTake(ctx context.Context, rn *ci.Runner, j *ci.Job, chain []int64) (bool, error) {
	switch rn.Type {
	case ci.ProjectRunner, ci.GroupRunner:
		projects, namespaces, err := a.store.RunnerScope(ctx, rn.ID)
		if err != nil {
			return false, err
		}
		if rn.Type == ci.ProjectRunner && !slices.Contains(projects, j.ProjectID) {
			return false, nil
		}
		if rn.Type == ci.GroupRunner {
			ok := false
			for _, n := range namespaces {
				if slices.Contains(chain, n) {
					ok = true
				}
			}
			if !ok {
				return false, nil
			}
		}
	}
	if len(j.TagList) == 0 {
		return rn.RunUntagged, nil
	}
	for _, t := range j.TagList {
		if !slices.Contains(rn.TagList, t) {
			return false, nil
		}
	}
	return true, nil
}

// GET /projects/:id/jobs/:job_id/queue (gantry's extension)
func (a *API) handleJobQueue(w http.ResponseWriter, r *http.Request) error {
	_, j, err := a.jobAction(r, ci.KindBuild)
	if err != nil {
		return err
	}
	out, err := a.Queue(r.Context(), j)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// Queue explains where a job stands in the queue: its position while
// pending and why no runner has taken it yet.
func (a *API) Queue(ctx context.Context, j *ci.Job) (QueueInfo, error) {
	out := QueueInfo{JobID: j.ID, Status: string(j.Status)}
	if j.Status != ci.StatusPending {
		out.Reason = reasonNotPending
		return out, nil
	}
	ahead, err := a.store.PendingAhead(ctx, j.ID)
	if err != nil {
		return out, err
	}
	pos := ahead + 1
	out.Position = &pos
	chain, err := a.store.ProjectNamespaceChain(ctx, j.ProjectID)
	if err != nil {
		return out, err
	}
	runners, err := a.store.ListRunners(ctx, store.RunnerFilter{Limit: 100000})
	if err != nil {
		return out, err
	}
	busy, err := a.store.ExecutingByRunner(ctx)
	if err != nil {
		return out, err
	}
	now := a.now()
	paused := 0
	for _, rn := range runners {
		ok, err := a.runnerMayTake(ctx, rn, j, chain)
		if err != nil {
			return out, err
		}
		if !ok {
			continue
		}
		out.MatchingRunners++
		if rn.Paused {
			paused++
			continue
		}
		if ci.RunnerContactStatus(rn.CreatedAt, rn.ContactedAt, false, now) != "online" {
			continue
		}
		out.OnlineMatchingRunners++
		if busy[rn.ID] == 0 {
			out.IdleMatchingRunners++
		}
	}
	switch {
	case out.MatchingRunners > 0 && paused == out.MatchingRunners:
		out.Reason = reasonPaused
	case out.OnlineMatchingRunners == 0:
		out.Reason = reasonNoRunner
	case out.IdleMatchingRunners == 0:
		out.Reason = reasonBusy
	default:
		out.Reason = reasonWaiting
	}
	return out, nil
}
