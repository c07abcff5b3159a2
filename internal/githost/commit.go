package githost

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// Commit actions, as in GitLab's Commits API.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
	ActionMove   = "move"
	ActionChmod  = "chmod"
)

// Action is one file operation of a commit.
//
//   - create: FilePath must not exist (nor be a directory, nor lie below an
//     existing file); mode 100644, or 100755 if ExecuteFilemode is true.
//   - update: FilePath must exist; its mode is kept unless ExecuteFilemode is
//     set.
//   - delete: FilePath must exist.
//   - move: PreviousPath must exist and FilePath must not (FilePath ==
//     PreviousPath is allowed and acts as an update). A nil Content keeps the
//     old content; a non-nil one (even empty) replaces it. Mode is kept
//     unless ExecuteFilemode is set.
//   - chmod: FilePath must exist as a regular file; ExecuteFilemode is
//     required.
type Action struct {
	Action          string
	FilePath        string
	PreviousPath    string
	Content         []byte
	ExecuteFilemode *bool
}

// CommitRequest describes a commit made without a working tree.
//
// Branch is the target branch. If it exists, the commit's parent is its
// tip, and StartBranch/StartSHA must be empty or name the branch itself
// (otherwise ErrBranchExists, unless Force). If it does not exist, StartSHA
// or else StartBranch gives the parent (ErrRefNotFound/ErrBranchMissing
// when they do not exist); a repository without any branch takes a root
// commit (StartBranch is then ignored); a non-empty repository without a
// start point yields ErrBranchMissing. With Force, an existing Branch is overwritten with a
// commit on top of the start point (GitLab's force=true).
type CommitRequest struct {
	Branch      string
	StartBranch string
	StartSHA    string
	Force       bool
	Message     string
	AuthorName  string
	AuthorEmail string
	Actions     []Action
	// Now is the author and committer date (with its zone offset); zero
	// means time.Now().
	Now time.Time
}

// CommitResult is the outcome of CommitFiles. Update is the branch update
// that was applied; the caller is responsible for reacting to it (e.g.
// creating a pipeline) — CommitFiles does not call any PushHook.
type CommitResult struct {
	SHA    string
	Update RefUpdate
}

// testHookBeforeUpdateRef, when set by tests, runs between building a
// commit and the compare-and-swap of the branch.
var testHookBeforeUpdateRef func(dir, ref string)

type treeEntry struct{ mode, sha string }

// treeState is the flat file list of a tree being edited.
type treeState struct {
	files   map[string]treeEntry
	dirs    map[string]int // directory → number of files below it
	touched map[string]bool
}

func parentDirs(p string) []string {
	var ds []string
	for {
		i := strings.LastIndexByte(p, '/')
		if i < 0 {
			return ds
		}
		p = p[:i]
		ds = append(ds, p)
	}
}

func (t *treeState) add(p string, e treeEntry) {
	if _, ok := t.files[p]; !ok {
		for _, d := range parentDirs(p) {
			t.dirs[d]++
		}
	}
	t.files[p] = e
	t.touched[p] = true
}

func (t *treeState) remove(p string) {
	if _, ok := t.files[p]; !ok {
		return
	}
	delete(t.files, p)
	for _, d := range parentDirs(p) {
		if t.dirs[d]--; t.dirs[d] <= 0 {
			delete(t.dirs, d)
		}
	}
	t.touched[p] = true
}

func (t *treeState) checkCreate(p string) error {
	if _, ok := t.files[p]; ok {
		return fmt.Errorf("%w: %s", ErrFileExists, p)
	}
	if t.dirs[p] > 0 {
		return fmt.Errorf("%w: a directory named %s already exists", ErrFileExists, p)
	}
	for _, d := range parentDirs(p) {
		if _, ok := t.files[d]; ok {
			return fmt.Errorf("%w: %s is a file, cannot create %s below it", ErrFileExists, d, p)
		}
	}
	return nil
}

func isRegularMode(m string) bool { return m == "100644" || m == "100755" }

