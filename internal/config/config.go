// Package config holds gantry's configuration: one struct, filled from
// defaults, then a YAML file, then the environment, then flags. Nothing
// here is global.
package config

import (
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"gantry/internal/ci"
)

// Config is the server's configuration. The environment names are a
// contract: GANTRY_LISTEN, GANTRY_DATA_DIR, GANTRY_REPOSITORIES_DIR,
// GANTRY_EXTERNAL_URL, GANTRY_DATABASE_URL, GANTRY_INITIAL_ROOT_TOKEN,
// GANTRY_OBJECT_STORE_URL, GANTRY_OBJECT_STORE_ACCESS_KEY,
// GANTRY_OBJECT_STORE_SECRET_KEY.
type Config struct {
	Listen  string
	DataDir string
	// RepositoriesDir holds the hosted git repositories; empty means
	// <DataDir>/repositories (see Repositories). Nodes sharing a database
	// must share it too.
	RepositoriesDir  string
	ExternalURL      string
	DatabaseURL      string
	InitialRootToken string
	// InitialRootPassword is root's web sign-in password on first start
	// (empty: root has none until one is set).
	InitialRootPassword string
	LogLevel            string
	// SessionTTL is how long a web sign-in lasts.
	SessionTTL time.Duration
	// DBMaxConns bounds the PostgreSQL pool of this node.
	DBMaxConns int
	// SQLiteReaders is the size of SQLite's read pool.
	SQLiteReaders int
	// ArchiveBuildsOlderThan archives jobs older than this; 0 never.
	ArchiveBuildsOlderThan time.Duration
	ShutdownTimeout        time.Duration
	// RunnerRegistrationToken enables the legacy runner registration flow.
	RunnerRegistrationToken string
	// LongPoll is how long POST /jobs/request holds an idle runner.
	LongPoll time.Duration
	// JobRecheck is how often a held job request on PostgreSQL looks for
	// work again, in case another node's notification was lost.
	JobRecheck time.Duration
	// JobSilentTimeout is how long a running job may go without hearing
	// from its runner before the watchdog fails it (stuck_or_timeout_failure).
	JobSilentTimeout time.Duration
	// LogFollowPoll is how often a live log stream looks for changes no
	// notification announced.
	LogFollowPoll time.Duration
	// LogArchiveInterval is how often ended jobs' logs are looked for
	// without a wake-up (a job's end wakes the archiver at once).
	LogArchiveInterval time.Duration
	// MaxArtifactSizeMB bounds one artifact upload (GitLab's instance
	// max_artifacts_size, in MB); larger uploads get 413.
	MaxArtifactSizeMB int
	// ReadCacheTTL bounds how stale cached tokens, projects, access levels,
	// users and runners may be (0 disables the cache).
	ReadCacheTTL time.Duration
	// ObjectStoreURL selects S3-compatible blob storage (see ObjectStore);
	// empty keeps blobs in files under DataDir.
	ObjectStoreURL       string
	ObjectStoreAccessKey string
	ObjectStoreSecretKey string
	// ObjectStore is ObjectStoreURL parsed by Load; nil means files.
	ObjectStore *ObjectStore
	// ArtifactExpiryInterval is how often expired artifacts are deleted
	// (0: never).
	ArtifactExpiryInterval time.Duration
	// Migrate lets the server apply pending expand migrations at start;
	// without it the server refuses to start on a schema that lacks one.
	Migrate bool
	// ConfigFile is the YAML file the configuration was read from, if any.
	ConfigFile string
	// EventRetention is how long job and pipeline status events are kept
	// (how far back an event stream can resume).
	EventRetention time.Duration
}

// Defaults returns the configuration before environment and flags.
func Defaults() Config {
	return Config{
		Listen:             "127.0.0.1:8080",
		DataDir:            "./gantry-data",
		LogLevel:           "info",
		DBMaxConns:         16,
		SQLiteReaders:      4,
		ShutdownTimeout:    15 * time.Second,
		ReadCacheTTL:       time.Second,
		LongPoll:           50 * time.Second,
		JobRecheck:         time.Minute,
		JobSilentTimeout:   15 * time.Minute,
		LogFollowPoll:      2 * time.Second,
		LogArchiveInterval: 30 * time.Second,
		// GitLab's default session_expire_delay: one week.
		SessionTTL: 7 * 24 * time.Hour,
		// GitLab's default instance max_artifacts_size.
		MaxArtifactSizeMB: 100,
		// GitLab's expiry cron runs every seven minutes.
		ArtifactExpiryInterval: 7 * time.Minute,
		Migrate:                true,
		EventRetention:         24 * time.Hour,
	}
}

