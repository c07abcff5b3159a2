package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

// column reads a one-column result inside a transaction (db.ids reads
// ids from the read pool).
func column[T any](rows *sql.Rows, err error) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		var v T
		if err := rows.Scan(&v); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// wakePipeline records that a pipeline needs processing.
const wakePipeline = `INSERT INTO pipeline_wakeups (pipeline_id) VALUES (?)`

func (db *DB) CreatePipeline(ctx context.Context, np store.NewPipeline) (*ci.Pipeline, error) {
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if id, err = db.insertPipeline(ctx, tx, np.Pipeline); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(wakePipeline), id); err != nil {
			return err
		}
		for _, v := range np.Variables {
			vt := v.VariableType
			if vt == "" {
				vt = "env_var"
			}
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO pipeline_variables (pipeline_id, key, value, variable_type) VALUES (?, ?, ?, ?)`), id, v.Key, v.Value, vt); err != nil {
				return db.translate(err)
			}
		}
		return db.insertPlannedJobs(ctx, tx, id, np)
	})
	if err != nil {
		return nil, err
	}
	return db.PipelineByID(ctx, np.Pipeline.ProjectID, id)
}

func (db *DB) ProcessPipeline(ctx context.Context, pipelineID int64, now time.Time, decide store.Decider) (*store.ProcessResult, error) {
	res := &store.ProcessResult{}
	// Nothing happened since the last run: answer from a read, without a
	// write transaction (duplicate wake-ups end here).
	var flagged bool
	if err := db.queryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pipeline_wakeups WHERE pipeline_id = ?)`, pipelineID).Scan(&flagged); err != nil {
		return nil, db.translate(err)
	}
	if !flagged {
		p, err := scanPipeline(db.queryRow(ctx, `SELECT `+pipelineCols+` FROM pipelines WHERE id = ?`, pipelineID))
		res.Pipeline = p
		return res, db.translate(err)
	}
	err := db.tx(ctx, func(tx *sql.Tx) error {
		lock := ""
		if db.dialect.Name == "postgres" {
			// NO KEY UPDATE: wake-up inserts check their foreign key with
			// KEY SHARE, which this mode does not block.
			lock = " FOR NO KEY UPDATE"
		}
		var projectID int64
		var status string
		var started sql.NullInt64
		// The pipeline row lock serialises processors of one pipeline; job
		// moves do not take it. Wake-ups are consumed before the jobs are
		// read, so a move committed after this point leaves a wake-up for
		// the next run.
		if err := tx.QueryRowContext(ctx, db.q(`SELECT project_id, status, started_at FROM pipelines WHERE id = ?`+lock), pipelineID).Scan(&projectID, &status, &started); err != nil {
			return db.translate(err)
		}
		consumed, err := tx.ExecContext(ctx, db.q(`DELETE FROM pipeline_wakeups WHERE pipeline_id = ?`), pipelineID)
		if err != nil {
			return err
		}
		if n, _ := consumed.RowsAffected(); n == 0 {
			// Nothing happened since the last run: many wake-ups coalesce here.
			p, err := scanPipeline(tx.QueryRowContext(ctx, db.q(`SELECT `+pipelineCols+` FROM pipelines WHERE id = ?`), pipelineID))
			res.Pipeline = p
			return err
		}
		rows, err := tx.QueryContext(ctx, db.q(`SELECT id, name, stage_idx, status, allow_failure, when_, scheduling_dag, needs, resource_group, kind, tag_list
			FROM jobs WHERE pipeline_id = ? AND retried = FALSE ORDER BY stage_idx, id`), pipelineID)
		if err != nil {
			return err
		}
		var jobs []ci.ProcJob
		for rows.Next() {
			var j ci.ProcJob
			var needs, tags string
			if err := rows.Scan(&j.ID, &j.Name, &j.StageIdx, &j.Status, &j.AllowFailure, &j.When, &j.DAG, &needs, &j.ResourceGroup, &j.Kind, &tags); err != nil {
				rows.Close()
				return err
			}
			_ = json.Unmarshal([]byte(needs), &j.Needs)
			j.Tags = decodeTags(tags)
			jobs = append(jobs, j)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		transitions, newStatus := decide(jobs)
		n := tm(now)
		for _, t := range transitions {
			sets, args := transitionSets(t.To, "", n)
			args = append(args, t.JobID, string(t.From))
			r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = ?`), args...)
			if err != nil {
				return err
			}
			if c, _ := r.RowsAffected(); c != 1 {
				return fmt.Errorf("%w: job %d moved during processing", ci.ErrConflict, t.JobID)
			}
		}
		res.Transitions = transitions
		var sets []string
		var args []any
		if string(newStatus) != status {
			res.StatusChanged = true
			sets = append(sets, "status = ?", "updated_at = ?", "lock_version = lock_version + 1")
			args = append(args, string(newStatus), n)
			if newStatus.Active() && !started.Valid {
				sets = append(sets, "started_at = ?")
				args = append(args, n)
			}
			if newStatus.Completed() {
				sets = append(sets, "finished_at = ?", "duration = CASE WHEN started_at IS NULL THEN NULL ELSE (? - started_at) / 1000000 END")
				args = append(args, n, n)
			} else {
				sets = append(sets, "finished_at = NULL", "duration = NULL")
			}
		}
		if len(sets) > 0 {
			args = append(args, pipelineID)
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE pipelines SET `+strings.Join(sets, ", ")+` WHERE id = ?`), args...); err != nil {
				return err
			}
		}
		p, err := scanPipeline(tx.QueryRowContext(ctx, db.q(`SELECT `+pipelineCols+` FROM pipelines WHERE id = ?`), pipelineID))
		res.Pipeline = p
		return err
	})
	if err != nil {
		return nil, err
	}
	return res, nil
}

