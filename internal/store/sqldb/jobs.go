package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const jobCols = `id, project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, coverage, allow_failure, when_,
	created_at, queued_at, started_at, finished_at, erased_at, erased_by_id, user_id, failure_reason, runner_id, runner_manager_id,
	artifacts_expire_at, tag_list, retried, downstream_pipeline_id, updated_at, lock_version, exit_code, timeout_seconds, runner_updated_at`

// jobColCount is how many columns jobCols names.
var jobColCount = strings.Count(jobCols, ",") + 1

func scanJob(row interface{ Scan(...any) error }) (*ci.Job, error) {
	r := newRawRow(jobColCount)
	if err := row.Scan(r.ptrs...); err != nil {
		return nil, err
	}
	return jobFromRow(r)
}

func jobFromRow(r *rawRow) (*ci.Job, error) {
	j := &ci.Job{
		ID: r.i64(0), ProjectID: r.i64(1), PipelineID: r.i64(2), Kind: ci.JobKind(r.str(3)), Name: r.str(4), Stage: r.str(5),
		StageIdx: int(r.i64(6)), Status: ci.JobStatus(r.str(7)), Ref: r.str(8), Tag: r.boolean(9), Coverage: r.nullF64(10),
		AllowFailure: r.boolean(11), When: r.str(12), CreatedAt: r.time(13), QueuedAt: r.nullTime(14), StartedAt: r.nullTime(15),
		FinishedAt: r.nullTime(16), ErasedAt: r.nullTime(17), ErasedByID: r.nullI64(18), UserID: r.nullI64(19),
		FailureReason: ci.FailureReason(r.str(20)), RunnerID: r.nullI64(21), RunnerManagerID: r.nullI64(22),
		ArtifactsExpireAt: r.nullTime(23), TagList: decodeTags(r.str(24)), Retried: r.boolean(25),
		DownstreamPipelineID: r.nullI64(26), UpdatedAt: r.time(27), LockVersion: r.i64(28),
		RunnerUpdatedAt: r.nullTime(31),
	}
	if v := r.nullI64(29); v != nil {
		c := int(*v)
		j.ExitCode = &c
	}
	if v := r.nullI64(30); v != nil {
		c := int(*v)
		j.TimeoutSeconds = &c
	}
	return j, r.err
}

// tagLists interns decoded tag lists: most jobs share a handful of tag
// sets, and decoding JSON per row dominated list scans. Callers must not
// modify the returned slices.
var tagLists sync.Map // string → []string

const maxInternedTagLists = 4096

var internedTagLists atomic.Int64

func decodeTags(s string) []string {
	if s == "" || s == "[]" {
		return nil
	}
	if v, ok := tagLists.Load(s); ok {
		return v.([]string)
	}
	var tags []string
	_ = json.Unmarshal([]byte(s), &tags)
	if internedTagLists.Load() < maxInternedTagLists {
		if _, loaded := tagLists.LoadOrStore(s, tags); !loaded {
			internedTagLists.Add(1)
		}
	}
	return tags
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
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertJobTx(ctx, tx, j)
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.JobByID(ctx, j.ProjectID, id)
}

