package sqldb

import (
	"context"
	"database/sql"
	"strings"

	"gantry/internal/store"
)

// The archived log's artifact row, as GitLab lists it among a job's artifacts.
const (
	traceFileType   = "trace"
	traceFileFormat = "raw"
	traceFilename   = "job.log"
)

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

const traceArchiveCols = `job_id, project_id, blob_key, size, file_sha256, created_at`

func scanTraceArchive(s scanner) (*store.TraceArchive, error) {
	var a store.TraceArchive
	var sum sql.NullString
	var created int64
	if err := s.Scan(&a.JobID, &a.ProjectID, &a.BlobKey, &a.Size, &sum, &created); err != nil {
		return nil, err
	}
	a.SHA256, a.CreatedAt = sum.String, fromMicros(created)
	return &a, nil
}

func (db *DB) TraceArchiveOf(ctx context.Context, jobID int64) (*store.TraceArchive, error) {
	a, err := scanTraceArchive(db.queryRow(ctx, `SELECT `+traceArchiveCols+` FROM artifacts
		WHERE job_id = ? AND file_type = ? ORDER BY id LIMIT 1`, jobID, traceFileType))
	return a, db.translate(err)
}

func (db *DB) TraceArchivesOf(ctx context.Context, jobIDs []int64) (map[int64]*store.TraceArchive, error) {
	out := map[int64]*store.TraceArchive{}
	jobIDs = uniqueIDs(jobIDs)
	if len(jobIDs) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, `SELECT `+traceArchiveCols+` FROM artifacts
		WHERE job_id IN (`+placeholders(len(jobIDs))+`) AND file_type = ? ORDER BY id`, append(int64Args(jobIDs), traceFileType)...)
	list, err := collect(rows, err, scanTraceArchive)
	for _, a := range list {
		if out[a.JobID] == nil { // the first, as TraceArchiveOf
			out[a.JobID] = a
		}
	}
	return out, err
}

func (db *DB) RecordTraceArchives(ctx context.Context, records []store.TraceArchive, deleteChunksOf []int64) (store.RecordedTraceArchives, error) {
	done := store.RecordedTraceArchives{ChunksDeleted: map[int64]int64{}}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if len(records) > 0 {
			if done.Inserted, done.Conflicts, err = db.recordTraceArchives(ctx, tx, records); err != nil {
				return err
			}
		}
		if ids := uniqueIDs(deleteChunksOf); len(ids) > 0 {
			// RETURNING gives the count per job; a job's chunks go only
			// once an archive of its full length is recorded.
			in := placeholders(len(ids))
			args := append(append(int64Args(ids), int64Args(ids)...), traceFileType)
			deleted, err := collectIDs(tx.QueryContext(ctx, db.q(`DELETE FROM trace_chunks WHERE job_id IN (`+in+`) AND job_id IN (
				SELECT a.job_id FROM artifacts a JOIN jobs j ON j.id = a.job_id
				WHERE a.job_id IN (`+in+`) AND a.file_type = ? AND a.size = j.trace_size) RETURNING job_id`), args...))
			for _, id := range deleted {
				done.ChunksDeleted[id]++
			}
			return err
		}
		return nil
	})
	return done, err
}

