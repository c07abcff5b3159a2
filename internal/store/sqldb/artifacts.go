package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"gantry/internal/ci"
)

func (db *DB) InsertArtifact(ctx context.Context, a ci.Artifact) (*ci.Artifact, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		a.ID, err = db.insertID(ctx, tx, `INSERT INTO artifacts (job_id, project_id, file_type, file_format, filename, size, blob_key, expire_at, created_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.JobID, a.ProjectID, a.FileType, a.FileFormat, a.Filename, a.Size, a.BlobKey, tmp(a.ExpireAt), tm(a.CreatedAt))
		if err != nil || a.FileType != "archive" {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE jobs SET artifacts_expire_at = ? WHERE id = ?`), tmp(a.ExpireAt), a.JobID)
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
	if len(data) == 0 {
		length, err := db.TraceSize(ctx, jobID)
		if err == nil && offset != length {
			err = fmt.Errorf("%w: trace offset %d, length %d", ci.ErrConflict, offset, length)
		}
		return length, err
	}
	length, _, err := db.appendChunk(ctx, "", nil, jobID, offset, data)
	if errors.Is(err, sql.ErrNoRows) {
		return db.appendRefused(ctx, jobID, offset)
	}
	return length, err
}

func (db *DB) AppendTraceAs(ctx context.Context, jobID int64, tokenDigest string, offset int64, data []byte) (int64, ci.JobStatus, error) {
	if len(data) == 0 {
		return 0, "", ci.ErrNotFound
	}
	length, status, err := db.appendChunk(ctx, ` AND token_digest = ? AND status IN ('running', 'canceling')`, []any{tokenDigest}, jobID, offset, data)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", ci.ErrNotFound
	}
	return length, status, err
}

// appendChunk stores data at offset as a new chunk if the job's log is
// offset bytes long, not archived and the job meets cond (more AND terms
// with their args), and returns the new length and the job's status;
// sql.ErrNoRows when it refused. One conditional update moves the length:
// concurrent appends at the same offset cannot both succeed, and an
// archive committed first has set trace_archived on the same row, so no
// acknowledged byte lands after the archived log.
func (db *DB) appendChunk(ctx context.Context, cond string, condArgs []any, jobID, offset int64, data []byte) (int64, ci.JobStatus, error) {
	move := `UPDATE jobs SET trace_size = trace_size + ? WHERE id = ? AND trace_size = ? AND NOT trace_archived` + cond + ` RETURNING trace_size, status`
	moveArgs := append([]any{len(data), jobID, offset}, condArgs...)
	var length int64
	var status string
	var err error
	if db.dialect.Name == "postgres" {
		// One round trip: the chunk is inserted only when the length moved.
		db.writes.Add(1)
		err = db.write.QueryRowContext(ctx, db.q(`WITH moved AS (`+move+`),
			chunk AS (INSERT INTO trace_chunks (job_id, start_offset, data) SELECT ?, ?, ? FROM moved)
			SELECT trace_size, status FROM moved`), append(moveArgs, jobID, offset, data)...).Scan(&length, &status)
	} else {
		err = db.tx(ctx, func(tx *sql.Tx) error {
			if err := tx.QueryRowContext(ctx, move, moveArgs...).Scan(&length, &status); err != nil {
				return err
			}
			_, err := tx.ExecContext(ctx, `INSERT INTO trace_chunks (job_id, start_offset, data) VALUES (?, ?, ?)`, jobID, offset, data)
			return db.translate(err)
		})
	}
	if errors.Is(err, sql.ErrNoRows) {
		return 0, "", err
	}
	return length, ci.JobStatus(status), db.translate(err)
}

