// Package store is gantry's storage seam. One interface, two adapters
// (store/sqlite and store/postgres) sharing the SQL core in store/sqldb, and
// one conformance suite (store/storetest) that runs against both.
package store

import (
	"context"
	"time"

	"gantry/internal/ci"
)

// Store is everything the server persists. Methods return errors wrapping
// ci.ErrNotFound, ci.ErrConflict or ci.ErrInvalid where those apply.
type Store interface {
	Users
	Projects
	Pipelines
	Jobs
	Runners
	Artifacts
	Traces
	LogSearch
	Triggers
	JobTokenScopes
	Agents
	ProtectedRefs
	Events
	Hooks
	Sessions
	Leases

	// Ping checks that the database answers (readiness).
	Ping(ctx context.Context) error
	// Dialect names the adapter: "sqlite" or "postgres".
	Dialect() string
	Close() error
}

// Leases are named, expiring claims that let one node of several sharing
// the database run a background sweep. Times come from the nodes' clocks,
// which must agree to well within a lease's lifetime.
type Leases interface {
	// ClaimLease gives the named lease to holder until until, if it is free
	// at now (unclaimed, or expired at or before now) or already holder's,
	// in one statement; it reports whether holder holds it.
	ClaimLease(ctx context.Context, name, holder string, now, until time.Time) (bool, error)
	// ReleaseLease frees the lease if holder holds it, so another node
	// need not wait for it to expire.
	ReleaseLease(ctx context.Context, name, holder string) error
}

// Users holds users and their personal access tokens.
type Users interface {
	// CreateUser returns ErrConflict when the username or email is taken.
	CreateUser(ctx context.Context, p CreateUserParams) (*ci.User, error)
	// UserByID returns ErrNotFound.
	UserByID(ctx context.Context, id int64) (*ci.User, error)
	UserByUsername(ctx context.Context, username string) (*ci.User, error)
	UsersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.User, error)
	CountUsers(ctx context.Context) (int64, error)
	// CreateToken stores a token by its digest; ErrConflict on a digest clash.
	CreateToken(ctx context.Context, p CreateTokenParams) (*ci.Token, error)
	// TokenByDigest returns the token and its user, or ErrNotFound.
	TokenByDigest(ctx context.Context, digest string) (*ci.Token, *ci.User, error)
	RevokeToken(ctx context.Context, id int64) error
}

type CreateUserParams struct {
	Username string
	Name     string
	Email    string
	Admin    bool
	Bot      bool
	State    string
	Now      time.Time
}

type CreateTokenParams struct {
	UserID    int64
	Name      string
	Digest    string
	Scopes    []ci.Scope
	ExpiresAt *time.Time
	Now       time.Time
}

// Sessions holds users' web passwords and signed-in web sessions.
type Sessions interface {
	// SetUserPassword stores the digest of a user's password ("" clears
	// it); ErrNotFound for no such user.
	SetUserPassword(ctx context.Context, userID int64, digest string) error
	// UserPasswordDigest is the user's password digest, "" when none is set.
	UserPasswordDigest(ctx context.Context, userID int64) (string, error)
	// CreateSession stores a session by the digest of its id.
	CreateSession(ctx context.Context, s Session) error
	// SessionByDigest finds a session unexpired at now, with its user;
	// ErrNotFound otherwise.
	SessionByDigest(ctx context.Context, digest string, now time.Time) (*Session, *ci.User, error)
	// DeleteSession ends a session (signing out); no error when it is gone.
	DeleteSession(ctx context.Context, digest string) error
	// DeleteExpiredSessions removes sessions expired at now and counts them.
	DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error)
}

// Session is a web sign-in.
type Session struct {
	Digest    string
	UserID    int64
	CreatedAt time.Time
	ExpiresAt time.Time
}

