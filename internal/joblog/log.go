// Package joblog keeps job logs: it reads them wherever they live (live
// chunks in the database while the job runs, one archived blob afterwards),
// archives them when the job ends, and streams them live to followers.
package joblog

import (
	"context"
	"errors"
	"fmt"
	"io"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/store"
)

// chunksPerQuery bounds one chunk read: a runner sends at most 1 MiB per
// PATCH, so a batch stays a few MiB at worst.
const chunksPerQuery = 8

// errChunksGone means the chunks holding a range were deleted while being
// read: the log was archived in the meantime.
var errChunksGone = errors.New("joblog: chunks gone")

// Reader opens job logs. Blobs may be nil (no archive can then be read).
type Reader struct {
	Store store.Store
	Blobs blob.Store
}

// Log is one job's log as it was when opened: Size bytes, read by range.
type Log struct {
	reader  *Reader
	jobID   int64
	size    int64
	archive *store.TraceArchive
	blob    io.ReadSeekCloser // nil when reading chunks or the blob is missing
}

// Open finds where the job's log lives now. Close the log when done.
func (r *Reader) Open(ctx context.Context, jobID int64) (*Log, error) {
	l := &Log{reader: r, jobID: jobID}
	archive, err := r.Store.TraceArchiveOf(ctx, jobID)
	switch {
	case errors.Is(err, ci.ErrNotFound):
		l.size, err = r.Store.TraceSize(ctx, jobID)
		return l, err
	case err != nil:
		return nil, err
	}
	return l, l.openArchive(ctx, archive)
}

func (l *Log) openArchive(ctx context.Context, archive *store.TraceArchive) error {
	l.archive, l.size = archive, 0
	if l.reader.Blobs == nil {
		return nil
	}
	f, size, err := l.reader.Blobs.Open(ctx, archive.BlobKey)
	if errors.Is(err, blob.ErrNotFound) {
		// GitLab answers an archive whose file is gone with an empty log.
		return nil
	}
	if err != nil {
		return err
	}
	l.blob, l.size = f, min(size, archive.Size)
	return nil
}

// Size is the log's length in bytes.
func (l *Log) Size() int64 { return l.size }

// Archived tells whether the log is read from its archived blob.
func (l *Log) Archived() bool { return l.archive != nil }

// Close releases the archived blob, if open.
func (l *Log) Close() error {
	if l.blob != nil {
		return l.blob.Close()
	}
	return nil
}

// CopyRange writes bytes [from, to) of the log to w, reading only what the
// range needs. A log archived while its chunks are being read is followed
// into the archive.
func (l *Log) CopyRange(ctx context.Context, w io.Writer, from, to int64) (int64, error) {
	to = min(to, l.size)
	if from >= to {
		return 0, nil
	}
	if l.archive != nil {
		return l.copyBlob(w, from, to)
	}
	cr := &chunkReader{ctx: ctx, store: l.reader.Store, jobID: l.jobID, pos: from, end: to}
	n, err := io.Copy(w, cr)
	if !errors.Is(err, errChunksGone) {
		return n, err
	}
	archive, aerr := l.reader.Store.TraceArchiveOf(ctx, l.jobID)
	if aerr != nil {
		return n, fmt.Errorf("log of job %d: chunks gone without an archive: %w", l.jobID, aerr)
	}
	if err := l.openArchive(ctx, archive); err != nil {
		return n, err
	}
	if l.size < to {
		return n, fmt.Errorf("log of job %d: archive holds %d bytes, %d expected", l.jobID, l.size, to)
	}
	m, err := l.copyBlob(w, from+n, to)
	return n + m, err
}

func (l *Log) copyBlob(w io.Writer, from, to int64) (int64, error) {
	if l.blob == nil {
		return 0, nil
	}
	if _, err := l.blob.Seek(from, io.SeekStart); err != nil {
		return 0, err
	}
	n, err := io.CopyN(w, l.blob, to-from)
	if errors.Is(err, io.EOF) {
		err = io.ErrUnexpectedEOF
	}
	return n, err
}

// chunkReader reads [pos, end) of a live log, a few chunks per query.
type chunkReader struct {
	ctx      context.Context
	store    store.Store
	jobID    int64
	pos, end int64
	pending  []store.TraceChunk
	buf      []byte
}

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.buf) == 0 {
		if c.pos >= c.end {
			return 0, io.EOF
		}
		if len(c.pending) == 0 {
			chunks, err := c.store.TraceChunks(c.ctx, c.jobID, c.pos, c.end, chunksPerQuery)
			if err != nil {
				return 0, err
			}
			if len(chunks) == 0 {
				return 0, errChunksGone
			}
			c.pending = chunks
		}
		next := c.pending[0]
		c.pending = c.pending[1:]
		if next.Start > c.pos || next.Start+int64(len(next.Data)) <= c.pos {
			return 0, errChunksGone
		}
		c.buf = next.Data[c.pos-next.Start:]
		if left := c.end - c.pos; int64(len(c.buf)) > left {
			c.buf = c.buf[:left]
		}
	}
	n := copy(p, c.buf)
	c.buf = c.buf[n:]
	c.pos += int64(n)
	return n, nil
}
