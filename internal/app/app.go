// Package app wires gantry's parts together: storage, the public API,
// health and metrics. cmd/gantry and the end-to-end tests both use it.
package app

import (
	"context"
	"errors"
	"fmt"
	"gantry/internal/agents"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"gantry/internal/blob"
	"gantry/internal/ci"
	"gantry/internal/config"
	"gantry/internal/expiry"
	"gantry/internal/githost"
	"gantry/internal/httpapi"
	"gantry/internal/joblog"
	"gantry/internal/lease"
	"gantry/internal/logsearch"
	"gantry/internal/pgnotify"
	"gantry/internal/pipeline"
	"gantry/internal/runnerapi"
	"gantry/internal/store"
	"gantry/internal/store/cache"
	"gantry/internal/store/postgres"
	"gantry/internal/store/sqldb"
	"gantry/internal/store/sqlite"
	"gantry/internal/web"
	"gantry/internal/webhook"
)

// Version is the GitLab version gantry reports; clients gate features on it.
const Version = "17.9.3"

// Revision identifies gantry's build.
const Revision = "gantry"

// App is one gantry node.
type App struct {
	Config    config.Config
	Store     store.Store
	API       *httpapi.API
	Web       *web.Server
	Repos     *githost.Repos
	Pipelines *pipeline.Service
	Runners   *runnerapi.API
	Blobs     blob.Store
	// Expiry deletes expired artifacts in the background.
	Expiry *expiry.Worker
	// LogArchiver moves ended jobs' logs from chunks into blobs.
	LogArchiver *joblog.Archiver
	// LogHub wakes live log followers.
	LogHub *joblog.Hub
	// LogIndexer builds the log search index of archived logs.
	LogIndexer *logsearch.Indexer
	// EventHub, keyed by project id, wakes event streams.
	EventHub *joblog.Hub
	// Hooks delivers project webhooks.
	Hooks *webhook.Worker
	// Events relays wake-ups between nodes sharing a PostgreSQL
	// database; nil on SQLite, which serves one process.
	Events *pgnotify.Notifier
	relay  *cluster // sends this node's wake-ups to the others
	// Leases let one node of several run each periodic sweep; nil on
	// SQLite, which serves one process.
	Leases *lease.Keeper
	// Watchdog fails jobs whose runner went silent or whose time ran out.
	Watchdog *runnerapi.Watchdog
	log      *slog.Logger
	reg      *prometheus.Registry
	now      func() time.Time
}

// Options are the parts tests may replace.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time
	// Store, if set, is used instead of opening one from the config.
	Store store.Store
}

