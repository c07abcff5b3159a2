// Package sqldb is the SQL core shared by the SQLite and PostgreSQL
// adapters. Queries are written once with `?` placeholders and rebound for
// PostgreSQL; the adapters supply connections, migrations and the few
// statements whose dialects differ.
package sqldb

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gantry/internal/ci"
)

// Dialect tells the core how an adapter's SQL differs.
type Dialect struct {
	Name string // "sqlite" or "postgres"
	// IsUniqueViolation reports whether err is a unique-constraint failure,
	// judged by the driver's error code.
	IsUniqueViolation func(err error) bool
}

// DB implements store.Store on database/sql.
type DB struct {
	dialect Dialect
	read    *sql.DB
	write   *sql.DB
	// writeMu serialises writers on SQLite (one writer); nil on PostgreSQL.
	writeMu *sync.Mutex
	// group shares commits among concurrent SQLite write transactions.
	group groupCommit

	qcache    sync.Map // query text → rebound text
	stmtCount atomic.Int64
	writes    atomic.Int64 // write transactions and statements, for benchmarks
	onClose   []func() error
	migrated  MigrationReport
	stmts     sync.Map // query text → *sql.Stmt on the read pool
}

// query runs a read through a statement prepared once per query text;
// database/sql keeps it prepared on each connection.
func (db *DB) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = db.readContext(ctx)
	st, err := db.readStmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
}

// queryRow is query for one row.
func (db *DB) queryRow(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = db.readContext(ctx)
	st, err := db.readStmt(ctx, query)
	if err != nil {
		return db.read.QueryRowContext(ctx, db.q(query), args...)
	}
	return st.QueryRowContext(ctx, args...)
}

// readContext drops cancellation from SQLite reads: the cgo driver watches
// a cancellable context with extra work on every step, and gantry's reads
// are short, index-bounded queries that finish on their own.
func (db *DB) readContext(ctx context.Context) context.Context {
	if db.dialect.Name == "sqlite" {
		return context.WithoutCancel(ctx)
	}
	return ctx
}

// maxCachedStmts bounds the statement cache; queries with variable IN lists
// past it run unprepared.
const maxCachedStmts = 512

func (db *DB) readStmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if v, ok := db.stmts.Load(query); ok {
		return v.(*sql.Stmt), nil
	}
	st, err := db.read.PrepareContext(ctx, db.q(query))
	if err != nil {
		return nil, err
	}
	if n := db.stmtCount.Add(1); n > maxCachedStmts {
		db.stmtCount.Add(-1)
		return st, nil // caller's statement; closed with the pool
	}
	if prev, loaded := db.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		db.stmtCount.Add(-1)
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// New wraps already-open pools. On SQLite, write is a pool of one.
func New(d Dialect, read, write *sql.DB, serializeWrites bool) *DB {
	db := &DB{dialect: d, read: read, write: write}
	if serializeWrites {
		db.writeMu = &sync.Mutex{}
	}
	return db
}

func (db *DB) Dialect() string { return db.dialect.Name }

func (db *DB) Ping(ctx context.Context) error {
	var one int
	return db.read.QueryRowContext(ctx, "SELECT 1").Scan(&one)
}

// SetMigrationReport keeps what the adapter's migration at open found.
func (db *DB) SetMigrationReport(r MigrationReport) { db.migrated = r }

// MigrationReport is what the migration at open found and did.
func (db *DB) MigrationReport() MigrationReport { return db.migrated }

// OnClose registers cleanup (adapter workers) to run before the pools close.
func (db *DB) OnClose(fn func() error) { db.onClose = append(db.onClose, fn) }

func (db *DB) Close() error {
	for _, fn := range db.onClose {
		_ = fn()
	}
	db.onClose = nil
	err := db.read.Close()
	if db.write != db.read {
		if werr := db.write.Close(); err == nil {
			err = werr
		}
	}
	return err
}

// PoolStats reports the read pool (on PostgreSQL the only pool): how many
// connections are open and in use.
func (db *DB) PoolStats() sql.DBStats { return db.read.Stats() }

