package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func (db *DB) RunnerByTokenDigest(ctx context.Context, digest string) (*ci.Runner, error) {
	r, err := scanRunner(db.queryRow(ctx, `SELECT `+runnerCols+` FROM runners WHERE token_digest = ?`, digest))
	return r, db.translate(err)
}

func (db *DB) SetRunnerScope(ctx context.Context, runnerID int64, projectIDs, namespaceIDs []int64) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_projects WHERE runner_id = ?`), runnerID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM runner_namespaces WHERE runner_id = ?`), runnerID); err != nil {
			return err
		}
		for _, p := range projectIDs {
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_projects (runner_id, project_id) VALUES (?, ?)`), runnerID, p); err != nil {
				return db.translate(err)
			}
		}
		for _, n := range namespaceIDs {
			if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_namespaces (runner_id, namespace_id) VALUES (?, ?)`), runnerID, n); err != nil {
				return db.translate(err)
			}
		}
		return nil
	})
}

func (db *DB) ids(ctx context.Context, query string, args ...any) ([]int64, error) {
	rows, err := db.query(ctx, query, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []int64
	for rows.Next() {
		var id sql.NullInt64
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		if id.Valid {
			out = append(out, id.Int64)
		}
	}
	return out, rows.Err()
}

func (db *DB) RunnerScope(ctx context.Context, runnerID int64) ([]int64, []int64, error) {
	p, err := db.ids(ctx, `SELECT project_id FROM runner_projects WHERE runner_id = ? ORDER BY project_id`, runnerID)
	if err != nil {
		return nil, nil, err
	}
	n, err := db.ids(ctx, `SELECT namespace_id FROM runner_namespaces WHERE runner_id = ? ORDER BY namespace_id`, runnerID)
	return p, n, err
}

func (db *DB) UpdateRunner(ctx context.Context, r ci.Runner) (*ci.Runner, error) {
	var name, maxTimeout any
	if r.Name != nil {
		name = *r.Name
	}
	if r.MaximumTimeout != nil {
		maxTimeout = *r.MaximumTimeout
	}
	res, err := db.exec(ctx, `UPDATE runners SET description = ?, name = ?, paused = ?, locked = ?, run_untagged = ?, access_level = ?, tag_list = ?,
		maximum_timeout = ?, maintenance_note = ? WHERE id = ?`,
		r.Description, name, r.Paused, r.Locked, r.RunUntagged, r.AccessLevel, encodeTags(r.TagList), maxTimeout, r.MaintenanceNote, r.ID)
	if err != nil {
		return nil, err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return nil, ci.ErrNotFound
	}
	m, err := db.RunnersByIDs(ctx, []int64{r.ID})
	if err != nil {
		return nil, err
	}
	return m[r.ID], nil
}

func (db *DB) DeleteRunner(ctx context.Context, id int64) error {
	res, err := db.exec(ctx, `DELETE FROM runners WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) ListRunners(ctx context.Context, f store.RunnerFilter) ([]*ci.Runner, error) {
	var where []string
	var args []any
	if f.Type != "" {
		where = append(where, "runner_type = ?")
		args = append(args, string(f.Type))
	}
	if f.Paused != nil {
		where = append(where, "paused = ?")
		args = append(args, *f.Paused)
	}
	if f.ProjectID != 0 {
		chain, err := db.ProjectNamespaceChain(ctx, f.ProjectID)
		if err != nil {
			return nil, err
		}
		cond := `runner_type = 'instance_type' OR id IN (SELECT runner_id FROM runner_projects WHERE project_id = ?)`
		args = append(args, f.ProjectID)
		if len(chain) > 0 {
			cond += ` OR id IN (SELECT runner_id FROM runner_namespaces WHERE namespace_id IN (` + placeholders(len(chain)) + `))`
			args = append(args, int64Args(chain)...)
		}
		where = append(where, "("+cond+")")
	}
	q := `SELECT ` + runnerCols + ` FROM runners`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	q += ` ORDER BY id LIMIT ? OFFSET ?`
	args = append(args, limit, f.Offset)
	rows, err := db.query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*ci.Runner
	for rows.Next() {
		r, err := scanRunner(rows)
		if err != nil {
			return nil, err
		}
		if hasAllTags(r.TagList, f.Tags) {
			out = append(out, r)
		}
	}
	return out, rows.Err()
}

func hasAllTags(have, want []string) bool {
	for _, w := range want {
		found := false
		for _, h := range have {
			if h == w {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	return true
}

func (db *DB) UpsertRunnerManager(ctx context.Context, m ci.RunnerManager) (*ci.RunnerManager, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO runner_managers (runner_id, system_id, version, revision, platform, architecture, ip_address, created_at, contacted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (runner_id, system_id) DO UPDATE SET version = excluded.version, revision = excluded.revision, platform = excluded.platform,
			architecture = excluded.architecture, ip_address = excluded.ip_address, contacted_at = excluded.contacted_at`),
			m.RunnerID, m.SystemID, strArg(m.Version), strArg(m.Revision), strArg(m.Platform), strArg(m.Architecture), strArg(m.IPAddress), tm(m.CreatedAt), tmp(m.ContactedAt))
		if err != nil {
			return err
		}
		return tx.QueryRowContext(ctx, db.q(`SELECT id FROM runner_managers WHERE runner_id = ? AND system_id = ?`), m.RunnerID, m.SystemID).Scan(&m.ID)
	})
	if err != nil {
		return nil, err
	}
	out, err := db.RunnerManagersByIDs(ctx, []int64{m.ID})
	if err != nil {
		return nil, err
	}
	return out[m.ID], nil
}

