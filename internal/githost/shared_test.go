package githost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// twoNodes is two independent Repos on one Root, as two gantry processes
// sharing a repositories directory have.
func twoNodes(t *testing.T) (*Repos, *Repos) {
	t.Helper()
	a := newRepos(t)
	return a, &Repos{Root: a.Root}
}

// The project lock excludes another Repos on the same Root (another
// process), honours the context while waiting, and lets go on unlock.
func TestLockExcludesOtherProcess(t *testing.T) {
	a, b := twoNodes(t)
	ctx := testCtx(t)
	unlock, err := a.lock(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	_, err = b.lock(short, 5)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second process took a held lock: %v", err)
	}
	// Other projects are not held up.
	unlock6, err := b.lock(ctx, 6)
	if err != nil {
		t.Fatal(err)
	}
	unlock6()
	unlock()
	unlockB, err := b.lock(ctx, 5)
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	unlockB()
	if _, err := os.Stat(a.lockPath(5)); err != nil {
		t.Fatalf("lock file: %v", err)
	}
}

// Init and Delete racing in two processes: every Init succeeds and leaves
// one configured repository; a process that configured a repository
// another process deleted notices; concurrent deletes all succeed.
func TestInitDeleteAcrossProcesses(t *testing.T) {
	a, b := twoNodes(t)
	ctx := testCtx(t)
	errs := make(chan error, 8)
	for i := range 8 {
		r := []*Repos{a, b}[i%2]
		go func() { errs <- r.Init(ctx, 9, "main") }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Init: %v", err)
		}
	}
	if out, err := b.run(ctx, b.Path(9), gitOpts{}, "config", "--get", "http.receivepack"); err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("http.receivepack = %q %v", out, err)
	}
	mustCommit(t, a, 9, commitReq("main", "m", create("x", "x")))

	// b deletes what a created and configured; a's Init must not trust
	// its cache and must create the repository again.
	if err := b.Delete(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := a.CommitFiles(ctx, 9, commitReq("main", "m", create("y", "y"))); !errors.Is(err, ErrRepoNotFound) {
		t.Fatalf("commit to a repository another process deleted: %v", err)
	}
	if err := a.Init(ctx, 9, "main"); err != nil {
		t.Fatal(err)
	}
	if _, err := a.repo(9); err != nil {
		t.Fatalf("Init after another process's Delete: %v", err)
	}
	if brs, err := b.Branches(ctx, 9); err != nil || len(brs) != 0 {
		t.Fatalf("re-created repository: branches %v %v", brs, err)
	}

	for i := range 8 {
		r := []*Repos{a, b}[i%2]
		go func() { errs <- r.Delete(ctx, 9) }()
	}
	for range 8 {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Delete: %v", err)
		}
	}
	if _, err := os.Stat(a.Path(9)); !os.IsNotExist(err) {
		t.Fatalf("repository still present: %v", err)
	}
	entries, _ := os.ReadDir(a.Root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".init-") || strings.HasPrefix(e.Name(), ".deleted-") {
			t.Fatalf("leftover temp dir %s", e.Name())
		}
	}
}

