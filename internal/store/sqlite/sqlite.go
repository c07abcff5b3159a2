// Package sqlite is the embedded storage adapter: one database file in the
// data directory, WAL mode, foreign keys on, a busy timeout, one writer
// connection and a small pool of readers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"time"

	sqlite3 "github.com/mattn/go-sqlite3"

	"gantry/internal/store/sqldb"
)

//go:embed migrations/*.sql
var migrations embed.FS

// Options tune the adapter.
type Options struct {
	// Readers is the size of the read pool (default 4).
	Readers int
	// Migrate chooses what Open migrates. One process serves a SQLite
	// database, so nothing older runs beside it: by default every pending
	// migration, contract ones included.
	Migrate sqldb.Plan
}

// Migrations are the migrations this version ships.
func Migrations() fs.FS {
	sub, _ := fs.Sub(migrations, "migrations")
	return sub
}

// driverName is mattn's driver with gantry's per-connection settings: reads
// go through a memory map (no pread syscall per page) and each connection
// keeps a larger page cache.
const driverName = "sqlite3-gantry"

func init() {
	sql.Register(driverName, &sqlite3.SQLiteDriver{ConnectHook: func(c *sqlite3.SQLiteConn) error {
		_, err := c.Exec("PRAGMA mmap_size = 4294967296; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY; PRAGMA wal_autocheckpoint = 0", nil)
		return err
	}})
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(ctx context.Context, path string, opt Options) (*sqldb.DB, error) {
	if opt.Readers <= 0 {
		opt.Readers = 4
	}
	// _stmt_cache_size keeps the driver's own prepared statements per
	// connection, which database/sql cannot do for statements run inside
	// transactions: every write transaction compiled its SQL again.
	base := "file:" + url.PathEscape(path) + "?_journal_mode=WAL&_foreign_keys=on&_busy_timeout=10000&_synchronous=NORMAL&_mutex=no&_stmt_cache_size=256"
	// The writer never checkpoints inside a commit (that fsyncs while every
	// other writer waits); a background checkpointer does it instead.
	write, err := sql.Open(driverName, base+"&_txlock=immediate")
	if err != nil {
		return nil, err
	}
	write.SetMaxOpenConns(1)
	write.SetMaxIdleConns(1)
	write.SetConnMaxLifetime(0)
	write.SetConnMaxIdleTime(0)
	plan := opt.Migrate
	if plan == sqldb.ApplyExpand {
		plan = sqldb.ApplyAll
	}
	rep, err := sqldb.Migrate(ctx, write, "sqlite", Migrations(), plan)
	if err != nil {
		write.Close()
		return nil, fmt.Errorf("sqlite migrate: %w", err)
	}
	read, err := sql.Open(driverName, base+"&_query_only=true")
	if err != nil {
		write.Close()
		return nil, err
	}
	read.SetMaxOpenConns(opt.Readers)
	read.SetMaxIdleConns(opt.Readers)
	read.SetConnMaxLifetime(0)
	read.SetConnMaxIdleTime(0)
	ckpt, err := sql.Open(driverName, base)
	if err != nil {
		write.Close()
		read.Close()
		return nil, err
	}
	ckpt.SetMaxOpenConns(1)
	d := sqldb.Dialect{Name: "sqlite", IsUniqueViolation: isUniqueViolation}
	db := sqldb.New(d, read, write, true)
	db.SetMigrationReport(rep)
	db.OnClose(startCheckpointer(ckpt))
	return db, nil
}

// Migrate applies the migrations plan selects to the database at path.
func Migrate(ctx context.Context, path string, plan sqldb.Plan) (sqldb.MigrationReport, error) {
	db, err := sql.Open(driverName, "file:"+url.PathEscape(path)+"?_busy_timeout=10000&_foreign_keys=on&_txlock=immediate")
	if err != nil {
		return sqldb.MigrationReport{}, err
	}
	defer db.Close()
	return sqldb.Migrate(ctx, db, "sqlite", Migrations(), plan)
}

// MigrationStatus lists the migrations of the database at path, which
// must exist.
func MigrationStatus(ctx context.Context, path string) ([]sqldb.MigrationState, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("no database: %w", err)
	}
	db, err := sql.Open(driverName, "file:"+url.PathEscape(path)+"?_busy_timeout=10000")
	if err != nil {
		return nil, err
	}
	defer db.Close()
	return sqldb.MigrationStatus(ctx, db, Migrations())
}

// checkpointEvery is how often the WAL is folded back into the database.
const checkpointEvery = 500 * time.Millisecond

// startCheckpointer runs PASSIVE checkpoints on their own connection, so
// writers are never held up by a checkpoint's fsync. It returns its stop.
func startCheckpointer(conn *sql.DB) func() error {
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(checkpointEvery)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				_, _ = conn.Exec("PRAGMA wal_checkpoint(PASSIVE)")
			}
		}
	}()
	return func() error {
		close(stop)
		<-done
		_, _ = conn.Exec("PRAGMA wal_checkpoint(TRUNCATE)")
		return conn.Close()
	}
}

func isUniqueViolation(err error) bool {
	var se sqlite3.Error
	if errors.As(err, &se) {
		return se.ExtendedCode == sqlite3.ErrConstraintUnique || se.ExtendedCode == sqlite3.ErrConstraintPrimaryKey
	}
	return false
}