func applyMode(mode string, exec *bool) string {
	if exec == nil || !isRegularMode(mode) {
		return mode
	}
	if *exec {
		return "100755"
	}
	return "100644"
}

// sanitizeIdent removes characters git does not allow in identities.
func sanitizeIdent(s string) string {
	s = strings.Map(func(r rune) rune {
		switch r {
		case '<', '>', '\n', '\r', 0:
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(s)
}

// CommitFiles creates a commit applying req.Actions and moves req.Branch to
// it with a compare-and-swap. It never calls the PushHook; the returned
// Update describes the ref change for the caller. Errors wrap
// ErrInvalidRef, ErrInvalidPath, ErrInvalidAction, ErrInvalidCommit,
// ErrEmptyCommit, ErrFileExists, ErrFileMissing, ErrBranchMissing,
// ErrBranchExists, ErrRefNotFound or ErrConflict (the branch changed under
// us — only possible through writers that bypass the project lock, since
// commits and pushes to one project are serialised across processes).
func (r *Repos) CommitFiles(ctx context.Context, projectID int64, req CommitRequest) (*CommitResult, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	if !validRefName(req.Branch) {
		return nil, fmt.Errorf("%w: branch %q", ErrInvalidRef, truncate(req.Branch, 200))
	}
	if req.StartBranch != "" && !validRefName(req.StartBranch) {
		return nil, fmt.Errorf("%w: start branch %q", ErrInvalidRef, truncate(req.StartBranch, 200))
	}
	if req.StartSHA != "" && !(len(req.StartSHA) >= 4 && len(req.StartSHA) <= 64 && isHex(req.StartSHA)) {
		return nil, fmt.Errorf("%w: start sha %q", ErrInvalidRef, truncate(req.StartSHA, 200))
	}
	if strings.TrimSpace(req.Message) == "" || strings.IndexByte(req.Message, 0) >= 0 {
		return nil, fmt.Errorf("%w: commit message is empty or contains NUL", ErrInvalidCommit)
	}
	authorName, authorEmail := sanitizeIdent(req.AuthorName), sanitizeIdent(req.AuthorEmail)
	if authorName == "" || authorEmail == "" {
		return nil, fmt.Errorf("%w: author name and email are required", ErrInvalidCommit)
	}
	if len(req.Actions) == 0 {
		return nil, ErrEmptyCommit
	}
	now := req.Now
	if now.IsZero() {
		now = time.Now()
	}

	// Validate actions and write their blobs before taking the lock.
	blobs := make([]string, len(req.Actions))
	for i, a := range req.Actions {
		if err := ValidatePath(a.FilePath); err != nil {
			return nil, fmt.Errorf("action %d: %w", i, err)
		}
		needContent := false
		switch a.Action {
		case ActionCreate, ActionUpdate:
			needContent = true
		case ActionDelete:
		case ActionMove:
			if a.PreviousPath == "" {
				return nil, fmt.Errorf("%w: action %d: move requires previous_path", ErrInvalidAction, i)
			}
			if err := ValidatePath(a.PreviousPath); err != nil {
				return nil, fmt.Errorf("action %d: %w", i, err)
			}
			needContent = a.Content != nil
		case ActionChmod:
			if a.ExecuteFilemode == nil {
				return nil, fmt.Errorf("%w: action %d: chmod requires execute_filemode", ErrInvalidAction, i)
			}
		default:
			return nil, fmt.Errorf("%w: action %d: unknown action %q", ErrInvalidAction, i, truncate(a.Action, 50))
		}
		if needContent {
			out, err := r.run(ctx, dir, gitOpts{stdin: bytes.NewReader(a.Content)}, "hash-object", "-w", "--no-filters", "--stdin")
			if err != nil {
				return nil, err
			}
			blobs[i] = strings.TrimSpace(string(out))
		}
	}

	unlock, err := r.lock(ctx, projectID)
	if err != nil {
		return nil, err
	}
	defer unlock()
	// Another process may have deleted the repository while we waited.
	if _, err := r.repo(projectID); err != nil {
		return nil, err
	}

	ref := "refs/heads/" + req.Branch
	heads, err := r.snapshot(ctx, dir, "refs/heads/")
	if err != nil {
		return nil, err
	}
	cur, exists := heads[ref]
	differentStart := (req.StartBranch != "" && req.StartBranch != req.Branch) || req.StartSHA != ""
	var parent string
	switch {
	case exists && !differentStart:
		parent = cur
	case exists && !req.Force:
		return nil, fmt.Errorf("%w: %s (use it without a start branch/sha, or force)", ErrBranchExists, req.Branch)
	case req.StartSHA != "":
		if parent, err = r.resolve(ctx, dir, strings.ToLower(req.StartSHA)); err != nil {
			return nil, fmt.Errorf("start sha: %w", err)
		}
	case len(heads) == 0:
		// Empty repository: root commit (a start branch cannot exist
		// yet and is ignored, as GitLab does).
	case req.StartBranch != "":
		var ok bool
		if parent, ok = heads["refs/heads/"+req.StartBranch]; !ok {
			return nil, fmt.Errorf("%w: start branch %s", ErrBranchMissing, req.StartBranch)
		}
	default:
		return nil, fmt.Errorf("%w: %s", ErrBranchMissing, req.Branch)
	}
	old := ZeroSHA
	if exists {
		old = cur
	}

	ts := &treeState{files: map[string]treeEntry{}, dirs: map[string]int{}, touched: map[string]bool{}}
	if parent != "" {
		out, err := r.run(ctx, dir, gitOpts{limit: MaxListingSize}, "ls-tree", "-r", "-z", "--full-tree", parent)
		if err != nil {
			return nil, err
		}
		for _, rec := range splitNUL(out) {
			meta, name, ok := strings.Cut(rec, "\t")
			f := strings.Fields(meta)
			if !ok || len(f) != 3 {
				return nil, fmt.Errorf("githost: unexpected ls-tree output %q", truncate(rec, 200))
			}
			ts.add(name, treeEntry{mode: f[0], sha: f[2]})
		}
		ts.touched = map[string]bool{}
	}

	for i, a := range req.Actions {
		p := a.FilePath
		e, ok := ts.files[p]
		switch a.Action {
		case ActionCreate:
			if err := ts.checkCreate(p); err != nil {
				return nil, err
			}
			mode := "100644"
			if a.ExecuteFilemode != nil && *a.ExecuteFilemode {
				mode = "100755"
			}
			ts.add(p, treeEntry{mode: mode, sha: blobs[i]})
		case ActionUpdate:
			if !ok {
				return nil, fmt.Errorf("%w: %s", ErrFileMissing, p)
			}
			if e.mode == "160000" {
				return nil, fmt.Errorf("%w: %s is a submodule", ErrInvalidAction, p)
			}
			ts.add(p, treeEntry{mode: applyMode(e.mode, a.ExecuteFilemode), sha: blobs[i]})
		case ActionDelete:
			if !ok {
				return nil, fmt.Errorf("%w: %s", ErrFileMissing, p)
			}
			ts.remove(p)
		case ActionMove:
			pe, ok := ts.files[a.PreviousPath]
			if !ok {
				return nil, fmt.Errorf("%w: %s", ErrFileMissing, a.PreviousPath)
			}
			ts.remove(a.PreviousPath)
			if err := ts.checkCreate(p); err != nil {
				return nil, err
			}
			sha := pe.sha
			if a.Content != nil {
				if pe.mode == "160000" {
					return nil, fmt.Errorf("%w: %s is a submodule", ErrInvalidAction, a.PreviousPath)
				}
				sha = blobs[i]
			}
			ts.add(p, treeEntry{mode: applyMode(pe.mode, a.ExecuteFilemode), sha: sha})
		case ActionChmod:
			if !ok {
				return nil, fmt.Errorf("%w: %s", ErrFileMissing, p)
			}
			if !isRegularMode(e.mode) {
				return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalidAction, p)
			}
			ts.add(p, treeEntry{mode: applyMode(e.mode, a.ExecuteFilemode), sha: e.sha})
		}
	}

	tree, err := r.writeTree(ctx, dir, parent, ts)
	if err != nil {
		return nil, err
	}

	args := []string{"commit-tree", tree}
	if parent != "" {
		args = append(args, "-p", parent)
	}
	date := fmt.Sprintf("%d %s", now.Unix(), now.Format("-0700"))
	out, err := r.run(ctx, dir, gitOpts{
		stdin: strings.NewReader(req.Message),
		env: []string{
			"GIT_AUTHOR_NAME=" + authorName, "GIT_AUTHOR_EMAIL=" + authorEmail, "GIT_AUTHOR_DATE=" + date,
			"GIT_COMMITTER_NAME=" + authorName, "GIT_COMMITTER_EMAIL=" + authorEmail, "GIT_COMMITTER_DATE=" + date,
		},
	}, args...)
	if err != nil {
		return nil, err
	}
	sha := strings.TrimSpace(string(out))
	if !isSHA(sha) {
		return nil, fmt.Errorf("githost: commit-tree printed %q", truncate(sha, 100))
	}

	if testHookBeforeUpdateRef != nil {
		testHookBeforeUpdateRef(dir, ref)
	}
	_, err = r.run(ctx, dir, gitOpts{env: []string{
		"GIT_COMMITTER_NAME=" + authorName, "GIT_COMMITTER_EMAIL=" + authorEmail,
	}}, "update-ref", "-m", "gantry: commit files", ref, sha, old)
	if err != nil {
		after, serr := r.snapshot(ctx, dir, "refs/heads/")
		if serr == nil {
			got, ok := after[ref]
			if (!ok && old != ZeroSHA) || (ok && got != old) {
				return nil, fmt.Errorf("%w: %s moved", ErrConflict, req.Branch)
			}
		}
		return nil, err
	}
	return &CommitResult{SHA: sha, Update: RefUpdate{Ref: ref, Before: old, After: sha}}, nil
}

// writeTree builds the tree for ts with a temporary index: the parent tree
// is read, touched paths are removed or (re)added, and the index is
// written out as a tree.
func (r *Repos) writeTree(ctx context.Context, dir, parent string, ts *treeState) (string, error) {
	tmp, err := os.MkdirTemp("", "gantry-index-")
	if err != nil {
		return "", fmt.Errorf("githost: temp index: %w", err)
	}
	defer os.RemoveAll(tmp)
	env := []string{"GIT_INDEX_FILE=" + filepath.Join(tmp, "index")}
	if parent != "" {
		_, err = r.run(ctx, dir, gitOpts{env: env}, "read-tree", parent)
	} else {
		_, err = r.run(ctx, dir, gitOpts{env: env}, "read-tree", "--empty")
	}
	if err != nil {
		return "", err
	}
	paths := make([]string, 0, len(ts.touched))
	for p := range ts.touched {
		paths = append(paths, p)
	}
	sort.Strings(paths)
	var info bytes.Buffer
	// Removals first, so that a file may replace a directory (and vice
	// versa) in the same commit.
	for _, p := range paths {
		if _, ok := ts.files[p]; !ok {
			fmt.Fprintf(&info, "0 %s\t%s\x00", ZeroSHA, p)
		}
	}
	for _, p := range paths {
		if e, ok := ts.files[p]; ok {
			fmt.Fprintf(&info, "%s %s\t%s\x00", e.mode, e.sha, p)
		}
	}
	if info.Len() > 0 {
		if _, err := r.run(ctx, dir, gitOpts{env: env, stdin: &info}, "update-index", "-z", "--index-info"); err != nil {
			return "", err
		}
	}
	out, err := r.run(ctx, dir, gitOpts{env: env}, "write-tree")
	if err != nil {
		return "", err
	}
	tree := strings.TrimSpace(string(out))
	if !isSHA(tree) {
		return "", fmt.Errorf("githost: write-tree printed %q", truncate(tree, 100))
	}
	return tree, nil
}
