// Package postgres is the PostgreSQL storage adapter, through pgx. Several
// gantry nodes share one database through it.
package postgres

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"

	"github.com/jackc/pgx/v5/pgconn"
	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" database/sql driver

	"gantry/internal/store/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the adapter.
type Options struct {
	// MaxConns bounds this node's pool (default 16).
	MaxConns int
}

// Open connects to url (postgres://…) and migrates the schema.
func Open(ctx context.Context, url string, opt Options) (*sqldb.DB, error) {
	if opt.MaxConns <= 0 {
		opt.MaxConns = 16
	}
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(opt.MaxConns)
	db.SetMaxIdleConns(opt.MaxConns)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	sub, _ := fs.Sub(migrations, "migrations")
	if err := sqldb.Migrate(ctx, db, "postgres", sub); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres migrate: %w", err)
	}
	d := sqldb.Dialect{Name: "postgres", IsUniqueViolation: isUniqueViolation}
	return sqldb.New(d, db, db, false), nil
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
