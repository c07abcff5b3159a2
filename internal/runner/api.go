package runner

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// Version is what the runner reports as info.version and CI_RUNNER_VERSION.
var Version = "gantry"

// Revision is reported as info.revision and CI_RUNNER_REVISION.
var Revision = "gantry"

// ---- request side -------------------------------------------------------

type runnerInfo struct {
	Name         string          `json:"name"`
	Version      string          `json:"version"`
	Revision     string          `json:"revision"`
	Platform     string          `json:"platform"`
	Architecture string          `json:"architecture"`
	Executor     string          `json:"executor"`
	Shell        string          `json:"shell"`
	Features     map[string]bool `json:"features"`
}

func (r *Runner) info() runnerInfo {
	return runnerInfo{
		Name:         r.cfg.Name,
		Version:      Version,
		Revision:     Revision,
		Platform:     runtime.GOOS,
		Architecture: runtime.GOARCH,
		Executor:     "shell",
		Shell:        r.shellName,
		Features: map[string]bool{
			"variables":                 true,
			"image":                     false,
			"services":                  false,
			"artifacts":                 true,
			"cache":                     false,
			"shared":                    true,
			"upload_multiple_artifacts": true,
			"upload_raw_artifacts":      true,
			"session":                   false,
			"terminal":                  false,
			"refspecs":                  true,
			"masking":                   true,
			"proxy":                     false,
			"raw_variables":             true,
			"artifacts_exclude":         true,
			"multi_build_steps":         true,
			"trace_reset":               true,
			"trace_checksum":            true,
			"trace_size":                true,
			"vault_secrets":             false,
			"cancelable":                true,
			"return_exit_code":          true,
			"cancel_gracefully":         true,
		},
	}
}

type jobRequest struct {
	Info       runnerInfo `json:"info"`
	Token      string     `json:"token"`
	SystemID   string     `json:"system_id"`
	LastUpdate string     `json:"last_update,omitempty"`
}

type traceOutput struct {
	Checksum string `json:"checksum,omitempty"`
	Bytesize int    `json:"bytesize"`
}

type updateJobRequest struct {
	Info          runnerInfo   `json:"info"`
	Token         string       `json:"token"`
	State         string       `json:"state"`
	FailureReason string       `json:"failure_reason,omitempty"`
	ExitCode      int          `json:"exit_code,omitempty"`
	Checksum      string       `json:"checksum,omitempty"`
	Output        *traceOutput `json:"output,omitempty"`
}

// ---- job payload (§4) ---------------------------------------------------

type jobPayload struct {
	ID            int64         `json:"id"`
	Token         string        `json:"token"`
	AllowGitFetch bool          `json:"allow_git_fetch"`
	JobInfo       jobInfo       `json:"job_info"`
	GitInfo       gitInfo       `json:"git_info"`
	RunnerInfo    jobRunnerInfo `json:"runner_info"`
	Variables     []jobVariable `json:"variables"`
	Steps         []jobStep     `json:"steps"`
	Artifacts     []jobArtifact `json:"artifacts"`
	Dependencies  []jobDep      `json:"dependencies"`
	Features      jobFeatures   `json:"features"`
}

type jobInfo struct {
	Name            string `json:"name"`
	Stage           string `json:"stage"`
	ProjectID       int64  `json:"project_id"`
	ProjectName     string `json:"project_name"`
	ProjectFullPath string `json:"project_full_path"`
}

type gitInfo struct {
	RepoURL   string   `json:"repo_url"`
	Ref       string   `json:"ref"`
	Sha       string   `json:"sha"`
	BeforeSha string   `json:"before_sha"`
	RefType   string   `json:"ref_type"`
	Refspecs  []string `json:"refspecs"`
	Depth     int      `json:"depth"`
}

type jobRunnerInfo struct {
	Timeout int `json:"timeout"`
}

type jobVariable struct {
	Key    string `json:"key"`
	Value  string `json:"value"`
	Public bool   `json:"public"`
	Masked bool   `json:"masked"`
	File   bool   `json:"file"`
	Raw    bool   `json:"raw"`
}

type jobStep struct {
	Name         string   `json:"name"`
	Script       []string `json:"script"`
	Timeout      int      `json:"timeout"`
	When         string   `json:"when"`
	AllowFailure bool     `json:"allow_failure"`
}

type jobArtifact struct {
	Name           string   `json:"name"`
	Untracked      bool     `json:"untracked"`
	Paths          []string `json:"paths"`
	Exclude        []string `json:"exclude"`
	When           string   `json:"when"`
	ArtifactType   string   `json:"artifact_type"`
	ArtifactFormat string   `json:"artifact_format"`
	ExpireIn       string   `json:"expire_in"`
}

type jobDep struct {
	ID            int64  `json:"id"`
	Name          string `json:"name"`
	Token         string `json:"token"`
	ArtifactsFile struct {
		Filename string `json:"filename"`
		Size     int64  `json:"size"`
	} `json:"artifacts_file"`
}

type jobFeatures struct {
	TraceSections     bool     `json:"trace_sections"`
	TokenMaskPrefixes []string `json:"token_mask_prefixes"`
	FailureReasons    []string `json:"failure_reasons"`
}

// ---- HTTP helpers -------------------------------------------------------

func (r *Runner) apiURL(p string) string { return r.base + strings.TrimPrefix(p, "/") }

func (r *Runner) userAgent() string {
	return fmt.Sprintf("gantry-runner %s (%s; %s; %s/%s)", Version, Revision, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// doJSON sends a JSON body and returns the response with its body read.
func (r *Runner) doJSON(ctx context.Context, method, p, token string, body any) (*http.Response, []byte, error) {
	buf, err := json.Marshal(body)
	if err != nil {
		return nil, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, method, r.apiURL(p), bytes.NewReader(buf))
	if err != nil {
		return nil, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", r.userAgent())
	if token != "" {
		req.Header.Set("PRIVATE-TOKEN", token) // like gitlab-runner 17.x
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return resp, nil, err
	}
	return resp, data, nil
}

func isJSON(resp *http.Response) bool {
	mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// parseInterval reads X-GitLab-Trace-Update-Interval (seconds), capped at 15 min.
func parseInterval(h http.Header) time.Duration {
	v := strings.TrimSpace(h.Get("X-GitLab-Trace-Update-Interval"))
	if v == "" {
		return 0
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		return 0
	}
	d := time.Duration(n) * time.Second
	if d > 15*time.Minute {
		d = 15 * time.Minute
	}
	return d
}

// sleepCtx waits d or until ctx is done; it reports whether the full wait elapsed.
func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

func errorMessage(body []byte) string {
	var m struct {
		Message any `json:"message"`
	}
	if json.Unmarshal(body, &m) == nil && m.Message != nil {
		return fmt.Sprint(m.Message)
	}
	s := strings.TrimSpace(string(body))
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
