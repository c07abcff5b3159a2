// Package githost hosts bare git repositories for gantry projects.
//
// Repositories live at <Root>/<projectID>.git. They are served over git's
// smart HTTP protocol by running the real `git http-backend` as a CGI program
// (see Handler), and they can be modified without a working tree by
// CommitFiles (used by the Repository Files and Commits APIs). Read helpers
// (ResolveRef, ReadFile, Exists, ChangedPaths, Commit, Branches) back the REST
// API and pipeline creation.
//
// Every git invocation uses exec.CommandContext with explicit arguments (no
// shell) and a minimal environment: user, system and global git configuration
// are ignored (GIT_CONFIG_NOSYSTEM=1, GIT_CONFIG_GLOBAL=/dev/null, HOME=Root),
// replace refs are disabled for readers, and terminal prompts are disabled.
// Only the repository's own config (written by Init) applies.
//
// Concurrency: pushes (receive-pack), ref updates made by CommitFiles, and
// the slow paths of Init and Delete are serialised per project by the
// project lock: an in-process lock, then an exclusive flock(2) on
// <Root>/<projectID>.lock. So several gantry processes (nodes) may share
// Root on one POSIX filesystem (the same directory, or NFS with working
// locks): the before/after ref snapshots taken around a push contain only
// that push's own updates, so each push is reported once, by the process
// that received it. Branch updates additionally use git's compare-and-swap
// (`git update-ref <ref> <new> <old>`), so a writer that bypasses the lock
// can never make a commit disappear silently: it surfaces as ErrConflict.
// Readers take no lock. Init builds a repository under a temporary name and
// renames it into place, so no process sees one half made. What a process
// caches (Init's fast path, the hooks' path) is checked against the files
// on every use, so another process deleting or re-creating a repository is
// seen. Use one Repos per Root in a process: over NFS flock is emulated
// with POSIX locks, which do not exclude each other within one process.
package githost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// ZeroSHA is the all-zero object name used for ref creation and deletion.
const ZeroSHA = "0000000000000000000000000000000000000000"

// Size limits for the bounded readers.
const (
	// DefaultMaxFileSize is the default for Repos.MaxFileSize.
	DefaultMaxFileSize = 64 << 20
	// MaxListingSize caps the output of tree listings and diffs (Exists,
	// ChangedPaths, the tree listing taken by CommitFiles).
	MaxListingSize = 256 << 20
	// maxSmallOutput caps the output of commands expected to print little
	// (rev-parse, cat-file commit, for-each-ref of branches, ...).
	maxSmallOutput = 32 << 20
	// MaxPathLength is the longest repository path accepted by CommitFiles
	// and the readers.
	MaxPathLength = 4096
)

// Sentinel errors. Functions wrap them with %w; test with errors.Is.
var (
	ErrRepoNotFound  = errors.New("githost: repository not found")
	ErrInvalidPath   = errors.New("githost: invalid file path")
	ErrInvalidRef    = errors.New("githost: invalid ref name")
	ErrInvalidAction = errors.New("githost: invalid commit action")
	ErrInvalidCommit = errors.New("githost: invalid commit request")
	ErrFileExists    = errors.New("githost: file already exists")
	ErrFileMissing   = errors.New("githost: file does not exist")
	ErrBranchMissing = errors.New("githost: branch does not exist")
	ErrBranchExists  = errors.New("githost: branch already exists")
	ErrRefNotFound   = errors.New("githost: ref or commit not found")
	ErrConflict      = errors.New("githost: branch was updated concurrently")
	ErrEmptyCommit   = errors.New("githost: commit has no actions")
	ErrTooLarge      = errors.New("githost: output exceeds size limit")
)

// GitError describes a failed git invocation.
type GitError struct {
	Args     []string
	ExitCode int
	Stderr   string
	Err      error
}

func (e *GitError) Error() string {
	msg := strings.TrimSpace(e.Stderr)
	if msg == "" && e.Err != nil {
		msg = e.Err.Error()
	}
	return fmt.Sprintf("githost: git %s: exit %d: %s", strings.Join(e.Args, " "), e.ExitCode, msg)
}

func (e *GitError) Unwrap() error { return e.Err }

