package config

import (
	"path/filepath"
	"testing"
)

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
