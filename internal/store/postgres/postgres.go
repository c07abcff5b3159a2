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
	// Migrate chooses what Open migrates: by default pending expand
	// migrations (everything on an empty database); ApplyNone only checks
	// that no expand migration is pending.
	Migrate sqldb.Plan
	// Migrations replaces the embedded migrations (tests play other
	// versions with it).
	Migrations fs.FS
}

// Migrations are the migrations this version ships.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// Open connects to url (postgres://…) and migrates the schema.
func Open(ctx context.Context, url string, opt Options) (*sqldb.DB, error) {
	if opt.MaxConns <= 0 {
		opt.MaxConns = 16
	}
	db, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(opt.MaxConns)
	db.SetMaxIdleConns(opt.MaxConns)
	rep, err := sqldb.Migrate(ctx, db, "postgres", opt.migrations(), opt.Migrate)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres migrate: %w", err)
	}
	d := sqldb.Dialect{Name: "postgres", IsUniqueViolation: isUniqueViolation}
	st := sqldb.New(d, db, db, false)
	st.SetMigrationReport(rep)
	return st, nil
}

func (o Options) migrations() fs.FS {
	if o.Migrations != nil {
		return o.Migrations
	}
	return Migrations()
}

func connect(ctx context.Context, url string) (*sql.DB, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, err
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return db, nil
}

// Migrate applies the migrations plan selects to the database at url
// (`gantry migrate`), with one connection.
func Migrate(ctx context.Context, url string, plan sqldb.Plan, opt Options) (sqldb.MigrationReport, error) {
	db, err := connect(ctx, url)
	if err != nil {
		return sqldb.MigrationReport{}, err
	}
	defer db.Close()
	return sqldb.Migrate(ctx, db, "postgres", opt.migrations(), plan)
}

// MigrationStatus lists the database's migrations (`gantry migrate --status`).
func MigrationStatus(ctx context.Context, url string, opt Options) ([]sqldb.MigrationState, error) {
	db, err := connect(ctx, url)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return sqldb.MigrationStatus(ctx, db, opt.migrations())
}

func isUniqueViolation(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}