func (db *DB) DeleteRunnerManager(ctx context.Context, runnerID int64, systemID string) error {
	res, err := db.exec(ctx, `DELETE FROM runner_managers WHERE runner_id = ? AND system_id = ?`, runnerID, systemID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) TouchRunner(ctx context.Context, runnerID, managerID int64, now time.Time) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, db.q(`UPDATE runners SET contacted_at = ? WHERE id = ?`), tm(now), runnerID); err != nil {
			return err
		}
		if managerID != 0 {
			_, err := tx.ExecContext(ctx, db.q(`UPDATE runner_managers SET contacted_at = ? WHERE id = ?`), tm(now), managerID)
			return err
		}
		return nil
	})
}

func (db *DB) RotateRunnerToken(ctx context.Context, runnerID int64, digest string) error {
	_, err := db.exec(ctx, `UPDATE runners SET token_digest = ? WHERE id = ?`, digest, runnerID)
	return db.translate(err)
}

// PendingProjects walks the pending-jobs index one project at a time (a
// loose index scan), so its cost grows with projects, not with jobs.
func (db *DB) PendingProjects(ctx context.Context) ([]int64, error) {
	return db.ids(ctx, `WITH RECURSIVE p(pid) AS (
		SELECT MIN(project_id) FROM jobs WHERE status = 'pending' AND kind = 'build'
		UNION ALL
		SELECT (SELECT MIN(project_id) FROM jobs WHERE status = 'pending' AND kind = 'build' AND project_id > p.pid) FROM p WHERE p.pid IS NOT NULL
	) SELECT pid FROM p WHERE pid IS NOT NULL`)
}

func (db *DB) RunningCounts(ctx context.Context, projectIDs []int64) (map[int64]int, error) {
	out := map[int64]int{}
	if len(projectIDs) == 0 {
		return out, nil
	}
	src := "jobs"
	if db.dialect.Name == "sqlite" {
		// The partial index holds only executing jobs; without the hint
		// SQLite walks every job of the projects.
		src = "jobs INDEXED BY jobs_running"
	}
	rows, err := db.query(ctx, `SELECT project_id, count(*) FROM `+src+` WHERE status IN ('running', 'canceling') AND project_id IN (`+placeholders(len(projectIDs))+`) GROUP BY project_id`, int64Args(projectIDs)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var p int64
		var n int
		if err := rows.Scan(&p, &n); err != nil {
			return nil, err
		}
		out[p] = n
	}
	return out, rows.Err()
}

func nonZero(v int64) *int64 {
	if v == 0 {
		return nil
	}
	return &v
}

func (db *DB) ProjectNamespaceChain(ctx context.Context, projectID int64) ([]int64, error) {
	return db.ids(ctx, `WITH RECURSIVE anc(id, parent_id) AS (
		SELECT n.id, n.parent_id FROM namespaces n JOIN projects p ON p.namespace_id = n.id WHERE p.id = ?
		UNION ALL SELECT n.id, n.parent_id FROM namespaces n JOIN anc ON n.id = anc.parent_id
	) SELECT id FROM anc`, projectID)
}

func (db *DB) RunnerJobs(ctx context.Context, runnerID int64, statuses []ci.JobStatus, offset, limit int) ([]*ci.Job, error) {
	q := `SELECT ` + jobCols + ` FROM jobs WHERE runner_id = ?`
	args := []any{runnerID}
	if len(statuses) > 0 {
		q += ` AND status IN (` + placeholders(len(statuses)) + `)`
		for _, s := range statuses {
			args = append(args, string(s))
		}
	}
	q += ` ORDER BY id DESC LIMIT ? OFFSET ?`
	args = append(args, limit, offset)
	return db.jobs(ctx, q, args...)
}

func (db *DB) RecordRunnerUpdate(ctx context.Context, jobID int64, now time.Time) error {
	_, err := db.exec(ctx, `UPDATE jobs SET runner_updated_at = ? WHERE id = ?`, tm(now), jobID)
	return err
}

