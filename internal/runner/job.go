package runner

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

var (
	errJobCanceled = errors.New("job canceled by the server (canceling)")
	errJobAborted  = errors.New("job aborted by the server")
	errJobTimeout  = errors.New("job execution timeout")
)

// scriptExitError is a script that ended with a non-zero exit code.
type scriptExitError struct{ code int }

func (e *scriptExitError) Error() string { return fmt.Sprintf("exit code %d", e.code) }

type job struct {
	r    *Runner
	p    *jobPayload
	slot int

	trace      *jobTrace
	debugTrace bool

	mu        sync.Mutex
	upd       time.Duration // server-sent update interval
	lastTouch time.Time

	traceDisabled atomic.Bool
	abort         context.CancelCauseFunc // hard abort: kill, skip after_script
	graceful      context.CancelCauseFunc // graceful cancel: kill script, run after_script
	remoteCancel  atomic.Bool

	buildsDir  string
	projectDir string
	tmpDir     string
	vars       map[string]string // final (expanded) job variables, file vars as paths
	env        []string          // process environment for scripts and git
}

func (j *job) interval() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.upd > 0 {
		return j.upd
	}
	return j.r.cfg.UpdateInterval
}

func (j *job) setInterval(d time.Duration) {
	j.mu.Lock()
	j.upd = d
	j.mu.Unlock()
}

func (j *job) touched() {
	j.mu.Lock()
	j.lastTouch = time.Now()
	j.mu.Unlock()
}

func (j *job) sinceTouch() time.Duration {
	j.mu.Lock()
	defer j.mu.Unlock()
	return time.Since(j.lastTouch)
}

// handleRemoteStatus reacts to Job-Status (and 403/404) on PATCH/PUT replies.
func (j *job) handleRemoteStatus(status string, forbidden bool) {
	switch {
	case forbidden || status == "canceled" || status == "failed":
		if j.remoteCancel.CompareAndSwap(false, true) {
			j.r.log.Info("runner: job aborted by the server", "job", j.p.ID, "status", status, "forbidden", forbidden)
		}
		j.abort(errJobAborted)
	case status == "canceling":
		if j.remoteCancel.CompareAndSwap(false, true) {
			j.r.log.Info("runner: job canceled gracefully by the server", "job", j.p.ID)
		}
		j.graceful(errJobCanceled)
	}
}

type jobResult struct {
	state    string
	reason   string
	exitCode int
}

// runJob runs one job to completion and reports it. ctx cancellation aborts
// the job (it is then reported failed).
func (r *Runner) runJob(ctx context.Context, slot int, p *jobPayload) {
	log := r.log.With("job", p.ID, "slot", slot)
	log.Info("runner: job received", "name", p.JobInfo.Name, "project", p.JobInfo.ProjectID)
	j := &job{r: r, p: p, slot: slot, lastTouch: time.Now()}
	var secrets []string
	for _, v := range p.Variables {
		if v.Masked {
			secrets = append(secrets, v.Value)
		}
	}
	secrets = append(secrets, p.Token) // GitLab scrubs the job token too
	j.vars = expandVariables(p.Variables, nil)
	for _, v := range p.Variables {
		if v.Masked && j.vars[v.Key] != v.Value && !v.File {
			secrets = append(secrets, j.vars[v.Key])
		}
	}
	j.trace = newJobTrace(newMasker(secrets, p.Features.TokenMaskPrefixes))
	j.debugTrace = j.vars["CI_DEBUG_TRACE"] == "true"

	abortCtx, abort := context.WithCancelCause(ctx)
	defer abort(nil)
	scriptCtx, graceful := context.WithCancelCause(abortCtx)
	defer graceful(nil)
	j.abort, j.graceful = abort, graceful

	stop := make(chan struct{})
	loopDone := make(chan struct{})
	go func() { defer close(loopDone); j.traceLoop(abortCtx, stop) }()

	res := j.execute(abortCtx, scriptCtx)

	close(stop)
	<-loopDone
	j.trace.finish()
	finalCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 15*time.Minute)
	defer cancel()
	j.flushTrace(finalCtx)
	j.finalUpdate(finalCtx, res)
	log.Info("runner: job finished", "state", res.state, "failure_reason", res.reason, "exit_code", res.exitCode)
}

// failureReason maps a reason onto one the server accepts.
func (j *job) failureReason(reason string) string {
	switch reason {
	case "", "script_failure", "runner_system_failure", "job_execution_timeout", "unknown_failure":
		return reason
	}
	if slices.Contains(j.p.Features.FailureReasons, reason) {
		return reason
	}
	return "unknown_failure"
}

