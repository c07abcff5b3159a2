// Package runner is gantry's own CI runner: a client that speaks the
// gitlab-runner 17.9 protocol (jobs/request long poll, trace PATCH, job PUT,
// artifacts upload/download) to a GitLab-compatible server and runs jobs
// with a shell executor.
package runner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Config configures a Runner.
type Config struct {
	URL            string        // server base URL, e.g. http://127.0.0.1:8080 (the runner appends /api/v4/)
	Token          string        // runner authentication token (glrt-…)
	SystemID       string        // default: "s_" + 12 chars derived from the hostname
	Name           string        // info.name, default "gantry-runner"
	Concurrent     int           // jobs at once, default 1
	BuildsDir      string        // default ./builds
	Shell          string        // default "bash" (falls back to "sh" if bash is missing)
	PollTimeout    time.Duration // client-side timeout of one jobs/request long poll, default 60s
	UpdateInterval time.Duration // trace/PUT cadence without X-GitLab-Trace-Update-Interval, default 3s
	// ShutdownTimeout bounds the graceful shutdown of Run: after it, running
	// jobs are canceled and reported failed. Default 5 min.
	ShutdownTimeout time.Duration
	Logger          *slog.Logger
	HTTPClient      *http.Client // optional
}

// Runner polls a server for jobs and runs them.
type Runner struct {
	cfg        Config
	base       string // .../api/v4/
	client     *http.Client
	log        *slog.Logger
	shellName  string
	shellPath  string
	buildsDir  string
	shortToken string

	mu         sync.Mutex
	lastUpdate string

	// knobs tests may lower
	forceSendInterval time.Duration // keep-alive PUT when nothing was sent for this long
	retryBase         time.Duration // first backoff of final-update retries
	killGrace         time.Duration // SIGTERM → SIGKILL grace
	noJobWait         time.Duration // wait after a quick 204
	unhealthyWait     time.Duration // wait after a 403 on jobs/request
}

var revisionOnce sync.Once

var systemIDRe = func(s string) bool {
	if len(s) != 14 || (s[0] != 's' && s[0] != 'r') || s[1] != '_' {
		return false
	}
	for _, c := range s[2:] {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z') {
			return false
		}
	}
	return true
}

// New validates cfg, fills defaults and returns a Runner.
func New(cfg Config) (*Runner, error) {
	if cfg.Token == "" {
		return nil, errors.New("runner: token is required")
	}
	u, err := url.Parse(strings.TrimSpace(cfg.URL))
	if err != nil {
		return nil, fmt.Errorf("runner: bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return nil, fmt.Errorf("runner: URL %q must be http(s)://host[:port]", cfg.URL)
	}
	p := strings.TrimRight(u.Path, "/")
	p = strings.TrimSuffix(p, "/ci")
	u.Path = p + "/api/v4/"
	u.RawQuery, u.Fragment, u.RawPath = "", "", ""
	if cfg.SystemID == "" {
		h, _ := os.Hostname()
		sum := sha256.Sum256([]byte("gantry-runner:" + h))
		cfg.SystemID = "s_" + hex.EncodeToString(sum[:])[:12]
	} else if !systemIDRe(cfg.SystemID) {
		return nil, fmt.Errorf("runner: system id %q must match ^[sr]_[0-9a-zA-Z]{12}$", cfg.SystemID)
	}
	if cfg.Name == "" {
		cfg.Name = "gantry-runner"
	}
	if cfg.Concurrent <= 0 {
		cfg.Concurrent = 1
	}
	if cfg.BuildsDir == "" {
		cfg.BuildsDir = "builds"
	}
	bd, err := filepath.Abs(cfg.BuildsDir)
	if err != nil {
		return nil, err
	}
	if cfg.Shell == "" {
		cfg.Shell = "bash"
	}
	shellPath, err := exec.LookPath(cfg.Shell)
	if err != nil && cfg.Shell == "bash" {
		cfg.Shell = "sh"
		shellPath, err = exec.LookPath("sh")
	}
	if err != nil {
		return nil, fmt.Errorf("runner: shell %q: %w", cfg.Shell, err)
	}
	if cfg.PollTimeout <= 0 {
		cfg.PollTimeout = 60 * time.Second
	}
	if cfg.UpdateInterval <= 0 {
		cfg.UpdateInterval = 3 * time.Second
	}
	if cfg.ShutdownTimeout <= 0 {
		cfg.ShutdownTimeout = 5 * time.Minute
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Transport: http.DefaultTransport}
	}
	short := cfg.Token
	if len(short) > 8 {
		short = short[:8]
	}
	revisionOnce.Do(func() {
		if bi, ok := debug.ReadBuildInfo(); ok && Revision == "gantry" {
			for _, s := range bi.Settings {
				if s.Key == "vcs.revision" && len(s.Value) >= 8 {
					Revision = s.Value[:8]
				}
			}
		}
	})
	return &Runner{
		cfg:               cfg,
		base:              u.String(),
		client:            client,
		log:               cfg.Logger,
		shellName:         filepath.Base(cfg.Shell),
		shellPath:         shellPath,
		buildsDir:         bd,
		shortToken:        short,
		forceSendInterval: 30 * time.Second,
		retryBase:         time.Second,
		killGrace:         5 * time.Second,
		noJobWait:         time.Second,
		unhealthyWait:     10 * time.Second,
	}, nil
}

// pollResult is the outcome of one jobs/request call.
type pollResult struct {
	job  *jobPayload
	raw  []byte
	wait time.Duration // how long to wait before the next poll
	err  error
}