// OpenStore opens the store the configuration selects. On PostgreSQL it
// applies pending expand migrations first (unless cfg.Migrate is off, when
// it refuses a schema that lacks one); contract migrations wait for
// `gantry migrate --contract`, and migrations a newer version applied are
// tolerated. SQLite applies every pending migration.
func OpenStore(ctx context.Context, cfg config.Config) (*sqldb.DB, error) {
	plan := sqldb.ApplyExpand
	if !cfg.Migrate {
		plan = sqldb.ApplyNone
	}
	if cfg.DatabaseURL != "" {
		return postgres.Open(ctx, cfg.DatabaseURL, postgres.Options{MaxConns: cfg.DBMaxConns, Migrate: plan})
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	// One process serves SQLite: nothing older shares its schema.
	return sqlite.Open(ctx, cfg.SQLitePath(), sqlite.Options{Readers: cfg.SQLiteReaders})
}

// Migrate applies the configured database's pending migrations: expand
// ones, or with contract also the contract ones (`gantry migrate`).
func Migrate(ctx context.Context, cfg config.Config, contract bool) (sqldb.MigrationReport, error) {
	plan := sqldb.ApplyExpand
	if contract {
		plan = sqldb.ApplyAll
	}
	if cfg.DatabaseURL != "" {
		return postgres.Migrate(ctx, cfg.DatabaseURL, plan, postgres.Options{})
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return sqldb.MigrationReport{}, fmt.Errorf("data dir: %w", err)
	}
	return sqlite.Migrate(ctx, cfg.SQLitePath(), plan)
}

// MigrationStatus lists the configured database's migrations.
func MigrationStatus(ctx context.Context, cfg config.Config) ([]sqldb.MigrationState, error) {
	if cfg.DatabaseURL != "" {
		return postgres.MigrationStatus(ctx, cfg.DatabaseURL, postgres.Options{})
	}
	return sqlite.MigrationStatus(ctx, cfg.SQLitePath())
}

// logMigrations says what opening the store did to the schema.
func logMigrations(log *slog.Logger, r sqldb.MigrationReport) {
	if len(r.Applied) > 0 {
		log.Info("schema migrated", "applied", r.Applied)
	}
	if len(r.PendingContract) > 0 {
		log.Info("contract migrations pending: run `gantry migrate --contract` once every node runs this version", "pending", r.PendingContract)
	}
	if len(r.Unknown) > 0 {
		log.Info("the schema is newer than this node (a newer version expanded it); serving on", "unknown", r.Unknown)
	}
}

// OpenBlobs opens the blob store the configuration selects: the object
// store when one is configured, else files under the data directory.
func OpenBlobs(ctx context.Context, cfg config.Config) (blob.Store, error) {
	o := cfg.ObjectStore
	if o == nil {
		return &blob.FS{Root: filepath.Join(cfg.DataDir, "blobs")}, nil
	}
	// An unreachable endpoint is retried by the client; startup should
	// fail with its error rather than hang.
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	st, err := blob.NewS3(ctx, blob.S3Options{Endpoint: o.Endpoint, Bucket: o.Bucket, Prefix: o.Prefix, Region: o.Region,
		AccessKey: o.AccessKey, SecretKey: o.SecretKey, Insecure: o.Insecure, PathStyle: o.PathStyle})
	if err != nil {
		return nil, fmt.Errorf("object store: %w", err)
	}
	return st, nil
}

// New opens storage and builds the API.
func New(ctx context.Context, cfg config.Config, opt Options) (*App, error) {
	if opt.Logger == nil {
		opt.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if opt.Now == nil {
		opt.Now = time.Now
	}
	// git runs in the repositories' directories: paths must not depend on
	// the working directory.
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, fmt.Errorf("data dir: %w", err)
	}
	cfg.DataDir = abs
	if cfg.RepositoriesDir, err = filepath.Abs(cfg.Repositories()); err != nil {
		return nil, fmt.Errorf("repositories dir: %w", err)
	}
	// Before the database, so a bad object store leaves nothing open.
	blobs, err := OpenBlobs(ctx, cfg)
	if err != nil {
		return nil, err
	}
	st := opt.Store
	if st == nil {
		db, err := OpenStore(ctx, cfg)
		if err != nil {
			return nil, err
		}
		logMigrations(opt.Logger, db.MigrationReport())
		st = db
	}
	st = cache.New(st, cfg.ReadCacheTTL, opt.Now)
	// Archived logs of a few KiB (most of them) are rows, not files or objects.
	blobs = &blob.Tiered{Large: blobs, Small: st, Prefix: joblog.BlobKeyPrefix, Max: blob.DefaultSmallMax}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	repos := &githost.Repos{Root: cfg.RepositoriesDir}
	if err := os.MkdirAll(repos.Root, 0o750); err != nil {
		return nil, fmt.Errorf("repositories dir: %w", err)
	}
	if n, err := repos.CleanLeftovers(ctx); err != nil {
		return nil, fmt.Errorf("repositories dir: %w", err)
	} else if n > 0 {
		opt.Logger.Info("removed what an interrupted repository creation or deletion left", "directories", n)
	}
	// Last of the fallible steps, so a failure leaves no listener open.
	var events *pgnotify.Notifier
	recheck := time.Duration(0)
	if st.Dialect() == "postgres" && cfg.DatabaseURL != "" {
		if events, err = pgnotify.Open(ctx, cfg.DatabaseURL, opt.Logger); err != nil {
			if opt.Store == nil {
				st.Close()
			}
			return nil, err
		}
		recheck = cfg.JobRecheck
	}
	pipes := pipeline.New(pipeline.Config{ExternalURL: cfg.ExternalURL}, st, pipeline.GitSource{Repos: repos}, opt.Logger, opt.Now)
	runners := runnerapi.New(runnerapi.Config{ExternalURL: cfg.ExternalURL, RegistrationToken: cfg.RunnerRegistrationToken, Version: Version,
		LongPoll: cfg.LongPoll, Recheck: recheck, MaxArtifactSize: int64(cfg.MaxArtifactSizeMB) << 20}, st, blobs, pipes, opt.Logger, opt.Now)
	logHub := joblog.NewHub()
	archiver := &joblog.Archiver{Store: st, Blobs: blobs, Log: opt.Logger, Now: opt.Now, Interval: cfg.LogArchiveInterval}
	pipes.OnJobsPending = runners.JobsPending
	pipes.OnBuildsPending = runners.BuildsPending
	eventHub := joblog.NewHub()
	hooks := webhook.New(webhook.Config{ExternalURL: cfg.ExternalURL, UserAgent: "GitLab/" + Version, EventRetention: cfg.EventRetention},
		st, opt.Logger, opt.Now)
	pipes.OnProcessed = func(projectID int64) {
		eventHub.Publish(projectID)
		hooks.Wake()
	}
	runners.OnTrace = logHub.Publish
	runners.OnJobFinished = func(jobID int64) {
		logHub.Publish(jobID)
		archiver.Wake()
	}
	var relay *cluster
	if events != nil {
		c := newCluster(events, opt.Logger)
		relay = c
		events.Handle(c.receive(runners, logHub, eventHub, archiver))
		// Wake-ups sent while this node was not listening are lost: its
		// held requests look again as soon as it listens again.
		events.OnResume(runners.RecheckAll)
		pipes.OnJobsPending = func(projectID int64, jobIDs []int64) {
			runners.JobsPending(projectID, jobIDs)
			c.jobsPending(projectID, jobIDs)
		}
		pipes.OnBuildsPending = func(projectID int64, builds []ci.PendingBuild) {
			runners.BuildsPending(projectID, builds)
			ids := make([]int64, len(builds))
			for i, b := range builds {
				ids[i] = b.JobID
			}
			c.jobsPending(projectID, ids)
		}
		runners.OnTrace = func(jobID int64) {
			logHub.Publish(jobID)
			c.logChanged(jobID)
		}
		runners.OnJobFinished = func(jobID int64) {
			logHub.Publish(jobID)
			c.logChanged(jobID)
			archiver.Wake()
			c.jobEnded()
		}
		pipes.OnProcessed = func(projectID int64) {
			eventHub.Publish(projectID)
			c.eventsChanged(projectID)
			hooks.Wake()
		}
	}
	watchdog := newWatchdog(runners, cfg.JobSilentTimeout)
	expiryWorker := expiry.New(st, blobs, opt.Logger, opt.Now, cfg.ArtifactExpiryInterval)
	indexer := &logsearch.Indexer{Store: st, Blobs: blobs, Logs: &joblog.Reader{Store: st, Blobs: blobs}, Log: opt.Logger, Now: opt.Now}
	var leases *lease.Keeper
	if events != nil {
		// Every node runs the same workers; each periodic sweep runs
		// where its lease is held.
		leases = lease.NewKeeper(st, lease.NodeID(), lease.All, 0, opt.Now, opt.Logger)
		watchdog.Gate = leases.Gate(lease.Watchdog)
		expiryWorker.Gate = leases.Gate(lease.ArtifactExpiry)
		archiver.Gate = leases.Gate(lease.LogArchive)
		pipes.SweepGate = leases.Gate(lease.PipelineSweep)
		indexer.Gate = leases.Gate(lease.LogIndex)
	}
	clusterAgents := &agents.Service{Store: st, Files: repos, Log: opt.Logger}
	pipes.OnDefaultBranchMoved = clusterAgents.RefreshProject
	api := httpapi.New(httpapi.Config{
		ExternalURL: cfg.ExternalURL, Version: Version, Revision: Revision, ArchiveBuildsOlderThan: cfg.ArchiveBuildsOlderThan,
		LogFollowPoll: cfg.LogFollowPoll,
	}, httpapi.Deps{Store: st, Logger: opt.Logger, Now: opt.Now, Registry: reg, Repos: repos, Pipelines: pipes,
		Mount: []func(httpapi.Router){func(r httpapi.Router) { runners.Routes(r) }}, OnLogRead: runners.WatchLog, Blobs: blobs, Agents: clusterAgents, LogHub: logHub, EventHub: eventHub})
	ui, err := web.New(web.Config{ExternalURL: cfg.ExternalURL, SessionTTL: cfg.SessionTTL, LogFollowPoll: cfg.LogFollowPoll, Version: Version},
		web.Deps{Store: st, API: api, Blobs: blobs, LogHub: logHub, OnLogRead: runners.WatchLog, Logger: opt.Logger, Now: opt.Now})
	if err != nil {
		if events != nil {
			events.Close()
		}
		if opt.Store == nil {
			st.Close()
		}
		return nil, fmt.Errorf("web UI: %w", err)
	}
	return &App{Config: cfg, Store: st, API: api, Web: ui, Repos: repos, Pipelines: pipes, Runners: runners, Blobs: blobs,
		Expiry: expiryWorker, LogArchiver: archiver, LogHub: logHub, Events: events, relay: relay, Leases: leases,
		EventHub: eventHub, Hooks: hooks,
		LogIndexer: indexer, Watchdog: watchdog, log: opt.Logger, reg: reg, now: opt.Now}, nil
}

// newWatchdog fails jobs silent for longer than silent, looking a few
// times per silent period (at most every 10 s).
func newWatchdog(runners *runnerapi.API, silent time.Duration) *runnerapi.Watchdog {
	wd := runners.NewWatchdog()
	if silent > 0 {
		wd.Silent = silent
		wd.Interval = min(wd.Interval, silent/4)
	}
	return wd
}

// Start runs the background workers; Close stops them.
func (a *App) Start(ctx context.Context) {
	if a.Leases != nil {
		a.Leases.Start(ctx) // first, so the first sweeps know their leases
	}
	a.Pipelines.Start(ctx)
	a.Watchdog.Start(ctx)
	a.Expiry.Start(ctx)
	a.LogArchiver.Start(ctx)
	a.LogIndexer.Start(ctx)
	a.Hooks.Start(ctx)
	if a.Events != nil {
		a.Events.Start()
		a.relay.start()
	}
}

type pusherKey struct{}

// gitHandler serves /<full_path>.git/... through git http-backend; every
// branch or tag a push moves gets a pipeline.
func (a *App) gitHandler() http.Handler {
	auth := &gitAuth{store: a.Store, repos: a.Repos, now: a.now}
	onPush := func(ctx context.Context, projectID int64, updates []githost.RefUpdate) {
		p, err := a.Store.ProjectByID(ctx, projectID)
		if err != nil {
			a.log.Warn("push to unknown project", "project", projectID, "err", err)
			return
		}
		user, _ := ctx.Value(pusherKey{}).(*ci.User)
		var ups []pipeline.RefUpdate
		for _, u := range updates {
			ups = append(ups, pipeline.RefUpdate{Ref: u.Ref, Before: u.Before, After: u.After})
		}
		a.Pipelines.OnPush(ctx, p, user, ups)
	}
	h := a.Repos.Handler(auth, onPush, a.log)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A store failure here is met again, and answered, by the authorisation.
		if user, _, ok, _ := credentials(r.Context(), a.Store, r, a.now()); ok {
			r = r.WithContext(context.WithValue(r.Context(), pusherKey{}, user))
		}
		h.ServeHTTP(w, r)
	})
}

