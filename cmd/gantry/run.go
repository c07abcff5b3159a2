package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime/debug"
	"time"

	"gantry/internal/app"
	"gantry/internal/config"
)

const usage = `gantry: a GitLab-compatible CI job coordinator

usage: gantry <command> [flags]

commands:
  up       a server and a built-in runner in one process (quick start)
  server   serve the API (GitLab REST API v4) and the runner protocol
  runner   gantry's own runner: --url URL --token glrt-…
  migrate  apply schema migrations: expand (default), --contract, --status
  bench    run a shipped benchmark (gantry bench -h)
  version  print the version
`

// run is the whole program; main only calls it.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) < 2 {
		fmt.Fprint(stderr, usage)
		return errors.New("missing command")
	}
	switch args[1] {
	case "server", "runner", "up", "bench":
		tuneGC(getenv)
	}
	switch args[1] {
	case "server":
		return runServer(ctx, args[2:], getenv, stdout, stderr)
	case "runner":
		return runRunner(ctx, args[2:], getenv, stdout, stderr)
	case "up":
		return runUp(ctx, args[2:], getenv, stdout, stderr)
	case "migrate":
		return runMigrate(ctx, args[2:], getenv, stdout, stderr)
	case "bench":
		return runBench(ctx, args[2:], getenv, stdout, stderr)
	case "version":
		fmt.Fprintf(stdout, "gantry (GitLab API %s)\n", app.Version)
		return nil
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	fmt.Fprint(stderr, usage)
	return fmt.Errorf("unknown command %q", args[1])
}

// defaultGCPercent lets the heap grow to four times what is live before a
// collection. gantry's live heap is small and its garbage is per request,
// so at Go's default (100) collections took a large share of the CPU under
// load: gantry bench runners ran 20–30 % more no-op jobs/s at 300, and the
// jobs list 15 % more requests/s. GOGC, when set, wins.
const defaultGCPercent = 300

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(defaultGCPercent)
	}
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level))
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l}))
}

func runServer(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, fs, err := config.Load("gantry server", args, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	_ = fs
	log := newLogger(stderr, cfg.LogLevel)
	a, err := app.New(ctx, cfg, app.Options{Logger: log})
	if err != nil {
		return err
	}
	defer a.Close()
	token, err := a.Bootstrap(ctx)
	if err != nil {
		return err
	}
	if token != "" {
		fmt.Fprintf(stdout, "Created user root. Its personal access token (shown once): %s\n", token)
	}
	a.Start(ctx)
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 120 * time.Second}
	blobs := "files under the data dir"
	if cfg.ObjectStoreURL != "" {
		blobs = cfg.ObjectStoreURL
	}
	log.Info("gantry listening", "addr", l.Addr().String(), "external_url", cfg.ExternalURL, "store", a.Store.Dialect(), "blobs", blobs)
	fmt.Fprintf(stdout, "gantry listening on http://%s (store: %s)\n", l.Addr().String(), a.Store.Dialect())
	return a.Serve(ctx, srv, func() error { return srv.Serve(l) })
}
