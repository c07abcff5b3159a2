package httpapi

import (
	"archive/zip"
	"context"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"gantry/internal/blob"
	"gantry/internal/ci"
)

// The user-facing artifact routes (GitLab's lib/api/ci/job_artifacts.rb).
// GETs accept job tokens and anonymous callers (judged by project
// visibility); writes need a user.

// GET /projects/:id/jobs/:job_id/artifacts
func (a *API) handleDownloadJobArtifacts(w http.ResponseWriter, r *http.Request) error {
	art, err := a.requestedArchive(r)
	if err != nil {
		return err
	}
	return a.serveArchive(w, r, art)
}

// GET /projects/:id/jobs/:job_id/{rest...}: Go's router cannot tell
// jobs/:job_id/artifacts/*path from jobs/artifacts/:ref_name/download (ref
// names may hold slashes), so one route takes both and splits them here.
func (a *API) handleJobSubtree(w http.ResponseWriter, r *http.Request) error {
	rest := r.PathValue("rest")
	if r.PathValue("job_id") == "artifacts" {
		if ref, ok := strings.CutSuffix(rest, "/download"); ok && ref != "" {
			return a.handleRefArtifacts(w, r, ref, "")
		}
		if i := strings.LastIndex(rest, "/raw/"); i > 0 {
			return a.handleRefArtifacts(w, r, rest[:i], rest[i+len("/raw/"):])
		}
		return errRouteNotFound
	}
	if entry, ok := strings.CutPrefix(rest, "artifacts/"); ok {
		return a.handleJobArtifactEntry(w, r, entry)
	}
	return errRouteNotFound
}

// GET /projects/:id/jobs/:job_id/artifacts/*artifact_path
func (a *API) handleJobArtifactEntry(w http.ResponseWriter, r *http.Request, entry string) error {
	art, err := a.requestedArchive(r)
	if err != nil {
		return err
	}
	if !a.unexpired(art) {
		return errNotFound
	}
	if !validArtifactPath(entry) {
		return errBadRequest("")
	}
	return a.serveEntry(w, r, art, entry)
}

// GET /projects/:id/jobs/artifacts/:ref_name/download?job= and
// .../raw/*artifact_path?job=: the latest successful pipeline of the ref.
func (a *API) handleRefArtifacts(w http.ResponseWriter, r *http.Request, ref, entry string) error {
	ident, err := a.authenticate(r, authUserOrJob)
	if err != nil {
		return err
	}
	name := r.URL.Query().Get("job")
	if name == "" {
		return errParam("job is missing")
	}
	pv, err := a.findProjectForBuilds(r, ident)
	if err != nil {
		return err
	}
	ctx := r.Context()
	j, err := a.store.LatestArtifactsJob(ctx, pv.project.ID, ref, name, a.now())
	if err != nil {
		return err // not found: GitLab's record-not-found 404
	}
	art, err := a.archiveOf(ctx, j)
	if err != nil {
		return err
	}
	if art == nil {
		return errNotFound
	}
	if entry == "" {
		return a.serveArchive(w, r, art)
	}
	if !validArtifactPath(entry) {
		return errBadRequest("")
	}
	return a.serveEntry(w, r, art, entry)
}

// POST /projects/:id/jobs/:job_id/artifacts/keep
func (a *API) handleKeepArtifacts(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := a.artifactsWrite(r, (*projectView).canUpdateBuilds)
	if err != nil {
		return err
	}
	// keep_job_artifacts is update_build: the job's ref must allow it too.
	if err := a.canUpdateRef(r, pv, j.Ref, j.Tag); err != nil {
		return err
	}
	ctx := r.Context()
	art, err := a.archiveOf(ctx, j)
	if err != nil {
		return err
	}
	if art == nil || !a.unexpired(art) || !a.blobExists(ctx, art.BlobKey) {
		return errJobNotFound
	}
	if err := a.store.KeepArtifacts(ctx, j.ID); err != nil {
		return err
	}
	if j, err = a.store.JobByID(ctx, pv.project.ID, j.ID); err != nil {
		return err
	}
	return a.writeJob(w, r, http.StatusOK, pv.project, j)
}

