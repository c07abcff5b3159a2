package githost

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// pushLocal builds a repository with a client git and pushes it straight
// into project id's bare repository over the filesystem.
func pushLocal(t *testing.T, r *Repos, id int64) (work string) {
	t.Helper()
	work = filepath.Join(t.TempDir(), "local")
	gitc(t, "", "init", "-q", work)
	writeFile(t, filepath.Join(work, "README.md"), "readme\n")
	writeFile(t, filepath.Join(work, "src/main.go"), "package main\n")
	writeFile(t, filepath.Join(work, "src/pkg/util.go"), "package pkg\n")
	writeFile(t, filepath.Join(work, ".env"), "X=1\n")
	writeFile(t, filepath.Join(work, "docs/a.md"), "a\n")
	writeFile(t, filepath.Join(work, "big.txt"), strings.Repeat("x", 5000))
	if err := os.Symlink("README.md", filepath.Join(work, "link")); err != nil {
		t.Fatal(err)
	}
	gitc(t, work, "add", ".")
	gitc(t, work, "commit", "-q", "-m", "one")
	// A submodule entry (gitlink) without .gitmodules.
	gitc(t, work, "update-index", "--add", "--cacheinfo", "160000,"+strings.Repeat("1", 40)+",vendor/sub")
	gitc(t, work, "commit", "-q", "-m", "two: "+strings.Repeat("word ", 30))
	gitc(t, work, "tag", "light")
	gitc(t, work, "tag", "-a", "annotated", "-m", "tag msg", "HEAD~1")
	gitc(t, work, "branch", "light2", "HEAD~1") // a branch and ...
	gitc(t, work, "tag", "light2", "HEAD")      // ... a tag with the same name
	gitc(t, work, "push", "-q", r.Path(id), "main", "refs/heads/light2", "--tags")
	return work
}

