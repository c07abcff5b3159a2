package githost

import (
	"errors"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func boolp(b bool) *bool { return &b }

func commitReq(branch, msg string, acts ...Action) CommitRequest {
	return CommitRequest{Branch: branch, Message: msg, AuthorName: "Ada Lovelace", AuthorEmail: "ada@example.com", Actions: acts}
}

func create(p, content string) Action {
	return Action{Action: ActionCreate, FilePath: p, Content: []byte(content)}
}

func mustCommit(t *testing.T, r *Repos, id int64, req CommitRequest) *CommitResult {
	t.Helper()
	res, err := r.CommitFiles(testCtx(t), id, req)
	if err != nil {
		t.Fatalf("CommitFiles(%s): %v", req.Message, err)
	}
	return res
}

func readString(t *testing.T, r *Repos, id int64, rev, p string) string {
	t.Helper()
	b, err := r.ReadFile(testCtx(t), id, rev, p)
	if err != nil {
		t.Fatalf("ReadFile(%s, %s): %v", rev, p, err)
	}
	return string(b)
}

func TestCommitFilesActions(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)

	// Root commit in an empty repository.
	zone := time.FixedZone("IST", 5*3600+1800)
	now := time.Date(2024, 3, 1, 12, 30, 0, 0, zone)
	req := commitReq("main", "Initial commit\n\nWith a body.\n",
		create("README.md", "# hello\n"),
		create("src/app/main.go", "package main\n"),
		Action{Action: ActionCreate, FilePath: "bin/run.sh", Content: []byte("#!/bin/sh\n"), ExecuteFilemode: boolp(true)},
		create("docs/old.md", "old docs\n"),
		create("empty.txt", ""),
	)
	req.Now = now
	c1 := mustCommit(t, r, 1, req)
	if c1.Update != (RefUpdate{"refs/heads/main", ZeroSHA, c1.SHA}) {
		t.Fatalf("root update %v", c1.Update)
	}
	info, err := r.Commit(ctx, 1, c1.SHA)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.ParentIDs) != 0 || info.Title != "Initial commit" || info.Message != "Initial commit\n\nWith a body.\n" ||
		info.AuthorName != "Ada Lovelace" || info.AuthorEmail != "ada@example.com" ||
		info.CommitterName != "Ada Lovelace" || info.CommitterEmail != "ada@example.com" {
		t.Fatalf("commit info %+v", info)
	}
	if !info.AuthoredDate.Equal(now) || !info.CommittedDate.Equal(now) {
		t.Fatalf("dates %v %v want %v", info.AuthoredDate, info.CommittedDate, now)
	}
	if _, off := info.AuthoredDate.Zone(); off != 19800 {
		t.Fatalf("offset %d", off)
	}
	if fi, err := r.StatFile(ctx, 1, c1.SHA, "bin/run.sh"); err != nil || !fi.Executable || fi.Mode != "100755" {
		t.Fatalf("run.sh %+v %v", fi, err)
	}
	if s := readString(t, r, 1, "main", "empty.txt"); s != "" {
		t.Fatalf("empty.txt = %q", s)
	}

	// update / delete / move / chmod in one commit.
	c2 := mustCommit(t, r, 1, commitReq("main", "Second",
		Action{Action: ActionUpdate, FilePath: "README.md", Content: []byte("# hello v2\n")},
		Action{Action: ActionDelete, FilePath: "empty.txt"},
		Action{Action: ActionMove, PreviousPath: "docs/old.md", FilePath: "docs/new/guide.md"},
		Action{Action: ActionChmod, FilePath: "bin/run.sh", ExecuteFilemode: boolp(false)},
		Action{Action: ActionChmod, FilePath: "src/app/main.go", ExecuteFilemode: boolp(true)},
	))
	if c2.Update.Before != c1.SHA || c2.Update.After != c2.SHA {
		t.Fatalf("update %v", c2.Update)
	}
	if s := readString(t, r, 1, c2.SHA, "README.md"); s != "# hello v2\n" {
		t.Fatalf("README = %q", s)
	}
	if s := readString(t, r, 1, c2.SHA, "docs/new/guide.md"); s != "old docs\n" {
		t.Fatalf("moved file = %q", s)
	}
	for _, gone := range []string{"empty.txt", "docs/old.md"} {
		if _, err := r.ReadFile(ctx, 1, c2.SHA, gone); !errors.Is(err, ErrFileMissing) {
			t.Fatalf("%s: %v", gone, err)
		}
	}
	if fi, _ := r.StatFile(ctx, 1, c2.SHA, "bin/run.sh"); fi.Executable {
		t.Fatalf("chmod -x failed")
	}
	if fi, _ := r.StatFile(ctx, 1, c2.SHA, "src/app/main.go"); !fi.Executable {
		t.Fatalf("chmod +x failed")
	}
	if s := readString(t, r, 1, c2.SHA, "src/app/main.go"); s != "package main\n" {
		t.Fatalf("chmod changed content: %q", s)
	}

	// Move with new content; update keeps the executable bit.
	c3 := mustCommit(t, r, 1, commitReq("main", "Third",
		Action{Action: ActionMove, PreviousPath: "docs/new/guide.md", FilePath: "GUIDE.md", Content: []byte("new guide\n")},
		Action{Action: ActionUpdate, FilePath: "src/app/main.go", Content: []byte("package main // v2\n")},
	))
	if s := readString(t, r, 1, c3.SHA, "GUIDE.md"); s != "new guide\n" {
		t.Fatalf("GUIDE = %q", s)
	}
	if fi, _ := r.StatFile(ctx, 1, c3.SHA, "src/app/main.go"); !fi.Executable {
		t.Fatalf("update dropped the executable bit")
	}
	// "docs" disappeared entirely, so a file may now take its name; a
	// directory may replace a file deleted in the same commit.
	c4 := mustCommit(t, r, 1, commitReq("main", "Fourth",
		create("docs", "docs is a file now\n"),
		Action{Action: ActionDelete, FilePath: "GUIDE.md"},
		create("GUIDE.md/index.md", "guide dir\n"),
	))
	if s := readString(t, r, 1, c4.SHA, "docs"); s != "docs is a file now\n" {
		t.Fatalf("docs = %q", s)
	}
	if s := readString(t, r, 1, c4.SHA, "GUIDE.md/index.md"); s != "guide dir\n" {
		t.Fatalf("GUIDE.md/index.md = %q", s)
	}

	// History and changed paths.
	paths, err := r.ChangedPaths(ctx, 1, c1.SHA, c2.SHA)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"README.md", "bin/run.sh", "docs/new/guide.md", "docs/old.md", "empty.txt", "src/app/main.go"}
	if fmt.Sprint(paths) != fmt.Sprint(want) {
		t.Fatalf("ChangedPaths = %v, want %v", paths, want)
	}
	if p, err := r.ChangedPaths(ctx, 1, ZeroSHA, c2.SHA); err != nil || p != nil {
		t.Fatalf("ChangedPaths from zero = %v, %v", p, err)
	}
	if p, err := r.ChangedPaths(ctx, 1, c2.SHA, c2.SHA); err != nil || len(p) != 0 {
		t.Fatalf("ChangedPaths same = %v, %v", p, err)
	}
	if info, _ := r.Commit(ctx, 1, c4.SHA); fmt.Sprint(info.ParentIDs) != fmt.Sprint([]string{c3.SHA}) {
		t.Fatalf("parents %v", info.ParentIDs)
	}

	// A clone shows every commit.
	srv, _, _ := testServer(t, r)
	clone := filepath.Join(t.TempDir(), "clone")
	gitc(t, "", "clone", "-q", repoURL(srv, "alice", "alice-pat", "acme/app.git"), clone)
	if log := gitc(t, clone, "log", "--format=%H %an <%ae> %s"); log != strings.Join([]string{
		c4.SHA + " Ada Lovelace <ada@example.com> Fourth",
		c3.SHA + " Ada Lovelace <ada@example.com> Third",
		c2.SHA + " Ada Lovelace <ada@example.com> Second",
		c1.SHA + " Ada Lovelace <ada@example.com> Initial commit",
	}, "\n") {
		t.Fatalf("git log:\n%s", log)
	}
	if ad := gitc(t, clone, "log", "-1", "--format=%ad", "--date=iso-strict", c1.SHA); ad != "2024-03-01T12:30:00+05:30" {
		t.Fatalf("author date %s", ad)
	}
	gitc(t, clone, "fsck", "--strict")
	if mode := gitc(t, clone, "ls-files", "-s", "src/app/main.go"); !strings.HasPrefix(mode, "100755") {
		t.Fatalf("ls-files %s", mode)
	}
}

