// Package testenv gives tests real stores: SQLite in a temporary directory
// always, and PostgreSQL in a fresh schema when GANTRY_TEST_DATABASE_URL is
// set. With GANTRY_TEST_REQUIRE_POSTGRES=1 (the test script sets it) a
// missing PostgreSQL is a failure, so nothing is skipped silently.
package testenv

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"testing"

	_ "github.com/jackc/pgx/v5/stdlib"

	"gantry/internal/store"
	"gantry/internal/store/postgres"
	"gantry/internal/store/sqlite"
)

// Backend opens a fresh, migrated, empty store for one test.
type Backend struct {
	Name string
	Open func(t testing.TB) store.Store
}

// Backends lists the stores every storage-touching test must run on.
func Backends(t testing.TB) []Backend {
	out := []Backend{{Name: "sqlite", Open: OpenSQLite}}
	if PostgresURL() != "" {
		out = append(out, Backend{Name: "postgres", Open: OpenPostgres})
	} else if os.Getenv("GANTRY_TEST_REQUIRE_POSTGRES") == "1" {
		t.Fatal("GANTRY_TEST_REQUIRE_POSTGRES=1 but GANTRY_TEST_DATABASE_URL is unset")
	} else {
		t.Log("NOTE: PostgreSQL half not run: GANTRY_TEST_DATABASE_URL is unset (scripts/test sets it)")
	}
	return out
}

// PostgresOnly skips a test that needs PostgreSQL when none is configured,
// or fails it under GANTRY_TEST_REQUIRE_POSTGRES=1.
func PostgresOnly(t testing.TB, why string) {
	t.Helper()
	if PostgresURL() != "" {
		return
	}
	if os.Getenv("GANTRY_TEST_REQUIRE_POSTGRES") == "1" {
		t.Fatal("GANTRY_TEST_REQUIRE_POSTGRES=1 but GANTRY_TEST_DATABASE_URL is unset")
	}
	t.Skip(why + ": GANTRY_TEST_DATABASE_URL is unset")
}

// PostgresURL is the test cluster's URL, or "".
func PostgresURL() string { return os.Getenv("GANTRY_TEST_DATABASE_URL") }

// OpenSQLite opens a new database file under t.TempDir().
func OpenSQLite(t testing.TB) store.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "gantry.db"), sqlite.Options{})
	if err != nil {
		t.Fatalf("open sqlite: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// OpenPostgres creates a schema of its own and opens the store on it.
func OpenPostgres(t testing.TB) store.Store {
	t.Helper()
	u, _ := NewPostgresSchema(t)
	st, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 8})
	if err != nil {
		t.Fatalf("open postgres: %v", err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// NewPostgresSchema creates an empty schema, dropped when the test ends,
// and returns a URL whose connections use it.
func NewPostgresSchema(t testing.TB) (string, string) {
	t.Helper()
	base := PostgresURL()
	if base == "" {
		t.Fatal("GANTRY_TEST_DATABASE_URL is unset")
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "t_" + hex.EncodeToString(b[:])
	admin, err := sql.Open("pgx", base)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := admin.Exec(`CREATE SCHEMA ` + schema); err != nil {
		admin.Close()
		t.Fatalf("create schema: %v", err)
	}
	t.Cleanup(func() {
		_, _ = admin.Exec(`DROP SCHEMA ` + schema + ` CASCADE`)
		admin.Close()
	})
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	return u.String(), schema
}

// Reopenable is a backend whose Open, called again in the same test, opens
// the same database afresh: a restarted process finding its data.
func Reopenable(t testing.TB, b Backend) Backend {
	t.Helper()
	switch b.Name {
	case "sqlite":
		path := filepath.Join(t.TempDir(), "gantry.db")
		return Backend{Name: b.Name, Open: func(t testing.TB) store.Store {
			st, err := sqlite.Open(context.Background(), path, sqlite.Options{})
			if err != nil {
				t.Fatalf("open sqlite: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}}
	case "postgres":
		u, _ := NewPostgresSchema(t)
		return Backend{Name: b.Name, Open: func(t testing.TB) store.Store {
			st, err := postgres.Open(context.Background(), u, postgres.Options{MaxConns: 8})
			if err != nil {
				t.Fatalf("open postgres: %v", err)
			}
			t.Cleanup(func() { st.Close() })
			return st
		}}
	}
	t.Fatalf("backend %q cannot be reopened", b.Name)
	return Backend{}
}
