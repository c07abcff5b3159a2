package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const jobCols = `id, project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, coverage, allow_failure, when_,
	created_at, queued_at, started_at, finished_at, erased_at, erased_by_id, user_id, failure_reason, runner_id, runner_manager_id,
	artifacts_expire_at, tag_list, retried, downstream_pipeline_id, updated_at, lock_version`

func scanJob(row interface{ Scan(...any) error }) (*ci.Job, error) {
	var j ci.Job
	var cov sql.NullFloat64
	var created, updated int64
	var queued, started, finished, erased, erasedBy, user, runner, manager, expire, downstream sql.NullInt64
	var reason, tags string
	if err := row.Scan(&j.ID, &j.ProjectID, &j.PipelineID, &j.Kind, &j.Name, &j.Stage, &j.StageIdx, &j.Status, &j.Ref, &j.Tag, &cov,
		&j.AllowFailure, &j.When, &created, &queued, &started, &finished, &erased, &erasedBy, &user, &reason, &runner, &manager,
		&expire, &tags, &j.Retried, &downstream, &updated, &j.LockVersion); err != nil {
		return nil, err
	}
	if cov.Valid {
		j.Coverage = &cov.Float64
	}
	j.CreatedAt, j.UpdatedAt = fromMicros(created), fromMicros(updated)
	j.QueuedAt, j.StartedAt, j.FinishedAt, j.ErasedAt = fromNull(queued), fromNull(started), fromNull(finished), fromNull(erased)
	j.ErasedByID, j.UserID, j.RunnerID, j.RunnerManagerID = nullID(erasedBy), nullID(user), nullID(runner), nullID(manager)
	j.ArtifactsExpireAt, j.DownstreamPipelineID = fromNull(expire), nullID(downstream)
	j.FailureReason = ci.FailureReason(reason)
	if tags != "" && tags != "[]" {
		_ = json.Unmarshal([]byte(tags), &j.TagList)
	}
	return &j, nil
}

func encodeTags(tags []string) string {
	if len(tags) == 0 {
		return "[]"
	}
	sorted := append([]string(nil), tags...)
	sort.Strings(sorted)
	b, _ := json.Marshal(sorted)
	return string(b)
}

