package httpapi

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"time"

	"gantry/internal/ci"
	"gantry/internal/jsonw"
)

// jobContext holds what rendering a batch of jobs needs, loaded with one
// query per related table rather than one per job.
type jobContext struct {
	project   *ci.Project
	pipelines map[int64]*ci.Pipeline
	users     map[int64]*ci.User
	commits   map[string]*ci.Commit
	runners   map[int64]*ci.Runner
	managers  map[int64]*ci.RunnerManager
	artifacts map[int64][]*ci.Artifact
	now       time.Time

	// Encoded sub-objects, shared by the jobs of one page: most jobs of a
	// page have the same user, commit and pipeline.
	encUsers     map[int64]json.RawMessage
	encCommits   map[string]json.RawMessage
	encPipelines map[int64]json.RawMessage
	encRunners   map[runnerKey]json.RawMessage
	encManagers  map[runnerKey]json.RawMessage
	jobsURL      string // the project's web URL + "/-/jobs/", once per page
}

func encode(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		return json.RawMessage("null")
	}
	return b
}

func (a *API) encUser(jc *jobContext, id int64) json.RawMessage {
	if b, ok := jc.encUsers[id]; ok {
		return b
	}
	b := json.RawMessage("null")
	if u := jc.users[id]; u != nil {
		b = a.encoded.get(u, func() json.RawMessage { return encode(a.userEntity(u)) })
	}
	jc.encUsers[id] = b
	return b
}

func (a *API) encCommit(jc *jobContext, sha string) json.RawMessage {
	if b, ok := jc.encCommits[sha]; ok {
		return b
	}
	b := json.RawMessage("null")
	if c := jc.commits[sha]; c != nil {
		p := jc.project
		b = a.encoded.get(c, func() json.RawMessage { return encode(a.commitEntity(p, c)) })
	}
	jc.encCommits[sha] = b
	return b
}

func (a *API) encPipeline(jc *jobContext, pl *ci.Pipeline) json.RawMessage {
	if b, ok := jc.encPipelines[pl.ID]; ok {
		return b
	}
	p := jc.project
	b := a.encoded.get(pl, func() json.RawMessage { return encode(a.pipelineBasic(p, pl)) })
	jc.encPipelines[pl.ID] = b
	return b
}

// loadJobContext reads what rendering jobs needs besides the jobs. arts,
// when not nil, are the jobs' artifacts already read with them.
func (a *API) loadJobContext(ctx context.Context, p *ci.Project, jobs []*ci.Job, arts map[int64][]*ci.Artifact) (*jobContext, error) {
	jc := &jobContext{project: p, now: a.now(), encUsers: map[int64]json.RawMessage{},
		encCommits: map[string]json.RawMessage{}, encPipelines: map[int64]json.RawMessage{}, encRunners: map[runnerKey]json.RawMessage{},
		encManagers: map[runnerKey]json.RawMessage{}}
	var pipelineIDs, userIDs, runnerIDs, managerIDs, jobIDs []int64
	for _, j := range jobs {
		pipelineIDs = append(pipelineIDs, j.PipelineID)
		if j.DownstreamPipelineID != nil {
			pipelineIDs = append(pipelineIDs, *j.DownstreamPipelineID)
		}
		if j.UserID != nil {
			userIDs = append(userIDs, *j.UserID)
		}
		if j.RunnerID != nil {
			runnerIDs = append(runnerIDs, *j.RunnerID)
		}
		if j.RunnerManagerID != nil {
			managerIDs = append(managerIDs, *j.RunnerManagerID)
		}
		if j.Kind == ci.KindBuild {
			jobIDs = append(jobIDs, j.ID)
		}
	}
	var err error
	if jc.pipelines, err = a.store.PipelinesByIDs(ctx, pipelineIDs); err != nil {
		return nil, err
	}
	seen := map[string]bool{}
	var shas []string
	for _, j := range jobs {
		if pl := jc.pipelines[j.PipelineID]; pl != nil && !seen[pl.SHA] {
			seen[pl.SHA] = true
			shas = append(shas, pl.SHA)
		}
	}
	if jc.users, err = a.store.UsersByIDs(ctx, userIDs); err != nil {
		return nil, err
	}
	if jc.commits, err = a.store.CommitsBySHA(ctx, p.ID, shas); err != nil {
		return nil, err
	}
	if jc.runners, err = a.store.RunnersByIDs(ctx, runnerIDs); err != nil {
		return nil, err
	}
	if jc.managers, err = a.store.RunnerManagersByIDs(ctx, managerIDs); err != nil {
		return nil, err
	}
	if jc.artifacts = arts; arts == nil {
		if jc.artifacts, err = a.store.ArtifactsByJobIDs(ctx, jobIDs); err != nil {
			return nil, err
		}
	}
	return jc, nil
}

