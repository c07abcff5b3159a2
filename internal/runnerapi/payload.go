package runnerapi

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/pipeline"
	"gantry/internal/store"
)

// The job payload, field for field as gitlab-runner decodes it.
type payloadVariable struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Public bool   `json:"public"`
	Masked bool   `json:"masked"`
	File   bool   `json:"file"`
	Raw    bool   `json:"raw"`
}

type payloadStep struct {
	Name         string   `json:"name"`
	Script       []string `json:"script"`
	Timeout      int      `json:"timeout"`
	When         string   `json:"when"`
	AllowFailure bool     `json:"allow_failure"`
}

type payloadArtifact struct {
	Name           string   `json:"name"`
	Untracked      bool     `json:"untracked"`
	Paths          []string `json:"paths"`
	Exclude        []string `json:"exclude"`
	When           string   `json:"when"`
	ArtifactType   string   `json:"artifact_type"`
	ArtifactFormat string   `json:"artifact_format"`
	ExpireIn       string   `json:"expire_in"`
}

type payloadImage struct {
	Name       string   `json:"name"`
	Alias      string   `json:"alias,omitempty"`
	Command    []string `json:"command,omitempty"`
	Entrypoint []string `json:"entrypoint,omitempty"`
	PullPolicy []string `json:"pull_policy,omitempty"`
}

type payloadDependency struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Token         string `json:"token"`
	ArtifactsFile struct {
		Filename string `json:"filename"`
		Size     int64  `json:"size"`
	} `json:"artifacts_file"`
}

type jobPayload struct {
	ID            int64               `json:"id"`
	Token         string              `json:"token"`
	AllowGitFetch bool                `json:"allow_git_fetch"`
	JobInfo       payloadJobInfo      `json:"job_info"`
	GitInfo       payloadGitInfo      `json:"git_info"`
	RunnerInfo    payloadRunnerInfo   `json:"runner_info"`
	Variables     []payloadVariable   `json:"variables"`
	Steps         []payloadStep       `json:"steps"`
	Image         *payloadImage       `json:"image"`
	Services      []payloadImage      `json:"services"`
	Artifacts     []payloadArtifact   `json:"artifacts"`
	Cache         []any               `json:"cache"`
	Credentials   []any               `json:"credentials"`
	Dependencies  []payloadDependency `json:"dependencies"`
	Features      payloadFeatures     `json:"features"`
}

type payloadJobInfo struct {
	ID                 int64   `json:"id"`
	Name               string  `json:"name"`
	Stage              string  `json:"stage"`
	ProjectID          int64   `json:"project_id"`
	ProjectName        string  `json:"project_name"`
	ProjectFullPath    string  `json:"project_full_path"`
	NamespaceID        int64   `json:"namespace_id"`
	PipelineID         int64   `json:"pipeline_id"`
	UserID             *int64  `json:"user_id"`
	TimeInQueueSeconds float64 `json:"time_in_queue_seconds"`
	// GitLab sends this count as a string.
	InstanceRunnersJobs string `json:"project_jobs_running_on_instance_runners_count"`
}

type payloadGitInfo struct {
	RepoURL          string   `json:"repo_url"`
	RepoObjectFormat string   `json:"repo_object_format"`
	Ref              string   `json:"ref"`
	SHA              string   `json:"sha"`
	BeforeSHA        string   `json:"before_sha"`
	RefType          string   `json:"ref_type"`
	Protected        bool     `json:"protected"`
	Refspecs         []string `json:"refspecs"`
	Depth            int      `json:"depth"`
}

type payloadRunnerInfo struct {
	Timeout int `json:"timeout"`
}

type payloadFeatures struct {
	TraceSections     bool     `json:"trace_sections"`
	TokenMaskPrefixes []string `json:"token_mask_prefixes"`
	FailureReasons    []string `json:"failure_reasons"`
}