// Bootstrap creates the admin user root on first start. It returns the
// root token when it generated one (to be printed once), else "".
func (a *App) Bootstrap(ctx context.Context) (string, error) {
	n, err := a.Store.CountUsers(ctx)
	if err != nil {
		return "", err
	}
	if n > 0 {
		return "", nil
	}
	now := a.now()
	root, err := a.Store.CreateUser(ctx, store.CreateUserParams{Username: "root", Name: "Administrator", Email: "admin@example.com", Admin: true, Now: now})
	if err != nil {
		return "", fmt.Errorf("create root: %w", err)
	}
	secret, generated := a.Config.InitialRootToken, false
	if secret == "" {
		secret, generated = ci.NewSecret(ci.PersonalTokenPrefix), true
	}
	if _, err := a.Store.CreateToken(ctx, store.CreateTokenParams{UserID: root.ID, Name: "initial root token", Digest: ci.HashToken(secret), Scopes: []ci.Scope{ci.ScopeAPI}, Now: now}); err != nil {
		return "", fmt.Errorf("create root token: %w", err)
	}
	if pw := a.Config.InitialRootPassword; pw != "" {
		digest, err := ci.HashPassword(pw)
		if err != nil {
			return "", err
		}
		if err := a.Store.SetUserPassword(ctx, root.ID, digest); err != nil {
			return "", fmt.Errorf("set root password: %w", err)
		}
	}
	if generated {
		return secret, nil
	}
	return "", nil
}