func (a *API) jobBasic(jc *jobContext, j *ci.Job) jobBasicEntity {
	e := jobBasicEntity{
		ID: j.ID, Status: string(j.Status), Stage: j.Stage, Name: j.Name, Ref: j.Ref, Tag: j.Tag, Coverage: j.Coverage,
		AllowFailure: j.AllowFailure, CreatedAt: Time(j.CreatedAt), StartedAt: tp(j.StartedAt), FinishedAt: tp(j.FinishedAt),
		ErasedAt: tp(j.ErasedAt), Duration: j.Duration(jc.now), QueuedDuration: j.QueuedDuration(jc.now),
		WebURL:  a.projectURL(jc.project) + "/-/jobs/" + strconv.FormatInt(j.ID, 10),
		Project: jobProjectEntity{CIJobTokenScopeEnabled: jc.project.CIJobTokenScopeEnabled},
	}
	e.User, e.Commit, e.Pipeline = json.RawMessage("null"), json.RawMessage("null"), json.RawMessage("null")
	if j.UserID != nil {
		e.User = a.encUser(jc, *j.UserID)
	}
	if pl := jc.pipelines[j.PipelineID]; pl != nil {
		e.Pipeline = a.encPipeline(jc, pl)
		e.Commit = a.encCommit(jc, pl.SHA)
	}
	e.FailureReason = failureReason(j)
	return e
}

// failureReason is the entity's failure_reason: only a failed job has one.
func failureReason(j *ci.Job) string {
	if j.Status != ci.StatusFailed {
		return ""
	}
	if j.FailureReason == "" {
		return string(ci.FailureUnknown)
	}
	return string(j.FailureReason)
}

// artifactFields fills artifacts, artifacts_file and artifacts_expire_at.
func (a *API) artifactFields(jc *jobContext, j *ci.Job) ([]artifactEntity, *artifactsFileEntity) {
	arts := []artifactEntity{}
	for _, art := range jc.artifacts[j.ID] {
		arts = append(arts, artifactEntity{FileType: art.FileType, Size: art.Size, Filename: art.Filename, FileFormat: art.FileFormat})
	}
	var file *artifactsFileEntity
	if art := archiveFile(jc, j); art != nil {
		file = &artifactsFileEntity{Filename: art.Filename, Size: art.Size}
	}
	return arts, file
}

// archiveFile is the artifact artifacts_file describes: the job's last
// archive that has not expired, or nil.
func archiveFile(jc *jobContext, j *ci.Job) *ci.Artifact {
	var file *ci.Artifact
	for _, art := range jc.artifacts[j.ID] {
		if art.FileType == "archive" && (art.ExpireAt == nil || art.ExpireAt.After(jc.now)) {
			file = art
		}
	}
	return file
}

func sortedTags(tags []string) []string {
	if tags == nil {
		return []string{}
	}
	return tags
}

