package sqldb

import (
	"context"
	"fmt"
	"time"
)

// SeedSyntheticJobs bulk-inserts n finished builds into a project, spread
// over the given pipelines, in one statement. Benchmarks use it to build
// large datasets quickly; the server never calls it.
func (db *DB) SeedSyntheticJobs(ctx context.Context, projectID int64, pipelineIDs []int64, userID, runnerID int64, n int, createdAt time.Time) error {
	if len(pipelineIDs) == 0 || n <= 0 {
		return fmt.Errorf("seed: need pipelines and n > 0")
	}
	// Pipelines are expected to have consecutive ids.
	first, count := pipelineIDs[0], int64(len(pipelineIDs))
	base := tm(createdAt)
	cols := `project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, allow_failure, when_, created_at, queued_at, started_at, finished_at,
		user_id, failure_reason, runner_id, tag_list, updated_at`
	sel := fmt.Sprintf(`SELECT %d, %d + (i %% %d), 'build', 'job-' || (i %% 50), 'test', 1,
		CASE i %% 4 WHEN 0 THEN 'failed' WHEN 1 THEN 'success' WHEN 2 THEN 'success' ELSE 'canceled' END,
		'main', FALSE, FALSE, 'on_success', %d + i * 1000, %d + i * 1000 + 500, %d + i * 1000 + 700000, %d + i * 1000 + 9700000,
		%d, CASE i %% 4 WHEN 0 THEN 'script_failure' ELSE '' END, %d, '["docker","linux"]', %d + i * 1000`,
		projectID, first, count, base, base, base, base, userID, runnerID, base)
	var query string
	if db.dialect.Name == "postgres" {
		query = `INSERT INTO jobs (` + cols + `) ` + sel + fmt.Sprintf(` FROM generate_series(1, %d) AS s(i)`, n)
	} else {
		query = fmt.Sprintf(`WITH RECURSIVE s(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM s WHERE i < %d) INSERT INTO jobs (`, n) + cols + `) ` + sel + ` FROM s`
	}
	if db.writeMu != nil {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	if _, err := db.write.ExecContext(ctx, query); err != nil {
		return err
	}
	if db.dialect.Name == "postgres" {
		// The artifacts trigger joins the new rows to jobs: without
		// statistics on the table just loaded, PostgreSQL may plan a scan
		// of jobs per job.
		if _, err := db.write.ExecContext(ctx, `ANALYZE jobs`); err != nil {
			return err
		}
	}
	// Every finished job has its archived log, which lists as an artifact.
	if _, err := db.write.ExecContext(ctx, db.q(`INSERT INTO artifacts (job_id, project_id, file_type, file_format, filename, size, blob_key, created_at)
		SELECT id, project_id, ?, ?, ?, 2000 + id % 50000, 'traces/' || id, finished_at FROM jobs WHERE project_id = ?`),
		traceFileType, traceFileFormat, traceFilename, projectID); err != nil {
		return err
	}
	if db.dialect.Name == "postgres" {
		// What autovacuum would do to a table of this age: statistics and a
		// visibility map, so index-only scans apply.
		_, err := db.write.ExecContext(ctx, `VACUUM ANALYZE jobs`)
		return err
	}
	if _, err := db.write.ExecContext(ctx, `ANALYZE`); err != nil {
		return err
	}
	// What a server that keeps writing gets from its checkpoints: the bulk
	// load moved into the database file and the WAL restarted. Without a
	// later write the WAL is never restarted, and every read of the loaded
	// rows would go through it with a read syscall per page.
	_, err := db.write.ExecContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`)
	return err
}