// Handler is the node's whole HTTP surface.
func (a *App) Handler() http.Handler {
	mux := http.NewServeMux()
	api := a.API.Handler()
	mux.Handle("/api/v4/", api)
	git, ui := a.gitHandler(), a.Web.Handler()
	// Repositories (/<path>.git/…, and smart-HTTP requests without .git)
	// go to git; every other path is a page.
	mux.Handle("/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if githost.IsGitRequest(r) {
			git.ServeHTTP(w, r)
			return
		}
		ui.ServeHTTP(w, r)
	}))
	mux.Handle("/-/metrics", promhttp.HandlerFor(a.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("GET /-/liveness", func(w http.ResponseWriter, r *http.Request) {
		writeStatus(w, http.StatusOK, `{"status":"ok"}`)
	})
	mux.HandleFunc("GET /-/readiness", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := a.Store.Ping(ctx); err != nil {
			a.log.Warn("readiness: database unreachable", "err", err)
			writeStatus(w, http.StatusServiceUnavailable, `{"status":"failed","master_check":[{"status":"failed","message":"database unreachable"}]}`)
			return
		}
		writeStatus(w, http.StatusOK, `{"status":"ok","master_check":[{"status":"ok"}]}`)
	})
	return mux
}

func writeStatus(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = io.WriteString(w, body)
}

