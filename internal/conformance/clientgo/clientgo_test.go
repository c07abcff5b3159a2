// Package clientgo_test drives a live gantry server through the official
// GitLab Go client (gitlab.com/gitlab-org/api/client-go v1.46.0) and checks
// that what the client sends is understood and what the server answers
// decodes into the client's typed structs with the expected values: first
// on a seeded store, then on a scenario whose pipeline the gantry runner
// executed (scenario.Build).
//
// Every check is counted; the test ends each backend with the line
//
//	CONFORMANCE client-go <backend>: N passed, M failed
//
// printed both through t.Logf and on stdout, so it shows without -v.
package clientgo_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gitlab "gitlab.com/gitlab-org/api/client-go"

	"gantry/internal/ci"
	"gantry/internal/conformance/scenario"
	"gantry/internal/httpapi"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// checker counts named checks. A check passes when its body records no
// failure and does not panic.
type checker struct {
	t              *testing.T
	passed, failed int
}

// probe collects the failures of one check.
type probe struct {
	name  string
	fails []string
}

func (p *probe) errorf(format string, args ...any) {
	p.fails = append(p.fails, fmt.Sprintf(format, args...))
}

// eq records a failure unless got == want.
func eq[T comparable](p *probe, what string, got, want T) {
	if got != want {
		p.errorf("%s = %v, want %v", what, got, want)
	}
}

func (c *checker) check(name string, body func(p *probe)) {
	c.t.Helper()
	p := &probe{name: name}
	func() {
		defer func() {
			if r := recover(); r != nil {
				p.errorf("panic: %v", r)
			}
		}()
		body(p)
	}()
	if len(p.fails) == 0 {
		c.passed++
		return
	}
	c.failed++
	c.t.Errorf("FAIL %s:\n    %s", name, strings.Join(p.fails, "\n    "))
}

// recorder is a client interceptor that remembers the last request's
// escaped path and raw query, so the wire form can be asserted.
type recorder struct {
	mu        sync.Mutex
	lastPath  string
	lastQuery string
}

func (r *recorder) wrap(next http.RoundTripper) http.RoundTripper {
	return roundTripFunc(func(req *http.Request) (*http.Response, error) {
		r.mu.Lock()
		r.lastPath, r.lastQuery = req.URL.EscapedPath(), req.URL.RawQuery
		r.mu.Unlock()
		return next.RoundTrip(req)
	})
}

