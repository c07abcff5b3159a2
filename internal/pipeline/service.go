// Package pipeline turns commits into pipelines and moves them along: it
// compiles .gitlab-ci.yml, creates the pipeline and its jobs, and processes
// them event by event (a job changed → its pipeline is processed), creating
// downstream pipelines for bridges and mirroring their status back.
package pipeline

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"gantry/internal/ci"
	"gantry/internal/ciconfig"
	"gantry/internal/store"
)

// Source reads a project's repository.
type Source interface {
	ReadFile(ctx context.Context, projectID int64, sha, path string) ([]byte, error)
	Exists(ctx context.Context, projectID int64, sha, glob string) (bool, error)
	ChangedPaths(ctx context.Context, projectID int64, before, after string) ([]string, error)
	Commit(ctx context.Context, projectID int64, sha string) (*ci.Commit, error)
	ResolveRef(ctx context.Context, projectID int64, ref string) (string, error)
}

// ErrFileMissing is what Source.ReadFile wraps for an absent file.
var ErrFileMissing = errors.New("file missing")

// Errors the API maps to GitLab's 400 answers.
var (
	ErrNoConfig      = errors.New("Missing CI config file")
	ErrNoJobs        = errors.New("Pipeline will not run for the selected trigger. The rules configuration prevented any jobs from being added to the pipeline.")
	ErrRefNotFound   = errors.New("Reference not found")
	ErrWorkflow      = errors.New("Pipeline filtered out by workflow rules.")
	ErrInvalidConfig = errors.New("invalid CI configuration")
)

// ConfigError carries the compiler's located errors.
type ConfigError struct{ Errs error }

func (e *ConfigError) Error() string { return e.Errs.Error() }
func (e *ConfigError) Unwrap() error { return ErrInvalidConfig }

// Config tunes the service.
type Config struct {
	ExternalURL string
	ConfigPath  string // default .gitlab-ci.yml
	Limits      ciconfig.Limits
	// MaxDownstreamDepth bounds parent→child nesting.
	MaxDownstreamDepth int
}

// Service creates and processes pipelines.
type Service struct {
	cfg   Config
	store store.Store
	src   Source
	log   *slog.Logger
	now   func() time.Time

	wake     chan int64
	queuedMu sync.Mutex
	queued   map[int64]bool // ids in wake, so duplicates coalesce
	stop     chan struct{}
	done     chan struct{}
	startMu  sync.Mutex
	started  bool

	// Hooks for other parts (dispatch wakes runners when jobs become pending).
	OnJobsPending func(projectID int64, jobIDs []int64)
	// OnBuildsPending is OnJobsPending for builds whose processing already
	// read what dispatch needs of them.
	OnBuildsPending func(projectID int64, builds []ci.PendingBuild)
	// OnProcessed hears of every processing run of a project's pipeline.
	// Every job move leads to one, so it is where status changes (recorded
	// as status events by the store) are announced.
	OnProcessed func(projectID int64)
	// OnDefaultBranchMoved hears of every push that moves or deletes the
	// project's default branch (agent configurations live there).
	OnDefaultBranchMoved func(ctx context.Context, project *ci.Project)
	// SweepGate, when set, is asked before each periodic resume sweep;
	// nodes sharing a database sweep only where it says yes (see package
	// lease). Processing one pipeline is safe anywhere: it locks the row.
	SweepGate func() bool
}

// New builds the service; Start runs its processor.
func New(cfg Config, st store.Store, src Source, log *slog.Logger, now func() time.Time) *Service {
	if cfg.ConfigPath == "" {
		cfg.ConfigPath = ".gitlab-ci.yml"
	}
	if cfg.MaxDownstreamDepth == 0 {
		cfg.MaxDownstreamDepth = 2
	}
	if now == nil {
		now = time.Now
	}
	if log == nil {
		log = slog.Default()
	}
	return &Service{cfg: cfg, store: st, src: src, log: log, now: now, wake: make(chan int64, 4096)}
}

// CreateRequest describes a pipeline to create.
type CreateRequest struct {
	Project   *ci.Project
	Ref       string // branch or tag name (no refs/ prefix)
	Tag       bool
	SHA       string // resolved from Ref when empty
	BeforeSHA string
	Source    ci.PipelineSource
	User      *ci.User
	Variables []store.Variable
	// Config overrides the file read from the repository (child pipelines).
	Config     []byte
	ConfigPath string
	Parent     *ci.Pipeline
}

const zeroSHA = "0000000000000000000000000000000000000000"

