package web

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"gantry/internal/ci"
	"gantry/internal/joblog"
)

// tailBytes is how much of a log the job page renders at first: the end,
// which is what people look at; the page loads earlier parts on request.
const tailBytes = 64 << 10

// logWindow is the part of a log a page shows.
type logWindow struct {
	Lines []logLine
	Start int64 // byte offset of the first line shown
	End   int64 // byte offset after the last byte shown
}

// tailWindow renders the end of a log. For a live log it stops after the
// last line break: the rest of that line arrives by the live stream.
func (s *Server) tailWindow(ctx context.Context, jobID int64, live bool) (logWindow, error) {
	log, err := s.logs.Open(ctx, jobID)
	if err != nil {
		return logWindow{}, err
	}
	defer log.Close()
	size := log.Size()
	from := max(size-tailBytes, 0)
	var buf bytes.Buffer
	if _, err := log.CopyRange(ctx, &buf, from, size); err != nil {
		return logWindow{}, err
	}
	data := buf.Bytes()
	first := 1
	if from > 0 {
		// Start on a line boundary; lines before it are not counted.
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			i = len(data) - 1
		}
		data, from, first = data[i+1:], from+int64(i+1), 0
	}
	if live {
		data = data[:bytes.LastIndexByte(data, '\n')+1]
	}
	return logWindow{Lines: renderLog(data, from, first), Start: from, End: from + int64(len(data))}, nil
}

// logSeeker reads a job log by ranges, for http.ServeContent.
type logSeeker struct {
	ctx context.Context
	log *joblog.Log
	pos int64
}

func (l *logSeeker) Read(p []byte) (int, error) {
	if l.pos >= l.log.Size() {
		return 0, io.EOF
	}
	w := bytes.NewBuffer(p[:0])
	n, err := l.log.CopyRange(l.ctx, w, l.pos, min(l.pos+int64(len(p)), l.log.Size()))
	l.pos += n
	if n == 0 && err == nil {
		err = io.ErrUnexpectedEOF
	}
	return int(n), err
}

func (l *logSeeker) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += l.pos
	case io.SeekEnd:
		offset += l.log.Size()
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	l.pos = offset
	return offset, nil
}

// GET /<project>/-/jobs/:id/raw: the plain log, with Range support (the
// job page reads earlier parts of a long log this way).
func (s *Server) handleRawLog(w http.ResponseWriter, r *http.Request) error {
	_, j, err := s.jobOf(r)
	if err != nil {
		return err
	}
	if j.ErasedAt != nil {
		return errNotFound
	}
	log, err := s.logs.Open(r.Context(), j.ID)
	if err != nil {
		return err
	}
	defer log.Close()
	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("Cache-Control", "no-store")
	http.ServeContent(w, r, "", time.Time{}, &logSeeker{ctx: r.Context(), log: log})
	return nil
}

// GET /<project>/-/jobs/:id/follow?offset=N: the live log as server-sent
// events from byte N (Last-Event-ID when the browser reconnects).
func (s *Server) handleFollowLog(w http.ResponseWriter, r *http.Request) error {
	pv, j, err := s.jobOf(r)
	if err != nil {
		return err
	}
	from, err := strconv.ParseInt(r.URL.Query().Get("offset"), 10, 64)
	if err != nil || from < 0 {
		from = 0
	}
	if v := r.Header.Get("Last-Event-ID"); v != "" {
		if n, err := strconv.ParseInt(v, 10, 64); err == nil && n >= 0 {
			from = n
		}
	}
	watch := func(status ci.JobStatus) {
		if s.onLogRead != nil && status.Executing() {
			s.onLogRead(j.ID)
		}
	}
	watch(j.Status)
	f := joblog.Follow{Reader: s.logs, Hub: s.logHub, Poll: s.cfg.LogFollowPoll, Status: func(ctx context.Context) (ci.JobStatus, error) {
		cur, err := s.store.JobByID(ctx, pv.project.ID, j.ID)
		if err != nil {
			return "", err
		}
		watch(cur.Status)
		return cur.Status, nil
	}}
	ctx := r.Context()
	if err := f.Serve(ctx, w, j.ID, from); err != nil && ctx.Err() == nil {
		s.log.Warn("follow log", "job", j.ID, "err", err)
	}
	return nil
}
