package ci

import "time"

// User is a person or bot that holds tokens and memberships.
type User struct {
	ID        int64
	Username  string
	Name      string
	Email     string
	State     string // active, blocked
	Admin     bool
	Bot       bool
	CreatedAt time.Time
}

// Token is a personal access token as stored: only its digest is kept.
type Token struct {
	ID        int64
	UserID    int64
	Name      string
	Scopes    []Scope
	ExpiresAt *time.Time
	Revoked   bool
	CreatedAt time.Time
}

// Has reports whether the token carries the scope.
func (t Token) Has(s Scope) bool {
	for _, x := range t.Scopes {
		if x == s {
			return true
		}
	}
	return false
}

// NamespaceKind distinguishes personal namespaces from groups.
type NamespaceKind string

const (
	NamespaceUser  NamespaceKind = "user"
	NamespaceGroup NamespaceKind = "group"
)

// Namespace is a user namespace or a group; groups nest.
type Namespace struct {
	ID          int64
	Name        string
	Path        string
	FullPath    string
	FullName    string
	Kind        NamespaceKind
	ParentID    *int64
	OwnerID     *int64 // user namespaces only
	Visibility  Visibility
	Description string
	CreatedAt   time.Time
}

// Project is a CI project owning a repository, pipelines and jobs.
type Project struct {
	ID                     int64
	NamespaceID            int64
	Name                   string
	Path                   string
	FullPath               string
	Description            string
	Visibility             Visibility
	PublicBuilds           bool
	DefaultBranch          string
	CIJobTokenScopeEnabled bool
	Archived               bool
	CreatorID              int64
	CreatedAt              time.Time
	UpdatedAt              time.Time
	LastActivityAt         time.Time
	// MaxArtifactsSizeMB is the project's own upload limit; nil: the instance's.
	MaxArtifactsSizeMB *int
	Namespace          Namespace
}

// Member is a user's access to a project or a group.
type Member struct {
	UserID      int64
	AccessLevel AccessLevel
	ExpiresAt   *time.Time
	CreatedAt   time.Time
}

// Commit is the metadata of a commit that pipelines point at.
type Commit struct {
	SHA            string
	ParentIDs      []string
	Title          string
	Message        string
	AuthorName     string
	AuthorEmail    string
	AuthoredDate   time.Time
	CommitterName  string
	CommitterEmail string
	CommittedDate  time.Time
}

// PipelineSource says what created a pipeline.
type PipelineSource string

const (
	SourcePush           PipelineSource = "push"
	SourceWeb            PipelineSource = "web"
	SourceTrigger        PipelineSource = "trigger"
	SourceAPI            PipelineSource = "api"
	SourcePipeline       PipelineSource = "pipeline"
	SourceParentPipeline PipelineSource = "parent_pipeline"
	SourceSchedule       PipelineSource = "schedule"
)

// Pipeline groups the jobs created for one ref and sha.
type Pipeline struct {
	ID         int64
	IID        int64
	ProjectID  int64
	SHA        string
	BeforeSHA  string
	Ref        string
	Tag        bool
	Status     JobStatus
	Source     PipelineSource
	UserID     *int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
	Duration   *float64 // seconds, GitLab stores whole seconds
	ParentID   *int64   // upstream pipeline for child / multi-project pipelines
	// ConfigErrors holds the compiler's errors for a pipeline that could
	// not be created from its configuration (GitLab's yaml_errors).
	ConfigErrors string
	// Protected records whether the ref was protected at creation.
	Protected bool
}

// JobKind distinguishes builds (run by runners) from bridges (trigger jobs).
type JobKind string

const (
	KindBuild  JobKind = "build"
	KindBridge JobKind = "bridge"
)

