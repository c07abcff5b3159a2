// Package s3gw runs a throwaway S3 server, versitygw with its posix
// backend, on loopback: tests and benchmarks measure the S3 blob adapter
// against a real server rather than a mock.
package s3gw

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"go/build"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"gantry/internal/blob"
)

// Version is the versitygw release scripts/test installs.
const Version = "v1.8.0"

// InstallHint says how to get the binary.
const InstallHint = "go install github.com/versity/versitygw/cmd/versitygw@" + Version

// BinaryEnv names the variable that may point at the versitygw binary.
const BinaryEnv = "GANTRY_TEST_VERSITYGW"

// ErrNoBinary is returned by Find when versitygw is nowhere to be found.
var ErrNoBinary = errors.New("s3gw: versitygw binary not found")

// Find locates versitygw: $GANTRY_TEST_VERSITYGW, then PATH, then the
// bin directory `go install` writes to.
func Find(getenv func(string) string) (string, error) {
	if p := getenv(BinaryEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			return "", fmt.Errorf("%w: %s=%s: %v", ErrNoBinary, BinaryEnv, p, err)
		}
		return p, nil
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p, nil
	}
	gobin := getenv("GOBIN")
	if gobin == "" {
		gobin = filepath.Join(build.Default.GOPATH, "bin")
	}
	p := filepath.Join(gobin, "versitygw")
	if _, err := os.Stat(p); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("%w (set %s, or put it on PATH: %s)", ErrNoBinary, BinaryEnv, InstallHint)
}

// Gateway is a running versitygw.
type Gateway struct {
	Endpoint  string // 127.0.0.1:port
	AccessKey string
	SecretKey string
	Dir       string // the posix backend's root: one directory per bucket

	cmd    *exec.Cmd
	exited chan struct{} // closed when the process has been reaped
	output *lockedBuffer
	client *minio.Client
}

// Start runs binary serving a new posix root under dir on a free
// loopback port, and returns once it answers HTTP.
func Start(ctx context.Context, binary, dir string) (*Gateway, error) {
	root, err := os.MkdirTemp(dir, "versitygw-")
	if err != nil {
		return nil, err
	}
	var last error
	// The free port is found by binding and releasing it, so another
	// process can take it in between; a retry on a new port covers that.
	for attempt := 0; attempt < 3; attempt++ {
		g, err := start(ctx, binary, root)
		if err == nil {
			return g, nil
		}
		last = err
	}
	os.RemoveAll(root)
	return nil, last
}

func start(ctx context.Context, binary, root string) (*Gateway, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	g := &Gateway{Endpoint: addr, AccessKey: "gantrytest", SecretKey: randomHex(20), Dir: root,
		exited: make(chan struct{}), output: &lockedBuffer{}}
	g.cmd = exec.Command(binary, "--port", addr, "--access", g.AccessKey, "--secret", g.SecretKey, "--quiet", "posix", root)
	g.cmd.Stdout, g.cmd.Stderr = g.output, g.output
	if err := g.cmd.Start(); err != nil {
		return nil, fmt.Errorf("s3gw: start %s: %w", binary, err)
	}
	go func() { _ = g.cmd.Wait(); close(g.exited) }()
	if err := g.waitReady(ctx); err != nil {
		g.stopProcess()
		return nil, err
	}
	g.client, err = minio.New(addr, &minio.Options{Creds: credentials.NewStaticV4(g.AccessKey, g.SecretKey, ""), Region: "us-east-1"})
	if err != nil {
		g.stopProcess()
		return nil, err
	}
	return g, nil
}

func (g *Gateway) waitReady(ctx context.Context) error {
	client := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		// Any HTTP answer (an unsigned request gets 403) means it serves.
		if res, err := client.Get("http://" + g.Endpoint + "/"); err == nil {
			res.Body.Close()
			return nil
		}
		select {
		case <-g.exited:
			return fmt.Errorf("s3gw: versitygw exited on %s: %s", g.Endpoint, g.output.String())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("s3gw: versitygw on %s did not answer within 30s: %s", g.Endpoint, g.output.String())
}

// Stop ends the process and removes its data.
func (g *Gateway) Stop() {
	g.stopProcess()
	os.RemoveAll(g.Dir)
}

// stopProcess sends SIGTERM, then SIGKILL after 5 s, and reaps it.
func (g *Gateway) stopProcess() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.exited:
	case <-time.After(5 * time.Second):
		_ = g.cmd.Process.Kill()
		<-g.exited
	}
}

// NewBucket creates a bucket with a fresh name and returns the options
// that reach it.
func (g *Gateway) NewBucket(ctx context.Context) (blob.S3Options, error) {
	name := "gantry-" + randomHex(6)
	if err := g.client.MakeBucket(ctx, name, minio.MakeBucketOptions{}); err != nil {
		return blob.S3Options{}, fmt.Errorf("s3gw: make bucket: %w", err)
	}
	return blob.S3Options{Endpoint: g.Endpoint, Bucket: name, Region: "us-east-1", AccessKey: g.AccessKey, SecretKey: g.SecretKey,
		Insecure: true, PathStyle: true}, nil
}

// Contents lists the bucket's objects and its unfinished multipart
// uploads, i.e. everything a failed Put could have left behind.
func (g *Gateway) Contents(ctx context.Context, bucket string) ([]string, error) {
	var out []string
	for obj := range g.client.ListObjects(ctx, bucket, minio.ListObjectsOptions{Recursive: true}) {
		if obj.Err != nil {
			return nil, obj.Err
		}
		out = append(out, obj.Key)
	}
	for up := range g.client.ListIncompleteUploads(ctx, bucket, "", true) {
		if up.Err != nil {
			return nil, up.Err
		}
		out = append(out, "unfinished upload of "+up.Key)
	}
	return out, nil
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// lockedBuffer collects the process's output, written from exec's copy
// goroutines and read on failure.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 64<<10 {
		return len(p), nil // enough to explain a failure
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
