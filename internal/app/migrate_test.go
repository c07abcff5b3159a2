package app_test

import (
	"context"
	"io/fs"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"gantry/internal/app"
	"gantry/internal/config"
	"gantry/internal/store/postgres"
	"gantry/internal/store/sqldb"
	"gantry/internal/testenv"
)

// nextVersionMigrations are this version's migrations plus what a next
// version might ship: an expand migration (a table, a column with a
// default on a hot table, an index built concurrently) and a contract one.
func nextVersionMigrations(t *testing.T) (fs.FS, string, string) {
	t.Helper()
	next := fstest.MapFS{}
	err := fs.WalkDir(postgres.Migrations(), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		body, err := fs.ReadFile(postgres.Migrations(), path)
		next[path] = &fstest.MapFile{Data: body}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	const expand, index, contract = "9001_next_expand", "9002_next_index", "9003_next_contract"
	next[expand+".sql"] = &fstest.MapFile{Data: []byte(`CREATE TABLE next_notes (id BIGINT PRIMARY KEY, job_id BIGINT NOT NULL, note TEXT NOT NULL, old_note TEXT);
ALTER TABLE jobs ADD COLUMN next_flag BOOLEAN NOT NULL DEFAULT FALSE;`)}
	next[index+".sql"] = &fstest.MapFile{Data: []byte("-- gantry:no-transaction\nCREATE INDEX CONCURRENTLY IF NOT EXISTS next_notes_job ON next_notes (job_id);")}
	next[contract+".sql"] = &fstest.MapFile{Data: []byte("-- The next version no longer reads old_note.\n-- gantry:contract\nALTER TABLE next_notes DROP COLUMN old_note;")}
	return next, expand, contract
}

// A rolling upgrade on PostgreSQL: a node of this version keeps serving
// (API, pipelines, runners) after the next version's expand migrations
// run under it, and a node of this version starts on the expanded schema;
// a next-version node told not to migrate refuses the older schema; the
// contract migration waits for --contract.
func TestOldNodeServesAfterNewerExpand(t *testing.T) {
	testenv.PostgresOnly(t, "rolling upgrades are for nodes sharing PostgreSQL")
	ctx := context.Background()
	u, _ := testenv.NewPostgresSchema(t)
	configure := func(c *config.Config) { c.DatabaseURL = u }
	open := func(opt postgres.Options) (*sqldb.DB, error) {
		opt.MaxConns = 4
		st, err := postgres.Open(ctx, u, opt)
		if err == nil {
			t.Cleanup(func() { st.Close() })
		}
		return st, err
	}
	st, err := open(postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	old, stop := launchNode(t, st, t.TempDir(), app.Options{}, configure)
	t.Cleanup(stop)
	runnerToken := old.newRunner()
	before := old.setupProject("before", "job:\n  script: [make]\n")

	next, expand, contract := nextVersionMigrations(t)
	// A next-version node that may not migrate refuses this schema.
	if _, err := open(postgres.Options{Migrations: next, Migrate: sqldb.ApplyNone}); err == nil || !strings.Contains(err.Error(), expand) {
		t.Fatalf("a node needing %s started without it: %v", expand, err)
	}
	// The next version expands the schema under the running node.
	rep, err := postgres.Migrate(ctx, u, sqldb.ApplyExpand, postgres.Options{Migrations: next})
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Applied) != 2 || rep.Applied[0] != expand || !slices.Equal(rep.PendingContract, []string{contract}) {
		t.Fatalf("expand applied %v, pending %v", rep.Applied, rep.PendingContract)
	}

	// The old node serves on: a pipeline created before and one after the
	// expand both reach a runner and finish.
	after := old.setupProject("after", "job:\n  script: [make]\n")
	for _, pid := range []int64{before, after} {
		jobID, jobToken := takeJob(t, old, runnerToken)
		old.finishJob(jobID, jobToken, "success")
		if got := old.jobs(pid, old.pipelines(pid)[0].ID)["job"]; got.ID == 0 {
			t.Fatalf("project %d: job not listed", pid)
		}
	}

	// A node of this version starts on the newer schema, as one
	// restarting mid-upgrade would, with and without migrating.
	for _, plan := range []sqldb.Plan{sqldb.ApplyExpand, sqldb.ApplyNone} {
		again, err := open(postgres.Options{Migrate: plan})
		if err != nil {
			t.Fatalf("plan %d: this version refused the expanded schema: %v", plan, err)
		}
		if r := again.MigrationReport(); len(r.Applied) != 0 || !slices.Contains(r.Unknown, expand) {
			t.Fatalf("plan %d: report %+v", plan, r)
		}
	}
	st2, err := open(postgres.Options{Migrate: sqldb.ApplyNone})
	if err != nil {
		t.Fatal(err)
	}
	second, stop2 := launchNode(t, st2, t.TempDir(), app.Options{}, configure)
	t.Cleanup(stop2)
	var user struct{ Username string }
	if code := second.api("GET", "/user", nil, &user); code != 200 || user.Username != "root" {
		t.Fatalf("second node: %d %+v", code, user)
	}

	// Once every node runs the next version, the contract runs.
	rep, err = postgres.Migrate(ctx, u, sqldb.ApplyAll, postgres.Options{Migrations: next})
	if err != nil || !slices.Equal(rep.Applied, []string{contract}) {
		t.Fatalf("contract: %v %v", rep.Applied, err)
	}
	states, err := postgres.MigrationStatus(ctx, u, postgres.Options{Migrations: next})
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range states {
		if !s.Applied {
			t.Fatalf("%s not applied after --contract", s.Version)
		}
		if s.Version == contract && s.Kind != sqldb.Contract {
			t.Fatalf("%s listed as %q", s.Version, s.Kind)
		}
	}
}

// takeJob asks for a job as the runner until one is handed out.
func takeJob(t *testing.T, n *node, runnerToken string) (int64, string) {
	t.Helper()
	var jobID int64
	var jobToken string
	waitFor(t, "a job for the runner", func() bool {
		code, _, p := n.requestJob(runnerToken, "")
		if code == 201 {
			jobID, jobToken = int64(p["id"].(float64)), p["token"].(string)
		}
		return code == 201
	})
	return jobID, jobToken
}