// Job is a build or a bridge.
type Job struct {
	ID                   int64
	ProjectID            int64
	PipelineID           int64
	Kind                 JobKind
	Name                 string
	Stage                string
	StageIdx             int
	Status               JobStatus
	Ref                  string
	Tag                  bool
	Coverage             *float64
	AllowFailure         bool
	When                 string
	CreatedAt            time.Time
	QueuedAt             *time.Time
	StartedAt            *time.Time
	FinishedAt           *time.Time
	ErasedAt             *time.Time
	ErasedByID           *int64
	UserID               *int64
	FailureReason        FailureReason
	RunnerID             *int64
	RunnerManagerID      *int64
	ArtifactsExpireAt    *time.Time
	TagList              []string
	Retried              bool
	DownstreamPipelineID *int64
	UpdatedAt            time.Time
	LockVersion          int64
	// Set by the runner protocol.
	ExitCode        *int
	TimeoutSeconds  *int
	RunnerUpdatedAt *time.Time
}

// Duration is finished (or now) minus started, nil if never started.
func (j *Job) Duration(now time.Time) *float64 {
	if j.StartedAt == nil {
		return nil
	}
	end := now
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	d := end.Sub(*j.StartedAt).Seconds()
	return &d
}

// QueuedDuration is (started, else finished, else now) minus queued.
func (j *Job) QueuedDuration(now time.Time) *float64 {
	if j.QueuedAt == nil {
		return nil
	}
	end := now
	if j.StartedAt != nil {
		end = *j.StartedAt
	} else if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	d := end.Sub(*j.QueuedAt).Seconds()
	return &d
}

// RunnerType is the scope a runner serves.
type RunnerType string

const (
	InstanceRunner RunnerType = "instance_type"
	GroupRunner    RunnerType = "group_type"
	ProjectRunner  RunnerType = "project_type"
)

// Runner is a registered runner.
type Runner struct {
	ID             int64
	Type           RunnerType
	Description    string
	Name           *string
	Paused         bool
	Locked         bool
	RunUntagged    bool
	AccessLevel    string // not_protected, ref_protected
	TagList        []string
	MaximumTimeout *int
	CreatedAt      time.Time
	ContactedAt    *time.Time
	CreatedByID    *int64
	Busy           bool
	// MaintenanceNote is free text for administrators.
	MaintenanceNote string
}

// RunnerOnlineWindow is how recently a runner must have called to be online.
const RunnerOnlineWindow = 2 * time.Hour

// RunnerStaleAfter marks runners that have not called for a long time.
const RunnerStaleAfter = 7 * 24 * time.Hour

// Status is GitLab's REST status of a runner.
func RunnerContactStatus(created time.Time, contacted *time.Time, paused bool, now time.Time) string {
	if paused {
		return "paused"
	}
	if contacted == nil {
		if now.Sub(created) > RunnerStaleAfter {
			return "stale"
		}
		return "never_contacted"
	}
	age := now.Sub(*contacted)
	switch {
	case age <= RunnerOnlineWindow:
		return "online"
	case age > RunnerStaleAfter:
		return "stale"
	}
	return "offline"
}

// RunnerManager is one process (system_id) serving a runner.
type RunnerManager struct {
	ID           int64
	RunnerID     int64
	SystemID     string
	Version      *string
	Revision     *string
	Platform     *string
	Architecture *string
	IPAddress    *string
	CreatedAt    time.Time
	ContactedAt  *time.Time
}

// Artifact is one stored artifact file of a job.
type Artifact struct {
	ID         int64
	JobID      int64
	ProjectID  int64
	FileType   string
	FileFormat string
	Filename   string
	Size       int64
	BlobKey    string
	ExpireAt   *time.Time
	CreatedAt  time.Time
}

// Trigger is a pipeline trigger token of a project (stored hashed; the
// prefix is kept to show the token masked).
type Trigger struct {
	ID          int64
	ProjectID   int64
	OwnerID     int64
	Description string
	TokenPrefix string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	LastUsed    *time.Time
}

// TriggerTokenPrefix starts every trigger token.
const TriggerTokenPrefix = "glptt-"