func TestCommitFilesErrors(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)
	base := mustCommit(t, r, 1, commitReq("main", "base", create("a.txt", "a"), create("dir/b.txt", "b")))

	cases := []struct {
		name string
		req  CommitRequest
		want error
	}{
		{"create existing", commitReq("main", "m", create("a.txt", "x")), ErrFileExists},
		{"create over directory", commitReq("main", "m", create("dir", "x")), ErrFileExists},
		{"create below file", commitReq("main", "m", create("a.txt/c", "x")), ErrFileExists},
		{"create twice", commitReq("main", "m", create("n.txt", "x"), create("n.txt", "y")), ErrFileExists},
		{"update missing", commitReq("main", "m", Action{Action: ActionUpdate, FilePath: "nope", Content: []byte("x")}), ErrFileMissing},
		{"update directory", commitReq("main", "m", Action{Action: ActionUpdate, FilePath: "dir", Content: []byte("x")}), ErrFileMissing},
		{"delete missing", commitReq("main", "m", Action{Action: ActionDelete, FilePath: "nope"}), ErrFileMissing},
		{"delete twice", commitReq("main", "m", Action{Action: ActionDelete, FilePath: "a.txt"}, Action{Action: ActionDelete, FilePath: "a.txt"}), ErrFileMissing},
		{"move missing", commitReq("main", "m", Action{Action: ActionMove, PreviousPath: "nope", FilePath: "x"}), ErrFileMissing},
		{"move onto existing", commitReq("main", "m", Action{Action: ActionMove, PreviousPath: "a.txt", FilePath: "dir/b.txt"}), ErrFileExists},
		{"move without previous", commitReq("main", "m", Action{Action: ActionMove, FilePath: "x"}), ErrInvalidAction},
		{"chmod missing", commitReq("main", "m", Action{Action: ActionChmod, FilePath: "nope", ExecuteFilemode: boolp(true)}), ErrFileMissing},
		{"chmod without mode", commitReq("main", "m", Action{Action: ActionChmod, FilePath: "a.txt"}), ErrInvalidAction},
		{"unknown action", commitReq("main", "m", Action{Action: "rename", FilePath: "a.txt"}), ErrInvalidAction},
		{"no actions", commitReq("main", "m"), ErrEmptyCommit},
		{"empty message", commitReq("main", "  ", create("x", "")), ErrInvalidCommit},
		{"no author", CommitRequest{Branch: "main", Message: "m", Actions: []Action{create("x", "")}}, ErrInvalidCommit},
		{"missing branch", commitReq("feature", "m", create("x", "")), ErrBranchMissing},
		{"missing start branch", func() CommitRequest {
			q := commitReq("feature", "m", create("x", ""))
			q.StartBranch = "nope"
			return q
		}(), ErrBranchMissing},
		{"unknown start sha", func() CommitRequest {
			q := commitReq("feature", "m", create("x", ""))
			q.StartSHA = strings.Repeat("ab", 20)
			return q
		}(), ErrRefNotFound},
		{"bad start sha", func() CommitRequest {
			q := commitReq("feature", "m", create("x", ""))
			q.StartSHA = "main"
			return q
		}(), ErrInvalidRef},
		{"existing branch with other start", func() CommitRequest {
			q := commitReq("main", "m", create("x", ""))
			q.StartBranch = "other"
			return q
		}(), ErrBranchExists},
		{"invalid branch", commitReq("bad..name", "m", create("x", "")), ErrInvalidRef},
		{"branch option injection", commitReq("-f", "m", create("x", "")), ErrInvalidRef},
		{"branch HEAD", commitReq("HEAD", "m", create("x", "")), ErrInvalidRef},
		{"branch with space", commitReq("a b", "m", create("x", "")), ErrInvalidRef},
		{"branch lock", commitReq("x.lock", "m", create("x", "")), ErrInvalidRef},
		{"later action fails", commitReq("main", "m", create("fine.txt", "x"), Action{Action: ActionDelete, FilePath: "nope"}), ErrFileMissing},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := r.CommitFiles(ctx, 1, c.req)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	if sha, _ := r.ResolveRef(ctx, 1, "main"); sha != base.SHA {
		t.Fatalf("failed commits moved main")
	}
	if _, err := r.CommitFiles(ctx, 99, commitReq("main", "m", create("x", ""))); !errors.Is(err, ErrRepoNotFound) {
		t.Fatalf("missing repo: %v", err)
	}
}