func (r *recorder) last() (string, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.lastPath, r.lastQuery
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func jobIDs(jobs []*gitlab.Job) []int64 {
	out := make([]int64, len(jobs))
	for i, j := range jobs {
		out[i] = j.ID
	}
	return out
}

func fixtureIDs(f *testenv.Fixture, keep func(*ci.Job) bool) []int64 {
	var out []int64
	for _, j := range f.AllBuilds {
		if keep == nil || keep(j) {
			out = append(out, j.ID)
		}
	}
	return out
}

func strictlyDescending(ids []int64) bool {
	for i := 1; i < len(ids); i++ {
		if ids[i] >= ids[i-1] {
			return false
		}
	}
	return true
}

func hasDuplicates(ids []int64) bool {
	seen := map[int64]bool{}
	for _, id := range ids {
		if seen[id] {
			return true
		}
		seen[id] = true
	}
	return false
}

// errText renders an error for failure messages, with the status code
// when it is a GitLab error response.
func errText(err error) string {
	var er *gitlab.ErrorResponse
	if errors.As(err, &er) && er.Response != nil {
		return fmt.Sprintf("%d %s", er.Response.StatusCode, er.Message)
	}
	return fmt.Sprint(err)
}

const maxPages = 50 // a paging walk longer than this is a loop

// extraBuilds is how many builds startBigServer adds to the fixture.
const extraBuilds = 8

// startBigServer is testenv.StartServer plus extraBuilds more builds in the
// tag pipeline, so that the project holds more than one default page (20)
// of builds. It returns the base URL and every build id of the project, id
// descending. It mirrors testenv.StartServer, which does not expose its
// store.
func startBigServer(t *testing.T, b testenv.Backend) (string, *testenv.Fixture, []int64) {
	t.Helper()
	ctx := context.Background()
	st := b.Open(t)
	fx := testenv.Seed(t, st)
	for i := range extraBuilds {
		j := *fx.TagJob
		j.ID = 0
		j.Name = fmt.Sprintf("release-extra-%d", i+1)
		if _, err := st.InsertJob(ctx, j); err != nil {
			t.Fatalf("insert extra build: %v", err)
		}
	}
	all, err := st.ListJobs(ctx, store.JobFilter{ProjectID: fx.Project.ID, Kind: ci.KindBuild, IncludeRetried: true, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	ids := make([]int64, len(all))
	for i, j := range all {
		ids[i] = j.ID
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	api := httpapi.New(httpapi.Config{ExternalURL: base, Version: "17.9.3"}, httpapi.Deps{Store: st, Now: func() time.Time { return testenv.T0 }})
	hs := &http.Server{Handler: api.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = hs.Serve(l) }()
	t.Cleanup(func() { _ = hs.Close() })
	return base, fx, ids
}

func TestClientGoConformance(t *testing.T) {
	bin := scenario.Binary(t)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			c := &checker{t: t}
			defer func() {
				line := fmt.Sprintf("CONFORMANCE client-go %s: %d passed, %d failed", b.Name, c.passed, c.failed)
				t.Log(line)
				fmt.Println(line)
			}()
			runConformance(t, c, b)
			runScenario(t, c, scenario.Build(t, b, bin))
		})
	}
}

func runConformance(t *testing.T, c *checker, b testenv.Backend) {
	srv := testenv.StartServer(t, b)
	fx := srv.Fixture
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()

	base := srv.URL + "/api/v4"
	rec := &recorder{}
	opts := func(extra ...gitlab.ClientOptionFunc) []gitlab.ClientOptionFunc {
		return append([]gitlab.ClientOptionFunc{
			gitlab.WithBaseURL(base),
			gitlab.WithoutRetries(),
			gitlab.WithHTTPClient(&http.Client{Timeout: 15 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone()}),
			gitlab.WithRequestOptions(gitlab.WithContext(ctx)),
		}, extra...)
	}
	mustClient := func(cl *gitlab.Client, err error) *gitlab.Client {
		t.Helper()
		if err != nil {
			t.Fatalf("client: %v", err)
		}
		return cl
	}
	dev := mustClient(gitlab.NewClient(fx.Tokens["developer"], opts(gitlab.WithInterceptor(rec.wrap))...))
	root := mustClient(gitlab.NewClient(fx.Tokens["root"], opts()...))
	jobc := mustClient(gitlab.NewJobClient(fx.JobToken, opts()...))
	anon := mustClient(gitlab.NewClient("", opts()...))
	oauth := mustClient(gitlab.NewOAuthClient(fx.Tokens["developer"], opts()...))
	badOAuth := mustClient(gitlab.NewOAuthClient("glpat-not-a-real-token-000000000", opts()...))
	badPAT := mustClient(gitlab.NewClient("glpat-not-a-real-token-000000000", opts()...))

	pid := fx.Project.ID
	allIDs := fixtureIDs(fx, nil)
	running := fx.JobsByStatus[ci.StatusRunning]
	failed := fx.JobsByStatus[ci.StatusFailed]
	success := fx.JobsByStatus[ci.StatusSuccess]
	t.Logf("fixture: project %d (%s), %d builds, pipeline %d", pid, fx.Project.FullPath, len(allIDs), fx.Pipeline.ID)

	// ---- GET /projects/:id/jobs -------------------------------------------

	// Default page: 20 rows (or all builds if the fixture has fewer),
	// id descending, X-Next-Page 2 when more exist, no X-Total.
	var numericIDs []int64
	c.check("ListProjectJobs default page (numeric id)", func(p *probe) {
		jobs, resp, err := dev.Jobs.ListProjectJobs(pid, nil)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		numericIDs = jobIDs(jobs)
		wantN := min(20, len(allIDs))
		eq(p, "len(jobs)", len(jobs), wantN)
		if !slices.Equal(numericIDs, allIDs[:wantN]) {
			p.errorf("ids = %v, want %v", numericIDs, allIDs[:wantN])
		}
		if !strictlyDescending(numericIDs) {
			p.errorf("ids not strictly descending: %v", numericIDs)
		}
		wantNext := int64(0)
		if len(allIDs) > 20 {
			wantNext = 2
		}
		eq(p, "resp.NextPage", resp.NextPage, wantNext)
		eq(p, "resp.CurrentPage", resp.CurrentPage, int64(1))
		eq(p, "resp.ItemsPerPage", resp.ItemsPerPage, int64(20))
		eq(p, "resp.PreviousPage", resp.PreviousPage, int64(0))
		eq(p, "resp.TotalItems (X-Total must be absent)", resp.TotalItems, int64(0))
		eq(p, "resp.TotalPages (X-Total-Pages must be absent)", resp.TotalPages, int64(0))
		if _, ok := resp.Header["X-Total"]; ok {
			p.errorf("X-Total header present (%q); GitLab omits it on project jobs", resp.Header.Get("X-Total"))
		}
		eq(p, "Content-Type", resp.Header.Get("Content-Type"), "application/json")
		eq(p, "resp.StatusCode", resp.StatusCode, 200)
	})

	if len(allIDs) <= 20 {
		t.Logf("NOTE: the standard fixture has %d builds (<= 20), so its default page is not full; the full default page (20 rows, NextPage 2) is checked on a second server with %d extra builds below", len(allIDs), extraBuilds)
	}

	// A full default page needs more than 20 builds: a second server
	// seeded with the fixture plus extraBuilds builds.
	bigURL, bigFx, bigIDs := startBigServer(t, b)
	bigDev := mustClient(gitlab.NewClient(bigFx.Tokens["developer"], opts(gitlab.WithBaseURL(bigURL+"/api/v4"))...))
	var bigNumeric []int64
	c.check("ListProjectJobs default page on >20 builds: 20 rows, NextPage 2, no X-Total", func(p *probe) {
		if len(bigIDs) <= 20 {
			p.errorf("second server has only %d builds", len(bigIDs))
			return
		}
		jobs, resp, err := bigDev.Jobs.ListProjectJobs(bigFx.Project.ID, nil)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		bigNumeric = jobIDs(jobs)
		eq(p, "len(jobs)", len(jobs), 20)
		if !slices.Equal(bigNumeric, bigIDs[:20]) {
			p.errorf("ids = %v, want %v", bigNumeric, bigIDs[:20])
		}
		if !strictlyDescending(bigNumeric) {
			p.errorf("ids not strictly descending: %v", bigNumeric)
		}
		eq(p, "resp.NextPage", resp.NextPage, int64(2))
		eq(p, "resp.CurrentPage", resp.CurrentPage, int64(1))
		eq(p, "resp.ItemsPerPage", resp.ItemsPerPage, int64(20))
		eq(p, "resp.TotalItems (X-Total absent)", resp.TotalItems, int64(0))
		eq(p, "resp.TotalPages (X-Total-Pages absent)", resp.TotalPages, int64(0))
		if _, ok := resp.Header["X-Total"]; ok {
			p.errorf("X-Total header present (%q); GitLab omits it on project jobs", resp.Header.Get("X-Total"))
		}
		if !strings.HasPrefix(resp.NextLink, bigURL+"/api/v4/") {
			p.errorf("resp.NextLink = %q", resp.NextLink)
		}
	})
	c.check("ListProjectJobs default page on >20 builds by path equals numeric id", func(p *probe) {
		jobs, resp, err := bigDev.Jobs.ListProjectJobs("acme/tools/app.core", nil)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if bigNumeric == nil || !slices.Equal(jobIDs(jobs), bigNumeric) {
			p.errorf("ids by path = %v, by numeric id = %v", jobIDs(jobs), bigNumeric)
		}
		eq(p, "resp.NextPage", resp.NextPage, int64(2))
		eq(p, "resp.TotalItems", resp.TotalItems, int64(0))
	})
	c.check("ScanAndCollect default page size on >20 builds", func(p *probe) {
		pages := 0
		all, err := gitlab.ScanAndCollect(func(pg gitlab.PaginationOptionFunc) ([]*gitlab.Job, *gitlab.Response, error) {
			if pages >= maxPages {
				return nil, nil, fmt.Errorf("more than %d pages: pagination does not end", maxPages)
			}
			pages++
			return bigDev.Jobs.ListProjectJobs(bigFx.Project.ID, nil, pg)
		})
		if err != nil {
			p.errorf("error after %d pages: %s", pages, errText(err))
			return
		}
		if !slices.Equal(jobIDs(all), bigIDs) {
			p.errorf("ids = %v, want %v", jobIDs(all), bigIDs)
		}
		eq(p, "pages", pages, (len(bigIDs)+19)/20)
	})

	// The same first page with a small page size, so X-Next-Page is
	// exercised even though the default page holds every build.
	c.check("ListProjectJobs PerPage 4 first page has NextPage 2", func(p *probe) {
		jobs, resp, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 4}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if !slices.Equal(jobIDs(jobs), allIDs[:4]) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), allIDs[:4])
		}
		eq(p, "resp.NextPage", resp.NextPage, int64(2))
		eq(p, "resp.ItemsPerPage", resp.ItemsPerPage, int64(4))
		eq(p, "resp.TotalItems", resp.TotalItems, int64(0))
		if resp.NextLink == "" || !strings.HasPrefix(resp.NextLink, srv.URL+"/api/v4/") {
			p.errorf("resp.NextLink = %q, want an absolute link under %s/api/v4/", resp.NextLink, srv.URL)
		}
		eq(p, "resp.LastLink (no rel=last without totals)", resp.LastLink, "")
	})

	c.check("ListProjectJobs by path acme/tools/app.core (dot sent as %2E)", func(p *probe) {
		eq(p, "fixture project path", fx.Project.FullPath, "acme/tools/app.core")
		jobs, resp, err := dev.Jobs.ListProjectJobs("acme/tools/app.core", nil)
		path, _ := rec.last()
		eq(p, "request path", path, "/api/v4/projects/acme%2Ftools%2Fapp%2Ecore/jobs")
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if numericIDs == nil || !slices.Equal(jobIDs(jobs), numericIDs) {
			p.errorf("ids by path = %v, by numeric id = %v", jobIDs(jobs), numericIDs)
		}
		eq(p, "resp.NextPage", resp.NextPage, func() int64 {
			if len(allIDs) > 20 {
				return 2
			}
			return 0
		}())
		eq(p, "resp.TotalItems", resp.TotalItems, int64(0))
	})

	c.check("ListProjectJobs scope[] filter", func(p *probe) {
		set := []gitlab.BuildStateValue{gitlab.Failed, gitlab.Success, gitlab.Manual}
		jobs, _, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{
			ListOptions: gitlab.ListOptions{PerPage: 100}, Scope: &set})
		_, q := rec.last()
		if !strings.Contains(q, "scope%5B%5D=failed") || !strings.Contains(q, "scope%5B%5D=success") || !strings.Contains(q, "scope%5B%5D=manual") {
			p.errorf("query %q does not carry scope%%5B%%5D values", q)
		}
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		want := fixtureIDs(fx, func(j *ci.Job) bool {
			return j.Status == ci.StatusFailed || j.Status == ci.StatusSuccess || j.Status == ci.StatusManual
		})
		eq(p, "count", len(jobs), len(want))
		if !slices.Equal(jobIDs(jobs), want) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), want)
		}
		for _, j := range jobs {
			if !slices.Contains(set, gitlab.BuildStateValue(j.Status)) {
				p.errorf("job %d has status %q outside the scope", j.ID, j.Status)
			}
		}
	})

	c.check("ScanAndCollect offset paging, PerPage 4", func(p *probe) {
		var pages []*gitlab.Response
		all, err := gitlab.ScanAndCollect(func(pg gitlab.PaginationOptionFunc) ([]*gitlab.Job, *gitlab.Response, error) {
			if len(pages) >= maxPages {
				return nil, nil, fmt.Errorf("more than %d pages: pagination does not end", maxPages)
			}
			jobs, resp, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 4}}, pg)
			if resp != nil {
				pages = append(pages, resp)
			}
			return jobs, resp, err
		})
		if err != nil {
			p.errorf("error after %d pages: %s", len(pages), errText(err))
			return
		}
		got := jobIDs(all)
		if hasDuplicates(got) {
			p.errorf("duplicate ids: %v", got)
		}
		if !slices.Equal(got, allIDs) {
			p.errorf("ids = %v, want %v", got, allIDs)
		}
		eq(p, "pages", len(pages), (len(allIDs)+3)/4)
		for i, r := range pages {
			eq(p, fmt.Sprintf("page %d CurrentPage", i+1), r.CurrentPage, int64(i+1))
			if i < len(pages)-1 {
				eq(p, fmt.Sprintf("page %d NextPage", i+1), r.NextPage, int64(i+2))
			} else {
				eq(p, "last page NextPage", r.NextPage, int64(0))
				eq(p, "last page NextLink", r.NextLink, "")
			}
		}
	})

	c.check("ScanAndCollect keyset paging (id desc), PerPage 4", func(p *probe) {
		var pages []*gitlab.Response
		all, err := gitlab.ScanAndCollect(func(pg gitlab.PaginationOptionFunc) ([]*gitlab.Job, *gitlab.Response, error) {
			if len(pages) >= maxPages {
				return nil, nil, fmt.Errorf("more than %d pages: pagination does not end", maxPages)
			}
			jobs, resp, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{
				Pagination: "keyset", OrderBy: "id", Sort: "desc", PerPage: 4}}, pg)
			if resp != nil {
				pages = append(pages, resp)
			}
			return jobs, resp, err
		})
		if err != nil {
			p.errorf("error after %d pages: %s", len(pages), errText(err))
			return
		}
		got := jobIDs(all)
		if hasDuplicates(got) {
			p.errorf("duplicate ids: %v", got)
		}
		if !slices.Equal(got, allIDs) {
			p.errorf("ids = %v, want %v", got, allIDs)
		}
		eq(p, "pages", len(pages), (len(allIDs)+3)/4)
		for i, r := range pages {
			if i < len(pages)-1 {
				if !strings.Contains(r.NextLink, "cursor=") || !strings.Contains(r.NextLink, "pagination=keyset") {
					p.errorf("page %d NextLink = %q, want a keyset link with a cursor", i+1, r.NextLink)
				}
			} else {
				eq(p, "last page NextLink", r.NextLink, "")
				eq(p, "last page NextPage", r.NextPage, int64(0))
			}
		}
	})

	c.check("ListProjectJobs invalid scope -> 400", func(p *probe) {
		bad := []gitlab.BuildStateValue{"bogus"}
		_, resp, err := dev.Jobs.ListProjectJobs(pid, &gitlab.ListJobsOptions{Scope: &bad})
		if !gitlab.HasStatusCode(err, 400) {
			p.errorf("err = %v, want HasStatusCode 400", errText(err))
			return
		}
		var er *gitlab.ErrorResponse
		if errors.As(err, &er) && !strings.Contains(er.Message, "scope does not have a valid value") {
			p.errorf("message = %q, want it to contain %q", er.Message, "scope does not have a valid value")
		}
		eq(p, "resp.StatusCode", resp.StatusCode, 400)
	})

	c.check("ListProjectJobs unknown project -> ErrNotFound", func(p *probe) {
		_, _, err := dev.Jobs.ListProjectJobs(int64(987654321), nil)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("numeric: err = %v, want ErrNotFound", errText(err))
		}
		_, _, err = dev.Jobs.ListProjectJobs("acme/tools/no.such", nil)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("path: err = %v, want ErrNotFound", errText(err))
		}
	})

	// ---- pipeline jobs and bridges ---------------------------------------

	inPipeline := func(j *ci.Job) bool { return j.PipelineID == fx.Pipeline.ID }
	c.check("ListPipelineJobs excludes the retried attempt", func(p *probe) {
		jobs, resp, err := dev.Jobs.ListPipelineJobs(pid, fx.Pipeline.ID, &gitlab.ListJobsOptions{ListOptions: gitlab.ListOptions{PerPage: 100}})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		got := jobIDs(jobs)
		want := fixtureIDs(fx, func(j *ci.Job) bool { return inPipeline(j) && !j.Retried })
		if !slices.Equal(got, want) {
			p.errorf("ids = %v, want %v", got, want)
		}
		if slices.Contains(got, fx.RetriedOld.ID) {
			p.errorf("retried attempt %d listed", fx.RetriedOld.ID)
		}
		if !slices.Contains(got, fx.RetriedNew.ID) {
			p.errorf("retry %d missing", fx.RetriedNew.ID)
		}
		for _, j := range jobs {
			eq(p, fmt.Sprintf("job %d pipeline.id", j.ID), j.Pipeline.ID, fx.Pipeline.ID)
		}
		eq(p, "resp.TotalItems (X-Total)", resp.TotalItems, int64(len(want)))
		eq(p, "resp.TotalPages", resp.TotalPages, int64(1))
		eq(p, "resp.NextPage", resp.NextPage, int64(0))
	})

	c.check("ListPipelineJobs IncludeRetried true", func(p *probe) {
		jobs, _, err := dev.Jobs.ListPipelineJobs(pid, fx.Pipeline.ID, &gitlab.ListJobsOptions{
			ListOptions: gitlab.ListOptions{PerPage: 100}, IncludeRetried: gitlab.Ptr(true)})
		_, q := rec.last()
		if !strings.Contains(q, "include_retried=true") {
			p.errorf("query %q lacks include_retried=true", q)
		}
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		got := jobIDs(jobs)
		want := fixtureIDs(fx, inPipeline)
		if !slices.Equal(got, want) {
			p.errorf("ids = %v, want %v", got, want)
		}
		if !slices.Contains(got, fx.RetriedOld.ID) {
			p.errorf("retried attempt %d missing", fx.RetriedOld.ID)
		}
	})

	c.check("ListPipelineJobs scope[] filter", func(p *probe) {
		set := []gitlab.BuildStateValue{gitlab.Success}
		jobs, _, err := dev.Jobs.ListPipelineJobs(pid, fx.Pipeline.ID, &gitlab.ListJobsOptions{Scope: &set})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		want := fixtureIDs(fx, func(j *ci.Job) bool { return inPipeline(j) && !j.Retried && j.Status == ci.StatusSuccess })
		if !slices.Equal(jobIDs(jobs), want) {
			p.errorf("ids = %v, want %v", jobIDs(jobs), want)
		}
	})

	c.check("ListPipelineJobs unknown or foreign pipeline -> ErrNotFound", func(p *probe) {
		_, _, err := dev.Jobs.ListPipelineJobs(pid, 987654321, nil)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("unknown: err = %v, want ErrNotFound", errText(err))
		}
		_, _, err = root.Jobs.ListPipelineJobs(pid, fx.OtherPipe.ID, nil)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("pipeline of another project: err = %v, want ErrNotFound", errText(err))
		}
	})

	c.check("ListPipelineBridges returns only the bridge", func(p *probe) {
		bridges, resp, err := dev.Jobs.ListPipelineBridges(pid, fx.Pipeline.ID, nil)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		if len(bridges) != 1 {
			p.errorf("len = %d, want 1", len(bridges))
			return
		}
		br := bridges[0]
		eq(p, "ID", br.ID, fx.Bridge.ID)
		eq(p, "Name", br.Name, fx.Bridge.Name)
		eq(p, "Stage", br.Stage, fx.Bridge.Stage)
		eq(p, "Status", br.Status, string(fx.Bridge.Status))
		eq(p, "Pipeline.ID", br.Pipeline.ID, fx.Pipeline.ID)
		eq(p, "Pipeline.ProjectID", br.Pipeline.ProjectID, pid)
		if br.DownstreamPipeline == nil {
			p.errorf("DownstreamPipeline is nil")
		} else {
			eq(p, "DownstreamPipeline.ID", br.DownstreamPipeline.ID, fx.Downstream.ID)
			eq(p, "DownstreamPipeline.Source", br.DownstreamPipeline.Source, "parent_pipeline")
			eq(p, "DownstreamPipeline.ProjectID", br.DownstreamPipeline.ProjectID, pid)
		}
		if br.CreatedAt == nil {
			p.errorf("CreatedAt is nil")
		}
		if br.User == nil || br.User.ID != fx.Alice.ID {
			p.errorf("User = %+v, want id %d", br.User, fx.Alice.ID)
		}
		eq(p, "resp.TotalItems", resp.TotalItems, int64(1))
	})

	c.check("ListPipelineBridges unknown pipeline -> ErrNotFound", func(p *probe) {
		_, _, err := dev.Jobs.ListPipelineBridges(pid, 987654321, nil)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("err = %v, want ErrNotFound", errText(err))
		}
	})

	// ---- single job ------------------------------------------------------

	for _, st := range []ci.JobStatus{ci.StatusFailed, ci.StatusSuccess, ci.StatusRunning, ci.StatusPending, ci.StatusManual, ci.StatusCanceled, ci.StatusCreated} {
		fj := fx.JobsByStatus[st]
		c.check("GetJob "+string(st), func(p *probe) {
			j, resp, err := dev.Jobs.GetJob(pid, fj.ID)
			if err != nil {
				p.errorf("error: %s", errText(err))
				return
			}
			eq(p, "resp.StatusCode", resp.StatusCode, 200)
			eq(p, "ID", j.ID, fj.ID)
			eq(p, "Name", j.Name, "job-"+string(st))
			eq(p, "Stage", j.Stage, fj.Stage)
			eq(p, "Status", j.Status, string(st))
			eq(p, "Ref", j.Ref, "main")
			eq(p, "Tag", j.Tag, false)
			if j.CreatedAt == nil {
				p.errorf("CreatedAt is nil")
			} else if !j.CreatedAt.Equal(testenv.T0.Add(-50 * time.Minute)) {
				p.errorf("CreatedAt = %v, want %v", j.CreatedAt, testenv.T0.Add(-50*time.Minute))
			}
			eq(p, "Pipeline.ID", j.Pipeline.ID, fx.Pipeline.ID)
			eq(p, "Pipeline.ProjectID", j.Pipeline.ProjectID, pid)
			eq(p, "Pipeline.Ref", j.Pipeline.Ref, "main")
			eq(p, "Pipeline.Sha", j.Pipeline.Sha, fx.Pipeline.SHA)
			if j.User == nil {
				p.errorf("User is nil")
			} else {
				eq(p, "User.ID", j.User.ID, fx.Alice.ID)
				eq(p, "User.Username", j.User.Username, "alice")
			}
			if j.Commit == nil {
				p.errorf("Commit is nil")
			} else {
				eq(p, "Commit.ID", j.Commit.ID, fx.Pipeline.SHA)
				eq(p, "Commit.Title", j.Commit.Title, "Fix parser")
			}
			if !slices.Equal(j.TagList, []string{"docker", "linux"}) {
				p.errorf("TagList = %q, want [docker linux] (sorted)", j.TagList)
			}
			if !strings.HasSuffix(j.WebURL, fmt.Sprintf("/acme/tools/app.core/-/jobs/%d", fj.ID)) {
				p.errorf("WebURL = %q", j.WebURL)
			}
			finished := st == ci.StatusSuccess || st == ci.StatusFailed || st == ci.StatusCanceled
			switch {
			case finished:
				eq(p, "Duration", j.Duration, 60.5)
				if j.StartedAt == nil || j.FinishedAt == nil {
					p.errorf("StartedAt/FinishedAt = %v/%v, want both set", j.StartedAt, j.FinishedAt)
				} else if !j.FinishedAt.Equal(testenv.T0.Add(-38 * time.Minute)) {
					p.errorf("FinishedAt = %v, want %v", j.FinishedAt, testenv.T0.Add(-38*time.Minute))
				}
				eq(p, "Runner.ID", j.Runner.ID, fx.Runner.ID)
			case st == ci.StatusRunning:
				eq(p, "Duration", j.Duration, 1800.0) // T0 - (T0-30m)
				if j.FinishedAt != nil {
					p.errorf("FinishedAt = %v, want nil", j.FinishedAt)
				}
				eq(p, "Runner.ID", j.Runner.ID, fx.Runner.ID)
			default:
				eq(p, "Duration (null)", j.Duration, 0.0)
				if j.StartedAt != nil || j.FinishedAt != nil {
					p.errorf("StartedAt/FinishedAt = %v/%v, want nil", j.StartedAt, j.FinishedAt)
				}
			}
			if st == ci.StatusFailed {
				eq(p, "FailureReason", j.FailureReason, "script_failure")
			} else {
				eq(p, "FailureReason", j.FailureReason, "")
			}
			if st == ci.StatusSuccess {
				eq(p, "ArtifactsFile.Filename", j.ArtifactsFile.Filename, "artifacts.zip")
				eq(p, "ArtifactsFile.Size", j.ArtifactsFile.Size, int64(2048))
				eq(p, "Coverage", j.Coverage, 81.5)
				eq(p, "len(Artifacts)", len(j.Artifacts), 3)
				if j.ArtifactsExpireAt == nil || !j.ArtifactsExpireAt.Equal(testenv.T0.Add(30*24*time.Hour)) {
					p.errorf("ArtifactsExpireAt = %v", j.ArtifactsExpireAt)
				}
			} else {
				eq(p, "ArtifactsFile", j.ArtifactsFile, gitlab.JobArtifactsFile{})
			}
			if st == ci.StatusManual {
				eq(p, "AllowFailure", j.AllowFailure, true)
			}
		})
	}

	c.check("GetJob tag job", func(p *probe) {
		j, _, err := dev.Jobs.GetJob(pid, fx.TagJob.ID)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "Ref", j.Ref, "v1.0.0")
		eq(p, "Tag", j.Tag, true)
		eq(p, "Pipeline.ID", j.Pipeline.ID, fx.Pipeline2.ID)
	})

	c.check("GetJob of another project -> ErrNotFound", func(p *probe) {
		_, _, err := root.Jobs.GetJob(pid, fx.OtherJob.ID)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("other project's job: err = %v, want ErrNotFound", errText(err))
		}
		_, _, err = dev.Jobs.GetJob(pid, fx.Bridge.ID)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("bridge id: err = %v, want ErrNotFound", errText(err))
		}
		_, _, err = dev.Jobs.GetJob(pid, 987654321)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("unknown id: err = %v, want ErrNotFound", errText(err))
		}
	})

	// ---- trace -----------------------------------------------------------

	c.check("GetTraceFile equals the fixture trace", func(p *probe) {
		rd, resp, err := dev.Jobs.GetTraceFile(pid, failed.ID)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		got, _ := io.ReadAll(rd)
		if string(got) != string(fx.Trace) {
			p.errorf("trace = %q, want %q", got, fx.Trace)
		}
		eq(p, "Content-Type", resp.Header.Get("Content-Type"), "text/plain")
		eq(p, "Content-Disposition", resp.Header.Get("Content-Disposition"), fmt.Sprintf(`infile; filename="%d.log"`, failed.ID))
	})

	c.check("GetTraceFile of a job without log is empty", func(p *probe) {
		rd, resp, err := dev.Jobs.GetTraceFile(pid, fx.JobsByStatus[ci.StatusCreated].ID)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "resp.StatusCode", resp.StatusCode, 200)
		eq(p, "reader length", rd.Len(), 0)
	})

	c.check("GetTraceFile of another project's job -> ErrNotFound", func(p *probe) {
		_, _, err := root.Jobs.GetTraceFile(pid, fx.OtherJob.ID)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("err = %v, want ErrNotFound", errText(err))
		}
	})

	// ---- GET /job --------------------------------------------------------

	checkRunning := func(p *probe, j *gitlab.Job) {
		eq(p, "ID", j.ID, running.ID)
		eq(p, "Status", j.Status, "running")
		eq(p, "Name", j.Name, running.Name)
		eq(p, "Pipeline.ID", j.Pipeline.ID, fx.Pipeline.ID)
		if j.FinishedAt != nil || j.ErasedAt != nil {
			p.errorf("FinishedAt/ErasedAt = %v/%v, want nil", j.FinishedAt, j.ErasedAt)
		}
	}
	c.check("GetJobTokensJob with NewJobClient (JOB-TOKEN header)", func(p *probe) {
		j, _, err := jobc.Jobs.GetJobTokensJob(nil)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		checkRunning(p, j)
	})

	c.check("GetJobTokensJob with the JobToken option (?job_token=)", func(p *probe) {
		j, _, err := anon.Jobs.GetJobTokensJob(&gitlab.GetJobTokensJobOptions{JobToken: gitlab.Ptr(fx.JobToken)})
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		checkRunning(p, j)
	})

	c.check("GetJobTokensJob with a PAT only -> ErrNotFound", func(p *probe) {
		_, _, err := dev.Jobs.GetJobTokensJob(nil)
		if !errors.Is(err, gitlab.ErrNotFound) {
			p.errorf("err = %v, want ErrNotFound", errText(err))
		}
	})

	c.check("GetJobTokensJob without credentials or with a finished job's token -> 401", func(p *probe) {
		_, _, err := anon.Jobs.GetJobTokensJob(nil)
		if !gitlab.HasStatusCode(err, 401) {
			p.errorf("anonymous: err = %v, want 401", errText(err))
		}
		_, _, err = anon.Jobs.GetJobTokensJob(&gitlab.GetJobTokensJobOptions{JobToken: gitlab.Ptr(fx.FinishedJobToken)})
		if !gitlab.HasStatusCode(err, 401) {
			p.errorf("finished job token: err = %v, want 401", errText(err))
		}
	})

	// ---- auth variants ---------------------------------------------------

	c.check("OAuth (Bearer) client with a PAT can GetJob", func(p *probe) {
		j, _, err := oauth.Jobs.GetJob(pid, success.ID)
		if err != nil {
			p.errorf("error: %s", errText(err))
			return
		}
		eq(p, "ID", j.ID, success.ID)
		eq(p, "Status", j.Status, "success")
	})

	c.check("bad token -> 401 (Bearer and PRIVATE-TOKEN)", func(p *probe) {
		_, _, err := badOAuth.Jobs.GetJob(pid, success.ID)
		if !gitlab.HasStatusCode(err, 401) {
			p.errorf("Bearer: err = %v, want 401", errText(err))
		}
		var er *gitlab.ErrorResponse
		if errors.As(err, &er) && !strings.Contains(er.Message, "401 Unauthorized") {
			p.errorf("Bearer: message = %q, want it to contain 401 Unauthorized", er.Message)
		}
		_, _, err = badPAT.Jobs.ListProjectJobs(pid, nil)
		if !gitlab.HasStatusCode(err, 401) {
			p.errorf("PRIVATE-TOKEN: err = %v, want 401", errText(err))
		}
	})
}
