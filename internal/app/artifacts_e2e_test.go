package app_test

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/app"
	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/expiry"
	"gantry/internal/store"
	"gantry/internal/testenv"
)

// fakeClock is real time shifted by an offset the test moves forward, so
// expiry is reached without waiting.
type fakeClock struct {
	mu     sync.Mutex
	offset time.Duration
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.offset)
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.offset += d
	c.mu.Unlock()
}

// artifactsNode is a whole gantry on the seeded fixture (users of every
// role, a second project with a running job), on a fake clock.
type artifactsNode struct {
	*node
	fx    *testenv.Fixture
	clock *fakeClock
}

func startArtifactsNode(t *testing.T, b testenv.Backend) *artifactsNode {
	t.Helper()
	st := b.Open(t)
	fx := testenv.Seed(t, st)
	// The e2e helpers act as root with rootToken.
	if _, err := st.CreateToken(t.Context(), store.CreateTokenParams{UserID: fx.Root.ID, Name: "e2e", Digest: ci.HashToken(rootToken), Scopes: []ci.Scope{ci.ScopeAPI}, Now: time.Now()}); err != nil {
		t.Fatal(err)
	}
	clock := &fakeClock{}
	n := serveNode(t, st, app.Options{Now: clock.Now}, func(c *config.Config) {
		c.ArtifactExpiryInterval = 0 // the test runs its own worker
	})
	return &artifactsNode{node: n, fx: fx, clock: clock}
}

// noRedirects sees the server's own answer to unclean paths.
var noRedirects = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// get sends a request with one credential header (or none) and returns
// status, headers and body.
func (n *artifactsNode) send(method, path, header, value string) (int, http.Header, []byte) {
	n.t.Helper()
	req, err := http.NewRequest(method, n.base+"/api/v4"+path, nil)
	if err != nil {
		n.t.Fatal(err)
	}
	if header != "" {
		req.Header.Set(header, value)
	}
	res, err := noRedirects.Do(req)
	if err != nil {
		n.t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, res.Header, b
}

func (n *artifactsNode) as(role, method, path string) (int, []byte) {
	n.t.Helper()
	if role == "anonymous" {
		c, _, b := n.send(method, path, "", "")
		return c, b
	}
	c, _, b := n.send(method, path, "PRIVATE-TOKEN", n.fx.Tokens[role])
	return c, b
}

// outcome is an expected answer; an empty body is not compared.
type outcome struct {
	code int
	body string
}

// expectRoles sends the request as each role and checks its outcome.
func (n *artifactsNode) expectRoles(what, method, path string, byRole map[string]outcome) {
	n.t.Helper()
	for role, want := range byRole {
		code, body := n.as(role, method, path)
		n.expect(what+" as "+role, code, body, want.code, want.body)
	}
}

// expect checks a status and, when want is not "", that the body equals it.
func (n *artifactsNode) expect(what string, code int, body []byte, wantCode int, want string) {
	n.t.Helper()
	if code != wantCode || (want != "" && strings.TrimSpace(string(body)) != want) {
		n.t.Fatalf("%s: %d %s, want %d %s", what, code, body, wantCode, want)
	}
}

func (n *artifactsNode) job(pid, jobID int64) map[string]any {
	n.t.Helper()
	var j map[string]any
	if code := n.api("GET", fmt.Sprintf("/projects/%d/jobs/%d", pid, jobID), nil, &j); code != 200 {
		n.t.Fatalf("get job %d: %d", jobID, code)
	}
	return j
}

func fileTypesOf(job map[string]any) []string {
	var out []string
	for _, a := range job["artifacts"].([]any) {
		out = append(out, a.(map[string]any)["file_type"].(string))
	}
	return out
}

type zipEntry struct {
	name, body string
	mode       os.FileMode
}

func makeZip(t *testing.T, entries ...zipEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(w, e.body)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// upload sends an artifact the way gitlab-runner does.
func (n *artifactsNode) upload(jobID int64, token, artifactType, format string, data []byte) {
	n.t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	part, _ := mw.CreateFormFile("file", artifactType)
	part.Write(data)
	mw.Close()
	path := fmt.Sprintf("/jobs/%d/artifacts?artifact_format=%s&artifact_type=%s&expire_in=1+day", jobID, format, artifactType)
	if c, _, b := n.raw("POST", path, body.Bytes(), map[string]string{"JOB-TOKEN": token, "Content-Type": mw.FormDataContentType()}); c != 201 {
		n.t.Fatalf("upload %s: %d %s", artifactType, c, b)
	}
}

// runPipeline commits to main, lets a runner take the build job, calls
// whileRunning with its token, and finishes it; it returns the job id once
// the pipeline succeeded.
func (n *artifactsNode) runPipeline(pid int64, runner, file string, whileRunning func(jobID int64, token string)) int64 {
	n.t.Helper()
	if code := n.api("POST", fmt.Sprintf("/projects/%d/repository/files/%s", pid, file), map[string]any{"branch": "main", "content": file, "commit_message": file}, nil); code != 201 {
		n.t.Fatalf("commit %s: %d", file, code)
	}
	var payload map[string]any
	waitFor(n.t, "a job for "+file, func() bool {
		c, _, p := n.requestJob(runner, "")
		payload = p
		return c == 201
	})
	jobID, token := int64(payload["id"].(float64)), payload["token"].(string)
	pipelineID := int64(payload["job_info"].(map[string]any)["pipeline_id"].(float64))
	whileRunning(jobID, token)
	fin, _ := json.Marshal(map[string]any{"token": token, "state": "success", "checksum": "crc32:00000000"})
	if c, _, b := n.raw("PUT", fmt.Sprintf("/jobs/%d", jobID), fin, map[string]string{"Content-Type": "application/json"}); c != 200 {
		n.t.Fatalf("finish: %d %s", c, b)
	}
	waitFor(n.t, "pipeline success", func() bool {
		var pl pipelineJSON
		n.api("GET", fmt.Sprintf("/projects/%d/pipelines/%d", pid, pipelineID), nil, &pl)
		return pl.Status == "success"
	})
	return jobID
}

const artifactsCI = `build:
  script: [make]
  artifacts:
    paths: [out/]
`

func TestArtifactsEndToEnd(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) { testArtifactsEndToEnd(t, b) })
	}
}

