package webhook

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// hookTime is a time as GitLab's hook payloads write it.
type hookTime time.Time

func (t hookTime) MarshalJSON() ([]byte, error) {
	return []byte(`"` + time.Time(t).UTC().Format("2006-01-02 15:04:05 UTC") + `"`), nil
}

func hookTimeOf(t *time.Time) *hookTime {
	if t == nil {
		return nil
	}
	v := hookTime(*t)
	return &v
}

type userAttrs struct {
	ID        int64   `json:"id"`
	Name      string  `json:"name"`
	Username  string  `json:"username"`
	AvatarURL *string `json:"avatar_url"`
	Email     string  `json:"email"`
}

type runnerAttrs struct {
	ID          int64    `json:"id"`
	Description string   `json:"description"`
	RunnerType  string   `json:"runner_type"`
	Active      bool     `json:"active"`
	IsShared    bool     `json:"is_shared"`
	Tags        []string `json:"tags"`
}

type jobCommit struct {
	ID          int64     `json:"id"` // the pipeline's id, as GitLab has it
	Name        *string   `json:"name"`
	SHA         string    `json:"sha"`
	Message     string    `json:"message"`
	AuthorName  string    `json:"author_name"`
	AuthorEmail string    `json:"author_email"`
	AuthorURL   string    `json:"author_url"`
	Status      string    `json:"status"`
	Duration    *int64    `json:"duration"`
	StartedAt   *hookTime `json:"started_at"`
	FinishedAt  *hookTime `json:"finished_at"`
}

type repositoryAttrs struct {
	Name            string `json:"name"`
	URL             string `json:"url"`
	Description     string `json:"description"`
	Homepage        string `json:"homepage"`
	GitHTTPURL      string `json:"git_http_url"`
	GitSSHURL       string `json:"git_ssh_url"`
	VisibilityLevel int    `json:"visibility_level"`
}

// jobHook is GitLab's job event ("Job Hook").
type jobHook struct {
	ObjectKind          string          `json:"object_kind"`
	Ref                 string          `json:"ref"`
	Tag                 bool            `json:"tag"`
	BeforeSHA           string          `json:"before_sha"`
	SHA                 string          `json:"sha"`
	BuildID             int64           `json:"build_id"`
	BuildName           string          `json:"build_name"`
	BuildStage          string          `json:"build_stage"`
	BuildStatus         string          `json:"build_status"`
	BuildCreatedAt      hookTime        `json:"build_created_at"`
	BuildStartedAt      *hookTime       `json:"build_started_at"`
	BuildFinishedAt     *hookTime       `json:"build_finished_at"`
	BuildDuration       *float64        `json:"build_duration"`
	BuildQueuedDuration *float64        `json:"build_queued_duration"`
	BuildAllowFailure   bool            `json:"build_allow_failure"`
	BuildFailureReason  string          `json:"build_failure_reason"`
	PipelineID          int64           `json:"pipeline_id"`
	Runner              *runnerAttrs    `json:"runner"`
	ProjectID           int64           `json:"project_id"`
	ProjectName         string          `json:"project_name"`
	User                *userAttrs      `json:"user"`
	Commit              jobCommit       `json:"commit"`
	Repository          repositoryAttrs `json:"repository"`
	Environment         any             `json:"environment"`
}

type variableAttrs struct {
	Key   string `json:"key"`
	Value string `json:"value"`
}

type pipelineAttrs struct {
	ID             int64           `json:"id"`
	IID            int64           `json:"iid"`
	Name           *string         `json:"name"`
	Ref            string          `json:"ref"`
	Tag            bool            `json:"tag"`
	SHA            string          `json:"sha"`
	BeforeSHA      string          `json:"before_sha"`
	Source         string          `json:"source"`
	Status         string          `json:"status"`
	DetailedStatus string          `json:"detailed_status"`
	Stages         []string        `json:"stages"`
	CreatedAt      hookTime        `json:"created_at"`
	FinishedAt     *hookTime       `json:"finished_at"`
	Duration       *int64          `json:"duration"`
	QueuedDuration *int64          `json:"queued_duration"`
	ProtectedRef   bool            `json:"protected_ref"`
	Variables      []variableAttrs `json:"variables"`
	URL            string          `json:"url"`
}