func (db *DB) InsertJob(ctx context.Context, j ci.Job) (*ci.Job, error) {
	if !j.Status.Valid() {
		return nil, fmt.Errorf("%w: status %q", ci.ErrInvalid, j.Status)
	}
	if j.When == "" {
		j.When = "on_success"
	}
	if j.UpdatedAt.IsZero() {
		j.UpdatedAt = j.CreatedAt
	}
	var cov any
	if j.Coverage != nil {
		cov = *j.Coverage
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO jobs (project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, coverage, allow_failure, when_,
			created_at, queued_at, started_at, finished_at, erased_at, erased_by_id, user_id, failure_reason, runner_id, runner_manager_id,
			artifacts_expire_at, tag_list, retried, downstream_pipeline_id, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			j.ProjectID, j.PipelineID, string(j.Kind), j.Name, j.Stage, j.StageIdx, string(j.Status), j.Ref, j.Tag, cov, j.AllowFailure, j.When,
			tm(j.CreatedAt), tmp(j.QueuedAt), tmp(j.StartedAt), tmp(j.FinishedAt), tmp(j.ErasedAt), idArg(j.ErasedByID), idArg(j.UserID),
			string(j.FailureReason), idArg(j.RunnerID), idArg(j.RunnerManagerID), tmp(j.ArtifactsExpireAt), encodeTags(j.TagList), j.Retried,
			idArg(j.DownstreamPipelineID), tm(j.UpdatedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.JobByID(ctx, j.ProjectID, id)
}

func (db *DB) JobByID(ctx context.Context, projectID, id int64) (*ci.Job, error) {
	j, err := scanJob(db.queryRow(ctx, (`SELECT ` + jobCols + ` FROM jobs WHERE id = ? AND project_id = ?`), id, projectID))
	return j, db.translate(err)
}

func jobWhere(f store.JobFilter) (string, []any) {
	var where []string
	var args []any
	if f.ProjectID != 0 {
		where = append(where, "project_id = ?")
		args = append(args, f.ProjectID)
	}
	if f.Kind != "" {
		where = append(where, "kind = ?")
		args = append(args, string(f.Kind))
	}
	if f.PipelineID != 0 {
		where = append(where, "pipeline_id = ?")
		args = append(args, f.PipelineID)
	}
	if len(f.Statuses) > 0 {
		where = append(where, "status IN ("+placeholders(len(f.Statuses))+")")
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	if f.Ref != "" {
		// A job's ref is copied from its pipeline's, so this is the pipeline ref filter.
		where = append(where, "ref = ?")
		args = append(args, f.Ref)
	}
	if !f.IncludeRetried {
		where = append(where, "retried = FALSE")
	}
	if f.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, f.BeforeID)
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

func (db *DB) ListJobs(ctx context.Context, f store.JobFilter) ([]*ci.Job, error) {
	where, args := jobWhere(f)
	query := `SELECT ` + jobCols + ` FROM jobs` + where + ` ORDER BY id DESC LIMIT ?`
	args = append(args, f.Limit)
	if f.Offset > 0 {
		query += ` OFFSET ?`
		args = append(args, f.Offset)
	}
	rows, err := db.query(ctx, (query), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := make([]*ci.Job, 0, f.Limit)
	for rows.Next() {
		j, err := scanJob(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, j)
	}
	return out, rows.Err()
}

func (db *DB) CountJobs(ctx context.Context, f store.JobFilter, limit int) (int, error) {
	where, args := jobWhere(f)
	args = append(args, limit)
	var n int
	err := db.queryRow(ctx, (`SELECT count(*) FROM (SELECT 1 FROM jobs` + where + ` LIMIT ?) x`), args...).Scan(&n)
	return n, err
}

func (db *DB) TransitionJob(ctx context.Context, p store.TransitionParams) (*ci.Job, error) {
	if err := ci.CheckTransition(p.From, p.To); err != nil {
		return nil, err
	}
	now := tm(p.Now)
	sets := []string{"status = ?", "updated_at = ?", "lock_version = lock_version + 1"}
	args := []any{string(p.To), now}
	switch p.To {
	case ci.StatusPending:
		sets = append(sets, "queued_at = ?")
		args = append(args, now)
	case ci.StatusRunning:
		sets = append(sets, "started_at = ?")
		args = append(args, now)
	case ci.StatusSuccess, ci.StatusFailed, ci.StatusCanceled:
		sets = append(sets, "finished_at = ?")
		args = append(args, now)
	}
	if p.To == ci.StatusFailed {
		reason := p.FailureReason
		if reason == "" {
			reason = ci.FailureUnknown
		}
		sets = append(sets, "failure_reason = ?")
		args = append(args, string(reason))
	}
	args = append(args, p.JobID, string(p.From))
	var projectID int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = ? RETURNING project_id`), args...).Scan(&projectID)
		if err == sql.ErrNoRows {
			return fmt.Errorf("%w: job %d is not %s", ci.ErrConflict, p.JobID, p.From)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.JobByID(ctx, projectID, p.JobID)
}

func (db *DB) SetJobToken(ctx context.Context, jobID int64, digest string) error {
	res, err := db.exec(ctx, `UPDATE jobs SET token_digest = ? WHERE id = ?`, digest, jobID)
	if err != nil {
		return db.translate(err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) JobByTokenDigest(ctx context.Context, digest string) (*ci.Job, error) {
	j, err := scanJob(db.queryRow(ctx, (`SELECT ` + jobCols + ` FROM jobs WHERE token_digest = ?`), digest))
	return j, db.translate(err)
}