// requestJob performs one POST /api/v4/jobs/request.
func (r *Runner) requestJob(ctx context.Context) pollResult {
	r.mu.Lock()
	body := jobRequest{Info: r.info(), Token: r.cfg.Token, SystemID: r.cfg.SystemID, LastUpdate: r.lastUpdate}
	r.mu.Unlock()
	pctx, cancel := context.WithTimeout(ctx, r.cfg.PollTimeout)
	defer cancel()
	start := time.Now()
	resp, data, err := r.doJSON(pctx, http.MethodPost, "jobs/request", r.cfg.Token, body)
	if err != nil {
		if ctx.Err() != nil {
			return pollResult{err: ctx.Err()}
		}
		if pctx.Err() != nil { // our own long-poll timeout: just poll again
			return pollResult{}
		}
		r.log.Warn("runner: job request failed", "err", err)
		return pollResult{wait: 5 * time.Second, err: err}
	}
	switch resp.StatusCode {
	case http.StatusCreated:
		if !isJSON(resp) {
			err := fmt.Errorf("jobs/request: 201 with Content-Type %q", resp.Header.Get("Content-Type"))
			r.log.Warn("runner: bad job response", "err", err)
			return pollResult{wait: 3 * time.Second, err: err}
		}
		var job jobPayload
		if err := json.Unmarshal(data, &job); err != nil || job.ID <= 0 {
			if err == nil {
				err = errors.New("job id missing")
			}
			err = fmt.Errorf("jobs/request: decode job: %w", err)
			r.log.Warn("runner: bad job payload", "err", err)
			return pollResult{wait: 3 * time.Second, err: err}
		}
		return pollResult{job: &job, raw: data}
	case http.StatusNoContent:
		if lu := resp.Header.Get("X-GitLab-Last-Update"); lu != "" {
			r.mu.Lock()
			r.lastUpdate = lu
			r.mu.Unlock()
		}
		if time.Since(start) > time.Second {
			return pollResult{} // the server held the request: poll again at once
		}
		return pollResult{wait: r.noJobWait}
	case http.StatusForbidden:
		r.log.Error("runner: jobs/request forbidden; runner token invalid or removed (unhealthy)", "message", errorMessage(data))
		return pollResult{wait: r.unhealthyWait, err: fmt.Errorf("jobs/request: 403 forbidden: %s", errorMessage(data))}
	default:
		wait := 3 * time.Second
		if ra := resp.Header.Get("Retry-After"); ra != "" {
			var n int
			if _, e := fmt.Sscanf(ra, "%d", &n); e == nil && n > 0 && n < 3600 {
				wait = time.Duration(n) * time.Second
			}
		}
		err := fmt.Errorf("jobs/request: %s: %s", resp.Status, errorMessage(data))
		r.log.Warn("runner: job request failed", "status", resp.StatusCode, "message", errorMessage(data))
		return pollResult{wait: wait, err: err}
	}
}

// RunOne performs one poll cycle: it requests a job and, if one arrives,
// runs it to completion in slot 0. Cancelling ctx aborts a running job (it
// is then reported failed).
func (r *Runner) RunOne(ctx context.Context) (bool, error) {
	res := r.requestJob(ctx)
	if res.job == nil {
		return false, res.err
	}
	r.runJob(ctx, 0, res.job)
	return true, nil
}

// Run polls for jobs and runs up to Concurrent of them at once until ctx is
// cancelled. Then it stops polling and waits for running jobs to finish, at
// most ShutdownTimeout; after that the jobs are aborted and reported failed.
// It returns nil after a clean shutdown.
func (r *Runner) Run(ctx context.Context) error {
	r.log.Info("runner: starting", "url", r.base, "name", r.cfg.Name, "concurrent", r.cfg.Concurrent, "system_id", r.cfg.SystemID, "shell", r.shellName)
	slots := make(chan int, r.cfg.Concurrent)
	for i := 0; i < r.cfg.Concurrent; i++ {
		slots <- i
	}
	jobCtx, abortJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer abortJobs()
	var wg sync.WaitGroup
	backoff := time.Duration(0)
poll:
	for {
		var slot int
		select {
		case slot = <-slots:
		case <-ctx.Done():
			break poll
		}
		res := r.requestJob(ctx)
		if res.job != nil {
			backoff = 0
			wg.Add(1)
			go func(slot int, job *jobPayload) {
				defer wg.Done()
				defer func() { slots <- slot }()
				r.runJob(jobCtx, slot, job)
			}(slot, res.job)
			continue
		}
		slots <- slot
		if ctx.Err() != nil {
			break
		}
		wait := res.wait
		if res.err != nil && wait > 0 {
			// exponential backoff on repeated failures, capped at 60 s
			if backoff == 0 {
				backoff = wait
			} else {
				backoff = min(backoff*2, 60*time.Second)
			}
			wait = max(wait, backoff)
		} else if res.err == nil {
			backoff = 0
		}
		if !sleepCtx(ctx, wait) {
			break
		}
	}
	r.log.Info("runner: stopping; waiting for running jobs", "timeout", r.cfg.ShutdownTimeout)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	t := time.NewTimer(r.cfg.ShutdownTimeout)
	defer t.Stop()
	select {
	case <-done:
		r.log.Info("runner: stopped")
		return nil
	case <-t.C:
	}
	r.log.Warn("runner: shutdown timeout exceeded; aborting running jobs")
	abortJobs()
	<-done
	return errors.New("runner: shutdown timeout exceeded; running jobs were aborted")
}