func (db *DB) PipelinesNeedingProcessing(ctx context.Context, limit int) ([]int64, error) {
	return db.ids(ctx, `SELECT DISTINCT pipeline_id FROM pipeline_wakeups ORDER BY pipeline_id LIMIT ?`, limit)
}

func (db *DB) MarkPipelineForProcessing(ctx context.Context, pipelineID int64) error {
	_, err := db.exec(ctx, wakePipeline, pipelineID)
	return err
}

func pipelineWhere(f store.PipelineFilter) (string, []any) {
	where := []string{"project_id = ?"}
	args := []any{f.ProjectID}
	if len(f.Statuses) > 0 {
		where = append(where, "status IN ("+placeholders(len(f.Statuses))+")")
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	if f.Ref != "" {
		where = append(where, "ref = ?")
		args = append(args, f.Ref)
	}
	if f.SHA != "" {
		where = append(where, "sha = ?")
		args = append(args, f.SHA)
	}
	if f.Source != "" {
		where = append(where, "source = ?")
		args = append(args, f.Source)
	}
	if f.UpdatedAfter != nil {
		where = append(where, "updated_at > ?")
		args = append(args, tm(*f.UpdatedAfter))
	}
	if f.UpdatedBefore != nil {
		where = append(where, "updated_at < ?")
		args = append(args, tm(*f.UpdatedBefore))
	}
	if f.Tag != nil {
		where = append(where, "tag = ?")
		args = append(args, *f.Tag)
	}
	return " WHERE " + strings.Join(where, " AND "), args
}

func (db *DB) ListPipelines(ctx context.Context, f store.PipelineFilter) ([]*ci.Pipeline, error) {
	where, args := pipelineWhere(f)
	args = append(args, f.Limit, f.Offset)
	order := " ORDER BY id DESC"
	if f.Ascending {
		order = " ORDER BY id ASC"
	}
	rows, err := db.query(ctx, `SELECT `+pipelineCols+` FROM pipelines`+where+order+` LIMIT ? OFFSET ?`, args...)
	return collect(rows, err, func(s scanner) (*ci.Pipeline, error) { return scanPipeline(s) })
}

func (db *DB) CountPipelines(ctx context.Context, f store.PipelineFilter, limit int) (int, error) {
	where, args := pipelineWhere(f)
	args = append(args, limit)
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM (SELECT 1 FROM pipelines`+where+` LIMIT ?) x`, args...).Scan(&n)
	return n, err
}

func (db *DB) DeletePipeline(ctx context.Context, projectID, id int64) ([]string, error) {
	var keys []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		if keys, err = column[string](tx.QueryContext(ctx, db.q(`SELECT a.blob_key FROM artifacts a JOIN jobs j ON j.id = a.job_id
			WHERE j.pipeline_id = ? AND j.project_id = ? ORDER BY a.id`), id, projectID)); err != nil {
			return err
		}
		// Child pipelines keep existing; they lose their parent link.
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE pipelines SET parent_id = NULL WHERE parent_id = ?`), id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET downstream_pipeline_id = NULL WHERE downstream_pipeline_id = ?`), id); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, db.q(`DELETE FROM pipelines WHERE id = ? AND project_id = ?`), id, projectID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ci.ErrNotFound
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return keys, nil
}

func (db *DB) PipelineVariables(ctx context.Context, pipelineID int64) ([]store.Variable, error) {
	rows, err := db.query(ctx, `SELECT key, value, variable_type FROM pipeline_variables WHERE pipeline_id = ? ORDER BY key`, pipelineID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []store.Variable{}
	for rows.Next() {
		var v store.Variable
		if err := rows.Scan(&v.Key, &v.Value, &v.VariableType); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (db *DB) BridgeOf(ctx context.Context, downstreamPipelineID int64) (*ci.Job, error) {
	j, err := scanJob(db.queryRow(ctx, `SELECT `+jobCols+` FROM jobs WHERE downstream_pipeline_id = ? AND kind = 'bridge'`, downstreamPipelineID))
	return j, db.translate(err)
}

func (db *DB) JobSpec(ctx context.Context, jobID int64) ([]byte, error) {
	var spec string
	err := db.queryRow(ctx, `SELECT spec FROM jobs WHERE id = ?`, jobID).Scan(&spec)
	return []byte(spec), db.translate(err)
}

func (db *DB) SetDownstream(ctx context.Context, bridgeID, pipelineID int64) error {
	r, err := db.exec(ctx, `UPDATE jobs SET downstream_pipeline_id = ?, lock_version = lock_version + 1 WHERE id = ? AND kind = 'bridge'`, pipelineID, bridgeID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) ForceJobStatus(ctx context.Context, jobID int64, to ci.JobStatus, now time.Time) error {
	if !to.Valid() {
		return fmt.Errorf("%w: status %q", ci.ErrInvalid, to)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		var from string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT status FROM jobs WHERE id = ?`), jobID).Scan(&from); err != nil {
			return db.translate(err)
		}
		if from == string(to) {
			return nil
		}
		// Mirrored failures are the downstream pipeline's: reason unknown, not a creation error.
		sets, args := transitionSets(to, "", tm(now))
		_, err := db.moveJobIn(ctx, tx, `UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? RETURNING `+jobCols, append(args, jobID))
		return err
	})
}

