package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"

	"gantry/internal/ci"
)

const runnerCols = `id, runner_type, description, name, paused, locked, run_untagged, access_level, tag_list, maximum_timeout, created_by_id, created_at, contacted_at, maintenance_note`

func scanRunner(row interface{ Scan(...any) error }) (*ci.Runner, error) {
	var r ci.Runner
	var name sql.NullString
	var tags string
	var maxTimeout, createdBy, contacted sql.NullInt64
	var created int64
	if err := row.Scan(&r.ID, &r.Type, &r.Description, &name, &r.Paused, &r.Locked, &r.RunUntagged, &r.AccessLevel, &tags,
		&maxTimeout, &createdBy, &created, &contacted, &r.MaintenanceNote); err != nil {
		return nil, err
	}
	if name.Valid {
		r.Name = &name.String
	}
	_ = json.Unmarshal([]byte(tags), &r.TagList)
	if maxTimeout.Valid {
		v := int(maxTimeout.Int64)
		r.MaximumTimeout = &v
	}
	r.CreatedByID, r.CreatedAt, r.ContactedAt = nullID(createdBy), fromMicros(created), fromNull(contacted)
	return &r, nil
}

func (db *DB) InsertRunner(ctx context.Context, r ci.Runner, tokenDigest string) (*ci.Runner, error) {
	var name, maxTimeout any
	if r.Name != nil {
		name = *r.Name
	}
	if r.MaximumTimeout != nil {
		maxTimeout = *r.MaximumTimeout
	}
	if r.AccessLevel == "" {
		r.AccessLevel = "not_protected"
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO runners (runner_type, description, name, paused, locked, run_untagged, access_level, tag_list, maximum_timeout, token_digest, created_by_id, created_at, contacted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			string(r.Type), r.Description, name, r.Paused, r.Locked, r.RunUntagged, r.AccessLevel, encodeTags(r.TagList), maxTimeout, tokenDigest,
			idArg(r.CreatedByID), tm(r.CreatedAt), tmp(r.ContactedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	m, err := db.RunnersByIDs(ctx, []int64{id})
	if err != nil {
		return nil, err
	}
	return m[id], nil
}

func (db *DB) RunnersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.Runner, error) {
	out := map[int64]*ci.Runner{}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, (`SELECT ` + runnerCols + ` FROM runners WHERE id IN (` + placeholders(len(ids)) + `)`), int64Args(ids)...)
	list, err := collect(rows, err, func(s scanner) (*ci.Runner, error) { return scanRunner(s) })
	for _, v := range list {
		out[v.ID] = v
	}
	return out, err
}

const managerCols = `id, runner_id, system_id, version, revision, platform, architecture, ip_address, created_at, contacted_at`

func nullStr(v sql.NullString) *string {
	if !v.Valid {
		return nil
	}
	s := v.String
	return &s
}

func strArg(p *string) any {
	if p == nil {
		return nil
	}
	return *p
}

func (db *DB) InsertRunnerManager(ctx context.Context, m ci.RunnerManager) (*ci.RunnerManager, error) {
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO runner_managers (runner_id, system_id, version, revision, platform, architecture, ip_address, created_at, contacted_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			m.RunnerID, m.SystemID, strArg(m.Version), strArg(m.Revision), strArg(m.Platform), strArg(m.Architecture), strArg(m.IPAddress),
			tm(m.CreatedAt), tmp(m.ContactedAt))
		return err
	})
	if err != nil {
		return nil, err
	}
	out, err := db.RunnerManagersByIDs(ctx, []int64{id})
	if err != nil {
		return nil, err
	}
	return out[id], nil
}

func (db *DB) RunnerManagersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.RunnerManager, error) {
	out := map[int64]*ci.RunnerManager{}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, (`SELECT ` + managerCols + ` FROM runner_managers WHERE id IN (` + placeholders(len(ids)) + `)`), int64Args(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var m ci.RunnerManager
		var version, revision, platform, arch, ip sql.NullString
		var created int64
		var contacted sql.NullInt64
		if err := rows.Scan(&m.ID, &m.RunnerID, &m.SystemID, &version, &revision, &platform, &arch, &ip, &created, &contacted); err != nil {
			return nil, err
		}
		m.Version, m.Revision, m.Platform, m.Architecture, m.IPAddress = nullStr(version), nullStr(revision), nullStr(platform), nullStr(arch), nullStr(ip)
		m.CreatedAt, m.ContactedAt = fromMicros(created), fromNull(contacted)
		out[m.ID] = &m
	}
	return out, rows.Err()
}
