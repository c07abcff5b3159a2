package sqldb

import (
	"context"
	"database/sql"
	"strings"
	"time"

	"gantry/internal/ci"
)

func zoneFor(offset int) *time.Location {
	if offset == 0 {
		return time.UTC
	}
	return time.FixedZone("", offset)
}

const pipelineCols = `id, iid, project_id, sha, before_sha, ref, tag, status, source, user_id, parent_id, created_at, updated_at, started_at, finished_at, duration, config_errors, protected`

func scanPipeline(row interface{ Scan(...any) error }) (*ci.Pipeline, error) {
	r := newRawRow(pipelineColCount)
	if err := row.Scan(r.ptrs...); err != nil {
		return nil, err
	}
	p := pipelineFromRow(r, 0)
	return p, r.err
}

// pipelineColCount is how many columns pipelineCols names.
var pipelineColCount = strings.Count(pipelineCols, ",") + 1

// pipelineFromRow reads pipelineCols from r's columns at..at+17.
func pipelineFromRow(r *rawRow, at int) *ci.Pipeline {
	return &ci.Pipeline{ID: r.i64(at), IID: r.i64(at + 1), ProjectID: r.i64(at + 2), SHA: r.str(at + 3), BeforeSHA: r.str(at + 4),
		Ref: r.str(at + 5), Tag: r.boolean(at + 6), Status: ci.JobStatus(r.str(at + 7)), Source: ci.PipelineSource(r.str(at + 8)),
		UserID: r.nullI64(at + 9), ParentID: r.nullI64(at + 10), CreatedAt: r.time(at + 11), UpdatedAt: r.time(at + 12),
		StartedAt: r.nullTime(at + 13), FinishedAt: r.nullTime(at + 14), Duration: r.nullF64(at + 15), ConfigErrors: r.str(at + 16),
		Protected: r.boolean(at + 17)}
}

func (db *DB) InsertPipeline(ctx context.Context, p ci.Pipeline) (*ci.Pipeline, error) {
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertPipeline(ctx, tx, p)
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.PipelineByID(ctx, p.ProjectID, id)
}

func (db *DB) insertPipeline(ctx context.Context, tx *sql.Tx, p ci.Pipeline) (int64, error) {
	{
		var iid int64
		if err := tx.QueryRowContext(ctx, db.q(`SELECT COALESCE(MAX(iid), 0) + 1 FROM pipelines WHERE project_id = ?`), p.ProjectID).Scan(&iid); err != nil {
			return 0, err
		}
		var dur any
		if p.Duration != nil {
			dur = *p.Duration
		}
		return db.insertID(ctx, tx, `INSERT INTO pipelines (iid, project_id, sha, before_sha, ref, tag, status, source, user_id, parent_id, created_at, updated_at, started_at, finished_at, duration, config_errors, protected)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			iid, p.ProjectID, p.SHA, p.BeforeSHA, p.Ref, p.Tag, string(p.Status), string(p.Source), idArg(p.UserID), idArg(p.ParentID),
			tm(p.CreatedAt), tm(p.UpdatedAt), tmp(p.StartedAt), tmp(p.FinishedAt), dur, p.ConfigErrors, p.Protected)
	}
}

func (db *DB) PipelineByID(ctx context.Context, projectID, id int64) (*ci.Pipeline, error) {
	p, err := scanPipeline(db.queryRow(ctx, (`SELECT ` + pipelineCols + ` FROM pipelines WHERE id = ? AND project_id = ?`), id, projectID))
	return p, db.translate(err)
}

func (db *DB) PipelinesByIDs(ctx context.Context, ids []int64) (map[int64]*ci.Pipeline, error) {
	out := map[int64]*ci.Pipeline{}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, (`SELECT ` + pipelineCols + ` FROM pipelines WHERE id IN (` + placeholders(len(ids)) + `)`), int64Args(ids)...)
	list, err := collect(rows, err, func(s scanner) (*ci.Pipeline, error) { return scanPipeline(s) })
	for _, v := range list {
		out[v.ID] = v
	}
	return out, err
}