func testArtifactsEndToEnd(t *testing.T, b testenv.Backend) {
	n := startArtifactsNode(t, b)
	fx := n.fx
	// Public pipelines off: guests may not read jobs.
	var proj struct{ ID int64 }
	if code := n.api("POST", "/projects", map[string]any{"name": "arts", "public_builds": false}, &proj); code != 201 {
		t.Fatalf("create project: %d", code)
	}
	pid := proj.ID
	if code := n.api("POST", fmt.Sprintf("/projects/%d/repository/files/.gitlab-ci.yml", pid), map[string]any{"branch": "main", "content": artifactsCI, "commit_message": "ci"}, nil); code != 201 {
		t.Fatalf("commit ci: %d", code)
	}
	for user, level := range map[*ci.User]int{fx.Guest: 10, fx.Reporter: 20, fx.Alice: 30, fx.Maintainer: 40} {
		if code := n.api("POST", fmt.Sprintf("/projects/%d/members", pid), map[string]any{"user_id": user.ID, "access_level": level}, nil); code != 201 {
			t.Fatalf("add member %s: %d", user.Username, code)
		}
	}
	runner := n.newRunner()
	project := fmt.Sprintf("/projects/%d", pid)

	// The first pipeline's archive holds ordinary files and entries that
	// try to leave the archive.
	firstZip := makeZip(t,
		zipEntry{name: "out/a.txt", body: "alpha"},
		zipEntry{name: "out/sub/b.json", body: `{"b":1}`},
		zipEntry{name: "out/dir/", mode: os.ModeDir | 0o755},
		zipEntry{name: "../evil.txt", body: "evil-dotdot"},
		zipEntry{name: "../../etc/passwd", body: "evil-passwd"},
		zipEntry{name: "/abs.txt", body: "evil-absolute"},
		zipEntry{name: `out\win.txt`, body: "evil-backslash"},
		zipEntry{name: "out/link", body: "/etc/passwd", mode: os.ModeSymlink | 0o777},
	)
	var uploadedAt time.Time
	first := n.runPipeline(pid, runner, "one.txt", func(jobID int64, token string) {
		uploadedAt = n.clock.Now()
		n.upload(jobID, token, "archive", "zip", firstZip)
		// The running job's own token downloads it.
		code, _, body := n.send("GET", fmt.Sprintf("%s/jobs/%d/artifacts", project, jobID), "JOB-TOKEN", token)
		if code != 200 || !bytes.Equal(body, firstZip) {
			t.Fatalf("download with the same project's job token: %d (%d bytes)", code, len(body))
		}
	})
	archive := fmt.Sprintf("%s/jobs/%d/artifacts", project, first)

	// The job document reports the upload's expiry and the archive.
	job := n.job(pid, first)
	exp, err := time.Parse(time.RFC3339, job["artifacts_expire_at"].(string))
	if err != nil || exp.Sub(uploadedAt) < 23*time.Hour || exp.Sub(uploadedAt) > 25*time.Hour {
		t.Fatalf("artifacts_expire_at %v after an upload at %v with expire_in 1 day", job["artifacts_expire_at"], uploadedAt)
	}
	if af, _ := job["artifacts_file"].(map[string]any); af["filename"] != "artifacts.zip" || int(af["size"].(float64)) != len(firstZip) {
		t.Fatalf("artifacts_file %v", job["artifacts_file"])
	}

	// Whole archive.
	{
		code, h, body := n.send("GET", archive, "PRIVATE-TOKEN", fx.Tokens["reporter"])
		if code != 200 || !bytes.Equal(body, firstZip) {
			t.Fatalf("download: %d (%d bytes)", code, len(body))
		}
		if h.Get("Content-Type") != "application/octet-stream" || h.Get("Content-Disposition") != `attachment; filename="artifacts.zip"; filename*=UTF-8''artifacts.zip` {
			t.Fatalf("headers %v", h)
		}
		code, h, body = n.send("HEAD", archive, "PRIVATE-TOKEN", fx.Tokens["reporter"])
		if code != 200 || len(body) != 0 || h.Get("Content-Length") != fmt.Sprint(len(firstZip)) {
			t.Fatalf("HEAD: %d %v %d bytes", code, h, len(body))
		}
	}

	// Files inside.
	{
		for path, want := range map[string][2]string{
			"out/a.txt":      {"alpha", "text/plain; charset=utf-8"},
			"out/sub/b.json": {`{"b":1}`, "application/json"},
		} {
			code, h, body := n.send("GET", archive+"/"+path, "PRIVATE-TOKEN", fx.Tokens["reporter"])
			base := path[strings.LastIndex(path, "/")+1:]
			if code != 200 || string(body) != want[0] || h.Get("Content-Type") != want[1] || h.Get("Content-Disposition") != `attachment; filename="`+base+`"` {
				t.Fatalf("%s: %d %q %v", path, code, body, h)
			}
		}
		// Directories, symbolic links and missing files are not found.
		for _, path := range []string{"out/dir/", "out/dir", "out/link", "out/missing.txt", "out", "out%5Cwin.txt"} {
			code, body := n.as("reporter", "GET", archive+"/"+path)
			n.expect(path, code, body, 404, `{"message":"404 Not Found"}`)
		}
		// Paths no file can have are refused before routing, as every path is.
		for path, want := range map[string]string{"out%00a.txt": "null byte in parameters", "%FF": "invalid byte sequence in UTF-8"} {
			code, body := n.as("reporter", "GET", archive+"/"+path)
			n.expect(path, code, body, 400, `{"message":"400 Bad request - `+want+`"}`)
		}
		// Nothing that names a place outside the archive is served.
		for _, path := range []string{"../evil.txt", "%2E%2E/evil.txt", "..%2Fevil.txt", "../../etc/passwd", "..%2F..%2Fetc%2Fpasswd",
			"%2Fabs.txt", "/abs.txt", "out/../../evil.txt", "out/..%5Cwin.txt"} {
			req, _ := http.NewRequest("GET", n.base+"/api/v4"+archive+"/"+path, nil)
			req.Header.Set("PRIVATE-TOKEN", fx.Tokens["reporter"])
			res, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode != 404 || bytes.Contains(body, []byte("evil-")) {
				t.Fatalf("%s escaped: %d %q", path, res.StatusCode, body)
			}
		}
	}

	// Permissions.
	{
		for _, path := range []string{archive, archive + "/out/a.txt"} {
			n.expectRoles(path, "GET", path, map[string]outcome{
				"anonymous":  {404, `{"message":"404 Project Not Found"}`},
				"outsider":   {404, `{"message":"404 Project Not Found"}`},
				"guest":      {403, `{"message":"403 Forbidden"}`},
				"reporter":   {200, ""},
				"developer":  {200, ""},
				"maintainer": {200, ""},
			})
		}
		code, _, body := n.send("GET", archive, "JOB-TOKEN", "glcbt-not-a-token")
		n.expect("unknown job token", code, body, 401, `{"message":"401 Unauthorized"}`)
		// Another project's job token needs the allowlist.
		code, _, body = n.send("GET", archive, "JOB-TOKEN", fx.OtherJobToken)
		n.expect("other project's job token", code, body, 403, `{"message":"403 Forbidden - Authentication by CI/CD job token not allowed from acme/other to root/arts."}`)
		if code := n.api("POST", project+"/job_token_scope/allowlist", map[string]any{"target_project_id": fx.Other.ID}, nil); code != 201 {
			t.Fatalf("allowlist: %d", code)
		}
		code, _, body = n.send("GET", archive, "JOB-TOKEN", fx.OtherJobToken)
		if code != 200 || !bytes.Equal(body, firstZip) {
			t.Fatalf("allowlisted job token: %d", code)
		}
		code, body = n.as("reporter", "GET", project+"/jobs/abc/artifacts")
		n.expect("bad job id", code, body, 400, `{"error":"job_id is invalid"}`)
		code, body = n.as("reporter", "GET", project+"/jobs/999999/artifacts")
		n.expect("missing job", code, body, 404, `{"message":"404 Not found"}`)
	}

	// Keep permissions.
	{
		keep := archive + "/keep"
		n.expectRoles("keep", "POST", keep, map[string]outcome{
			"anonymous": {401, `{"message":"401 Unauthorized"}`},
			"outsider":  {404, `{"message":"404 Project Not Found"}`},
			"guest":     {403, `{"message":"403 Forbidden"}`},
			"reporter":  {403, `{"message":"403 Forbidden"}`},
		})
		code, _, body := n.send("POST", keep, "JOB-TOKEN", fx.OtherJobToken)
		n.expect("keep with a job token", code, body, 401, `{"message":"401 Unauthorized"}`)
		code, body = n.as("developer", "POST", keep)
		var kept map[string]any
		if code != 200 || json.Unmarshal(body, &kept) != nil || kept["id"].(float64) != float64(first) || kept["artifacts_expire_at"] != nil || kept["artifacts_file"] == nil {
			t.Fatalf("keep as developer: %d %s", code, body)
		}
		if job := n.job(pid, first); job["artifacts_expire_at"] != nil {
			t.Fatalf("kept job still expires at %v", job["artifacts_expire_at"])
		}
	}

	// Two more pipelines on main: the third is the ref's latest success.
	second := n.runPipeline(pid, runner, "two.txt", func(jobID int64, token string) {
		n.upload(jobID, token, "archive", "zip", makeZip(t, zipEntry{name: "out/a.txt", body: "second"}))
	})
	thirdZip := makeZip(t, zipEntry{name: "out/a.txt", body: "third"})
	third := n.runPipeline(pid, runner, "three.txt", func(jobID int64, token string) {
		n.upload(jobID, token, "archive", "zip", thirdZip)
		n.upload(jobID, token, "trace", "raw", []byte("the log"))
	})
	byRef := project + "/jobs/artifacts/main/download?job=build"
	rawByRef := project + "/jobs/artifacts/main/raw/out/a.txt?job=build"

	// Latest by ref.
	{
		code, _, body := n.send("GET", byRef, "PRIVATE-TOKEN", fx.Tokens["reporter"])
		if code != 200 || !bytes.Equal(body, thirdZip) {
			t.Fatalf("by ref: %d (%d bytes)", code, len(body))
		}
		code, body = n.as("reporter", "GET", rawByRef)
		if code != 200 || string(body) != "third" {
			t.Fatalf("raw by ref: %d %q", code, body)
		}
		for what, c := range map[string]struct {
			role, path string
			code       int
			body       string
		}{
			"missing job param": {"reporter", project + "/jobs/artifacts/main/download", 400, `{"error":"job is missing"}`},
			"unknown job":       {"reporter", project + "/jobs/artifacts/main/download?job=nope", 404, `{"message":"404 Not found"}`},
			"unknown ref":       {"reporter", project + "/jobs/artifacts/nope/download?job=build", 404, `{"message":"404 Not found"}`},
			"missing file":      {"reporter", project + "/jobs/artifacts/main/raw/out/nope?job=build", 404, `{"message":"404 Not Found"}`},
			"guest":             {"guest", byRef, 403, `{"message":"403 Forbidden"}`},
			"anonymous":         {"anonymous", byRef, 404, `{"message":"404 Project Not Found"}`},
		} {
			code, body := n.as(c.role, "GET", c.path)
			n.expect(what, code, body, c.code, c.body)
		}
	}

	// A day and more later, the expiry worker deletes the second pipeline's
	// archive; the kept first and the locked latest stay.
	blobKeys := func(jobID int64) []string {
		arts, err := n.app.Store.ArtifactsByJobIDs(t.Context(), []int64{jobID})
		if err != nil {
			t.Fatal(err)
		}
		var keys []string
		for _, a := range arts[jobID] {
			keys = append(keys, a.BlobKey)
		}
		return keys
	}
	secondKeys := blobKeys(second)
	n.clock.Advance(49 * time.Hour)
	worker := expiry.New(n.app.Store, n.app.Blobs, slog.New(slog.NewTextHandler(io.Discard, nil)), n.clock.Now, 5*time.Millisecond)
	worker.Start(t.Context())
	waitFor(t, "the expiry worker", func() bool { return len(n.job(pid, second)["artifacts"].([]any)) == 0 })
	worker.Stop()
	for _, k := range secondKeys {
		if _, _, err := n.app.Blobs.Open(t.Context(), k); err != blob.ErrNotFound {
			t.Fatalf("expired blob %s still stored: %v", k, err)
		}
	}
	if job := n.job(pid, second); job["artifacts_file"] != nil {
		t.Fatalf("expired job still has artifacts_file %v", job["artifacts_file"])
	}
	code, body := n.as("reporter", "GET", fmt.Sprintf("%s/jobs/%d/artifacts", project, second))
	n.expect("expired archive", code, body, 404, `{"message":"404 Not Found"}`)
	if ft := fileTypesOf(n.job(pid, first)); len(ft) != 1 || ft[0] != "archive" {
		t.Fatalf("the kept job lost its archive: %v", ft)
	}
	// The latest success is locked: expired but still stored and listed,
	// without artifacts_file; its files and the by-ref download are gone
	// for clients, the whole archive is still served.
	job = n.job(pid, third)
	if ft := fileTypesOf(job); len(ft) != 2 || job["artifacts_file"] != nil {
		t.Fatalf("locked expired job: %v artifacts_file=%v", ft, job["artifacts_file"])
	}
	thirdArchive := fmt.Sprintf("%s/jobs/%d/artifacts", project, third)
	code, body = n.as("reporter", "GET", thirdArchive+"/out/a.txt")
	n.expect("file of an expired archive", code, body, 404, `{"message":"404 Not Found"}`)
	code, body = n.as("reporter", "GET", byRef)
	n.expect("by ref, expired", code, body, 404, `{"message":"404 Not found"}`)
	if code, _, body := n.send("GET", thirdArchive, "PRIVATE-TOKEN", fx.Tokens["reporter"]); code != 200 || !bytes.Equal(body, thirdZip) {
		t.Fatalf("locked expired archive: %d", code)
	}
	code, body = n.as("developer", "POST", fmt.Sprintf("%s/jobs/%d/artifacts/keep", project, second))
	n.expect("keep without artifacts", code, body, 404, `{"message":"404 Job Not Found"}`)
	// GitLab keeps only live artifacts: an expired archive cannot be kept.
	code, body = n.as("developer", "POST", thirdArchive+"/keep")
	n.expect("keep an expired archive", code, body, 404, `{"message":"404 Job Not Found"}`)

	// Delete project artifacts.
	{
		n.expectRoles("delete project artifacts", "DELETE", project+"/artifacts", map[string]outcome{
			"anonymous": {401, `{"message":"401 Unauthorized"}`},
			"outsider":  {404, `{"message":"404 Project Not Found"}`},
			"reporter":  {403, `{"message":"403 Forbidden"}`},
			"developer": {403, `{"message":"403 Forbidden"}`},
		})
		firstKeys := blobKeys(first)
		code, body := n.as("maintainer", "DELETE", project+"/artifacts")
		n.expect("delete project artifacts", code, body, 202, `{"message":"202 Accepted"}`)
		// The first job's archive was unlocked (kept, but not the latest).
		if ft := fileTypesOf(n.job(pid, first)); len(ft) != 0 {
			t.Fatalf("unlocked artifacts survived: %v", ft)
		}
		if _, _, err := n.app.Blobs.Open(t.Context(), firstKeys[0]); err != blob.ErrNotFound {
			t.Fatalf("deleted blob still stored: %v", err)
		}
		if ft := fileTypesOf(n.job(pid, third)); len(ft) != 2 {
			t.Fatalf("locked artifacts deleted: %v", ft)
		}
	}

	// Delete job artifacts.
	{
		n.expectRoles("delete job artifacts", "DELETE", thirdArchive, map[string]outcome{
			"anonymous": {401, `{"message":"401 Unauthorized"}`},
			"outsider":  {404, `{"message":"404 Project Not Found"}`},
			"guest":     {403, `{"message":"403 Forbidden"}`},
			"developer": {403, `{"message":"403 Forbidden"}`},
		})
		code, body := n.as("maintainer", "DELETE", thirdArchive)
		n.expect("delete job artifacts", code, body, 204, "")
		// The log stays, as in GitLab.
		job := n.job(pid, third)
		if ft := fileTypesOf(job); len(ft) != 1 || ft[0] != "trace" || job["artifacts_file"] != nil {
			t.Fatalf("after delete: %v artifacts_file=%v", ft, job["artifacts_file"])
		}
		code, body = n.as("reporter", "GET", thirdArchive)
		n.expect("deleted archive", code, body, 404, `{"message":"404 Not Found"}`)
		code, body = n.as("reporter", "GET", byRef)
		n.expect("by ref after delete", code, body, 404, `{"message":"404 Not found"}`)
		code, body = n.as("maintainer", "DELETE", project+"/jobs/999999/artifacts")
		n.expect("delete a missing job's artifacts", code, body, 404, `{"message":"404 Not found"}`)
	}
}