func (db *DB) insertJobTx(ctx context.Context, tx *sql.Tx, j ci.Job) (int64, error) {
	if !j.Status.Valid() {
		return 0, fmt.Errorf("%w: status %q", ci.ErrInvalid, j.Status)
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
	return db.insertID(ctx, tx, `INSERT INTO jobs (project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, coverage, allow_failure, when_,
			created_at, queued_at, started_at, finished_at, erased_at, erased_by_id, user_id, failure_reason, runner_id, runner_manager_id,
			artifacts_expire_at, tag_list, retried, downstream_pipeline_id, updated_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		j.ProjectID, j.PipelineID, string(j.Kind), j.Name, j.Stage, j.StageIdx, string(j.Status), j.Ref, j.Tag, cov, j.AllowFailure, j.When,
		tm(j.CreatedAt), tmp(j.QueuedAt), tmp(j.StartedAt), tmp(j.FinishedAt), tmp(j.ErasedAt), idArg(j.ErasedByID), idArg(j.UserID),
		string(j.FailureReason), idArg(j.RunnerID), idArg(j.RunnerManagerID), tmp(j.ArtifactsExpireAt), encodeTags(j.TagList), j.Retried,
		idArg(j.DownstreamPipelineID), tm(j.UpdatedAt))
}

func (db *DB) JobByID(ctx context.Context, projectID, id int64) (*ci.Job, error) {
	j, err := scanJob(db.queryRow(ctx, (`SELECT ` + jobCols + ` FROM jobs WHERE id = ? AND project_id = ?`), id, projectID))
	return j, db.translate(err)
}

func (db *DB) JobsByIDs(ctx context.Context, projectID int64, ids []int64) ([]*ci.Job, error) {
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return nil, nil
	}
	return db.jobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE project_id = ? AND id IN (`+placeholders(len(ids))+`) ORDER BY id`,
		append([]any{projectID}, int64Args(ids)...)...)
}

func jobWhere(f store.JobFilter) (string, []any) {
	var where []string
	var args []any
	if f.ProjectID != 0 {
		where = append(where, "project_id = ?")
		args = append(args, f.ProjectID)
	}
	switch f.Kind {
	// Inlined rather than bound: SQLite plans and runs the list queries
	// markedly faster with the kind and the limit as literals (measured in
	// internal/bench), and both are closed sets, never user text.
	case ci.KindBuild:
		where = append(where, "kind = 'build'")
	case ci.KindBridge:
		where = append(where, "kind = 'bridge'")
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
	if f.Name != "" {
		where = append(where, "name = ?")
		args = append(args, f.Name)
	}
	for _, b := range []struct {
		cond string
		at   time.Time
	}{{"created_at > ?", f.CreatedAfter}, {"created_at < ?", f.CreatedBefore}, {"updated_at > ?", f.UpdatedAfter}, {"updated_at < ?", f.UpdatedBefore}} {
		if !b.at.IsZero() {
			where = append(where, b.cond)
			args = append(args, tm(b.at))
		}
	}
	if !f.IncludeRetried {
		where = append(where, "retried = FALSE")
	}
	if f.BeforeID > 0 {
		where = append(where, "id < ?")
		args = append(args, f.BeforeID)
	}
	if f.BeforeStage > 0 {
		where = append(where, "stage_idx < ?")
		args = append(args, f.BeforeStage)
	}
	if len(where) == 0 {
		return "", args
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

// jobsSource names the table, with an index hint on SQLite: its planner,
// seeing one dominant project in the statistics, would otherwise walk the
// rowid backwards and filter, which is slow for every other project.
func (db *DB) jobsSource(ctx context.Context, f store.JobFilter) (string, error) {
	if db.dialect.Name != "sqlite" {
		return " FROM jobs", nil
	}
	if f.ProjectID != 0 && f.Kind != "" && f.Name != "" {
		return " FROM jobs INDEXED BY jobs_project_kind_name_id", nil
	}
	if f.ProjectID != 0 && f.Kind != "" && timeBounded(f) {
		return db.timeBoundedSource(ctx, f)
	}
	switch {
	case len(f.Statuses) > 0:
		return " FROM jobs", nil
	case f.PipelineID != 0:
		return " FROM jobs INDEXED BY jobs_pipeline_id", nil
	case f.ProjectID != 0 && f.Kind != "":
		return " FROM jobs INDEXED BY jobs_project_kind_id", nil
	}
	return " FROM jobs", nil
}

func timeBounded(f store.JobFilter) bool {
	return !f.CreatedAfter.IsZero() || !f.CreatedBefore.IsZero() || !f.UpdatedAfter.IsZero() || !f.UpdatedBefore.IsZero()
}

// timeProbeCap is how many jobs in a time window still make the time
// index the better walk than the id order.
const timeProbeCap = 10000

// timeBoundedSource chooses, on SQLite (which keeps no statistics on
// ranges), between walking a time index and sorting what it finds, and
// walking the id order and filtering: it counts the window's jobs in the
// time index, up to timeProbeCap. A narrow window (the common "what changed
// lately") reads only its jobs; a wide one stops after a page of ids.
func (db *DB) timeBoundedSource(ctx context.Context, f store.JobFilter) (string, error) {
	index, column, after, before := "jobs_project_kind_updated", "updated_at", f.UpdatedAfter, f.UpdatedBefore
	if after.IsZero() && before.IsZero() {
		index, column, after, before = "jobs_project_kind_created", "created_at", f.CreatedAfter, f.CreatedBefore
	}
	where, args := "project_id = ? AND kind = ?", []any{f.ProjectID, string(f.Kind)}
	if !after.IsZero() {
		where += " AND " + column + " > ?"
		args = append(args, tm(after))
	}
	if !before.IsZero() {
		where += " AND " + column + " < ?"
		args = append(args, tm(before))
	}
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM jobs INDEXED BY `+index+` WHERE `+where+` LIMIT `+strconv.Itoa(timeProbeCap)+`) x`, args...).Scan(&n)
	if err != nil {
		return "", err
	}
	if n < timeProbeCap {
		return " FROM jobs INDEXED BY " + index, nil
	}
	return " FROM jobs INDEXED BY jobs_project_kind_id", nil
}

func (db *DB) ListJobs(ctx context.Context, f store.JobFilter) ([]*ci.Job, error) {
	query, args, err := db.listJobsQuery(ctx, f, "")
	if err != nil {
		return nil, err
	}
	return db.jobs(ctx, query, args...)
}

// listJobsQuery selects jobCols (and extra, when given) for f.
func (db *DB) listJobsQuery(ctx context.Context, f store.JobFilter, extra string) (string, []any, error) {
	source, err := db.jobsSource(ctx, f)
	if err != nil {
		return "", nil, err
	}
	where, args := jobWhere(f)
	limit := ` LIMIT ` + strconv.Itoa(max(f.Limit, 0))
	cols := jobCols + extra
	order := ` ORDER BY id DESC`
	if f.Ascending {
		order = ` ORDER BY id`
	}
	if f.Offset > 0 {
		// Deep pages: skip through the (covering) index for ids only, then
		// read the page's rows, rather than reading every skipped row.
		return `SELECT ` + cols + ` FROM jobs WHERE id IN (SELECT id` + source + where +
			order + limit + ` OFFSET ` + strconv.Itoa(f.Offset) + `)` + order, args, nil
	}
	return `SELECT ` + cols + source + where + order + limit, args, nil
}

// jobArtifactsColumn is a job row's artifacts as one JSON array of [id,
// file_type, file_format, filename, size, blob_key, expire_at, created_at]
// arrays, ordered by id: the artifacts_list column, which triggers on the
// artifacts table keep current (migration 0020).
const jobArtifactsColumn = `, artifacts_list`

func (db *DB) ListJobsWithArtifacts(ctx context.Context, f store.JobFilter) ([]*ci.Job, map[int64][]*ci.Artifact, error) {
	query, args, err := db.listJobsQuery(ctx, f, jobArtifactsColumn)
	if err != nil {
		return nil, nil, err
	}
	r := newRawRow(jobColCount + 1)
	arts := map[int64][]*ci.Artifact{}
	rows, err := db.query(ctx, query, args...)
	jobs, err := collect(rows, err, func(s scanner) (*ci.Job, error) {
		if err := s.Scan(r.ptrs...); err != nil {
			return nil, err
		}
		j, err := jobFromRow(r)
		if err != nil {
			return nil, err
		}
		list, err := decodeArtifactsColumn(r.vals[jobColCount], j)
		if err != nil {
			return nil, err
		}
		if len(list) > 0 {
			arts[j.ID] = list
		}
		return j, nil
	})
	if err != nil {
		return nil, nil, err
	}
	return jobs, arts, nil
}

func (db *DB) CountJobs(ctx context.Context, f store.JobFilter, limit int) (int, error) {
	where, args := jobWhere(f)
	args = append(args, limit)
	var n int
	err := db.queryRow(ctx, (`SELECT count(*) FROM (SELECT 1 FROM jobs` + where + ` LIMIT ?) x`), args...).Scan(&n)
	return n, err
}

// moveJob runs update (an UPDATE of one job, without RETURNING) and wakes
// the job's pipeline for processing, atomically: one statement on
// PostgreSQL, one transaction on SQLite. sql.ErrNoRows means nothing moved.
func (db *DB) moveJob(ctx context.Context, update string, args []any) (*ci.Job, error) {
	var job *ci.Job
	err := db.moveJobReturning(ctx, update, args, jobCols, jobCols+` FROM moved`, jobColCount, func(r *rawRow) (err error) {
		job, err = jobFromRow(r)
		return err
	})
	return job, err
}

// moveJobReturning runs a job move (update, without RETURNING) that
// returns the columns returning (jobCols first), scans n columns and hands
// them to read; the moved job's pipeline is flagged for processing in the
// same transaction. On PostgreSQL the move is a CTE named moved and outer
// is what is selected from it ("… FROM moved …"), which may read more than
// the UPDATE returns; on SQLite the n columns are returning's.
func (db *DB) moveJobReturning(ctx context.Context, update string, args []any, returning, outer string, n int, read func(*rawRow) error) error {
	update += ` RETURNING ` + returning
	if db.dialect.Name == "postgres" {
		r := newRawRow(n)
		db.writes.Add(1)
		err := db.write.QueryRowContext(ctx, db.q(`WITH moved AS (`+update+`),
			wake AS (INSERT INTO pipeline_wakeups (pipeline_id) SELECT pipeline_id FROM moved)
			SELECT `+outer), args...).Scan(r.ptrs...)
		if err != nil {
			return err
		}
		return read(r)
	}
	return db.tx(ctx, func(tx *sql.Tx) error { return db.moveIn(ctx, tx, update, args, n, read) })
}

// moveJobIn is moveJob inside an open transaction; update already ends in
// RETURNING jobCols.
func (db *DB) moveJobIn(ctx context.Context, tx *sql.Tx, update string, args []any) (*ci.Job, error) {
	var job *ci.Job
	err := db.moveIn(ctx, tx, update, args, jobColCount, func(r *rawRow) (err error) {
		job, err = jobFromRow(r)
		return err
	})
	return job, err
}

// moveIn runs a job move's UPDATE … RETURNING (jobCols first) in tx, hands
// the n columns it returns to read, and flags the moved job's pipeline.
func (db *DB) moveIn(ctx context.Context, tx *sql.Tx, update string, args []any, n int, read func(*rawRow) error) error {
	r := newRawRow(n)
	if err := tx.QueryRowContext(ctx, db.q(update), args...).Scan(r.ptrs...); err != nil {
		return err
	}
	if err := read(r); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, db.q(wakePipeline), r.i64(2)) // jobCols' pipeline_id
	return err
}

// transitionSets is the SET clause of a status move with its timestamps.
func transitionSets(to ci.JobStatus, reason ci.FailureReason, now int64) ([]string, []any) {
	sets := []string{"status = ?", "updated_at = ?", "lock_version = lock_version + 1"}
	args := []any{string(to), now}
	switch to {
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
	if to == ci.StatusFailed {
		if reason == "" {
			reason = ci.FailureUnknown
		}
		sets = append(sets, "failure_reason = ?")
		args = append(args, string(reason))
	}
	return sets, args
}

func (db *DB) TransitionJob(ctx context.Context, p store.TransitionParams) (*ci.Job, error) {
	if err := ci.CheckTransition(p.From, p.To); err != nil {
		return nil, err
	}
	sets, args := transitionSets(p.To, p.FailureReason, tm(p.Now))
	args = append(args, p.JobID, string(p.From))
	job, err := db.moveJob(ctx, `UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = ?`, args)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: job %d is not %s", ci.ErrConflict, p.JobID, p.From)
	}
	if err != nil {
		return nil, err
	}
	return job, nil
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

func (db *DB) PipelineNeeds(ctx context.Context, pipelineID int64) (map[int64][]string, error) {
	rows, err := db.query(ctx, `SELECT id, needs FROM jobs WHERE pipeline_id = ? AND needs <> '[]'`, pipelineID)
	out := map[int64][]string{}
	_, err = collect(rows, err, func(s scanner) (struct{}, error) {
		var id int64
		var raw string
		if err := s.Scan(&id, &raw); err != nil {
			return struct{}{}, err
		}
		var needs []string
		if err := json.Unmarshal([]byte(raw), &needs); err != nil {
			return struct{}{}, fmt.Errorf("job %d needs: %w", id, err)
		}
		if len(needs) > 0 {
			out[id] = needs
		}
		return struct{}{}, nil
	})
	return out, err
}
