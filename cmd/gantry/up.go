package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"gantry/internal/app"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/runner"
	"gantry/internal/store"
)

// gantry up: a server on the embedded store plus one built-in runner, in
// one process: the quick start.
func runUp(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg, _, err := config.Load("gantry up", args, getenv)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
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
	if token == "" {
		token = cfg.InitialRootToken
	}
	runnerToken, err := builtinRunner(ctx, a)
	if err != nil {
		return err
	}
	l, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: a.Handler(), ReadHeaderTimeout: 10 * time.Second}
	a.Start(ctx)
	rctx, stopRunner := context.WithCancel(ctx)
	defer stopRunner()
	r, err := runner.New(runner.Config{URL: cfg.ExternalURL, Token: runnerToken, Concurrent: 2, BuildsDir: filepath.Join(cfg.DataDir, "builds"), Logger: log})
	if err != nil {
		return err
	}
	done := make(chan error, 1)
	go func() { done <- r.Run(rctx) }()
	fmt.Fprintf(stdout, "gantry is up at %s (store: %s) with a built-in runner\n", cfg.ExternalURL, a.Store.Dialect())
	if token != "" {
		fmt.Fprintf(stdout, "root's personal access token: %s\n", token)
	} else {
		fmt.Fprintln(stdout, "root's token was printed on the first start")
	}
	err = a.Serve(ctx, srv, func() error { return srv.Serve(l) })
	stopRunner()
	if rerr := <-done; err == nil {
		err = rerr
	}
	return err
}

// builtinRunner creates (each start) an instance runner for the built-in
// runner and returns its token; older built-in runners are removed.
func builtinRunner(ctx context.Context, a *app.App) (string, error) {
	list, err := a.Store.ListRunners(ctx, store.RunnerFilter{Type: ci.InstanceRunner, Limit: 10000})
	if err != nil {
		return "", err
	}
	for _, r := range list {
		if r.Description == builtinRunnerName {
			_ = a.Store.DeleteRunner(ctx, r.ID)
		}
	}
	secret := ci.NewSecret(ci.RunnerTokenPrefix)
	_, err = a.Store.InsertRunner(ctx, ci.Runner{Type: ci.InstanceRunner, Description: builtinRunnerName, RunUntagged: true, CreatedAt: time.Now()}, ci.HashToken(secret))
	return secret, err
}

const builtinRunnerName = "gantry built-in runner"
