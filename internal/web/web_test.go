package web_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// site is a whole gantry node on loopback over the seeded fixture.
type site struct {
	base string
	fx   *testenv.Fixture
	st   store.Store
}

func startSite(t *testing.T, b testenv.Backend, configure func(*config.Config)) *site {
	t.Helper()
	st := b.Open(t)
	fx := testenv.Seed(t, st)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + l.Addr().String()
	cfg := config.Defaults()
	cfg.DataDir, cfg.ExternalURL, cfg.Listen, cfg.ReadCacheTTL = t.TempDir(), base, l.Addr().String(), 0
	if configure != nil {
		configure(&cfg)
	}
	a, err := app.New(context.Background(), cfg, app.Options{Store: st, Now: func() time.Time { return testenv.T0 }})
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: a.Handler()}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() {
		srv.Close()
		a.Close()
	})
	return &site{base: base, fx: fx, st: st}
}

// browser is a cookie-keeping client that does not follow redirects.
type browser struct {
	t    *testing.T
	base string
	c    *http.Client
}

func (s *site) browser(t *testing.T) *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: t, base: s.base, c: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (b *browser) do(req *http.Request) (*http.Response, string) {
	b.t.Helper()
	res, err := b.c.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	return res, string(body)
}

func (b *browser) get(path string) (int, string) {
	b.t.Helper()
	req, _ := http.NewRequest("GET", b.base+path, nil)
	res, body := b.do(req)
	return res.StatusCode, body
}

func (b *browser) post(path string, form url.Values) (*http.Response, string) {
	b.t.Helper()
	req, _ := http.NewRequest("POST", b.base+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

var csrfMeta = regexp.MustCompile(`<meta name="csrf-token" content="([^"]+)">`)

// csrf is the form token of the page at path.
func (b *browser) csrf(path string) string {
	b.t.Helper()
	_, body := b.get(path)
	m := csrfMeta.FindStringSubmatch(body)
	if m == nil {
		b.t.Fatalf("no CSRF token on %s", path)
	}
	return m[1]
}

func (b *browser) signIn(form url.Values) *http.Response {
	b.t.Helper()
	form.Set("authenticity_token", b.csrf("/users/sign_in"))
	res, body := b.post("/users/sign_in", form)
	if res.StatusCode != http.StatusSeeOther {
		b.t.Fatalf("sign in: %d %s", res.StatusCode, body)
	}
	return res
}

func (s *site) signedIn(t *testing.T, role string) *browser {
	b := s.browser(t)
	b.signIn(url.Values{"token": {s.fx.Tokens[role]}})
	return b
}

func (s *site) jobURL(j *ci.Job) string {
	p := s.fx.Project
	if j.ProjectID != p.ID {
		p = s.fx.Other
	}
	return "/" + p.FullPath + "/-/jobs/" + strconv.FormatInt(j.ID, 10)
}

func expect(t *testing.T, who, path string, got, want int) {
	t.Helper()
	if got != want {
		t.Errorf("%s GET %s: %d, want %d", who, path, got, want)
	}
}

func TestPageAccess(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := startSite(t, b, nil)
			fx := s.fx
			proj := "/" + fx.Project.FullPath
			running := s.jobURL(fx.JobsByStatus[ci.StatusRunning])
			pipeline := proj + "/-/pipelines/" + strconv.FormatInt(fx.Pipeline.ID, 10)
			private := []string{proj + "/-/pipelines", pipeline, proj + "/-/jobs", running, running + "/raw", running + "/follow"}

			anon := s.browser(t)
			code, body := anon.get("/")
			if code != 200 || !strings.Contains(body, fx.Public.FullPath) || strings.Contains(body, fx.Project.FullPath) {
				t.Fatalf("anonymous project list: %d", code)
			}
			expect(t, "anonymous", "/"+fx.Public.FullPath+"/-/pipelines", first(anon.get("/"+fx.Public.FullPath+"/-/pipelines")), 200)
			for _, who := range []string{"anonymous", "outsider", "guest"} {
				br := anon
				if who != "anonymous" {
					br = s.signedIn(t, who)
				}
				for _, p := range private {
					expect(t, who, p, first(br.get(p)), 404)
				}
			}
			for _, p := range []string{"/acme/nothing/-/pipelines", proj + "/-/jobs/999999", proj + "/-/jobs/x", proj + "/-/pipelines/0", proj + "/-/nope", "/" + fx.Other.FullPath + "/-/jobs"} {
				expect(t, "reporter", p, first(s.signedIn(t, "reporter").get(p)), 404)
			}

			reporter := s.signedIn(t, "reporter")
			code, body = reporter.get(pipeline)
			if code != 200 || !strings.Contains(body, "job-running") || !strings.Contains(body, `href="`+proj+"/-/pipelines/"+strconv.FormatInt(fx.Downstream.ID, 10)+`"`) {
				t.Fatalf("pipeline page: %d\n%s", code, body)
			}
			for _, stage := range []string{">build<", ">test<", ">deploy<"} {
				if !strings.Contains(body, stage) {
					t.Errorf("pipeline page lacks stage %s", stage)
				}
			}
			code, body = reporter.get(running)
			if code != 200 || strings.Contains(body, `id="job-cancel"`) || strings.Contains(body, "/cancel") {
				t.Fatalf("a reporter sees action buttons: %d", code)
			}
			failed := s.jobURL(fx.JobsByStatus[ci.StatusFailed])
			code, body = reporter.get(failed)
			if code != 200 || !strings.Contains(body, `<span class="f2 bo">$ make test</span>`) || !strings.Contains(body, `data-s="step_script"`) ||
				!strings.Contains(body, `id="L1"`) || strings.Contains(body, `id="job-retry"`) {
				t.Fatalf("failed job page as reporter: %d\n%s", code, body)
			}

			dev := s.signedIn(t, "developer")
			for path, button := range map[string]string{running: "job-cancel", failed: "job-retry", s.jobURL(fx.JobsByStatus[ci.StatusManual]): "job-play"} {
				if code, body := dev.get(path); code != 200 || !strings.Contains(body, `id="`+button+`"`) {
					t.Errorf("developer on %s: %d, no %s button", path, code, button)
				}
			}
			if _, body := dev.get(failed); !strings.Contains(body, `id="job-erase"`) {
				t.Error("a developer sees no erase button on their own job")
			}
			if _, body := s.signedIn(t, "developer2").get(failed); strings.Contains(body, `id="job-erase"`) || !strings.Contains(body, `id="job-retry"`) {
				t.Error("a developer may erase only their own jobs")
			}
			if _, body := s.signedIn(t, "maintainer").get(failed); !strings.Contains(body, `id="job-erase"`) {
				t.Error("a maintainer sees no erase button")
			}

			expect(t, "developer", "/admin/runners", first(dev.get("/admin/runners")), 404)
			expect(t, "developer", proj+"/-/runners", first(dev.get(proj+"/-/runners")), 404)
			root := s.signedIn(t, "root")
			if code, body := root.get("/admin/runners"); code != 200 || !strings.Contains(body, "shared-1") || !strings.Contains(body, ">online<") ||
				!strings.Contains(body, "job-running") || !strings.Contains(body, ">linux<") {
				t.Fatalf("admin runners: %d\n%s", code, body)
			}
			if code, body := s.signedIn(t, "maintainer").get(proj + "/-/runners"); code != 200 || !strings.Contains(body, "shared-1") {
				t.Fatalf("project runners for a maintainer: %d", code)
			}
		})
	}
}