// Repos manages the bare repositories under Root. The zero value (with Root
// set) is ready to use; a *Repos is safe for concurrent use and must not be
// copied after first use.
type Repos struct {
	// Root is the directory holding <projectID>.git repositories.
	Root string
	// Git is the git binary; default "git" (looked up in PATH).
	Git string
	// HTTPBackend is the git-http-backend program; default
	// `git --exec-path`/git-http-backend.
	HTTPBackend string
	// MaxFileSize is the largest blob ReadFile returns; larger files yield
	// ErrTooLarge. Default DefaultMaxFileSize (64 MiB).
	MaxFileSize int64

	mu         sync.Mutex
	locks      map[int64]*projectLock
	configured map[int64]bool // projects Init has configured in this process
	backend    string         // resolved HTTPBackend
	gitPath    string         // resolved Git
}

type projectLock struct {
	ch   chan struct{} // capacity 1: holding the token means holding the lock
	refs int
}

// lock acquires the project's lock, honouring ctx: first the in-process
// lock, then an exclusive advisory lock on the project's lock file (see
// lockPath), which every gantry process sharing Root takes too. The
// returned function releases both.
func (r *Repos) lock(ctx context.Context, projectID int64) (func(), error) {
	if r.Root == "" {
		return nil, errors.New("githost: Repos.Root is not set")
	}
	unlockLocal, err := r.lockLocal(ctx, projectID)
	if err != nil {
		return nil, err
	}
	f, err := r.lockFile(ctx, projectID)
	if err != nil {
		unlockLocal()
		return nil, err
	}
	var once sync.Once
	return func() {
		once.Do(func() {
			_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
			f.Close()
			unlockLocal()
		})
	}, nil
}

// lockPath is the project's lock file: beside the repository, not inside
// it, since Init renames the repository into place and Delete renames it
// away. Lock files are never removed: a process waiting on a removed file
// would lock an inode nobody else can see any more.
func (r *Repos) lockPath(projectID int64) string {
	return filepath.Join(r.Root, strconv.FormatInt(projectID, 10)+".lock")
}

// Bounds of the back-off between attempts on a lock file another process
// holds: flock cannot wait on a context, so the lock is polled.
const (
	lockPollMin = time.Millisecond
	lockPollMax = 25 * time.Millisecond
)

// lockFile takes the exclusive advisory lock on the project's lock file
// and returns the open file that holds it.
func (r *Repos) lockFile(ctx context.Context, projectID int64) (*os.File, error) {
	path := r.lockPath(projectID)
	// Opened for writing: over NFS an exclusive lock needs it.
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if errors.Is(err, os.ErrNotExist) {
		if err = os.MkdirAll(r.Root, 0o755); err == nil {
			f, err = os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("githost: lock: %w", err)
	}
	wait := lockPollMin
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		if err == nil {
			return f, nil
		}
		if !errors.Is(err, syscall.EWOULDBLOCK) && !errors.Is(err, syscall.EINTR) {
			f.Close()
			return nil, fmt.Errorf("githost: lock %s: %w", filepath.Base(path), err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			f.Close()
			return nil, ctx.Err()
		case <-t.C:
		}
		wait = min(2*wait, lockPollMax)
	}
}

// lockLocal acquires the in-process part of the project's lock, honouring
// ctx. The returned function releases it.
func (r *Repos) lockLocal(ctx context.Context, projectID int64) (func(), error) {
	r.mu.Lock()
	if r.locks == nil {
		r.locks = make(map[int64]*projectLock)
	}
	l := r.locks[projectID]
	if l == nil {
		l = &projectLock{ch: make(chan struct{}, 1)}
		r.locks[projectID] = l
	}
	l.refs++
	r.mu.Unlock()

	release := func() {
		r.mu.Lock()
		l.refs--
		if l.refs == 0 {
			delete(r.locks, projectID)
		}
		r.mu.Unlock()
	}
	select {
	case l.ch <- struct{}{}:
		return func() {
			<-l.ch
			release()
		}, nil
	case <-ctx.Done():
		release()
		return nil, ctx.Err()
	}
}

// Path returns the directory of the project's bare repository.
func (r *Repos) Path(projectID int64) string {
	return filepath.Join(r.Root, strconv.FormatInt(projectID, 10)+".git")
}

// repo validates projectID and returns the repository path if it exists.
func (r *Repos) repo(projectID int64) (string, error) {
	if projectID <= 0 {
		return "", fmt.Errorf("%w: invalid project id %d", ErrRepoNotFound, projectID)
	}
	if r.Root == "" {
		return "", errors.New("githost: Repos.Root is not set")
	}
	dir := r.Path(projectID)
	if fi, err := os.Stat(filepath.Join(dir, "HEAD")); err != nil || !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%w: project %d", ErrRepoNotFound, projectID)
	}
	return dir, nil
}