// jobEntityOf renders a build with the Job entity.
func (a *API) jobEntityOf(jc *jobContext, j *ci.Job) any {
	arts, file := a.artifactFields(jc, j)
	runner, manager := jobRunner(jc, j), jobRunnerManager(jc, j)
	if j.Kind == ci.KindBridge {
		// Retry renders a bridge with the Job entity: no runner_manager key,
		// and the single pseudo-tag "bridge".
		return &jobEntity{jobBasicEntity: a.jobBasic(jc, j), Artifacts: []artifactEntity{}, Archived: a.archived(j, jc.now), TagList: []string{"bridge"}}
	}
	return &jobEntityBuild{
		jobBasicEntity: a.jobBasic(jc, j), ArtifactsFile: file, Artifacts: arts, Runner: runner, RunnerManager: manager,
		ArtifactsExpireAt: tp(j.ArtifactsExpireAt), Archived: a.archived(j, jc.now), TagList: sortedTags(j.TagList),
	}
}

func (a *API) bridgeEntityOf(jc *jobContext, j *ci.Job) *bridgeEntity {
	e := &bridgeEntity{jobBasicEntity: a.jobBasic(jc, j)}
	if j.DownstreamPipelineID != nil {
		if dp := jc.pipelines[*j.DownstreamPipelineID]; dp != nil {
			dproj := jc.project
			if dp.ProjectID != jc.project.ID {
				if other, err := a.store.ProjectByID(context.Background(), dp.ProjectID); err == nil {
					dproj = other
				}
			}
			e.DownstreamPipeline = a.pipelineBasic(dproj, dp)
		}
	}
	return e
}

// archived applies the instance setting archive_builds_older_than.
func (a *API) archived(j *ci.Job, now time.Time) bool {
	return a.cfg.ArchiveBuildsOlderThan > 0 && now.Sub(j.CreatedAt) > a.cfg.ArchiveBuildsOlderThan
}

