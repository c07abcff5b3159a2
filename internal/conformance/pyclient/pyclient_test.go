// Package pyclient_test drives a live, seeded gantry through python-gitlab
// (Debian's python3-gitlab 3.12 and its `python-gitlab` CLI) by running
// conformance/python/jobs_conformance.py against it, once per store backend.
package pyclient_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"gantry/internal/testenv"
)

// debianPython is the only interpreter that can import python-gitlab here;
// the python3 first on PATH (pyenv) cannot see Debian's dist-packages.
const debianPython = "/usr/bin/python3"

const scriptTimeout = 60 * time.Second

var summaryRE = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)

func TestPythonGitlabConformance(t *testing.T) {
	requirePythonGitlab(t)
	script := scriptPath(t)
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			srv := testenv.StartServer(t, b)
			fixture := filepath.Join(t.TempDir(), "fixture.json")
			if err := os.WriteFile(fixture, srv.FixtureJSON(), 0o600); err != nil {
				t.Fatal(err)
			}
			lines, err := runScript(t, script, fixture)
			summary := ""
			for _, l := range lines {
				if summaryRE.MatchString(l) {
					summary = l
				}
			}
			if summary != "" {
				fmt.Printf("CONFORMANCE python-gitlab %s: %s\n", b.Name, summary)
			} else {
				fmt.Printf("CONFORMANCE python-gitlab %s: no summary line (script did not finish)\n", b.Name)
			}
			if err != nil {
				var failed []string
				for _, l := range lines {
					if strings.HasPrefix(l, "FAIL ") {
						failed = append(failed, l)
					}
				}
				t.Fatalf("jobs_conformance.py: %v\n%s", err, strings.Join(failed, "\n"))
			}
			if summary == "" {
				t.Fatal("jobs_conformance.py exited 0 without its `N passed, M failed` line")
			}
		})
	}
}

// requirePythonGitlab skips (or, with GANTRY_TEST_REQUIRE_CLIENTS=1, fails)
// when Debian's python3 cannot import gitlab.
func requirePythonGitlab(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianPython, "-c", "import gitlab, requests; print(gitlab.__version__)")
	cmd.Env = pythonEnv()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Logf("python-gitlab %s under %s", strings.TrimSpace(string(out)), debianPython)
		return
	}
	msg := fmt.Sprintf("python-gitlab is not importable by %s (%v: %s); install Debian's python3-gitlab and gitlab-cli (apt-get install -y python3-gitlab gitlab-cli)",
		debianPython, err, strings.TrimSpace(string(out)))
	if os.Getenv("GANTRY_TEST_REQUIRE_CLIENTS") == "1" {
		t.Fatal("GANTRY_TEST_REQUIRE_CLIENTS=1: " + msg)
	}
	t.Skip("SKIP: " + msg)
}

func scriptPath(t *testing.T) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	p := filepath.Join(filepath.Dir(file), "..", "..", "..", "conformance", "python", "jobs_conformance.py")
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("conformance script: %v", err)
	}
	return p
}

// pythonEnv is the test's environment without anything that could make
// Debian's interpreter load foreign packages or python-gitlab read a config.
func pythonEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		switch {
		case k == "PYTHONPATH", k == "PYTHONHOME", k == "PYTHONSTARTUP", k == "PYTHON_GITLAB_CFG",
			strings.HasPrefix(k, "GITLAB_"), strings.HasPrefix(k, "CI_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PYTHONIOENCODING=utf-8")
}

// runScript runs the harness, logging every output line as it arrives, and
// returns stdout's lines. err is non-nil when the script exits non-zero or
// times out.
func runScript(t *testing.T, script, fixture string) ([]string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), scriptTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, debianPython, script, "--fixture", fixture)
	cmd.Env = pythonEnv()
	cmd.Dir = t.TempDir()
	cmd.WaitDelay = 5 * time.Second
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var (
		mu    sync.Mutex
		lines []string
		wg    sync.WaitGroup
	)
	pump := func(r io.Reader, prefix string, keep bool) {
		defer wg.Done()
		sc := bufio.NewScanner(r)
		sc.Buffer(make([]byte, 64*1024), 4*1024*1024)
		for sc.Scan() {
			l := sc.Text()
			t.Log(prefix + l)
			if keep {
				mu.Lock()
				lines = append(lines, l)
				mu.Unlock()
			}
		}
	}
	wg.Add(2)
	go pump(stdout, "", true)
	go pump(stderr, "stderr: ", false)
	wg.Wait()
	err = cmd.Wait()
	if ctx.Err() != nil {
		err = fmt.Errorf("timed out after %v: %w", scriptTimeout, errors.Join(err, ctx.Err()))
	}
	return lines, err
}