func (j *job) finalUpdate(ctx context.Context, res jobResult) {
	reason := j.failureReason(res.reason)
	resets, accepted, failures := 0, 0, 0
	for ctx.Err() == nil {
		_, code := j.putState(ctx, res.state, reason, res.exitCode)
		switch code {
		case http.StatusOK:
			return
		case http.StatusAccepted:
			accepted++
			if accepted > 200 {
				j.r.log.Error("runner: server kept answering 202 to the final update; giving up", "job", j.p.ID)
				return
			}
			sleepCtx(ctx, j.interval())
		case http.StatusPreconditionFailed:
			resets++
			if resets > 3 {
				j.r.log.Error("runner: server keeps rejecting the trace checksum; giving up", "job", j.p.ID)
				return
			}
			j.r.log.Warn("runner: trace checksum rejected; resending the whole trace", "job", j.p.ID)
			j.trace.setSent(0)
			j.traceDisabled.Store(false)
			j.flushTrace(ctx)
		case http.StatusForbidden, http.StatusNotFound:
			j.r.log.Warn("runner: final update refused; job is gone or no longer running", "job", j.p.ID, "status", code)
			return
		default:
			failures++
			if failures >= 10 {
				j.r.log.Error("runner: giving up on the final job update", "job", j.p.ID)
				return
			}
			sleepCtx(ctx, min(j.r.retryBase<<(failures-1), time.Minute))
		}
	}
}

// execute runs all stages and returns the job's result.
func (j *job) execute(abortCtx, scriptCtx context.Context) jobResult {
	p, t := j.p, j.trace
	timeout := time.Duration(p.RunnerInfo.Timeout) * time.Second
	if timeout <= 0 {
		timeout = 7200 * time.Second
	}
	execCtx, cancelExec := context.WithTimeoutCause(scriptCtx, timeout, errJobTimeout)
	defer cancelExec()

	host, _ := os.Hostname()
	t.printf("Running with gantry-runner %s (%s)", Version, Revision)
	t.printf("  on %s %s, system ID: %s", j.r.cfg.Name, j.r.shortToken, j.r.cfg.SystemID)
	t.sectionStart("prepare_executor", `Preparing the "shell" executor`)
	t.printf("Using Shell (%s) executor...", j.r.shellName)
	t.sectionEnd("prepare_executor")
	t.sectionStart("prepare_script", "Preparing environment")
	t.printf("Running on %s...", host)
	err := j.prepare()
	t.sectionEnd("prepare_script")

	if err == nil {
		err = j.getSources(execCtx)
	}
	if err == nil {
		err = j.downloadArtifacts(execCtx)
	}
	if err == nil {
		for _, s := range p.Steps {
			if s.Name == "after_script" {
				continue
			}
			name := "step_" + s.Name
			t.sectionStart(name, fmt.Sprintf("Executing %q stage of the job script", name))
			err = j.runScript(execCtx, name, s.Script, "running")
			t.sectionEnd(name)
			if err != nil {
				break
			}
		}
	}

	// classify
	res := jobResult{state: "success"}
	var msg string
	cause := context.Cause(execCtx)
	if execCtx.Err() == nil {
		cause = nil
	}
	switch {
	case cause == nil && err == nil:
	case errors.Is(cause, errJobTimeout):
		res = jobResult{state: "failed", reason: "job_execution_timeout"}
		msg = fmt.Sprintf("execution took longer than %v seconds", timeout)
	case errors.Is(cause, errJobCanceled), errors.Is(cause, errJobAborted):
		res = jobResult{state: "failed", reason: "unknown_failure"}
		msg = "canceled"
	case cause != nil: // the runner itself aborted the job (shutdown)
		res = jobResult{state: "failed", reason: "runner_system_failure"}
		msg = "(system failure): job aborted by the runner: " + cause.Error()
	default:
		var ee *scriptExitError
		if errors.As(err, &ee) {
			res = jobResult{state: "failed", reason: "script_failure", exitCode: ee.code}
			msg = err.Error()
		} else {
			res = jobResult{state: "failed", reason: "runner_system_failure"}
			msg = "(system failure): " + err.Error()
		}
	}
	if errors.Is(cause, errJobCanceled) || errors.Is(cause, errJobAborted) {
		t.warnf("script canceled externally (UI, API)")
	}
	aborted := abortCtx.Err() != nil

	// after_script: always, except after a hard abort
	for _, s := range p.Steps {
		if s.Name != "after_script" || len(s.Script) == 0 {
			continue
		}
		if aborted {
			t.warnf("after_script skipped: %v", context.Cause(abortCtx))
			break
		}
		status := "success"
		switch {
		case errors.Is(cause, errJobCanceled):
			status = "canceled"
		case res.state != "success":
			status = "failed"
		}
		ast := 5 * time.Minute
		if v := j.vars["RUNNER_AFTER_SCRIPT_TIMEOUT"]; v != "" {
			if d, e := time.ParseDuration(v); e == nil && d > 0 {
				ast = d
			}
		}
		actx, cancel := context.WithTimeout(abortCtx, ast)
		t.sectionStart("after_script", "Running after_script")
		t.printf("Running after script...")
		if aerr := j.runScript(actx, "after_script", s.Script, status); aerr != nil {
			if actx.Err() != nil {
				aerr = actx.Err()
			}
			t.warnf("after_script failed, but job will continue unaffected: %v", aerr)
		}
		t.sectionEnd("after_script")
		cancel()
	}

	// artifacts
	aborted = abortCtx.Err() != nil
	if !aborted && j.projectDir != "" {
		if uerr := j.uploadArtifacts(abortCtx, res.state == "success"); uerr != nil && res.state == "success" {
			res = jobResult{state: "failed", reason: "runner_system_failure"}
			msg = "(system failure): " + uerr.Error()
		}
	}

	if j.tmpDir != "" {
		t.sectionStart("cleanup_file_variables", "Cleaning up project directory and file based variables")
		os.RemoveAll(j.tmpDir)
		t.sectionEnd("cleanup_file_variables")
	}
	if res.state == "success" {
		t.infof("Job succeeded")
	} else {
		t.errorf("Job failed: %s", msg)
	}
	return res
}