func first(code int, _ string) int { return code }

func TestListsFilter(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := startSite(t, b, nil)
			proj := "/" + s.fx.Project.FullPath
			br := s.signedIn(t, "reporter")
			_, body := br.get(proj + "/-/jobs?scope=failed")
			if !strings.Contains(body, "job-failed") || strings.Contains(body, "job-success") {
				t.Errorf("jobs filtered by status:\n%s", body)
			}
			_, body = br.get(proj + "/-/jobs?name=job-success")
			if !strings.Contains(body, "job-success") || strings.Contains(body, "job-failed") {
				t.Errorf("jobs filtered by name")
			}
			_, body = br.get(proj + "/-/jobs?ref=v1.0.0")
			if !strings.Contains(body, "release") || strings.Contains(body, "job-failed") {
				t.Errorf("jobs filtered by ref")
			}
			_, body = br.get(proj + "/-/pipelines?ref=v1.0.0")
			if !strings.Contains(body, "#"+strconv.FormatInt(s.fx.Pipeline2.ID, 10)) || strings.Contains(body, "#"+strconv.FormatInt(s.fx.Pipeline.ID, 10)+"<") {
				t.Errorf("pipelines filtered by ref:\n%s", body)
			}
			_, body = br.get(proj + "/-/pipelines?status=running")
			if strings.Contains(body, "#"+strconv.FormatInt(s.fx.Pipeline2.ID, 10)+"<") {
				t.Errorf("pipelines filtered by status")
			}
			for _, p := range []string{proj + "/-/jobs?scope=bogus", proj + "/-/pipelines?status=bogus", proj + "/-/jobs?before=x"} {
				expect(t, "reporter", p, first(br.get(p)), 400)
			}
		})
	}
}

