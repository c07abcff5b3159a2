package web

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/httpapi"
	"gantry/internal/store"
)

const perPage = 20

// projectView is a project as the viewer sees it.
type projectView struct {
	project *ci.Project
	viewer  ci.Viewer
}

// project resolves the project of a /<full path>/-/ URL. Not finding it
// and not being allowed to see its CI both answer 404, as the API does.
func (s *Server) project(r *http.Request) (*projectView, error) {
	full, _ := r.Context().Value(projectPathKey).(string)
	ctx := r.Context()
	p, err := s.store.ProjectByFullPath(ctx, full)
	if err != nil {
		return nil, err // not found → 404
	}
	pv := &projectView{project: p}
	if u := viewerOf(r).user; u != nil {
		pv.viewer.User = u
		if pv.viewer.Access, err = s.store.ProjectAccess(ctx, u.ID, p); err != nil {
			return nil, err
		}
	}
	if !ci.CanReadBuilds(p, pv.viewer) {
		return nil, errNotFound
	}
	return pv, nil
}

// pathID reads a numeric path segment; anything else is 404.
func pathID(r *http.Request, name string) (int64, error) {
	id, err := strconv.ParseInt(r.PathValue(name), 10, 64)
	if err != nil || id <= 0 {
		return 0, errNotFound
	}
	return id, nil
}

// GET /
func (s *Server) handleProjects(w http.ResponseWriter, r *http.Request) error {
	v := viewerOf(r)
	pageNo := pageParam(r)
	f := store.ProjectFilter{Offset: (pageNo - 1) * perPage, Limit: perPage + 1}
	if v.user != nil {
		f.ViewerID, f.Admin = v.user.ID, v.user.Admin
	}
	list, err := s.store.ListProjects(r.Context(), f)
	if err != nil {
		return err
	}
	data := struct {
		Projects []*ci.Project
		Pager    pager
	}{Projects: list, Pager: newPager(r, pageNo, len(list) > perPage)}
	if len(list) > perPage {
		data.Projects = list[:perPage]
	}
	s.render(w, r, http.StatusOK, "projects", page{Title: "Projects", Nav: "projects", Data: data})
	return nil
}

func pageParam(r *http.Request) int {
	n, err := strconv.Atoi(r.URL.Query().Get("page"))
	if err != nil || n < 1 || n > 100000 {
		return 1
	}
	return n
}

// pager links to the previous and next pages, keeping the filters.
type pager struct {
	Prev, Next string
	Page       int
}

func newPager(r *http.Request, pageNo int, more bool) pager {
	at := func(n int) string {
		q := r.URL.Query()
		q.Set("page", strconv.Itoa(n))
		return "?" + q.Encode()
	}
	p := pager{Page: pageNo}
	if pageNo > 1 {
		p.Prev = at(pageNo - 1)
	}
	if more {
		p.Next = at(pageNo + 1)
	}
	return p
}

// statusFilter reads a status (or GitLab's running/pending/finished
// scopes) into statuses; unknown values are 400.
func statusFilter(v string) ([]ci.JobStatus, error) {
	switch v {
	case "":
		return nil, nil
	case "finished":
		return []ci.JobStatus{ci.StatusSuccess, ci.StatusFailed, ci.StatusCanceled, ci.StatusSkipped}, nil
	}
	s := ci.JobStatus(v)
	if !s.Valid() {
		return nil, badRequest("Unknown status " + strconv.Quote(v) + ".")
	}
	return []ci.JobStatus{s}, nil
}

type pipelineRow struct {
	*ci.Pipeline
	User *ci.User
}

