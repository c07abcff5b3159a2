package sqldb

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"sort"
	"strings"
	"time"
)

// MigrationKind says when a migration may run while other nodes serve.
type MigrationKind string

const (
	// Expand migrations only add (tables, columns with defaults, indexes):
	// nodes of the previous version keep working on the schema after them.
	Expand MigrationKind = "expand"
	// Contract migrations remove or rename what an older version may still
	// use; they run only once every node runs the version that ships them.
	Contract MigrationKind = "contract"
)

// Directives a migration file may carry in its leading comment lines.
const (
	contractDirective = "-- gantry:contract"
	// noTxDirective runs the file outside a transaction (PostgreSQL's
	// CREATE INDEX CONCURRENTLY needs that). Such a file holds one
	// statement, safe to repeat (IF NOT EXISTS), since a failure part-way
	// leaves it unrecorded.
	noTxDirective = "-- gantry:no-transaction"
)

// Migration is one embedded SQL file, NNNN_name.sql.
type Migration struct {
	Version string // the file name without .sql
	Kind    MigrationKind
	NoTx    bool
	Body    string
}

// ReadMigrations reads the migrations in files, in version order. A file
// is an expand migration unless its leading comments hold
// "-- gantry:contract".
func ReadMigrations(files fs.FS) ([]Migration, error) {
	names, err := fs.Glob(files, "*.sql")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, name := range names {
		body, err := fs.ReadFile(files, name)
		if err != nil {
			return nil, err
		}
		m := Migration{Version: strings.TrimSuffix(name, ".sql"), Kind: Expand, Body: string(body)}
		for line := range strings.Lines(m.Body) {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "--") {
				break
			}
			switch line {
			case contractDirective:
				m.Kind = Contract
			case noTxDirective:
				m.NoTx = true
			}
		}
		out = append(out, m)
	}
	return out, nil
}

// Plan chooses which pending migrations Migrate applies.
type Plan int

const (
	// ApplyExpand applies pending expand migrations, and every pending
	// migration on an empty database (no older node can be using it).
	ApplyExpand Plan = iota
	// ApplyAll applies expand and contract migrations.
	ApplyAll
	// ApplyNone applies nothing and fails if an expand migration is
	// pending: the schema lacks something this version needs.
	ApplyNone
)

// MigrationReport is what Migrate found and did.
type MigrationReport struct {
	Applied []string
	// PendingContract are contract migrations left for `gantry migrate
	// --contract`.
	PendingContract []string
	// Unknown are versions recorded in the database that this binary does
	// not ship: a newer node expanded the schema, which this one tolerates.
	Unknown []string
}

// MigrationState is one migration as `gantry migrate --status` lists it.
type MigrationState struct {
	Version   string
	Kind      MigrationKind // "" for a version this binary does not ship
	Applied   bool
	AppliedAt time.Time
}

// migrationLockID is the PostgreSQL advisory lock every migrator holds, so
// nodes starting at once apply each migration once.
const migrationLockID = 7301001

// Migrate applies the migrations plan selects, each in its own transaction
// (unless marked no-transaction), holding the migration lock throughout
// on PostgreSQL.
func Migrate(ctx context.Context, db *sql.DB, dialect string, files fs.FS, plan Plan) (MigrationReport, error) {
	var rep MigrationReport
	all, err := ReadMigrations(files)
	if err != nil {
		return rep, err
	}
	conn, unlock, err := lockMigrations(ctx, db, dialect)
	if err != nil {
		return rep, err
	}
	defer unlock()
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return rep, err
	}
	fresh := len(applied) == 0
	known := map[string]bool{}
	var missing []string
	for _, m := range all {
		known[m.Version] = true
		if _, ok := applied[m.Version]; ok {
			continue
		}
		switch {
		case plan == ApplyNone && m.Kind == Expand:
			missing = append(missing, m.Version)
			continue
		case m.Kind == Contract && (plan == ApplyNone || plan == ApplyExpand && !fresh):
			rep.PendingContract = append(rep.PendingContract, m.Version)
			continue
		}
		if err := applyMigration(ctx, conn, dialect, m); err != nil {
			return rep, fmt.Errorf("migration %s: %w", m.Version, err)
		}
		rep.Applied = append(rep.Applied, m.Version)
	}
	for v := range applied {
		if !known[v] {
			rep.Unknown = append(rep.Unknown, v)
		}
	}
	sort.Strings(rep.Unknown)
	if len(missing) > 0 {
		return rep, fmt.Errorf("the database schema lacks migrations %s that this version needs: run `gantry migrate` (or start a node without -migrate=false)", strings.Join(missing, ", "))
	}
	return rep, nil
}

// MigrationStatus lists every migration this binary ships and every one
// the database records, in version order.
func MigrationStatus(ctx context.Context, db *sql.DB, files fs.FS) ([]MigrationState, error) {
	all, err := ReadMigrations(files)
	if err != nil {
		return nil, err
	}
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	applied, err := appliedMigrations(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []MigrationState
	for _, m := range all {
		at, ok := applied[m.Version]
		out = append(out, MigrationState{Version: m.Version, Kind: m.Kind, Applied: ok, AppliedAt: at})
		delete(applied, m.Version)
	}
	for v, at := range applied {
		out = append(out, MigrationState{Version: v, Applied: true, AppliedAt: at})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	return out, nil
}

// lockMigrations takes one connection and, on PostgreSQL, the migration
// lock on it; unlock releases both.
func lockMigrations(ctx context.Context, db *sql.DB, dialect string) (*sql.Conn, func(), error) {
	conn, err := db.Conn(ctx)
	if err != nil {
		return nil, nil, err
	}
	if dialect != "postgres" {
		return conn, func() { conn.Close() }, nil
	}
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, migrationLockID); err != nil {
		conn.Close()
		return nil, nil, fmt.Errorf("migration lock: %w", err)
	}
	return conn, func() {
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, migrationLockID)
		conn.Close()
	}, nil
}

// appliedMigrations reads the recorded versions, creating the record
// table on a new database.
func appliedMigrations(ctx context.Context, conn *sql.Conn) (map[string]time.Time, error) {
	if _, err := conn.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
		return nil, fmt.Errorf("create schema_migrations: %w", err)
	}
	rows, err := conn.QueryContext(ctx, `SELECT version, applied_at FROM schema_migrations`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]time.Time{}
	for rows.Next() {
		var v string
		var at int64
		if err := rows.Scan(&v, &at); err != nil {
			return nil, err
		}
		out[v] = fromMicros(at)
	}
	return out, rows.Err()
}

func applyMigration(ctx context.Context, conn *sql.Conn, dialect string, m Migration) error {
	record := `INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)`
	if dialect == "postgres" {
		record = `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`
	}
	if m.NoTx && dialect == "postgres" {
		if _, err := conn.ExecContext(ctx, m.Body); err != nil {
			return err
		}
		_, err := conn.ExecContext(ctx, record, m.Version, time.Now().UnixMicro())
		return err
	}
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	if _, err := tx.ExecContext(ctx, m.Body); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, record, m.Version, time.Now().UnixMicro()); err != nil {
		return err
	}
	return tx.Commit()
}