func (db *DB) FinishJob(ctx context.Context, p store.FinishParams) (*ci.Job, error) {
	// Nearly every job ends from running, so that move is tried first as
	// one statement (one round trip on PostgreSQL); a job found in another
	// status takes the transaction that reads it first.
	update, args := finishUpdate(p, p.State)
	job, err := db.moveJob(ctx, update, append(args, string(ci.StatusRunning)))
	if !errors.Is(err, sql.ErrNoRows) {
		return job, db.translate(err)
	}
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var status string
		where, args := tokenCond(p)
		if err := tx.QueryRowContext(ctx, db.q(`SELECT status FROM jobs WHERE id = ?`+where), append([]any{p.JobID}, args...)...).Scan(&status); err != nil {
			return db.translate(err)
		}
		to := p.State
		switch ci.JobStatus(status) {
		case ci.StatusRunning:
		case ci.StatusCanceling:
			to = ci.StatusCanceled // whatever the runner reports, a cancel ends canceled
		default:
			return fmt.Errorf("%w: job %d is %s", ci.ErrConflict, p.JobID, status)
		}
		update, args := finishUpdate(p, to)
		var err error
		job, err = db.moveJobIn(ctx, tx, update+` RETURNING `+jobCols, append(args, status))
		return db.translate(err)
	})
	return job, err
}

// finishUpdate is the UPDATE that ends a job in status to; its last
// argument, the status it must be in, is the caller's to append.
func finishUpdate(p store.FinishParams, to ci.JobStatus) (string, []any) {
	sets, args := transitionSets(to, p.FailureReason, tm(p.Now))
	var exit, cov any
	if p.ExitCode != nil {
		exit = *p.ExitCode
	}
	if p.Coverage != nil {
		cov = *p.Coverage
	}
	sets = append(sets, "exit_code = ?", "coverage = COALESCE(?, coverage)", "runner_updated_at = ?")
	args = append(args, exit, cov, tm(p.Now), p.JobID)
	where, tokenArgs := tokenCond(p)
	return `UPDATE jobs SET ` + strings.Join(sets, ", ") + ` WHERE id = ?` + where + ` AND status = ?`, append(args, tokenArgs...)
}

// tokenCond is the condition FinishParams.TokenDigest adds, if any.
func tokenCond(p store.FinishParams) (string, []any) {
	if p.TokenDigest == "" {
		return "", nil
	}
	return ` AND token_digest = ?`, []any{p.TokenDigest}
}

func (db *DB) TimedOutJobs(ctx context.Context, now time.Time, silentFor time.Duration) ([]*ci.Job, error) {
	return db.jobs(ctx, `SELECT `+jobCols+` FROM jobs WHERE status IN ('running', 'canceling') AND kind = 'build' AND (
		(timeout_seconds IS NOT NULL AND started_at + timeout_seconds * 1000000 < ?) OR
		(runner_updated_at IS NOT NULL AND runner_updated_at < ?)) ORDER BY id LIMIT 1000`, tm(now), tm(now.Add(-silentFor)))
}

