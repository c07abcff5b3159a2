package sqldb

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const nsCols = `id, name, path, full_path, full_name, kind, parent_id, owner_id, visibility, description, created_at`

func scanNamespace(row interface{ Scan(...any) error }) (*ci.Namespace, error) {
	var n ci.Namespace
	var parent, owner sql.NullInt64
	var created int64
	if err := row.Scan(&n.ID, &n.Name, &n.Path, &n.FullPath, &n.FullName, &n.Kind, &parent, &owner, &n.Visibility, &n.Description, &created); err != nil {
		return nil, err
	}
	n.ParentID, n.OwnerID, n.CreatedAt = nullID(parent), nullID(owner), fromMicros(created)
	return &n, nil
}

func (db *DB) CreateNamespace(ctx context.Context, p store.CreateNamespaceParams) (*ci.Namespace, error) {
	if !p.Visibility.Valid() {
		return nil, fmt.Errorf("%w: visibility", ci.ErrInvalid)
	}
	fullPath, fullName := p.Path, p.Name
	if p.ParentID != nil {
		parent, err := db.NamespaceByID(ctx, *p.ParentID)
		if err != nil {
			return nil, err
		}
		if parent.Kind != ci.NamespaceGroup {
			return nil, fmt.Errorf("%w: parent must be a group", ci.ErrInvalid)
		}
		fullPath = parent.FullPath + "/" + p.Path
		fullName = parent.FullName + " / " + p.Name
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT count(*) FROM projects WHERE lower(full_path) = lower(?)`), fullPath).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: path %q is taken", ci.ErrConflict, fullPath)
		}
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO namespaces (name, path, full_path, full_name, kind, parent_id, owner_id, visibility, description, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.Name, p.Path, fullPath, fullName, string(p.Kind), idArg(p.ParentID), idArg(p.OwnerID), string(p.Visibility), p.Description, tm(p.Now))
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.NamespaceByID(ctx, id)
}

func (db *DB) NamespaceByID(ctx context.Context, id int64) (*ci.Namespace, error) {
	n, err := scanNamespace(db.queryRow(ctx, (`SELECT ` + nsCols + ` FROM namespaces WHERE id = ?`), id))
	return n, db.translate(err)
}

func (db *DB) NamespaceByFullPath(ctx context.Context, fullPath string) (*ci.Namespace, error) {
	n, err := scanNamespace(db.queryRow(ctx, (`SELECT ` + nsCols + ` FROM namespaces WHERE lower(full_path) = lower(?)`), fullPath))
	return n, db.translate(err)
}

func (db *DB) NamespaceAncestors(ctx context.Context, id int64) ([]*ci.Namespace, error) {
	var out []*ci.Namespace
	for depth := 0; depth < 32; depth++ {
		n, err := db.NamespaceByID(ctx, id)
		if err != nil {
			return nil, err
		}
		out = append(out, n)
		if n.ParentID == nil {
			return out, nil
		}
		id = *n.ParentID
	}
	return nil, fmt.Errorf("%w: namespace nesting too deep", ci.ErrInvalid)
}

const projectCols = `p.id, p.namespace_id, p.name, p.path, p.full_path, p.description, p.visibility, p.public_builds, p.default_branch,
	p.ci_job_token_scope_enabled, p.archived, p.creator_id, p.created_at, p.updated_at, p.last_activity_at, p.max_artifacts_size,
	n.id, n.name, n.path, n.full_path, n.full_name, n.kind, n.parent_id, n.owner_id, n.visibility, n.description, n.created_at`

func scanProject(row interface{ Scan(...any) error }) (*ci.Project, error) {
	var p ci.Project
	var created, updated, activity, nsCreated int64
	var parent, owner, maxArtifacts sql.NullInt64
	n := &p.Namespace
	err := row.Scan(&p.ID, &p.NamespaceID, &p.Name, &p.Path, &p.FullPath, &p.Description, &p.Visibility, &p.PublicBuilds, &p.DefaultBranch,
		&p.CIJobTokenScopeEnabled, &p.Archived, &p.CreatorID, &created, &updated, &activity, &maxArtifacts,
		&n.ID, &n.Name, &n.Path, &n.FullPath, &n.FullName, &n.Kind, &parent, &owner, &n.Visibility, &n.Description, &nsCreated)
	if err != nil {
		return nil, err
	}
	p.CreatedAt, p.UpdatedAt, p.LastActivityAt = fromMicros(created), fromMicros(updated), fromMicros(activity)
	if maxArtifacts.Valid {
		mb := int(maxArtifacts.Int64)
		p.MaxArtifactsSizeMB = &mb
	}
	n.ParentID, n.OwnerID, n.CreatedAt = nullID(parent), nullID(owner), fromMicros(nsCreated)
	return &p, nil
}

func (db *DB) CreateProject(ctx context.Context, p store.CreateProjectParams) (*ci.Project, error) {
	if !p.Visibility.Valid() {
		return nil, fmt.Errorf("%w: visibility", ci.ErrInvalid)
	}
	ns, err := db.NamespaceByID(ctx, p.NamespaceID)
	if err != nil {
		return nil, err
	}
	if p.DefaultBranch == "" {
		p.DefaultBranch = "main"
	}
	fullPath := ns.FullPath + "/" + p.Path
	var id int64
	err = db.tx(ctx, func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, db.q(`SELECT count(*) FROM namespaces WHERE lower(full_path) = lower(?)`), fullPath).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return fmt.Errorf("%w: path %q is taken", ci.ErrConflict, fullPath)
		}
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO projects (namespace_id, name, path, full_path, description, visibility, public_builds, default_branch, creator_id, created_at, updated_at, last_activity_at)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			p.NamespaceID, p.Name, p.Path, fullPath, p.Description, string(p.Visibility), p.PublicBuilds, p.DefaultBranch, p.CreatorID, tm(p.Now), tm(p.Now), tm(p.Now))
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.ProjectByID(ctx, id)
}

func (db *DB) ProjectByID(ctx context.Context, id int64) (*ci.Project, error) {
	p, err := scanProject(db.queryRow(ctx, (`SELECT ` + projectCols + ` FROM projects p JOIN namespaces n ON n.id = p.namespace_id WHERE p.id = ?`), id))
	return p, db.translate(err)
}

func (db *DB) ProjectByFullPath(ctx context.Context, fullPath string) (*ci.Project, error) {
	p, err := scanProject(db.queryRow(ctx, (`SELECT ` + projectCols + ` FROM projects p JOIN namespaces n ON n.id = p.namespace_id WHERE lower(p.full_path) = lower(?)`), fullPath))
	return p, db.translate(err)
}

// memberProjectsSQL selects ids of projects the user is a member of, directly
// or through any ancestor group (walked with a recursive CTE).
const memberProjectsSQL = `WITH RECURSIVE ns(id) AS (
	SELECT source_id FROM members WHERE source_type = 'namespace' AND user_id = ?
	UNION SELECT c.id FROM namespaces c JOIN ns ON c.parent_id = ns.id
)
SELECT p.id FROM projects p WHERE p.namespace_id IN (SELECT id FROM ns)
UNION SELECT source_id FROM members WHERE source_type = 'project' AND user_id = ?
UNION SELECT p.id FROM projects p JOIN namespaces n ON n.id = p.namespace_id WHERE n.owner_id = ?`

func (db *DB) ListProjects(ctx context.Context, f store.ProjectFilter) ([]*ci.Project, error) {
	var where []string
	var args []any
	switch {
	case f.Membership && f.ViewerID != 0:
		where = append(where, `p.id IN (`+memberProjectsSQL+`)`)
		args = append(args, f.ViewerID, f.ViewerID, f.ViewerID)
	case f.Admin:
	case f.ViewerID != 0:
		where = append(where, `(p.visibility IN ('public','internal') OR p.id IN (`+memberProjectsSQL+`))`)
		args = append(args, f.ViewerID, f.ViewerID, f.ViewerID)
	default:
		where = append(where, `p.visibility = 'public'`)
	}
	if f.Search != "" {
		where = append(where, `(lower(p.name) LIKE ? OR lower(p.full_path) LIKE ?)`)
		s := "%" + strings.ToLower(f.Search) + "%"
		args = append(args, s, s)
	}
	if f.AfterID > 0 {
		where = append(where, `p.id < ?`)
		args = append(args, f.AfterID)
	}
	query := `SELECT ` + projectCols + ` FROM projects p JOIN namespaces n ON n.id = p.namespace_id`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	query += ` ORDER BY p.id DESC LIMIT ? OFFSET ?`
	args = append(args, f.Limit, f.Offset)
	rows, err := db.query(ctx, query, args...)
	return collect(rows, err, func(s scanner) (*ci.Project, error) { return scanProject(s) })
}

func (db *DB) AddMember(ctx context.Context, p store.AddMemberParams) error {
	if !p.AccessLevel.Valid() {
		return fmt.Errorf("%w: access level %d", ci.ErrInvalid, p.AccessLevel)
	}
	return db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO members (source_type, source_id, user_id, access_level, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)
			ON CONFLICT (source_type, source_id, user_id) DO UPDATE SET access_level = excluded.access_level, expires_at = excluded.expires_at`),
			string(p.Source), p.SourceID, p.UserID, int(p.AccessLevel), tmp(p.ExpiresAt), tm(p.Now))
		return db.translate(err)
	})
}

