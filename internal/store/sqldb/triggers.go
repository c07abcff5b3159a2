package sqldb

import (
	"context"
	"database/sql"
	"time"

	"gantry/internal/ci"
)

const triggerCols = `id, project_id, owner_id, description, token_prefix, created_at, updated_at, last_used`

func scanTrigger(row interface{ Scan(...any) error }) (*ci.Trigger, error) {
	var t ci.Trigger
	var created, updated int64
	var last sql.NullInt64
	if err := row.Scan(&t.ID, &t.ProjectID, &t.OwnerID, &t.Description, &t.TokenPrefix, &created, &updated, &last); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt, t.LastUsed = fromMicros(created), fromMicros(updated), fromNull(last)
	return &t, nil
}

func (db *DB) CreateTrigger(ctx context.Context, t ci.Trigger, digest string) (*ci.Trigger, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		t.ID, err = db.insertID(ctx, tx, `INSERT INTO trigger_tokens (project_id, owner_id, description, digest, token_prefix, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			t.ProjectID, t.OwnerID, t.Description, digest, t.TokenPrefix, tm(t.CreatedAt), tm(t.CreatedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	t.UpdatedAt = t.CreatedAt
	return &t, nil
}

func (db *DB) Triggers(ctx context.Context, projectID int64) ([]*ci.Trigger, error) {
	rows, err := db.query(ctx, `SELECT `+triggerCols+` FROM trigger_tokens WHERE project_id = ? ORDER BY id`, projectID)
	return collect(rows, err, func(s scanner) (*ci.Trigger, error) { return scanTrigger(s) })
}

func (db *DB) TriggerByDigest(ctx context.Context, digest string) (*ci.Trigger, error) {
	t, err := scanTrigger(db.queryRow(ctx, `SELECT `+triggerCols+` FROM trigger_tokens WHERE digest = ?`, digest))
	return t, db.translate(err)
}

func (db *DB) DeleteTrigger(ctx context.Context, projectID, id int64) error {
	r, err := db.exec(ctx, `DELETE FROM trigger_tokens WHERE id = ? AND project_id = ?`, id, projectID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) TouchTrigger(ctx context.Context, id int64, now time.Time) error {
	_, err := db.exec(ctx, `UPDATE trigger_tokens SET last_used = ? WHERE id = ?`, tm(now), id)
	return err
}
