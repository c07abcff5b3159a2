package sqldb

import (
	"context"
	"database/sql"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const eventCols = `id, project_id, kind, object_id, pipeline_id, name, stage, ref, tag, sha, status, previous_status,
	failure_reason, created_at, started_at, finished_at, at`

func scanEvent(s scanner) (*ci.StatusEvent, error) {
	var e ci.StatusEvent
	var prev sql.NullString
	var created, at int64
	var started, finished sql.NullInt64
	if err := s.Scan(&e.ID, &e.ProjectID, &e.Kind, &e.ObjectID, &e.PipelineID, &e.Name, &e.Stage, &e.Ref, &e.Tag, &e.SHA,
		&e.Status, &prev, &e.FailureReason, &created, &started, &finished, &at); err != nil {
		return nil, err
	}
	e.PreviousStatus = ci.JobStatus(prev.String)
	e.CreatedAt, e.StartedAt, e.FinishedAt, e.At = fromMicros(created), fromNull(started), fromNull(finished), fromMicros(at)
	return &e, nil
}

func (db *DB) StatusEvents(ctx context.Context, f store.EventFilter) ([]*ci.StatusEvent, error) {
	q := `SELECT ` + eventCols + ` FROM status_events WHERE id > ?`
	args := []any{f.AfterID}
	if f.ProjectID != 0 {
		q += ` AND project_id = ?`
		args = append(args, f.ProjectID)
	}
	if f.Kind != "" {
		q += ` AND kind = ?`
		args = append(args, string(f.Kind))
	}
	if len(f.Statuses) > 0 {
		q += ` AND status IN (` + placeholders(len(f.Statuses)) + `)`
		for _, s := range f.Statuses {
			args = append(args, string(s))
		}
	}
	q += ` ORDER BY id`
	if f.Limit > 0 {
		q += ` LIMIT ?`
		args = append(args, f.Limit)
	}
	rows, err := db.query(ctx, q, args...)
	return collect(rows, err, scanEvent)
}

func (db *DB) EventLogBounds(ctx context.Context) (int64, int64, error) {
	var oldest, latest sql.NullInt64
	err := db.queryRow(ctx, `SELECT min(id), max(id) FROM status_events`).Scan(&oldest, &latest)
	return oldest.Int64, latest.Int64, err
}

func (db *DB) PruneStatusEvents(ctx context.Context, before time.Time) (int64, error) {
	r, err := db.exec(ctx, `DELETE FROM status_events WHERE at < ?`, tm(before))
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}