// Load fills a Config from defaults, then the YAML file named by -config
// or GANTRY_CONFIG, then getenv, then the flags in args.
func Load(name string, args []string, getenv func(string) string) (Config, *flag.FlagSet, error) {
	return LoadWith(name, args, getenv, nil)
}

// LoadWith is Load for a command with flags of its own, which extra
// defines on the flag set before args are parsed.
func LoadWith(name string, args []string, getenv func(string) string, extra func(fs *flag.FlagSet)) (Config, *flag.FlagSet, error) {
	c := Defaults()
	c.ConfigFile = getenv("GANTRY_CONFIG")
	if path, ok := configFlag(name, args, extra); ok {
		c.ConfigFile = path
	}
	if c.ConfigFile != "" {
		if err := c.readFile(c.ConfigFile); err != nil {
			return c, nil, err
		}
	}
	if err := c.readEnv(getenv); err != nil {
		return c, nil, err
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	c.bindFlags(fs)
	fs.StringVar(&c.ConfigFile, "config", c.ConfigFile, "YAML file of settings keyed by flag name; flags and environment override it (GANTRY_CONFIG)")
	if extra != nil {
		extra(fs)
	}
	if err := fs.Parse(args); err != nil {
		return c, fs, err
	}
	return c, fs, c.finish()
}

// configFlag finds -config among args by parsing them with a scratch
// flag set: the file must be read before the real parse, which lets flags
// override it.
func configFlag(name string, args []string, extra func(fs *flag.FlagSet)) (string, bool) {
	var scratch Config
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	scratch.bindFlags(fs)
	path := fs.String("config", "", "")
	if extra != nil {
		extra(fs)
	}
	if fs.Parse(args) != nil {
		return "", false // the real parse reports it
	}
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == "config" })
	return *path, set
}

// readFile applies a YAML mapping of flag names to values. Unknown keys
// and values that are not scalars are errors, naming the key.
func (c *Config) readFile(path string) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config file: %w", err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return fmt.Errorf("config file %s: %w", path, err)
	}
	fs := flag.NewFlagSet("config file", flag.ContinueOnError)
	c.bindFlags(fs)
	keys := make([]string, 0, len(doc))
	for k := range doc {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if fs.Lookup(k) == nil {
			return fmt.Errorf("config file %s: unknown key %q (keys are the flag names, see -h)", path, k)
		}
		var value string
		switch v := doc[k].(type) {
		case string, bool, int, float64:
			value = fmt.Sprint(v)
		default:
			return fmt.Errorf("config file %s: key %q must have a single value", path, k)
		}
		if err := fs.Set(k, value); err != nil {
			return fmt.Errorf("config file %s: key %q: %v", path, k, err)
		}
	}
	return nil
}

