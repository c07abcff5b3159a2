package sqldb

import (
	"context"
	"database/sql"
	"time"

	"gantry/internal/ci"
	"gantry/internal/store"
)

func (db *DB) SetUserPassword(ctx context.Context, userID int64, digest string) error {
	var v any
	if digest != "" {
		v = digest
	}
	res, err := db.exec(ctx, `UPDATE users SET password_digest = ? WHERE id = ?`, v, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return ci.ErrNotFound
	}
	return nil
}

func (db *DB) UserPasswordDigest(ctx context.Context, userID int64) (string, error) {
	var d sql.NullString
	err := db.queryRow(ctx, `SELECT password_digest FROM users WHERE id = ?`, userID).Scan(&d)
	return d.String, db.translate(err)
}

func (db *DB) CreateSession(ctx context.Context, s store.Session) error {
	_, err := db.exec(ctx, `INSERT INTO web_sessions (digest, user_id, created_at, expires_at) VALUES (?, ?, ?, ?)`,
		s.Digest, s.UserID, tm(s.CreatedAt), tm(s.ExpiresAt))
	return db.translate(err)
}

func (db *DB) SessionByDigest(ctx context.Context, digest string, now time.Time) (*store.Session, *ci.User, error) {
	row := db.queryRow(ctx, `SELECT s.digest, s.user_id, s.created_at, s.expires_at,
		u.id, u.username, u.name, u.email, u.state, u.admin, u.bot, u.created_at
		FROM web_sessions s JOIN users u ON u.id = s.user_id WHERE s.digest = ? AND s.expires_at > ?`, digest, tm(now))
	var s store.Session
	var u ci.User
	var sc, se, uc int64
	if err := row.Scan(&s.Digest, &s.UserID, &sc, &se, &u.ID, &u.Username, &u.Name, &u.Email, &u.State, &u.Admin, &u.Bot, &uc); err != nil {
		return nil, nil, db.translate(err)
	}
	s.CreatedAt, s.ExpiresAt, u.CreatedAt = fromMicros(sc), fromMicros(se), fromMicros(uc)
	return &s, &u, nil
}

func (db *DB) DeleteSession(ctx context.Context, digest string) error {
	_, err := db.exec(ctx, `DELETE FROM web_sessions WHERE digest = ?`, digest)
	return err
}

func (db *DB) DeleteExpiredSessions(ctx context.Context, now time.Time) (int64, error) {
	res, err := db.exec(ctx, `DELETE FROM web_sessions WHERE expires_at <= ?`, tm(now))
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}