// WritePool exposes the writer pool to adapter-specific code (bulk loads).
func (db *DB) WritePool() *sql.DB { return db.write }

// q rebinds `?` placeholders to `$n` for PostgreSQL, caching the result.
func (db *DB) q(query string) string {
	if db.dialect.Name != "postgres" {
		return query
	}
	if v, ok := db.qcache.Load(query); ok {
		return v.(string)
	}
	var b strings.Builder
	n := 0
	inStr := false
	for i := 0; i < len(query); i++ {
		c := query[i]
		if c == '\'' {
			inStr = !inStr
		}
		if c == '?' && !inStr {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteByte(c)
	}
	out := b.String()
	db.qcache.Store(query, out)
	return out
}

type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// Writes counts write transactions and statements since the store opened.
func (db *DB) Writes() int64 { return db.writes.Load() }

// tx runs fn in a write transaction.
func (db *DB) tx(ctx context.Context, fn func(tx *sql.Tx) error) error {
	db.writes.Add(1)
	if db.writeMu != nil {
		return db.group.run(fn, db.runGroup)
	}
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}

// exec runs one write statement outside an explicit transaction.
func (db *DB) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	db.writes.Add(1)
	if db.writeMu != nil {
		var res sql.Result
		err := db.group.run(func(tx *sql.Tx) error {
			var err error
			res, err = tx.ExecContext(ctx, query, args...)
			return err
		}, db.runGroup)
		return res, err
	}
	return db.write.ExecContext(ctx, db.q(query), args...)
}

// insertID runs an INSERT … RETURNING id.
func (db *DB) insertID(ctx context.Context, q querier, query string, args ...any) (int64, error) {
	var id int64
	err := q.QueryRowContext(ctx, db.q(query+" RETURNING id"), args...).Scan(&id)
	if err != nil {
		return 0, db.translate(err)
	}
	return id, nil
}

// translate maps driver errors to domain kinds.
func (db *DB) translate(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ci.ErrNotFound
	}
	if db.dialect.IsUniqueViolation != nil && db.dialect.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %v", ci.ErrConflict, err)
	}
	return err
}

// Time helpers: columns hold UTC microseconds.

func tm(t time.Time) int64 { return t.UTC().UnixMicro() }

func tmp(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UTC().UnixMicro()
}

func fromMicros(v int64) time.Time { return time.UnixMicro(v).UTC() }

func fromNull(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

func nullID(v sql.NullInt64) *int64 {
	if !v.Valid {
		return nil
	}
	x := v.Int64
	return &x
}

func idArg(p *int64) any {
	if p == nil {
		return nil
	}
	return *p
}

// placeholders returns "?, ?, ?" for n values.
func placeholders(n int) string {
	if n <= 0 {
		return ""
	}
	return strings.Repeat("?, ", n-1) + "?"
}

func int64Args(ids []int64) []any {
	out := make([]any, len(ids))
	for i, id := range ids {
		out[i] = id
	}
	return out
}

// uniqueIDs drops duplicates, keeping order.
func uniqueIDs(ids []int64) []int64 {
	seen := make(map[int64]struct{}, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if _, ok := seen[id]; ok {
			continue
		}
		seen[id] = struct{}{}
		out = append(out, id)
	}
	return out
}

type scanner interface{ Scan(...any) error }

// collect runs a read and scans every row with scan.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error)) ([]T, error) {
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// collectIDs runs a read of one integer column.
func collectIDs(rows *sql.Rows, err error) ([]int64, error) {
	return collect(rows, err, func(s scanner) (int64, error) {
		var id int64
		return id, s.Scan(&id)
	})
}

// jobs runs a read of jobCols rows, reusing one set of scan buffers.
func (db *DB) jobs(ctx context.Context, query string, args ...any) ([]*ci.Job, error) {
	r := newRawRow(jobColCount)
	rows, err := db.query(ctx, query, args...)
	return collect(rows, err, func(s scanner) (*ci.Job, error) {
		if err := s.Scan(r.ptrs...); err != nil {
			return nil, err
		}
		return jobFromRow(r)
	})
}
