package githost

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"gantry/internal/ci"
	"io"
	"os/exec"
	"path"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ResolveRef resolves ref to a full commit SHA. ref may be a branch name, a
// tag name (annotated tags are peeled to their commit), a full ref
// ("refs/..."), "HEAD", or a full or abbreviated (>= 4 hex digits) commit
// SHA. Branches take precedence over tags of the same name, and both over a
// hex SHA. Unknown refs yield ErrRefNotFound; syntactically invalid ones
// (revision expressions such as "main~1" are not accepted) ErrInvalidRef.
func (r *Repos) ResolveRef(ctx context.Context, projectID int64, ref string) (string, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return "", err
	}
	return r.resolve(ctx, dir, ref)
}

func (r *Repos) resolve(ctx context.Context, dir, ref string) (string, error) {
	var cands []string
	switch {
	case ref == "HEAD":
		cands = []string{"HEAD"}
	case strings.HasPrefix(ref, "refs/"):
		if validFullRef(ref) {
			cands = []string{ref}
		}
	case validRefName(ref):
		cands = []string{"refs/heads/" + ref, "refs/tags/" + ref}
	}
	if len(ref) >= 4 && len(ref) <= 64 && isHex(ref) {
		cands = append(cands, strings.ToLower(ref))
	}
	if len(cands) == 0 {
		return "", fmt.Errorf("%w: %q", ErrInvalidRef, truncate(ref, 200))
	}
	var in bytes.Buffer
	for _, c := range cands {
		in.WriteString(c + "^{commit}\n")
	}
	out, err := r.run(ctx, dir, gitOpts{stdin: &in}, "cat-file", "--batch-check=%(objectname)")
	if err != nil {
		return "", err
	}
	for _, line := range strings.Split(strings.TrimRight(string(out), "\n"), "\n") {
		if isSHA(line) {
			return line, nil
		}
	}
	return "", fmt.Errorf("%w: %q", ErrRefNotFound, truncate(ref, 200))
}

// commitish returns a full SHA for rev: a full SHA is used as is (after
// checking the object exists as a commit), anything else goes through
// ResolveRef's rules.
func (r *Repos) commitish(ctx context.Context, dir, rev string) (string, error) {
	return r.resolve(ctx, dir, rev)
}

// FileInfo describes a tree entry.
type FileInfo struct {
	Path       string
	Mode       string // git mode: "100644", "100755", "120000" (symlink), "160000" (submodule)
	BlobID     string
	Size       int64
	Executable bool
}

// StatFile returns the tree entry of path in commit rev (a SHA or any ref
// ResolveRef accepts). Directories, submodules and missing paths yield
// ErrFileMissing.
func (r *Repos) StatFile(ctx context.Context, projectID int64, rev, filePath string) (*FileInfo, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	return r.statFile(ctx, dir, rev, filePath)
}

func (r *Repos) statFile(ctx context.Context, dir, rev, filePath string) (*FileInfo, error) {
	if err := ValidatePath(filePath); err != nil {
		return nil, err
	}
	sha, err := r.commitish(ctx, dir, rev)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, dir, gitOpts{}, "--literal-pathspecs", "ls-tree", "-l", "-z", "--full-tree", sha, "--", filePath)
	if err != nil {
		return nil, err
	}
	for _, rec := range bytes.Split(out, []byte{0}) {
		meta, name, ok := strings.Cut(string(rec), "\t")
		if !ok || name != filePath {
			continue
		}
		f := strings.Fields(meta)
		if len(f) != 4 || f[1] != "blob" {
			break
		}
		size, _ := strconv.ParseInt(f[3], 10, 64)
		return &FileInfo{Path: name, Mode: f[0], BlobID: f[2], Size: size, Executable: f[0] == "100755"}, nil
	}
	return nil, fmt.Errorf("%w: %s", ErrFileMissing, truncate(filePath, 200))
}

// ReadFile returns the content of path in commit rev (for a symlink, its
// target). Files larger than Repos.MaxFileSize yield ErrTooLarge; missing files,
// directories and submodules ErrFileMissing.
func (r *Repos) ReadFile(ctx context.Context, projectID int64, rev, filePath string) ([]byte, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	fi, err := r.statFile(ctx, dir, rev, filePath)
	if err != nil {
		return nil, err
	}
	limit := r.MaxFileSize
	if limit <= 0 {
		limit = DefaultMaxFileSize
	}
	if fi.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes (limit %d)", ErrTooLarge, truncate(filePath, 200), fi.Size, limit)
	}
	return r.run(ctx, dir, gitOpts{limit: limit}, "cat-file", "blob", fi.BlobID)
}

