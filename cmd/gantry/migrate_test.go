package main

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"gantry/internal/testenv"
)

// gantry migrate on each store: --status lists what is pending, a plain
// run applies it, a second run finds nothing; a server told not to
// migrate refuses a schema that lacks migrations.
func TestMigrateCommand(t *testing.T) {
	for _, b := range testenv.Backends(t) {
		t.Run(b.Name, func(t *testing.T) {
			// The database comes from a configuration file.
			setting := "data-dir: " + t.TempDir()
			if b.Name == "postgres" {
				u, _ := testenv.NewPostgresSchema(t)
				setting = "database-url: " + u
			}
			file := filepath.Join(t.TempDir(), "gantry.yml")
			if err := os.WriteFile(file, []byte(setting+"\n"), 0o600); err != nil {
				t.Fatal(err)
			}
			env := map[string]string{"GANTRY_CONFIG": file}
			gantry := func(args ...string) (string, error) {
				var out bytes.Buffer
				err := run(context.Background(), append([]string{"gantry"}, args...), func(k string) string { return env[k] }, &out, io.Discard)
				return out.String(), err
			}
			if b.Name == "postgres" {
				if _, err := gantry("server", "-listen", "127.0.0.1:0", "-migrate=false"); err == nil || !strings.Contains(err.Error(), "gantry migrate") {
					t.Fatalf("server on an empty schema with -migrate=false: %v", err)
				}
				out, err := gantry("migrate", "--status")
				if err != nil || !regexp.MustCompile(`(?m)^0001_init +expand +pending$`).MatchString(out) || strings.Contains(out, "applied") {
					t.Fatalf("status before: %v\n%s", err, out)
				}
			}
			out, err := gantry("migrate")
			if err != nil || !strings.HasPrefix(out, "applied 0001_init, ") {
				t.Fatalf("migrate: %v\n%s", err, out)
			}
			out, err = gantry("migrate")
			if err != nil || out != "no migrations to apply\n" {
				t.Fatalf("second migrate: %v\n%s", err, out)
			}
			out, err = gantry("migrate", "--status")
			if err != nil || strings.Contains(out, "pending") || !regexp.MustCompile(`(?m)^0015_leases +expand +applied `).MatchString(out) {
				t.Fatalf("status after: %v\n%s", err, out)
			}
			if _, err := gantry("migrate", "--contract"); err != nil {
				t.Fatal(err)
			}
		})
	}
}
