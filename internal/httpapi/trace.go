package httpapi

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/joblog"
)

// maxTraceByteLimit is GitLab's cap on byte_limit (500 KiB).
const maxTraceByteLimit = 512000

// GET /projects/:id/jobs/:job_id/trace: the log, whole or a byte range
// (GitLab's byte_offset/byte_limit, or an HTTP Range), from live chunks or
// the archive alike; with follow=true, gantry's live stream of events.
func (a *API) handleGetTrace(w http.ResponseWriter, r *http.Request) error {
	ident, err := a.requireUser(r, authUser)
	if err != nil {
		return err
	}
	p, err := readParams(r)
	if err != nil {
		return err
	}
	if _, _, err := pathID(r, "job_id"); err != nil {
		return err
	}
	offset, hasOffset, err := p.intParam("byte_offset")
	if err != nil {
		return err
	}
	limit, hasLimit, err := p.intParam("byte_limit")
	if err != nil {
		return err
	}
	if hasOffset && offset < 0 {
		return errParam("byte_offset does not have a valid value")
	}
	if hasLimit && (limit < 1 || limit > maxTraceByteLimit) {
		return errParam("byte_limit does not have a valid value")
	}
	follow, _, err := p.boolParam("follow")
	if err != nil {
		return err
	}
	var resume int64
	if follow {
		if resume, err = lastEventID(r, offset); err != nil {
			return err
		}
	}
	pv, j, err := a.jobFor(r, ident, ci.KindBuild)
	if err != nil {
		return err
	}
	if j.Status.Executing() && a.onLogRead != nil {
		a.onLogRead(j.ID)
	}
	ctx := r.Context()
	if follow {
		f := joblog.Follow{Reader: a.logs, Hub: a.logHub, Poll: a.cfg.LogFollowPoll, Status: func(ctx context.Context) (ci.JobStatus, error) {
			cur, err := a.store.JobByID(ctx, pv.project.ID, j.ID)
			if err != nil {
				return "", err
			}
			if a.onLogRead != nil && cur.Status.Executing() {
				a.onLogRead(j.ID)
			}
			return cur.Status, nil
		}}
		if err := f.Serve(ctx, w, j.ID, resume); err != nil && ctx.Err() == nil {
			a.log.Warn("follow log", "job", j.ID, "err", err)
		}
		return nil
	}
	var log *joblog.Log
	size := int64(0)
	if j.ErasedAt == nil {
		if log, err = a.logs.Open(ctx, j.ID); err != nil {
			return err
		}
		defer log.Close()
		size = log.Size()
	}
	h := w.Header()
	from, to, status := int64(0), size, http.StatusOK
	switch {
	case hasOffset || hasLimit:
		// GitLab's parameters: out-of-range offsets give an empty 200.
		from = min(offset, size)
		if hasLimit {
			to = min(from+limit, size)
		}
	case r.Header.Get("Range") != "":
		rf, rt, ok, satisfiable := parseByteRange(r.Header.Get("Range"), size)
		if ok && !satisfiable {
			return &apiError{status: http.StatusRequestedRangeNotSatisfiable, body: map[string]string{"message": "416 Range Not Satisfiable"},
				header: map[string]string{"Content-Range": "bytes */" + strconv.FormatInt(size, 10)}}
		}
		if ok {
			from, to, status = rf, rt, http.StatusPartialContent
			h.Set("Content-Range", "bytes "+strconv.FormatInt(from, 10)+"-"+strconv.FormatInt(to-1, 10)+"/"+strconv.FormatInt(size, 10))
		}
	}
	h.Set("Content-Type", "text/plain")
	h.Set("Content-Disposition", `infile; filename="`+strconv.FormatInt(j.ID, 10)+`.log"`)
	h.Set("Accept-Ranges", "bytes")
	h.Set("Content-Length", strconv.FormatInt(to-from, 10))
	w.WriteHeader(status)
	if r.Method == http.MethodHead || log == nil {
		return nil
	}
	if _, err := log.CopyRange(ctx, w, from, to); err != nil && ctx.Err() == nil {
		// The status line is gone: the short body tells the client.
		a.log.Warn("read log", "job", j.ID, "err", err)
	}
	return nil
}

// lastEventID is where a follow stream starts: the Last-Event-ID header
// (a byte offset) when resuming, else byte_offset.
func lastEventID(r *http.Request, byteOffset int64) (int64, error) {
	v := strings.TrimSpace(r.Header.Get("Last-Event-ID"))
	if v == "" {
		return byteOffset, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, errParam("Last-Event-ID is invalid")
	}
	return n, nil
}

// parseByteRange reads one "bytes=" range of RFC 9110 against a size and
// returns [from, to). ok is false when the header is to be ignored
// (malformed, another unit, several ranges); satisfiable is false when no
// byte of the range exists.
func parseByteRange(header string, size int64) (from, to int64, ok, satisfiable bool) {
	spec, found := strings.CutPrefix(strings.TrimSpace(header), "bytes=")
	if !found || strings.Contains(spec, ",") {
		return 0, 0, false, false
	}
	first, last, found := strings.Cut(strings.TrimSpace(spec), "-")
	if !found {
		return 0, 0, false, false
	}
	if first == "" {
		n, err := strconv.ParseInt(last, 10, 64)
		if err != nil || n < 0 {
			return 0, 0, false, false
		}
		if n == 0 || size == 0 {
			return 0, 0, true, false
		}
		return max(size-n, 0), size, true, true
	}
	start, err := strconv.ParseInt(first, 10, 64)
	if err != nil || start < 0 {
		return 0, 0, false, false
	}
	end := size - 1
	if last != "" {
		if end, err = strconv.ParseInt(last, 10, 64); err != nil || end < start {
			return 0, 0, false, false
		}
	}
	if start >= size {
		return 0, 0, true, false
	}
	return start, min(end, size-1) + 1, true, true
}