func (r *Repos) gitBin() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.gitPath == "" {
		g := r.Git
		if g == "" {
			g = "git"
		}
		if p, err := exec.LookPath(g); err == nil {
			g = p
		}
		r.gitPath = g
	}
	return r.gitPath
}

// backendPath returns the git-http-backend program to run as CGI.
func (r *Repos) backendPath(ctx context.Context) (string, error) {
	if r.HTTPBackend != "" {
		return r.HTTPBackend, nil
	}
	r.mu.Lock()
	b := r.backend
	r.mu.Unlock()
	if b != "" {
		return b, nil
	}
	out, err := r.run(ctx, "", gitOpts{limit: 4096}, "--exec-path")
	if err != nil {
		return "", err
	}
	b = filepath.Join(strings.TrimSpace(string(out)), "git-http-backend")
	r.mu.Lock()
	r.backend = b
	r.mu.Unlock()
	return b, nil
}

// baseEnv is the environment every git process (including http-backend)
// runs with. Nothing is inherited from the server's environment except PATH,
// TMPDIR and the dynamic linker path, so stray GIT_* variables of the server
// process cannot redirect git.
func (r *Repos) baseEnv() []string {
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/bin:/usr/bin:/bin"
	}
	env := []string{
		"PATH=" + path,
		"HOME=" + r.Root,
		"LANG=C",
		"LC_ALL=C",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ATTR_NOSYSTEM=1",
		"GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=",
		"SSH_ASKPASS=",
		// Repositories may be owned by another uid (e.g. a volume);
		// safe.directory is honoured from command-line scope config.
		"GIT_CONFIG_COUNT=1",
		"GIT_CONFIG_KEY_0=safe.directory",
		"GIT_CONFIG_VALUE_0=*",
	}
	for _, k := range []string{"TMPDIR", "LD_LIBRARY_PATH"} {
		if v := os.Getenv(k); v != "" {
			env = append(env, k+"="+v)
		}
	}
	return env
}

type gitOpts struct {
	stdin io.Reader
	env   []string // extra environment (KEY=VALUE)
	limit int64    // max stdout bytes; 0 means maxSmallOutput
}

// run executes git with GIT_DIR=gitDir (when non-empty) and returns stdout.
// Output beyond opts.limit aborts the command with ErrTooLarge.
func (r *Repos) run(ctx context.Context, gitDir string, o gitOpts, args ...string) ([]byte, error) {
	limit := o.limit
	if limit <= 0 {
		limit = maxSmallOutput
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.gitBin(), args...)
	cmd.Env = r.baseEnv()
	if gitDir != "" {
		cmd.Env = append(cmd.Env, "GIT_DIR="+gitDir, "GIT_NO_REPLACE_OBJECTS=1")
		cmd.Dir = gitDir
	} else if r.Root != "" {
		cmd.Dir = r.Root
	}
	cmd.Env = append(cmd.Env, o.env...)
	cmd.Stdin = o.stdin
	stdout := &limitBuffer{limit: limit, cancel: cancel}
	stderr := &limitBuffer{limit: 64 << 10, truncate: true}
	cmd.Stdout = stdout
	cmd.Stderr = stderr
	err := cmd.Run()
	if stdout.exceeded {
		return nil, fmt.Errorf("%w: git %s printed more than %d bytes", ErrTooLarge, args[0], limit)
	}
	if err != nil {
		ge := &GitError{Args: args, ExitCode: -1, Stderr: stderr.buf.String(), Err: err}
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ge.ExitCode = ee.ExitCode()
		}
		if ctxErr := ctx.Err(); ctxErr != nil && ge.ExitCode == -1 {
			ge.Err = ctxErr
		}
		return stdout.buf.Bytes(), ge
	}
	return stdout.buf.Bytes(), nil
}