// GrantResources moves the oldest job waiting for each of the project's
// resource groups to pending when no job of that group is active.
func (db *DB) GrantResources(ctx context.Context, projectID int64, now time.Time) ([]int64, error) {
	// Most projects use no resource groups: answer from a read, no write transaction.
	// Waiting jobs always belong to a group: the resource_group term lets
	// the partial index jobs_resource_group answer without walking the
	// project's jobs.
	waiting, err := db.ids(ctx, `SELECT id FROM jobs WHERE project_id = ? AND resource_group <> '' AND status = 'waiting_for_resource' LIMIT 1`, projectID)
	if err != nil || len(waiting) == 0 {
		return nil, err
	}
	var granted []int64
	err = db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`SELECT DISTINCT resource_group FROM jobs WHERE project_id = ? AND status = 'waiting_for_resource'`), projectID)
		if err != nil {
			return err
		}
		var groups []string
		for rows.Next() {
			var g string
			if err := rows.Scan(&g); err != nil {
				rows.Close()
				return err
			}
			groups = append(groups, g)
		}
		rows.Close()
		for _, g := range groups {
			var busy int
			if err := tx.QueryRowContext(ctx, db.q(`SELECT count(*) FROM jobs WHERE project_id = ? AND resource_group = ? AND status IN ('pending','running','canceling')`), projectID, g).Scan(&busy); err != nil {
				return err
			}
			if busy > 0 {
				continue
			}
			var id, pipelineID int64
			err := tx.QueryRowContext(ctx, db.q(`SELECT id, pipeline_id FROM jobs WHERE project_id = ? AND resource_group = ? AND status = 'waiting_for_resource' ORDER BY id LIMIT 1`), projectID, g).Scan(&id, &pipelineID)
			if err != nil {
				return err
			}
			sets, args := transitionSets(ci.StatusPending, "", tm(now))
			args = append(args, id)
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = 'waiting_for_resource'`), args...); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(wakePipeline), pipelineID); err != nil {
				return err
			}
			granted = append(granted, id)
		}
		return nil
	})
	return granted, err
}

func (db *DB) RetryJobs(ctx context.Context, p store.RetryParams) ([]int64, error) {
	var created []int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		for _, id := range p.JobIDs {
			var newID int64
			err := tx.QueryRowContext(ctx, db.q(`INSERT INTO jobs (project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, allow_failure, when_,
				created_at, user_id, tag_list, updated_at, scheduling_dag, needs, spec, resource_group)
				SELECT project_id, pipeline_id, kind, name, stage, stage_idx, 'created', ref, tag, allow_failure, when_,
				?, COALESCE(?, user_id), tag_list, ?, scheduling_dag, needs, spec, resource_group
				FROM jobs WHERE id = ? AND pipeline_id = ? AND retried = FALSE RETURNING id`),
				tm(p.Now), idArg(p.UserID), tm(p.Now), id, p.PipelineID).Scan(&newID)
			if err == sql.ErrNoRows {
				return fmt.Errorf("%w: job %d is not a current job of pipeline %d", ci.ErrConflict, id, p.PipelineID)
			}
			if err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET retried = TRUE, updated_at = ?, lock_version = lock_version + 1 WHERE id = ?`), tm(p.Now), id); err != nil {
				return err
			}
			if p.SetVariables {
				if err := insertJobVariables(ctx, db, tx, newID, p.Variables); err != nil {
					return err
				}
			} else if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO job_variables (job_id, key, value) SELECT ?, key, value FROM job_variables WHERE job_id = ?`), newID, id); err != nil {
				return err
			}
			created = append(created, newID)
		}
		// Skipped jobs get another chance: processing decides them again.
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET status = 'created', updated_at = ?, lock_version = lock_version + 1
			WHERE pipeline_id = ? AND status = 'skipped' AND retried = FALSE`), tm(p.Now), p.PipelineID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, db.q(wakePipeline), p.PipelineID)
		return err
	})
	return created, err
}