// appendRefused explains an append whose conditional update moved nothing.
func (db *DB) appendRefused(ctx context.Context, jobID, offset int64) (int64, error) {
	var length int64
	var archived bool
	err := db.queryRow(ctx, `SELECT trace_size, trace_archived FROM jobs WHERE id = ?`, jobID).Scan(&length, &archived)
	switch {
	case err != nil:
		return 0, db.translate(err)
	case archived:
		return length, fmt.Errorf("%w: trace already archived", ci.ErrConflict)
	}
	return length, fmt.Errorf("%w: trace offset %d, length %d", ci.ErrConflict, offset, length)
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

// unlockedPipeline holds for a pipeline p whose artifacts are not protected
// by the keep-latest rule (see store.Artifacts). Child pipelines are judged
// by their parent.
const unlockedPipeline = `EXISTS (SELECT 1 FROM pipelines newer WHERE newer.project_id = p.project_id AND newer.ref = p.ref
		AND newer.tag = p.tag AND newer.parent_id IS NULL AND newer.id > COALESCE(p.parent_id, p.id)
		AND newer.status IN ('success', 'failed', 'canceled', 'skipped', 'manual', 'scheduled'))
	AND NOT EXISTS (SELECT 1 FROM pipelines root WHERE root.id = COALESCE(p.parent_id, p.id) AND root.status = 'success'
		AND NOT EXISTS (SELECT 1 FROM pipelines later WHERE later.project_id = root.project_id AND later.ref = root.ref
			AND later.tag = root.tag AND later.parent_id IS NULL AND later.id > root.id AND later.status = 'success'))`

// unlockedArtifacts selects the ids of artifacts a whose pipeline is unlocked;
// callers append their own conditions on a.
const unlockedArtifacts = `SELECT a.id FROM artifacts a JOIN jobs j ON j.id = a.job_id JOIN pipelines p ON p.id = j.pipeline_id
	WHERE ` + unlockedPipeline

func (db *DB) KeepArtifacts(ctx context.Context, jobID int64) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET artifacts_expire_at = NULL WHERE id = ?`), jobID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ci.ErrNotFound
		}
		_, err = tx.ExecContext(ctx, db.q(`UPDATE artifacts SET expire_at = NULL WHERE job_id = ?`), jobID)
		return err
	})
}

func (db *DB) DeleteJobArtifacts(ctx context.Context, jobID int64) ([]string, error) {
	return db.deleteArtifacts(ctx, `DELETE FROM artifacts WHERE job_id = ? AND file_type <> 'trace' RETURNING blob_key`, jobID)
}

func (db *DB) DeleteProjectArtifacts(ctx context.Context, projectID int64) ([]string, error) {
	return db.deleteArtifacts(ctx, `DELETE FROM artifacts WHERE id IN (`+unlockedArtifacts+`
		AND a.project_id = ? AND a.file_type <> 'trace') RETURNING blob_key`, projectID)
}

func (db *DB) DeleteExpiredArtifacts(ctx context.Context, now time.Time, limit int) ([]string, error) {
	return db.deleteArtifacts(ctx, `DELETE FROM artifacts WHERE id IN (`+unlockedArtifacts+`
		AND a.expire_at IS NOT NULL AND a.expire_at <= ? ORDER BY a.expire_at LIMIT ?) RETURNING blob_key`, tm(now), limit)
}

// deleteArtifacts runs a DELETE … RETURNING blob_key and collects the keys.
func (db *DB) deleteArtifacts(ctx context.Context, query string, args ...any) ([]string, error) {
	var keys []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(query), args...)
		keys, err = collect(rows, err, func(s scanner) (string, error) {
			var k string
			return k, s.Scan(&k)
		})
		return err
	})
	return keys, err
}

func (db *DB) LatestArtifactsJob(ctx context.Context, projectID int64, ref, name string, now time.Time) (*ci.Job, error) {
	jobs, err := db.jobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE project_id = ? AND kind = 'build' AND name = ?
		AND pipeline_id IN (SELECT latest.id FROM pipelines latest WHERE latest.id = (SELECT max(id) FROM pipelines
			WHERE project_id = ? AND ref = ? AND status = 'success' AND parent_id IS NULL)
			UNION SELECT child.id FROM pipelines child WHERE child.parent_id = (SELECT max(id) FROM pipelines
			WHERE project_id = ? AND ref = ? AND status = 'success' AND parent_id IS NULL))
		AND EXISTS (SELECT 1 FROM artifacts a WHERE a.job_id = jobs.id AND a.file_type = 'archive' AND (a.expire_at IS NULL OR a.expire_at > ?))
		ORDER BY id DESC LIMIT 1`, projectID, name, projectID, ref, projectID, ref, tm(now))
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, ci.ErrNotFound
	}
	return jobs[0], nil
}