// DELETE /projects/:id/jobs/:job_id/artifacts: every artifact but the log.
func (a *API) handleDeleteJobArtifacts(w http.ResponseWriter, r *http.Request) error {
	_, j, err := a.artifactsWrite(r, (*projectView).canDestroyArtifacts)
	if err != nil {
		return err
	}
	keys, err := a.store.DeleteJobArtifacts(r.Context(), j.ID)
	if err != nil {
		return err
	}
	a.deleteBlobs(r.Context(), keys)
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// DELETE /projects/:id/artifacts: every unlocked erasable artifact. GitLab
// answers 202 and expires them in a worker; gantry deletes them before
// answering, with the same answer.
func (a *API) handleDeleteProjectArtifacts(w http.ResponseWriter, r *http.Request) error {
	pv, err := a.authorizedProject(r, (*projectView).canDestroyArtifacts)
	if err != nil {
		return err
	}
	keys, err := a.store.DeleteProjectArtifacts(r.Context(), pv.project.ID)
	if err != nil {
		return err
	}
	a.deleteBlobs(r.Context(), keys)
	writeJSON(w, http.StatusAccepted, map[string]string{"message": "202 Accepted"})
	return nil
}

// requestedArchive resolves what the job artifact GETs share: any
// credential or none, the project (404), read access to its jobs (403),
// the build (404) and its archive record (404).
func (a *API) requestedArchive(r *http.Request) (*ci.Artifact, error) {
	ident, err := a.authenticate(r, authUserOrJob)
	if err != nil {
		return nil, err
	}
	_, j, err := a.jobFor(r, ident, ci.KindBuild)
	if err != nil {
		return nil, err
	}
	art, err := a.archiveOf(r.Context(), j)
	if err == nil && art == nil {
		err = errNotFound
	}
	return art, err
}

// artifactsWrite resolves a user, the project, the ability (403) and the build (404).
func (a *API) artifactsWrite(r *http.Request, can func(*projectView) bool) (*projectView, *ci.Job, error) {
	pv, err := a.authorizedProject(r, can, "job_id")
	if err != nil {
		return nil, nil, err
	}
	j, err := a.findJob(r, pv, ci.KindBuild)
	if err != nil {
		return nil, nil, err
	}
	return pv, j, nil
}

// archiveOf is the job's archive record, or nil.
func (a *API) archiveOf(ctx context.Context, j *ci.Job) (*ci.Artifact, error) {
	arts, err := a.store.ArtifactsByJobIDs(ctx, []int64{j.ID})
	if err != nil {
		return nil, err
	}
	for _, art := range arts[j.ID] {
		if art.FileType == "archive" {
			return art, nil
		}
	}
	return nil, nil
}

func (a *API) unexpired(art *ci.Artifact) bool {
	return art.ExpireAt == nil || art.ExpireAt.After(a.now())
}

func (a *API) blobExists(ctx context.Context, key string) bool {
	if a.blobs == nil {
		return false
	}
	f, _, err := a.blobs.Open(ctx, key)
	if err != nil {
		return false
	}
	f.Close()
	return true
}

// deleteBlobs removes deleted records' files; a failure leaves an orphan
// file (logged), never a record without its file.
func (a *API) deleteBlobs(ctx context.Context, keys []string) {
	if a.blobs == nil {
		return
	}
	for _, k := range keys {
		if err := a.blobs.Delete(ctx, k); err != nil {
			a.log.Warn("delete artifact blob", "key", k, "err", err)
		}
	}
}

// openArchive opens an archive's blob; a missing file is GitLab's 404.
func (a *API) openArchive(ctx context.Context, art *ci.Artifact) (io.ReadSeekCloser, int64, error) {
	if a.blobs == nil {
		return nil, 0, errNotFound
	}
	f, size, err := a.blobs.Open(ctx, art.BlobKey)
	if errors.Is(err, blob.ErrNotFound) {
		return nil, 0, errNotFound
	}
	return f, size, err
}

// serveArchive sends the whole zip as GitLab's file download does (ranges
// and HEAD included).
func (a *API) serveArchive(w http.ResponseWriter, r *http.Request, art *ci.Artifact) error {
	f, _, err := a.openArchive(r.Context(), art)
	if err != nil {
		return err
	}
	defer f.Close()
	h := w.Header()
	h.Set("Content-Type", "application/octet-stream")
	h.Set("Content-Disposition", `attachment; filename="`+quoteEscaped(art.Filename)+`"; filename*=UTF-8''`+url.PathEscape(art.Filename))
	h.Set("Content-Transfer-Encoding", "binary")
	http.ServeContent(w, r, "", time.Time{}, f)
	return nil
}

// serveEntry sends one regular file of the zip, found through the central
// directory with ranged reads. Names that could point outside the archive
// (absolute, "..", backslashes, empty segments) are never served, nor are
// directories or symbolic links: all answer 404.
func (a *API) serveEntry(w http.ResponseWriter, r *http.Request, art *ci.Artifact, name string) error {
	if !safeEntryName(name) {
		return errNotFound
	}
	f, size, err := a.openArchive(r.Context(), art)
	if err != nil {
		return err
	}
	defer f.Close()
	zr, err := zip.NewReader(blob.ReaderAt(f), size)
	if err != nil && !errors.Is(err, zip.ErrInsecurePath) {
		return errNotFound // not a zip: nothing inside it can be found
	}
	var entry *zip.File
	for _, zf := range zr.File {
		if zf.Name == name {
			entry = zf
			break
		}
	}
	if entry == nil || !entry.Mode().IsRegular() {
		return errNotFound
	}
	rc, err := entry.Open()
	if err != nil {
		return errNotFound
	}
	defer rc.Close()
	h := w.Header()
	ctype := mime.TypeByExtension(path.Ext(name))
	if ctype == "" {
		ctype = "application/octet-stream"
	}
	h.Set("Content-Type", ctype)
	h.Set("Content-Disposition", `attachment; filename="`+quoteEscaped(path.Base(name))+`"`)
	h.Set("Content-Length", strconv.FormatUint(entry.UncompressedSize64, 10))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		// A corrupt entry fails mid-body; the short body tells the client.
		_, _ = io.Copy(w, rc)
	}
	return nil
}

// validArtifactPath is GitLab's check on a requested path: no NUL byte,
// valid UTF-8 (otherwise 400).
func validArtifactPath(p string) bool {
	return !strings.ContainsRune(p, 0) && utf8.ValidString(p)
}

// safeEntryName accepts only clean relative file names.
func safeEntryName(name string) bool {
	if name == "" || strings.HasPrefix(name, "/") || strings.HasSuffix(name, "/") || strings.Contains(name, `\`) {
		return false
	}
	for _, seg := range strings.Split(name, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

func quoteEscaped(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}
