package runner

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/crc32"
	"io"
	"log/slog"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeGitLab is an in-test GitLab server speaking the runner protocol. It
// hands out prepared payloads and records what the runner sends.
type fakeGitLab struct {
	t           *testing.T
	srv         *httptest.Server
	runnerToken string

	mu          sync.Mutex
	queue       []map[string]any
	tokens      map[int64]string // job id → job token
	traces      map[int64][]byte
	resetOK     map[int64]bool
	patches     []patchRec
	puts        []putRec
	uploads     []uploadRec
	downloads   []downloadRec
	requests    []requestRec
	depZips     map[int64][]byte
	depTokens   map[int64]string
	errs        []string
	finalCodes  map[int64][]int // codes to answer final PUTs with before 200
	statusFunc  func(id int64, trace string) string
	patchFault  func(f *fakeGitLab, id int64, nth int) (code int, handled bool) // called with mu held
	patchCount  map[int64]int
	final       chan putRec
	gitRoot     string
	uploadCode  int   // if set, every upload gets this status
	uploadCodes []int // statuses for the first uploads, then 201
	gitRequests int
}

type patchRec struct {
	ID          int64
	Start, End  int
	Len         int
	Code        int
	ContentType string
	Query       string
}

type putRec struct {
	ID     int64
	Raw    map[string]any
	Body   putBody
	Code   int
	Header http.Header
}

type putBody struct {
	Token         string `json:"token"`
	State         string `json:"state"`
	FailureReason string `json:"failure_reason"`
	ExitCode      *int   `json:"exit_code"`
	Checksum      string `json:"checksum"`
	Output        struct {
		Checksum string `json:"checksum"`
		Bytesize int    `json:"bytesize"`
	} `json:"output"`
}

type uploadRec struct {
	ID       int64
	RawQuery string
	Token    string
	Chunked  bool
	Field    string
	Filename string
	Data     []byte
}

type downloadRec struct {
	ID       int64
	Token    string
	RawQuery string
}

type requestRec struct {
	Body         map[string]any
	PrivateToken string
	UserAgent    string
}

func newFake(t *testing.T) *fakeGitLab {
	f := &fakeGitLab{
		t: t, runnerToken: "glrt-testtoken123456",
		tokens: map[int64]string{}, traces: map[int64][]byte{}, resetOK: map[int64]bool{},
		depZips: map[int64][]byte{}, depTokens: map[int64]string{}, finalCodes: map[int64][]int{},
		patchCount: map[int64]int{}, final: make(chan putRec, 100),
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /api/v4/jobs/request", f.handleRequest)
	mux.HandleFunc("PATCH /api/v4/jobs/{id}/trace", f.handlePatch)
	mux.HandleFunc("PUT /api/v4/jobs/{id}", f.handlePut)
	mux.HandleFunc("POST /api/v4/jobs/{id}/artifacts", f.handleUpload)
	mux.HandleFunc("GET /api/v4/jobs/{id}/artifacts", f.handleDownload)
	mux.HandleFunc("/git/", f.handleGit)
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeGitLab) errorf(format string, a ...any) {
	f.mu.Lock()
	f.errs = append(f.errs, fmt.Sprintf(format, a...))
	f.mu.Unlock()
}

// checkErrs fails the test if the fake saw protocol violations.
func (f *fakeGitLab) checkErrs() {
	f.t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, e := range f.errs {
		f.t.Errorf("fake server: %s", e)
	}
}

func (f *fakeGitLab) enqueue(job map[string]any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	id := job["id"].(int64)
	f.tokens[id] = job["token"].(string)
	f.queue = append(f.queue, job)
}

func (f *fakeGitLab) jobID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad id", 400)
		return 0, false
	}
	return id, true
}

func (f *fakeGitLab) handleRequest(w http.ResponseWriter, r *http.Request) {
	var body map[string]any
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		f.errorf("jobs/request: bad body: %v", err)
		http.Error(w, "bad body", 400)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, requestRec{Body: body, PrivateToken: r.Header.Get("PRIVATE-TOKEN"), UserAgent: r.UserAgent()})
	if body["token"] != f.runnerToken {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if len(f.queue) == 0 {
		w.Header().Set("X-GitLab-Last-Update", "lu-1")
		w.WriteHeader(http.StatusNoContent)
		return
	}
	job := f.queue[0]
	f.queue = f.queue[1:]
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(job)
}

