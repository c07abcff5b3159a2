package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// The archived log's artifact row, as GitLab lists it among a job's artifacts.
const (
	traceFileType   = "trace"
	traceFileFormat = "raw"
	traceFilename   = "job.log"
)

func traceArchived(ctx context.Context, tx *sql.Tx, db *DB, jobID int64) (bool, error) {
	var one int
	err := tx.QueryRowContext(ctx, db.q(`SELECT 1 FROM artifacts WHERE job_id = ? AND file_type = ? LIMIT 1`), jobID, traceFileType).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

func (db *DB) TraceChunks(ctx context.Context, jobID int64, from, to int64, max int) ([]store.TraceChunk, error) {
	if max <= 0 || from >= to {
		return nil, nil
	}
	// The subquery seeks the chunk containing from through the primary
	// key, so a read near the end never scans the chunks before it.
	rows, err := db.query(ctx, `SELECT start_offset, data FROM trace_chunks
		WHERE job_id = ? AND start_offset >= COALESCE((SELECT MAX(start_offset) FROM trace_chunks WHERE job_id = ? AND start_offset <= ?), 0)
		AND start_offset < ? ORDER BY start_offset LIMIT ?`, jobID, jobID, from, to, max)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.TraceChunk
	for rows.Next() {
		var c store.TraceChunk
		if err := rows.Scan(&c.Start, &c.Data); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (db *DB) TraceArchiveOf(ctx context.Context, jobID int64) (*store.TraceArchive, error) {
	var a store.TraceArchive
	var sum sql.NullString
	var created int64
	err := db.queryRow(ctx, `SELECT job_id, project_id, blob_key, size, file_sha256, created_at FROM artifacts
		WHERE job_id = ? AND file_type = ? ORDER BY id LIMIT 1`, jobID, traceFileType).Scan(&a.JobID, &a.ProjectID, &a.BlobKey, &a.Size, &sum, &created)
	if err != nil {
		return nil, db.translate(err)
	}
	a.SHA256, a.CreatedAt = sum.String, fromMicros(created)
	return &a, nil
}

func (db *DB) RecordTraceArchive(ctx context.Context, a store.TraceArchive) (bool, error) {
	inserted := false
	err := db.tx(ctx, func(tx *sql.Tx) error {
		// Marking the row takes its lock (AppendTrace's update takes it
		// too) and fails if the log grew since it was archived.
		r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET trace_archived = TRUE WHERE id = ? AND trace_size = ?`), a.JobID, a.Size)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: log of job %d is not %d bytes long", ci.ErrConflict, a.JobID, a.Size)
		}
		archived, err := traceArchived(ctx, tx, db, a.JobID)
		if err != nil || archived {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`INSERT INTO artifacts (job_id, project_id, file_type, file_format, filename, size, blob_key, file_sha256, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`), a.JobID, a.ProjectID, traceFileType, traceFileFormat, traceFilename, a.Size, a.BlobKey, a.SHA256, tm(a.CreatedAt))
		inserted = err == nil
		return db.translate(err)
	})
	return inserted, err
}

func (db *DB) DeleteArchivedTraceChunks(ctx context.Context, jobID int64) (int64, error) {
	r, err := db.exec(ctx, `DELETE FROM trace_chunks WHERE job_id = ? AND EXISTS (
		SELECT 1 FROM artifacts a JOIN jobs j ON j.id = a.job_id
		WHERE a.job_id = ? AND a.file_type = ? AND a.size = j.trace_size)`, jobID, jobID, traceFileType)
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}

func (db *DB) UnarchivedTraces(ctx context.Context, afterID int64, limit int) ([]store.UnarchivedTrace, error) {
	// Only live logs have chunks, so the DISTINCT stays small however
	// many jobs there are.
	rows, err := db.query(ctx, `SELECT id, project_id, trace_size FROM jobs
		WHERE id IN (SELECT DISTINCT job_id FROM trace_chunks WHERE job_id > ?) AND status NOT IN ('running', 'canceling')
		ORDER BY id LIMIT ?`, afterID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.UnarchivedTrace
	for rows.Next() {
		var u store.UnarchivedTrace
		if err := rows.Scan(&u.JobID, &u.ProjectID, &u.Size); err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}