// exitCode returns the exit status carried by a *GitError, or -1.
func exitCode(err error) int {
	var ge *GitError
	if errors.As(err, &ge) {
		return ge.ExitCode
	}
	return -1
}

type limitBuffer struct {
	buf      bytes.Buffer
	limit    int64
	truncate bool // silently drop excess instead of failing
	exceeded bool
	cancel   func()
}

func (b *limitBuffer) Write(p []byte) (int, error) {
	room := b.limit - int64(b.buf.Len())
	if int64(len(p)) <= room {
		return b.buf.Write(p)
	}
	if b.truncate {
		if room > 0 {
			b.buf.Write(p[:room])
		}
		return len(p), nil
	}
	b.exceeded = true
	if b.cancel != nil {
		b.cancel()
	}
	return 0, ErrTooLarge
}

// repoConfig is applied by Init to every repository (idempotently).
var repoConfig = [][2]string{
	{"core.logAllRefUpdates", "true"},
	{"receive.denyNonFastForwards", "false"},
	{"receive.denyDeletes", "false"},
	{"http.receivepack", "true"},
	{"http.uploadpack", "true"},
	{"uploadpack.allowFilter", "true"},
	{"uploadpack.allowAnySHA1InWant", "true"},
}

// Init creates the project's bare repository if it does not exist and
// (re)applies gantry's repository configuration. HEAD is set to
// refs/heads/<defaultBranch> on every call, so Init also serves to change
// the default branch. Concurrent calls are safe, in one process or several
// sharing Root. Once a repository has been configured by this process, Init
// with an unchanged default branch is a cheap check (read of HEAD, no lock,
// no git process), so callers may call it on every request; otherwise it
// takes the project lock (waiting for a running push) and configures the
// repository, whichever process created it.
func (r *Repos) Init(ctx context.Context, projectID int64, defaultBranch string) error {
	if projectID <= 0 {
		return fmt.Errorf("%w: invalid project id %d", ErrRepoNotFound, projectID)
	}
	if defaultBranch == "" {
		defaultBranch = "main"
	}
	if !validRefName(defaultBranch) {
		return fmt.Errorf("%w: %q", ErrInvalidRef, defaultBranch)
	}
	if r.Root == "" {
		return errors.New("githost: Repos.Root is not set")
	}
	if err := os.MkdirAll(r.Root, 0o755); err != nil {
		return fmt.Errorf("githost: create root: %w", err)
	}
	dir := r.Path(projectID)
	if r.initDone(projectID, dir, defaultBranch) {
		return nil
	}
	unlock, err := r.lock(ctx, projectID)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := r.repo(projectID); err != nil {
		// Build the repository under a temporary name and rename it
		// into place, so a half-initialised repository is never
		// visible and concurrent Init calls cannot interfere.
		tmp, err := os.MkdirTemp(r.Root, ".init-"+strconv.FormatInt(projectID, 10)+"-")
		if err != nil {
			return fmt.Errorf("githost: init: %w", err)
		}
		defer os.RemoveAll(tmp)
		if _, err := r.run(ctx, "", gitOpts{}, "init", "--quiet", "--bare", "--initial-branch="+defaultBranch, tmp); err != nil {
			return err
		}
		// Drop sample hooks and the description file: clutter only.
		os.RemoveAll(filepath.Join(tmp, "hooks"))
		os.Remove(filepath.Join(tmp, "description"))
		if err := r.configure(ctx, tmp); err != nil {
			return err
		}
		if err := os.Rename(tmp, dir); err != nil {
			if _, statErr := r.repo(projectID); statErr != nil {
				return fmt.Errorf("githost: init: %w", err)
			}
			// Created meanwhile by a process that bypassed the
			// lock: use theirs.
		}
	}
	if err := r.configure(ctx, dir); err != nil {
		return err
	}
	if _, err = r.run(ctx, dir, gitOpts{}, "symbolic-ref", "HEAD", "refs/heads/"+defaultBranch); err != nil {
		return err
	}
	r.mu.Lock()
	if r.configured == nil {
		r.configured = make(map[int64]bool)
	}
	r.configured[projectID] = true
	r.mu.Unlock()
	return nil
}

