package httpapi

import (
	"encoding/json"
	"strconv"
	"time"

	"gantry/internal/ci"
)

// The types below reproduce GitLab's API entities key for key, in GitLab's
// order. Conditional keys use omitempty; every other key is always present.

type userEntity struct {
	ID              int64   `json:"id"`
	Username        string  `json:"username"`
	Name            string  `json:"name"`
	State           string  `json:"state"`
	Locked          bool    `json:"locked"`
	AvatarURL       *string `json:"avatar_url"`
	WebURL          string  `json:"web_url"`
	CreatedAt       Time    `json:"created_at"`
	Bio             string  `json:"bio"`
	Location        string  `json:"location"`
	PublicEmail     *string `json:"public_email"`
	Skype           string  `json:"skype"`
	Linkedin        string  `json:"linkedin"`
	Twitter         string  `json:"twitter"`
	Discord         string  `json:"discord"`
	WebsiteURL      string  `json:"website_url"`
	Organization    string  `json:"organization"`
	JobTitle        string  `json:"job_title"`
	Pronouns        *string `json:"pronouns"`
	Bot             bool    `json:"bot"`
	WorkInformation *string `json:"work_information"`
	Followers       int     `json:"followers"`
	Following       int     `json:"following"`
	IsFollowed      bool    `json:"is_followed"`
	LocalTime       *string `json:"local_time"`
}

func (a *API) userEntity(u *ci.User) *userEntity {
	if u == nil {
		return nil
	}
	return &userEntity{
		ID: u.ID, Username: u.Username, Name: u.Name, State: u.State, Locked: u.State == "blocked",
		WebURL: a.cfg.ExternalURL + "/" + u.Username, CreatedAt: Time(u.CreatedAt), Bot: u.Bot,
	}
}

// userBasicEntity is UserBasic (runner created_by, project owners).
type userBasicEntity struct {
	ID        int64   `json:"id"`
	Username  string  `json:"username"`
	Name      string  `json:"name"`
	State     string  `json:"state"`
	Locked    bool    `json:"locked"`
	AvatarURL *string `json:"avatar_url"`
	WebURL    string  `json:"web_url"`
}

// currentUserEntity is what GET /user shows the user about themselves.
type currentUserEntity struct {
	userEntity
	LastSignInAt     *Time    `json:"last_sign_in_at"`
	ConfirmedAt      Time     `json:"confirmed_at"`
	LastActivityOn   *string  `json:"last_activity_on"`
	Email            string   `json:"email"`
	ThemeID          int      `json:"theme_id"`
	ColorSchemeID    int      `json:"color_scheme_id"`
	ProjectsLimit    int      `json:"projects_limit"`
	CurrentSignInAt  *Time    `json:"current_sign_in_at"`
	Identities       []string `json:"identities"`
	CanCreateGroup   bool     `json:"can_create_group"`
	CanCreateProject bool     `json:"can_create_project"`
	TwoFactorEnabled bool     `json:"two_factor_enabled"`
	External         bool     `json:"external"`
	PrivateProfile   bool     `json:"private_profile"`
	CommitEmail      string   `json:"commit_email"`
	IsAdmin          *bool    `json:"is_admin,omitempty"`
	Note             *string  `json:"note,omitempty"`
}

func (a *API) currentUserEntity(u *ci.User) *currentUserEntity {
	e := &currentUserEntity{
		userEntity: *a.userEntity(u), ConfirmedAt: Time(u.CreatedAt), Email: u.Email, ThemeID: 1, ColorSchemeID: 1,
		ProjectsLimit: 100000, Identities: []string{}, CanCreateGroup: true, CanCreateProject: true, CommitEmail: u.Email,
	}
	if u.Admin {
		t := true
		e.IsAdmin = &t
		note := ""
		e.Note = &note
	}
	return e
}