func TestCommitFilesPathValidation(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)
	mustCommit(t, r, 1, commitReq("main", "base", create("ok.txt", "a")))
	bad := []string{
		"", "/etc/passwd", "../x", "a/../../x", "a/..", "..", ".", "./a", "a/./b", "a//b", "a/",
		".git", ".git/config", "sub/.git/hooks/pre-receive", ".GIT/config", "a/.Git", ".git./x", ".git /x", "GIT~1/config",
		"a\x00b", `a\b`, `..\x`, strings.Repeat("a", MaxPathLength+1),
	}
	for _, p := range bad {
		for _, a := range []Action{
			create(p, "x"),
			{Action: ActionUpdate, FilePath: p, Content: []byte("x")},
			{Action: ActionDelete, FilePath: p},
			{Action: ActionMove, PreviousPath: "ok.txt", FilePath: p},
			{Action: ActionMove, PreviousPath: p, FilePath: "new.txt"},
		} {
			if a.Action == ActionMove && a.PreviousPath == "" {
				continue // ErrInvalidAction: previous_path is required
			}
			if _, err := r.CommitFiles(ctx, 1, commitReq("main", "m", a)); !errors.Is(err, ErrInvalidPath) {
				t.Fatalf("%s %q: got %v, want ErrInvalidPath", a.Action, p, err)
			}
		}
		if _, err := r.ReadFile(ctx, 1, "main", p); !errors.Is(err, ErrInvalidPath) {
			t.Fatalf("ReadFile %q: %v", p, err)
		}
	}
	good := []string{"a.txt", ".gitignore", ".github/workflows/x.yml", "a/.gitkeep", "dir.git/x", "weird name/ü.txt", "-rf", "*glob*", strings.Repeat("a", MaxPathLength)}
	for _, p := range good {
		if err := ValidatePath(p); err != nil {
			t.Fatalf("ValidatePath(%q) = %v", p, err)
		}
	}
	acts := []Action{}
	for _, p := range good[:len(good)-1] {
		acts = append(acts, create(p, p))
	}
	res := mustCommit(t, r, 1, commitReq("main", "good paths", acts...))
	for _, p := range good[:len(good)-1] {
		if s := readString(t, r, 1, res.SHA, p); s != p {
			t.Fatalf("%q = %q", p, s)
		}
	}
	// Literal pathspecs: "*glob*" names only itself.
	if _, err := r.ReadFile(ctx, 1, res.SHA, "*"); !errors.Is(err, ErrFileMissing) {
		t.Fatalf("ReadFile(*) = %v", err)
	}
}

