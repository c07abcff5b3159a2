package httpapi

import (
	"net/http"
	"slices"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// queueEntity is gantry's own answer to "why is my job still pending?".
type queueEntity struct {
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
func (a *API) runnerMayTake(r *http.Request, rn *ci.Runner, j *ci.Job, chain []int64) (bool, error) {
	switch rn.Type {
	case ci.ProjectRunner, ci.GroupRunner:
		projects, namespaces, err := a.store.RunnerScope(r.Context(), rn.ID)
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
	out := queueEntity{JobID: j.ID, Status: string(j.Status)}
	if j.Status != ci.StatusPending {
		out.Reason = reasonNotPending
		writeJSON(w, http.StatusOK, out)
		return nil
	}
	ctx := r.Context()
	ahead, err := a.store.PendingAhead(ctx, j.ID)
	if err != nil {
		return err
	}
	pos := ahead + 1
	out.Position = &pos
	chain, err := a.store.ProjectNamespaceChain(ctx, j.ProjectID)
	if err != nil {
		return err
	}
	runners, err := a.store.ListRunners(ctx, store.RunnerFilter{Limit: 100000})
	if err != nil {
		return err
	}
	busy, err := a.store.ExecutingByRunner(ctx)
	if err != nil {
		return err
	}
	now := a.now()
	paused := 0
	for _, rn := range runners {
		ok, err := a.runnerMayTake(r, rn, j, chain)
		if err != nil {
			return err
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
	writeJSON(w, http.StatusOK, out)
	return nil
}
