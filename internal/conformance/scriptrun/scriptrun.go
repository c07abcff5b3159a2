// Package scriptrun runs a client conformance script written in another
// language against a live, seeded gantry, once per store backend.
//
// A script reads the fixture JSON (testenv.Server.FixtureJSON) from the
// file named by its --fixture argument, prints one `PASS name` or
// `FAIL name: detail` line per check and a last `N passed, M failed` line,
// and exits non-zero when anything failed. Run prints
//
//	CONFORMANCE <client> <backend>: N passed, M failed
//
// on stdout for every backend, so the summary shows without -v.
package scriptrun

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

// DefaultTimeout bounds one script run.
const DefaultTimeout = 60 * time.Second

var summaryRE = regexp.MustCompile(`^(\d+) passed, (\d+) failed$`)

// Script describes how to run one client's harness.
type Script struct {
	// Client names the client in the CONFORMANCE line, e.g. "python-gitlab".
	Client string
	// Path is the script, as returned by RepoPath; failures name it.
	Path string
	// Command is the whole command line before `--fixture FILE`, the
	// script's path included where its interpreter wants it.
	Command []string
	// Env is the script's whole environment.
	Env []string
	// Timeout bounds one run; zero means DefaultTimeout.
	Timeout time.Duration
}

// Require skips the test with a loud note, or fails it when
// GANTRY_TEST_REQUIRE_CLIENTS=1, when err says the client is missing.
func Require(t *testing.T, err error, msg string) {
	t.Helper()
	if err == nil {
		return
	}
	msg = fmt.Sprintf("%s (%v)", msg, err)
	if os.Getenv("GANTRY_TEST_REQUIRE_CLIENTS") == "1" {
		t.Fatal("GANTRY_TEST_REQUIRE_CLIENTS=1: " + msg)
	}
	t.Skip("SKIP: " + msg)
}

// RepoPath is a path inside the repository, from its slash-separated parts.
func RepoPath(t *testing.T, parts ...string) string {
	t.Helper()
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		t.Fatal("runtime.Caller failed")
	}
	p := filepath.Join(append([]string{filepath.Dir(file), "..", "..", ".."}, parts...)...)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("conformance script: %v", err)
	}
	return p
}

// CleanEnv is the test's environment without the variables whose prefix
// or name is listed in drop (a trailing "*" matches a prefix).
func CleanEnv(drop ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		k, _, _ := strings.Cut(kv, "=")
		keep := true
		for _, d := range drop {
			if p, ok := strings.CutSuffix(d, "*"); ok && strings.HasPrefix(k, p) || k == d {
				keep = false
				break
			}
		}
		if keep {
			env = append(env, kv)
		}
	}
	return env
}

// Probe runs a short command that shows whether the client is installed
// and returns its trimmed output.
func Probe(env []string, name string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	s := strings.TrimSpace(string(out))
	if err != nil && s != "" {
		err = fmt.Errorf("%w: %s", err, s)
	}
	return s, err
}

// Harness is a script harness run by an interpreter, and how to tell that
// its client is installed.
type Harness struct {
	Client      string   // name in the CONFORMANCE line
	Interpreter string   // program that runs Script
	Script      []string // the script's path in the repository, by parts
	Env         []string // the whole environment of the probe and the script
	// Probe is the interpreter's arguments for a command that fails when
	// the client is missing and prints its version otherwise. The script's
	// directory is appended as the last argument.
	Probe []string
	// Want, if set, is the version the probe must print.
	Want string
	// Missing says what is missing and how to install it.
	Missing string
}

// Test skips (or, with GANTRY_TEST_REQUIRE_CLIENTS=1, fails) when the
// client is missing, and otherwise runs the harness once per backend.
func Test(t *testing.T, h Harness) {
	t.Helper()
	script := RepoPath(t, h.Script...)
	version, err := Probe(h.Env, h.Interpreter, append(append([]string{}, h.Probe...), filepath.Dir(script))...)
	if err == nil && h.Want != "" && version != h.Want {
		err = fmt.Errorf("found version %s, want %s", version, h.Want)
	}
	Require(t, err, h.Missing)
	t.Logf("%s %s under %s", h.Client, version, h.Interpreter)
	Run(t, Script{Client: h.Client, Path: script, Command: []string{h.Interpreter, script}, Env: h.Env})
}

// Run starts a seeded server per backend and runs the script against it.
func Run(t *testing.T, s Script) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			RunFixture(t, s, b.Name, testenv.StartServer(t, b).FixtureJSON())
		})
	}
}

// RunFixture runs the script with the given fixture JSON, prints its
// CONFORMANCE line for the backend and fails the test if the script did.
func RunFixture(t *testing.T, s Script, backend string, fixtureJSON []byte) {
	t.Helper()
	fixture := filepath.Join(t.TempDir(), "fixture.json")
	if err := os.WriteFile(fixture, fixtureJSON, 0o600); err != nil {
		t.Fatal(err)
	}
	lines, err := runScript(t, s, fixture)
	summary := ""
	for _, l := range lines {
		if summaryRE.MatchString(l) {
			summary = l
		}
	}
	if summary != "" {
		fmt.Printf("CONFORMANCE %s %s: %s\n", s.Client, backend, summary)
	} else {
		fmt.Printf("CONFORMANCE %s %s: no summary line (script did not finish)\n", s.Client, backend)
	}
	base := filepath.Base(s.Path)
	if err != nil {
		var failed []string
		for _, l := range lines {
			if strings.HasPrefix(l, "FAIL ") {
				failed = append(failed, l)
			}
		}
		t.Fatalf("%s: %v\n%s", base, err, strings.Join(failed, "\n"))
	}
	if summary == "" {
		t.Fatalf("%s exited 0 without its `N passed, M failed` line", base)
	}
}

// runScript runs the harness, logging every output line as it arrives, and
// returns stdout's lines. err is non-nil when the script exits non-zero or
// times out.
func runScript(t *testing.T, s Script, fixture string) ([]string, error) {
	t.Helper()
	timeout := s.Timeout
	if timeout == 0 {
		timeout = DefaultTimeout
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	args := append(append([]string{}, s.Command[1:]...), "--fixture", fixture)
	cmd := exec.CommandContext(ctx, s.Command[0], args...)
	cmd.Env = s.Env
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
		err = fmt.Errorf("timed out after %v: %w", timeout, errors.Join(err, ctx.Err()))
	}
	return lines, err
}