type commitEntity struct {
	ID               string            `json:"id"`
	ShortID          string            `json:"short_id"`
	CreatedAt        zonedTime         `json:"created_at"`
	ParentIDs        []string          `json:"parent_ids"`
	Title            string            `json:"title"`
	Message          string            `json:"message"`
	AuthorName       string            `json:"author_name"`
	AuthorEmail      string            `json:"author_email"`
	AuthoredDate     zonedTime         `json:"authored_date"`
	CommitterName    string            `json:"committer_name"`
	CommitterEmail   string            `json:"committer_email"`
	CommittedDate    zonedTime         `json:"committed_date"`
	Trailers         map[string]string `json:"trailers"`
	ExtendedTrailers map[string]string `json:"extended_trailers"`
	WebURL           string            `json:"web_url"`
}

func (a *API) commitEntity(p *ci.Project, c *ci.Commit) *commitEntity {
	if c == nil {
		return nil
	}
	parents := c.ParentIDs
	if parents == nil {
		parents = []string{}
	}
	short := c.SHA
	if len(short) > 8 {
		short = short[:8]
	}
	return &commitEntity{
		ID: c.SHA, ShortID: short, CreatedAt: zonedTime(c.CommittedDate), ParentIDs: parents, Title: c.Title, Message: c.Message,
		AuthorName: c.AuthorName, AuthorEmail: c.AuthorEmail, AuthoredDate: zonedTime(c.AuthoredDate),
		CommitterName: c.CommitterName, CommitterEmail: c.CommitterEmail, CommittedDate: zonedTime(c.CommittedDate),
		Trailers: map[string]string{}, ExtendedTrailers: map[string]string{},
		WebURL: a.projectURL(p) + "/-/commit/" + c.SHA,
	}
}

type pipelineBasicEntity struct {
	ID        int64  `json:"id"`
	IID       int64  `json:"iid"`
	ProjectID int64  `json:"project_id"`
	SHA       string `json:"sha"`
	Ref       string `json:"ref"`
	Status    string `json:"status"`
	Source    string `json:"source"`
	CreatedAt Time   `json:"created_at"`
	UpdatedAt Time   `json:"updated_at"`
	WebURL    string `json:"web_url"`
}

func (a *API) pipelineBasic(p *ci.Project, pl *ci.Pipeline) *pipelineBasicEntity {
	if pl == nil {
		return nil
	}
	return &pipelineBasicEntity{
		ID: pl.ID, IID: pl.IID, ProjectID: pl.ProjectID, SHA: pl.SHA, Ref: pl.Ref, Status: string(pl.Status), Source: string(pl.Source),
		CreatedAt: Time(pl.CreatedAt), UpdatedAt: Time(pl.UpdatedAt), WebURL: a.projectURL(p) + "/-/pipelines/" + strconv.FormatInt(pl.ID, 10),
	}
}

type runnerEntity struct {
	ID                 int64   `json:"id"`
	Description        string  `json:"description"`
	IPAddress          *string `json:"ip_address"`
	Active             bool    `json:"active"`
	Paused             bool    `json:"paused"`
	IsShared           bool    `json:"is_shared"`
	RunnerType         string  `json:"runner_type"`
	Name               *string `json:"name"`
	Online             bool    `json:"online"`
	CreatedAt          Time    `json:"created_at"`
	Status             string  `json:"status"`
	JobExecutionStatus string  `json:"job_execution_status"`
}

func runnerEntityOf(r *ci.Runner, now time.Time) *runnerEntity {
	if r == nil {
		return nil
	}
	status := ci.RunnerContactStatus(r.CreatedAt, r.ContactedAt, r.Paused, now)
	online := r.ContactedAt != nil && now.Sub(*r.ContactedAt) <= ci.RunnerOnlineWindow
	exec := "idle"
	if r.Busy {
		exec = "active"
	}
	return &runnerEntity{
		ID: r.ID, Description: r.Description, Active: !r.Paused, Paused: r.Paused, IsShared: r.Type == ci.InstanceRunner,
		RunnerType: string(r.Type), Name: r.Name, Online: online, CreatedAt: Time(r.CreatedAt), Status: status, JobExecutionStatus: exec,
	}
}

