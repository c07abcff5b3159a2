package runner

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// buildScript renders script lines into a shell script that echoes each
// command as a green "$ cmd" line and stops at the first failure, like
// gitlab-runner's bash shell (set -eo pipefail).
func (j *job) buildScript(lines []string) string {
	var b strings.Builder
	if j.r.shellName == "bash" {
		b.WriteString("set -eo pipefail\n")
	} else {
		b.WriteString("set -e\n(set -o pipefail) 2>/dev/null && set -o pipefail\n")
	}
	b.WriteString("set +o noclobber\n")
	if j.debugTrace {
		b.WriteString("set -o xtrace\n")
	}
	fmt.Fprintf(&b, "cd %s\n", shellQuote(j.projectDir))
	for _, line := range lines {
		display := strings.TrimSpace(line)
		if strings.TrimSpace(line) == "" {
			continue
		}
		if i := strings.IndexByte(display, '\n'); i >= 0 {
			display = strings.TrimSpace(display[:i]) + " # collapsed multi-line command"
		}
		fmt.Fprintf(&b, "printf '\\033[32;1m$ %%s\\033[0;m\\n' %s\n", shellQuote(display))
		b.WriteString(line)
		b.WriteString("\n")
	}
	return b.String()
}

// runScript runs lines in one shell process in the project directory.
// A non-zero exit gives *scriptExitError; a done ctx kills the whole process
// group and returns context.Cause(ctx).
func (j *job) runScript(ctx context.Context, name string, lines []string, status string) error {
	file := filepath.Join(j.tmpDir, "script-"+name+".sh")
	if err := os.WriteFile(file, []byte(j.buildScript(lines)), 0o700); err != nil {
		return fmt.Errorf("writing script: %w", err)
	}
	defer os.Remove(file)
	args := []string{file}
	if j.r.shellName == "bash" {
		args = []string{"--noprofile", "--norc", file}
	}
	env := append(append([]string(nil), j.env...), "CI_JOB_STATUS="+status)
	return j.r.runProcess(ctx, j.projectDir, j.trace, env, j.r.shellPath, args...)
}

// runProcess runs a command in its own process group with output to w.
// When ctx ends, the group gets SIGTERM and, after a grace period, SIGKILL;
// any leftovers of the group are killed when the command exits.
func (r *Runner) runProcess(ctx context.Context, dir string, w io.Writer, env []string, name string, args ...string) error {
	if err := ctx.Err(); err != nil {
		return context.Cause(ctx)
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("creating pipe: %w", err)
	}
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Env = env
	cmd.Stdout = pw
	cmd.Stderr = pw
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		pr.Close()
		pw.Close()
		return fmt.Errorf("starting %s: %w", filepath.Base(name), err)
	}
	pw.Close()
	copyDone := make(chan struct{})
	go func() {
		defer close(copyDone)
		_, _ = io.Copy(w, pr)
	}()
	pgid := cmd.Process.Pid
	waitDone := make(chan error, 1)
	go func() { waitDone <- cmd.Wait() }()
	killed := false
	select {
	case err = <-waitDone:
	case <-ctx.Done():
		killed = true
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		t := time.NewTimer(r.killGrace)
		select {
		case err = <-waitDone:
			t.Stop()
		case <-t.C:
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			err = <-waitDone
		}
	}
	// Kill whatever the script left behind in its process group, then drain
	// the output (a child outside the group may still hold the pipe).
	_ = syscall.Kill(-pgid, syscall.SIGKILL)
	select {
	case <-copyDone:
	case <-time.After(2 * time.Second):
		pr.Close()
		<-copyDone
	}
	pr.Close()
	if killed {
		return context.Cause(ctx)
	}
	if err == nil {
		return nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		code := ee.ExitCode()
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			code = 128 + int(ws.Signal())
		}
		return &scriptExitError{code: code}
	}
	return err
}
