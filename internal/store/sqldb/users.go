package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"strings"

	"gantry/internal/ci"
	"gantry/internal/store"
)

const userCols = `id, username, name, email, state, admin, bot, created_at`

func scanUser(row interface{ Scan(...any) error }) (*ci.User, error) {
	var u ci.User
	var created int64
	if err := row.Scan(&u.ID, &u.Username, &u.Name, &u.Email, &u.State, &u.Admin, &u.Bot, &created); err != nil {
		return nil, err
	}
	u.CreatedAt = fromMicros(created)
	return &u, nil
}

func (db *DB) CreateUser(ctx context.Context, p store.CreateUserParams) (*ci.User, error) {
	if p.State == "" {
		p.State = "active"
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO users (username, name, email, state, admin, bot, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
			p.Username, p.Name, p.Email, p.State, p.Admin, p.Bot, tm(p.Now))
		return err
	})
	if err != nil {
		return nil, err
	}
	return db.UserByID(ctx, id)
}

func (db *DB) UserByID(ctx context.Context, id int64) (*ci.User, error) {
	u, err := scanUser(db.queryRow(ctx, (`SELECT ` + userCols + ` FROM users WHERE id = ?`), id))
	return u, db.translate(err)
}

func (db *DB) UserByUsername(ctx context.Context, username string) (*ci.User, error) {
	u, err := scanUser(db.queryRow(ctx, (`SELECT ` + userCols + ` FROM users WHERE lower(username) = lower(?)`), username))
	return u, db.translate(err)
}

func (db *DB) UsersByIDs(ctx context.Context, ids []int64) (map[int64]*ci.User, error) {
	out := map[int64]*ci.User{}
	ids = uniqueIDs(ids)
	if len(ids) == 0 {
		return out, nil
	}
	rows, err := db.query(ctx, (`SELECT ` + userCols + ` FROM users WHERE id IN (` + placeholders(len(ids)) + `)`), int64Args(ids)...)
	list, err := collect(rows, err, func(s scanner) (*ci.User, error) { return scanUser(s) })
	for _, v := range list {
		out[v.ID] = v
	}
	return out, err
}

func (db *DB) CountUsers(ctx context.Context) (int64, error) {
	var n int64
	err := db.read.QueryRowContext(ctx, `SELECT count(*) FROM users`).Scan(&n)
	return n, err
}

func joinScopes(s []ci.Scope) string {
	parts := make([]string, len(s))
	for i, x := range s {
		parts[i] = string(x)
	}
	return strings.Join(parts, " ")
}

func splitScopes(s string) []ci.Scope {
	var out []ci.Scope
	for _, f := range strings.Fields(s) {
		out = append(out, ci.Scope(f))
	}
	return out
}

func (db *DB) CreateToken(ctx context.Context, p store.CreateTokenParams) (*ci.Token, error) {
	for _, s := range p.Scopes {
		if !s.Valid() {
			return nil, fmt.Errorf("%w: unknown scope %q", ci.ErrInvalid, s)
		}
	}
	var id int64
	err := db.tx(ctx, func(tx *sql.Tx) error {
		var err error
		id, err = db.insertID(ctx, tx, `INSERT INTO personal_access_tokens (user_id, name, digest, scopes, expires_at, created_at) VALUES (?, ?, ?, ?, ?, ?)`,
			p.UserID, p.Name, p.Digest, joinScopes(p.Scopes), tmp(p.ExpiresAt), tm(p.Now))
		return err
	})
	if err != nil {
		return nil, err
	}
	return &ci.Token{ID: id, UserID: p.UserID, Name: p.Name, Scopes: p.Scopes, ExpiresAt: p.ExpiresAt, CreatedAt: p.Now.UTC()}, nil
}

func (db *DB) TokenByDigest(ctx context.Context, digest string) (*ci.Token, *ci.User, error) {
	row := db.queryRow(ctx, (`SELECT t.id, t.user_id, t.name, t.scopes, t.expires_at, t.revoked, t.created_at,
		u.id, u.username, u.name, u.email, u.state, u.admin, u.bot, u.created_at
		FROM personal_access_tokens t JOIN users u ON u.id = t.user_id WHERE t.digest = ?`), digest)
	var t ci.Token
	var u ci.User
	var scopes string
	var exp sql.NullInt64
	var tc, uc int64
	err := row.Scan(&t.ID, &t.UserID, &t.Name, &scopes, &exp, &t.Revoked, &tc,
		&u.ID, &u.Username, &u.Name, &u.Email, &u.State, &u.Admin, &u.Bot, &uc)
	if err != nil {
		return nil, nil, db.translate(err)
	}
	t.Scopes = splitScopes(scopes)
	t.ExpiresAt = fromNull(exp)
	t.CreatedAt = fromMicros(tc)
	u.CreatedAt = fromMicros(uc)
	return &t, &u, nil
}

func (db *DB) RevokeToken(ctx context.Context, id int64) error {
	res, err := db.exec(ctx, `UPDATE personal_access_tokens SET revoked = TRUE WHERE id = ?`, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}