// ---- preparation ----------------------------------------------------------

func projectSubdir(p *jobPayload) string {
	if u, err := url.Parse(p.GitInfo.RepoURL); err == nil && u.Host != "" {
		sp := strings.TrimSuffix(path.Clean("/"+u.Path), ".git")
		sp = strings.Trim(sp, "/")
		if sp != "" && sp != "." {
			return filepath.FromSlash(sp)
		}
	}
	return fmt.Sprintf("project-%d", p.JobInfo.ProjectID)
}

func (j *job) prepare() error {
	p := j.p
	j.buildsDir = j.r.buildsDir
	j.projectDir = filepath.Join(j.buildsDir, j.r.shortToken, strconv.Itoa(j.slot), projectSubdir(p))
	j.tmpDir = j.projectDir + ".tmp"
	if err := os.MkdirAll(j.tmpDir, 0o700); err != nil {
		return fmt.Errorf("creating build directory: %w", err)
	}
	timeout := p.RunnerInfo.Timeout
	if timeout <= 0 {
		timeout = 7200
	}
	predefined := []jobVariable{
		{Key: "CI_BUILDS_DIR", Value: j.buildsDir},
		{Key: "CI_PROJECT_DIR", Value: j.projectDir},
		{Key: "CI_CONCURRENT_ID", Value: strconv.Itoa(j.slot)},
		{Key: "CI_CONCURRENT_PROJECT_ID", Value: strconv.Itoa(j.slot)},
		{Key: "CI_SERVER", Value: "yes"},
		{Key: "CI_JOB_TIMEOUT", Value: strconv.Itoa(timeout)},
		{Key: "CI_RUNNER_VERSION", Value: Version},
		{Key: "CI_RUNNER_REVISION", Value: Revision},
		{Key: "CI_RUNNER_SHORT_TOKEN", Value: j.r.shortToken},
		{Key: "CI_RUNNER_EXECUTABLE_ARCH", Value: runtime.GOOS + "/" + runtime.GOARCH},
		{Key: "CI_SHARED_ENVIRONMENT", Value: "true"},
	}
	all := append(predefined, p.Variables...)
	files := map[string]string{}
	for _, v := range all {
		if !v.File {
			continue
		}
		fp := filepath.Join(j.tmpDir, v.Key)
		if err := os.WriteFile(fp, []byte(expandValue(v, all, nil)), 0o600); err != nil {
			return fmt.Errorf("writing file variable %s: %w", v.Key, err)
		}
		files[v.Key] = fp
	}
	j.vars = expandVariables(all, files)
	env := os.Environ()
	for _, v := range all {
		env = append(env, v.Key+"="+j.vars[v.Key])
	}
	j.env = env
	return nil
}

// expandVariables expands $VAR/${VAR} references between variables (one
// level, like gitlab-runner) except for raw ones. File variables resolve to
// their file path.
func expandVariables(all []jobVariable, files map[string]string) map[string]string {
	out := make(map[string]string, len(all))
	for _, v := range all {
		if fp, ok := files[v.Key]; ok {
			out[v.Key] = fp
			continue
		}
		out[v.Key] = expandValue(v, all, files)
	}
	return out
}

func expandValue(v jobVariable, all []jobVariable, files map[string]string) string {
	if v.Raw || !strings.Contains(v.Value, "$") {
		return v.Value
	}
	return os.Expand(v.Value, func(name string) string {
		if fp, ok := files[name]; ok {
			return fp
		}
		for i := len(all) - 1; i >= 0; i-- {
			if all[i].Key == name {
				return all[i].Value
			}
		}
		return ""
	})
}