func (db *DB) ProjectAccess(ctx context.Context, userID int64, project *ci.Project) (ci.AccessLevel, error) {
	if userID == 0 {
		return ci.NoAccess, nil
	}
	if project.Namespace.OwnerID != nil && *project.Namespace.OwnerID == userID {
		return ci.Owner, nil
	}
	rows, err := db.query(ctx, (`WITH RECURSIVE anc(id, parent_id) AS (
		SELECT id, parent_id FROM namespaces WHERE id = ?
		UNION ALL SELECT n.id, n.parent_id FROM namespaces n JOIN anc ON n.id = anc.parent_id
	)
	SELECT access_level FROM members WHERE user_id = ? AND (
		(source_type = 'project' AND source_id = ?) OR (source_type = 'namespace' AND source_id IN (SELECT id FROM anc)))`),
		project.NamespaceID, userID, project.ID)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	best := ci.NoAccess
	for rows.Next() {
		var l int
		if err := rows.Scan(&l); err != nil {
			return 0, err
		}
		if ci.AccessLevel(l) > best {
			best = ci.AccessLevel(l)
		}
	}
	return best, rows.Err()
}

func (db *DB) UpsertCommit(ctx context.Context, projectID int64, c ci.Commit) error {
	parents, _ := json.Marshal(c.ParentIDs)
	_, aoff := c.AuthoredDate.Zone()
	_, coff := c.CommittedDate.Zone()
	return db.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, db.q(`INSERT INTO commits (project_id, sha, parent_ids, title, message, author_name, author_email, authored_date, authored_tz,
			committer_name, committer_email, committed_date, committed_tz) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
			ON CONFLICT (project_id, sha) DO NOTHING`),
			projectID, c.SHA, string(parents), c.Title, c.Message, c.AuthorName, c.AuthorEmail, tm(c.AuthoredDate), aoff,
			c.CommitterName, c.CommitterEmail, tm(c.CommittedDate), coff)
		return err
	})
}