// readEnv applies the GANTRY_* variables that are set.
func (c *Config) readEnv(getenv func(string) string) error {
	env := func(key string, dst *string) {
		if v := getenv(key); v != "" {
			*dst = v
		}
	}
	env("GANTRY_LISTEN", &c.Listen)
	env("GANTRY_DATA_DIR", &c.DataDir)
	env("GANTRY_REPOSITORIES_DIR", &c.RepositoriesDir)
	env("GANTRY_EXTERNAL_URL", &c.ExternalURL)
	env("GANTRY_DATABASE_URL", &c.DatabaseURL)
	env("GANTRY_INITIAL_ROOT_TOKEN", &c.InitialRootToken)
	env("GANTRY_INITIAL_ROOT_PASSWORD", &c.InitialRootPassword)
	env("GANTRY_LOG_LEVEL", &c.LogLevel)
	env("GANTRY_RUNNER_REGISTRATION_TOKEN", &c.RunnerRegistrationToken)
	env("GANTRY_OBJECT_STORE_URL", &c.ObjectStoreURL)
	env("GANTRY_OBJECT_STORE_ACCESS_KEY", &c.ObjectStoreAccessKey)
	env("GANTRY_OBJECT_STORE_SECRET_KEY", &c.ObjectStoreSecretKey)
	var errs []string
	envInt := func(key string, dst *int) {
		if v := getenv(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				errs = append(errs, key+" must be a positive integer")
				return
			}
			*dst = n
		}
	}
	envDur := func(key string, dst *time.Duration) {
		if v := getenv(key); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				errs = append(errs, key+" must be a duration such as 720h")
				return
			}
			*dst = d
		}
	}
	envBool := func(key string, dst *bool) {
		if v := getenv(key); v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				errs = append(errs, key+" must be true or false")
				return
			}
			*dst = b
		}
	}
	envInt("GANTRY_DB_MAX_CONNS", &c.DBMaxConns)
	envInt("GANTRY_MAX_ARTIFACT_SIZE_MB", &c.MaxArtifactSizeMB)
	envInt("GANTRY_SQLITE_READERS", &c.SQLiteReaders)
	envDur("GANTRY_ARCHIVE_BUILDS_OLDER_THAN", &c.ArchiveBuildsOlderThan)
	envDur("GANTRY_EVENT_RETENTION", &c.EventRetention)
	envDur("GANTRY_READ_CACHE_TTL", &c.ReadCacheTTL)
	envDur("GANTRY_LONG_POLL", &c.LongPoll)
	envDur("GANTRY_JOB_RECHECK", &c.JobRecheck)
	envDur("GANTRY_JOB_SILENT_TIMEOUT", &c.JobSilentTimeout)
	envDur("GANTRY_ARTIFACT_EXPIRY_INTERVAL", &c.ArtifactExpiryInterval)
	envBool("GANTRY_MIGRATE", &c.Migrate)
	envDur("GANTRY_SESSION_TTL", &c.SessionTTL)
	if len(errs) > 0 {
		return fmt.Errorf("config: %s", strings.Join(errs, "; "))
	}
	return nil
}