func (db *DB) CancelPipeline(ctx context.Context, pipelineID int64, now time.Time) ([]int64, error) {
	var moved []int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		ids := []int64{pipelineID}
		for i := 0; i < len(ids) && i < 1000; i++ {
			children, err := column[int64](tx.QueryContext(ctx, db.q(`SELECT id FROM pipelines WHERE parent_id = ?`), ids[i]))
			if err != nil {
				return err
			}
			ids = append(ids, children...)
		}
		for _, pid := range ids {
			jobIDs, err := column[int64](tx.QueryContext(ctx, db.q(`SELECT id FROM jobs WHERE pipeline_id = ? AND retried = FALSE AND status IN
				('created','waiting_for_resource','preparing','waiting_for_callback','pending','running','manual','scheduled')`), pid))
			if err != nil {
				return err
			}
			for _, id := range jobIDs {
				// A running job is asked to stop (canceling), so its runner runs
				// after_script and confirms; the watchdog bounds the wait.
				// Everything else is canceled at once. Each update is
				// conditional on the status, so a job that moved meanwhile is
				// left alone.
				sets, args := transitionSets(ci.StatusCanceling, "", tm(now))
				r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = 'running'`), append(args, id)...)
				if err != nil {
					return err
				}
				if n, _ := r.RowsAffected(); n == 0 {
					sets, args = transitionSets(ci.StatusCanceled, "", tm(now))
					if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status IN
						('created','waiting_for_resource','preparing','waiting_for_callback','pending','manual','scheduled')`), append(args, id)...); err != nil {
						return err
					}
				}
				moved = append(moved, id)
			}
			if _, err := tx.ExecContext(ctx, db.q(wakePipeline), pid); err != nil {
				return err
			}
		}
		return nil
	})
	return moved, err
}