// Projects holds namespaces, projects, memberships and commit metadata.
type Projects interface {
	// CreateNamespace returns ErrConflict when the full path is taken.
	CreateNamespace(ctx context.Context, p CreateNamespaceParams) (*ci.Namespace, error)
	NamespaceByID(ctx context.Context, id int64) (*ci.Namespace, error)
	// NamespaceByFullPath is case-insensitive.
	NamespaceByFullPath(ctx context.Context, fullPath string) (*ci.Namespace, error)
	// CreateProject returns ErrConflict when the path is taken in the namespace.
	CreateProject(ctx context.Context, p CreateProjectParams) (*ci.Project, error)
	ProjectByID(ctx context.Context, id int64) (*ci.Project, error)
	// ProjectByFullPath is case-insensitive.
	ProjectByFullPath(ctx context.Context, fullPath string) (*ci.Project, error)
	// ListProjects returns projects visible to the filter's viewer, id descending.
	ListProjects(ctx context.Context, f ProjectFilter) ([]*ci.Project, error)
	// AddMember inserts or updates a membership.
	AddMember(ctx context.Context, p AddMemberParams) error
	// ProjectAccess is the user's highest access to the project, from the
	// project, its ancestor groups, and ownership of its user namespace.
	ProjectAccess(ctx context.Context, userID int64, project *ci.Project) (ci.AccessLevel, error)
	// SetProjectMaxArtifactsSize sets (nil: clears) the project's own
	// artifact upload limit in MB.
	SetProjectMaxArtifactsSize(ctx context.Context, projectID int64, mb *int) error
	// NamespaceAncestors returns the namespace and its ancestors, nearest first.
	NamespaceAncestors(ctx context.Context, id int64) ([]*ci.Namespace, error)
	UpsertCommit(ctx context.Context, projectID int64, c ci.Commit) error
	CommitsBySHA(ctx context.Context, projectID int64, shas []string) (map[string]*ci.Commit, error)
}

type CreateNamespaceParams struct {
	Name        string
	Path        string
	Kind        ci.NamespaceKind
	ParentID    *int64
	OwnerID     *int64
	Visibility  ci.Visibility
	Description string
	Now         time.Time
}

type CreateProjectParams struct {
	NamespaceID   int64
	Name          string
	Path          string
	Description   string
	Visibility    ci.Visibility
	PublicBuilds  bool
	DefaultBranch string
	CreatorID     int64
	Now           time.Time
}

type ProjectFilter struct {
	ViewerID   int64 // 0 for anonymous
	Admin      bool
	Membership bool // only projects the viewer is a member of
	Search     string
	AfterID    int64 // 0: from the newest
	Offset     int
	Limit      int
}

// MemberSource is what a membership grants access to.
type MemberSource string

const (
	MemberOfProject   MemberSource = "project"
	MemberOfNamespace MemberSource = "namespace"
)

type AddMemberParams struct {
	Source      MemberSource
	SourceID    int64
	UserID      int64
	AccessLevel ci.AccessLevel
	ExpiresAt   *time.Time
	Now         time.Time
}

// JobTokenScopes holds projects' inbound job-token allowlists.
type JobTokenScopes interface {
	JobTokenInbound(ctx context.Context, projectID int64) (bool, error)
	SetJobTokenInbound(ctx context.Context, projectID int64, enabled bool) error
	// AllowJobTokens adds a source project (projectIDs) or group (namespaceIDs) to the target's allowlist.
	AllowJobTokens(ctx context.Context, targetID int64, sourceProjectID, sourceNamespaceID int64, now time.Time) error
	DisallowJobTokens(ctx context.Context, targetID int64, sourceProjectID, sourceNamespaceID int64) error
	JobTokenAllowlist(ctx context.Context, targetID int64) (projectIDs, namespaceIDs []int64, err error)
	// JobTokenAllowed decides whether a job of source may use its token on target.
	JobTokenAllowed(ctx context.Context, sourceProjectID, targetProjectID int64) (bool, error)
}

// Agents holds cluster agents and the CI access their configurations grant.
type Agents interface {
	// CreateAgent returns ErrConflict when the project has an agent of that name.
	CreateAgent(ctx context.Context, a ci.ClusterAgent) (*ci.ClusterAgent, error)
	// ListAgents returns a project's agents, id ascending.
	ListAgents(ctx context.Context, projectID int64, limit, offset int) ([]*ci.ClusterAgent, error)
	CountAgents(ctx context.Context, projectID int64) (int, error)
	// AgentByID finds an agent of the project; ErrNotFound otherwise.
	AgentByID(ctx context.Context, projectID, id int64) (*ci.ClusterAgent, error)
	AgentsByIDs(ctx context.Context, ids []int64) (map[int64]*ci.ClusterAgent, error)
	DeleteAgent(ctx context.Context, projectID, id int64) error
	// ReplaceAgentGrants sets an agent's project and group grants at once.
	ReplaceAgentGrants(ctx context.Context, agentID int64, projects, groups []ci.AgentGrant) error
	// AgentGrantsFor returns the grants naming the project, and those naming
	// any of the groups, each by agent id ascending.
	AgentGrantsFor(ctx context.Context, projectID int64, groupIDs []int64) (projects, groups []ci.AgentGrant, err error)
}

