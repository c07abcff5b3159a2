package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"gantry/internal/app"
	"gantry/internal/config"
)

// gantry migrate: schema changes in two phases, so nodes keep serving
// through an upgrade. Expand migrations (the default) only add; contract
// migrations (--contract) remove what older versions use, once every node
// runs the new version. --status lists them.
func runMigrate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	var contract, status bool
	cfg, _, err := config.LoadWith("gantry migrate", args, getenv, func(fs *flag.FlagSet) {
		fs.BoolVar(&contract, "contract", false, "also apply contract migrations (drops, renames): only once every node runs this version")
		fs.BoolVar(&status, "status", false, "list the migrations and whether each is applied; change nothing")
	})
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if status {
		states, err := app.MigrationStatus(ctx, cfg)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "VERSION\tKIND\tSTATE")
		for _, s := range states {
			kind, state := string(s.Kind), "pending"
			if kind == "" {
				kind = "unknown (newer version)"
			}
			if s.Applied {
				state = "applied " + s.AppliedAt.Format("2006-01-02 15:04:05Z")
			}
			fmt.Fprintf(w, "%s\t%s\t%s\n", s.Version, kind, state)
		}
		return w.Flush()
	}
	rep, err := app.Migrate(ctx, cfg, contract)
	if err != nil {
		return err
	}
	if len(rep.Applied) == 0 {
		fmt.Fprintln(stdout, "no migrations to apply")
	} else {
		fmt.Fprintf(stdout, "applied %s\n", strings.Join(rep.Applied, ", "))
	}
	if len(rep.PendingContract) > 0 {
		fmt.Fprintf(stdout, "contract migrations pending (gantry migrate --contract once every node runs this version): %s\n", strings.Join(rep.PendingContract, ", "))
	}
	return nil
}
