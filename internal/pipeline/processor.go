package pipeline

import (
	"context"
	"errors"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// Enqueue asks the processor to process a pipeline. It never blocks: if the
// queue is full the pipeline stays flagged in the store and the next
// resume sweep picks it up.
func (s *Service) Enqueue(pipelineID int64) {
	s.queuedMu.Lock()
	if s.queued == nil {
		s.queued = map[int64]bool{}
	}
	if s.queued[pipelineID] {
		s.queuedMu.Unlock()
		return // already waiting: one run will see every event so far
	}
	s.queued[pipelineID] = true
	s.queuedMu.Unlock()
	select {
	case s.wake <- pipelineID:
	default:
		s.queuedMu.Lock()
		delete(s.queued, pipelineID)
		s.queuedMu.Unlock()
	}
}

// JobsPending tells dispatch of jobs made pending outside processing (a
// played manual job), so held runner requests wake for them.
func (s *Service) JobsPending(projectID int64, jobIDs []int64) {
	if len(jobIDs) > 0 && s.OnJobsPending != nil {
		s.OnJobsPending(projectID, jobIDs)
	}
}

// Start runs the processor until Stop or ctx ends. On start it resumes
// every pipeline left flagged (for example by a crash).
func (s *Service) Start(ctx context.Context) {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if s.started {
		return
	}
	s.started = true
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	go s.loop(ctx)
}

// Stop ends the processor and waits for it; safe to call twice.
func (s *Service) Stop() {
	s.startMu.Lock()
	defer s.startMu.Unlock()
	if !s.started {
		return
	}
	s.started = false
	close(s.stop)
	<-s.done
}

func (s *Service) loop(ctx context.Context) {
	defer close(s.done)
	s.resume(ctx)
	// A slow sweep catches pipelines flagged by other nodes or dropped
	// from a full queue; the fast path is the wake channel.
	sweep := time.NewTicker(5 * time.Second)
	defer sweep.Stop()
	// Delayed jobs: a timer armed for the earliest due one.
	due := time.NewTimer(time.Hour)
	defer due.Stop()
	arm := func() {
		next, err := s.store.NextScheduledAt(ctx)
		d := time.Hour
		if err == nil && next != nil {
			d = max(time.Until(*next), 0)
		}
		due.Reset(d)
	}
	arm()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.stop:
			return
		case id := <-s.wake:
			s.queuedMu.Lock()
			delete(s.queued, id)
			s.queuedMu.Unlock()
			s.processLogged(ctx, id)
			arm()
		case <-sweep.C:
			if s.SweepGate == nil || s.SweepGate() {
				s.resume(ctx)
			}
			arm()
		case <-due.C:
			if _, err := s.store.EnqueueDueScheduled(ctx, s.now()); err != nil && ctx.Err() == nil {
				s.log.Warn("enqueue delayed jobs", "err", err)
			}
			s.resume(ctx)
			arm()
		}
	}
}

func (s *Service) resume(ctx context.Context) {
	ids, err := s.store.PipelinesNeedingProcessing(ctx, 1000)
	if err != nil {
		if ctx.Err() == nil {
			s.log.Warn("resume pipelines", "err", err)
		}
		return
	}
	for _, id := range ids {
		s.processLogged(ctx, id)
	}
}

func (s *Service) processLogged(ctx context.Context, id int64) {
	if err := s.Process(ctx, id); err != nil && ctx.Err() == nil && !errors.Is(err, ci.ErrNotFound) {
		s.log.Warn("process pipeline", "pipeline", id, "err", err)
	}
}

// Process runs one processing step of a pipeline and follows up on what it
// changed: bridges that became pending trigger their downstream pipelines,
// resource groups are granted, and a downstream pipeline's new status is
// mirrored to its bridge.
func (s *Service) Process(ctx context.Context, pipelineID int64) error {
	for attempt := 0; ; attempt++ {
		res, err := s.store.ProcessPipeline(ctx, pipelineID, s.now(), ci.ProcessPipeline)
		if errors.Is(err, ci.ErrConflict) && attempt < 5 {
			continue // a job moved under us; decide again from fresh state
		}
		if err != nil {
			return err
		}
		err = s.followUp(ctx, res)
		if s.OnProcessed != nil {
			s.OnProcessed(res.Pipeline.ProjectID)
		}
		return err
	}
}

func (s *Service) followUp(ctx context.Context, res *store.ProcessResult) error {
	pl := res.Pipeline
	var pending []ci.PendingBuild
	for _, t := range res.Transitions {
		switch {
		case t.Kind == ci.KindBridge && t.To == ci.StatusPending:
			if err := s.trigger(ctx, pl, t.JobID); err != nil {
				s.log.Warn("trigger downstream", "bridge", t.JobID, "err", err)
			}
			s.Enqueue(pl.ID) // the bridge moved again: decide what follows it
		case t.To == ci.StatusPending:
			pending = append(pending, ci.PendingBuild{JobID: t.JobID, Tags: t.Tags, Protected: pl.Protected})
		}
	}
	// Runners are woken first: everything below can wait, they should not.
	if len(pending) > 0 && s.OnBuildsPending != nil {
		s.OnBuildsPending(pl.ProjectID, pending)
	}
	// A job that finished may free a resource group for another pipeline.
	granted, err := s.store.GrantResources(ctx, pl.ProjectID, s.now())
	if err != nil {
		return err
	}
	s.JobsPending(pl.ProjectID, granted)
	if res.StatusChanged && pl.ParentID != nil {
		if err := s.mirrorToBridge(ctx, pl); err != nil {
			return err
		}
	}
	// Jobs granted a resource belong to other pipelines: process those.
	for _, id := range granted {
		if j, err := s.store.JobByID(ctx, pl.ProjectID, id); err == nil {
			s.Enqueue(j.PipelineID)
		}
	}
	return nil
}