// ProtectedRefs holds protected branches and tags.
type ProtectedRefs interface {
	// CreateProtectedRef returns ErrConflict when the name is already protected.
	CreateProtectedRef(ctx context.Context, p ci.ProtectedRef) (*ci.ProtectedRef, error)
	// ProtectedRefs lists a project's protections of one kind, id ascending.
	ProtectedRefs(ctx context.Context, projectID int64, kind ci.RefKind) (ci.RefProtection, error)
	// ProtectedRefByName finds one by its exact name; ErrNotFound otherwise.
	ProtectedRefByName(ctx context.Context, projectID int64, kind ci.RefKind, name string) (*ci.ProtectedRef, error)
	DeleteProtectedRef(ctx context.Context, projectID, id int64) error
}

// Triggers holds pipeline trigger tokens.
type Triggers interface {
	CreateTrigger(ctx context.Context, t ci.Trigger, digest string) (*ci.Trigger, error)
	Triggers(ctx context.Context, projectID int64) ([]*ci.Trigger, error)
	// TriggerByDigest finds a token; ErrNotFound otherwise.
	TriggerByDigest(ctx context.Context, digest string) (*ci.Trigger, error)
	DeleteTrigger(ctx context.Context, projectID, id int64) error
	TouchTrigger(ctx context.Context, id int64, now time.Time) error
}

// Pipelines holds pipelines.
type Pipelines interface {
	// InsertPipeline stores p as given (id and iid are assigned) and returns it.
	InsertPipeline(ctx context.Context, p ci.Pipeline) (*ci.Pipeline, error)
	// PipelineByID finds a pipeline inside a project; ErrNotFound otherwise.
	PipelineByID(ctx context.Context, projectID, id int64) (*ci.Pipeline, error)
	PipelinesByIDs(ctx context.Context, ids []int64) (map[int64]*ci.Pipeline, error)
	// CreatePipeline stores a pipeline, its variables and its jobs in one
	// transaction, flagged for processing.
	CreatePipeline(ctx context.Context, p NewPipeline) (*ci.Pipeline, error)
	// ProcessPipeline loads the pipeline's current jobs in a transaction,
	// lets decide compute the moves and the pipeline status, applies them and
	// clears the processing flag. A crash before commit leaves the flag set.
	ProcessPipeline(ctx context.Context, pipelineID int64, now time.Time, decide Decider) (*ProcessResult, error)
	// PipelinesNeedingProcessing lists flagged pipelines, oldest first.
	PipelinesNeedingProcessing(ctx context.Context, limit int) ([]int64, error)
	// MarkPipelineForProcessing sets the processing flag.
	MarkPipelineForProcessing(ctx context.Context, pipelineID int64) error
	ListPipelines(ctx context.Context, f PipelineFilter) ([]*ci.Pipeline, error)
	CountPipelines(ctx context.Context, f PipelineFilter, limit int) (int, error)
	// DeletePipeline removes a pipeline with its jobs (and child pipelines'
	// links). It returns the blob keys of the artifacts that went with it,
	// for the caller to delete.
	DeletePipeline(ctx context.Context, projectID, id int64) ([]string, error)
	PipelineVariables(ctx context.Context, pipelineID int64) ([]Variable, error)
	// GrantResources moves, per resource group of the project, the oldest
	// waiting job to pending when no job of the group is active; it returns
	// the granted job ids.
	GrantResources(ctx context.Context, projectID int64, now time.Time) ([]int64, error)
	// RetryJobs clones the given jobs of a pipeline as new created jobs
	// (copying what GitLab copies: name, stage, when, needs, spec, tags,
	// allow_failure, resource group), marks the originals retried, resets
	// skipped jobs of the pipeline to created, and flags the pipeline.
	RetryJobs(ctx context.Context, p RetryParams) ([]int64, error)
	// CancelPipeline moves every cancelable job of the pipeline (and of its
	// child pipelines) to canceled and flags the pipelines; it returns the
	// jobs it moved.
	CancelPipeline(ctx context.Context, pipelineID int64, now time.Time) ([]int64, error)
	// EnqueueDueScheduled moves delayed jobs whose time has come to pending
	// (or waiting_for_resource) and flags their pipelines.
	EnqueueDueScheduled(ctx context.Context, now time.Time) ([]int64, error)
	// NextScheduledAt is the earliest time a delayed job is due, if any.
	NextScheduledAt(ctx context.Context) (*time.Time, error)
	// BridgeOf returns the bridge job whose downstream pipeline this is, or ErrNotFound.
	BridgeOf(ctx context.Context, downstreamPipelineID int64) (*ci.Job, error)
}