// bindFlags defines every setting's flag on fs, defaulting to c's values.
func (c *Config) bindFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Listen, "listen", c.Listen, "listen address (GANTRY_LISTEN)")
	fs.StringVar(&c.DataDir, "data-dir", c.DataDir, "data directory (GANTRY_DATA_DIR)")
	fs.StringVar(&c.RepositoriesDir, "repositories-dir", c.RepositoriesDir, "git repositories, shared by every node; empty means <data dir>/repositories (GANTRY_REPOSITORIES_DIR)")
	fs.StringVar(&c.ExternalURL, "external-url", c.ExternalURL, "base of every URL the server writes (GANTRY_EXTERNAL_URL)")
	fs.StringVar(&c.DatabaseURL, "database-url", c.DatabaseURL, "postgres://… selects PostgreSQL; empty means SQLite (GANTRY_DATABASE_URL)")
	fs.StringVar(&c.InitialRootToken, "initial-root-token", c.InitialRootToken, "root's token on first start (GANTRY_INITIAL_ROOT_TOKEN)")
	fs.StringVar(&c.InitialRootPassword, "initial-root-password", c.InitialRootPassword, "root's web sign-in password on first start (GANTRY_INITIAL_ROOT_PASSWORD)")
	fs.DurationVar(&c.SessionTTL, "session-ttl", c.SessionTTL, "how long a web sign-in lasts (GANTRY_SESSION_TTL)")
	fs.StringVar(&c.LogLevel, "log-level", c.LogLevel, "debug, info, warn or error (GANTRY_LOG_LEVEL)")
	fs.IntVar(&c.DBMaxConns, "db-max-conns", c.DBMaxConns, "PostgreSQL pool size (GANTRY_DB_MAX_CONNS)")
	fs.IntVar(&c.SQLiteReaders, "sqlite-readers", c.SQLiteReaders, "SQLite read connections (GANTRY_SQLITE_READERS)")
	fs.DurationVar(&c.ArchiveBuildsOlderThan, "archive-builds-older-than", c.ArchiveBuildsOlderThan, "archive jobs older than this; 0 never (GANTRY_ARCHIVE_BUILDS_OLDER_THAN)")
	fs.DurationVar(&c.EventRetention, "event-retention", c.EventRetention, "how long job and pipeline status events are kept (GANTRY_EVENT_RETENTION)")
	fs.DurationVar(&c.ReadCacheTTL, "read-cache-ttl", c.ReadCacheTTL, "how stale cached tokens, projects and memberships may be; 0 disables (GANTRY_READ_CACHE_TTL)")
	fs.StringVar(&c.RunnerRegistrationToken, "runner-registration-token", c.RunnerRegistrationToken, "enables legacy runner registration with this token (GANTRY_RUNNER_REGISTRATION_TOKEN)")
	fs.StringVar(&c.ObjectStoreURL, "object-store-url", c.ObjectStoreURL, "s3://bucket[/prefix]?endpoint=host:port&region=…&insecure=true&path_style=true; empty keeps blobs under the data dir (GANTRY_OBJECT_STORE_URL; keys only from the environment)")
	fs.DurationVar(&c.LongPoll, "long-poll", c.LongPoll, "how long an idle runner's job request is held (GANTRY_LONG_POLL)")
	fs.DurationVar(&c.JobRecheck, "job-recheck", c.JobRecheck, "on PostgreSQL, how often a held job request looks for work in case a wake-up from another node was lost (GANTRY_JOB_RECHECK)")
	fs.DurationVar(&c.JobSilentTimeout, "job-silent-timeout", c.JobSilentTimeout, "how long a running job may go without hearing from its runner before it is failed (GANTRY_JOB_SILENT_TIMEOUT)")
	fs.IntVar(&c.MaxArtifactSizeMB, "max-artifact-size-mb", c.MaxArtifactSizeMB, "largest artifact upload in MB; larger ones get 413 (GANTRY_MAX_ARTIFACT_SIZE_MB)")
	fs.DurationVar(&c.ArtifactExpiryInterval, "artifact-expiry-interval", c.ArtifactExpiryInterval, "how often expired artifacts are deleted; 0 never (GANTRY_ARTIFACT_EXPIRY_INTERVAL)")
	fs.BoolVar(&c.Migrate, "migrate", c.Migrate, "on PostgreSQL, apply pending expand migrations at start; false refuses to start while one is pending (GANTRY_MIGRATE)")
}

func (c *Config) finish() error {
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		return fmt.Errorf("config: listen address %q: %w", c.Listen, err)
	}
	if c.ExternalURL == "" {
		c.ExternalURL = "http://" + c.Listen
	}
	c.ExternalURL = strings.TrimRight(c.ExternalURL, "/")
	if !strings.HasPrefix(c.ExternalURL, "http://") && !strings.HasPrefix(c.ExternalURL, "https://") {
		return fmt.Errorf("config: external URL %q must start with http:// or https://", c.ExternalURL)
	}
	if c.InitialRootPassword != "" {
		if problem := ci.PasswordProblem(c.InitialRootPassword); problem != "" {
			return fmt.Errorf("config: initial root password %s", problem)
		}
	}
	if c.SessionTTL <= 0 {
		return fmt.Errorf("config: session TTL must be positive")
	}
	if c.DatabaseURL != "" && !strings.HasPrefix(c.DatabaseURL, "postgres://") && !strings.HasPrefix(c.DatabaseURL, "postgresql://") {
		return fmt.Errorf("config: database URL must be postgres://…")
	}
	if c.ObjectStoreURL != "" {
		o, err := ParseObjectStoreURL(c.ObjectStoreURL, c.ObjectStoreAccessKey, c.ObjectStoreSecretKey)
		if err != nil {
			return err
		}
		c.ObjectStore = o
	}
	if c.JobSilentTimeout <= 0 {
		return fmt.Errorf("config: the job silent timeout must be positive")
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return fmt.Errorf("config: log level %q", c.LogLevel)
	}
	return nil
}

// Repositories is the directory of the hosted git repositories.
func (c Config) Repositories() string {
	if c.RepositoriesDir != "" {
		return c.RepositoriesDir
	}
	return filepath.Join(c.DataDir, "repositories")
}

// SQLitePath is where the embedded database lives.
func (c Config) SQLitePath() string { return filepath.Join(c.DataDir, "gantry.db") }
