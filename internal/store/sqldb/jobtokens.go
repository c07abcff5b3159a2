package sqldb

import (
	"context"
	"time"

	"gantry/internal/ci"
)

func (db *DB) JobTokenInbound(ctx context.Context, projectID int64) (bool, error) {
	var on bool
	err := db.queryRow(ctx, `SELECT job_token_inbound FROM projects WHERE id = ?`, projectID).Scan(&on)
	return on, db.translate(err)
}

func (db *DB) SetJobTokenInbound(ctx context.Context, projectID int64, enabled bool) error {
	r, err := db.exec(ctx, `UPDATE projects SET job_token_inbound = ? WHERE id = ?`, enabled, projectID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) AllowJobTokens(ctx context.Context, targetID, sourceProjectID, sourceNamespaceID int64, now time.Time) error {
	var err error
	if sourceProjectID != 0 {
		_, err = db.exec(ctx, `INSERT INTO job_token_project_links (target_project_id, source_project_id, created_at) VALUES (?, ?, ?)`, targetID, sourceProjectID, tm(now))
	} else {
		_, err = db.exec(ctx, `INSERT INTO job_token_group_links (target_project_id, source_namespace_id, created_at) VALUES (?, ?, ?)`, targetID, sourceNamespaceID, tm(now))
	}
	return db.translate(err)
}

func (db *DB) DisallowJobTokens(ctx context.Context, targetID, sourceProjectID, sourceNamespaceID int64) error {
	q, arg := `DELETE FROM job_token_project_links WHERE target_project_id = ? AND source_project_id = ?`, sourceProjectID
	if sourceProjectID == 0 {
		q, arg = `DELETE FROM job_token_group_links WHERE target_project_id = ? AND source_namespace_id = ?`, sourceNamespaceID
	}
	r, err := db.exec(ctx, q, targetID, arg)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) JobTokenAllowlist(ctx context.Context, targetID int64) ([]int64, []int64, error) {
	p, err := db.ids(ctx, `SELECT source_project_id FROM job_token_project_links WHERE target_project_id = ? ORDER BY source_project_id`, targetID)
	if err != nil {
		return nil, nil, err
	}
	n, err := db.ids(ctx, `SELECT source_namespace_id FROM job_token_group_links WHERE target_project_id = ? ORDER BY source_namespace_id`, targetID)
	return p, n, err
}

func (db *DB) JobTokenAllowed(ctx context.Context, sourceProjectID, targetProjectID int64) (bool, error) {
	if sourceProjectID == targetProjectID {
		return true, nil
	}
	inbound, err := db.JobTokenInbound(ctx, targetProjectID)
	if err != nil {
		return false, err
	}
	if !inbound {
		return true, nil
	}
	linked, err := db.ids(ctx, `SELECT 1 FROM job_token_project_links WHERE target_project_id = ? AND source_project_id = ?`, targetProjectID, sourceProjectID)
	if err != nil || len(linked) > 0 {
		return len(linked) > 0, err
	}
	chain, err := db.ProjectNamespaceChain(ctx, sourceProjectID)
	if err != nil || len(chain) == 0 {
		return false, err
	}
	args := append([]any{targetProjectID}, int64Args(chain)...)
	groups, err := db.ids(ctx, `SELECT 1 FROM job_token_group_links WHERE target_project_id = ? AND source_namespace_id IN (`+placeholders(len(chain))+`)`, args...)
	return len(groups) > 0, err
}