// payload builds what the runner needs to run job.
func (a *API) payload(ctx context.Context, c *claimedJob, runner *ci.Runner) (*jobPayload, error) {
	job, token := c.Job, c.token
	project, err := a.store.ProjectByID(ctx, job.ProjectID)
	if err != nil {
		return nil, err
	}
	// A pipeline's ref, sha and source never change: what the claim read,
	// or else the cached batch read, serves.
	pl := c.Pipeline
	if pl == nil {
		pls, err := a.store.PipelinesByIDs(ctx, []int64{job.PipelineID})
		if err != nil {
			return nil, err
		}
		if pl = pls[job.PipelineID]; pl == nil {
			return nil, ci.ErrNotFound
		}
	}
	spec, err := pipeline.ParseSpec(c.Spec)
	if err != nil {
		return nil, err
	}
	// The claim recorded the runner's contact; the first log append need not.
	contact := a.now()
	if job.RunnerUpdatedAt != nil {
		contact = *job.RunnerUpdatedAt
	}
	a.handedOut(job.ID, contact, spec.Coverage)
	timeout := 3600
	if job.TimeoutSeconds != nil {
		timeout = *job.TimeoutSeconds
	}
	base, _ := url.Parse(a.cfg.ExternalURL)
	repo := *base
	repo.User = url.UserPassword("gitlab-ci-token", token)
	repo.Path = strings.TrimRight(base.Path, "/") + "/" + project.FullPath + ".git"
	refType, refspec := "branch", "+refs/heads/"+pl.Ref+":refs/remotes/origin/"+pl.Ref
	if pl.Tag {
		refType, refspec = "tag", "+refs/tags/"+pl.Ref+":refs/tags/"+pl.Ref
	}
	p := &jobPayload{
		ID: job.ID, Token: token,
		JobInfo: payloadJobInfo{ID: job.ID, Name: job.Name, Stage: job.Stage, ProjectID: project.ID, ProjectName: project.Name,
			ProjectFullPath: project.FullPath, NamespaceID: project.NamespaceID, PipelineID: pl.ID, UserID: job.UserID,
			TimeInQueueSeconds: queued(job), InstanceRunnersJobs: "0"},
		GitInfo: payloadGitInfo{RepoURL: repo.String(), RepoObjectFormat: "sha1", Ref: pl.Ref, SHA: pl.SHA, BeforeSHA: pl.BeforeSHA,
			RefType: refType, Protected: pl.Protected, Refspecs: []string{"+" + pl.SHA + ":refs/pipelines/" + strconv.FormatInt(pl.ID, 10), refspec}, Depth: 20},
		RunnerInfo:   payloadRunnerInfo{Timeout: timeout},
		Services:     []payloadImage{},
		Artifacts:    []payloadArtifact{},
		Cache:        []any{},
		Credentials:  []any{},
		Dependencies: []payloadDependency{},
		Features:     payloadFeatures{TraceSections: true, TokenMaskPrefixes: tokenMaskPrefixes, FailureReasons: failureReasons},
	}
	p.Variables = a.variables(ctx, project, pl, c, spec, repo.String())
	script := append(append([]string{}, spec.BeforeScript...), spec.Script...)
	p.Steps = []payloadStep{{Name: "script", Script: script, Timeout: timeout, When: "on_success"}}
	if len(spec.AfterScript) > 0 {
		p.Steps = append(p.Steps, payloadStep{Name: "after_script", Script: spec.AfterScript, Timeout: timeout, When: "always", AllowFailure: true})
	}
	if spec.Image != nil {
		p.Image = &payloadImage{Name: spec.Image.Name, Alias: spec.Image.Alias, Command: spec.Image.Command, Entrypoint: spec.Image.Entrypoint, PullPolicy: spec.Image.PullPolicy}
	}
	for _, s := range spec.Services {
		p.Services = append(p.Services, payloadImage{Name: s.Name, Alias: s.Alias, Command: s.Command, Entrypoint: s.Entrypoint, PullPolicy: s.PullPolicy})
	}
	if spec.Cache != nil {
		p.Cache = spec.Cache
	}
	if art := spec.Artifacts; art != nil {
		when := art.When
		if when == "" {
			when = "on_success"
		}
		if len(art.Paths) > 0 || art.Untracked {
			p.Artifacts = append(p.Artifacts, payloadArtifact{Name: art.Name, Untracked: art.Untracked, Paths: art.Paths, Exclude: nonNilStrings(art.Exclude),
				When: when, ArtifactType: "archive", ArtifactFormat: "zip", ExpireIn: art.ExpireIn})
		}
		for typ, paths := range art.Reports {
			p.Artifacts = append(p.Artifacts, payloadArtifact{Name: typ, Paths: paths, Exclude: []string{}, When: "always", ArtifactType: typ, ArtifactFormat: "gzip", ExpireIn: art.ExpireIn})
		}
	}
	deps, err := a.dependencies(ctx, job, spec, token)
	if err != nil {
		return nil, err
	}
	p.Dependencies = deps
	return p, nil
}

