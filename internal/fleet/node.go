// Package fleet runs several `gantry server` processes that share one
// PostgreSQL database (and one S3 bucket), and drives them with simulated
// runners over loopback. The multi-node tests and `gantry bench nodes`
// use it; the nodes are real processes, so a SIGKILL is a real crash.
package fleet

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one `gantry server` process on a fixed loopback address, which
// it keeps across restarts (as a load balancer's backend would).
type Node struct {
	Name string
	URL  string // http://127.0.0.1:port

	bin  string
	env  []string
	dir  string
	logf string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// Build compiles the gantry binary into dir and returns its path; it runs
// in the module, so callers inside the module need no path.
func Build(ctx context.Context, dir string) (string, error) {
	bin := filepath.Join(dir, "gantry")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "gantry/cmd/gantry")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build: %v\n%s", err, out)
	}
	return bin, nil
}

// FreeAddr returns a loopback address nothing listens on right now.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	l.Close()
	return addr, nil
}

// StartNode starts `bin server` with env (GANTRY_* settings) added to this
// process's environment, its data under dir, and waits until it answers.
func StartNode(ctx context.Context, name, bin, dir string, env []string) (*Node, error) {
	addr, err := FreeAddr()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return nil, err
	}
	n := &Node{Name: name, URL: "http://" + addr, bin: bin, dir: dir, logf: filepath.Join(dir, "node.log"),
		env: append(append([]string{}, env...), "GANTRY_LISTEN="+addr, "GANTRY_DATA_DIR="+filepath.Join(dir, "data"))}
	return n, n.start(ctx)
}

func (n *Node) start(ctx context.Context) error {
	logFile, err := os.OpenFile(n.logf, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		return err
	}
	cmd := exec.Command(n.bin, "server")
	cmd.Env = append(os.Environ(), n.env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return err
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); logFile.Close(); close(exited) }()
	n.mu.Lock()
	n.cmd, n.exited = cmd, exited
	n.mu.Unlock()
	// Up to a minute: migrations and the first connections on a loaded machine.
	deadline := time.Now().Add(time.Minute)
	for {
		select {
		case <-exited:
			return fmt.Errorf("node %s exited at startup:\n%s", n.Name, n.LogTail(30))
		case <-ctx.Done():
			n.Kill()
			return ctx.Err()
		default:
		}
		if res, err := http.Get(n.URL + "/-/liveness"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			n.Kill()
			return fmt.Errorf("node %s did not answer within a minute:\n%s", n.Name, n.LogTail(30))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// PID is the running process's id, or 0.
func (n *Node) PID() int {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.cmd == nil || n.cmd.Process == nil {
		return 0
	}
	return n.cmd.Process.Pid
}

// Kill ends the process with SIGKILL, as a crash, and waits for it.
func (n *Node) Kill() {
	n.signal(syscall.SIGKILL, 0)
}

// Stop ends the process with SIGTERM (graceful), and SIGKILL after grace.
func (n *Node) Stop(grace time.Duration) {
	n.signal(syscall.SIGTERM, grace)
}

func (n *Node) signal(sig syscall.Signal, grace time.Duration) {
	n.mu.Lock()
	cmd, exited := n.cmd, n.exited
	n.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(sig)
	if grace > 0 {
		select {
		case <-exited:
			return
		case <-time.After(grace):
			_ = cmd.Process.Kill()
		}
	}
	<-exited
}

// Restart starts the process again on the same address and data.
func (n *Node) Restart(ctx context.Context) error {
	n.mu.Lock()
	exited := n.exited
	n.mu.Unlock()
	if exited != nil {
		select {
		case <-exited:
		default:
			return errors.New("fleet: restart of a node still running")
		}
	}
	return n.start(ctx)
}

// LogTail is the last lines the process wrote.
func (n *Node) LogTail(lines int) string {
	b, _ := os.ReadFile(n.logf)
	all := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(all) > lines {
		all = all[len(all)-lines:]
	}
	return string(bytes.Join(all, []byte("\n")))
}

// LogLines are the process's log lines that contain substr.
func (n *Node) LogLines(substr string) []string {
	b, _ := os.ReadFile(n.logf)
	var out []string
	for _, l := range strings.Split(string(b), "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return out
}