// LastCommitForPath returns the SHA of the most recent commit reachable
// from rev that touched path (GitLab's last_commit_id), or ErrFileMissing.
func (r *Repos) LastCommitForPath(ctx context.Context, projectID int64, rev, filePath string) (string, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return "", err
	}
	if err := ValidatePath(filePath); err != nil {
		return "", err
	}
	sha, err := r.commitish(ctx, dir, rev)
	if err != nil {
		return "", err
	}
	out, err := r.run(ctx, dir, gitOpts{}, "--literal-pathspecs", "log", "-1", "--format=%H", "--no-show-signature", sha, "--", filePath)
	if err != nil {
		return "", err
	}
	s := strings.TrimSpace(string(out))
	if !isSHA(s) {
		return "", fmt.Errorf("%w: %s", ErrFileMissing, truncate(filePath, 200))
	}
	return s, nil
}

var errStop = errors.New("stop")

// stream runs git and hands its stdout to fn. If fn returns errStop the
// command is killed and stream returns nil.
func (r *Repos) stream(ctx context.Context, dir string, fn func(io.Reader) error, args ...string) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.gitBin(), args...)
	cmd.Env = append(r.baseEnv(), "GIT_DIR="+dir, "GIT_NO_REPLACE_OBJECTS=1")
	cmd.Dir = dir
	stderr := &limitBuffer{limit: 64 << 10, truncate: true}
	cmd.Stderr = stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	ferr := fn(stdout)
	if ferr != nil {
		cancel()
	}
	io.Copy(io.Discard, stdout)
	werr := cmd.Wait()
	if ferr == errStop {
		return nil
	}
	if ferr != nil {
		return ferr
	}
	if werr != nil {
		ge := &GitError{Args: args, ExitCode: -1, Stderr: stderr.buf.String(), Err: werr}
		var ee *exec.ExitError
		if errors.As(werr, &ee) {
			ge.ExitCode = ee.ExitCode()
		}
		return ge
	}
	return nil
}

// scanNUL splits NUL-terminated records, refusing records longer than
// 64 KiB.
func scanNUL(rd io.Reader, fn func(rec string) error) error {
	sc := bufio.NewScanner(rd)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	sc.Split(func(data []byte, atEOF bool) (int, []byte, error) {
		if i := bytes.IndexByte(data, 0); i >= 0 {
			return i + 1, data[:i], nil
		}
		if atEOF && len(data) > 0 {
			return len(data), data, nil
		}
		return 0, nil, nil
	})
	for sc.Scan() {
		if err := fn(sc.Text()); err != nil {
			return err
		}
	}
	return sc.Err()
}

// Exists reports whether any file in commit rev matches glob (see
// MatchGlob), as used by GitLab's rules:exists. The tree listing is
// streamed and stops at the first match.
func (r *Repos) Exists(ctx context.Context, projectID int64, rev, glob string) (bool, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return false, err
	}
	sha, err := r.commitish(ctx, dir, rev)
	if err != nil {
		return false, err
	}
	pats := expandBraces(glob)
	found := false
	err = r.stream(ctx, dir, func(rd io.Reader) error {
		return scanNUL(rd, func(name string) error {
			for _, p := range pats {
				if matchSegments(p, name) {
					found = true
					return errStop
				}
			}
			return nil
		})
	}, "ls-tree", "-r", "-z", "--name-only", "--full-tree", sha)
	return found, err
}

// ListFiles returns every file path in commit rev (ls-tree -r), bounded by
// MaxListingSize.
func (r *Repos) ListFiles(ctx context.Context, projectID int64, rev string) ([]string, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	sha, err := r.commitish(ctx, dir, rev)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, dir, gitOpts{limit: MaxListingSize}, "ls-tree", "-r", "-z", "--name-only", "--full-tree", sha)
	if err != nil {
		return nil, err
	}
	return splitNUL(out), nil
}

func splitNUL(b []byte) []string {
	var res []string
	for _, rec := range bytes.Split(b, []byte{0}) {
		if len(rec) > 0 {
			res = append(res, string(rec))
		}
	}
	return res
}

// ChangedPaths lists the files that differ between commits before and
// after (git diff-tree -r --name-only --no-renames: a rename lists both
// paths), sorted. A zero or empty before (branch creation) or after (branch
// deletion) yields nil.
func (r *Repos) ChangedPaths(ctx context.Context, projectID int64, before, after string) ([]string, error) {
	if IsZeroSHA(before) || IsZeroSHA(after) {
		return nil, nil
	}
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	b, err := r.commitish(ctx, dir, before)
	if err != nil {
		return nil, err
	}
	a, err := r.commitish(ctx, dir, after)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, dir, gitOpts{limit: MaxListingSize}, "diff-tree", "-r", "-z", "--name-only", "--no-renames", "--no-commit-id", b, a)
	if err != nil {
		return nil, err
	}
	paths := splitNUL(out)
	sort.Strings(paths)
	return paths, nil
}