// Two processes sharing Root, each with its own git handler, take pushes
// to one project at once (each pusher on a branch of its own, and all on
// main, retrying when another got there first) while both make API
// commits to a third branch. Every push's ref update must be reported
// exactly once, by the process that received it; no API commit may be
// lost or refused, and none may be reported as a push.
func TestPushesAndCommitsFromTwoProcesses(t *testing.T) {
	a, b := twoNodes(t)
	ctx := testCtx(t)
	srvA, _, recA := testServer(t, a)
	srvB, _, recB := testServer(t, b)
	base := mustCommit(t, a, 1, commitReq("main", "base", create("base", "b")))

	const pushersPerNode, rounds, commitsPerNode = 2, 3, 6
	type pushed struct {
		node int
		up   RefUpdate
	}
	var mu sync.Mutex
	var want []pushed
	var wg sync.WaitGroup
	var failures []error
	fail := func(err error) {
		mu.Lock()
		failures = append(failures, err)
		mu.Unlock()
	}
	start := make(chan struct{})
	for node, srv := range []string{repoURL(srvA, "alice", "alice-pat", "acme/app.git"), repoURL(srvB, "alice", "alice-pat", "acme/app.git")} {
		for p := range pushersPerNode {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("n%dp%d", node, p)
				work := filepath.Join(t.TempDir(), name)
				git := func(args ...string) (string, error) {
					out, err := gitcErr(t, work, args...)
					if err != nil {
						return out, fmt.Errorf("%s: git %s: %v\n%s", name, strings.Join(args, " "), err, out)
					}
					return strings.TrimSpace(out), nil
				}
				if out, err := gitcErr(t, "", "clone", "-q", srv, work); err != nil {
					fail(fmt.Errorf("%s: clone: %v\n%s", name, err, out))
					return
				}
				commit := func(file string) (string, error) {
					if err := os.WriteFile(filepath.Join(work, file), []byte(file), 0o644); err != nil {
						return "", err
					}
					if _, err := git("add", "."); err != nil {
						return "", err
					}
					if _, err := git("commit", "-q", "-m", file); err != nil {
						return "", err
					}
					return git("rev-parse", "HEAD")
				}
				<-start
				own := ZeroSHA
				for i := range rounds {
					// A branch of its own: the push cannot be refused.
					from := own
					if from == ZeroSHA {
						from = base.SHA
					}
					if _, err := git("checkout", "-q", "-B", name, from); err != nil {
						fail(err)
						return
					}
					sha, err := commit(fmt.Sprintf("%s-own-%d", name, i))
					if err == nil {
						_, err = git("push", "-q", "origin", name)
					}
					if err != nil {
						fail(err)
						return
					}
					mu.Lock()
					want = append(want, pushed{node, RefUpdate{"refs/heads/" + name, own, sha}})
					mu.Unlock()
					own = sha

					// main, which every pusher moves: retry on a newer main.
					for attempt := 0; ; attempt++ {
						if attempt == 50 {
							fail(fmt.Errorf("%s: main refused 50 times", name))
							return
						}
						if _, err := git("fetch", "-q", "origin", "main"); err != nil {
							fail(err)
							return
						}
						before, err := git("rev-parse", "FETCH_HEAD")
						if err == nil {
							_, err = git("checkout", "-q", "-B", "main", before)
						}
						var sha string
						if err == nil {
							sha, err = commit(fmt.Sprintf("%s-main-%d-%d", name, i, attempt))
						}
						if err != nil {
							fail(err)
							return
						}
						if _, err := git("push", "-q", "origin", "main"); err != nil {
							continue // another pusher moved main first
						}
						mu.Lock()
						want = append(want, pushed{node, RefUpdate{"refs/heads/main", before, sha}})
						mu.Unlock()
						break
					}
				}
			}()
		}
	}
	// API commits to one branch through both processes at once.
	commits := make([][]*CommitResult, 2)
	for node, r := range []*Repos{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			for i := range commitsPerNode {
				req := commitReq("api", fmt.Sprintf("api %d-%d", node, i), create(fmt.Sprintf("api/%d-%d", node, i), "x"))
				req.StartBranch = "main"
				res, err := r.CommitFiles(ctx, 1, req)
				if errors.Is(err, ErrBranchExists) {
					req.StartBranch = ""
					res, err = r.CommitFiles(ctx, 1, req)
				}
				if err != nil {
					fail(fmt.Errorf("node %d commit %d: %w", node, i, err))
					return
				}
				commits[node] = append(commits[node], res)
			}
		}()
	}
	close(start)
	wg.Wait()
	for _, err := range failures {
		t.Error(err)
	}

	// Each process reported exactly the updates of the pushes it took,
	// one hook call per push.
	for node, rec := range []*pushRecorder{recA, recB} {
		var got, exp []string
		rec.mu.Lock()
		for _, call := range rec.calls {
			if len(call) != 1 {
				t.Errorf("node %d: a push hook call carried %d updates, want 1 (a push of one ref): %v", node, len(call), call)
			}
			for _, u := range call {
				got = append(got, u.String())
			}
		}
		rec.mu.Unlock()
		for _, p := range want {
			if p.node == node {
				exp = append(exp, p.up.String())
			}
		}
		slices.Sort(got)
		slices.Sort(exp)
		if !slices.Equal(got, exp) {
			t.Errorf("node %d reported %d updates, want %d\n got: %v\nwant: %v", node, len(got), len(exp), got, exp)
		}
	}

	// Every API commit is on the api branch: none lost.
	head, err := a.ResolveRef(ctx, 1, "api")
	if err != nil {
		t.Fatal(err)
	}
	for node, list := range commits {
		for _, c := range list {
			if _, err := a.run(ctx, a.Path(1), gitOpts{}, "merge-base", "--is-ancestor", c.SHA, head); err != nil {
				t.Errorf("node %d's commit %s is not on the api branch", node, c.SHA)
			}
		}
	}
	// The api branch started at some main, which may hold pushed
	// commits; count the API's own.
	apiOnly, err := a.run(ctx, a.Path(1), gitOpts{}, "rev-list", "--count", "--grep=^api ", head)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(apiOnly)); got != strconv.Itoa(2*commitsPerNode) {
		t.Errorf("api branch holds %s API commits, want %d", got, 2*commitsPerNode)
	}
	t.Logf("%d pushes (%d through A, %d through B), %d API commits", len(want), recA.count(), recB.count(), len(commits[0])+len(commits[1]))
}

// What a crash in the middle of Init or Delete leaves is removed at the
// next start, but only once no Init or Delete of that project (in this
// process or another sharing Root) is running; repositories, lock files
// and other names are left alone.
func TestCleanLeftovers(t *testing.T) {
	a, b := twoNodes(t)
	ctx := testCtx(t)
	mustInit(t, a, 3)
	leftovers := []string{".init-3-123", ".deleted-4-456", ".init-5-789"}
	for _, name := range leftovers {
		if err := os.MkdirAll(filepath.Join(a.Root, name, "objects"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	keep := []string{".init-x-1", "notes"}
	for _, name := range keep {
		if err := os.MkdirAll(filepath.Join(a.Root, name), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Project 5 is being worked on by the other process: its leftover
	// waits for the lock.
	unlock, err := b.lock(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan int, 1)
	go func() {
		n, err := a.CleanLeftovers(ctx)
		if err != nil {
			t.Error(err)
		}
		done <- n
	}()
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(5 * time.Millisecond) {
		_, err3 := os.Stat(filepath.Join(a.Root, ".init-3-123"))
		_, err4 := os.Stat(filepath.Join(a.Root, ".deleted-4-456"))
		if os.IsNotExist(err3) && os.IsNotExist(err4) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the leftovers of unlocked projects were not removed")
		}
	}
	if _, err := os.Stat(filepath.Join(a.Root, ".init-5-789")); err != nil {
		t.Fatalf("the leftover of a project whose lock is held was removed: %v", err)
	}
	unlock()
	if n := <-done; n != 3 {
		t.Fatalf("removed %d, want 3", n)
	}
	for _, name := range append(keep, ".init-5-789") {
		_, err := os.Stat(filepath.Join(a.Root, name))
		if want := name != ".init-5-789"; (err == nil) != want {
			t.Fatalf("%s: %v", name, err)
		}
	}
	if _, err := a.repo(3); err != nil {
		t.Fatalf("the repository went with the leftovers: %v", err)
	}
}