// FinishParams is a runner's final report.
type FinishParams struct {
	JobID         int64
	State         ci.JobStatus // success or failed
	FailureReason ci.FailureReason
	ExitCode      *int
	Coverage      *float64
	Now           time.Time
	// TokenDigest, when set, must be the job's token digest; a job that
	// does not hold it is ErrNotFound and is left as it was.
	TokenDigest string
}

// RetryParams selects jobs to retry.
type RetryParams struct {
	PipelineID int64
	JobIDs     []int64
	UserID     *int64
	// New jobs keep their originals' variables, unless SetVariables: then
	// they get Variables instead (gantry's retry with new variables).
	SetVariables bool
	Variables    []Variable
	Now          time.Time
}

// Decider computes processing moves from a pipeline's current jobs.
type Decider func(jobs []ci.ProcJob) ([]ci.Transition, ci.JobStatus)

// ProcessResult is what one processing run changed.
type ProcessResult struct {
	Pipeline    *ci.Pipeline
	Transitions []ci.Transition
	// StatusChanged reports whether the pipeline's status moved.
	StatusChanged bool
}

// Variable is a pipeline or job variable.
type Variable struct {
	Key          string `json:"key"`
	Value        string `json:"value"`
	VariableType string `json:"variable_type"` // env_var or file
}

// NewPipeline is a pipeline about to be created with its jobs.
type NewPipeline struct {
	Pipeline  ci.Pipeline
	Variables []Variable
	Jobs      []NewJob
}

// NewJob is a job as the compiler planned it.
type NewJob struct {
	Job           ci.Job
	DAG           bool
	Needs         []string
	Spec          []byte // JSON: what the runner will need (script, image, …)
	ResourceGroup string
	StartIn       time.Duration
	// TimeoutSeconds is the job's own `timeout` (0: the default applies).
	TimeoutSeconds int
}

// PipelineFilter selects pipelines of a project, id descending.
type PipelineFilter struct {
	ProjectID     int64
	Statuses      []ci.JobStatus
	Ref           string
	SHA           string
	Source        string
	UpdatedAfter  *time.Time
	UpdatedBefore *time.Time
	Tag           *bool
	Ascending     bool
	Offset, Limit int
}

// Jobs holds builds and bridges.
type Jobs interface {
	// InsertJob stores j as given (the id is assigned) and returns it.
	InsertJob(ctx context.Context, j ci.Job) (*ci.Job, error)
	// JobByID finds a job inside a project; ErrNotFound otherwise.
	JobByID(ctx context.Context, projectID, id int64) (*ci.Job, error)
	// JobsByIDs reads the project's jobs among ids, id ascending; ids of
	// other projects or of no job are left out.
	JobsByIDs(ctx context.Context, projectID int64, ids []int64) ([]*ci.Job, error)
	// ListJobs returns jobs matching f, id descending (ascending with f.Ascending).
	ListJobs(ctx context.Context, f JobFilter) ([]*ci.Job, error)
	// ListJobsWithArtifacts is ListJobs that also returns each job's
	// artifacts (ordered by id), read by the same query: a list page costs
	// one round trip instead of two.
	ListJobsWithArtifacts(ctx context.Context, f JobFilter) ([]*ci.Job, map[int64][]*ci.Artifact, error)
	// CountJobs counts matches up to limit (a cap keeps counting cheap).
	CountJobs(ctx context.Context, f JobFilter, limit int) (int, error)
	// TransitionJob moves a job along the transition table; ErrConflict if
	// the move is illegal or the job changed since it was read.
	TransitionJob(ctx context.Context, p TransitionParams) (*ci.Job, error)
	// SetJobToken stores the digest of a job's token.
	SetJobToken(ctx context.Context, jobID int64, digest string) error
	// JobByTokenDigest finds the job owning a token, or ErrNotFound.
	JobByTokenDigest(ctx context.Context, digest string) (*ci.Job, error)
	// RecordRunnerUpdate notes that the runner reported on a job (stuck-job detection).
	RecordRunnerUpdate(ctx context.Context, jobID int64, now time.Time) error
	// FinishJob applies a runner's final state: running moves to the
	// state; canceling always ends canceled. ErrConflict if the job is not executing.
	FinishJob(ctx context.Context, p FinishParams) (*ci.Job, error)
	// TimedOutJobs lists executing jobs past their deadline or silent too long.
	TimedOutJobs(ctx context.Context, now time.Time, silentFor time.Duration) ([]*ci.Job, error)
	// PlayJob enqueues a manual or scheduled job for user, with variables
	// (replacing earlier ones); ErrConflict if it is not playable any more.
	PlayJob(ctx context.Context, jobID, userID int64, vars []Variable, now time.Time) (*ci.Job, error)
	// JobVariables are the variables a job was played or retried with.
	JobVariables(ctx context.Context, jobID int64) ([]Variable, error)
	// EraseJob deletes a finished job's artifacts and log and records who
	// erased it; it returns the blob keys to delete.
	EraseJob(ctx context.Context, jobID, userID int64, now time.Time) ([]string, error)
	// StaleCanceling lists jobs in canceling since before the time.
	StaleCanceling(ctx context.Context, before time.Time) ([]*ci.Job, error)
	// JobSpec returns the planned definition stored with a job.
	JobSpec(ctx context.Context, jobID int64) ([]byte, error)
	// PipelineNeeds returns the `needs` of each job of a pipeline that has
	// any, by job id.
	PipelineNeeds(ctx context.Context, pipelineID int64) (map[int64][]string, error)
	// SetDownstream links a bridge to the pipeline it created.
	SetDownstream(ctx context.Context, bridgeID, pipelineID int64) error
	// ForceJobStatus sets a bridge's status to mirror its downstream
	// pipeline (GitLab's "force" events), flagging the pipeline.
	ForceJobStatus(ctx context.Context, jobID int64, to ci.JobStatus, now time.Time) error
}