// Create compiles the configuration at the commit and stores the pipeline.
// An invalid configuration yields a failed pipeline carrying the errors
// and a *ConfigError; no configuration yields ErrNoConfig.
func (s *Service) Create(ctx context.Context, req CreateRequest) (*ci.Pipeline, error) {
	p := req.Project
	if req.SHA == "" {
		sha, err := s.src.ResolveRef(ctx, p.ID, req.Ref)
		if err != nil {
			return nil, ErrRefNotFound
		}
		req.SHA = sha
	}
	commit, err := s.src.Commit(ctx, p.ID, req.SHA)
	if err != nil {
		return nil, fmt.Errorf("commit %s: %w", req.SHA, err)
	}
	if err := s.store.UpsertCommit(ctx, p.ID, *commit); err != nil {
		return nil, err
	}
	path := req.ConfigPath
	if path == "" {
		path = s.cfg.ConfigPath
	}
	content := req.Config
	if content == nil {
		content, err = s.src.ReadFile(ctx, p.ID, req.SHA, path)
		if errors.Is(err, ErrFileMissing) {
			return nil, ErrNoConfig
		}
		if err != nil {
			return nil, err
		}
	}
	protected, err := s.RefProtected(ctx, p.ID, req.Ref, req.Tag)
	if err != nil {
		return nil, err
	}
	vars := s.predefined(req, commit)
	vars["CI_COMMIT_REF_PROTECTED"] = strconv.FormatBool(protected)
	for _, v := range req.Variables {
		vars[v.Key] = v.Value
	}
	var changed []string
	if req.BeforeSHA != "" && req.BeforeSHA != zeroSHA {
		if changed, err = s.src.ChangedPaths(ctx, p.ID, req.BeforeSHA, req.SHA); err != nil {
			changed = nil
		}
	}
	in := ciconfig.Input{
		Path: path, Content: content, Variables: vars, ChangedPaths: changed, Limits: s.cfg.Limits,
		ReadFile: func(f string) ([]byte, error) { return s.src.ReadFile(ctx, p.ID, req.SHA, strings.TrimPrefix(f, "/")) },
		Exists: func(glob string) bool {
			ok, _ := s.src.Exists(ctx, p.ID, req.SHA, glob)
			return ok
		},
	}
	now := s.now()
	base := ci.Pipeline{ProjectID: p.ID, SHA: req.SHA, BeforeSHA: req.BeforeSHA, Ref: req.Ref, Tag: req.Tag, Status: ci.StatusCreated,
		Source: req.Source, CreatedAt: now, UpdatedAt: now, Protected: protected}
	if base.BeforeSHA == "" {
		base.BeforeSHA = zeroSHA
	}
	if req.User != nil {
		base.UserID = &req.User.ID
	}
	if req.Parent != nil {
		base.ParentID = &req.Parent.ID
	}
	plan, cerr := ciconfig.Compile(in)
	if cerr != nil {
		failed := base
		failed.Status, failed.ConfigErrors = ci.StatusFailed, cerr.Error()
		failed.FinishedAt = &now
		pl, err := s.store.InsertPipeline(ctx, failed)
		if err != nil {
			return nil, err
		}
		return pl, &ConfigError{Errs: cerr}
	}
	if plan.Skipped {
		return nil, ErrWorkflow
	}
	np := store.NewPipeline{Pipeline: base, Variables: req.Variables}
	stageIdx := map[string]int{}
	for i, st := range plan.Stages {
		stageIdx[st] = i
	}
	for _, j := range plan.Jobs {
		if j.When == "never" {
			continue
		}
		spec, err := specOf(plan, j)
		if err != nil {
			return nil, err
		}
		kind := ci.KindBuild
		if j.Trigger != nil {
			kind = ci.KindBridge
		}
		var needs []string
		for _, n := range j.Needs {
			needs = append(needs, n.Job)
		}
		np.Jobs = append(np.Jobs, store.NewJob{
			Job: ci.Job{Kind: kind, Name: j.Name, Stage: j.Stage, StageIdx: j.StageIdx, Status: ci.StatusCreated, Ref: req.Ref, Tag: req.Tag,
				AllowFailure: j.AllowFailure, When: j.When, CreatedAt: now, UserID: base.UserID, TagList: j.Tags},
			DAG: j.NeedsSet, Needs: needs, Spec: spec, ResourceGroup: j.ResourceGroup, StartIn: j.StartIn, TimeoutSeconds: int(j.Timeout / time.Second),
		})
	}
	if len(np.Jobs) == 0 {
		return nil, ErrNoJobs
	}
	pl, err := s.store.CreatePipeline(ctx, np)
	if err != nil {
		return nil, err
	}
	s.Enqueue(pl.ID)
	return pl, nil
}