func (db *DB) EnqueueDueScheduled(ctx context.Context, now time.Time) ([]int64, error) {
	var moved []int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`SELECT id, pipeline_id, resource_group FROM jobs WHERE status = 'scheduled' AND scheduled_at <= ? ORDER BY scheduled_at LIMIT 1000`), tm(now))
		if err != nil {
			return err
		}
		type due struct {
			id, pipeline int64
			group        string
		}
		var list []due
		for rows.Next() {
			var d due
			if err := rows.Scan(&d.id, &d.pipeline, &d.group); err != nil {
				rows.Close()
				return err
			}
			list = append(list, d)
		}
		rows.Close()
		for _, d := range list {
			to := ci.StatusPending
			if d.group != "" {
				to = ci.StatusWaitingForResource
			}
			sets, args := transitionSets(to, "", tm(now))
			args = append(args, d.id)
			r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = 'scheduled'`), args...)
			if err != nil {
				return err
			}
			if n, _ := r.RowsAffected(); n != 1 {
				continue // another node's timer moved it first
			}
			if _, err := tx.ExecContext(ctx, db.q(wakePipeline), d.pipeline); err != nil {
				return err
			}
			moved = append(moved, d.id)
		}
		return nil
	})
	return moved, err
}

func (db *DB) NextScheduledAt(ctx context.Context) (*time.Time, error) {
	var at sql.NullInt64
	if err := db.queryRow(ctx, `SELECT MIN(scheduled_at) FROM jobs WHERE status = 'scheduled'`).Scan(&at); err != nil {
		return nil, err
	}
	return fromNull(at), nil
}

// plannedJobsPerInsert bounds one multi-row INSERT (about 30 parameters a
// row, well under both databases' parameter limits).
const plannedJobsPerInsert = 100

// insertPlannedJobs writes a new pipeline's jobs with multi-row INSERTs:
// one round trip per hundred jobs instead of one per job.
func (db *DB) insertPlannedJobs(ctx context.Context, tx *sql.Tx, pipelineID int64, np store.NewPipeline) error {
	const cols = `(project_id, pipeline_id, kind, name, stage, stage_idx, status, ref, tag, allow_failure, when_, created_at, user_id, failure_reason,
		tag_list, retried, updated_at, scheduling_dag, needs, spec, resource_group, scheduled_at, timeout_seconds)`
	const row = `(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, '', ?, FALSE, ?, ?, ?, ?, ?, ?, ?)`
	for start := 0; start < len(np.Jobs); start += plannedJobsPerInsert {
		batch := np.Jobs[start:min(start+plannedJobsPerInsert, len(np.Jobs))]
		var b strings.Builder
		b.WriteString(`INSERT INTO jobs ` + cols + ` VALUES `)
		args := make([]any, 0, len(batch)*20)
		for i, nj := range batch {
			j := nj.Job
			if !j.Status.Valid() {
				return fmt.Errorf("%w: status %q", ci.ErrInvalid, j.Status)
			}
			if j.When == "" {
				j.When = "on_success"
			}
			if i > 0 {
				b.WriteString(", ")
			}
			b.WriteString(row)
			needs := []byte("[]")
			if len(nj.Needs) > 0 {
				needs, _ = json.Marshal(nj.Needs)
			}
			spec := nj.Spec
			if len(spec) == 0 {
				spec = []byte("{}")
			}
			var scheduled any
			if nj.StartIn > 0 {
				scheduled = tm(j.CreatedAt.Add(nj.StartIn))
			}
			args = append(args, np.Pipeline.ProjectID, pipelineID, string(j.Kind), j.Name, j.Stage, j.StageIdx, string(j.Status), j.Ref, j.Tag,
				j.AllowFailure, j.When, tm(j.CreatedAt), idArg(j.UserID), encodeTags(j.TagList), tm(j.CreatedAt),
				nj.DAG, string(needs), string(spec), nj.ResourceGroup, scheduled, timeoutArg(nj.TimeoutSeconds))
		}
		if _, err := tx.ExecContext(ctx, db.q(b.String()), args...); err != nil {
			return db.translate(err)
		}
	}
	return nil
}

func timeoutArg(s int) any {
	if s <= 0 {
		return nil
	}
	return s
}

func (db *DB) PlayJob(ctx context.Context, jobID, userID int64, vars []store.Variable, now time.Time) (*ci.Job, error) {
	var job *ci.Job
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var status, group string
		if err := tx.QueryRowContext(ctx, db.q(`SELECT status, resource_group FROM jobs WHERE id = ?`), jobID).Scan(&status, &group); err != nil {
			return db.translate(err)
		}
		if status != string(ci.StatusManual) && status != string(ci.StatusScheduled) {
			return fmt.Errorf("%w: job %d is %s", ci.ErrConflict, jobID, status)
		}
		to := ci.StatusPending
		if group != "" {
			to = ci.StatusWaitingForResource
		}
		sets, args := transitionSets(to, "", tm(now))
		sets = append(sets, "user_id = ?")
		args = append(args, userID, jobID, status)
		var err error
		if job, err = scanJob(tx.QueryRowContext(ctx, db.q(`UPDATE jobs SET `+strings.Join(sets, ", ")+` WHERE id = ? AND status = ? RETURNING `+jobCols), args...)); err != nil {
			return db.translate(err)
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM job_variables WHERE job_id = ?`), jobID); err != nil {
			return err
		}
		if err := insertJobVariables(ctx, db, tx, jobID, vars); err != nil {
			return err
		}
		// Jobs skipped because this one had not run get another chance.
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET status = 'created', updated_at = ?, lock_version = lock_version + 1
			WHERE pipeline_id = ? AND status = 'skipped' AND retried = FALSE`), tm(now), job.PipelineID); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, db.q(wakePipeline), job.PipelineID)
		return err
	})
	return job, err
}

// insertJobVariables records the variables a job runs with.
func insertJobVariables(ctx context.Context, db *DB, tx *sql.Tx, jobID int64, vars []store.Variable) error {
	for _, v := range vars {
		if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO job_variables (job_id, key, value) VALUES (?, ?, ?)`), jobID, v.Key, v.Value); err != nil {
			return db.translate(err)
		}
	}
	return nil
}