// CommitInfo describes a commit. Dates keep the commit's own UTC offset.
type CommitInfo struct {
	SHA            string
	TreeID         string
	ParentIDs      []string
	Title          string // first line of the message, shortened like GitLab's Commit#title
	Message        string // full raw message
	AuthorName     string
	AuthorEmail    string
	AuthoredDate   time.Time
	CommitterName  string
	CommitterEmail string
	CommittedDate  time.Time
}

// Domain converts the commit to the domain's record.
func (c *CommitInfo) Domain() ci.Commit {
	return ci.Commit{SHA: c.SHA, ParentIDs: c.ParentIDs, Title: c.Title, Message: c.Message, AuthorName: c.AuthorName,
		AuthorEmail: c.AuthorEmail, AuthoredDate: c.AuthoredDate, CommitterName: c.CommitterName, CommitterEmail: c.CommitterEmail,
		CommittedDate: c.CommittedDate}
}

// Commit returns the commit named by rev (a SHA or any ref ResolveRef
// accepts).
func (r *Repos) Commit(ctx context.Context, projectID int64, rev string) (*CommitInfo, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	sha, err := r.commitish(ctx, dir, rev)
	if err != nil {
		return nil, err
	}
	out, err := r.run(ctx, dir, gitOpts{}, "cat-file", "commit", sha)
	if err != nil {
		return nil, err
	}
	return parseCommit(sha, out)
}

func parseCommit(sha string, raw []byte) (*CommitInfo, error) {
	ci := &CommitInfo{SHA: sha, ParentIDs: []string{}}
	hdr, msg, _ := bytes.Cut(raw, []byte("\n\n"))
	for _, line := range strings.Split(string(hdr), "\n") {
		key, val, _ := strings.Cut(line, " ")
		switch key {
		case "tree":
			ci.TreeID = val
		case "parent":
			ci.ParentIDs = append(ci.ParentIDs, val)
		case "author":
			ci.AuthorName, ci.AuthorEmail, ci.AuthoredDate = parseIdent(val)
		case "committer":
			ci.CommitterName, ci.CommitterEmail, ci.CommittedDate = parseIdent(val)
		}
	}
	if ci.TreeID == "" {
		return nil, fmt.Errorf("githost: malformed commit %s", sha)
	}
	ci.Message = string(msg)
	ci.Title = commitTitle(ci.Message)
	return ci, nil
}

// parseIdent parses "Name <email> 1700000000 +0200".
func parseIdent(s string) (name, email string, when time.Time) {
	lt := strings.IndexByte(s, '<')
	gt := strings.LastIndexByte(s, '>')
	if lt < 0 || gt < lt {
		return strings.TrimSpace(s), "", time.Time{}
	}
	name = strings.TrimSpace(s[:lt])
	email = s[lt+1 : gt]
	f := strings.Fields(s[gt+1:])
	if len(f) >= 1 {
		sec, err := strconv.ParseInt(f[0], 10, 64)
		if err == nil {
			loc := time.UTC
			if len(f) >= 2 && len(f[1]) == 5 && (f[1][0] == '+' || f[1][0] == '-') {
				hh, e1 := strconv.Atoi(f[1][1:3])
				mm, e2 := strconv.Atoi(f[1][3:5])
				if e1 == nil && e2 == nil {
					off := hh*3600 + mm*60
					if f[1][0] == '-' {
						off = -off
					}
					loc = time.FixedZone("", off)
				}
			}
			when = time.Unix(sec, 0).In(loc)
		}
	}
	return name, email, when
}

// commitTitle mirrors GitLab's Commit#title: the first line of the message,
// truncated at a word boundary to at most 80 characters plus "…" when it is
// 100 characters or longer.
func commitTitle(msg string) string {
	line, _, _ := strings.Cut(strings.TrimLeft(msg, "\n"), "\n")
	line = strings.TrimRight(line, "\r")
	runes := []rune(line)
	if len(runes) < 100 {
		return line
	}
	stop := 80
	for i := stop; i > 0; i-- {
		if runes[i] == ' ' {
			return string(runes[:i]) + "…"
		}
	}
	return string(runes[:stop]) + "…"
}

// Branch is a branch head.
type Branch struct {
	Name    string
	SHA     string
	Default bool
}

