package sqldb

import (
	"context"
	"database/sql"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const hookCols = `id, project_id, url, name, description, token, push_events, job_events, pipeline_events, enable_ssl_verification, created_at`

func scanHook(s scanner) (*ci.ProjectHook, error) {
	var h ci.ProjectHook
	var created int64
	if err := s.Scan(&h.ID, &h.ProjectID, &h.URL, &h.Name, &h.Description, &h.Token, &h.PushEvents, &h.JobEvents, &h.PipelineEvents,
		&h.EnableSSLVerification, &created); err != nil {
		return nil, err
	}
	h.CreatedAt = fromMicros(created)
	return &h, nil
}

func (db *DB) CreateHook(ctx context.Context, h ci.ProjectHook) (*ci.ProjectHook, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		h.ID, err = db.insertID(ctx, tx, `INSERT INTO project_hooks (project_id, url, name, description, token, push_events, job_events,
			pipeline_events, enable_ssl_verification, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			h.ProjectID, h.URL, h.Name, h.Description, h.Token, h.PushEvents, h.JobEvents, h.PipelineEvents, h.EnableSSLVerification, tm(h.CreatedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	h.CreatedAt = fromMicros(tm(h.CreatedAt))
	return &h, nil
}

func (db *DB) Hooks(ctx context.Context, projectID int64) ([]*ci.ProjectHook, error) {
	rows, err := db.query(ctx, `SELECT `+hookCols+` FROM project_hooks WHERE project_id = ? ORDER BY id`, projectID)
	return collect(rows, err, scanHook)
}

func (db *DB) HookByID(ctx context.Context, projectID, id int64) (*ci.ProjectHook, error) {
	h, err := scanHook(db.queryRow(ctx, `SELECT `+hookCols+` FROM project_hooks WHERE project_id = ? AND id = ?`, projectID, id))
	return h, db.translate(err)
}

func (db *DB) UpdateHook(ctx context.Context, h ci.ProjectHook) (*ci.ProjectHook, error) {
	r, err := db.exec(ctx, `UPDATE project_hooks SET url = ?, name = ?, description = ?, token = ?, push_events = ?, job_events = ?,
		pipeline_events = ?, enable_ssl_verification = ? WHERE id = ? AND project_id = ?`,
		h.URL, h.Name, h.Description, h.Token, h.PushEvents, h.JobEvents, h.PipelineEvents, h.EnableSSLVerification, h.ID, h.ProjectID)
	if err != nil {
		return nil, err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return nil, ci.ErrNotFound
	}
	return db.HookByID(ctx, h.ProjectID, h.ID)
}

func (db *DB) DeleteHook(ctx context.Context, projectID, id int64) error {
	r, err := db.exec(ctx, `DELETE FROM project_hooks WHERE id = ? AND project_id = ?`, id, projectID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

const deliveryCols = `d.id, d.hook_id, d.event_id, d.kind, d.state, d.attempts, d.next_attempt_at, d.uuid, d.payload, d.response_status,
	d.response_excerpt, d.error, d.duration, d.created_at, d.updated_at`

// deliveryScan holds the buffers of one delivery row.
type deliveryScan struct {
	d                      ci.HookDelivery
	payload                sql.NullString
	status                 sql.NullInt64
	duration               sql.NullFloat64
	next, created, updated int64
}

func (s *deliveryScan) ptrs() []any {
	return []any{&s.d.ID, &s.d.HookID, &s.d.EventID, &s.d.Kind, &s.d.State, &s.d.Attempts, &s.next, &s.d.UUID, &s.payload, &s.status,
		&s.d.ResponseExcerpt, &s.d.Error, &s.duration, &s.created, &s.updated}
}

func (s *deliveryScan) delivery() *ci.HookDelivery {
	d := s.d
	if s.payload.Valid {
		d.Payload = []byte(s.payload.String)
	}
	if s.status.Valid {
		v := int(s.status.Int64)
		d.ResponseStatus = &v
	}
	if s.duration.Valid {
		v := s.duration.Float64
		d.Duration = &v
	}
	d.NextAttemptAt, d.CreatedAt, d.UpdatedAt = fromMicros(s.next), fromMicros(s.created), fromMicros(s.updated)
	return &d
}

func (db *DB) ClaimHookDeliveries(ctx context.Context, now, leaseUntil time.Time, limit int) ([]*store.ClaimedDelivery, error) {
	lock := ""
	if db.dialect.Name == "postgres" {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	var ids []int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, db.q(`UPDATE hook_deliveries SET attempts = attempts + 1, next_attempt_at = ?, updated_at = ?,
			response_status = NULL, response_excerpt = '', error = '', duration = NULL
			WHERE id IN (SELECT id FROM hook_deliveries WHERE state = 'pending' AND next_attempt_at <= ? ORDER BY next_attempt_at, id LIMIT ?`+lock+`)
			RETURNING id`), tm(leaseUntil), tm(now), tm(now), limit)
		ids, err = collectIDs(rows, err)
		return err
	})
	if err != nil || len(ids) == 0 {
		return nil, err
	}
	return db.claimed(ctx, ids)
}

// claimed reads claimed deliveries with their hooks and events.
func (db *DB) claimed(ctx context.Context, ids []int64) ([]*store.ClaimedDelivery, error) {
	var ds deliveryScan
	rows, err := db.query(ctx, `SELECT `+deliveryCols+` FROM hook_deliveries d WHERE d.id IN (`+placeholders(len(ids))+`) ORDER BY d.id`, int64Args(ids)...)
	deliveries, err := collect(rows, err, func(s scanner) (*ci.HookDelivery, error) {
		if err := s.Scan(ds.ptrs()...); err != nil {
			return nil, err
		}
		return ds.delivery(), nil
	})
	if err != nil {
		return nil, err
	}
	var hookIDs, eventIDs []int64
	for _, d := range deliveries {
		hookIDs, eventIDs = append(hookIDs, d.HookID), append(eventIDs, d.EventID)
	}
	hookIDs, eventIDs = uniqueIDs(hookIDs), uniqueIDs(eventIDs)
	rows, err = db.query(ctx, `SELECT `+hookCols+` FROM project_hooks WHERE id IN (`+placeholders(len(hookIDs))+`)`, int64Args(hookIDs)...)
	hooks, err := collect(rows, err, scanHook)
	if err != nil {
		return nil, err
	}
	rows, err = db.query(ctx, `SELECT `+eventCols+` FROM status_events WHERE id IN (`+placeholders(len(eventIDs))+`)`, int64Args(eventIDs)...)
	events, err := collect(rows, err, scanEvent)
	if err != nil {
		return nil, err
	}
	hookByID, eventByID := map[int64]*ci.ProjectHook{}, map[int64]*ci.StatusEvent{}
	for _, h := range hooks {
		hookByID[h.ID] = h
	}
	for _, e := range events {
		eventByID[e.ID] = e
	}
	var out []*store.ClaimedDelivery
	for _, d := range deliveries {
		h := hookByID[d.HookID]
		if h == nil {
			continue // the hook was deleted meanwhile, its deliveries with it
		}
		out = append(out, &store.ClaimedDelivery{Delivery: *d, Hook: *h, Event: eventByID[d.EventID]})
	}
	return out, nil
}

func (db *DB) RecordHookAttempt(ctx context.Context, a store.HookAttempt) error {
	var status any
	if a.ResponseStatus != nil {
		status = *a.ResponseStatus
	}
	var payload any
	if a.Payload != nil {
		payload = string(a.Payload)
	}
	r, err := db.exec(ctx, `UPDATE hook_deliveries SET state = ?, next_attempt_at = ?, uuid = ?, payload = COALESCE(?, payload), response_status = ?,
		response_excerpt = ?, error = ?, duration = ?, updated_at = ? WHERE id = ? AND attempts = ? AND state = 'pending'`,
		string(a.State), tm(a.NextAttemptAt), a.UUID, payload, status, a.ResponseExcerpt, a.Error, a.Duration.Seconds(), tm(a.Now),
		a.DeliveryID, a.Attempt)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrConflict
	}
	return nil
}

func (db *DB) HookDeliveries(ctx context.Context, hookID int64, limit, offset int) ([]*ci.HookDelivery, error) {
	var ds deliveryScan
	rows, err := db.query(ctx, `SELECT `+deliveryCols+` FROM hook_deliveries d WHERE d.hook_id = ? ORDER BY d.id DESC LIMIT ? OFFSET ?`, hookID, limit, offset)
	return collect(rows, err, func(s scanner) (*ci.HookDelivery, error) {
		if err := s.Scan(ds.ptrs()...); err != nil {
			return nil, err
		}
		return ds.delivery(), nil
	})
}

func (db *DB) NextHookAttemptAt(ctx context.Context) (*time.Time, error) {
	var v sql.NullInt64
	if err := db.queryRow(ctx, `SELECT min(next_attempt_at) FROM hook_deliveries WHERE state = 'pending'`).Scan(&v); err != nil {
		return nil, err
	}
	return fromNull(v), nil
}

func (db *DB) PruneHookDeliveries(ctx context.Context, before time.Time) (int64, error) {
	r, err := db.exec(ctx, `DELETE FROM hook_deliveries WHERE state <> 'pending' AND updated_at < ?`, tm(before))
	if err != nil {
		return 0, err
	}
	return r.RowsAffected()
}