func TestFormsNeedCSRF(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := startSite(t, b, nil)
			ctx := context.Background()
			running := s.fx.JobsByStatus[ci.StatusRunning]
			cancel := s.jobURL(running) + "/cancel"
			statusOf := func() ci.JobStatus {
				j, err := s.st.JobByID(ctx, running.ProjectID, running.ID)
				if err != nil {
					t.Fatal(err)
				}
				return j.Status
			}

			anon := s.browser(t)
			if res, _ := anon.post("/users/sign_in", url.Values{"token": {s.fx.Tokens["developer"]}}); res.StatusCode != 403 {
				t.Fatalf("sign-in without a CSRF token: %d", res.StatusCode)
			}
			dev := s.signedIn(t, "developer")
			for _, tok := range []string{"", "forged"} {
				if res, _ := dev.post(cancel, url.Values{"authenticity_token": {tok}}); res.StatusCode != 403 || statusOf() != ci.StatusRunning {
					t.Fatalf("cancel with token %q: %d, job %s", tok, res.StatusCode, statusOf())
				}
			}
			// Another session's token is no good either.
			other := s.signedIn(t, "developer").csrf("/")
			if res, _ := dev.post(cancel, url.Values{"authenticity_token": {other}}); res.StatusCode != 403 {
				t.Fatalf("cancel with another session's token: %d", res.StatusCode)
			}
			// A reporter with a good token is refused by the API's rules.
			rep := s.signedIn(t, "reporter")
			if res, _ := rep.post(cancel, url.Values{"authenticity_token": {rep.csrf("/")}}); res.StatusCode != 403 || statusOf() != ci.StatusRunning {
				t.Fatalf("reporter cancel: %d, job %s", res.StatusCode, statusOf())
			}
			res, _ := dev.post(cancel, url.Values{"authenticity_token": {dev.csrf("/")}})
			if res.StatusCode != http.StatusSeeOther || res.Header.Get("Location") != s.jobURL(running) || statusOf() != ci.StatusCanceling {
				t.Fatalf("cancel: %d %s, job %s", res.StatusCode, res.Header.Get("Location"), statusOf())
			}

			manual := s.fx.JobsByStatus[ci.StatusManual]
			res, body := dev.post(s.jobURL(manual)+"/play", url.Values{"authenticity_token": {dev.csrf("/")},
				"variable_key": {"GREETING", ""}, "variable_value": {"hi there", "ignored"}})
			if res.StatusCode != http.StatusSeeOther {
				t.Fatalf("play: %d %s", res.StatusCode, body)
			}
			vars, err := s.st.JobVariables(ctx, manual.ID)
			if err != nil || len(vars) != 1 || vars[0].Key != "GREETING" || vars[0].Value != "hi there" {
				t.Fatalf("played with %+v (%v)", vars, err)
			}
			// Anonymous visitors are sent to sign in.
			res, _ = anon.post(cancel, url.Values{"authenticity_token": {anon.csrf("/users/sign_in")}})
			if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(res.Header.Get("Location"), "/users/sign_in?redirect_to=") {
				t.Fatalf("anonymous cancel: %d %s", res.StatusCode, res.Header.Get("Location"))
			}
		})
	}
}