// Branches lists the repository's branches sorted by name; Default marks
// the branch HEAD points to.
func (r *Repos) Branches(ctx context.Context, projectID int64) ([]Branch, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return nil, err
	}
	def, err := r.defaultBranch(ctx, dir)
	if err != nil {
		return nil, err
	}
	refs, err := r.snapshot(ctx, dir, "refs/heads/")
	if err != nil {
		return nil, err
	}
	res := make([]Branch, 0, len(refs))
	for ref, sha := range refs {
		name := strings.TrimPrefix(ref, "refs/heads/")
		res = append(res, Branch{Name: name, SHA: sha, Default: name == def})
	}
	sort.Slice(res, func(i, j int) bool { return res[i].Name < res[j].Name })
	return res, nil
}

// DefaultBranch returns the branch HEAD points to (it may not exist yet in
// an empty repository).
func (r *Repos) DefaultBranch(ctx context.Context, projectID int64) (string, error) {
	dir, err := r.repo(projectID)
	if err != nil {
		return "", err
	}
	return r.defaultBranch(ctx, dir)
}

func (r *Repos) defaultBranch(ctx context.Context, dir string) (string, error) {
	out, err := r.run(ctx, dir, gitOpts{}, "symbolic-ref", "-q", "HEAD")
	if err != nil {
		if exitCode(err) == 1 { // detached HEAD
			return "", nil
		}
		return "", err
	}
	return strings.TrimPrefix(strings.TrimSpace(string(out)), "refs/heads/"), nil
}

// snapshot returns ref → object name for all refs under prefix (all refs
// if prefix is empty).
func (r *Repos) snapshot(ctx context.Context, dir, prefix string) (map[string]string, error) {
	args := []string{"for-each-ref", "--format=%(objectname) %(refname)"}
	if prefix != "" {
		args = append(args, prefix)
	}
	out, err := r.run(ctx, dir, gitOpts{limit: MaxListingSize}, args...)
	if err != nil {
		return nil, err
	}
	refs := make(map[string]string)
	for _, line := range strings.Split(string(out), "\n") {
		sha, ref, ok := strings.Cut(line, " ")
		if ok {
			refs[ref] = sha
		}
	}
	return refs, nil
}

// diffRefs returns one RefUpdate per ref created, moved or deleted between
// two snapshots, sorted by ref name.
func diffRefs(before, after map[string]string) []RefUpdate {
	var ups []RefUpdate
	for ref, old := range before {
		if cur, ok := after[ref]; !ok {
			ups = append(ups, RefUpdate{Ref: ref, Before: old, After: ZeroSHA})
		} else if cur != old {
			ups = append(ups, RefUpdate{Ref: ref, Before: old, After: cur})
		}
	}
	for ref, cur := range after {
		if _, ok := before[ref]; !ok {
			ups = append(ups, RefUpdate{Ref: ref, Before: ZeroSHA, After: cur})
		}
	}
	sort.Slice(ups, func(i, j int) bool { return ups[i].Ref < ups[j].Ref })
	return ups
}

// MatchGlob reports whether file path name matches pattern with the
// semantics of Ruby's File.fnmatch(pattern, name, FNM_PATHNAME|FNM_DOTMATCH|
// FNM_EXTGLOB), which GitLab uses for rules:exists and rules:changes:
// "*" and "?" do not cross "/", "**/" matches zero or more directories, "**"
// not followed by "/" acts like "*", "[...]" character classes, "{a,b}"
// alternatives, and dotfiles are matched by wildcards.
func MatchGlob(pattern, name string) bool {
	for _, p := range expandBraces(pattern) {
		if matchSegments(p, name) {
			return true
		}
	}
	return false
}

func matchSegments(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" && len(pat) > 1 {
			rest := pat[1:]
			for i := 0; i <= len(name); i++ {
				if matchSegs(rest, name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		ok, err := path.Match(pat[0], name[0])
		if err != nil || !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

// expandBraces expands "{a,b}" alternatives (nested allowed, "\" escapes),
// producing at most 1024 patterns.
func expandBraces(p string) []string {
	const maxExpansions = 1024
	start, depth := -1, 0
	var commas []int
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '\\':
			i++
		case '{':
			if depth == 0 {
				start = i
				commas = commas[:0]
			}
			depth++
		case ',':
			if depth == 1 {
				commas = append(commas, i)
			}
		case '}':
			if depth == 0 {
				continue
			}
			depth--
			if depth == 0 {
				prefix, suffix := p[:start], p[i+1:]
				var alts []string
				prev := start + 1
				for _, c := range commas {
					alts = append(alts, p[prev:c])
					prev = c + 1
				}
				alts = append(alts, p[prev:i])
				var res []string
				for _, a := range alts {
					for _, e := range expandBraces(prefix + a + suffix) {
						if len(res) >= maxExpansions {
							return res
						}
						res = append(res, e)
					}
				}
				return res
			}
		}
	}
	return []string{p}
}