type projectAttrs struct {
	ID                int64   `json:"id"`
	Name              string  `json:"name"`
	Description       string  `json:"description"`
	WebURL            string  `json:"web_url"`
	AvatarURL         *string `json:"avatar_url"`
	GitSSHURL         string  `json:"git_ssh_url"`
	GitHTTPURL        string  `json:"git_http_url"`
	Namespace         string  `json:"namespace"`
	VisibilityLevel   int     `json:"visibility_level"`
	PathWithNamespace string  `json:"path_with_namespace"`
	DefaultBranch     string  `json:"default_branch"`
	CIConfigPath      *string `json:"ci_config_path"`
	Homepage          string  `json:"homepage"`
	URL               string  `json:"url"`
	SSHURL            string  `json:"ssh_url"`
	HTTPURL           string  `json:"http_url"`
}

type commitAuthor struct {
	Name  string `json:"name"`
	Email string `json:"email"`
}

type pipelineCommit struct {
	ID        string       `json:"id"`
	Message   string       `json:"message"`
	Title     string       `json:"title"`
	Timestamp *time.Time   `json:"timestamp"`
	URL       string       `json:"url"`
	Author    commitAuthor `json:"author"`
}

type sourcePipeline struct {
	Project struct {
		ID                int64  `json:"id"`
		WebURL            string `json:"web_url"`
		PathWithNamespace string `json:"path_with_namespace"`
	} `json:"project"`
	JobID      *int64 `json:"job_id"`
	PipelineID int64  `json:"pipeline_id"`
}

type artifactsFile struct {
	Filename *string `json:"filename"`
	Size     *int64  `json:"size"`
}

type buildAttrs struct {
	ID             int64         `json:"id"`
	Stage          string        `json:"stage"`
	Name           string        `json:"name"`
	Status         string        `json:"status"`
	CreatedAt      hookTime      `json:"created_at"`
	StartedAt      *hookTime     `json:"started_at"`
	FinishedAt     *hookTime     `json:"finished_at"`
	Duration       *float64      `json:"duration"`
	QueuedDuration *float64      `json:"queued_duration"`
	FailureReason  *string       `json:"failure_reason"`
	When           string        `json:"when"`
	Manual         bool          `json:"manual"`
	AllowFailure   bool          `json:"allow_failure"`
	User           *userAttrs    `json:"user"`
	Runner         *runnerAttrs  `json:"runner"`
	ArtifactsFile  artifactsFile `json:"artifacts_file"`
	Environment    any           `json:"environment"`
}

// pipelineHook is GitLab's pipeline event ("Pipeline Hook").
type pipelineHook struct {
	ObjectKind       string          `json:"object_kind"`
	ObjectAttributes pipelineAttrs   `json:"object_attributes"`
	MergeRequest     any             `json:"merge_request"`
	User             *userAttrs      `json:"user"`
	Project          projectAttrs    `json:"project"`
	Commit           *pipelineCommit `json:"commit"`
	SourcePipeline   *sourcePipeline `json:"source_pipeline,omitempty"`
	Builds           []buildAttrs    `json:"builds"`
}

// builder reads what a payload needs from the store.
type builder struct {
	store       store.Store
	externalURL string
	now         time.Time
}

func (b *builder) projectWebURL(p *ci.Project) string { return b.externalURL + "/" + p.FullPath }

func (b *builder) user(ctx context.Context, id *int64) *userAttrs {
	if id == nil {
		return nil
	}
	u, err := b.store.UserByID(ctx, *id)
	if err != nil {
		return nil
	}
	return &userAttrs{ID: u.ID, Name: u.Name, Username: u.Username, Email: u.Email}
}

func (b *builder) runners(ctx context.Context, jobs []*ci.Job) map[int64]*runnerAttrs {
	var ids []int64
	for _, j := range jobs {
		if j.RunnerID != nil {
			ids = append(ids, *j.RunnerID)
		}
	}
	out := map[int64]*runnerAttrs{}
	if len(ids) == 0 {
		return out
	}
	rs, err := b.store.RunnersByIDs(ctx, ids)
	if err != nil {
		return out
	}
	for id, r := range rs {
		tags := r.TagList
		if tags == nil {
			tags = []string{}
		}
		out[id] = &runnerAttrs{ID: r.ID, Description: r.Description, RunnerType: string(r.Type), Active: !r.Paused, IsShared: r.Type == ci.InstanceRunner, Tags: tags}
	}
	return out
}

func (b *builder) commit(ctx context.Context, projectID int64, sha string) *ci.Commit {
	cs, err := b.store.CommitsBySHA(ctx, projectID, []string{sha})
	if err != nil {
		return nil
	}
	return cs[sha]
}

// errGone is returned for an event whose project no longer exists.
var errGone = errors.New("the event's project no longer exists")