// initDone reports whether Init already configured the repository in this
// process and HEAD still names defaultBranch: the fast path that makes
// calling Init on every request cheap (no lock, no git process). Reading
// HEAD also notices another process deleting the repository (it is gone)
// or changing its default branch; a repository another process re-created
// was configured by that process's Init before it was renamed into place.
func (r *Repos) initDone(projectID int64, dir, defaultBranch string) bool {
	r.mu.Lock()
	ok := r.configured[projectID]
	r.mu.Unlock()
	if !ok {
		return false
	}
	head, err := os.ReadFile(filepath.Join(dir, "HEAD"))
	return err == nil && string(head) == "ref: refs/heads/"+defaultBranch+"\n"
}

func (r *Repos) configure(ctx context.Context, dir string) error {
	for _, kv := range repoConfig {
		if _, err := r.run(ctx, dir, gitOpts{}, "config", "--local", kv[0], kv[1]); err != nil {
			return err
		}
	}
	return nil
}

// CleanLeftovers removes what a crash in the middle of Init or Delete
// left in Root: the temporary .init-<project>-* directory of a repository
// being built, and the .deleted-<project>-* directory of one being
// removed. Each is removed under its project's lock, so an Init or Delete
// running now, in this process or another sharing Root, keeps its own.
// It returns how many it removed.
func (r *Repos) CleanLeftovers(ctx context.Context) (int, error) {
	entries, err := os.ReadDir(r.Root)
	if err != nil {
		return 0, fmt.Errorf("githost: clean leftovers: %w", err)
	}
	removed := 0
	for _, e := range entries {
		projectID, ok := leftoverProject(e.Name())
		if !ok || !e.IsDir() {
			continue
		}
		unlock, err := r.lock(ctx, projectID)
		if err != nil {
			return removed, err
		}
		// Whoever held the lock has finished; an Init or Delete that ended
		// normally removed its own directory already.
		path := filepath.Join(r.Root, e.Name())
		_, statErr := os.Lstat(path)
		if statErr == nil {
			err = os.RemoveAll(path)
		}
		unlock()
		if err != nil {
			return removed, fmt.Errorf("githost: clean leftovers: %w", err)
		}
		if statErr == nil {
			removed++
		}
	}
	return removed, nil
}

// leftoverProject parses the project id out of an Init or Delete
// temporary directory's name.
func leftoverProject(name string) (int64, bool) {
	var rest string
	switch {
	case strings.HasPrefix(name, ".init-"):
		rest = strings.TrimPrefix(name, ".init-")
	case strings.HasPrefix(name, ".deleted-"):
		rest = strings.TrimPrefix(name, ".deleted-")
	default:
		return 0, false
	}
	idText, _, found := strings.Cut(rest, "-")
	id, err := strconv.ParseInt(idText, 10, 64)
	if !found || err != nil || id <= 0 {
		return 0, false
	}
	return id, true
}

// Delete removes the project's repository. Deleting a missing repository is
// not an error. The repository is first renamed away so it disappears
// atomically, then removed. Concurrent calls, in one process or several
// sharing Root, are safe: all but one find nothing to delete.
func (r *Repos) Delete(ctx context.Context, projectID int64) error {
	if projectID <= 0 {
		return fmt.Errorf("%w: invalid project id %d", ErrRepoNotFound, projectID)
	}
	unlock, err := r.lock(ctx, projectID)
	if err != nil {
		return err
	}
	defer unlock()
	r.mu.Lock()
	delete(r.configured, projectID)
	r.mu.Unlock()
	dir := r.Path(projectID)
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	trash, err := os.MkdirTemp(r.Root, ".deleted-"+strconv.FormatInt(projectID, 10)+"-")
	if err != nil {
		return fmt.Errorf("githost: delete: %w", err)
	}
	target := filepath.Join(trash, "repo.git")
	if err := os.Rename(dir, target); err != nil {
		os.RemoveAll(trash)
		return fmt.Errorf("githost: delete: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("githost: delete: %w", err)
	}
	return nil
}
