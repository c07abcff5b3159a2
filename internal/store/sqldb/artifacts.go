package sqldb

import (
	"context"
	"database/sql"
	"fmt"

	"gantry/internal/ci"
)

func (db *DB) InsertArtifact(ctx context.Context, a ci.Artifact) (*ci.Artifact, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		a.ID, err = db.insertID(ctx, tx, `INSERT INTO artifacts (job_id, project_id, file_type, file_format, filename, size, blob_key, expire_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.JobID, a.ProjectID, a.FileType, a.FileFormat, a.Filename, a.Size, a.BlobKey, tmp(a.ExpireAt), tm(a.CreatedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &a, nil
}

func (db *DB) ArtifactsByJobIDs(ctx context.Context, ids []int64) (map[int64][]*ci.Artifact, error) {
	out := map[int64][]*ci.Artifact{}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, (`SELECT id, job_id, project_id, file_type, file_format, filename, size, blob_key, expire_at, created_at
		FROM artifacts WHERE job_id IN (` + placeholders(len(ids)) + `) ORDER BY id`), int64Args(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a ci.Artifact
		var exp sql.NullInt64
		var created int64
		if err := rows.Scan(&a.ID, &a.JobID, &a.ProjectID, &a.FileType, &a.FileFormat, &a.Filename, &a.Size, &a.BlobKey, &exp, &created); err != nil {
			return nil, err
		}
		a.ExpireAt, a.CreatedAt = fromNull(exp), fromMicros(created)
		out[a.JobID] = append(out[a.JobID], &a)
	}
	return out, rows.Err()
}

func (db *DB) AppendTrace(ctx context.Context, jobID int64, offset int64, data []byte) (int64, error) {
	var length int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		if err := tx.QueryRowContext(ctx, db.q(`SELECT trace_size FROM jobs WHERE id = ?`), jobID).Scan(&length); err != nil {
			return db.translate(err)
		}
		if offset != length {
			return fmt.Errorf("%w: trace offset %d, length %d", ci.ErrConflict, offset, length)
		}
		if len(data) == 0 {
			return nil
		}
		// The size check and the append commit together: concurrent appends
		// at the same offset cannot both succeed.
		r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET trace_size = trace_size + ? WHERE id = ? AND trace_size = ?`), len(data), jobID, offset)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n != 1 {
			return fmt.Errorf("%w: trace moved during append", ci.ErrConflict)
		}
		// Checked after the update took the job row's lock, which
		// RecordTraceArchive also takes: an archive committed first is
		// seen here, so no acknowledged byte lands after the archived log.
		if archived, err := traceArchived(ctx, tx, db, jobID); err != nil || archived {
			if err == nil {
				err = fmt.Errorf("%w: trace already archived", ci.ErrConflict)
			}
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO trace_chunks (job_id, start_offset, data) VALUES (?, ?, ?)`), jobID, offset, data); err != nil {
			return db.translate(err)
		}
		length += int64(len(data))
		return nil
	})
	return length, err
}

func (db *DB) TraceSize(ctx context.Context, jobID int64) (int64, error) {
	var n int64
	err := db.queryRow(ctx, `SELECT trace_size FROM jobs WHERE id = ?`, jobID).Scan(&n)
	return n, db.translate(err)
}

func (db *DB) ReadTrace(ctx context.Context, jobID int64) ([]byte, error) {
	rows, err := db.query(ctx, (`SELECT data FROM trace_chunks WHERE job_id = ? ORDER BY start_offset`), jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []byte
	for rows.Next() {
		var chunk []byte
		if err := rows.Scan(&chunk); err != nil {
			return nil, err
		}
		out = append(out, chunk...)
	}
	return out, rows.Err()
}
