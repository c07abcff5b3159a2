package runnerapi

import (
	"context"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"path"
	"strconv"
	"strings"
	"time"

	"gantry/internal/blob"
	"gantry/internal/ci"
)

// fileFormats maps artifact_format to GitLab's file_format and file name.
var fileFormats = map[string]string{"zip": "zip", "gzip": "gzip", "raw": "raw"}

// POST /jobs/:id/artifacts: a multipart upload whose part "file" holds the
// archive; streamed to blob storage, never held whole in memory.
func (a *API) handleUploadArtifacts(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	job, err := a.jobFromToken(r, "")
	if err != nil {
		return err
	}
	q := r.URL.Query()
	typ := q.Get("artifact_type")
	if typ == "" {
		typ = "archive"
	}
	format := q.Get("artifact_format")
	if format == "" {
		format = "zip"
	}
	if _, ok := fileFormats[format]; !ok {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "artifact_format does not have a valid value"}}
	}
	if !validArtifactType(typ) {
		return &apiError{status: http.StatusBadRequest, body: map[string]string{"error": "artifact_type does not have a valid value"}}
	}
	limit, err := a.artifactLimit(ctx, job.ProjectID)
	if err != nil {
		return err
	}
	if r.ContentLength > limit {
		return fail(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") {
		return fail(http.StatusBadRequest, "400 Bad request - expected multipart/form-data")
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	for {
		part, err := mr.NextPart()
		if err == io.EOF {
			return fail(http.StatusBadRequest, "400 Bad request - file is missing")
		}
		if err != nil {
			return fail(http.StatusBadRequest, "400 Bad request - malformed multipart body")
		}
		if part.FormName() != "file" {
			continue
		}
		filename := path.Base(strings.ReplaceAll(part.FileName(), "\\", "/"))
		if filename == "" || filename == "." || filename == "/" {
			filename = map[string]string{"zip": "artifacts.zip", "gzip": typ + ".gz", "raw": typ}[format]
		}
		if typ == "archive" {
			filename = "artifacts.zip"
		}
		key := "artifacts/" + itoa(job.ProjectID) + "/" + itoa(job.ID) + "/" + typ + "-" + strconv.FormatInt(a.now().UnixNano(), 36)
		size, err := a.blobs.Put(ctx, key, part, limit)
		if errors.Is(err, blob.ErrTooLarge) {
			return fail(http.StatusRequestEntityTooLarge, "413 Request Entity Too Large")
		}
		if err != nil {
			return err
		}
		var expire *time.Time
		if in := q.Get("expire_in"); in != "" && in != "never" {
			if d, ok := parseExpireIn(in); ok {
				t := a.now().Add(d)
				expire = &t
			}
		}
		if _, err := a.store.InsertArtifact(ctx, ci.Artifact{JobID: job.ID, ProjectID: job.ProjectID, FileType: typ, FileFormat: format,
			Filename: filename, Size: size, BlobKey: key, ExpireAt: expire, CreatedAt: a.now()}); err != nil {
			_ = a.blobs.Delete(ctx, key)
			return err
		}
		writeJSON(w, http.StatusCreated, map[string]string{"message": "201 Created"})
		return nil
	}
}

// artifactLimit is the largest upload the project takes: its own
// max_artifacts_size when set, else the instance's.
func (a *API) artifactLimit(ctx context.Context, projectID int64) (int64, error) {
	p, err := a.store.ProjectByID(ctx, projectID)
	if err != nil {
		return 0, err
	}
	if p.MaxArtifactsSizeMB != nil {
		return int64(*p.MaxArtifactsSizeMB) << 20, nil
	}
	return a.cfg.MaxArtifactSize, nil
}

func validArtifactType(t string) bool {
	switch t {
	case "archive", "metadata", "trace", "junit", "sast", "dependency_scanning", "container_scanning", "dast", "codequality",
		"license_scanning", "performance", "metrics", "lsif", "dotenv", "cobertura", "terraform", "accessibility", "secret_detection",
		"requirements", "coverage_fuzzing", "browser_performance", "load_performance", "api_fuzzing", "cluster_image_scanning",
		"cyclonedx", "annotations", "repository_xray", "jacoco":
		return true
	}
	return false
}

// parseExpireIn reads GitLab's expire_in ("1 day", "2 hrs 30 min", "3600", "1 week").
func parseExpireIn(s string) (time.Duration, bool) {
	fields := strings.Fields(strings.ToLower(s))
	if len(fields) == 1 {
		if n, err := strconv.Atoi(fields[0]); err == nil {
			return time.Duration(n) * time.Second, true
		}
	}
	var total time.Duration
	for i := 0; i+1 < len(fields); i += 2 {
		n, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return 0, false
		}
		unit := strings.TrimSuffix(strings.TrimSuffix(fields[i+1], ","), "s")
		var d time.Duration
		switch unit {
		case "sec", "second":
			d = time.Second
		case "min", "minute":
			d = time.Minute
		case "hr", "hour", "h":
			d = time.Hour
		case "day", "d":
			d = 24 * time.Hour
		case "week", "wk":
			d = 7 * 24 * time.Hour
		case "month", "mo":
			d = 30 * 24 * time.Hour
		case "year", "yr":
			d = 365 * 24 * time.Hour
		default:
			return 0, false
		}
		total += time.Duration(n * float64(d))
	}
	return total, total > 0
}

// GET /jobs/:id/artifacts: a running job downloads a dependency's archive
// (with its own token, or the dependency's) from the same pipeline.
func (a *API) handleDownloadArtifacts(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	id, err := strconv.ParseInt(r.PathValue("job_id"), 10, 64)
	if err != nil {
		return fail(http.StatusNotFound, "404 Not Found")
	}
	token := r.Header.Get("Job-Token")
	if token == "" {
		token = r.URL.Query().Get("token")
	}
	caller, err := a.store.JobByTokenDigest(ctx, ci.HashToken(token))
	if err != nil && !errors.Is(err, ci.ErrNotFound) {
		return err
	}
	if err != nil || !caller.Status.Executing() {
		return fail(http.StatusUnauthorized, "401 Unauthorized")
	}
	dep, err := a.store.JobByID(ctx, caller.ProjectID, id)
	if err != nil && !errors.Is(err, ci.ErrNotFound) {
		return err
	}
	if err != nil || dep.PipelineID != caller.PipelineID && dep.ID != caller.ID {
		return fail(http.StatusNotFound, "404 Not Found")
	}
	arts, err := a.store.ArtifactsByJobIDs(ctx, []int64{dep.ID})
	if err != nil {
		return err
	}
	for _, art := range arts[dep.ID] {
		if art.FileType != "archive" {
			continue
		}
		f, size, err := a.blobs.Open(ctx, art.BlobKey)
		if errors.Is(err, blob.ErrNotFound) {
			break
		}
		if err != nil {
			return err
		}
		defer f.Close()
		w.Header().Set("Content-Type", "application/zip")
		w.Header().Set("Content-Length", strconv.FormatInt(size, 10))
		w.Header().Set("Content-Disposition", `attachment; filename="`+art.Filename+`"`)
		w.WriteHeader(http.StatusOK)
		_, _ = io.Copy(w, f)
		return nil
	}
	return fail(http.StatusNotFound, "404 Not Found")
}
