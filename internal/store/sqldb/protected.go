package sqldb

import (
	"context"
	"database/sql"

	"gantry/internal/ci"
)

func (db *DB) CreateProtectedRef(ctx context.Context, p ci.ProtectedRef) (*ci.ProtectedRef, error) {
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		p.ID, err = db.insertID(ctx, tx, `INSERT INTO protected_refs (project_id, kind, name, allow_force_push, code_owner_approval_required, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.ProjectID, string(p.Kind), p.Name, p.AllowForcePush, p.CodeOwnerApprovalRequired, tm(p.CreatedAt))
		if err != nil {
			return err
		}
		for i, a := range p.Access {
			if p.Access[i].ID, err = db.insertID(ctx, tx, `INSERT INTO protected_ref_access_levels (protected_ref_id, action, access_level) VALUES (?, ?, ?)`,
				p.ID, string(a.Action), int(a.AccessLevel)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	p.CreatedAt = fromMicros(tm(p.CreatedAt))
	return &p, nil
}

func (db *DB) protectedRefs(ctx context.Context, where string, args ...any) (ci.RefProtection, error) {
	rows, err := db.query(ctx, `SELECT id, project_id, kind, name, allow_force_push, code_owner_approval_required, created_at FROM protected_refs WHERE `+where+` ORDER BY id`, args...)
	refs, err := collect(rows, err, func(s scanner) (*ci.ProtectedRef, error) {
		var p ci.ProtectedRef
		var created int64
		err := s.Scan(&p.ID, &p.ProjectID, &p.Kind, &p.Name, &p.AllowForcePush, &p.CodeOwnerApprovalRequired, &created)
		p.CreatedAt = fromMicros(created)
		return &p, err
	})
	if err != nil || len(refs) == 0 {
		return refs, err
	}
	byID := map[int64]*ci.ProtectedRef{}
	var ids []int64
	for _, p := range refs {
		byID[p.ID] = p
		ids = append(ids, p.ID)
	}
	rows, err = db.query(ctx, `SELECT id, protected_ref_id, action, access_level FROM protected_ref_access_levels WHERE protected_ref_id IN (`+placeholders(len(ids))+`) ORDER BY id`, int64Args(ids)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var a ci.ProtectedAccess
		var ref int64
		var level int
		if err := rows.Scan(&a.ID, &ref, &a.Action, &level); err != nil {
			return nil, err
		}
		a.AccessLevel = ci.AccessLevel(level)
		byID[ref].Access = append(byID[ref].Access, a)
	}
	return refs, rows.Err()
}

func (db *DB) ProtectedRefs(ctx context.Context, projectID int64, kind ci.RefKind) (ci.RefProtection, error) {
	return db.protectedRefs(ctx, `project_id = ? AND kind = ?`, projectID, string(kind))
}

func (db *DB) ProtectedRefByName(ctx context.Context, projectID int64, kind ci.RefKind, name string) (*ci.ProtectedRef, error) {
	refs, err := db.protectedRefs(ctx, `project_id = ? AND kind = ? AND name = ?`, projectID, string(kind), name)
	if err != nil {
		return nil, err
	}
	if len(refs) == 0 {
		return nil, ci.ErrNotFound
	}
	return refs[0], nil
}

func (db *DB) DeleteProtectedRef(ctx context.Context, projectID, id int64) error {
	r, err := db.exec(ctx, `DELETE FROM protected_refs WHERE project_id = ? AND id = ?`, projectID, id)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}