// appendJob appends the Job entity of j. Builds are written straight from
// the job and the page's context, with runners and managers encoded once
// per page: the same bytes as encoding jobEntityOf
// (TestAppendJobMatchesEntity), without building the entity first.
func (a *API) appendJob(b []byte, jc *jobContext, j *ci.Job) []byte {
	if j.Kind == ci.KindBridge {
		return append(b, encode(a.jobEntityOf(jc, j))...)
	}
	b = append(b, `{"id":`...)
	b = strconv.AppendInt(b, j.ID, 10)
	b = jsonw.Field(b, "status", string(j.Status))
	b = jsonw.Field(b, "stage", j.Stage)
	b = jsonw.Field(b, "name", j.Name)
	b = jsonw.Field(b, "ref", j.Ref)
	b = jsonw.BoolField(b, "tag", j.Tag)
	b = appendFloatPtr(jsonw.Key(b, "coverage"), j.Coverage)
	b = jsonw.BoolField(b, "allow_failure", j.AllowFailure)
	b = appendTime(jsonw.Key(b, "created_at"), j.CreatedAt)
	b = appendTimeOrNull(jsonw.Key(b, "started_at"), j.StartedAt)
	b = appendTimeOrNull(jsonw.Key(b, "finished_at"), j.FinishedAt)
	b = appendTimeOrNull(jsonw.Key(b, "erased_at"), j.ErasedAt)
	b = appendFloatPtr(jsonw.Key(b, "duration"), j.Duration(jc.now))
	b = appendFloatPtr(jsonw.Key(b, "queued_duration"), j.QueuedDuration(jc.now))
	b = append(b, `,"user":`...)
	if j.UserID != nil {
		b = append(b, a.encUser(jc, *j.UserID)...)
	} else {
		b = append(b, "null"...)
	}
	commit, pipeline := json.RawMessage("null"), json.RawMessage("null")
	if pl := jc.pipelines[j.PipelineID]; pl != nil {
		pipeline, commit = a.encPipeline(jc, pl), a.encCommit(jc, pl.SHA)
	}
	b = append(b, `,"commit":`...)
	b = append(b, commit...)
	b = append(b, `,"pipeline":`...)
	b = append(b, pipeline...)
	if reason := failureReason(j); reason != "" {
		b = jsonw.Field(b, "failure_reason", reason)
	}
	if jc.jobsURL == "" {
		jc.jobsURL = a.projectURL(jc.project) + "/-/jobs/"
	}
	b = jsonw.Field(b, "web_url", jc.jobsURL+strconv.FormatInt(j.ID, 10))
	b = append(b, `,"project":{"ci_job_token_scope_enabled":`...)
	b = strconv.AppendBool(b, jc.project.CIJobTokenScopeEnabled)
	b = append(b, '}')
	arts := jc.artifacts[j.ID]
	if file := archiveFile(jc, j); file != nil {
		b = append(b, `,"artifacts_file":{"filename":`...)
		b = jsonw.String(b, file.Filename)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, file.Size, 10)
		b = append(b, '}')
	}
	b = append(b, `,"artifacts":[`...)
	for i, art := range arts {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"file_type":`...)
		b = jsonw.String(b, art.FileType)
		b = append(b, `,"size":`...)
		b = strconv.AppendInt(b, art.Size, 10)
		b = jsonw.Fields(b, "filename", art.Filename, "file_format", art.FileFormat)
		b = append(b, '}')
	}
	b = append(b, `],"runner":`...)
	b = append(b, encPerPage(jc.encRunners, j.RunnerID, jc, j, jobRunner)...)
	b = append(b, `,"runner_manager":`...)
	b = append(b, encPerPage(jc.encManagers, j.RunnerManagerID, jc, j, jobRunnerManager)...)
	b = appendTimeOrNull(jsonw.Key(b, "artifacts_expire_at"), j.ArtifactsExpireAt)
	b = jsonw.BoolField(b, "archived", a.archived(j, jc.now))
	b = append(b, `,"tag_list":[`...)
	for i, t := range j.TagList {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonw.String(b, t)
	}
	return append(b, "]}"...)
}

// jobRunner is the runner of j's entity, busy while j executes; nil when
// j has none or it is gone.
func jobRunner(jc *jobContext, j *ci.Job) *runnerEntity {
	if j.RunnerID == nil || jc.runners[*j.RunnerID] == nil {
		return nil
	}
	rc := *jc.runners[*j.RunnerID]
	rc.Busy = j.Status.Executing()
	return runnerEntityOf(&rc, jc.now)
}

// jobRunnerManager is jobRunner for j's runner manager.
func jobRunnerManager(jc *jobContext, j *ci.Job) *runnerManagerEntity {
	if j.RunnerManagerID == nil {
		return nil
	}
	return runnerManagerEntityOf(jc.managers[*j.RunnerManagerID], j.Status.Executing(), jc.now)
}

// encPerPage encodes entity(jc, j), a runner or a runner manager of id,
// once per page for each id and state (busy while j executes).
func encPerPage[E any](cache map[runnerKey]json.RawMessage, id *int64, jc *jobContext, j *ci.Job, entity func(*jobContext, *ci.Job) *E) json.RawMessage {
	if id == nil {
		return json.RawMessage("null")
	}
	key := runnerKey{*id, j.Status.Executing()}
	enc, ok := cache[key]
	if !ok {
		enc = encode(entity(jc, j)) // a nil entity encodes as null
		cache[key] = enc
	}
	return enc
}

// runnerKey tells apart a runner's (or manager's) encodings on one page.
type runnerKey struct {
	id   int64
	busy bool
}

// encodedMemo keeps the JSON of records the store's read cache hands out.
// It is keyed by the record's pointer: the cache returns the same pointer
// until it reloads the record, so a new pointer means "encode again", and
// nothing stale can be served. The memo is emptied when it grows large.
type encodedMemo struct {
	mu sync.Mutex
	m  map[any]json.RawMessage
}

const maxEncodedMemo = 20000

func (e *encodedMemo) get(key any, enc func() json.RawMessage) json.RawMessage {
	e.mu.Lock()
	b, ok := e.m[key]
	e.mu.Unlock()
	if ok {
		return b
	}
	b = enc()
	e.mu.Lock()
	if e.m == nil || len(e.m) >= maxEncodedMemo {
		e.m = make(map[any]json.RawMessage)
	}
	e.m[key] = b
	e.mu.Unlock()
	return b
}
