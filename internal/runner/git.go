package runner

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
)

// getSources checks out the job's commit according to GIT_STRATEGY.
func (j *job) getSources(ctx context.Context) error {
	t := j.trace
	t.sectionStart("get_sources", "Getting source from Git repository")
	defer t.sectionEnd("get_sources")
	strategy := j.vars["GIT_STRATEGY"]
	if strategy == "" {
		strategy = "clone"
		if j.p.AllowGitFetch {
			strategy = "fetch"
		}
	}
	switch strategy {
	case "none":
		if err := os.MkdirAll(j.projectDir, 0o755); err != nil {
			return err
		}
		t.printf("Skipping Git repository setup")
		t.printf("Skipping Git checkout")
		t.printf("Skipping Git submodules setup")
		return nil
	case "clone", "fetch":
	default:
		return fmt.Errorf("unknown GIT_STRATEGY %q", strategy)
	}
	if j.p.GitInfo.RepoURL == "" {
		return fmt.Errorf("git_info.repo_url is empty (use GIT_STRATEGY=none for jobs without sources)")
	}
	if _, err := exec.LookPath("git"); err != nil {
		return fmt.Errorf("git is not installed: %w", err)
	}
	attempts := 1
	if n, err := strconv.Atoi(j.vars["GET_SOURCES_ATTEMPTS"]); err == nil && n >= 1 && n <= 10 {
		attempts = n
	}
	var err error
	for i := 0; i < attempts; i++ {
		if i > 0 {
			t.warnf("Retrying get_sources (attempt %d of %d)", i+1, attempts)
		}
		if err = j.gitCheckout(ctx, strategy); err == nil || ctx.Err() != nil {
			break
		}
	}
	return err
}

func (j *job) git(ctx context.Context, extraEnv []string, args ...string) error {
	env := append(append([]string(nil), j.env...), "GIT_TERMINAL_PROMPT=0", "GCM_INTERACTIVE=Never")
	env = append(env, extraEnv...)
	err := j.r.runProcess(ctx, j.projectDir, j.trace, env, "git", args...)
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("git %s: %w", args[0], err)
	}
	return err
}

func (j *job) gitCheckout(ctx context.Context, strategy string) error {
	t, gi := j.trace, j.p.GitInfo
	sha := gi.Sha
	short := sha
	if len(short) > 8 {
		short = short[:8]
	}
	plainURL, credEnv := splitCredentials(gi.RepoURL)

	fresh := false
	if _, err := os.Stat(filepath.Join(j.projectDir, ".git")); strategy == "clone" || err != nil {
		fresh = true
		if err := os.RemoveAll(j.projectDir); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(j.projectDir, 0o755); err != nil {
		return err
	}
	if gi.Depth > 0 {
		t.infof("Fetching changes with git depth set to %d...", gi.Depth)
	} else {
		t.infof("Fetching changes...")
	}
	if fresh {
		tmpl := filepath.Join(j.tmpDir, "git-template")
		if err := os.MkdirAll(tmpl, 0o755); err != nil {
			return err
		}
		if err := j.git(ctx, nil, "init", j.projectDir, "--template", tmpl); err != nil {
			return err
		}
		if err := j.git(ctx, nil, "remote", "add", "origin", plainURL); err != nil {
			return err
		}
		t.printf("Created fresh repository.")
	} else {
		t.printf("Reinitialized existing Git repository in %s/.git/", j.projectDir)
		if err := j.git(ctx, nil, "remote", "set-url", "origin", plainURL); err != nil {
			return err
		}
		_ = os.Remove(filepath.Join(j.projectDir, ".git", "index.lock"))
		_ = os.Remove(filepath.Join(j.projectDir, ".git", "shallow.lock"))
	}
	args := []string{"-c", fmt.Sprintf("http.userAgent=gantry-runner %s %s/%s", Version, runtime.GOOS, runtime.GOARCH),
		"fetch", "origin", "--no-recurse-submodules"}
	args = append(args, gi.Refspecs...)
	if gi.Depth > 0 {
		args = append(args, "--depth", strconv.Itoa(gi.Depth))
	} else if _, err := os.Stat(filepath.Join(j.projectDir, ".git", "shallow")); err == nil {
		args = append(args, "--unshallow")
	}
	extra := j.vars["GIT_FETCH_EXTRA_FLAGS"]
	if extra == "" {
		extra = "--prune --quiet"
	}
	if extra != "none" {
		args = append(args, strings.Fields(extra)...)
	}
	if err := j.git(ctx, credEnv, args...); err != nil {
		return err
	}
	if j.vars["GIT_CHECKOUT"] == "false" {
		t.printf("Skipping Git checkout")
	} else {
		ref := gi.Ref
		if ref == "" {
			ref = sha
		}
		t.printf("Checking out %s as detached HEAD (ref is %s)...", short, ref)
		if err := j.git(ctx, nil, "-c", "submodule.recurse=false", "checkout", "-f", "-q", sha); err != nil {
			return err
		}
		clean := j.vars["GIT_CLEAN_FLAGS"]
		if clean == "" {
			clean = "-ffdx"
		}
		if clean != "none" {
			if err := j.git(ctx, nil, append([]string{"clean"}, strings.Fields(clean)...)...); err != nil {
				return err
			}
		}
	}
	t.printf("Skipping Git submodules setup")
	return nil
}

// splitCredentials removes user:password from a repository URL. The
// credentials are handed to git through GIT_CONFIG_* environment variables
// as a url.<with>.insteadOf <without> rule, so they never reach .git/config
// or the command line.
func splitCredentials(raw string) (string, []string) {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw, nil
	}
	plain := *u
	plain.User = nil
	p := plain.String()
	return p, []string{
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=url." + raw + ".insteadOf",
		"GIT_CONFIG_VALUE_0=" + p,
	}
}