// JobFilter selects jobs. Zero values mean "no restriction".
type JobFilter struct {
	ProjectID      int64
	PipelineID     int64
	Kind           ci.JobKind
	Statuses       []ci.JobStatus
	Ref            string // the pipeline's ref
	Name           string // exact job name
	IncludeRetried bool
	BeforeID       int64 // keyset: id < BeforeID
	// Time bounds are exclusive; zero means unbounded.
	CreatedAfter, CreatedBefore time.Time
	UpdatedAfter, UpdatedBefore time.Time
	// Ascending lists id ascending instead of descending.
	Ascending bool
	// BeforeStage, when > 0, keeps jobs of stages before it (stage_idx < BeforeStage).
	BeforeStage int
	Offset      int
	Limit       int
}

type TransitionParams struct {
	JobID         int64
	From          ci.JobStatus
	To            ci.JobStatus
	FailureReason ci.FailureReason
	Now           time.Time
}

// Runners holds runners, their managers and the dispatch queries.
type Runners interface {
	InsertRunner(ctx context.Context, r ci.Runner, tokenDigest string) (*ci.Runner, error)
	RunnersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.Runner, error)
	InsertRunnerManager(ctx context.Context, m ci.RunnerManager) (*ci.RunnerManager, error)
	RunnerManagersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.RunnerManager, error)
	// RunnerByTokenDigest finds a runner by its authentication token; ErrNotFound otherwise.
	RunnerByTokenDigest(ctx context.Context, digest string) (*ci.Runner, error)
	// SetRunnerScope replaces a runner's project and group assignments.
	SetRunnerScope(ctx context.Context, runnerID int64, projectIDs, namespaceIDs []int64) error
	// RunnerScope returns a runner's assigned projects and groups.
	RunnerScope(ctx context.Context, runnerID int64) (projectIDs, namespaceIDs []int64, err error)
	UpdateRunner(ctx context.Context, r ci.Runner) (*ci.Runner, error)
	DeleteRunner(ctx context.Context, id int64) error
	ListRunners(ctx context.Context, f RunnerFilter) ([]*ci.Runner, error)
	// UpsertRunnerManager records the machine (system_id) a runner calls from.
	UpsertRunnerManager(ctx context.Context, m ci.RunnerManager) (*ci.RunnerManager, error)
	DeleteRunnerManager(ctx context.Context, runnerID int64, systemID string) error
	// TouchRunner records contact; callers throttle it (no write per poll).
	TouchRunner(ctx context.Context, runnerID, managerID int64, now time.Time) error
	// RotateRunnerToken replaces the runner's token digest.
	RotateRunnerToken(ctx context.Context, runnerID int64, digest string) error
	// PendingProjects lists projects with pending builds, by project id.
	PendingProjects(ctx context.Context) ([]int64, error)
	// RunningCounts counts executing builds per project.
	RunningCounts(ctx context.Context, projectIDs []int64) (map[int64]int, error)
	// ClaimNext picks the project's oldest pending build the runner may
	// take (tags, run_untagged) and claims it in the same statement, so
	// concurrent runners never race for one row; ErrNotFound if none.
	ClaimNext(ctx context.Context, p ClaimNextParams) (*Claimed, error)
	// ProjectNamespaceChain returns the project's namespace and its ancestors' ids.
	ProjectNamespaceChain(ctx context.Context, projectID int64) ([]int64, error)
	// PendingAhead counts pending builds queued before the job (all projects).
	PendingAhead(ctx context.Context, jobID int64) (int, error)
	// ExecutingByRunner counts running and canceling builds per runner.
	ExecutingByRunner(ctx context.Context) (map[int64]int, error)
	// RunnerJobs lists jobs a runner ran, id descending.
	RunnerJobs(ctx context.Context, runnerID int64, statuses []ci.JobStatus, offset, limit int) ([]*ci.Job, error)
}