func (db *DB) JobVariables(ctx context.Context, jobID int64) ([]store.Variable, error) {
	rows, err := db.query(ctx, `SELECT key, value FROM job_variables WHERE job_id = ? ORDER BY key`, jobID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []store.Variable
	for rows.Next() {
		v := store.Variable{VariableType: "env_var"}
		if err := rows.Scan(&v.Key, &v.Value); err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

func (db *DB) EraseJob(ctx context.Context, jobID, userID int64, now time.Time) ([]string, error) {
	var keys []string
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`SELECT blob_key FROM artifacts WHERE job_id = ?`), jobID)
		if err != nil {
			return err
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				rows.Close()
				return err
			}
			keys = append(keys, k)
		}
		rows.Close()
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM artifacts WHERE job_id = ?`), jobID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM trace_chunks WHERE job_id = ?`), jobID); err != nil {
			return err
		}
		r, err := tx.ExecContext(ctx, db.q(`UPDATE jobs SET erased_at = ?, erased_by_id = ?, artifacts_expire_at = NULL, trace_size = 0, trace_archived = FALSE, updated_at = ?,
			lock_version = lock_version + 1 WHERE id = ?`), tm(now), userID, tm(now), jobID)
		if err != nil {
			return err
		}
		if n, _ := r.RowsAffected(); n == 0 {
			return ci.ErrNotFound
		}
		return nil
	})
	return keys, err
}

func (db *DB) StaleCanceling(ctx context.Context, before time.Time) ([]*ci.Job, error) {
	return db.jobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE status = 'canceling' AND updated_at < ? ORDER BY id LIMIT 1000`, tm(before))
}
