package sqldb

import (
	"context"
	"database/sql"

	"gantry/internal/ci"
)

const agentCols = `id, project_id, name, created_by_user_id, created_at`

func scanAgent(s scanner) (*ci.ClusterAgent, error) {
	var a ci.ClusterAgent
	var by sql.NullInt64
	var created int64
	if err := s.Scan(&a.ID, &a.ProjectID, &a.Name, &by, &created); err != nil {
		return nil, err
	}
	a.CreatedByUserID, a.CreatedAt = nullID(by), fromMicros(created)
	return &a, nil
}

func (db *DB) CreateAgent(ctx context.Context, a ci.ClusterAgent) (*ci.ClusterAgent, error) {
	var err error
	db.writes.Add(1)
	if db.writeMu != nil {
		db.writeMu.Lock()
		defer db.writeMu.Unlock()
	}
	a.ID, err = db.insertID(ctx, db.write, `INSERT INTO cluster_agents (project_id, name, created_by_user_id, created_at) VALUES (?, ?, ?, ?)`,
		a.ProjectID, a.Name, a.CreatedByUserID, tm(a.CreatedAt))
	if err != nil {
		return nil, err
	}
	a.CreatedAt = fromMicros(tm(a.CreatedAt))
	return &a, nil
}

func (db *DB) ListAgents(ctx context.Context, projectID int64, limit, offset int) ([]*ci.ClusterAgent, error) {
	rows, err := db.query(ctx, `SELECT `+agentCols+` FROM cluster_agents WHERE project_id = ? ORDER BY id LIMIT ? OFFSET ?`, projectID, limit, offset)
	return collect(rows, err, scanAgent)
}

func (db *DB) CountAgents(ctx context.Context, projectID int64) (int, error) {
	var n int
	err := db.queryRow(ctx, `SELECT count(*) FROM cluster_agents WHERE project_id = ?`, projectID).Scan(&n)
	return n, err
}

func (db *DB) AgentByID(ctx context.Context, projectID, id int64) (*ci.ClusterAgent, error) {
	a, err := scanAgent(db.queryRow(ctx, `SELECT `+agentCols+` FROM cluster_agents WHERE project_id = ? AND id = ?`, projectID, id))
	return a, db.translate(err)
}

func (db *DB) AgentsByIDs(ctx context.Context, ids []int64) (map[int64]*ci.ClusterAgent, error) {
	out := map[int64]*ci.ClusterAgent{}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, `SELECT `+agentCols+` FROM cluster_agents WHERE id IN (`+placeholders(len(ids))+`)`, int64Args(ids)...)
	list, err := collect(rows, err, scanAgent)
	for _, a := range list {
		out[a.ID] = a
	}
	return out, err
}

func (db *DB) DeleteAgent(ctx context.Context, projectID, id int64) error {
	r, err := db.exec(ctx, `DELETE FROM cluster_agents WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) ReplaceAgentGrants(ctx context.Context, agentID int64, projects, groups []ci.AgentGrant) error {
	return db.tx(ctx, func(tx *sql.Tx) error {
		for _, t := range []struct {
			table, col string
			grants     []ci.AgentGrant
		}{{"agent_project_authorizations", "project_id", projects}, {"agent_group_authorizations", "group_id", groups}} {
			if _, err := tx.ExecContext(ctx, db.q(`DELETE FROM `+t.table+` WHERE agent_id = ?`), agentID); err != nil {
				return err
			}
			for _, g := range t.grants {
				if _, err := tx.ExecContext(ctx, db.q(`INSERT INTO `+t.table+` (agent_id, `+t.col+`, config) VALUES (?, ?, ?)`), agentID, g.TargetID, string(g.Config)); err != nil {
					return db.translate(err)
				}
			}
		}
		return nil
	})
}

func (db *DB) AgentGrantsFor(ctx context.Context, projectID int64, groupIDs []int64) ([]ci.AgentGrant, []ci.AgentGrant, error) {
	scan := func(s scanner) (ci.AgentGrant, error) {
		var g ci.AgentGrant
		var cfg string
		err := s.Scan(&g.AgentID, &g.TargetID, &cfg)
		g.Config = []byte(cfg)
		return g, err
	}
	rows, err := db.query(ctx, `SELECT agent_id, project_id, config FROM agent_project_authorizations WHERE project_id = ? ORDER BY agent_id`, projectID)
	projects, err := collect(rows, err, scan)
	if err != nil || len(groupIDs) == 0 {
		return projects, nil, err
	}
	rows, err = db.query(ctx, `SELECT agent_id, group_id, config FROM agent_group_authorizations WHERE group_id IN (`+placeholders(len(groupIDs))+`) ORDER BY agent_id, group_id`, int64Args(groupIDs)...)
	groups, err := collect(rows, err, scan)
	return projects, groups, err
}
