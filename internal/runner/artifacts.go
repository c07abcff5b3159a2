package runner

import (
	"archive/zip"
	"compress/gzip"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ---- collecting files -----------------------------------------------------

type archiveEntry struct {
	rel  string // slash-separated, relative to the project dir
	abs  string
	info fs.FileInfo
}

// matchGlob matches a slash-separated name against a pattern where "**"
// matches any number of path segments (including none) and the other
// segments use path.Match syntax.
func matchGlob(pattern, name string) bool {
	return matchSegs(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegs(pat, segs []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for len(pat) > 1 && pat[1] == "**" {
				pat = pat[1:]
			}
			if len(pat) == 1 {
				return true
			}
			for i := 0; i <= len(segs); i++ {
				if matchSegs(pat[1:], segs[i:]) {
					return true
				}
			}
			return false
		}
		if len(segs) == 0 {
			return false
		}
		if ok, err := path.Match(pat[0], segs[0]); err != nil || !ok {
			return false
		}
		pat, segs = pat[1:], segs[1:]
	}
	return len(segs) == 0
}

func hasMeta(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// relPattern turns an artifact path into a clean pattern relative to root,
// or "" if it points outside root.
func relPattern(root, p string) string {
	p = filepath.ToSlash(strings.TrimSpace(p))
	if p == "" {
		return ""
	}
	if path.IsAbs(p) {
		r := filepath.ToSlash(root)
		if p != r && !strings.HasPrefix(p, r+"/") {
			return ""
		}
		p = strings.TrimPrefix(strings.TrimPrefix(p, r), "/")
		if p == "" {
			p = "."
		}
	}
	p = path.Clean(p)
	if p == ".." || strings.HasPrefix(p, "../") {
		return ""
	}
	return p
}

type fileCollector struct {
	root     string
	excludes []string
	seen     map[string]bool
	entries  []archiveEntry
}

func (c *fileCollector) excluded(rel string) bool {
	for _, ex := range c.excludes {
		for r := rel; r != "." && r != ""; r = path.Dir(r) {
			if matchGlob(ex, r) {
				return true
			}
		}
	}
	return false
}

func (c *fileCollector) add(rel string, info fs.FileInfo) int {
	if rel == "." || c.seen[rel] || c.excluded(rel) {
		return 0
	}
	c.seen[rel] = true
	c.entries = append(c.entries, archiveEntry{rel: rel, abs: filepath.Join(c.root, filepath.FromSlash(rel)), info: info})
	return 1
}

// addTree adds rel and, for directories, everything below it.
func (c *fileCollector) addTree(rel string) int {
	n := 0
	start := filepath.Join(c.root, filepath.FromSlash(rel))
	_ = filepath.WalkDir(start, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		r, err := filepath.Rel(c.root, p)
		if err != nil {
			return nil
		}
		r = filepath.ToSlash(r)
		if c.excluded(r) {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		n += c.add(r, info)
		return nil
	})
	return n
}

// collectFiles resolves artifact paths (with globs) into archive entries.
func collectFiles(root string, paths, excludes []string, warn func(string, ...any), info func(string, ...any)) []archiveEntry {
	c := &fileCollector{root: root, seen: map[string]bool{}}
	for _, ex := range excludes {
		if p := relPattern(root, ex); p != "" {
			c.excludes = append(c.excludes, p)
		}
	}
	for _, raw := range paths {
		p := relPattern(root, raw)
		if p == "" {
			warn("%s: artifact path is not a subpath of project directory: %s", raw, root)
			continue
		}
		n := 0
		if hasMeta(p) {
			// walk from the longest literal prefix
			segs := strings.Split(p, "/")
			i := 0
			for i < len(segs) && !hasMeta(segs[i]) {
				i++
			}
			base := path.Join(segs[:i]...)
			if base == "" {
				base = "."
			}
			_ = filepath.WalkDir(filepath.Join(root, filepath.FromSlash(base)), func(fp string, d fs.DirEntry, err error) error {
				if err != nil {
					return nil
				}
				r, _ := filepath.Rel(root, fp)
				r = filepath.ToSlash(r)
				if r == "." || !matchGlob(p, r) {
					return nil
				}
				n += c.addTree(r)
				if d.IsDir() {
					return filepath.SkipDir
				}
				return nil
			})
		} else if _, err := os.Lstat(filepath.Join(root, filepath.FromSlash(p))); err == nil {
			if p == "." {
				n += c.addTree(".")
			} else {
				n += c.addTree(p)
			}
		}
		if n == 0 {
			warn("%s: no matching files. Ensure that the artifact path is relative to the working directory (%s)", raw, root)
		} else {
			info("%s: found %d matching artifact files and directories", raw, n)
		}
	}
	return c.entries
}

// ---- archive writers -------------------------------------------------------

func writeZip(w io.Writer, entries []archiveEntry) error {
	zw := zip.NewWriter(w)
	for _, e := range entries {
		h, err := zip.FileInfoHeader(e.info)
		if err != nil {
			return err
		}
		h.Name = e.rel
		mode := e.info.Mode()
		switch {
		case mode.IsDir():
			h.Name += "/"
			h.Method = zip.Store
			if _, err := zw.CreateHeader(h); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			target, err := os.Readlink(e.abs)
			if err != nil {
				return err
			}
			h.Method = zip.Store
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			if _, err := io.WriteString(fw, target); err != nil {
				return err
			}
		case mode.IsRegular():
			h.Method = zip.Deflate
			fw, err := zw.CreateHeader(h)
			if err != nil {
				return err
			}
			f, err := os.Open(e.abs)
			if err != nil {
				return err
			}
			_, err = io.Copy(fw, f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	return zw.Close()
}

// writeGzip writes one gzip member per regular file (gitlab-runner's gzip format).
func writeGzip(w io.Writer, entries []archiveEntry) error {
	for _, e := range entries {
		if !e.info.Mode().IsRegular() {
			continue
		}
		gw := gzip.NewWriter(w)
		gw.Name = e.rel
		gw.ModTime = e.info.ModTime()
		f, err := os.Open(e.abs)
		if err != nil {
			return err
		}
		_, err = io.Copy(gw, f)
		f.Close()
		if err != nil {
			return err
		}
		if err := gw.Close(); err != nil {
			return err
		}
	}
	return nil
}

// ---- upload ---------------------------------------------------------------

func (j *job) uploadArtifacts(ctx context.Context, success bool) error {
	var todo []jobArtifact
	for _, a := range j.p.Artifacts {
		when := a.When
		if when == "" {
			when = "on_success"
		}
		if when == "always" || when == "on_success" && success || when == "on_failure" && !success {
			todo = append(todo, a)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	t := j.trace
	name, header := "upload_artifacts_on_success", "Uploading artifacts for successful job"
	if !success {
		name, header = "upload_artifacts_on_failure", "Uploading artifacts for failed job"
	}
	t.sectionStart(name, header)
	defer t.sectionEnd(name)
	var firstErr error
	for _, a := range todo {
		if err := j.uploadArtifact(ctx, a); err != nil {
			t.errorf("Uploading artifacts to coordinator... %v", err)
			if firstErr == nil {
				firstErr = err
			}
		}
	}
	return firstErr
}

func (j *job) uploadArtifact(ctx context.Context, a jobArtifact) error {
	t := j.trace
	typ := a.ArtifactType
	if typ == "" {
		typ = "archive"
	}
	format := a.ArtifactFormat
	if format == "" {
		format = "zip"
	}
	if format != "zip" && format != "gzip" && format != "raw" {
		t.warnf("artifact format %q is not supported by this runner; uploading zip", format)
		format = "zip"
	}
	t.printf("Uploading artifacts...")
	entries := collectFiles(j.projectDir, a.Paths, a.Exclude, t.warnf, t.printf)
	if a.Untracked {
		t.warnf("untracked: collecting untracked files is not supported by this runner")
	}
	if len(entries) == 0 {
		t.errorf("No files to upload")
		return nil
	}
	base := a.Name
	if base == "" {
		base = "artifacts"
	}
	var filename string
	var write func(io.Writer) error
	switch format {
	case "zip":
		filename = base + ".zip"
		write = func(w io.Writer) error { return writeZip(w, entries) }
	case "gzip":
		filename = base + ".gz"
		write = func(w io.Writer) error { return writeGzip(w, entries) }
	case "raw":
		var files []archiveEntry
		for _, e := range entries {
			if e.info.Mode().IsRegular() {
				files = append(files, e)
			}
		}
		if len(files) != 1 {
			return fmt.Errorf("raw artifact format needs exactly one file, got %d", len(files))
		}
		filename = path.Base(files[0].rel)
		write = func(w io.Writer) error {
			f, err := os.Open(files[0].abs)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = io.Copy(w, f)
			return err
		}
	}
	q := url.Values{}
	q.Set("artifact_format", format)
	q.Set("artifact_type", typ)
	if a.ExpireIn != "" {
		q.Set("expire_in", a.ExpireIn)
	}
	target := j.r.apiURL(fmt.Sprintf("jobs/%d/artifacts", j.p.ID)) + "?" + q.Encode()
	var lastErr error
	redirects := 0
	for attempt := 1; attempt <= 4; attempt++ {
		code, loc, msg, err := j.postArtifact(ctx, target, filename, write)
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return context.Cause(ctx)
			}
			lastErr = err
		case code == http.StatusCreated || code == http.StatusOK:
			t.printf("Uploading artifacts as %q to coordinator... %d %s  id=%d responseStatus=%d %s", typ, code, http.StatusText(code), j.p.ID, code, http.StatusText(code))
			return nil
		case code == http.StatusTemporaryRedirect && loc != "" && redirects < 3:
			redirects++
			attempt--
			t.warnf("Uploading artifacts as %q to coordinator... redirected to %s", typ, loc)
			target = loc
			continue
		case code == http.StatusForbidden:
			return fmt.Errorf("%d Forbidden (%s)", code, msg)
		case code == http.StatusRequestEntityTooLarge:
			return fmt.Errorf("413 Request Entity Too Large: artifacts too large (%s)", msg)
		case code >= 500:
			lastErr = fmt.Errorf("%d %s (%s)", code, http.StatusText(code), msg)
		default:
			return fmt.Errorf("%d %s (%s)", code, http.StatusText(code), msg)
		}
		if attempt < 4 {
			t.warnf("Uploading artifacts as %q to coordinator... failed: %v; retrying", typ, lastErr)
			if !sleepCtx(ctx, j.r.retryBase<<(attempt-1)) {
				return context.Cause(ctx)
			}
		}
	}
	return lastErr
}

// postArtifact streams one multipart upload (field "file") without holding
// the archive in memory.
func (j *job) postArtifact(ctx context.Context, target, filename string, write func(io.Writer) error) (int, string, string, error) {
	pr, pw := io.Pipe()
	defer pr.Close()
	mw := multipart.NewWriter(pw)
	go func() {
		h := make(textproto.MIMEHeader)
		esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(filename)
		h.Set("Content-Disposition", fmt.Sprintf(`form-data; name="file"; filename="%s"`, esc))
		h.Set("Content-Type", "application/octet-stream")
		part, err := mw.CreatePart(h)
		if err == nil {
			err = write(part)
		}
		if err == nil {
			err = mw.Close()
		}
		pw.CloseWithError(err)
	}()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, pr)
	if err != nil {
		return 0, "", "", err
	}
	req.ContentLength = -1 // chunked
	req.Header.Set("Content-Type", mw.FormDataContentType())
	req.Header.Set("JOB-TOKEN", j.p.Token)
	req.Header.Set("User-Agent", j.r.userAgent())
	resp, err := j.r.client.Do(req)
	if err != nil {
		return 0, "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Location"), errorMessage(body), nil
}

// ---- dependency download ----------------------------------------------------

func (j *job) downloadArtifacts(ctx context.Context) error {
	var deps []jobDep
	for _, d := range j.p.Dependencies {
		if d.ArtifactsFile.Filename != "" {
			deps = append(deps, d)
		}
	}
	if len(deps) == 0 {
		return nil
	}
	t := j.trace
	t.sectionStart("download_artifacts", "Downloading artifacts")
	defer t.sectionEnd("download_artifacts")
	attempts := 1
	if n, err := strconv.Atoi(j.vars["ARTIFACT_DOWNLOAD_ATTEMPTS"]); err == nil && n >= 1 && n <= 10 {
		attempts = n
	}
	for _, d := range deps {
		t.printf("Downloading artifacts for %s (%d)...", d.Name, d.ID)
		var err error
		for i := 0; i < attempts; i++ {
			if i > 0 {
				t.warnf("Retrying artifact download (attempt %d of %d)", i+1, attempts)
				sleepCtx(ctx, j.r.retryBase)
			}
			if err = j.downloadDependency(ctx, d); err == nil || ctx.Err() != nil {
				break
			}
			t.warnf("Downloading artifacts from coordinator... %v  id=%d", err, d.ID)
		}
		if err != nil {
			return fmt.Errorf("downloading artifacts of %s (%d): %w", d.Name, d.ID, err)
		}
	}
	return nil
}

func (j *job) downloadDependency(ctx context.Context, d jobDep) error {
	token := d.Token
	if token == "" {
		token = j.p.Token
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, j.r.apiURL(fmt.Sprintf("jobs/%d/artifacts", d.ID))+"?direct_download=true", nil)
	if err != nil {
		return err
	}
	req.Header.Set("JOB-TOKEN", token)
	req.Header.Set("User-Agent", j.r.userAgent())
	resp, err := j.r.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusUnauthorized, http.StatusForbidden:
		return fmt.Errorf("forbidden (%d)", resp.StatusCode)
	case http.StatusNotFound:
		return errors.New("not found (404)")
	default:
		return fmt.Errorf("unexpected status %s", resp.Status)
	}
	f, err := os.CreateTemp(j.tmpDir, "artifacts-*.zip")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	defer f.Close()
	n, err := io.Copy(f, resp.Body)
	if err != nil {
		return err
	}
	j.trace.printf("Downloading artifacts from coordinator... ok  id=%d responseStatus=%s size=%d", d.ID, resp.Status, n)
	return extractZip(f, n, j.projectDir, j.trace.warnf)
}

func within(root, p string) bool {
	return p == root || strings.HasPrefix(p, root+string(filepath.Separator))
}

// extractZip unpacks a zip into root, skipping entries that would escape it
// (.., absolute paths, symlinks pointing outside, writing through symlinks).
func extractZip(r io.ReaderAt, size int64, root string, warn func(string, ...any)) error {
	zr, err := zip.NewReader(r, size)
	if err != nil {
		return fmt.Errorf("reading artifacts archive: %w", err)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	realRoot, err := filepath.EvalSymlinks(root)
	if err != nil {
		return err
	}
	for _, f := range zr.File {
		name := strings.ReplaceAll(f.Name, `\`, "/")
		clean := path.Clean(name)
		if name == "" || path.IsAbs(name) || clean == ".." || strings.HasPrefix(clean, "../") || filepath.VolumeName(name) != "" {
			warn("%s: skipping archive entry outside the project directory", f.Name)
			continue
		}
		if clean == "." {
			continue
		}
		target := filepath.Join(realRoot, filepath.FromSlash(clean))
		parent := filepath.Dir(target)
		if err := os.MkdirAll(parent, 0o755); err != nil {
			return err
		}
		realParent, err := filepath.EvalSymlinks(parent)
		if err != nil || !within(realRoot, realParent) {
			warn("%s: skipping archive entry that would be written outside the project directory", f.Name)
			continue
		}
		target = filepath.Join(realParent, filepath.Base(target))
		mode := f.Mode()
		switch {
		case mode.IsDir():
			if fi, err := os.Lstat(target); err == nil && !fi.IsDir() {
				os.Remove(target)
			}
			if err := os.MkdirAll(target, 0o755); err != nil {
				return err
			}
		case mode&fs.ModeSymlink != 0:
			rc, err := f.Open()
			if err != nil {
				return err
			}
			b, err := io.ReadAll(io.LimitReader(rc, 4096))
			rc.Close()
			if err != nil {
				return err
			}
			link := string(b)
			dest := link
			if !filepath.IsAbs(dest) {
				dest = filepath.Join(realParent, dest)
			}
			dest = filepath.Clean(dest)
			if !within(realRoot, dest) && !within(root, dest) {
				warn("%s: skipping symlink pointing outside the project directory (%s)", f.Name, link)
				continue
			}
			os.RemoveAll(target)
			if err := os.Symlink(link, target); err != nil {
				return err
			}
		default:
			if fi, err := os.Lstat(target); err == nil && (fi.Mode()&fs.ModeSymlink != 0 || fi.IsDir()) {
				if err := os.RemoveAll(target); err != nil {
					return err
				}
			}
			perm := mode.Perm()
			if perm == 0 {
				perm = 0o644
			}
			out, err := os.OpenFile(target, os.O_CREATE|os.O_TRUNC|os.O_WRONLY, perm)
			if err != nil {
				return err
			}
			rc, err := f.Open()
			if err != nil {
				out.Close()
				return err
			}
			_, err = io.Copy(out, rc)
			rc.Close()
			if cerr := out.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
			_ = os.Chmod(target, perm)
			if !f.Modified.IsZero() {
				_ = os.Chtimes(target, time.Now(), f.Modified)
			}
		}
	}
	return nil
}