func TestCommitFilesBranches(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)
	c1 := mustCommit(t, r, 1, commitReq("main", "one", create("a", "1")))
	c2 := mustCommit(t, r, 1, commitReq("main", "two", create("b", "2")))

	// start_branch creates a new branch from another.
	q := commitReq("feature/x", "feature", create("c", "3"))
	q.StartBranch = "main"
	f := mustCommit(t, r, 1, q)
	if f.Update != (RefUpdate{"refs/heads/feature/x", ZeroSHA, f.SHA}) {
		t.Fatalf("update %v", f.Update)
	}
	if info, _ := r.Commit(ctx, 1, f.SHA); len(info.ParentIDs) != 1 || info.ParentIDs[0] != c2.SHA {
		t.Fatalf("feature parent %v", info.ParentIDs)
	}
	// start_sha (abbreviated) creates a branch from an older commit.
	q = commitReq("old", "old", create("z", "z"))
	q.StartSHA = c1.SHA[:10]
	o := mustCommit(t, r, 1, q)
	if info, _ := r.Commit(ctx, 1, o.SHA); info.ParentIDs[0] != c1.SHA {
		t.Fatalf("start_sha parent %v", info.ParentIDs)
	}
	if _, err := r.ReadFile(ctx, 1, o.SHA, "b"); !errors.Is(err, ErrFileMissing) {
		t.Fatalf("b should not exist on old: %v", err)
	}
	// Start branch equal to the branch is just a normal commit.
	q = commitReq("main", "three", create("d", "4"))
	q.StartBranch = "main"
	c3 := mustCommit(t, r, 1, q)
	if c3.Update.Before != c2.SHA {
		t.Fatalf("update %v", c3.Update)
	}
	// Force overwrites an existing branch from the start point.
	q = commitReq("old", "forced", create("y", "y"))
	q.StartBranch = "main"
	q.Force = true
	fo := mustCommit(t, r, 1, q)
	if fo.Update.Before != o.SHA {
		t.Fatalf("force update %v", fo.Update)
	}
	if info, _ := r.Commit(ctx, 1, fo.SHA); info.ParentIDs[0] != c3.SHA {
		t.Fatalf("force parent %v", info.ParentIDs)
	}

	// In an empty repository a start branch is ignored: root commit.
	mustInit(t, r, 2)
	q = commitReq("dev", "root", create("r", "r"))
	q.StartBranch = "main"
	root := mustCommit(t, r, 2, q)
	if info, _ := r.Commit(ctx, 2, root.SHA); len(info.ParentIDs) != 0 || root.Update.Before != ZeroSHA {
		t.Fatalf("root commit %+v %v", info, root.Update)
	}
	q = commitReq("other", "x", create("x", "x"))
	q.StartSHA = root.SHA
	if _, err := r.CommitFiles(ctx, 2, q); err != nil {
		t.Fatalf("start sha in second repo: %v", err)
	}

	brs, err := r.Branches(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	want := []Branch{{"feature/x", f.SHA, false}, {"main", c3.SHA, true}, {"old", fo.SHA, false}}
	if fmt.Sprint(brs) != fmt.Sprint(want) {
		t.Fatalf("Branches = %v, want %v", brs, want)
	}
	// Changing the default branch through Init.
	if err := r.Init(ctx, 1, "old"); err != nil {
		t.Fatal(err)
	}
	brs, _ = r.Branches(ctx, 1)
	if !brs[2].Default || brs[1].Default {
		t.Fatalf("default not moved: %v", brs)
	}
	if sha, _ := r.ResolveRef(ctx, 1, "HEAD"); sha != fo.SHA {
		t.Fatalf("HEAD = %s", sha)
	}
}