// GET /<project>/-/pipelines
func (s *Server) handlePipelines(w http.ResponseWriter, r *http.Request) error {
	pv, err := s.project(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	statuses, err := statusFilter(q.Get("status"))
	if err != nil {
		return err
	}
	pageNo := pageParam(r)
	ctx := r.Context()
	list, err := s.store.ListPipelines(ctx, store.PipelineFilter{ProjectID: pv.project.ID, Statuses: statuses, Ref: q.Get("ref"),
		Offset: (pageNo - 1) * perPage, Limit: perPage + 1})
	if err != nil {
		return err
	}
	more := len(list) > perPage
	if more {
		list = list[:perPage]
	}
	var uids []int64
	for _, p := range list {
		if p.UserID != nil {
			uids = append(uids, *p.UserID)
		}
	}
	users, err := s.store.UsersByIDs(ctx, uids)
	if err != nil {
		return err
	}
	rows := make([]pipelineRow, len(list))
	for i, p := range list {
		rows[i].Pipeline = p
		if p.UserID != nil {
			rows[i].User = users[*p.UserID]
		}
	}
	data := struct {
		Rows     []pipelineRow
		Status   string
		Ref      string
		Statuses []ci.JobStatus
		Pager    pager
	}{rows, q.Get("status"), q.Get("ref"), ci.AllStatuses, newPager(r, pageNo, more)}
	s.render(w, r, http.StatusOK, "pipelines", page{Title: "Pipelines · " + pv.project.FullPath, Project: pv.project, Nav: "pipelines", Data: data})
	return nil
}

// stageColumn is one stage of a pipeline graph.
type stageColumn struct {
	Name string
	Jobs []jobCard
}

type jobCard struct {
	*ci.Job
	Needs []string
	// Downstream is a bridge's pipeline, as a link.
	Downstream string
	DownLabel  string
}

// GET /<project>/-/pipelines/:id
func (s *Server) handlePipeline(w http.ResponseWriter, r *http.Request) error {
	pv, err := s.project(r)
	if err != nil {
		return err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return err
	}
	ctx := r.Context()
	pl, err := s.store.PipelineByID(ctx, pv.project.ID, id)
	if err != nil {
		return err
	}
	jobs, err := s.store.ListJobs(ctx, store.JobFilter{ProjectID: pv.project.ID, PipelineID: pl.ID, Limit: 5000})
	if err != nil {
		return err
	}
	needs, err := s.store.PipelineNeeds(ctx, pl.ID)
	if err != nil {
		return err
	}
	links, err := s.pipelineLinks(ctx, jobs, pl.ParentID)
	if err != nil {
		return err
	}
	slices.SortStableFunc(jobs, func(a, b *ci.Job) int {
		if a.StageIdx != b.StageIdx {
			return a.StageIdx - b.StageIdx
		}
		return strings.Compare(a.Name, b.Name)
	})
	var stages []stageColumn
	for _, j := range jobs {
		if len(stages) == 0 || stages[len(stages)-1].Name != j.Stage {
			stages = append(stages, stageColumn{Name: j.Stage})
		}
		card := jobCard{Job: j, Needs: needs[j.ID]}
		if j.DownstreamPipelineID != nil {
			card.Downstream, card.DownLabel = links[*j.DownstreamPipelineID][0], links[*j.DownstreamPipelineID][1]
		}
		col := &stages[len(stages)-1]
		col.Jobs = append(col.Jobs, card)
	}
	var user *ci.User
	if pl.UserID != nil {
		if user, err = s.store.UserByID(ctx, *pl.UserID); err != nil && !errors.Is(err, ci.ErrNotFound) {
			return err
		}
	}
	data := struct {
		Pipeline *ci.Pipeline
		User     *ci.User
		Stages   []stageColumn
		Upstream []string
	}{Pipeline: pl, User: user, Stages: stages}
	if pl.ParentID != nil {
		up := links[*pl.ParentID]
		data.Upstream = up[:]
	}
	s.render(w, r, http.StatusOK, "pipeline", page{Title: "Pipeline #" + strconv.FormatInt(pl.ID, 10) + " · " + pv.project.FullPath,
		Project: pv.project, Nav: "pipelines", Data: data})
	return nil
}

// pipelineLinks maps the downstream pipelines of the bridges among jobs,
// and the upstream one, to [URL, label] (label: "path #id").
func (s *Server) pipelineLinks(ctx context.Context, jobs []*ci.Job, upstream *int64) (map[int64][2]string, error) {
	var ids []int64
	for _, j := range jobs {
		if j.DownstreamPipelineID != nil {
			ids = append(ids, *j.DownstreamPipelineID)
		}
	}
	if upstream != nil {
		ids = append(ids, *upstream)
	}
	out := map[int64][2]string{}
	if len(ids) == 0 {
		return out, nil
	}
	pls, err := s.store.PipelinesByIDs(ctx, ids)
	if err != nil {
		return nil, err
	}
	for id, p := range pls {
		proj, err := s.store.ProjectByID(ctx, p.ProjectID)
		if err != nil {
			return nil, err
		}
		sid := strconv.FormatInt(id, 10)
		out[id] = [2]string{"/" + proj.FullPath + "/-/pipelines/" + sid, proj.FullPath + " #" + sid}
	}
	return out, nil
}

// GET /<project>/-/jobs: newest first, keyset pages (?before=<id>).
func (s *Server) handleJobs(w http.ResponseWriter, r *http.Request) error {
	pv, err := s.project(r)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	scope := q.Get("scope")
	statuses, err := statusFilter(scope)
	if err != nil {
		return err
	}
	var before int64
	if v := q.Get("before"); v != "" {
		if before, err = strconv.ParseInt(v, 10, 64); err != nil || before <= 0 {
			return badRequest("before must be a job id.")
		}
	}
	jobs, err := s.store.ListJobs(r.Context(), store.JobFilter{ProjectID: pv.project.ID, Kind: ci.KindBuild, Statuses: statuses,
		Name: q.Get("name"), Ref: q.Get("ref"), BeforeID: before, Limit: perPage + 1})
	if err != nil {
		return err
	}
	data := struct {
		Jobs             []*ci.Job
		Scope, Name, Ref string
		Statuses         []ci.JobStatus
		Older, Newest    string
	}{Jobs: jobs, Scope: scope, Name: q.Get("name"), Ref: q.Get("ref"), Statuses: ci.AllStatuses}
	if len(jobs) > perPage {
		data.Jobs = jobs[:perPage]
		q.Set("before", strconv.FormatInt(data.Jobs[perPage-1].ID, 10))
		data.Older = "?" + q.Encode()
	}
	if before > 0 {
		q.Del("before")
		data.Newest = "?" + q.Encode()
	}
	s.render(w, r, http.StatusOK, "jobs", page{Title: "Jobs · " + pv.project.FullPath, Project: pv.project, Nav: "jobs", Data: data})
	return nil
}

// jobOf resolves the project and the job (a build) of a job URL.
func (s *Server) jobOf(r *http.Request) (*projectView, *ci.Job, error) {
	pv, err := s.project(r)
	if err != nil {
		return nil, nil, err
	}
	id, err := pathID(r, "id")
	if err != nil {
		return nil, nil, err
	}
	j, err := s.store.JobByID(r.Context(), pv.project.ID, id)
	if err != nil {
		return nil, nil, err
	}
	return pv, j, nil
}

type jobPageData struct {
	Job        *ci.Job
	Pipeline   *ci.Pipeline
	User       *ci.User
	Runner     *ci.Runner
	Can        httpapi.JobAbilities
	Archive    *ci.Artifact
	Artifacts  []*ci.Artifact
	Queue      *httpapi.QueueInfo
	Log        logWindow
	Live       bool
	Base       string // the job's URL
	Downstream [2]string
}

// GET /<project>/-/jobs/:id
func (s *Server) handleJob(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := s.jobOf(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	d := jobPageData{Job: j, Live: !j.Status.Completed(), Base: "/" + pv.project.FullPath + "/-/jobs/" + strconv.FormatInt(j.ID, 10)}
	if d.Pipeline, err = s.store.PipelineByID(ctx, pv.project.ID, j.PipelineID); err != nil {
		return err
	}
	if j.UserID != nil {
		if d.User, err = s.store.UserByID(ctx, *j.UserID); err != nil && !errors.Is(err, ci.ErrNotFound) {
			return err
		}
	}
	if j.RunnerID != nil {
		rs, err := s.store.RunnersByIDs(ctx, []int64{*j.RunnerID})
		if err != nil {
			return err
		}
		d.Runner = rs[*j.RunnerID]
	}
	if d.Can, err = s.abilities.JobAbilities(ctx, viewerOf(r).user, pv.project, j); err != nil {
		return err
	}
	arts, err := s.store.ArtifactsByJobIDs(ctx, []int64{j.ID})
	if err != nil {
		return err
	}
	now := s.now()
	for _, a := range arts[j.ID] {
		if a.FileType == "trace" || a.ExpireAt != nil && !a.ExpireAt.After(now) {
			continue
		}
		if a.FileType == "archive" {
			d.Archive = a
		}
		d.Artifacts = append(d.Artifacts, a)
	}
	if j.Status == ci.StatusPending && j.Kind == ci.KindBuild {
		qi, err := s.abilities.Queue(ctx, j)
		if err != nil {
			return err
		}
		d.Queue = &qi
	}
	if j.DownstreamPipelineID != nil {
		links, err := s.pipelineLinks(ctx, []*ci.Job{j}, nil)
		if err != nil {
			return err
		}
		d.Downstream = links[*j.DownstreamPipelineID]
	}
	if j.ErasedAt == nil && j.Kind == ci.KindBuild {
		if d.Log, err = s.tailWindow(ctx, j.ID, d.Live); err != nil {
			return err
		}
		if d.Live && s.onLogRead != nil && j.Status.Executing() {
			s.onLogRead(j.ID)
		}
	}
	s.render(w, r, http.StatusOK, "job", page{Title: j.Name + " (#" + strconv.FormatInt(j.ID, 10) + ") · " + pv.project.FullPath,
		Project: pv.project, Nav: "jobs", Data: d})
	return nil
}

// runnerRow is a runner with what it is doing.
type runnerRow struct {
	*ci.Runner
	Status string
	Jobs   []runnerJob
}

type runnerJob struct {
	*ci.Job
	URL string
}

func (s *Server) runnerRows(ctx context.Context, runners []*ci.Runner) ([]runnerRow, error) {
	now := s.now()
	busy, err := s.store.ExecutingByRunner(ctx)
	if err != nil {
		return nil, err
	}
	rows := make([]runnerRow, len(runners))
	for i, rn := range runners {
		rows[i] = runnerRow{Runner: rn, Status: ci.RunnerContactStatus(rn.CreatedAt, rn.ContactedAt, rn.Paused, now)}
		if busy[rn.ID] == 0 {
			continue
		}
		jobs, err := s.store.RunnerJobs(ctx, rn.ID, []ci.JobStatus{ci.StatusRunning, ci.StatusCanceling}, 0, 10)
		if err != nil {
			return nil, err
		}
		for _, j := range jobs {
			p, err := s.store.ProjectByID(ctx, j.ProjectID)
			if err != nil {
				return nil, err
			}
			rows[i].Jobs = append(rows[i].Jobs, runnerJob{Job: j, URL: "/" + p.FullPath + "/-/jobs/" + strconv.FormatInt(j.ID, 10)})
		}
	}
	return rows, nil
}

// GET /admin/runners (administrators): every runner.
func (s *Server) handleAdminRunners(w http.ResponseWriter, r *http.Request) error {
	if u := viewerOf(r).user; u == nil || !u.Admin {
		return errNotFound
	}
	runners, err := s.store.ListRunners(r.Context(), store.RunnerFilter{Limit: 1000})
	if err != nil {
		return err
	}
	rows, err := s.runnerRows(r.Context(), runners)
	if err != nil {
		return err
	}
	s.render(w, r, http.StatusOK, "runners", page{Title: "Runners", Nav: "runners", Data: rows})
	return nil
}

// GET /<project>/-/runners (maintainers): the runners that may take the
// project's jobs. Jobs of other projects are listed without links.
func (s *Server) handleProjectRunners(w http.ResponseWriter, r *http.Request) error {
	pv, err := s.project(r)
	if err != nil {
		return err
	}
	if !ci.CanAdminBuilds(pv.project, pv.viewer) {
		return errNotFound
	}
	runners, err := s.store.ListRunners(r.Context(), store.RunnerFilter{ProjectID: pv.project.ID, Limit: 1000})
	if err != nil {
		return err
	}
	rows, err := s.runnerRows(r.Context(), runners)
	if err != nil {
		return err
	}
	for i := range rows {
		for k := range rows[i].Jobs {
			if rows[i].Jobs[k].ProjectID != pv.project.ID && !pv.viewer.User.Admin {
				rows[i].Jobs[k].URL = ""
			}
		}
	}
	s.render(w, r, http.StatusOK, "runners", page{Title: "Runners · " + pv.project.FullPath, Project: pv.project, Nav: "runners", Data: rows})
	return nil
}

// signInURL sends an anonymous visitor to sign in and come back.
func signInURL(r *http.Request) string {
	to := r.RequestURI // the URL as asked, before project routing rewrote it
	if to == "" {
		to = r.URL.RequestURI()
	}
	return "/users/sign_in?redirect_to=" + url.QueryEscape(to)
}