var (
	tokenMaskPrefixes = []string{ci.JobTokenPrefix, ci.PersonalTokenPrefix, ci.RunnerTokenPrefix}
	failureReasons    = []string{string(ci.FailureUnknown), string(ci.FailureScript), string(ci.FailureRunnerSystem), string(ci.FailureJobExecutionTimeout),
		string(ci.FailureAPI), string(ci.FailureStuckOrTimeout), "image_pull_failure"}
)

func nonNilStrings(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func queued(j *ci.Job) float64 {
	if j.QueuedAt == nil || j.StartedAt == nil {
		return 0
	}
	return j.StartedAt.Sub(*j.QueuedAt).Seconds()
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

// variables are the predefined CI variables, then the pipeline's YAML
// variables, the job's, and the pipeline's user-supplied ones (highest).
func (a *API) variables(ctx context.Context, p *ci.Project, pl *ci.Pipeline, c *claimedJob, spec *pipeline.JobSpec, repoURL string) []payloadVariable {
	j, token := c.Job, c.token
	base, _ := url.Parse(a.cfg.ExternalURL)
	port := base.Port()
	if port == "" {
		port = map[string]string{"https": "443"}[base.Scheme]
		if port == "" {
			port = "80"
		}
	}
	pub := func(k, v string) payloadVariable { return payloadVariable{Key: k, Value: v, Public: true} }
	secret := func(k, v string) payloadVariable { return payloadVariable{Key: k, Value: v, Masked: true} }
	projectURL := a.cfg.ExternalURL + "/" + p.FullPath
	vars := []payloadVariable{
		pub("CI", "true"), pub("GITLAB_CI", "true"),
		pub("CI_SERVER_URL", a.cfg.ExternalURL), pub("CI_SERVER_HOST", base.Hostname()), pub("CI_SERVER_PORT", port),
		pub("CI_SERVER_PROTOCOL", base.Scheme), pub("CI_SERVER_NAME", "GitLab"), pub("CI_SERVER_VERSION", a.cfg.Version),
		pub("CI_API_V4_URL", a.cfg.ExternalURL+"/api/v4"),
		pub("CI_PROJECT_ID", itoa(p.ID)), pub("CI_PROJECT_NAME", p.Path), pub("CI_PROJECT_TITLE", p.Name), pub("CI_PROJECT_PATH", p.FullPath),
		pub("CI_PROJECT_PATH_SLUG", pipeline.RefSlug(p.FullPath)), pub("CI_PROJECT_NAMESPACE", p.Namespace.FullPath),
		pub("CI_PROJECT_ROOT_NAMESPACE", strings.SplitN(p.Namespace.FullPath, "/", 2)[0]), pub("CI_PROJECT_URL", projectURL),
		pub("CI_PROJECT_VISIBILITY", string(p.Visibility)), pub("CI_DEFAULT_BRANCH", p.DefaultBranch),
		pub("CI_PIPELINE_ID", itoa(pl.ID)), pub("CI_PIPELINE_IID", itoa(pl.IID)), pub("CI_PIPELINE_SOURCE", string(pl.Source)),
		pub("CI_PIPELINE_URL", projectURL+"/-/pipelines/"+itoa(pl.ID)), pub("CI_PIPELINE_CREATED_AT", pl.CreatedAt.UTC().Format(time.RFC3339)),
		pub("CI_JOB_ID", itoa(j.ID)), pub("CI_JOB_NAME", j.Name), pub("CI_JOB_NAME_SLUG", pipeline.RefSlug(j.Name)), pub("CI_JOB_STAGE", j.Stage),
		pub("CI_JOB_URL", projectURL+"/-/jobs/"+itoa(j.ID)), pub("CI_JOB_MANUAL", strconv.FormatBool(j.When == "manual")),
		secret("CI_JOB_TOKEN", token), secret("CI_BUILD_TOKEN", token),
		{Key: "CI_REPOSITORY_URL", Value: repoURL},
		pub("CI_COMMIT_SHA", pl.SHA), pub("CI_COMMIT_SHORT_SHA", short(pl.SHA)), pub("CI_COMMIT_BEFORE_SHA", pl.BeforeSHA),
		pub("CI_COMMIT_REF_NAME", pl.Ref), pub("CI_COMMIT_REF_SLUG", pipeline.RefSlug(pl.Ref)), pub("CI_COMMIT_REF_PROTECTED", strconv.FormatBool(pl.Protected)),
	}
	if j.StartedAt != nil {
		vars = append(vars, pub("CI_JOB_STARTED_AT", j.StartedAt.UTC().Format(time.RFC3339)))
	}
	if pl.Tag {
		vars = append(vars, pub("CI_COMMIT_TAG", pl.Ref))
	} else {
		vars = append(vars, pub("CI_COMMIT_BRANCH", pl.Ref))
	}
	if cm, err := a.store.CommitsBySHA(ctx, p.ID, []string{pl.SHA}); err == nil && cm[pl.SHA] != nil {
		c := cm[pl.SHA]
		vars = append(vars, pub("CI_COMMIT_MESSAGE", c.Message), pub("CI_COMMIT_TITLE", c.Title),
			pub("CI_COMMIT_AUTHOR", c.AuthorName+" <"+c.AuthorEmail+">"), pub("CI_COMMIT_TIMESTAMP", c.CommittedDate.Format(time.RFC3339)))
	}
	if spec.Parallel != nil && spec.Parallel.Total > 1 {
		vars = append(vars, pub("CI_NODE_INDEX", strconv.Itoa(spec.Parallel.Index)), pub("CI_NODE_TOTAL", strconv.Itoa(spec.Parallel.Total)))
	}
	if spec.Environment != "" {
		vars = append(vars, pub("CI_ENVIRONMENT_NAME", spec.Environment), pub("CI_ENVIRONMENT_SLUG", pipeline.RefSlug(spec.Environment)))
	}
	if j.UserID != nil {
		if us, err := a.store.UsersByIDs(ctx, []int64{*j.UserID}); err == nil && us[*j.UserID] != nil {
			u := us[*j.UserID]
			vars = append(vars, pub("GITLAB_USER_ID", itoa(u.ID)), pub("GITLAB_USER_LOGIN", u.Username), pub("GITLAB_USER_NAME", u.Name), pub("GITLAB_USER_EMAIL", u.Email))
		}
	}
	for _, v := range spec.Variables {
		vars = append(vars, payloadVariable{Key: v.Key, Value: v.Value, Public: true, Raw: !v.Expand})
	}
	pvars, err := c.PipelineVariables, error(nil)
	if c.Pipeline == nil { // the claim did not read them
		pvars, err = a.store.PipelineVariables(ctx, pl.ID)
	}
	if err == nil {
		for _, v := range pvars {
			vars = append(vars, payloadVariable{Key: v.Key, Value: v.Value, File: v.VariableType == "file"})
		}
	}
	// Variables given when the job was played come last: they win.
	for _, v := range c.Variables {
		vars = append(vars, payloadVariable{Key: v.Key, Value: v.Value})
	}
	return vars
}

func short(sha string) string {
	if len(sha) > 8 {
		return sha[:8]
	}
	return sha
}

// dependencies lists the earlier jobs whose artifacts this job downloads:
// `dependencies:` when given, else `needs:` with artifacts, else every job
// of earlier stages.
func (a *API) dependencies(ctx context.Context, job *ci.Job, spec *pipeline.JobSpec, token string) ([]payloadDependency, error) {
	f := store.JobFilter{ProjectID: job.ProjectID, PipelineID: job.PipelineID, Kind: ci.KindBuild, Limit: 1000}
	if !spec.DependenciesSet && !spec.NeedsSet {
		if job.StageIdx == 0 {
			return []payloadDependency{}, nil
		}
		f.BeforeStage = job.StageIdx
	}
	jobs, err := a.store.ListJobs(ctx, f)
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	switch {
	case spec.DependenciesSet:
		for _, d := range spec.Dependencies {
			want[d] = true
		}
	case spec.NeedsSet:
		for _, n := range spec.Needs {
			if n.Artifacts {
				want[n.Job] = true
			}
		}
	}
	var ids []int64
	var picked []*ci.Job
	for _, j := range jobs {
		if j.ID == job.ID {
			continue
		}
		if spec.DependenciesSet || spec.NeedsSet {
			if !want[j.Name] {
				continue
			}
		} else if j.StageIdx >= job.StageIdx {
			continue
		}
		picked = append(picked, j)
		ids = append(ids, j.ID)
	}
	arts, err := a.store.ArtifactsByJobIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	out := []payloadDependency{}
	for i := len(picked) - 1; i >= 0; i-- {
		j := picked[i]
		d := payloadDependency{ID: j.ID, Name: j.Name, Token: token}
		for _, art := range arts[j.ID] {
			if art.FileType == "archive" && (art.ExpireAt == nil || art.ExpireAt.After(a.now())) {
				d.ArtifactsFile.Filename, d.ArtifactsFile.Size = art.Filename, art.Size
			}
		}
		out = append(out, d)
	}
	return out, nil
}