func TestCommitFilesConflict(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)
	c1 := mustCommit(t, r, 1, commitReq("main", "one", create("a", "1")))

	// Simulate a writer outside this process moving the branch between
	// building the commit and the compare-and-swap.
	var other string
	testHookBeforeUpdateRef = func(dir, ref string) {
		testHookBeforeUpdateRef = nil
		cmd := exec.Command("git", "commit-tree", "-p", c1.SHA, "-m", "external", c1.SHA+"^{tree}")
		cmd.Env = append(r.baseEnv(), "GIT_DIR="+dir, "GIT_AUTHOR_NAME=x", "GIT_AUTHOR_EMAIL=x@x", "GIT_COMMITTER_NAME=x", "GIT_COMMITTER_EMAIL=x@x")
		out, err := cmd.Output()
		if err != nil {
			t.Errorf("commit-tree: %v", err)
			return
		}
		other = strings.TrimSpace(string(out))
		cmd = exec.Command("git", "update-ref", ref, other)
		cmd.Env = append(r.baseEnv(), "GIT_DIR="+dir)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("update-ref: %v %s", err, out)
		}
	}
	t.Cleanup(func() { testHookBeforeUpdateRef = nil })
	_, err := r.CommitFiles(ctx, 1, commitReq("main", "two", create("c", "3")))
	if !errors.Is(err, ErrConflict) {
		t.Fatalf("got %v, want ErrConflict", err)
	}
	if sha, _ := r.ResolveRef(ctx, 1, "main"); sha != other {
		t.Fatalf("main = %s, want the external commit %s", sha, other)
	}
}

func TestCommitFilesConcurrent(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)
	mustCommit(t, r, 1, commitReq("main", "base", create("base.txt", "0")))

	const n = 16
	var wg sync.WaitGroup
	results := make([]*CommitResult, n)
	errs := make([]error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			p := "files/" + strconv.Itoa(i) + ".txt"
			results[i], errs[i] = r.CommitFiles(ctx, 1, commitReq("main", "commit "+strconv.Itoa(i),
				create(p, strconv.Itoa(i)),
				Action{Action: ActionUpdate, FilePath: "base.txt", Content: []byte(strconv.Itoa(i))}))
		}(i)
	}
	wg.Wait()
	ok := 0
	for i, err := range errs {
		switch {
		case err == nil:
			ok++
		case errors.Is(err, ErrConflict):
		default:
			t.Fatalf("commit %d: %v", i, err)
		}
	}
	head, err := r.ResolveRef(ctx, 1, "main")
	if err != nil {
		t.Fatal(err)
	}
	out, err := r.run(ctx, r.Path(1), gitOpts{}, "rev-list", "--count", head)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.TrimSpace(string(out)); got != strconv.Itoa(1+ok) {
		t.Fatalf("commit count %s, want %d (successes %d)", got, 1+ok, ok)
	}
	// Every successful commit is reachable from main and its file exists.
	seen := map[string]bool{}
	for i, res := range results {
		if res == nil {
			continue
		}
		if seen[res.Update.Before] {
			t.Fatalf("two commits share parent %s: a commit was lost", res.Update.Before)
		}
		seen[res.Update.Before] = true
		if _, err := r.run(ctx, r.Path(1), gitOpts{}, "merge-base", "--is-ancestor", res.SHA, head); err != nil {
			t.Fatalf("commit %d (%s) not reachable from main", i, res.SHA)
		}
		if s := readString(t, r, 1, head, "files/"+strconv.Itoa(i)+".txt"); s != strconv.Itoa(i) {
			t.Fatalf("file %d = %q", i, s)
		}
	}
	if ok != n {
		t.Logf("%d of %d commits lost the race (ErrConflict)", n-ok, n)
	}
}
