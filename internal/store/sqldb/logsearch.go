package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func (db *DB) LogSearchCandidates(ctx context.Context, f store.LogSearchFilter) ([]store.LogCandidate, error) {
	// The jobs list's filter, retried jobs included, narrowed to jobs with a log.
	where, args := jobWhere(store.JobFilter{ProjectID: f.ProjectID, Kind: ci.KindBuild, Statuses: f.Statuses, Ref: f.Ref,
		IncludeRetried: true, BeforeID: f.BeforeID, CreatedAfter: f.CreatedAfter, CreatedBefore: f.CreatedBefore})
	where += " AND trace_size > 0 AND erased_at IS NULL"
	source := " FROM jobs"
	if db.dialect.Name == "sqlite" {
		// Newest first through the project's id order, as the jobs list.
		source = " FROM jobs INDEXED BY jobs_project_kind_id"
	}
	rows, err := db.query(ctx, `SELECT id, trace_size`+source+where+
		` ORDER BY id DESC LIMIT `+strconv.Itoa(max(f.Limit, 0)), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.LogCandidate
	for rows.Next() {
		var c store.LogCandidate
		if err := rows.Scan(&c.ID, &c.TraceSize); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

func (db *DB) PendingLogs(ctx context.Context, afterProjectID, afterJobID int64, limit int) ([]store.PendingLog, error) {
	rows, err := db.query(ctx, `SELECT job_id, project_id, size, created_at FROM log_search_pending
		WHERE project_id > ? OR (project_id = ? AND job_id > ?) ORDER BY project_id, job_id LIMIT ?`,
		afterProjectID, afterProjectID, afterJobID, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.PendingLog
	for rows.Next() {
		var p store.PendingLog
		var created int64
		if err := rows.Scan(&p.JobID, &p.ProjectID, &p.Size, &created); err != nil {
			return nil, err
		}
		p.CreatedAt = fromMicros(created)
		out = append(out, p)
	}
	return out, rows.Err()
}

func (db *DB) RecordLogSegment(ctx context.Context, s store.LogSegment) (*store.LogSegment, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		s.ID, err = db.insertID(ctx, tx, `INSERT INTO log_search_segments (project_id, blob_key, first_job_id, last_job_id, logs, log_bytes, index_bytes, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, s.ProjectID, s.BlobKey, s.FirstJobID, s.LastJobID, s.Logs, s.LogBytes, s.IndexBytes, tm(s.CreatedAt))
		if err != nil {
			return err
		}
		var taken int64
		for ids := s.JobIDs; len(ids) > 0; {
			n := min(len(ids), 500)
			r, err := tx.ExecContext(ctx, db.q(`DELETE FROM log_search_pending WHERE job_id IN (`+placeholders(n)+`)`), int64Args(ids[:n])...)
			if err != nil {
				return err
			}
			k, _ := r.RowsAffected()
			taken += k
			ids = ids[n:]
		}
		if taken != int64(len(s.JobIDs)) {
			// Another node indexed some of these logs meanwhile.
			return fmt.Errorf("%w: %d of %d logs are no longer pending", ci.ErrConflict, int64(len(s.JobIDs))-taken, len(s.JobIDs))
		}
		return nil
	})
	if err != nil {
		return nil, db.translate(err)
	}
	return &s, nil
}

func (db *DB) LogSegments(ctx context.Context, projectID, fromID, toID int64) ([]store.LogSegment, error) {
	rows, err := db.query(ctx, `SELECT id, project_id, blob_key, first_job_id, last_job_id, logs, log_bytes, index_bytes, created_at
		FROM log_search_segments WHERE project_id = ? AND last_job_id >= ? AND first_job_id <= ? ORDER BY last_job_id DESC`, projectID, fromID, toID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.LogSegment
	for rows.Next() {
		var s store.LogSegment
		var created int64
		if err := rows.Scan(&s.ID, &s.ProjectID, &s.BlobKey, &s.FirstJobID, &s.LastJobID, &s.Logs, &s.LogBytes, &s.IndexBytes, &created); err != nil {
			return nil, err
		}
		s.CreatedAt = fromMicros(created)
		out = append(out, s)
	}
	return out, rows.Err()
}