// jobPayload builds a job event from the event (status and times as of the
// change) and what the store still holds of the job.
func (b *builder) jobPayload(ctx context.Context, e *ci.StatusEvent) ([]byte, error) {
	project, err := b.store.ProjectByID(ctx, e.ProjectID)
	if err != nil {
		return nil, errGone
	}
	h := jobHook{ObjectKind: "build", Ref: e.Ref, Tag: e.Tag, SHA: e.SHA, BuildID: e.ObjectID, BuildName: e.Name, BuildStage: e.Stage,
		BuildStatus: string(e.Status), BuildCreatedAt: hookTime(e.CreatedAt), BuildStartedAt: hookTimeOf(e.StartedAt),
		BuildFinishedAt: hookTimeOf(e.FinishedAt), PipelineID: e.PipelineID, ProjectID: project.ID,
		ProjectName: project.Namespace.FullName + " / " + project.Name, Commit: jobCommit{ID: e.PipelineID, SHA: e.SHA},
		Repository: repositoryAttrs{Name: project.Name, URL: b.projectWebURL(project) + ".git", Description: project.Description,
			Homepage: b.projectWebURL(project), GitHTTPURL: b.projectWebURL(project) + ".git", VisibilityLevel: project.Visibility.Level()}}
	if e.Status == ci.StatusFailed {
		h.BuildFailureReason = string(e.FailureReason)
	}
	if e.StartedAt != nil {
		end := e.At
		if e.FinishedAt != nil {
			end = *e.FinishedAt
		}
		d := end.Sub(*e.StartedAt).Seconds()
		h.BuildDuration = &d
	}
	if j, err := b.store.JobByID(ctx, e.ProjectID, e.ObjectID); err == nil {
		h.BuildAllowFailure = j.AllowFailure
		if j.QueuedAt != nil && e.StartedAt != nil {
			d := e.StartedAt.Sub(*j.QueuedAt).Seconds()
			h.BuildQueuedDuration = &d
		}
		h.User = b.user(ctx, j.UserID)
		h.Runner = b.runners(ctx, []*ci.Job{j})[idOr0(j.RunnerID)]
	}
	if pl, err := b.store.PipelineByID(ctx, e.ProjectID, e.PipelineID); err == nil {
		h.BeforeSHA = pl.BeforeSHA
		h.Commit.Status = string(pl.Status)
		h.Commit.StartedAt, h.Commit.FinishedAt = hookTimeOf(pl.StartedAt), hookTimeOf(pl.FinishedAt)
		h.Commit.Duration = wholeSeconds(pl.Duration)
		if h.User == nil {
			h.User = b.user(ctx, pl.UserID)
		}
	}
	if c := b.commit(ctx, e.ProjectID, e.SHA); c != nil {
		h.Commit.Message, h.Commit.AuthorName, h.Commit.AuthorEmail = c.Message, c.AuthorName, c.AuthorEmail
		h.Commit.AuthorURL = "mailto:" + c.AuthorEmail
	}
	return json.Marshal(h)
}

