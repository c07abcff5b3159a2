package runner

import (
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestSuccessLogAndChecksum(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	job := newJob(42, "echo hello", "mkdir -p out && echo data > out/a.txt", `echo "dir=$CI_PROJECT_DIR server=$CI_SERVER status=$CI_JOB_STATUS timeout=$CI_JOB_TIMEOUT builds=$CI_BUILDS_DIR concurrent=$CI_CONCURRENT_ID"`)
	addAfterScript(job, `echo "after status=$CI_JOB_STATUS"`)
	f.enqueue(job)
	runOne(t, r)
	f.checkErrs()

	put := f.finalPut(42)
	if put.Body.State != "success" {
		t.Fatalf("state %q, trace:\n%s", put.Body.State, f.trace(42))
	}
	if _, ok := put.Raw["exit_code"]; ok {
		t.Errorf("exit_code sent for a successful job: %v", put.Raw)
	}
	if _, ok := put.Raw["failure_reason"]; ok {
		t.Errorf("failure_reason sent for a successful job: %v", put.Raw)
	}
	if put.Header.Get("PRIVATE-TOKEN") != job["token"] {
		t.Errorf("PUT PRIVATE-TOKEN %q", put.Header.Get("PRIVATE-TOKEN"))
	}
	info, _ := put.Raw["info"].(map[string]any)
	if info["executor"] != "shell" {
		t.Errorf("PUT info %v", info)
	}

	tr := f.trace(42)
	projectDir := filepath.Join(r.buildsDir, r.cfg.Token[:8], "0", "project-7")
	for _, want := range []string{
		"\x1b[32;1m$ echo hello\x1b[0;m\n",
		"\nhello\n",
		"section_start:", ":step_script\r\x1b[0K", "section_end:",
		"dir=" + projectDir + " server=yes status=running timeout=600 builds=" + r.buildsDir + " concurrent=0",
		"after status=success",
		"Job succeeded",
	} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	if b, err := os.ReadFile(filepath.Join(projectDir, "out", "a.txt")); err != nil || string(b) != "data\n" {
		t.Errorf("out/a.txt in project dir: %q, %v", b, err)
	}

	patches := f.patchesFor(42)
	if len(patches) == 0 {
		t.Fatal("no trace PATCH")
	}
	next := 0
	for _, p := range patches {
		if p.Start != next || p.End != p.Start+p.Len-1 || p.Code != http.StatusAccepted {
			t.Errorf("patch %+v (expected start %d, inclusive end)", p, next)
		}
		if p.ContentType != "text/plain" || p.Query != "debug_trace=false" {
			t.Errorf("patch content type %q query %q", p.ContentType, p.Query)
		}
		next = p.End + 1
	}

	f.mu.Lock()
	req := f.requests[0]
	f.mu.Unlock()
	if req.PrivateToken != f.runnerToken || req.Body["token"] != f.runnerToken {
		t.Errorf("request token header %q body %v", req.PrivateToken, req.Body["token"])
	}
	if _, ok := req.Body["last_update"]; ok {
		t.Errorf("first request carried last_update")
	}
	if sid, _ := req.Body["system_id"].(string); !regexp.MustCompile(`^[sr]_[0-9a-zA-Z]{12}$`).MatchString(sid) {
		t.Errorf("system_id %q", sid)
	}
	rinfo := req.Body["info"].(map[string]any)
	feats := rinfo["features"].(map[string]any)
	for _, k := range []string{"variables", "artifacts", "upload_multiple_artifacts", "upload_raw_artifacts", "refspecs", "masking",
		"raw_variables", "artifacts_exclude", "multi_build_steps", "trace_reset", "trace_checksum", "trace_size", "cancelable",
		"return_exit_code", "cancel_gracefully"} {
		if feats[k] != true {
			t.Errorf("feature %s = %v", k, feats[k])
		}
	}
	if rinfo["executor"] != "shell" || rinfo["shell"] != "bash" || rinfo["name"] != "gantry-runner" || rinfo["version"] != Version {
		t.Errorf("info %v", rinfo)
	}
}

func TestLastUpdateAndNoJob(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	for i := 0; i < 2; i++ {
		ran, err := r.RunOne(context.Background())
		if ran || err != nil {
			t.Fatalf("RunOne = %v, %v", ran, err)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.requests[0].Body["last_update"]; ok {
		t.Error("first poll sent last_update")
	}
	if got := f.requests[1].Body["last_update"]; got != "lu-1" {
		t.Errorf("second poll last_update = %v", got)
	}
}

func TestForbiddenPoll(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, func(c *Config) { c.Token = "glrt-wrong-token" })
	ran, err := r.RunOne(context.Background())
	if ran || err == nil || !strings.Contains(err.Error(), "403") {
		t.Fatalf("RunOne = %v, %v", ran, err)
	}
}

func TestScriptFailureExitCode(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	job := newJob(43, "echo before", "exit 3", "echo notreached")
	addAfterScript(job, `echo "after status=$CI_JOB_STATUS"`, "exit 1")
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(43)
	if put.Body.State != "failed" || put.Body.FailureReason != "script_failure" || put.Body.ExitCode == nil || *put.Body.ExitCode != 3 {
		t.Fatalf("final PUT %+v", put.Raw)
	}
	tr := f.trace(43)
	if strings.Contains(tr, "\nnotreached") || !strings.Contains(tr, "after status=failed") || !strings.Contains(tr, "ERROR: Job failed: exit code 3") {
		t.Errorf("trace:\n%s", tr)
	}

	// pipefail: a failing command inside a pipeline fails the job
	f.enqueue(newJob(44, "false | true", "echo notreached"))
	runOne(t, r)
	put = f.finalPut(44)
	if put.Body.State != "failed" || put.Body.ExitCode == nil || *put.Body.ExitCode != 1 {
		t.Fatalf("pipefail job: %+v", put.Raw)
	}
	f.checkErrs()
}

func TestMasking(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	job := newJob(45,
		`echo "s=$MY_SECRET"`,
		`printf 'x-super'; sleep 0.3; printf 'secretvalue-y\n'`,
		`echo "tok=$PAT done"`,
		`echo "job=$CI_JOB_TOKEN"`,
		`echo "ref=$REF"`)
	addVar(job, map[string]any{"key": "MY_SECRET", "value": "supersecretvalue", "masked": true})
	addVar(job, map[string]any{"key": "PAT", "value": "glpat-abcdefghij0123456789"})
	addVar(job, map[string]any{"key": "REF", "value": "[$MY_SECRET]"})
	job["features"].(map[string]any)["token_mask_prefixes"] = []string{"glpat-"}
	f.enqueue(job)
	runOne(t, r)
	f.checkErrs()
	f.finalPut(45)
	tr := f.trace(45)
	for _, leak := range []string{"supersecretvalue", "abcdefghij0123456789", job["token"].(string)} {
		if strings.Contains(tr, leak) {
			t.Errorf("trace leaks %q:\n%s", leak, tr)
		}
	}
	for _, want := range []string{"s=[MASKED]", "x-[MASKED]-y", "tok=glpat-[MASKED] done", "job=[MASKED]", "ref=[[MASKED]]"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
}

func TestFileAndExpandedVariables(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	job := newJob(46,
		`echo "path=$CONF"`, `cat "$CONF"`, `test -f "$CONF"`, `echo "ref=$REF"`, `echo "raw=$RAWV"`, `echo "$CONF" > confpath`)
	addVar(job, map[string]any{"key": "CONF", "value": "line1\nline2\n", "file": true})
	addVar(job, map[string]any{"key": "PLAIN", "value": "plainv"})
	addVar(job, map[string]any{"key": "REF", "value": "$PLAIN-suffix"})
	addVar(job, map[string]any{"key": "RAWV", "value": "$PLAIN", "raw": true})
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(46)
	tr := f.trace(46)
	if put.Body.State != "success" {
		t.Fatalf("state %s\n%s", put.Body.State, tr)
	}
	for _, want := range []string{"\nline1\nline2\n", "ref=plainv-suffix", "raw=$PLAIN", "path=/"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	b, _ := os.ReadFile(filepath.Join(r.buildsDir, r.shortToken, "0", "project-7", "confpath"))
	if p := strings.TrimSpace(string(b)); p == "" {
		t.Error("no file variable path recorded")
	} else if _, err := os.Stat(p); !os.IsNotExist(err) {
		t.Errorf("file variable %s not cleaned up: %v", p, err)
	}
}

// waitGone waits until a process no longer exists (or is a zombie).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			if f := strings.Fields(string(b)); len(f) > 2 && f[2] == "Z" {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Errorf("process %d still alive", pid)
}

func readPid(t *testing.T, file string) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("pid file: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestTimeout(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	job := newJob(47, "echo start", fmt.Sprintf("sleep 300 & echo $! > %s; wait", pidFile))
	job["runner_info"] = map[string]any{"timeout": 1}
	addAfterScript(job, `echo "after status=$CI_JOB_STATUS"`)
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(47)
	if put.Body.State != "failed" || put.Body.FailureReason != "job_execution_timeout" {
		t.Fatalf("final PUT %+v\n%s", put.Raw, f.trace(47))
	}
	tr := f.trace(47)
	if !strings.Contains(tr, "execution took longer than 1s seconds") || !strings.Contains(tr, "after status=failed") {
		t.Errorf("trace:\n%s", tr)
	}
	waitGone(t, readPid(t, pidFile))
}

func TestGracefulCancel(t *testing.T) {
	f := newFake(t)
	f.statusFunc = func(id int64, tr string) string {
		if strings.Contains(tr, "tick 3\n") {
			return "canceling"
		}
		return "running"
	}
	r := testRunner(t, f, nil)
	pidFile := filepath.Join(t.TempDir(), "sleep.pid")
	job := newJob(48, fmt.Sprintf("sleep 300 & echo $! > %s", pidFile), `for i in $(seq 1 600); do echo "tick $i"; sleep 0.05; done`)
	addAfterScript(job, `echo "after status=$CI_JOB_STATUS"`)
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(48)
	if put.Body.State != "failed" || put.Body.FailureReason != "unknown_failure" {
		t.Fatalf("final PUT %+v", put.Raw)
	}
	tr := f.trace(48)
	if !strings.Contains(tr, "after status=canceled") || strings.Contains(tr, "tick 600") {
		t.Errorf("trace:\n%s", tr)
	}
	waitGone(t, readPid(t, pidFile))
	f.checkErrs()
}

func TestHardCancel(t *testing.T) {
	f := newFake(t)
	f.statusFunc = func(id int64, tr string) string {
		if strings.Contains(tr, "tick 3\n") {
			return "canceled"
		}
		return "running"
	}
	r := testRunner(t, f, nil)
	job := newJob(49, `for i in $(seq 1 600); do echo "tick $i"; sleep 0.05; done`)
	addAfterScript(job, `echo "after status=$CI_JOB_STATUS"`)
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(49)
	if put.Body.State != "failed" {
		t.Fatalf("final PUT %+v", put.Raw)
	}
	tr := f.trace(49)
	if strings.Contains(tr, "after status=") || strings.Contains(tr, "tick 600") {
		t.Errorf("after_script ran or the script was not stopped:\n%s", tr)
	}
}

func TestForbiddenPatchAborts(t *testing.T) {
	f := newFake(t)
	f.patchFault = func(f *fakeGitLab, id int64, nth int) (int, bool) {
		if strings.Contains(string(f.traces[id]), "tick 2\n") {
			return http.StatusForbidden, true
		}
		return 0, false
	}
	r := testRunner(t, f, nil)
	f.enqueue(newJob(50, `for i in $(seq 1 600); do echo "tick $i"; sleep 0.05; done`))
	runOne(t, r)
	var final *putRec
	for _, p := range f.putsFor(50) {
		if p.Body.State != "running" {
			final = &p
		}
	}
	if final == nil || final.Body.State != "failed" {
		t.Fatalf("final PUT %+v", final)
	}
}

func TestTraceRangeResync(t *testing.T) {
	t.Run("server behind", func(t *testing.T) {
		// the server lost the tail of what it acknowledged: it answers 416 with a
		// shorter length and the runner resends from there
		f := newFake(t)
		f.patchFault = func(f *fakeGitLab, id int64, nth int) (int, bool) {
			if nth == 2 && len(f.traces[id]) > 5 {
				f.traces[id] = f.traces[id][:len(f.traces[id])-5]
				return http.StatusRequestedRangeNotSatisfiable, true
			}
			return 0, false
		}
		r := testRunner(t, f, nil)
		f.enqueue(newJob(51, "echo aaa", "sleep 0.3", "echo bbb", "sleep 0.3", "echo ccc"))
		runOne(t, r)
		f.finalPut(51)
		tr := f.trace(51)
		for _, want := range []string{"\naaa\n", "\nbbb\n", "\nccc\n", "Job succeeded"} {
			if !strings.Contains(tr, want) {
				t.Errorf("trace lacks %q:\n%s", want, tr)
			}
		}
		resynced := false
		for _, p := range f.patchesFor(51) {
			if p.Code == http.StatusRequestedRangeNotSatisfiable {
				resynced = true
			}
		}
		if !resynced {
			t.Error("no 416 happened")
		}
		f.checkErrs()
	})
	t.Run("server ahead", func(t *testing.T) {
		// the server stored a chunk but its answer was lost (500): the runner
		// resends the same range, gets 416 Range: 0-<len> and skips ahead
		f := newFake(t)
		f.patchFault = func(f *fakeGitLab, id int64, nth int) (int, bool) {
			if nth == 1 {
				return http.StatusInternalServerError, true
			}
			return 0, false
		}
		r := testRunner(t, f, nil)
		f.enqueue(newJob(52, "echo aaa", "sleep 0.3", "echo bbb"))
		runOne(t, r)
		f.finalPut(52)
		tr := f.trace(52)
		if strings.Count(tr, "Running with") != 1 || !strings.Contains(tr, "\nbbb\n") {
			t.Errorf("trace:\n%s", tr)
		}
		f.checkErrs()
	})
}

func TestFinalUpdate412And202(t *testing.T) {
	f := newFake(t)
	f.finalCodes[53] = []int{http.StatusAccepted, http.StatusPreconditionFailed, http.StatusInternalServerError}
	r := testRunner(t, f, nil)
	f.enqueue(newJob(53, "echo hi"))
	runOne(t, r)
	f.finalPut(53)
	puts := f.putsFor(53)
	if len(puts) != 4 {
		t.Errorf("%d PUTs, want 4 (202, 412, 500, 200)", len(puts))
	}
	resent := false
	for _, p := range f.patchesFor(53)[1:] {
		if p.Start == 0 && p.Code == http.StatusAccepted {
			resent = true
		}
	}
	if !resent {
		t.Errorf("trace not resent from 0 after 412: %+v", f.patchesFor(53))
	}
	if tr := f.trace(53); strings.Count(tr, "Running with") != 1 {
		t.Errorf("trace duplicated:\n%s", tr)
	}
}

func TestKeepAlivePut(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	r.forceSendInterval = 100 * time.Millisecond
	f.enqueue(newJob(54, "sleep 1"))
	runOne(t, r)
	f.finalPut(54)
	running := 0
	for _, p := range f.putsFor(54) {
		if p.Body.State == "running" {
			running++
		}
	}
	if running == 0 {
		t.Error("no keep-alive PUT state=running")
	}
}

func TestArtifactsUpload(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	job := newJob(55,
		"mkdir -p out/sub deep/er",
		"echo A > out/a.txt", "echo B > out/sub/b.txt", "echo skip > out/skip.log",
		"echo bin > deep/er/x.bin", "echo bin2 > top.bin",
		"echo '<testsuite/>' > report.xml")
	job["artifacts"] = []map[string]any{
		{"name": "art", "paths": []string{"out/", "**/*.bin"}, "exclude": []string{"out/*.log"}, "when": "on_success",
			"artifact_type": "archive", "artifact_format": "zip", "expire_in": "1 day"},
		{"name": "failonly", "paths": []string{"out/"}, "when": "on_failure", "artifact_type": "archive", "artifact_format": "zip"},
		{"name": "junit", "paths": []string{"report.xml"}, "when": "always", "artifact_type": "junit", "artifact_format": "gzip"},
		{"name": "", "paths": []string{"nothing-here/"}, "when": "on_success"},
	}
	f.enqueue(job)
	runOne(t, r)
	f.checkErrs()
	put := f.finalPut(55)
	if put.Body.State != "success" {
		t.Fatalf("state %s:\n%s", put.Body.State, f.trace(55))
	}
	f.mu.Lock()
	uploads := append([]uploadRec(nil), f.uploads...)
	f.mu.Unlock()
	if len(uploads) != 2 {
		t.Fatalf("%d uploads, want 2", len(uploads))
	}
	u := uploads[0]
	if u.RawQuery != "artifact_format=zip&artifact_type=archive&expire_in=1+day" || u.Field != "file" || u.Filename != "art.zip" ||
		!u.Chunked || u.Token != job["token"] {
		t.Errorf("upload %+v", u)
	}
	files := readZip(t, u.Data)
	for name, want := range map[string]string{"out/a.txt": "A\n", "out/sub/b.txt": "B\n", "deep/er/x.bin": "bin\n", "top.bin": "bin2\n"} {
		if files[name] != want {
			t.Errorf("zip %s = %q, want %q (zip has %v)", name, files[name], want, keys(files))
		}
	}
	if _, ok := files["out/skip.log"]; ok {
		t.Error("excluded file uploaded")
	}
	g := uploads[1]
	if g.RawQuery != "artifact_format=gzip&artifact_type=junit" || g.Filename != "junit.gz" {
		t.Errorf("report upload %+v", g)
	}
	zr, err := gzip.NewReader(bytes.NewReader(g.Data))
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(zr)
	if string(b) != "<testsuite/>\n" || zr.Name != "report.xml" {
		t.Errorf("gzip report %q name %q", b, zr.Name)
	}
	if tr := f.trace(55); !strings.Contains(tr, "nothing-here/: no matching files") {
		t.Errorf("trace lacks the no-matching-files warning:\n%s", tr)
	}
}

func TestArtifactUploadTooLargeFailsJob(t *testing.T) {
	f := newFake(t)
	f.uploadCode = http.StatusRequestEntityTooLarge
	r := testRunner(t, f, nil)
	job := newJob(56, "echo x > a.txt")
	job["artifacts"] = []map[string]any{{"name": "a", "paths": []string{"a.txt"}}}
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(56)
	if put.Body.State != "failed" || put.Body.FailureReason != "runner_system_failure" {
		t.Fatalf("final PUT %+v\n%s", put.Raw, f.trace(56))
	}
	f.mu.Lock()
	n := len(f.uploads)
	f.mu.Unlock()
	if n != 1 {
		t.Errorf("413 upload retried: %d attempts", n)
	}
}

func TestArtifactUploadRetries5xx(t *testing.T) {
	f := newFake(t)
	f.uploadCodes = []int{http.StatusServiceUnavailable, http.StatusBadGateway}
	r := testRunner(t, f, nil)
	job := newJob(59, "echo x > a.txt")
	job["artifacts"] = []map[string]any{{"name": "a", "paths": []string{"a.txt"}}}
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(59)
	f.mu.Lock()
	n := len(f.uploads)
	last := f.uploads[n-1]
	f.mu.Unlock()
	if put.Body.State != "success" || n != 3 || readZip(t, last.Data)["a.txt"] != "x\n" {
		t.Fatalf("state %s after %d uploads\n%s", put.Body.State, n, f.trace(59))
	}
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}

func TestDependencyDownload(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	f.depZips[41] = makeZip(t, map[string]string{"dep/file.txt": "from dependency\n", "../evil.txt": "evil", "/abs-evil.txt": "evil"},
		map[string]string{"dep/link": "../../../../../../etc/passwd", "dep/ok-link": "file.txt"})
	f.depTokens[41] = "dep-token-41"
	job := newJob(57, "cat dep/file.txt", "test ! -e dep/link", "cat dep/ok-link")
	job["dependencies"] = []map[string]any{
		{"id": 41, "name": "build", "token": "dep-token-41", "artifacts_file": map[string]any{"filename": "artifacts.zip", "size": 100}},
		{"id": 40, "name": "noartifacts", "token": "x", "artifacts_file": map[string]any{"filename": "", "size": 0}},
	}
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(57)
	tr := f.trace(57)
	if put.Body.State != "success" {
		t.Fatalf("state %s:\n%s", put.Body.State, tr)
	}
	if strings.Count(tr, "from dependency") != 2 {
		t.Errorf("trace:\n%s", tr)
	}
	f.mu.Lock()
	downloads := f.downloads
	f.mu.Unlock()
	if len(downloads) != 1 || downloads[0].ID != 41 || downloads[0].Token != "dep-token-41" || downloads[0].RawQuery != "direct_download=true" {
		t.Errorf("downloads %+v", downloads)
	}
	if _, err := os.Stat(filepath.Join(r.buildsDir, r.shortToken, "0", "evil.txt")); !os.IsNotExist(err) {
		t.Errorf("zip slip entry written: %v", err)
	}
}

func TestDependencyDownloadForbidden(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	f.depZips[41] = makeZip(t, map[string]string{"a": "b"}, nil)
	f.depTokens[41] = "right"
	job := newJob(58, "echo should-not-run")
	job["dependencies"] = []map[string]any{{"id": 41, "name": "build", "token": "wrong", "artifacts_file": map[string]any{"filename": "artifacts.zip"}}}
	f.enqueue(job)
	runOne(t, r)
	put := f.finalPut(58)
	if put.Body.State != "failed" || put.Body.FailureReason != "runner_system_failure" || strings.Contains(f.trace(58), "\nshould-not-run") {
		t.Fatalf("final %+v\n%s", put.Raw, f.trace(58))
	}
}

func gitCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", append([]string{"-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "init.defaultBranch=main"}, args...)...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

func TestGitCloneOverSmartHTTP(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	f := newFake(t)
	root := t.TempDir()
	work := filepath.Join(root, "work")
	os.MkdirAll(work, 0o755)
	gitCmd(t, work, "init", "-q")
	os.WriteFile(filepath.Join(work, "README.md"), []byte("hello from git\n"), 0o644)
	gitCmd(t, work, "add", ".")
	gitCmd(t, work, "commit", "-q", "-m", "first")
	first := gitCmd(t, work, "rev-parse", "HEAD")
	os.WriteFile(filepath.Join(work, "README.md"), []byte("second version\n"), 0o644)
	gitCmd(t, work, "commit", "-q", "-am", "second")
	sha := gitCmd(t, work, "rev-parse", "HEAD")
	repos := filepath.Join(root, "repos")
	os.MkdirAll(filepath.Join(repos, "group"), 0o755)
	gitCmd(t, root, "clone", "-q", "--bare", work, filepath.Join(repos, "group", "demo.git"))
	f.gitRoot = repos

	r := testRunner(t, f, nil)
	mk := func(id int64, sha, strategy string, fetch bool) map[string]any {
		job := newJob(id, "cat README.md", "git rev-parse HEAD", "echo untracked > junk.txt")
		tok := job["token"].(string)
		gi := job["git_info"].(map[string]any)
		gi["repo_url"] = strings.Replace(f.srv.URL, "http://", "http://gitlab-ci-token:"+tok+"@", 1) + "/git/group/demo.git"
		gi["sha"] = sha
		gi["refspecs"] = []string{"+refs/heads/main:refs/remotes/origin/main"}
		gi["depth"] = 0
		job["allow_git_fetch"] = fetch
		setVar(job, "GIT_STRATEGY", strategy)
		return job
	}
	f.enqueue(mk(60, sha, "", false))
	runOne(t, r)
	put := f.finalPut(60)
	tr := f.trace(60)
	if put.Body.State != "success" {
		t.Fatalf("state %s:\n%s", put.Body.State, tr)
	}
	for _, want := range []string{"section_start:", ":get_sources\r", "Fetching changes...", "Created fresh repository.",
		"Checking out " + sha[:8] + " as detached HEAD (ref is main)...", "\nsecond version\n", "\n" + sha + "\n"} {
		if !strings.Contains(tr, want) {
			t.Errorf("trace lacks %q:\n%s", want, tr)
		}
	}
	projectDir := filepath.Join(r.buildsDir, r.shortToken, "0", "git", "group", "demo")
	cfg, err := os.ReadFile(filepath.Join(projectDir, ".git", "config"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(cfg), "jobtok") {
		t.Errorf(".git/config holds the job token:\n%s", cfg)
	}

	// fetch strategy reuses the checkout; clean removes untracked files
	f.enqueue(mk(61, first, "", true))
	runOne(t, r)
	put = f.finalPut(61)
	tr = f.trace(61)
	if put.Body.State != "success" || !strings.Contains(tr, "Reinitialized existing Git repository") || !strings.Contains(tr, "\nhello from git\n") {
		t.Fatalf("fetch job %s:\n%s", put.Body.State, tr)
	}

	// shallow clone with depth 1 of the tip
	job := mk(62, sha, "clone", false)
	job["git_info"].(map[string]any)["depth"] = 1
	f.enqueue(job)
	runOne(t, r)
	if put := f.finalPut(62); put.Body.State != "success" || !strings.Contains(f.trace(62), "git depth set to 1") {
		t.Fatalf("shallow clone %s:\n%s", put.Body.State, f.trace(62))
	}
	if _, err := os.Stat(filepath.Join(projectDir, ".git", "shallow")); err != nil {
		t.Errorf("not a shallow clone: %v", err)
	}
	f.checkErrs()
}

func TestConcurrentJobs(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, func(c *Config) { c.Concurrent = 2 })
	barrier := t.TempDir()
	// each job waits for the other: they only finish if they run in parallel
	a := newJob(70, "touch "+barrier+"/a", "while [ ! -f "+barrier+"/b ]; do sleep 0.05; done", "echo slot=$CI_CONCURRENT_ID dir=$CI_PROJECT_DIR")
	b := newJob(71, "touch "+barrier+"/b", "while [ ! -f "+barrier+"/a ]; do sleep 0.05; done", "echo slot=$CI_CONCURRENT_ID dir=$CI_PROJECT_DIR")
	a["runner_info"] = map[string]any{"timeout": 60}
	b["runner_info"] = map[string]any{"timeout": 60}
	f.enqueue(a)
	f.enqueue(b)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := 0; i < 2; i++ {
		select {
		case <-f.final:
		case <-time.After(2 * time.Minute):
			t.Fatal("jobs did not finish")
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	pa, pb := f.finalPut(70), f.finalPut(71)
	if pa.Body.State != "success" || pb.Body.State != "success" {
		t.Fatalf("states %s %s\n%s\n%s", pa.Body.State, pb.Body.State, f.trace(70), f.trace(71))
	}
	ta, tb := f.trace(70), f.trace(71)
	slotRe := regexp.MustCompile(`slot=(\d) dir=(\S+)`)
	ma, mb := slotRe.FindStringSubmatch(ta), slotRe.FindStringSubmatch(tb)
	if ma == nil || mb == nil || ma[1] == mb[1] || ma[2] == mb[2] {
		t.Errorf("slots/dirs not distinct: %v %v", ma, mb)
	}
}

func TestGracefulShutdown(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	dir := t.TempDir()
	f.enqueue(newJob(80, "touch "+dir+"/started", "while [ ! -f "+dir+"/go ]; do sleep 0.05; done", "echo finished"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := 0; ; i++ {
		if _, err := os.Stat(dir + "/started"); err == nil {
			break
		}
		if i > 2000 {
			t.Fatal("job did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	f.mu.Lock()
	polls := len(f.requests)
	f.mu.Unlock()
	select {
	case err := <-done:
		t.Fatalf("Run returned while a job was running: %v", err)
	case <-time.After(300 * time.Millisecond):
	}
	os.WriteFile(dir+"/go", nil, 0o644)
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	put := f.finalPut(80)
	if put.Body.State != "success" || !strings.Contains(f.trace(80), "\nfinished\n") {
		t.Fatalf("state %s\n%s", put.Body.State, f.trace(80))
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.requests) != polls {
		t.Errorf("runner polled after shutdown began (%d → %d)", polls, len(f.requests))
	}
}

func TestShutdownTimeoutAbortsJobs(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, func(c *Config) { c.ShutdownTimeout = 200 * time.Millisecond })
	dir := t.TempDir()
	f.enqueue(newJob(81, "sleep 300 & echo $! > "+dir+"/pid", "touch "+dir+"/started", "wait"))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx) }()
	for i := 0; ; i++ {
		if _, err := os.Stat(dir + "/started"); err == nil {
			break
		}
		if i > 2000 {
			t.Fatal("job did not start")
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err == nil {
		t.Fatal("Run returned nil after aborting a job")
	}
	put := f.finalPut(81)
	if put.Body.State != "failed" || put.Body.FailureReason != "runner_system_failure" {
		t.Fatalf("final %+v\n%s", put.Raw, f.trace(81))
	}
	waitGone(t, readPid(t, dir+"/pid"))
}

func TestTraceLimit(t *testing.T) {
	f := newFake(t)
	r := testRunner(t, f, nil)
	// ~5 MiB of output: the log is capped at 4 MiB and chunks stay ≤ 1 MiB
	f.enqueue(newJob(82, `head -c 5500000 /dev/zero | tr '\0' 'x'`, "echo", "echo tail-line"))
	runOne(t, r)
	f.checkErrs()
	put := f.finalPut(82)
	tr := f.trace(82)
	if put.Body.State != "success" || !strings.Contains(tr, "Job's log exceeded limit of 4194304 bytes.") || strings.Contains(tr, "tail-line") {
		t.Fatalf("state %s, trace size %d", put.Body.State, len(tr))
	}
	if len(tr) > traceLimit+1024 {
		t.Errorf("trace is %d bytes", len(tr))
	}
}

func TestNewValidation(t *testing.T) {
	if _, err := New(Config{URL: "ftp://x", Token: "t"}); err == nil {
		t.Error("ftp URL accepted")
	}
	if _, err := New(Config{URL: "http://x"}); err == nil {
		t.Error("missing token accepted")
	}
	if _, err := New(Config{URL: "http://x", Token: "t", SystemID: "bad"}); err == nil {
		t.Error("bad system id accepted")
	}
	r, err := New(Config{URL: "http://example.com/gitlab/ci/", Token: "glrt-abcdefgh"})
	if err != nil {
		t.Fatal(err)
	}
	if r.base != "http://example.com/gitlab/api/v4/" {
		t.Errorf("base %q", r.base)
	}
	if !regexp.MustCompile(`^s_[0-9a-zA-Z]{12}$`).MatchString(r.cfg.SystemID) {
		t.Errorf("system id %q", r.cfg.SystemID)
	}
}