func (f *fakeGitLab) status(id int64) string {
	if f.statusFunc == nil {
		return "running"
	}
	return f.statusFunc(id, string(f.traces[id]))
}

func (f *fakeGitLab) handlePatch(w http.ResponseWriter, r *http.Request) {
	id, ok := f.jobID(w, r)
	if !ok {
		return
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if tok := r.Header.Get("JOB-TOKEN"); tok != f.tokens[id] {
		f.errs = append(f.errs, fmt.Sprintf("PATCH job %d: JOB-TOKEN %q", id, tok))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	cr := r.Header.Get("Content-Range")
	var start, end int
	if _, err := fmt.Sscanf(cr, "%d-%d", &start, &end); err != nil || strings.Contains(cr, "bytes") || strings.Contains(cr, "/") {
		f.errs = append(f.errs, fmt.Sprintf("PATCH job %d: bad Content-Range %q", id, cr))
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if end != start+len(body)-1 {
		f.errs = append(f.errs, fmt.Sprintf("PATCH job %d: Content-Range %q does not match body length %d", id, cr, len(body)))
	}
	if len(body) > 1<<20 {
		f.errs = append(f.errs, fmt.Sprintf("PATCH job %d: chunk of %d bytes", id, len(body)))
	}
	rec := patchRec{ID: id, Start: start, End: end, Len: len(body), ContentType: r.Header.Get("Content-Type"), Query: r.URL.RawQuery}
	f.patchCount[id]++
	if f.patchFault != nil {
		if code, handled := f.patchFault(f, id, f.patchCount[id]); handled {
			if code == http.StatusRequestedRangeNotSatisfiable {
				w.Header().Set("Range", fmt.Sprintf("0-%d", len(f.traces[id])))
			}
			if code == http.StatusInternalServerError { // store, but lose the answer
				f.traces[id] = append(f.traces[id], body...)
			}
			rec.Code = code
			f.patches = append(f.patches, rec)
			w.WriteHeader(code)
			return
		}
	}
	stored := f.traces[id]
	if start == 0 && f.resetOK[id] {
		stored = nil
		f.resetOK[id] = false
	}
	if start != len(stored) {
		w.Header().Set("Range", fmt.Sprintf("0-%d", len(stored)))
		rec.Code = http.StatusRequestedRangeNotSatisfiable
		f.patches = append(f.patches, rec)
		w.WriteHeader(http.StatusRequestedRangeNotSatisfiable)
		return
	}
	f.traces[id] = append(stored, body...)
	rec.Code = http.StatusAccepted
	f.patches = append(f.patches, rec)
	w.Header().Set("Range", fmt.Sprintf("0-%d", len(f.traces[id])))
	w.Header().Set("Job-Status", f.status(id))
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeGitLab) handlePut(w http.ResponseWriter, r *http.Request) {
	id, ok := f.jobID(w, r)
	if !ok {
		return
	}
	data, _ := io.ReadAll(r.Body)
	var rec putRec
	rec.ID = id
	rec.Header = r.Header.Clone()
	if err := json.Unmarshal(data, &rec.Raw); err != nil {
		f.errorf("PUT job %d: bad body: %v", id, err)
	}
	_ = json.Unmarshal(data, &rec.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	if rec.Body.Token != f.tokens[id] {
		f.errs = append(f.errs, fmt.Sprintf("PUT job %d: token %q", id, rec.Body.Token))
		w.WriteHeader(http.StatusForbidden)
		return
	}
	code := http.StatusOK
	if rec.Body.State != "running" {
		if codes := f.finalCodes[id]; len(codes) > 0 {
			code = codes[0]
			f.finalCodes[id] = codes[1:]
		}
		if code == http.StatusPreconditionFailed {
			f.resetOK[id] = true
		}
	}
	rec.Code = code
	f.puts = append(f.puts, rec)
	w.Header().Set("Job-Status", f.status(id))
	w.WriteHeader(code)
	if code == http.StatusOK && rec.Body.State != "running" {
		f.final <- rec
	}
}

func (f *fakeGitLab) handleUpload(w http.ResponseWriter, r *http.Request) {
	id, ok := f.jobID(w, r)
	if !ok {
		return
	}
	rec := uploadRec{ID: id, RawQuery: r.URL.RawQuery, Token: r.Header.Get("JOB-TOKEN")}
	for _, te := range r.TransferEncoding {
		if te == "chunked" {
			rec.Chunked = true
		}
	}
	mr, err := r.MultipartReader()
	if err != nil {
		f.errorf("upload job %d: %v", id, err)
		w.WriteHeader(400)
		return
	}
	parts := 0
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			f.errorf("upload job %d: %v", id, err)
			w.WriteHeader(400)
			return
		}
		parts++
		rec.Field, rec.Filename = p.FormName(), p.FileName()
		rec.Data, _ = io.ReadAll(p)
	}
	if parts != 1 {
		f.errorf("upload job %d: %d parts", id, parts)
	}
	f.mu.Lock()
	f.uploads = append(f.uploads, rec)
	valid := rec.Token == f.tokens[id]
	code := f.uploadCode
	if code == 0 && len(f.uploadCodes) > 0 {
		code = f.uploadCodes[0]
		f.uploadCodes = f.uploadCodes[1:]
	}
	f.mu.Unlock()
	if !valid {
		w.WriteHeader(http.StatusForbidden)
		return
	}
	if code != 0 {
		w.WriteHeader(code)
		return
	}
	w.WriteHeader(http.StatusCreated)
	_, _ = w.Write([]byte(`{}`))
}

func (f *fakeGitLab) handleDownload(w http.ResponseWriter, r *http.Request) {
	id, ok := f.jobID(w, r)
	if !ok {
		return
	}
	f.mu.Lock()
	f.downloads = append(f.downloads, downloadRec{ID: id, Token: r.Header.Get("JOB-TOKEN"), RawQuery: r.URL.RawQuery})
	data, have := f.depZips[id]
	valid := r.Header.Get("JOB-TOKEN") == f.depTokens[id]
	f.mu.Unlock()
	switch {
	case !have:
		w.WriteHeader(404)
	case !valid:
		w.WriteHeader(403)
	default:
		w.Header().Set("Content-Type", "application/zip")
		_, _ = w.Write(data)
	}
}

// handleGit serves repositories under /git/ with git http-backend, asking
// for Basic auth gitlab-ci-token:<job token> like GitLab.
func (f *fakeGitLab) handleGit(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.gitRequests++
	valid := false
	if u, p, ok := r.BasicAuth(); ok && u == "gitlab-ci-token" {
		for _, tok := range f.tokens {
			if tok == p {
				valid = true
			}
		}
	}
	root := f.gitRoot
	f.mu.Unlock()
	if !valid {
		w.Header().Set("WWW-Authenticate", `Basic realm="GitLab"`)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	out, err := exec.Command("git", "--exec-path").Output()
	if err != nil {
		w.WriteHeader(500)
		return
	}
	h := &cgi.Handler{
		Path: filepath.Join(strings.TrimSpace(string(out)), "git-http-backend"),
		Root: "/git",
		Env:  []string{"GIT_PROJECT_ROOT=" + root, "GIT_HTTP_EXPORT_ALL=1"},
	}
	h.ServeHTTP(w, r)
}

// ---- helpers ----------------------------------------------------------------

func (f *fakeGitLab) trace(id int64) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return string(f.traces[id])
}

func (f *fakeGitLab) putsFor(id int64) []putRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []putRec
	for _, p := range f.puts {
		if p.ID == id {
			out = append(out, p)
		}
	}
	return out
}

func (f *fakeGitLab) patchesFor(id int64) []patchRec {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []patchRec
	for _, p := range f.patches {
		if p.ID == id {
			out = append(out, p)
		}
	}
	return out
}

// finalPut returns the last accepted final PUT of a job and checks the
// trace checksum and size against what the fake stored.
func (f *fakeGitLab) finalPut(id int64) putRec {
	f.t.Helper()
	var last *putRec
	for _, p := range f.putsFor(id) {
		if p.Body.State != "running" && p.Code == http.StatusOK {
			last = &p
		}
	}
	if last == nil {
		f.t.Fatalf("job %d: no final PUT accepted; trace:\n%s", id, f.trace(id))
	}
	tr := f.trace(id)
	want := fmt.Sprintf("crc32:%08x", crc32.ChecksumIEEE([]byte(tr)))
	if last.Body.Checksum != want || last.Body.Output.Checksum != want {
		f.t.Errorf("job %d: checksum %q / output.checksum %q, want %q (CRC-32 of the stored trace)", id, last.Body.Checksum, last.Body.Output.Checksum, want)
	}
	if last.Body.Output.Bytesize != len(tr) {
		f.t.Errorf("job %d: bytesize %d, stored trace has %d bytes", id, last.Body.Output.Bytesize, len(tr))
	}
	return *last
}

func testRunner(t *testing.T, f *fakeGitLab, mod func(*Config)) *Runner {
	t.Helper()
	cfg := Config{
		URL:            f.srv.URL,
		Token:          f.runnerToken,
		BuildsDir:      t.TempDir(),
		UpdateInterval: 50 * time.Millisecond,
		PollTimeout:    10 * time.Second,
		Logger:         slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mod != nil {
		mod(&cfg)
	}
	r, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r.retryBase = 20 * time.Millisecond
	r.killGrace = 2 * time.Second
	r.noJobWait = 50 * time.Millisecond
	return r
}

// job builds a payload like GitLab's for a GIT_STRATEGY=none job.
func newJob(id int64, script ...string) map[string]any {
	tok := fmt.Sprintf("jobtok-%d-abcdef", id)
	return map[string]any{
		"id":              id,
		"token":           tok,
		"allow_git_fetch": false,
		"job_info": map[string]any{"id": id, "name": "build", "stage": "test", "project_id": 7,
			"project_name": "demo", "time_in_queue_seconds": 0.5, "project_jobs_running_on_instance_runners_count": "0"},
		"git_info": map[string]any{"repo_url": "", "ref": "main", "sha": "3c9182a72108b2206a608559b01f3935c160bdc8",
			"before_sha": "0000000000000000000000000000000000000000", "ref_type": "branch", "refspecs": []string{}, "depth": 20},
		"runner_info": map[string]any{"timeout": 600},
		"variables": []map[string]any{
			{"key": "CI_JOB_TOKEN", "value": tok, "public": false, "masked": true},
			{"key": "CI_JOB_ID", "value": strconv.FormatInt(id, 10), "public": true},
			{"key": "GIT_STRATEGY", "value": "none", "public": true},
		},
		"steps": []map[string]any{
			{"name": "script", "script": script, "timeout": 600, "when": "on_success", "allow_failure": false},
		},
		"image": map[string]any{"name": ""}, "services": []any{}, "artifacts": []any{}, "cache": []any{},
		"credentials": []any{}, "dependencies": []any{},
		"features": map[string]any{"trace_sections": true,
			"failure_reasons": []string{"unknown_failure", "script_failure", "runner_system_failure", "job_execution_timeout"}},
	}
}

func addVar(job map[string]any, v map[string]any) {
	job["variables"] = append(job["variables"].([]map[string]any), v)
}

func setVar(job map[string]any, key, value string) {
	vars := job["variables"].([]map[string]any)
	for _, v := range vars {
		if v["key"] == key {
			v["value"] = value
			return
		}
	}
	addVar(job, map[string]any{"key": key, "value": value, "public": true})
}

func addAfterScript(job map[string]any, script ...string) {
	job["steps"] = append(job["steps"].([]map[string]any),
		map[string]any{"name": "after_script", "script": script, "timeout": 300, "when": "always", "allow_failure": true})
}

func runOne(t *testing.T, r *Runner) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	ran, err := r.RunOne(ctx)
	if err != nil || !ran {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
}

func makeZip(t *testing.T, files map[string]string, symlinks map[string]string) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for name, content := range files {
		w, err := zw.Create(name)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(content))
	}
	for name, target := range symlinks {
		h := &zip.FileHeader{Name: name}
		h.SetMode(os.ModeSymlink | 0o777)
		w, err := zw.CreateHeader(h)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = w.Write([]byte(target))
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func readZip(t *testing.T, data []byte) map[string]string {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("uploaded archive is not a zip: %v", err)
	}
	out := map[string]string{}
	for _, f := range zr.File {
		rc, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(rc)
		rc.Close()
		out[f.Name] = string(b)
	}
	return out
}