func (db *DB) CommitsBySHA(ctx context.Context, projectID int64, shas []string) (map[string]*ci.Commit, error) {
	out := map[string]*ci.Commit{}
	if len(shas) == 0 {
		return out, nil
	}
	args := []any{projectID}
	for _, s := range shas {
		args = append(args, s)
	}
	rows, err := db.query(ctx, (`SELECT sha, parent_ids, title, message, author_name, author_email, authored_date, authored_tz,
		committer_name, committer_email, committed_date, committed_tz FROM commits WHERE project_id = ? AND sha IN (` + placeholders(len(shas)) + `)`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	for rows.Next() {
		var c ci.Commit
		var parents string
		var ad, cd int64
		var atz, ctz int
		if err := rows.Scan(&c.SHA, &parents, &c.Title, &c.Message, &c.AuthorName, &c.AuthorEmail, &ad, &atz,
			&c.CommitterName, &c.CommitterEmail, &cd, &ctz); err != nil {
			return nil, err
		}
		_ = json.Unmarshal([]byte(parents), &c.ParentIDs)
		c.AuthoredDate = fromMicros(ad).In(zoneFor(atz))
		c.CommittedDate = fromMicros(cd).In(zoneFor(ctz))
		out[c.SHA] = &c
	}
	return out, rows.Err()
}

func (db *DB) SetProjectMaxArtifactsSize(ctx context.Context, projectID int64, mb *int) error {
	var v any
	if mb != nil {
		v = *mb
	}
	r, err := db.exec(ctx, `UPDATE projects SET max_artifacts_size = ? WHERE id = ?`, v, projectID)
	if err != nil {
		return err
	}
	if n, _ := r.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}