func (db *DB) ClaimNext(ctx context.Context, p store.ClaimNextParams) (*store.Claimed, error) {
	var tagCond string
	args := []any{}
	untagged := "FALSE"
	if p.RunUntagged {
		untagged = "TRUE"
	}
	if len(p.RunnerTags) == 0 {
		tagCond = "c.tag_list = '[]' AND " + untagged
	} else {
		elems := "json_each(c.tag_list) t WHERE t.value"
		if db.dialect.Name == "postgres" {
			elems = "jsonb_array_elements_text(c.tag_list::jsonb) t(value) WHERE t.value"
		}
		tagCond = "(c.tag_list = '[]' AND " + untagged + ") OR (c.tag_list <> '[]' AND NOT EXISTS (SELECT 1 FROM " + elems +
			" NOT IN (" + placeholders(len(p.RunnerTags)) + ")))"
		for _, t := range p.RunnerTags {
			args = append(args, t)
		}
	}
	lock := ""
	if db.dialect.Name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	protected := ""
	if p.ProtectedOnly {
		protected = ` AND EXISTS (SELECT 1 FROM pipelines pp WHERE pp.id = c.pipeline_id AND pp.protected)`
	}
	pick := `SELECT c.id FROM jobs c WHERE c.project_id = ? AND c.status = 'pending' AND c.kind = 'build' AND (` + tagCond + `)` +
		protected + ` ORDER BY c.id LIMIT 1` + lock
	pickArgs := append([]any{p.ProjectID}, args...)
	now := tm(p.Now)
	sets, setArgs := transitionSets(ci.StatusRunning, "", now)
	sets = append(sets, "runner_id = ?", "runner_manager_id = ?", "token_digest = ?", "runner_updated_at = ?",
		"timeout_seconds = CASE WHEN ? > 0 AND COALESCE(timeout_seconds, ?) > ? THEN ? ELSE COALESCE(timeout_seconds, ?) END")
	setArgs = append(setArgs, p.RunnerID, idArg(nonZero(p.ManagerID)), p.TokenDigest, now,
		p.MaxTimeout, p.DefaultTimeout, p.MaxTimeout, p.MaxTimeout, p.DefaultTimeout)
	update := `UPDATE jobs SET ` + strings.Join(sets, ", ") + ` WHERE id = (` + pick + `) AND status = 'pending'`
	// The payload needs the job's spec and own variables: the claim
	// returns them, so building it reads neither.
	vars := `(SELECT json_group_array(json_array(v.key, v.value)) FROM job_variables v WHERE v.job_id = jobs.id)`
	if db.dialect.Name == "postgres" {
		vars = `(SELECT json_agg(json_build_array(v.key, v.value)) FROM job_variables v WHERE v.job_id = jobs.id)`
	}
	// On PostgreSQL the same statement also reads the job's pipeline and
	// its variables, which the payload needs: each would be a round trip.
	spec, jobVars, pipelineAt := jobColCount, jobColCount+1, jobColCount+2
	outer, n := jobCols+`, spec, job_variables FROM moved`, pipelineAt
	if db.dialect.Name == "postgres" {
		outer, n = `moved.*, `+claimPipelineCols+` FROM moved JOIN pipelines p ON p.id = moved.pipeline_id`, pipelineAt+pipelineColCount+1
	}
	var c store.Claimed
	err := db.moveJobReturning(ctx, update, append(setArgs, pickArgs...), jobCols+`, spec, `+vars+` AS job_variables`, outer, n,
		func(r *rawRow) error {
			job, err := jobFromRow(r)
			if err != nil {
				return err
			}
			c = store.Claimed{Job: job, Spec: []byte(r.str(spec))}
			if c.Variables, err = decodeJobVariables(r.str(jobVars)); err != nil {
				return err
			}
			if n > pipelineAt {
				c.Pipeline = pipelineFromRow(r, pipelineAt)
				if r.err != nil {
					return r.err
				}
				c.PipelineVariables, err = decodePipelineVariables(r.str(pipelineAt + pipelineColCount))
			}
			return err
		})
	if err == sql.ErrNoRows {
		return nil, ci.ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	return &c, nil
}

// claimPipelineCols are pipelineCols of p and the pipeline's variables
// (a JSON array of [key, value, variable_type] in PipelineVariables' order).
var claimPipelineCols = `p.` + strings.ReplaceAll(pipelineCols, ", ", ", p.") + `,
	(SELECT json_agg(json_build_array(v.key, v.value, v.variable_type) ORDER BY v.key) FROM pipeline_variables v WHERE v.pipeline_id = p.id)`

// decodePipelineVariables reads claimPipelineCols' variables column.
func decodePipelineVariables(raw string) ([]store.Variable, error) {
	out := []store.Variable{}
	if raw == "" || raw == "[]" {
		return out, nil
	}
	var triples [][3]string
	if err := json.Unmarshal([]byte(raw), &triples); err != nil {
		return nil, fmt.Errorf("pipeline variables column: %w", err)
	}
	for _, t := range triples {
		out = append(out, store.Variable{Key: t[0], Value: t[1], VariableType: t[2]})
	}
	return out, nil
}

// decodeJobVariables reads the claim's JSON array of [key, value] pairs
// (NULL or [] when there are none), in JobVariables' order.
func decodeJobVariables(raw string) ([]store.Variable, error) {
	if raw == "" || raw == "[]" {
		return nil, nil
	}
	var pairs [][2]string
	if err := json.Unmarshal([]byte(raw), &pairs); err != nil {
		return nil, fmt.Errorf("claimed job variables: %w", err)
	}
	out := make([]store.Variable, len(pairs))
	for i, p := range pairs {
		out[i] = store.Variable{Key: p[0], Value: p[1], VariableType: "env_var"}
	}
	slices.SortFunc(out, func(a, b store.Variable) int { return strings.Compare(a.Key, b.Key) })
	return out, nil
}

func (db *DB) PendingAhead(ctx context.Context, jobID int64) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM jobs WHERE status = 'pending' AND kind = 'build' AND id < ?`, jobID).Scan(&n)
	return n, err
}

func (db *DB) ExecutingByRunner(ctx context.Context) (map[int64]int, error) {
	rows, err := db.query(ctx, `SELECT runner_id, count(*) FROM jobs WHERE status IN ('running', 'canceling') AND runner_id IS NOT NULL GROUP BY runner_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[int64]int{}
	for rows.Next() {
		var id int64
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, err
		}
		out[id] = n
	}
	return out, rows.Err()
}
