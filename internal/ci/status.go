// Package ci holds gantry's domain: typed job and pipeline statuses, the
// transition table, access levels and the error kinds every layer shares.
// It imports neither net/http nor database/sql.
package ci

import "fmt"

// JobStatus is the lifecycle state of a job (build or bridge), with GitLab's
// vocabulary.
type JobStatus string

const (
	StatusCreated            JobStatus = "created"
	StatusWaitingForResource JobStatus = "waiting_for_resource"
	StatusPreparing          JobStatus = "preparing"
	StatusWaitingForCallback JobStatus = "waiting_for_callback"
	StatusPending            JobStatus = "pending"
	StatusRunning            JobStatus = "running"
	StatusSuccess            JobStatus = "success"
	StatusFailed             JobStatus = "failed"
	StatusCanceling          JobStatus = "canceling"
	StatusCanceled           JobStatus = "canceled"
	StatusSkipped            JobStatus = "skipped"
	StatusManual             JobStatus = "manual"
	StatusScheduled          JobStatus = "scheduled"
)

// AllStatuses lists every status in GitLab's order; it is also the set of
// valid `scope` values on the job lists.
var AllStatuses = []JobStatus{
	StatusCreated, StatusWaitingForResource, StatusPreparing, StatusWaitingForCallback,
	StatusPending, StatusRunning, StatusSuccess, StatusFailed, StatusCanceling,
	StatusCanceled, StatusSkipped, StatusManual, StatusScheduled,
}

// Valid reports whether s is one of the known statuses.
func (s JobStatus) Valid() bool {
	for _, k := range AllStatuses {
		if k == s {
			return true
		}
	}
	return false
}

// ParseJobStatus converts a string into a JobStatus, rejecting unknown values.
func ParseJobStatus(v string) (JobStatus, error) {
	s := JobStatus(v)
	if !s.Valid() {
		return "", fmt.Errorf("%w: unknown job status %q", ErrInvalid, v)
	}
	return s, nil
}

func (s JobStatus) String() string { return string(s) }

// Label is the status as GitLab's pages word it (detailed_status).
func (s JobStatus) Label() string {
	switch s {
	case StatusSuccess:
		return "passed"
	case StatusManual:
		return "blocked"
	case StatusScheduled:
		return "delayed"
	case StatusWaitingForResource:
		return "waiting"
	}
	return string(s)
}

// Executing statuses keep a job token valid.
func (s JobStatus) Executing() bool { return s == StatusRunning || s == StatusCanceling }

// Completed statuses are final for processing purposes.
func (s JobStatus) Completed() bool {
	switch s {
	case StatusSuccess, StatusFailed, StatusCanceled, StatusSkipped:
		return true
	}
	return false
}

// Active statuses are queued or executing.
func (s JobStatus) Active() bool {
	switch s {
	case StatusWaitingForResource, StatusPreparing, StatusWaitingForCallback, StatusPending, StatusRunning:
		return true
	}
	return false
}

// transitions is the table of legal moves. A move not listed here is refused
// by CanTransition; it mirrors GitLab's state machine for builds (events
// actionize, schedule, enqueue, run, skip, success, drop, cancel, force_cancel)
// collapsed into from→to pairs.
var transitions = map[JobStatus][]JobStatus{
	StatusCreated:            {StatusManual, StatusScheduled, StatusPending, StatusWaitingForResource, StatusPreparing, StatusSkipped, StatusSuccess, StatusFailed, StatusCanceled, StatusRunning},
	StatusWaitingForResource: {StatusPending, StatusPreparing, StatusSkipped, StatusSuccess, StatusFailed, StatusCanceled},
	StatusPreparing:          {StatusPending, StatusSkipped, StatusSuccess, StatusFailed, StatusCanceled, StatusRunning},
	StatusWaitingForCallback: {StatusSuccess, StatusFailed, StatusCanceled},
	StatusPending:            {StatusRunning, StatusSkipped, StatusSuccess, StatusFailed, StatusCanceled},
	StatusRunning:            {StatusSuccess, StatusFailed, StatusCanceling, StatusCanceled},
	StatusCanceling:          {StatusCanceled},
	StatusSkipped:            {StatusCreated, StatusPending, StatusWaitingForResource, StatusPreparing},
	StatusManual:             {StatusCreated, StatusPending, StatusWaitingForResource, StatusPreparing, StatusFailed, StatusCanceled},
	StatusScheduled:          {StatusManual, StatusPending, StatusWaitingForResource, StatusPreparing, StatusFailed, StatusCanceled},
	StatusSuccess:            nil,
	StatusFailed:             nil,
	StatusCanceled:           nil,
}

