package runnerapi

import (
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func finishParams(jobID int64, state ci.JobStatus, reason ci.FailureReason, exit *int, coverage *float64, now time.Time) store.FinishParams {
	return store.FinishParams{JobID: jobID, State: state, FailureReason: reason, ExitCode: exit, Coverage: coverage, Now: now}
}

// jobFinished tells the log archiver and live log followers that a job ended.
func (a *API) jobFinished(jobID int64) {
	if a.OnJobFinished != nil {
		a.OnJobFinished(jobID)
	}
}