// RunnerFilter selects runners.
type RunnerFilter struct {
	// ProjectID lists runners that may run the project's jobs: instance
	// runners, its project runners and its groups' runners.
	ProjectID     int64
	Type          ci.RunnerType
	Paused        *bool
	Tags          []string
	Offset, Limit int
}

// Claimed is a job ClaimNext handed to a runner, with what the payload is
// built from, read by the claim: its spec (the compiled job definition)
// and its own variables (as JobVariables gives them).
type Claimed struct {
	Job       *ci.Job
	Spec      []byte
	Variables []Variable
	// Pipeline and PipelineVariables come with the claim where the store
	// reads them in the claim's own round trip (PostgreSQL); nil means
	// the caller reads them (on SQLite a read costs less than holding the
	// single writer for it).
	Pipeline          *ci.Pipeline
	PipelineVariables []Variable
}

// ClaimNextParams describe the runner asking for work.
type ClaimNextParams struct {
	ProjectID, RunnerID, ManagerID int64
	RunnerTags                     []string
	RunUntagged                    bool
	// ProtectedOnly limits the claim to jobs of protected pipelines.
	ProtectedOnly bool
	TokenDigest   string
	// MaxTimeout caps the job's timeout (0: no cap); DefaultTimeout applies
	// to jobs without one.
	MaxTimeout, DefaultTimeout int
	Now                        time.Time
}

// Artifacts holds artifact records (the bytes live in blob storage).
//
// "Locked" follows GitLab's keep-latest-artifact rule, judged per ref
// (project, ref, tag) among top-level pipelines: a pipeline's artifacts are
// locked while it is the ref's latest successful pipeline, or while no
// newer pipeline of the ref has stopped (finished or blocked). Child
// pipelines follow their parent. Locked artifacts are never deleted by
// expiry or by the project-wide delete.
type Artifacts interface {
	// InsertArtifact stores a record; an archive also sets its job's
	// artifacts_expire_at, as GitLab does on upload.
	InsertArtifact(ctx context.Context, a ci.Artifact) (*ci.Artifact, error)
	// ArtifactsByJobIDs returns each job's artifacts ordered by id.
	ArtifactsByJobIDs(ctx context.Context, ids []int64) (map[int64][]*ci.Artifact, error)
	// KeepArtifacts makes a job's artifacts never expire (the job's
	// artifacts_expire_at and every record's expire_at become null).
	KeepArtifacts(ctx context.Context, jobID int64) error
	// DeleteJobArtifacts deletes a job's erasable records (all but the
	// trace) and returns their blob keys.
	DeleteJobArtifacts(ctx context.Context, jobID int64) ([]string, error)
	// DeleteProjectArtifacts deletes the project's erasable records that
	// are not locked and returns their blob keys.
	DeleteProjectArtifacts(ctx context.Context, projectID int64) ([]string, error)
	// DeleteExpiredArtifacts deletes up to limit records expired at now
	// that are not locked and returns their blob keys.
	DeleteExpiredArtifacts(ctx context.Context, now time.Time, limit int) ([]string, error)
	// LatestArtifactsJob finds the newest build named name, with an archive
	// unexpired at now, in the latest successful pipeline of ref (or its
	// child pipelines); ErrNotFound otherwise.
	LatestArtifactsJob(ctx context.Context, projectID int64, ref, name string, now time.Time) (*ci.Job, error)
}