// CanTransition reports whether a job may move from one status to another.
func CanTransition(from, to JobStatus) bool {
	for _, t := range transitions[from] {
		if t == to {
			return true
		}
	}
	return false
}

// CheckTransition returns an ErrConflict-kinded error for an illegal move.
func CheckTransition(from, to JobStatus) error {
	if !from.Valid() || !to.Valid() {
		return fmt.Errorf("%w: unknown status in %q→%q", ErrInvalid, from, to)
	}
	if !CanTransition(from, to) {
		return fmt.Errorf("%w: job cannot move from %s to %s", ErrConflict, from, to)
	}
	return nil
}

// TransitionsFrom returns the statuses reachable in one step (for tests).
func TransitionsFrom(s JobStatus) []JobStatus { return append([]JobStatus(nil), transitions[s]...) }

// FailureReason is GitLab's typed failure_reason.
type FailureReason string

const (
	FailureUnknown                 FailureReason = "unknown_failure"
	FailureScript                  FailureReason = "script_failure"
	FailureAPI                     FailureReason = "api_failure"
	FailureStuckOrTimeout          FailureReason = "stuck_or_timeout_failure"
	FailureRunnerSystem            FailureReason = "runner_system_failure"
	FailureMissingDependency       FailureReason = "missing_dependency_failure"
	FailureRunnerUnsupported       FailureReason = "runner_unsupported"
	FailureStaleSchedule           FailureReason = "stale_schedule"
	FailureJobExecutionTimeout     FailureReason = "job_execution_timeout"
	FailureArchived                FailureReason = "archived_failure"
	FailureUnmetPrerequisites      FailureReason = "unmet_prerequisites"
	FailureScheduler               FailureReason = "scheduler_failure"
	FailureDataIntegrity           FailureReason = "data_integrity_failure"
	FailureNoMatchingRunner        FailureReason = "no_matching_runner"
	FailureTraceSizeExceeded       FailureReason = "trace_size_exceeded"
	FailureNoUpdatesCanceling      FailureReason = "no_updates_canceling"
	FailureServerTimeoutCanceling  FailureReason = "server_timeout_canceling"
	FailureRunnerConfiguration     FailureReason = "runner_configuration_error"
	FailureDownstreamCreation      FailureReason = "downstream_pipeline_creation_failed"
	FailureInvalidBridgeTrigger    FailureReason = "invalid_bridge_trigger"
	FailureDownstreamProjectAbsent FailureReason = "downstream_bridge_project_not_found"
	FailureInsufficientBridgePerms FailureReason = "insufficient_bridge_permissions"
	FailureMaxDescendantDepth      FailureReason = "reached_max_descendant_pipelines_depth"
)

var failureReasons = map[FailureReason]bool{}

func init() {
	for _, r := range []FailureReason{FailureUnknown, FailureScript, FailureAPI, FailureStuckOrTimeout,
		FailureRunnerSystem, FailureMissingDependency, FailureRunnerUnsupported, FailureStaleSchedule,
		FailureJobExecutionTimeout, FailureArchived, FailureUnmetPrerequisites, FailureScheduler,
		FailureDataIntegrity, FailureNoMatchingRunner, FailureTraceSizeExceeded, FailureNoUpdatesCanceling,
		FailureServerTimeoutCanceling, FailureRunnerConfiguration, FailureDownstreamCreation,
		FailureInvalidBridgeTrigger, FailureDownstreamProjectAbsent, FailureInsufficientBridgePerms,
		FailureMaxDescendantDepth} {
		failureReasons[r] = true
	}
}

// Valid reports whether r is a known failure reason.
func (r FailureReason) Valid() bool { return failureReasons[r] }

// ParseFailureReason maps a runner-sent reason to a known one; unknown values
// become unknown_failure, which is what GitLab stores for reasons it does not know.
func ParseFailureReason(v string) FailureReason {
	r := FailureReason(v)
	if r.Valid() {
		return r
	}
	return FailureUnknown
}