func TestReaders(t *testing.T) {
	r := newRepos(t)
	mustInit(t, r, 1)
	ctx := testCtx(t)
	work := pushLocal(t, r, 1)
	head := gitc(t, work, "rev-parse", "HEAD")
	first := gitc(t, work, "rev-parse", "HEAD~1")

	// ResolveRef.
	for ref, want := range map[string]string{
		"main": head, "refs/heads/main": head, "HEAD": head, "light": head, "annotated": first,
		"refs/tags/annotated": first, head: head, head[:7]: head, strings.ToUpper(head[:12]): head,
		"light2":           first, // branch wins over tag
		"refs/tags/light2": head,
	} {
		got, err := r.ResolveRef(ctx, 1, ref)
		if err != nil || got != want {
			t.Errorf("ResolveRef(%q) = %q, %v; want %q", ref, got, err, want)
		}
	}
	for ref, want := range map[string]error{
		"nope": ErrRefNotFound, strings.Repeat("0", 40): ErrRefNotFound, "deadbeef": ErrRefNotFound,
		"main~1": ErrInvalidRef, "main^": ErrInvalidRef, "HEAD@{1}": ErrInvalidRef, "--all": ErrInvalidRef,
		"": ErrInvalidRef, "a..b": ErrInvalidRef, "refs/heads/../x": ErrInvalidRef, "main:README.md": ErrInvalidRef,
	} {
		if _, err := r.ResolveRef(ctx, 1, ref); !errors.Is(err, want) {
			t.Errorf("ResolveRef(%q) err = %v; want %v", ref, err, want)
		}
	}
	if _, err := r.ResolveRef(ctx, 42, "main"); !errors.Is(err, ErrRepoNotFound) {
		t.Errorf("missing repo: %v", err)
	}

	// ReadFile.
	if s := readString(t, r, 1, head, "src/pkg/util.go"); s != "package pkg\n" {
		t.Errorf("util.go = %q", s)
	}
	if s := readString(t, r, 1, "main", "link"); s != "README.md" {
		t.Errorf("symlink = %q", s)
	}
	for p, want := range map[string]error{
		"src": ErrFileMissing, "nope.txt": ErrFileMissing, "vendor/sub": ErrFileMissing, "src/main.go/x": ErrFileMissing,
		"../etc/passwd": ErrInvalidPath, "/etc/passwd": ErrInvalidPath, ".git/config": ErrInvalidPath,
	} {
		if _, err := r.ReadFile(ctx, 1, head, p); !errors.Is(err, want) {
			t.Errorf("ReadFile(%q) = %v, want %v", p, err, want)
		}
	}
	small := &Repos{Root: r.Root, MaxFileSize: 4096}
	if _, err := small.ReadFile(ctx, 1, head, "big.txt"); !errors.Is(err, ErrTooLarge) {
		t.Errorf("ReadFile over limit = %v", err)
	}
	if b, err := small.ReadFile(ctx, 1, head, "README.md"); err != nil || string(b) != "readme\n" {
		t.Errorf("ReadFile under limit = %q %v", b, err)
	}
	if fi, err := r.StatFile(ctx, 1, head, "link"); err != nil || fi.Mode != "120000" || fi.Size != 9 {
		t.Errorf("StatFile(link) = %+v %v", fi, err)
	}
	if c, err := r.LastCommitForPath(ctx, 1, head, "README.md"); err != nil || c != first {
		t.Errorf("LastCommitForPath = %s %v", c, err)
	}

	// Exists.
	for glob, want := range map[string]bool{
		"README.md": true, "*.md": true, "**/*.go": true, "src/*.go": true, "src/**/*.go": true,
		"src/pkg/*.go": true, "*.go": false, "docs/**/*.md": true, "{docs,other}/a.md": true,
		"*.{txt,rb}": true, "*.rb": false, ".env": true, "*env": true, "**/util.go": true,
		"vendor/sub": true, "src": false, "src/**": true, "src/pkg": false, "[Rr]EADME.md": true, "missing/**/*": false,
	} {
		got, err := r.Exists(ctx, 1, head, glob)
		if err != nil || got != want {
			t.Errorf("Exists(%q) = %v, %v; want %v", glob, got, err, want)
		}
	}
	files, err := r.ListFiles(ctx, 1, head)
	if err != nil || len(files) != 8 {
		t.Errorf("ListFiles = %v %v", files, err)
	}

	// Commit.
	info, err := r.Commit(ctx, 1, "main")
	if err != nil {
		t.Fatal(err)
	}
	if info.SHA != head || fmt.Sprint(info.ParentIDs) != fmt.Sprint([]string{first}) ||
		info.AuthorName != "Test Author" || info.AuthorEmail != "author@example.com" ||
		info.CommitterName != "Test Committer" || info.CommitterEmail != "committer@example.com" {
		t.Errorf("Commit = %+v", info)
	}
	if !strings.HasPrefix(info.Message, "two: word") || !strings.HasSuffix(info.Title, "…") || len([]rune(info.Title)) > 81 {
		t.Errorf("title %q message %q", info.Title, info.Message)
	}
	if info.AuthoredDate.IsZero() || info.CommittedDate.IsZero() {
		t.Errorf("dates missing")
	}
	if _, err := r.Commit(ctx, 1, strings.Repeat("a", 40)); !errors.Is(err, ErrRefNotFound) {
		t.Errorf("Commit(unknown) = %v", err)
	}

	// ChangedPaths.
	if p, err := r.ChangedPaths(ctx, 1, first, head); err != nil || fmt.Sprint(p) != "[vendor/sub]" {
		t.Errorf("ChangedPaths = %v %v", p, err)
	}
	if p, err := r.ChangedPaths(ctx, 1, head, ZeroSHA); err != nil || p != nil {
		t.Errorf("ChangedPaths to zero = %v %v", p, err)
	}

	// Branches.
	brs, err := r.Branches(ctx, 1)
	if err != nil || fmt.Sprint(brs) != fmt.Sprint([]Branch{{"light2", first, false}, {"main", head, true}}) {
		t.Errorf("Branches = %v %v", brs, err)
	}
}

func TestCommitTitle(t *testing.T) {
	long := strings.Repeat("abcd ", 25) // 125 chars
	for msg, want := range map[string]string{
		"short\n\nbody":          "short",
		"no newline":             "no newline",
		"\n\nleading blank\nx":   "leading blank",
		"crlf\r\nbody":           "crlf",
		long:                     strings.TrimSpace(long[:80]) + "…",
		strings.Repeat("x", 120): strings.Repeat("x", 80) + "…",
		strings.Repeat("x", 99):  strings.Repeat("x", 99),
		strings.Repeat("é", 100): strings.Repeat("é", 80) + "…",
		"":                       "",
	} {
		if got := commitTitle(msg); got != want {
			t.Errorf("commitTitle(%q) = %q, want %q", msg, got, want)
		}
	}
}

