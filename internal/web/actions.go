package web

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"path"
	"sort"
	"strconv"
	"strings"

	"gantry/internal/blob"
	"gantry/internal/httpapi"
)

// callAPI runs an API route for the viewer (as the signed-in user, or
// anonymously), writing its answer to w.
func (s *Server) callAPI(w http.ResponseWriter, r *http.Request, method, apiPath string, form url.Values) {
	ctx := r.Context()
	if u := viewerOf(r).user; u != nil {
		ctx = httpapi.AsSignedIn(ctx, u)
	}
	var body io.Reader = http.NoBody
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequestWithContext(ctx, method, apiPath, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	for _, h := range []string{"Range", "If-Range", "If-None-Match", "If-Modified-Since"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	s.api.ServeHTTP(w, req)
}

// recorder keeps an API answer to read it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func (rec *recorder) Header() http.Header { return rec.header }
func (rec *recorder) WriteHeader(code int) {
	if rec.status == 0 {
		rec.status = code
	}
}
func (rec *recorder) Write(b []byte) (int, error) {
	rec.WriteHeader(http.StatusOK)
	return rec.body.Write(b)
}

// apiFailure turns an API error answer into a page error.
func apiFailure(rec *recorder) error {
	var body struct {
		Message any `json:"message"`
		Error   any `json:"error"`
	}
	_ = json.Unmarshal(rec.body.Bytes(), &body)
	msg := http.StatusText(rec.status)
	for _, v := range []any{body.Message, body.Error} {
		if s, ok := v.(string); ok && s != "" {
			msg = s
		}
	}
	if rec.status == http.StatusNotFound {
		return errNotFound
	}
	return &httpError{status: rec.status, message: msg}
}

func (s *Server) apiJobPath(pv *projectView, jobID int64, rest string) string {
	return "/api/v4/projects/" + strconv.FormatInt(pv.project.ID, 10) + "/jobs/" + strconv.FormatInt(jobID, 10) + rest
}

// POST /<project>/-/jobs/:id/{cancel,retry,play,erase}: the API's action,
// for the signed-in user, behind the form's CSRF token.
func (s *Server) handleJobAction(action string) func(w http.ResponseWriter, r *http.Request) error {
	return func(w http.ResponseWriter, r *http.Request) error {
		r.Body = http.MaxBytesReader(w, r.Body, 256<<10)
		if err := s.checkCSRF(r); err != nil {
			return err
		}
		if viewerOf(r).user == nil {
			http.Redirect(w, r, signInURL(r), http.StatusSeeOther)
			return nil
		}
		pv, j, err := s.jobOf(r)
		if err != nil {
			return err
		}
		form := url.Values{}
		if action == "play" {
			keys, values := r.PostForm["variable_key"], r.PostForm["variable_value"]
			n := 0
			for i, k := range keys {
				if k = strings.TrimSpace(k); k == "" {
					continue
				}
				v := ""
				if i < len(values) {
					v = values[i]
				}
				prefix := "job_variables_attributes[" + strconv.Itoa(n) + "]"
				form.Set(prefix+"[key]", k)
				form.Set(prefix+"[value]", v)
				n++
			}
		}
		rec := &recorder{header: http.Header{}}
		s.callAPI(rec, r, http.MethodPost, s.apiJobPath(pv, j.ID, "/"+action), form)
		if rec.status >= 300 {
			return apiFailure(rec)
		}
		target := j.ID
		if action == "retry" {
			var fresh struct{ ID int64 }
			if err := json.Unmarshal(rec.body.Bytes(), &fresh); err == nil && fresh.ID > 0 {
				target = fresh.ID
			}
		}
		http.Redirect(w, r, "/"+pv.project.FullPath+"/-/jobs/"+strconv.FormatInt(target, 10), http.StatusSeeOther)
		return nil
	}
}

// GET /<project>/-/jobs/:id/artifacts/download: the archive, as the API serves it.
func (s *Server) handleArtifactsDownload(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := s.jobOf(r)
	if err != nil {
		return err
	}
	s.callAPI(w, r, r.Method, s.apiJobPath(pv, j.ID, "/artifacts"), nil)
	return nil
}

// GET /<project>/-/jobs/:id/artifacts/file/*path: one file of the archive.
func (s *Server) handleArtifactFile(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := s.jobOf(r)
	if err != nil {
		return err
	}
	s.callAPI(w, r, r.Method, s.apiJobPath(pv, j.ID, "/artifacts/"+escapePath(r.PathValue("file"))), nil)
	return nil
}

// artifactEntry is one name in a browsed directory.
type artifactEntry struct {
	Name string
	Dir  bool
	Size uint64
	URL  string
}

// GET /<project>/-/jobs/:id/artifacts/browse[/dir]: the archive's
// directory listing, read from its central directory.
func (s *Server) handleArtifactsBrowse(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := s.jobOf(r)
	if err != nil {
		return err
	}
	ctx := r.Context()
	arts, err := s.store.ArtifactsByJobIDs(ctx, []int64{j.ID})
	if err != nil {
		return err
	}
	key := ""
	for _, a := range arts[j.ID] {
		if a.FileType == "archive" && (a.ExpireAt == nil || a.ExpireAt.After(s.now())) {
			key = a.BlobKey
		}
	}
	if key == "" || s.blobs == nil {
		return errNotFound
	}
	f, size, err := s.blobs.Open(ctx, key)
	if errors.Is(err, blob.ErrNotFound) {
		return errNotFound
	}
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zip.NewReader(blob.ReaderAt(f), size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return errNotFound
	}
	dir := strings.Trim(r.PathValue("dir"), "/")
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	base := "/" + pv.project.FullPath + "/-/jobs/" + strconv.FormatInt(j.ID, 10) + "/artifacts/"
	seen := map[string]*artifactEntry{}
	for _, zf := range zr.File {
		rest, ok := strings.CutPrefix(zf.Name, prefix)
		if !ok || rest == "" {
			continue
		}
		name, _, isDir := strings.Cut(rest, "/")
		isDir = isDir || zf.Mode().IsDir()
		if name == "" || name == "." || name == ".." || seen[name] != nil {
			continue
		}
		e := &artifactEntry{Name: name, Dir: isDir}
		if isDir {
			e.URL = base + "browse/" + escapePath(prefix+name)
		} else if zf.Mode().IsRegular() {
			e.Size, e.URL = zf.UncompressedSize64, base+"file/"+escapePath(prefix+name)
		}
		seen[name] = e
	}
	if dir != "" && len(seen) == 0 {
		return errNotFound
	}
	entries := make([]*artifactEntry, 0, len(seen))
	for _, e := range seen {
		entries = append(entries, e)
	}
	sort.Slice(entries, func(a, b int) bool {
		if entries[a].Dir != entries[b].Dir {
			return entries[a].Dir
		}
		return entries[a].Name < entries[b].Name
	})
	data := struct {
		Job     any
		JobURL  string
		Dir     string
		Parent  string
		Entries []*artifactEntry
	}{Job: j, JobURL: "/" + pv.project.FullPath + "/-/jobs/" + strconv.FormatInt(j.ID, 10), Dir: dir, Entries: entries}
	if dir != "" {
		data.Parent = base + "browse"
		if parent := path.Dir(dir); parent != "." {
			data.Parent += "/" + escapePath(parent)
		}
	}
	s.render(w, r, http.StatusOK, "browse", page{Title: "Artifacts · " + j.Name, Project: pv.project, Nav: "jobs", Data: data})
	return nil
}

func escapePath(p string) string {
	segs := strings.Split(p, "/")
	for i, s := range segs {
		segs[i] = url.PathEscape(s)
	}
	return strings.Join(segs, "/")
}