func TestPasswordSessions(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := startSite(t, b, nil)
			api := func(form url.Values) (int, string) {
				req, _ := http.NewRequest("POST", s.base+"/api/v4/users", strings.NewReader(form.Encode()))
				req.Header.Set("PRIVATE-TOKEN", s.fx.Tokens["root"])
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
				res, body := s.browser(t).do(req)
				return res.StatusCode, body
			}
			user := url.Values{"username": {"wendy"}, "name": {"Wendy"}, "email": {"wendy@example.com"}, "password": {"short"}}
			if code, body := api(user); code != 400 || !strings.Contains(body, `"password":["is too short (minimum is 8 characters)"]`) {
				t.Fatalf("short password: %d %s", code, body)
			}
			user.Set("password", "correct horse battery")
			if code, body := api(user); code != 201 || strings.Contains(body, "correct horse") {
				t.Fatalf("create user: %d %s", code, body)
			}
			br := s.browser(t)
			tok := br.csrf("/users/sign_in")
			res, body := br.post("/users/sign_in", url.Values{"authenticity_token": {tok}, "username": {"wendy"}, "password": {"wrong password"}})
			if res.StatusCode != 401 || !strings.Contains(body, "Invalid login or password.") {
				t.Fatalf("wrong password: %d", res.StatusCode)
			}
			res = br.signIn(url.Values{"username": {"Wendy"}, "password": {"correct horse battery"}, "redirect_to": {"//evil.example/"}})
			if loc := res.Header.Get("Location"); loc != "/" {
				t.Fatalf("redirect after sign-in went to %q", loc)
			}
			var session *http.Cookie
			for _, c := range res.Cookies() {
				if c.Name == "_gantry_session" {
					session = c
				}
			}
			if session == nil || !session.HttpOnly || session.SameSite != http.SameSiteLaxMode || session.Secure || session.MaxAge <= 0 {
				t.Fatalf("session cookie %+v", session)
			}
			if _, _, err := s.st.SessionByDigest(context.Background(), session.Value, s.fx.Pipeline.CreatedAt); err == nil {
				t.Fatal("the session id itself is stored")
			}
			if _, body := br.get("/"); !strings.Contains(body, "Signed in as <strong>wendy</strong>") {
				t.Fatal("not signed in after sign-in")
			}
			if res, _ := br.post("/users/sign_out", url.Values{"authenticity_token": {br.csrf("/")}}); res.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign out: %d", res.StatusCode)
			}
			// The old cookie is dead on the server, not just forgotten.
			req, _ := http.NewRequest("GET", s.base+"/", nil)
			req.AddCookie(&http.Cookie{Name: "_gantry_session", Value: session.Value})
			if _, body := s.browser(t).do(req); strings.Contains(body, "Signed in as") {
				t.Fatal("the session still works after signing out")
			}
			// A read_api token cannot start a session that could write.
			tokForm := url.Values{"authenticity_token": {br.csrf("/users/sign_in")}, "token": {s.fx.Tokens["readonly"]}}
			if res, _ := br.post("/users/sign_in", tokForm); res.StatusCode != 401 {
				t.Fatalf("read_api token sign-in: %d", res.StatusCode)
			}
		})
	}
}

func TestSecureCookiesUnderHTTPS(t *testing.T) {
	b := testenv.Backends(t)[0]
	s := startSite(t, b, func(c *config.Config) { c.ExternalURL = "https://ci.example.com" })
	res := s.browser(t).signIn(url.Values{"token": {s.fx.Tokens["developer"]}})
	for _, c := range res.Cookies() {
		if c.Name == "_gantry_session" && (!c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode) {
			t.Fatalf("session cookie under https: %+v", c)
		}
	}
}

func TestLogEndpoints(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			s := startSite(t, b, nil)
			br := s.signedIn(t, "reporter")
			failed := s.jobURL(s.fx.JobsByStatus[ci.StatusFailed])
			req, _ := http.NewRequest("GET", s.base+failed+"/raw", nil)
			req.Header.Set("Range", "bytes=3-9")
			res, body := br.do(req)
			if res.StatusCode != 206 || body != string(s.fx.Trace[3:10]) {
				t.Fatalf("ranged raw log: %d %q", res.StatusCode, body)
			}
			code, body := br.get(failed + "/follow?offset=4")
			if code != 200 || !strings.Contains(body, "data: Running with gantry") || !strings.Contains(body, "event: end") {
				t.Fatalf("follow a finished job: %d %q", code, body)
			}

			// A long log: the page shows its end, anchored by byte offsets,
			// and offers the earlier part.
			long := s.fx.JobsByStatus[ci.StatusCanceled]
			var log strings.Builder
			for i := 1; log.Len() < 400<<10; i++ {
				fmt.Fprintf(&log, "line %06d of a long log\n", i)
			}
			if _, err := s.st.AppendTrace(context.Background(), long.ID, 0, []byte(log.String())); err != nil {
				t.Fatal(err)
			}
			code, body = br.get(s.jobURL(long))
			start := int64(log.Len() - 64<<10)
			start += int64(strings.IndexByte(log.String()[start:], '\n') + 1)
			if code != 200 || !strings.Contains(body, `<button type="button" id="log-earlier">`) || !strings.Contains(body, `data-start="`+strconv.FormatInt(start, 10)+`"`) ||
				!strings.Contains(body, `id="O`+strconv.FormatInt(start, 10)+`"`) || strings.Contains(body, `id="L1"`) || !strings.Contains(body, "line 015") ||
				strings.Contains(body, "line 000001 ") || len(body) > 1<<20 {
				t.Fatalf("long log page: %d, %d bytes", code, len(body))
			}
		})
	}
}
