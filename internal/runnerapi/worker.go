package runnerapi

import (
	"context"
	"time"

	"gantry/internal/ci"
)

// Watchdog fails jobs whose runner went silent or whose time ran out, with
// GitLab's failure reasons, so no job stays running forever.
type Watchdog struct {
	api      *API
	Interval time.Duration
	// Silent is how long a running job may go without a runner update.
	Silent time.Duration
	// CancelGrace is how long a job may stay canceling without its runner
	// confirming before it is canceled anyway.
	CancelGrace time.Duration
	// Gate, when set, is asked before each periodic sweep; nodes sharing
	// a database sweep only where it says yes (see package lease).
	Gate func() bool
	stop chan struct{}
	done chan struct{}
}

// NewWatchdog checks every interval (default 10 s).
func (a *API) NewWatchdog() *Watchdog {
	return &Watchdog{api: a, Interval: 10 * time.Second, Silent: 15 * time.Minute, CancelGrace: 5 * time.Minute}
}

// Start runs the watchdog until Stop or ctx ends.
func (wd *Watchdog) Start(ctx context.Context) {
	wd.stop, wd.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(wd.done)
		t := time.NewTicker(wd.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-wd.stop:
				return
			case <-t.C:
				wd.Tick(ctx)
			}
		}
	}()
}

// Stop ends the watchdog; safe to call twice.
func (wd *Watchdog) Stop() {
	if wd.stop == nil {
		return
	}
	select {
	case <-wd.stop:
	default:
		close(wd.stop)
	}
	<-wd.done
}

// Tick is one round of the started watchdog: a sweep, if the gate allows.
func (wd *Watchdog) Tick(ctx context.Context) int {
	if wd.Gate != nil && !wd.Gate() {
		return 0
	}
	return wd.Sweep(ctx)
}

// Sweep fails every overdue job once; it returns how many it failed.
func (wd *Watchdog) Sweep(ctx context.Context) int {
	a := wd.api
	now := a.now()
	jobs, err := a.store.TimedOutJobs(ctx, now, wd.Silent)
	if err != nil {
		if ctx.Err() == nil {
			a.log.Warn("watchdog", "err", err)
		}
		return 0
	}
	n := 0
	if stale, err := a.store.StaleCanceling(ctx, now.Add(-wd.CancelGrace)); err == nil {
		for _, j := range stale {
			if _, err := a.store.FinishJob(ctx, finishParams(j.ID, ci.StatusCanceled, "", nil, nil, now)); err == nil {
				n++
				a.jobFinished(j.ID)
				if a.pipelines != nil {
					a.pipelines.Enqueue(j.PipelineID)
				}
			}
		}
	}
	for _, j := range jobs {
		reason := ci.FailureStuckOrTimeout
		if j.TimeoutSeconds != nil && j.StartedAt != nil && now.After(j.StartedAt.Add(time.Duration(*j.TimeoutSeconds)*time.Second)) {
			reason = ci.FailureJobExecutionTimeout
		}
		if _, err := a.store.FinishJob(ctx, finishParams(j.ID, ci.StatusFailed, reason, nil, nil, now)); err != nil {
			continue
		}
		n++
		a.jobFinished(j.ID)
		if a.pipelines != nil {
			a.pipelines.Enqueue(j.PipelineID)
		}
	}
	return n
}
