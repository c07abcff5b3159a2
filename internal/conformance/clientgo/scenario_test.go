package clientgo_test

import (
	"archive/zip"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gantry/internal/conformance/scenario"
)

// runScenario checks the client against a live scenario: a node whose
// pipeline the gantry runner executed (scenario.Build). Read-only checks
// come first; the client's own actions run last, on the jobs the scenario
// left for them.
func runScenario(t *testing.T, c *checker, d *scenario.Document) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	newClient := func(construct func(string, ...gitlab.ClientOptionFunc) (*gitlab.Client, error), token string) *gitlab.Client {
		cl, err := construct(token,
			gitlab.WithBaseURL(d.URL+"/api/v4"),
			gitlab.WithoutRetries(),
			gitlab.WithHTTPClient(&http.Client{Timeout: 15 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}),
			gitlab.WithRequestOptions(gitlab.WithContext(ctx)),
		)
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		return cl
	}
	dev := newClient(gitlab.NewClient, d.Tokens["developer"])
	byRole := func(role string) *gitlab.Client { return newClient(gitlab.NewClient, d.Tokens[role]) }
	jobc := newClient(gitlab.NewJobClient, d.JobToken)
	pid, plid := d.ProjectID, d.PipelineID
	statusOf := map[int64]string{}
	for i, id := range d.ProjectBuildIDs {
		statusOf[id] = d.ProjectBuildStatuses[i]
	}
	t.Logf("scenario: project %d (%s), pipeline %d, child %d, %d builds", pid, d.ProjectPath, plid, d.ChildPipelineID, len(d.ProjectBuildIDs))

	// ---- lists ---------------------------------------------------------------

	c.check("scenario: ScanAndCollect offset paging, PerPage 5", func(p *probe) {
		pages := 0
		all, err := gitlab.ScanAndCollect(func(pg gitlab.PaginationOptionFunc) ([]*gitlab.Job, *gitlab.Response, error) {
			if pages >= maxPages {
				return nil, nil, fmt.Errorf("more than %d pages", maxPages)
			}
			pages++
			return dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 5}}, pg)
		})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if !slices.Equal(jobIDs(all), d.ProjectBuildIDs) {
			p.errorf("ids = %v, want %v", jobIDs(all), d.ProjectBuildIDs)
		}
		for _, j := range all {
			eq(p, fmt.Sprintf("job %d status", j.ID), j.Status, statusOf[j.ID])
		}
		eq(p, "pages", pages, (len(d.ProjectBuildIDs)+4)/5)
	})

	c.check("scenario: first page headers, no X-Total on project jobs", func(p *probe) {
		_, resp, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 5}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "NextPage", resp.NextPage, int64(2))
		eq(p, "ItemsPerPage", resp.ItemsPerPage, int64(5))
		eq(p, "TotalItems", resp.TotalItems, int64(0))
	})

	c.check("scenario: ScanAndCollect keyset paging (Link only)", func(p *probe) {
		var links []string
		all, err := gitlab.ScanAndCollect(func(pg gitlab.PaginationOptionFunc) ([]*gitlab.Job, *gitlab.Response, error) {
			if len(links) >= maxPages {
				return nil, nil, fmt.Errorf("more than %d pages", maxPages)
			}
			jobs, resp, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{
				Pagination: "keyset", OrderBy: "id", Sort: "desc", PerPage: 5}}, pg)
			if resp != nil {
				links = append(links, resp.NextLink)
				if resp.NextPage != 0 {
					return nil, nil, fmt.Errorf("keyset page has X-Next-Page %d", resp.NextPage)
				}
			}
			return jobs, resp, err
		})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if !slices.Equal(jobIDs(all), d.ProjectBuildIDs) {
			p.errorf("ids = %v, want %v", jobIDs(all), d.ProjectBuildIDs)
		}
		for i, l := range links[:len(links)-1] {
			if !strings.Contains(l, "cursor=") {
				p.errorf("page %d NextLink %q has no cursor", i+1, l)
			}
		}
	})

	c.check("scenario: ListProjectJobs scope failed, canceled", func(p *probe) {
		set := []gitlab.BuildStateValue{gitlab.Failed, gitlab.Canceled}
		jobs, _, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{Scope: &set, ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		var want []int64
		for _, id := range d.ProjectBuildIDs {
			if statusOf[id] == "failed" || statusOf[id] == "canceled" {
				want = append(want, id)
			}
		}
		if !slices.Equal(jobIDs(jobs), want) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), want)
		}
	})

	c.check("scenario: ListProjectJobs by path", func(p *probe) {
		jobs, _, err := dev.Jobs.ListProjectJobs(d.ProjectPath, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if !slices.Equal(jobIDs(jobs), d.ProjectBuildIDs) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), d.ProjectBuildIDs)
		}
	})

	c.check("scenario: ListPipelineJobs values and X-Total", func(p *probe) {
		jobs, resp, err := dev.Jobs.ListPipelineJobs(pid, plid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if !slices.Equal(jobIDs(jobs), d.PipelineBuildIDs) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), d.PipelineBuildIDs)
		}
		for _, j := range jobs {
			w := d.Jobs[j.Name]
			eq(p, j.Name+" id", j.ID, w.ID)
			eq(p, j.Name+" stage", j.Stage, w.Stage)
			eq(p, j.Name+" status", j.Status, w.Status)
			eq(p, j.Name+" allow_failure", j.AllowFailure, w.AllowFailure)
		}
		eq(p, "TotalItems", resp.TotalItems, int64(len(d.PipelineBuildIDs)))
		eq(p, "TotalPages", resp.TotalPages, int64(1))
	})

	c.check("scenario: ListPipelineJobs IncludeRetried", func(p *probe) {
		jobs, _, err := dev.Jobs.ListPipelineJobs(pid, plid, &gitlab.ListJobsOptions{IncludeRetried: gitlab.Ptr(true), ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if !slices.Equal(jobIDs(jobs), d.PipelineBuildIDsWithRetried) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), d.PipelineBuildIDsWithRetried)
		}
		i := slices.IndexFunc(jobs, func(j *gitlab.Job) bool { return j.ID == d.RetriedOldID })
		if i < 0 || jobs[i].Name != "broken" || jobs[i].Status != "failed" {
			p.errorf("retried attempt %d missing or wrong", d.RetriedOldID)
		}
	})

	c.check("scenario: ListPipelineBridges and the child pipeline", func(p *probe) {
		bridges, _, err := dev.Jobs.ListPipelineBridges(pid, plid, nil)
		if err != nil || len(bridges) != 1 {
			p.errorf("bridges %v, error %s", bridges, errText(err))
			return
		}
		b := bridges[0]
		eq(p, "ID", b.ID, d.Bridge.ID)
		eq(p, "Name", b.Name, "child")
		eq(p, "Stage", b.Stage, "deploy")
		eq(p, "Status", b.Status, "success")
		if b.DownstreamPipeline == nil {
			p.errorf("DownstreamPipeline is nil")
			return
		}
		eq(p, "DownstreamPipeline.ID", b.DownstreamPipeline.ID, d.ChildPipelineID)
		eq(p, "DownstreamPipeline.Status", b.DownstreamPipeline.Status, "success")
		child, _, err := dev.Jobs.ListPipelineJobs(pid, d.ChildPipelineID, nil)
		if err != nil || len(child) != 1 {
			p.errorf("child jobs %v, error %s", child, errText(err))
			return
		}
		eq(p, "child job", child[0].ID, d.ChildJobs["child-test"].ID)
		eq(p, "child job status", child[0].Status, "success")
	})

	// ---- single jobs ---------------------------------------------------------

	c.check("scenario: GetJob of every job", func(p *probe) {
		for name, w := range d.Jobs {
			j, _, err := dev.Jobs.GetJob(pid, w.ID)
			if err != nil {
				p.errorf("%s: %s", name, errText(err))
				continue
			}
			eq(p, name+" name", j.Name, name)
			eq(p, name+" status", j.Status, w.Status)
			eq(p, name+" stage", j.Stage, w.Stage)
			eq(p, name+" ref", j.Ref, "main")
			eq(p, name+" pipeline", j.Pipeline.ID, plid)
			if j.Commit == nil || j.Commit.ID != d.SHA {
				p.errorf("%s commit %+v, want %s", name, j.Commit, d.SHA)
			}
			eq(p, name+" failure_reason", j.FailureReason, w.FailureReason)
		}
	})

	c.check("scenario: GetJob of the finished build (runner, user, artifacts)", func(p *probe) {
		j, _, err := dev.Jobs.GetJob(pid, d.ArtifactJobID)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "Runner.ID", j.Runner.ID, d.RunnerID)
		if j.User == nil || j.User.Username != "alice" {
			p.errorf("User = %+v, want alice", j.User)
		}
		eq(p, "ArtifactsFile.Filename", j.ArtifactsFile.Filename, d.ArtifactArchive)
		if j.StartedAt == nil || j.FinishedAt == nil || j.Duration < 0 {
			p.errorf("StartedAt %v FinishedAt %v Duration %v", j.StartedAt, j.FinishedAt, j.Duration)
		}
	})

	c.check("scenario: GetTraceFile of every job with a known log", func(p *probe) {
		for id, wants := range d.Traces {
			rd, _, err := dev.Jobs.GetTraceFile(pid, id)
			if err != nil {
				p.errorf("job %d: %s", id, errText(err))
				continue
			}
			b, _ := io.ReadAll(rd)
			for _, w := range wants {
				if !bytes.Contains(b, []byte(w)) {
					p.errorf("log of job %d lacks %q", id, w)
				}
			}
		}
	})

	c.check("scenario: outcomes of cancel, play, retry and erase", func(p *probe) {
		get := func(id int64) *gitlab.Job {
			j, _, err := dev.Jobs.GetJob(pid, id)
			if err != nil {
				p.errorf("job %d: %s", id, errText(err))
				return &gitlab.Job{}
			}
			return j
		}
		eq(p, "canceled job", get(d.CanceledJobID).Status, "canceled")
		eq(p, "played job", get(d.PlayedJobID).Status, "success")
		eq(p, "retried attempt", get(d.RetriedOldID).Status, "failed")
		eq(p, "retry", get(d.RetriedNewID).Status, "failed")
		erased := get(d.ErasedJobID)
		if erased.ErasedAt == nil || len(erased.Artifacts) != 0 {
			p.errorf("erased job: ErasedAt %v, Artifacts %v", erased.ErasedAt, erased.Artifacts)
		}
		if rd, _, err := dev.Jobs.GetTraceFile(pid, d.ErasedJobID); err != nil || rd.Len() != 0 {
			p.errorf("erased job's log: %v bytes, error %s", rd, errText(err))
		}
	})

	// ---- artifacts and the test report ----------------------------------------

	zipEntry := func(p *probe, rd *bytes.Reader, name string) string {
		zr, err := zip.NewReader(rd, rd.Size())
		if err != nil {
			p.errorf("not a zip: %v", err)
			return ""
		}
		f, err := zr.Open(name)
		if err != nil {
			p.errorf("%s: %v", name, err)
			return ""
		}
		defer f.Close()
		b, _ := io.ReadAll(f)
		return string(b)
	}
	c.check("scenario: GetJobArtifacts and DownloadSingleArtifactsFile", func(p *probe) {
		rd, _, err := dev.Jobs.GetJobArtifacts(pid, d.ArtifactJobID)
		if err != nil {
			p.errorf("archive: %s", errText(err))
			return
		}
		eq(p, "file in the archive", zipEntry(p, rd, d.ArtifactPath), d.ArtifactContent)
		one, _, err := dev.Jobs.DownloadSingleArtifactsFile(pid, d.ArtifactJobID, d.ArtifactPath)
		if err != nil {
			p.errorf("single file: %s", errText(err))
			return
		}
		b, _ := io.ReadAll(one)
		eq(p, "single file", string(b), d.ArtifactContent)
	})

	c.check("scenario: DownloadArtifactsFile and single file by ref", func(p *probe) {
		opt := &gitlab.DownloadArtifactsFileOptions{Job: gitlab.Ptr(d.ArtifactJobName)}
		rd, _, err := dev.Jobs.DownloadArtifactsFile(pid, d.StableRef, opt)
		if err != nil {
			p.errorf("archive: %s", errText(err))
			return
		}
		eq(p, "file in the ref's archive", zipEntry(p, rd, d.ArtifactPath), d.StableArtifactContent)
		one, _, err := dev.Jobs.DownloadSingleArtifactsFileByTagOrBranch(pid, d.StableRef, d.BinaryArtifactPath, opt)
		if err != nil {
			p.errorf("single file: %s", errText(err))
			return
		}
		b, _ := io.ReadAll(one)
		eq(p, "ref's single file", string(b), d.StableBinaryContent)
		if _, _, err := dev.Jobs.DownloadArtifactsFile(pid, "main", opt); !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("main (no successful pipeline): err = %s, want ErrNotFound", errText(err))
		}
	})

	c.check("scenario: GetPipelineTestReport totals", func(p *probe) {
		r, _, err := dev.Pipelines.GetPipelineTestReport(pid, plid)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		w := d.Junit
		eq(p, "TotalCount", r.TotalCount, int64(w.Total))
		eq(p, "SuccessCount", r.SuccessCount, int64(w.Success))
		eq(p, "FailedCount", r.FailedCount, int64(w.Failed))
		eq(p, "SkippedCount", r.SkippedCount, int64(w.Skipped))
		eq(p, "ErrorCount", r.ErrorCount, int64(w.Error))
		eq(p, "TotalTime", r.TotalTime, w.TotalTime)
		if len(r.TestSuites) != 1 || r.TestSuites[0].Name != w.Suite {
			p.errorf("suites %+v, want one named %s", r.TestSuites, w.Suite)
		}
	})

	// ---- tokens and roles ----------------------------------------------------

	c.check("scenario: GetJobTokensJob with the running job's token", func(p *probe) {
		j, _, err := jobc.Jobs.GetJobTokensJob(nil)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "ID", j.ID, d.JobTokenJobID)
		eq(p, "Name", j.Name, "hold")
		eq(p, "Status", j.Status, "running")
		eq(p, "Pipeline.ID", j.Pipeline.ID, plid)
	})

	c.check("scenario: roles", func(p *probe) {
		for _, role := range []string{"reporter", "maintainer", "root"} {
			jobs, _, err := byRole(role).Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
			if err != nil || !slices.Equal(jobIDs(jobs), d.ProjectBuildIDs) {
				p.errorf("%s: %v, error %s", role, jobIDs(jobs), errText(err))
			}
		}
		if _, _, err := byRole("guest").Jobs.ListProjectJobs(pid, nil); !gitlab.HasStatusCode(err, 403) {
			p.errorf("guest: err = %s, want 403", errText(err))
		}
		if _, _, err := byRole("outsider").Jobs.GetJob(pid, d.ArtifactJobID); !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("outsider: err = %s, want ErrNotFound", errText(err))
		}
		if _, _, err := byRole("reporter").Jobs.RetryJob(pid, d.ToRetry); !gitlab.HasStatusCode(err, 403) {
			p.errorf("reporter retry: err = %s, want 403", errText(err))
		}
	})

	// ---- the client's own actions (last) ---------------------------------------

	waitStatus := func(id int64, done ...string) *gitlab.Job {
		deadline := time.Now().Add(60 * time.Second) // a guard against a hang, not a measurement
		for {
			j, _, err := dev.Jobs.GetJob(pid, id)
			if err == nil && slices.Contains(done, j.Status) || time.Now().After(deadline) {
				return j
			}
			time.Sleep(50 * time.Millisecond)
		}
	}

	c.check("scenario: PlayJob with job variables", func(p *probe) {
		vars := []*gitlab.JobVariableOptions{{Key: gitlab.Ptr("APPROVAL"), Value: gitlab.Ptr("client-go")}}
		j, resp, err := dev.Jobs.PlayJob(pid, d.ToPlay, &gitlab.PlayJobOptions{JobVariablesAttributes: &vars})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "StatusCode", resp.StatusCode, 200)
		eq(p, "ID", j.ID, d.ToPlay)
		if j = waitStatus(d.ToPlay, "success", "failed"); j == nil || j.Status != "success" {
			p.errorf("played job did not succeed: %+v", j)
			return
		}
		rd, _, err := dev.Jobs.GetTraceFile(pid, d.ToPlay)
		if err != nil {
			p.errorf("log: %s", errText(err))
			return
		}
		if b, _ := io.ReadAll(rd); !bytes.Contains(b, []byte("approved with client-go")) {
			p.errorf("the variable is not in the log: %q", b)
		}
	})

	c.check("scenario: RetryJob", func(p *probe) {
		j, resp, err := dev.Jobs.RetryJob(pid, d.ToRetry)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "StatusCode", resp.StatusCode, 201)
		eq(p, "Name", j.Name, "broken")
		if j.ID <= slices.Max(d.ProjectBuildIDs) {
			p.errorf("retry id %d is not new", j.ID)
		}
		jobs, _, err := dev.Jobs.ListPipelineJobs(pid, plid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil || !slices.Contains(jobIDs(jobs), j.ID) || slices.Contains(jobIDs(jobs), d.ToRetry) {
			p.errorf("latest attempts %v, error %s", jobIDs(jobs), errText(err))
		}
	})

	c.check("scenario: CancelJob of the running job ends its token", func(p *probe) {
		j, resp, err := dev.Jobs.CancelJob(pid, d.ToCancel)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "StatusCode", resp.StatusCode, 201)
		if j.Status != "canceling" && j.Status != "canceled" {
			p.errorf("Status = %s", j.Status)
		}
		if j = waitStatus(d.ToCancel, "canceled"); j == nil || j.Status != "canceled" {
			p.errorf("not canceled once the runner stopped: %+v", j)
		}
		if _, _, err := jobc.Jobs.GetJobTokensJob(nil); !gitlab.HasStatusCode(err, 401) {
			p.errorf("the canceled job's token: err = %s, want 401", errText(err))
		}
	})

	c.check("scenario: EraseJob", func(p *probe) {
		j, resp, err := dev.Jobs.EraseJob(pid, d.ToErase)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "StatusCode", resp.StatusCode, 201)
		eq(p, "Status", j.Status, "success")
		if j.ErasedAt == nil {
			p.errorf("ErasedAt is nil")
		}
		if _, _, err := dev.Jobs.EraseJob(pid, d.ToErase); !gitlab.HasStatusCode(err, 403) {
			p.errorf("erasing again: err = %s, want 403", errText(err))
		}
	})
}
