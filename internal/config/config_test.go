package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "gantry.yml")
	if err := os.WriteFile(path, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func envOf(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

// Flags beat the environment, which beats the file, which beats the
// defaults; each layer only overrides what it sets.
func TestLoadPrecedence(t *testing.T) {
	path := writeFile(t, `
listen: 127.0.0.1:9000
long-poll: 20s
db-max-conns: 4
external-url: https://ci.example.com
migrate: false
`)
	env := envOf(map[string]string{"GANTRY_CONFIG": path, "GANTRY_DB_MAX_CONNS": "12", "GANTRY_LONG_POLL": "30s"})
	c, _, err := Load("test", []string{"-long-poll", "40s"}, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.ExternalURL != "https://ci.example.com" || c.Migrate {
		t.Fatalf("file values not applied: %+v", c)
	}
	if c.DBMaxConns != 12 {
		t.Fatalf("db-max-conns %d, want the environment's 12", c.DBMaxConns)
	}
	if c.LongPoll != 40*time.Second {
		t.Fatalf("long-poll %v, want the flag's 40s", c.LongPoll)
	}
	if d := Defaults(); c.JobRecheck != d.JobRecheck || c.DataDir != d.DataDir {
		t.Fatalf("unset values moved from the defaults: %+v", c)
	}
	if c.ConfigFile != path {
		t.Fatalf("config file %q", c.ConfigFile)
	}
}

// -config on the command line beats GANTRY_CONFIG, in both flag forms.
func TestLoadConfigFlag(t *testing.T) {
	fromEnv := writeFile(t, "listen: 127.0.0.1:9001\n")
	fromFlag := writeFile(t, "listen: 127.0.0.1:9002\n")
	env := envOf(map[string]string{"GANTRY_CONFIG": fromEnv})
	for _, args := range [][]string{{"-config", fromFlag}, {"--config=" + fromFlag}, {"-log-level", "warn", "-config", fromFlag}} {
		c, _, err := Load("test", args, env)
		if err != nil {
			t.Fatal(err)
		}
		if c.Listen != "127.0.0.1:9002" {
			t.Fatalf("%v: listen %q, want the flag's file", args, c.Listen)
		}
	}
	c, _, err := Load("test", nil, env)
	if err != nil || c.Listen != "127.0.0.1:9001" {
		t.Fatalf("GANTRY_CONFIG alone: %q %v", c.Listen, err)
	}
}

// A file with a key that is no flag, a value of the wrong type or a
// nested value is refused with an error naming the key.
func TestLoadFileErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{"listen: 127.0.0.1:9000\nlong_pol: 20s\n", `unknown key "long_pol"`},
		{"db-max-conns: many\n", `key "db-max-conns"`},
		{"long-poll: 20\n", `key "long-poll"`},
		{"listen:\n  host: 127.0.0.1\n", `key "listen" must have a single value`},
		{"object-store-secret-key: s\n", `unknown key "object-store-secret-key"`},
		{"config: other.yml\n", `unknown key "config"`},
		{"- listen\n", "config file"},
	} {
		path := writeFile(t, tc.body)
		_, _, err := Load("test", []string{"-config", path}, envOf(nil))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: error %v, want it to mention %s", tc.body, err, tc.want)
		}
	}
	if _, _, err := Load("test", []string{"-config", filepath.Join(t.TempDir(), "missing.yml")}, envOf(nil)); err == nil {
		t.Error("a missing config file was accepted")
	}
}

// The repositories directory defaults to one under the data directory and
// is set by GANTRY_REPOSITORIES_DIR, or by -repositories-dir over it.
func TestRepositoriesDir(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"default", nil, nil, filepath.Join("gantry-data", "repositories")},
		{"under the data dir", map[string]string{"GANTRY_DATA_DIR": "/srv/node1"}, nil, "/srv/node1/repositories"},
		{"environment", map[string]string{"GANTRY_DATA_DIR": "/srv/node1", "GANTRY_REPOSITORIES_DIR": "/mnt/shared/repos"}, nil, "/mnt/shared/repos"},
		{"flag over environment", map[string]string{"GANTRY_REPOSITORIES_DIR": "/mnt/shared/repos"}, []string{"-repositories-dir", "/mnt/other"}, "/mnt/other"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cfg, _, err := Load("gantry server", c.args, func(k string) string { return c.env[k] })
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.Repositories(); got != c.want {
				t.Fatalf("repositories dir %q, want %q", got, c.want)
			}
		})
	}
}