// Traces holds live job logs as chunks, and the records of logs archived
// into one blob each once their job ended.
type Traces interface {
	// AppendTrace stores data at offset; ErrConflict if offset is not the
	// current length or the log is already archived. Returns the new length.
	AppendTrace(ctx context.Context, jobID int64, offset int64, data []byte) (int64, error)
	// AppendTraceAs is AppendTrace for the holder of a job token: the
	// append happens only if the job has that token digest and is running
	// or canceling, and it returns the job's status with the new length.
	// Any refusal is ErrNotFound and changes nothing; the caller finds out
	// why the slow way (a runner's appends nearly all succeed).
	AppendTraceAs(ctx context.Context, jobID int64, tokenDigest string, offset int64, data []byte) (int64, ci.JobStatus, error)
	// ReadTrace returns the whole live log (nil when there is none).
	ReadTrace(ctx context.Context, jobID int64) ([]byte, error)
	// TraceSize is the stored log length.
	TraceSize(ctx context.Context, jobID int64) (int64, error)
	// TraceChunks returns, in order, at most max chunks holding bytes of
	// [from, to): the last chunk starting at or before from (it holds from
	// unless from is past the log's end), then the ones after it.
	TraceChunks(ctx context.Context, jobID int64, from, to int64, max int) ([]TraceChunk, error)
	// TraceArchiveOf returns the job's archived log record, or ErrNotFound.
	TraceArchiveOf(ctx context.Context, jobID int64) (*TraceArchive, error)

	// Small blobs (blob.Tiered keeps the little ones in the database).
	// PutSmallBlob creates or replaces the blob under key.
	PutSmallBlob(ctx context.Context, key string, data []byte) error
	// SmallBlob returns the blob under key, or ErrNotFound.
	SmallBlob(ctx context.Context, key string) ([]byte, error)
	// DeleteSmallBlob removes the blob; a missing key is not an error.
	DeleteSmallBlob(ctx context.Context, key string) error
	// TraceArchivesOf returns the archived log records of those of the
	// jobs that have one, by job id.
	TraceArchivesOf(ctx context.Context, jobIDs []int64) (map[int64]*TraceArchive, error)
	// RecordTraceArchives, in one transaction, adds the trace artifact row
	// of each record's job unless it has one already, leaving out (and
	// reporting) a record whose log is no longer rec.Size long; then it
	// deletes the chunks of each job of deleteChunksOf, but only of those
	// with an archive of the log's full length recorded.
	RecordTraceArchives(ctx context.Context, records []TraceArchive, deleteChunksOf []int64) (RecordedTraceArchives, error)
	// UnarchivedTraces lists up to limit jobs with ids above afterID that
	// no longer execute but whose log is still in chunks, id ascending.
	UnarchivedTraces(ctx context.Context, afterID int64, limit int) ([]UnarchivedTrace, error)
}

// LogSearch holds what log search reads: the candidate jobs of a search,
// the archived logs not yet indexed, and the index segments.
type LogSearch interface {
	// LogSearchCandidates lists builds matching f that have a log and are
	// not erased, id descending.
	LogSearchCandidates(ctx context.Context, f LogSearchFilter) ([]LogCandidate, error)
	// PendingLogs lists up to limit archived logs not yet in a segment,
	// by project then id ascending, from (projectID, jobID) after the given.
	PendingLogs(ctx context.Context, afterProjectID, afterJobID int64, limit int) ([]PendingLog, error)
	// RecordLogSegment stores a segment and takes its logs off the pending
	// list; ErrConflict (and nothing stored) if one of them is not pending.
	RecordLogSegment(ctx context.Context, s LogSegment) (*LogSegment, error)
	// LogSegments lists the project's segments holding ids in [fromID, toID].
	LogSegments(ctx context.Context, projectID, fromID, toID int64) ([]LogSegment, error)
}

// LogSearchFilter selects the jobs whose logs a search reads.
type LogSearchFilter struct {
	ProjectID                   int64
	Statuses                    []ci.JobStatus
	Ref                         string
	CreatedAfter, CreatedBefore time.Time // exclusive; zero: unbounded
	BeforeID                    int64     // id < BeforeID when > 0
	Limit                       int
}

// LogCandidate is a job whose log a search may read.
type LogCandidate struct {
	ID        int64
	TraceSize int64
}

// PendingLog is an archived log waiting to be indexed.
type PendingLog struct {
	JobID, ProjectID, Size int64
	CreatedAt              time.Time
}

// LogSegment is one index blob over some archived logs of a project.
type LogSegment struct {
	ID, ProjectID         int64
	BlobKey               string
	FirstJobID, LastJobID int64
	JobIDs                []int64 // on record: the logs it holds
	Logs                  int
	LogBytes, IndexBytes  int64
	CreatedAt             time.Time
}

// TraceChunk is one appended piece of a live log.
type TraceChunk struct {
	Start int64
	Data  []byte
}