// pipelinePayload builds a pipeline event: the pipeline's status and times
// as of the change, its latest jobs as they are now.
func (b *builder) pipelinePayload(ctx context.Context, e *ci.StatusEvent) ([]byte, error) {
	project, err := b.store.ProjectByID(ctx, e.ProjectID)
	if err != nil {
		return nil, errGone
	}
	web := b.projectWebURL(project)
	h := pipelineHook{ObjectKind: "pipeline",
		ObjectAttributes: pipelineAttrs{ID: e.ObjectID, Ref: e.Ref, Tag: e.Tag, SHA: e.SHA, Status: string(e.Status), DetailedStatus: e.Status.Label(),
			Stages: []string{}, CreatedAt: hookTime(e.CreatedAt), FinishedAt: hookTimeOf(e.FinishedAt), Variables: []variableAttrs{},
			URL: web + "/-/pipelines/" + strconv.FormatInt(e.ObjectID, 10)},
		Project: projectAttrs{ID: project.ID, Name: project.Name, Description: project.Description, WebURL: web, GitHTTPURL: web + ".git",
			Namespace: project.Namespace.Name, VisibilityLevel: project.Visibility.Level(), PathWithNamespace: project.FullPath,
			DefaultBranch: project.DefaultBranch, Homepage: web, URL: web + ".git", HTTPURL: web + ".git"},
		Builds: []buildAttrs{}}
	if e.StartedAt != nil && e.FinishedAt != nil {
		h.ObjectAttributes.Duration = wholeSeconds(new(e.FinishedAt.Sub(*e.StartedAt).Seconds()))
	}
	if e.StartedAt != nil {
		h.ObjectAttributes.QueuedDuration = wholeSeconds(new(e.StartedAt.Sub(e.CreatedAt).Seconds()))
	}
	pl, err := b.store.PipelineByID(ctx, e.ProjectID, e.ObjectID)
	if err == nil {
		h.ObjectAttributes.IID, h.ObjectAttributes.BeforeSHA, h.ObjectAttributes.Source = pl.IID, pl.BeforeSHA, string(pl.Source)
		h.ObjectAttributes.ProtectedRef = pl.Protected
		h.User = b.user(ctx, pl.UserID)
		if vars, err := b.store.PipelineVariables(ctx, pl.ID); err == nil {
			for _, v := range vars {
				h.ObjectAttributes.Variables = append(h.ObjectAttributes.Variables, variableAttrs{Key: v.Key, Value: v.Value})
			}
		}
		if pl.ParentID != nil {
			if up, err := b.store.PipelinesByIDs(ctx, []int64{*pl.ParentID}); err == nil && up[*pl.ParentID] != nil {
				src := &sourcePipeline{PipelineID: *pl.ParentID}
				if upProject, err := b.store.ProjectByID(ctx, up[*pl.ParentID].ProjectID); err == nil {
					src.Project.ID, src.Project.WebURL, src.Project.PathWithNamespace = upProject.ID, b.projectWebURL(upProject), upProject.FullPath
				}
				if bridge, err := b.store.BridgeOf(ctx, pl.ID); err == nil {
					src.JobID = &bridge.ID
				}
				h.SourcePipeline = src
			}
		}
		jobs, err := b.store.ListJobs(ctx, store.JobFilter{ProjectID: e.ProjectID, PipelineID: pl.ID, Kind: ci.KindBuild, Limit: 1000})
		if err == nil {
			h.Builds, h.ObjectAttributes.Stages = b.builds(ctx, jobs)
		}
	}
	if c := b.commit(ctx, e.ProjectID, e.SHA); c != nil {
		ts := c.AuthoredDate
		h.Commit = &pipelineCommit{ID: c.SHA, Message: c.Message, Title: c.Title, Timestamp: &ts, URL: web + "/-/commit/" + c.SHA,
			Author: commitAuthor{Name: c.AuthorName, Email: c.AuthorEmail}}
	}
	return json.Marshal(h)
}

// builds renders a pipeline's jobs (id descending from the store) in id
// order, with the pipeline's stages in order.
func (b *builder) builds(ctx context.Context, jobs []*ci.Job) ([]buildAttrs, []string) {
	runners := b.runners(ctx, jobs)
	artifacts, _ := b.store.ArtifactsByJobIDs(ctx, jobIDs(jobs))
	out := make([]buildAttrs, 0, len(jobs))
	stageIdx := map[string]int{}
	for i := len(jobs) - 1; i >= 0; i-- {
		j := jobs[i]
		stageIdx[j.Stage] = j.StageIdx
		ba := buildAttrs{ID: j.ID, Stage: j.Stage, Name: j.Name, Status: string(j.Status), CreatedAt: hookTime(j.CreatedAt),
			StartedAt: hookTimeOf(j.StartedAt), FinishedAt: hookTimeOf(j.FinishedAt), Duration: j.Duration(b.now),
			QueuedDuration: j.QueuedDuration(b.now), When: j.When, Manual: j.When == "manual", AllowFailure: j.AllowFailure,
			User: b.user(ctx, j.UserID), Runner: runners[idOr0(j.RunnerID)]}
		if j.Status == ci.StatusFailed {
			ba.FailureReason = new(string(j.FailureReason))
		}
		for _, a := range artifacts[j.ID] {
			if a.FileType == "archive" {
				ba.ArtifactsFile = artifactsFile{Filename: &a.Filename, Size: &a.Size}
			}
		}
		out = append(out, ba)
	}
	stages := make([]string, 0, len(stageIdx))
	for s := range stageIdx {
		stages = append(stages, s)
	}
	slices.SortFunc(stages, func(a, b string) int { return cmp.Compare(stageIdx[a], stageIdx[b]) })
	return out, stages
}

func jobIDs(jobs []*ci.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func idOr0(id *int64) int64 {
	if id == nil {
		return 0
	}
	return *id
}

func wholeSeconds(d *float64) *int64 {
	if d == nil {
		return nil
	}
	return new(int64(*d))
}
