package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"gantry/internal/runner"
)

// gantry runner: gantry's own runner, speaking the gitlab-runner protocol
// with a shell executor.
func runRunner(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("gantry runner", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfg := runner.Config{}
	fs.StringVar(&cfg.URL, "url", getenv("GANTRY_RUNNER_URL"), "server URL (GANTRY_RUNNER_URL)")
	fs.StringVar(&cfg.Token, "token", getenv("GANTRY_RUNNER_TOKEN"), "runner authentication token, glrt-… (GANTRY_RUNNER_TOKEN)")
	fs.IntVar(&cfg.Concurrent, "concurrent", 1, "jobs run at once")
	fs.StringVar(&cfg.BuildsDir, "builds-dir", "./builds", "where jobs check out and run")
	fs.StringVar(&cfg.Name, "name", "gantry-runner", "name reported to the server")
	fs.StringVar(&cfg.Shell, "shell", "bash", "shell for job scripts")
	fs.DurationVar(&cfg.ShutdownTimeout, "shutdown-timeout", 5*time.Minute, "how long running jobs may finish after SIGTERM")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if cfg.URL == "" || cfg.Token == "" {
		return errors.New("runner: --url and --token are required")
	}
	cfg.Logger = newLogger(stderr, *logLevel)
	r, err := runner.New(cfg)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "gantry runner polling %s (concurrent %d)\n", cfg.URL, cfg.Concurrent)
	return r.Run(ctx)
}