type runnerManagerEntity struct {
	ID                 int64   `json:"id"`
	SystemID           string  `json:"system_id"`
	Version            *string `json:"version"`
	Revision           *string `json:"revision"`
	Platform           *string `json:"platform"`
	Architecture       *string `json:"architecture"`
	CreatedAt          Time    `json:"created_at"`
	ContactedAt        *Time   `json:"contacted_at"`
	IPAddress          *string `json:"ip_address"`
	Status             string  `json:"status"`
	JobExecutionStatus string  `json:"job_execution_status"`
}

func runnerManagerEntityOf(m *ci.RunnerManager, busy bool, now time.Time) *runnerManagerEntity {
	if m == nil {
		return nil
	}
	status := ci.RunnerContactStatus(m.CreatedAt, m.ContactedAt, false, now)
	exec := "idle"
	if busy {
		exec = "active"
	}
	return &runnerManagerEntity{
		ID: m.ID, SystemID: m.SystemID, Version: m.Version, Revision: m.Revision, Platform: m.Platform, Architecture: m.Architecture,
		CreatedAt: Time(m.CreatedAt), ContactedAt: tp(m.ContactedAt), IPAddress: m.IPAddress, Status: status, JobExecutionStatus: exec,
	}
}

type artifactEntity struct {
	FileType   string `json:"file_type"`
	Size       int64  `json:"size"`
	Filename   string `json:"filename"`
	FileFormat string `json:"file_format"`
}

type artifactsFileEntity struct {
	Filename string `json:"filename"`
	Size     int64  `json:"size"`
}

type jobProjectEntity struct {
	CIJobTokenScopeEnabled bool `json:"ci_job_token_scope_enabled"`
}

// jobBasicEntity is JobBasic, shared by Job and Bridge.
type jobBasicEntity struct {
	ID             int64            `json:"id"`
	Status         string           `json:"status"`
	Stage          string           `json:"stage"`
	Name           string           `json:"name"`
	Ref            string           `json:"ref"`
	Tag            bool             `json:"tag"`
	Coverage       *float64         `json:"coverage"`
	AllowFailure   bool             `json:"allow_failure"`
	CreatedAt      Time             `json:"created_at"`
	StartedAt      *Time            `json:"started_at"`
	FinishedAt     *Time            `json:"finished_at"`
	ErasedAt       *Time            `json:"erased_at"`
	Duration       *float64         `json:"duration"`
	QueuedDuration *float64         `json:"queued_duration"`
	User           json.RawMessage  `json:"user"`
	Commit         json.RawMessage  `json:"commit"`
	Pipeline       json.RawMessage  `json:"pipeline"`
	FailureReason  string           `json:"failure_reason,omitempty"`
	WebURL         string           `json:"web_url"`
	Project        jobProjectEntity `json:"project"`
}

type jobEntity struct {
	jobBasicEntity
	ArtifactsFile     *artifactsFileEntity `json:"artifacts_file,omitempty"`
	Artifacts         []artifactEntity     `json:"artifacts"`
	Runner            *runnerEntity        `json:"runner"`
	RunnerManager     *runnerManagerEntity `json:"runner_manager,omitempty"`
	ArtifactsExpireAt *Time                `json:"artifacts_expire_at"`
	Archived          bool                 `json:"archived"`
	TagList           []string             `json:"tag_list"`
}

// jobEntityNullManager is the Job entity for builds: runner_manager is
// always present there, null when unknown.
type jobEntityBuild struct {
	jobBasicEntity
	ArtifactsFile     *artifactsFileEntity `json:"artifacts_file,omitempty"`
	Artifacts         []artifactEntity     `json:"artifacts"`
	Runner            *runnerEntity        `json:"runner"`
	RunnerManager     *runnerManagerEntity `json:"runner_manager"`
	ArtifactsExpireAt *Time                `json:"artifacts_expire_at"`
	Archived          bool                 `json:"archived"`
	TagList           []string             `json:"tag_list"`
}

type bridgeEntity struct {
	jobBasicEntity
	DownstreamPipeline *pipelineBasicEntity `json:"downstream_pipeline"`
}

func (a *API) projectURL(p *ci.Project) string { return a.cfg.ExternalURL + "/" + p.FullPath }