// TraceArchive is a log archived into one blob: its trace artifact row.
type TraceArchive struct {
	JobID, ProjectID int64
	BlobKey          string
	Size             int64
	SHA256           string // hex
	CreatedAt        time.Time
	// Data, when set, is the log itself: recording the archive also
	// stores it as the small blob under BlobKey (see PutSmallBlob), in the
	// same transaction. Only RecordTraceArchives reads it.
	Data []byte
}

// RecordedTraceArchives is what RecordTraceArchives did.
type RecordedTraceArchives struct {
	// Inserted lists the jobs whose record it added.
	Inserted []int64
	// Conflicts lists the jobs whose record it left out: their log is no
	// longer the recorded length (it grew, or the job was erased).
	Conflicts []int64
	// ChunksDeleted counts the chunks it deleted, by job.
	ChunksDeleted map[int64]int64
}

// UnarchivedTrace is a job that ended with its log still in chunks.
type UnarchivedTrace struct {
	JobID, ProjectID, Size int64
}

// Events holds the status events that the database records with every job
// and pipeline status change (in the changing transaction), kept for a
// retention period.
type Events interface {
	// StatusEvents lists events matching f, id ascending.
	StatusEvents(ctx context.Context, f EventFilter) ([]*ci.StatusEvent, error)
	// EventLogBounds returns the lowest and highest kept event ids (zeros
	// when none is kept).
	EventLogBounds(ctx context.Context) (oldest, latest int64, err error)
	// PruneStatusEvents deletes events that happened before the time and
	// returns how many.
	PruneStatusEvents(ctx context.Context, before time.Time) (int64, error)
}

// EventFilter selects a project's events. Zero values mean "no restriction".
type EventFilter struct {
	ProjectID int64
	AfterID   int64
	Kind      ci.EventKind
	Statuses  []ci.JobStatus
	Limit     int
}

// Hooks holds project webhooks and their deliveries. Deliveries are
// created by the database with the status events they carry, one per
// matching hook, and taken by delivery workers on any node.
type Hooks interface {
	CreateHook(ctx context.Context, h ci.ProjectHook) (*ci.ProjectHook, error)
	// Hooks lists a project's hooks, id ascending.
	Hooks(ctx context.Context, projectID int64) ([]*ci.ProjectHook, error)
	// HookByID finds a hook of the project; ErrNotFound otherwise.
	HookByID(ctx context.Context, projectID, id int64) (*ci.ProjectHook, error)
	// UpdateHook replaces a hook's settings; ErrNotFound if it is gone.
	UpdateHook(ctx context.Context, h ci.ProjectHook) (*ci.ProjectHook, error)
	// DeleteHook deletes a hook with its deliveries.
	DeleteHook(ctx context.Context, projectID, id int64) error
	// ClaimHookDeliveries takes up to limit pending deliveries due at now,
	// counts the attempt, clears the previous attempt's outcome and moves
	// their next attempt to leaseUntil, so that other workers pass them by
	// while this one sends (and retry them should it die). Rows locked by
	// another claim are skipped.
	ClaimHookDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]*ClaimedDelivery, error)
	// RecordHookAttempt stores an attempt's outcome, unless the delivery
	// was claimed again since (then it reports ErrConflict).
	RecordHookAttempt(ctx context.Context, a HookAttempt) error
	// HookDeliveries lists a hook's deliveries, newest first.
	HookDeliveries(ctx context.Context, hookID int64, limit, offset int) ([]*ci.HookDelivery, error)
	// NextHookAttemptAt is when the earliest pending delivery is due, if any.
	NextHookAttemptAt(ctx context.Context) (*time.Time, error)
	// PruneHookDeliveries deletes finished deliveries last updated before
	// the time and returns how many.
	PruneHookDeliveries(ctx context.Context, before time.Time) (int64, error)
}

// ClaimedDelivery is a delivery taken for an attempt, with its hook and
// event (nil once the event was pruned).
type ClaimedDelivery struct {
	Delivery ci.HookDelivery
	Hook     ci.ProjectHook
	Event    *ci.StatusEvent
}

// HookAttempt is the outcome of one delivery attempt.
type HookAttempt struct {
	DeliveryID int64
	Attempt    int // the attempt number the claim gave
	State      ci.DeliveryState
	// NextAttemptAt matters while State is pending.
	NextAttemptAt   time.Time
	UUID            string
	Payload         []byte
	ResponseStatus  *int
	ResponseExcerpt string
	Error           string
	Duration        time.Duration
	Now             time.Time
}