var slugRE = regexp.MustCompile(`[^a-z0-9]+`)

// RefSlug is GitLab's CI_COMMIT_REF_SLUG: lower-cased, non-alphanumerics
// replaced by "-", at most 63 bytes, no leading or trailing "-".
func RefSlug(ref string) string {
	s := slugRE.ReplaceAllString(strings.ToLower(ref), "-")
	if len(s) > 63 {
		s = s[:63]
	}
	return strings.Trim(s, "-")
}

// predefined are the pipeline-level CI variables that rules may test.
func (s *Service) predefined(req CreateRequest, c *ci.Commit) map[string]string {
	p := req.Project
	ns := p.Namespace.FullPath
	v := map[string]string{
		"CI": "true", "GITLAB_CI": "true", "CI_SERVER_URL": s.cfg.ExternalURL,
		"CI_PIPELINE_SOURCE": string(req.Source), "CI_COMMIT_SHA": req.SHA, "CI_COMMIT_SHORT_SHA": short(req.SHA),
		"CI_COMMIT_BEFORE_SHA": req.BeforeSHA, "CI_COMMIT_REF_NAME": req.Ref, "CI_COMMIT_REF_SLUG": RefSlug(req.Ref),
		"CI_DEFAULT_BRANCH": p.DefaultBranch, "CI_PROJECT_PATH": p.FullPath, "CI_PROJECT_NAME": p.Path,
		"CI_PROJECT_NAMESPACE": ns, "CI_PROJECT_ID": strconv.FormatInt(p.ID, 10), "CI_PROJECT_URL": s.cfg.ExternalURL + "/" + p.FullPath,
		"CI_PROJECT_VISIBILITY": string(p.Visibility),
		"CI_COMMIT_MESSAGE":     c.Message, "CI_COMMIT_TITLE": c.Title, "CI_COMMIT_AUTHOR": c.AuthorName + " <" + c.AuthorEmail + ">",
	}
	if v["CI_COMMIT_BEFORE_SHA"] == "" {
		v["CI_COMMIT_BEFORE_SHA"] = zeroSHA
	}
	if req.Tag {
		v["CI_COMMIT_TAG"] = req.Ref
	} else {
		v["CI_COMMIT_BRANCH"] = req.Ref
	}
	if req.Source == ci.SourceTrigger {
		v["CI_PIPELINE_TRIGGERED"] = "true"
	}
	return v
}

// RefProtected reports whether a branch (or tag) is protected in the project.
func (s *Service) RefProtected(ctx context.Context, projectID int64, ref string, tag bool) (bool, error) {
	rs, err := s.store.ProtectedRefs(ctx, projectID, ci.RefKindOf(tag))
	if err != nil {
		return false, err
	}
	return len(rs.Matching(ref)) > 0, nil
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// RefUpdate is a moved ref, as a push reports it.
type RefUpdate struct{ Ref, Before, After string }

// OnPush creates one pipeline per branch or tag that moved or was created;
// deletions create none. Errors are logged: a push never fails for CI.
func (s *Service) OnPush(ctx context.Context, project *ci.Project, user *ci.User, updates []RefUpdate) []*ci.Pipeline {
	if s.OnDefaultBranchMoved != nil {
		for _, u := range updates {
			if u.Ref == "refs/heads/"+project.DefaultBranch {
				s.OnDefaultBranchMoved(ctx, project)
				break
			}
		}
	}
	var out []*ci.Pipeline
	for _, u := range updates {
		if u.After == zeroSHA || u.After == "" {
			continue
		}
		var name string
		var tag bool
		switch {
		case strings.HasPrefix(u.Ref, "refs/heads/"):
			name = strings.TrimPrefix(u.Ref, "refs/heads/")
		case strings.HasPrefix(u.Ref, "refs/tags/"):
			name, tag = strings.TrimPrefix(u.Ref, "refs/tags/"), true
		default:
			continue
		}
		pl, err := s.Create(ctx, CreateRequest{Project: project, Ref: name, Tag: tag, SHA: u.After, BeforeSHA: u.Before, Source: ci.SourcePush, User: user})
		switch {
		case errors.Is(err, ErrNoConfig), errors.Is(err, ErrNoJobs), errors.Is(err, ErrWorkflow):
			continue
		case err != nil && pl == nil:
			s.log.Warn("pipeline for push", "project", project.FullPath, "ref", u.Ref, "err", err)
			continue
		}
		out = append(out, pl)
	}
	return out
}