// Serve runs the HTTP server on l until ctx ends, then shuts down gracefully.
func (a *App) Serve(ctx context.Context, srv *http.Server, serve func() error) error {
	// Shutdown waits for handlers to return; live log and event streams
	// return when their hubs close.
	srv.RegisterOnShutdown(a.LogHub.Close)
	srv.RegisterOnShutdown(a.EventHub.Close)
	errc := make(chan error, 1)
	go func() { errc <- serve() }()
	select {
	case err := <-errc:
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), a.Config.ShutdownTimeout)
	defer cancel()
	err := srv.Shutdown(sctx)
	if serr := <-errc; serr != nil && !errors.Is(serr, http.ErrServerClosed) && err == nil {
		err = serr
	}
	return err
}

// CloseEvents stops relaying wake-ups between nodes (a no-op on SQLite).
func (a *App) CloseEvents() {
	if a.Events != nil {
		a.relay.close()
		a.Events.Close()
	}
}

// Close stops the workers and releases storage.
func (a *App) Close() error {
	a.Pipelines.Stop()
	a.Watchdog.Stop()
	a.Expiry.Stop()
	a.LogArchiver.Stop()
	a.LogIndexer.Stop()
	a.Hooks.Stop()
	if a.Leases != nil {
		a.Leases.Stop() // after the sweeps, so none runs unleased
	}
	a.LogHub.Close()
	a.EventHub.Close()
	a.CloseEvents()
	return a.Store.Close()
}