// recordTraceArchives inserts the records of the jobs whose log still has
// the recorded length and no record yet, a statement per step for the
// whole batch, and returns the jobs inserted and those refused.
func (db *DB) recordTraceArchives(ctx context.Context, tx *sql.Tx, records []store.TraceArchive) (inserted, conflicts []int64, err error) {
	// Marking the rows takes their locks (AppendTrace's update takes them
	// too) and skips a log that grew since it was archived.
	ids := make([]int64, len(records))
	sizes := make([]string, len(records))
	args := make([]any, 0, 3*len(records))
	for i, r := range records {
		ids[i] = r.JobID
		sizes[i] = "(id = ? AND trace_size = ?)"
		args = append(args, r.JobID, r.Size)
	}
	args = append(int64Args(ids), args...)
	marked, err := collectIDs(tx.QueryContext(ctx, db.q(`UPDATE jobs SET trace_archived = TRUE WHERE id IN (`+placeholders(len(ids))+`)
		AND (`+strings.Join(sizes, " OR ")+`) RETURNING id`), args...))
	if err != nil {
		return nil, nil, err
	}
	if len(marked) == 0 {
		return nil, ids, nil
	}
	had, err := collectIDs(tx.QueryContext(ctx, db.q(`SELECT DISTINCT job_id FROM artifacts WHERE job_id IN (`+placeholders(len(marked))+`) AND file_type = ?`),
		append(int64Args(marked), traceFileType)...))
	if err != nil {
		return nil, nil, err
	}
	skip := make(map[int64]bool, len(records))
	for _, id := range had {
		skip[id] = true
	}
	ok := make(map[int64]bool, len(marked))
	for _, id := range marked {
		ok[id] = true
	}
	var artifactRows, pendingRows, blobRows []string
	var artifactArgs, pendingArgs, blobArgs []any
	for _, r := range records {
		switch {
		case !ok[r.JobID]:
			conflicts = append(conflicts, r.JobID)
			continue
		case skip[r.JobID]:
			continue
		}
		skip[r.JobID] = true // a job listed twice is recorded once
		inserted = append(inserted, r.JobID)
		artifactRows = append(artifactRows, "(?, ?, ?, ?, ?, ?, ?, ?, ?)")
		artifactArgs = append(artifactArgs, r.JobID, r.ProjectID, traceFileType, traceFileFormat, traceFilename, r.Size, r.BlobKey, r.SHA256, tm(r.CreatedAt))
		pendingRows = append(pendingRows, "(?, ?, ?, ?)")
		pendingArgs = append(pendingArgs, r.JobID, r.ProjectID, r.Size, tm(r.CreatedAt))
		if r.Data != nil {
			blobRows = append(blobRows, "(?, ?)")
			blobArgs = append(blobArgs, r.BlobKey, r.Data)
		}
	}
	if len(inserted) == 0 {
		return nil, conflicts, nil
	}
	if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO artifacts (job_id, project_id, file_type, file_format, filename, size, blob_key, file_sha256, created_at)
		VALUES `+strings.Join(artifactRows, ", ")), artifactArgs...); err != nil {
		return nil, nil, db.translate(err)
	}
	if len(blobRows) > 0 {
		if _, err := tx.ExecContext(ctx, db.q(upsertSmallBlobs(strings.Join(blobRows, ", "))), blobArgs...); err != nil {
			return nil, nil, db.translate(err)
		}
	}
	// The archived logs now wait for the search indexer.
	if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO log_search_pending (job_id, project_id, size, created_at) VALUES `+strings.Join(pendingRows, ", ")), pendingArgs...); err != nil {
		return nil, nil, db.translate(err)
	}
	return inserted, conflicts, nil
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

func (db *DB) PutSmallBlob(ctx context.Context, key string, data []byte) error {
	if data == nil {
		data = []byte{} // NOT NULL: an empty blob is still a blob
	}
	_, err := db.exec(ctx, upsertSmallBlobs("(?, ?)"), key, data)
	return err
}

// upsertSmallBlobs creates or replaces the small blobs of values, a list
// of (key, data) tuples.
func upsertSmallBlobs(values string) string {
	return `INSERT INTO small_blobs (key, data) VALUES ` + values + ` ON CONFLICT (key) DO UPDATE SET data = excluded.data`
}

func (db *DB) SmallBlob(ctx context.Context, key string) ([]byte, error) {
	var data []byte
	err := db.queryRow(ctx, `SELECT data FROM small_blobs WHERE key = ?`, key).Scan(&data)
	return data, db.translate(err)
}

func (db *DB) DeleteSmallBlob(ctx context.Context, key string) error {
	_, err := db.exec(ctx, `DELETE FROM small_blobs WHERE key = ?`, key)
	return err
}