func TestMatchGlob(t *testing.T) {
	for _, c := range []struct {
		pat, name string
		want      bool
	}{
		{"*.go", "main.go", true},
		{"*.go", "cmd/main.go", false},
		{"**/*.go", "main.go", true},
		{"**/*.go", "a/b/c/main.go", true},
		{"a/**/b", "a/b", true},
		{"a/**/b", "a/x/y/b", true},
		{"a/**/b", "ab", false},
		{"**", "top", true},
		{"**", "a/b", false}, // "**" not followed by "/" acts like "*"
		{"src/**", "src/a", true},
		{"src/**.rb", "src/a.rb", true},
		{"*", ".hidden", true},
		{"**/*", ".github/workflows/ci.yml", true},
		{"{a,b}/*.txt", "b/x.txt", true},
		{"{a,b}/*.txt", "c/x.txt", false},
		{"{a,{b,c}}.txt", "c.txt", true},
		{"file.{yml,yaml}", "file.yaml", true},
		{"d?c", "doc", true},
		{"d?c", "d/c", false},
		{"[a-c]x", "bx", true},
		{"[", "[", false},
		{"Dockerfile", "Dockerfile", true},
		{"Dockerfile", "sub/Dockerfile", false},
	} {
		if got := MatchGlob(c.pat, c.name); got != c.want {
			t.Errorf("MatchGlob(%q, %q) = %v, want %v", c.pat, c.name, got, c.want)
		}
	}
	if n := len(expandBraces(strings.Repeat("{a,b,c,d}", 10))); n != 1024 {
		t.Errorf("brace expansion not capped: %d", n)
	}
}

func TestInitDelete(t *testing.T) {
	r := newRepos(t)
	ctx := testCtx(t)
	if err := r.Init(ctx, 5, "develop"); err != nil {
		t.Fatal(err)
	}
	if err := r.Init(ctx, 5, "develop"); err != nil {
		t.Fatalf("second Init: %v", err)
	}
	if def, err := r.DefaultBranch(ctx, 5); err != nil || def != "develop" {
		t.Fatalf("default %q %v", def, err)
	}
	out, err := r.run(ctx, r.Path(5), gitOpts{}, "config", "--get", "http.receivepack")
	if err != nil || strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("http.receivepack = %q %v", out, err)
	}
	if out, _ := r.run(ctx, r.Path(5), gitOpts{}, "rev-parse", "--is-bare-repository"); strings.TrimSpace(string(out)) != "true" {
		t.Fatalf("not bare: %q", out)
	}
	if brs, err := r.Branches(ctx, 5); err != nil || len(brs) != 0 {
		t.Fatalf("empty repo branches %v %v", brs, err)
	}
	// Fast path: a configured repository does not need the project lock
	// (e.g. a push in progress); changing the default branch does.
	unlock, err := r.lock(ctx, 5)
	if err != nil {
		t.Fatal(err)
	}
	if err := r.Init(ctx, 5, "develop"); err != nil {
		t.Fatalf("fast-path Init: %v", err)
	}
	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	if err := r.Init(short, 5, "main"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Init with a new default branch while locked: %v", err)
	}
	cancel()
	unlock()
	if err := r.Init(ctx, 5, "main"); err != nil {
		t.Fatal(err)
	}
	if def, _ := r.DefaultBranch(ctx, 5); def != "main" {
		t.Fatalf("default %q", def)
	}
	if err := r.Init(ctx, 6, "bad..name"); !errors.Is(err, ErrInvalidRef) {
		t.Fatalf("Init bad branch: %v", err)
	}
	if err := r.Init(ctx, 0, "main"); err == nil {
		t.Fatal("Init(0) succeeded")
	}
	// Concurrent Init of one project.
	errs := make(chan error, 8)
	for i := 0; i < 8; i++ {
		go func() { errs <- r.Init(ctx, 9, "main") }()
	}
	for i := 0; i < 8; i++ {
		if err := <-errs; err != nil {
			t.Fatalf("concurrent Init: %v", err)
		}
	}
	mustCommit(t, r, 9, commitReq("main", "m", create("x", "x")))
	if err := r.Delete(ctx, 9); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(r.Path(9)); !os.IsNotExist(err) {
		t.Fatalf("repository still present: %v", err)
	}
	if err := r.Delete(ctx, 9); err != nil {
		t.Fatalf("Delete missing: %v", err)
	}
	if _, err := r.Branches(ctx, 9); !errors.Is(err, ErrRepoNotFound) {
		t.Fatalf("Branches after delete: %v", err)
	}
	entries, _ := os.ReadDir(r.Root)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".") {
			t.Fatalf("leftover temp dir %s", e.Name())
		}
	}
}
