package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IdleConnsOptions configure the idle-connection memory benchmark.
type IdleConnsOptions struct {
	Binary  string // the gantry binary to start as the server
	Conns   int    // long-polling connections (10000)
	TempDir string
}

// IdleConns starts gantry as a separate process, holds Conns long polls
// open against it, and reports the server's resident memory before and
// while they wait (the clients' memory is not counted).
func IdleConns(ctx context.Context, o IdleConnsOptions, out io.Writer) (baseMB, loadedMB float64, sockets int, err error) {
	dir, err := os.MkdirTemp(o.TempDir, "gantry-idle-")
	if err != nil {
		return 0, 0, 0, err
	}
	defer os.RemoveAll(dir)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, 0, err
	}
	addr := l.Addr().String()
	l.Close()
	cmd := exec.CommandContext(ctx, o.Binary, "server")
	cmd.Env = append(os.Environ(), "GANTRY_DATA_DIR="+dir, "GANTRY_LISTEN="+addr, "GANTRY_INITIAL_ROOT_TOKEN="+benchRootToken, "GANTRY_LONG_POLL=120s", "GANTRY_LOG_LEVEL=error")
	if err := cmd.Start(); err != nil {
		return 0, 0, 0, err
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	base := "http://" + addr
	n := &benchNode{base: base}
	var token string
	for i := 0; i < 100; i++ {
		if token, err = n.runnerToken(); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		return 0, 0, 0, fmt.Errorf("server did not come up: %w", err)
	}
	time.Sleep(500 * time.Millisecond)
	baseMB = procRSS(cmd.Process.Pid)
	body, _ := json.Marshal(map[string]any{"token": token, "system_id": "s_idleidleidle", "last_update": "held", "info": map[string]any{"name": "idle"}})
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var open atomic.Int64
	var wg sync.WaitGroup
	for i := 0; i < o.Conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1, DisableCompression: true}}
			req, _ := http.NewRequestWithContext(pctx, "POST", base+"/api/v4/jobs/request", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			open.Add(1)
			res, err := cl.Do(req)
			if err == nil {
				res.Body.Close()
			}
		}()
		if i%500 == 499 {
			time.Sleep(50 * time.Millisecond) // don't overflow the accept backlog
		}
	}
	time.Sleep(3 * time.Second)
	loadedMB = procRSS(cmd.Process.Pid)
	sockets = countConns(cmd.Process.Pid)
	fmt.Fprintf(out, "server RSS: %.0f MB idle, %.0f MB with %d long polls held (%d sockets open in the server)\n", baseMB, loadedMB, o.Conns, sockets)
	cancel()
	wg.Wait()
	return baseMB, loadedMB, sockets, nil
}

func procRSS(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "VmRSS:") {
			f := strings.Fields(line)
			kb, _ := strconv.ParseFloat(f[1], 64)
			return kb / 1024
		}
	}
	return 0
}

func countConns(pid int) int {
	ents, err := os.ReadDir("/proc/" + strconv.Itoa(pid) + "/fd")
	if err != nil {
		return 0
	}
	n := 0
	for _, e := range ents {
		if t, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/fd/" + e.Name()); err == nil && strings.HasPrefix(t, "socket:") {
			n++
		}
	}
	return n
}