// trigger creates the downstream pipeline of a bridge.
func (s *Service) trigger(ctx context.Context, upstream *ci.Pipeline, bridgeID int64) error {
	project, err := s.store.ProjectByID(ctx, upstream.ProjectID)
	if err != nil {
		return err
	}
	bridge, err := s.store.JobByID(ctx, project.ID, bridgeID)
	if err != nil {
		return err
	}
	raw, err := s.store.JobSpec(ctx, bridgeID)
	if err != nil {
		return err
	}
	spec, err := ParseSpec(raw)
	if err != nil || spec.Trigger == nil {
		return s.failBridge(ctx, bridge, ci.FailureInvalidBridgeTrigger)
	}
	var user *ci.User
	if bridge.UserID != nil {
		user, _ = s.store.UserByID(ctx, *bridge.UserID)
	}
	depth := 0
	for p := upstream; p.ParentID != nil && depth <= s.cfg.MaxDownstreamDepth; depth++ {
		if p, err = s.store.PipelineByID(ctx, p.ProjectID, *p.ParentID); err != nil {
			break
		}
	}
	if depth >= s.cfg.MaxDownstreamDepth {
		return s.failBridge(ctx, bridge, ci.FailureMaxDescendantDepth)
	}
	req := CreateRequest{Project: project, Ref: upstream.Ref, Tag: upstream.Tag, SHA: upstream.SHA, Source: ci.SourceParentPipeline, User: user, Parent: upstream}
	if len(spec.Trigger.IncludeLocal) > 0 {
		// A child pipeline: same project and commit, configuration from the include.
		var parts []string
		for _, f := range spec.Trigger.IncludeLocal {
			parts = append(parts, "  - local: "+quoteYAML(f))
		}
		req.Config = []byte("include:\n" + strings.Join(parts, "\n") + "\n")
		req.ConfigPath = "(child pipeline)" // a name no repository file can have
	} else {
		target, err := s.store.ProjectByFullPath(ctx, spec.Trigger.Project)
		if err != nil {
			return s.failBridge(ctx, bridge, ci.FailureDownstreamProjectAbsent)
		}
		if user == nil {
			return s.failBridge(ctx, bridge, ci.FailureInsufficientBridgePerms)
		}
		access, err := s.store.ProjectAccess(ctx, user.ID, target)
		if err != nil {
			return err
		}
		if access < ci.Developer && !user.Admin {
			return s.failBridge(ctx, bridge, ci.FailureInsufficientBridgePerms)
		}
		ref := spec.Trigger.Branch
		if ref == "" {
			ref = target.DefaultBranch
		}
		req = CreateRequest{Project: target, Ref: ref, Source: ci.SourcePipeline, User: user, Parent: upstream}
	}
	down, err := s.Create(ctx, req)
	if down == nil {
		s.log.Info("downstream pipeline not created", "bridge", bridgeID, "err", err)
		return s.failBridge(ctx, bridge, ci.FailureDownstreamCreation)
	}
	if err := s.store.SetDownstream(ctx, bridgeID, down.ID); err != nil {
		return err
	}
	if spec.Trigger.Strategy != "depend" {
		// Without strategy: depend the bridge succeeds once the pipeline exists.
		return s.store.ForceJobStatus(ctx, bridgeID, ci.StatusSuccess, s.now())
	}
	if down.Status == ci.StatusFailed {
		return s.store.ForceJobStatus(ctx, bridgeID, ci.StatusFailed, s.now())
	}
	return s.store.ForceJobStatus(ctx, bridgeID, ci.StatusRunning, s.now())
}

func quoteYAML(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

func (s *Service) failBridge(ctx context.Context, bridge *ci.Job, reason ci.FailureReason) error {
	if _, err := s.store.TransitionJob(ctx, store.TransitionParams{JobID: bridge.ID, From: bridge.Status, To: ci.StatusFailed, FailureReason: reason, Now: s.now()}); err != nil {
		return err
	}
	s.Enqueue(bridge.PipelineID)
	return nil
}

// mirrorToBridge reflects a downstream pipeline's status on its bridge
// (strategy: depend), then processes the upstream pipeline.
func (s *Service) mirrorToBridge(ctx context.Context, down *ci.Pipeline) error {
	bridge, err := s.store.BridgeOf(ctx, down.ID)
	if errors.Is(err, ci.ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	raw, err := s.store.JobSpec(ctx, bridge.ID)
	if err != nil {
		return err
	}
	spec, err := ParseSpec(raw)
	if err != nil || spec.Trigger == nil || spec.Trigger.Strategy != "depend" {
		return nil
	}
	to := bridgeStatusFor(down.Status)
	if to == "" || to == bridge.Status {
		return nil
	}
	if err := s.store.ForceJobStatus(ctx, bridge.ID, to, s.now()); err != nil {
		return err
	}
	s.Enqueue(bridge.PipelineID)
	return nil
}

// bridgeStatusFor maps a downstream pipeline status to its bridge's.
func bridgeStatusFor(p ci.JobStatus) ci.JobStatus {
	switch p {
	case ci.StatusSuccess, ci.StatusFailed, ci.StatusCanceled, ci.StatusManual, ci.StatusScheduled:
		return p
	case ci.StatusSkipped:
		return ci.StatusSuccess
	case ci.StatusCreated, ci.StatusPending, ci.StatusRunning, ci.StatusPreparing, ci.StatusWaitingForResource, ci.StatusCanceling:
		return ci.StatusRunning
	}
	return ""
}
