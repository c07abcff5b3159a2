-- Times are microseconds since the Unix epoch, UTC, in both dialects.
CREATE TABLE users (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  username TEXT NOT NULL,
  name TEXT NOT NULL,
  email TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'active' CHECK (state IN ('active','blocked','deactivated')),
  admin BOOLEAN NOT NULL DEFAULT FALSE,
  bot BOOLEAN NOT NULL DEFAULT FALSE,
  created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_username ON users (lower(username));
CREATE UNIQUE INDEX users_email ON users (lower(email));

CREATE TABLE personal_access_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  digest TEXT NOT NULL UNIQUE,
  scopes TEXT NOT NULL,
  expires_at BIGINT,
  revoked BOOLEAN NOT NULL DEFAULT FALSE,
  created_at BIGINT NOT NULL
);

CREATE TABLE namespaces (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  full_path TEXT NOT NULL,
  full_name TEXT NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('user','group')),
  parent_id INTEGER REFERENCES namespaces(id),
  owner_id INTEGER REFERENCES users(id),
  visibility TEXT NOT NULL CHECK (visibility IN ('private','internal','public')),
  description TEXT NOT NULL DEFAULT '',
  created_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX namespaces_full_path ON namespaces (lower(full_path));

CREATE TABLE projects (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  namespace_id INTEGER NOT NULL REFERENCES namespaces(id),
  name TEXT NOT NULL,
  path TEXT NOT NULL,
  full_path TEXT NOT NULL,
  description TEXT NOT NULL DEFAULT '',
  visibility TEXT NOT NULL CHECK (visibility IN ('private','internal','public')),
  public_builds BOOLEAN NOT NULL DEFAULT TRUE,
  default_branch TEXT NOT NULL DEFAULT 'main',
  ci_job_token_scope_enabled BOOLEAN NOT NULL DEFAULT FALSE,
  archived BOOLEAN NOT NULL DEFAULT FALSE,
  creator_id INTEGER NOT NULL REFERENCES users(id),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_activity_at BIGINT NOT NULL
);
CREATE UNIQUE INDEX projects_full_path ON projects (lower(full_path));

CREATE TABLE members (
  source_type TEXT NOT NULL CHECK (source_type IN ('project','namespace')),
  source_id INTEGER NOT NULL,
  user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  access_level INTEGER NOT NULL CHECK (access_level IN (10,15,20,30,40,50)),
  expires_at BIGINT,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (source_type, source_id, user_id)
);
CREATE INDEX members_user ON members (user_id);

CREATE TABLE commits (
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  sha TEXT NOT NULL,
  parent_ids TEXT NOT NULL,
  title TEXT NOT NULL,
  message TEXT NOT NULL,
  author_name TEXT NOT NULL,
  author_email TEXT NOT NULL,
  authored_date BIGINT NOT NULL,
  authored_tz INTEGER NOT NULL,
  committer_name TEXT NOT NULL,
  committer_email TEXT NOT NULL,
  committed_date BIGINT NOT NULL,
  committed_tz INTEGER NOT NULL,
  PRIMARY KEY (project_id, sha)
);

CREATE TABLE pipelines (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  iid INTEGER NOT NULL,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  sha TEXT NOT NULL,
  before_sha TEXT NOT NULL,
  ref TEXT NOT NULL,
  tag BOOLEAN NOT NULL,
  status TEXT NOT NULL,
  source TEXT NOT NULL,
  user_id INTEGER REFERENCES users(id),
  parent_id INTEGER REFERENCES pipelines(id),
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  duration DOUBLE PRECISION,
  lock_version BIGINT NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX pipelines_iid ON pipelines (project_id, iid);
CREATE INDEX pipelines_project_ref ON pipelines (project_id, ref, id);

CREATE TABLE runners (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  runner_type TEXT NOT NULL CHECK (runner_type IN ('instance_type','group_type','project_type')),
  description TEXT NOT NULL DEFAULT '',
  name TEXT,
  paused BOOLEAN NOT NULL DEFAULT FALSE,
  locked BOOLEAN NOT NULL DEFAULT FALSE,
  run_untagged BOOLEAN NOT NULL DEFAULT TRUE,
  access_level TEXT NOT NULL DEFAULT 'not_protected',
  tag_list TEXT NOT NULL DEFAULT '[]',
  maximum_timeout INTEGER,
  token_digest TEXT NOT NULL UNIQUE,
  created_by_id INTEGER REFERENCES users(id),
  created_at BIGINT NOT NULL,
  contacted_at BIGINT
);

CREATE TABLE runner_managers (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  runner_id INTEGER NOT NULL REFERENCES runners(id) ON DELETE CASCADE,
  system_id TEXT NOT NULL,
  version TEXT,
  revision TEXT,
  platform TEXT,
  architecture TEXT,
  ip_address TEXT,
  created_at BIGINT NOT NULL,
  contacted_at BIGINT,
  UNIQUE (runner_id, system_id)
);

CREATE TABLE jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  pipeline_id INTEGER NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('build','bridge')),
  name TEXT NOT NULL,
  stage TEXT NOT NULL,
  stage_idx INTEGER NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('created','waiting_for_resource','preparing','waiting_for_callback','pending','running','success','failed','canceling','canceled','skipped','manual','scheduled')),
  ref TEXT NOT NULL,
  tag BOOLEAN NOT NULL,
  coverage DOUBLE PRECISION,
  allow_failure BOOLEAN NOT NULL,
  when_ TEXT NOT NULL DEFAULT 'on_success',
  created_at BIGINT NOT NULL,
  queued_at BIGINT,
  started_at BIGINT,
  finished_at BIGINT,
  erased_at BIGINT,
  erased_by_id INTEGER REFERENCES users(id),
  user_id INTEGER REFERENCES users(id),
  failure_reason TEXT NOT NULL DEFAULT '',
  runner_id INTEGER REFERENCES runners(id) ON DELETE SET NULL,
  runner_manager_id INTEGER REFERENCES runner_managers(id) ON DELETE SET NULL,
  artifacts_expire_at BIGINT,
  tag_list TEXT NOT NULL DEFAULT '[]',
  retried BOOLEAN NOT NULL DEFAULT FALSE,
  downstream_pipeline_id INTEGER REFERENCES pipelines(id) ON DELETE SET NULL,
  token_digest TEXT UNIQUE,
  updated_at BIGINT NOT NULL,
  lock_version BIGINT NOT NULL DEFAULT 0
);
CREATE INDEX jobs_project_kind_id ON jobs (project_id, kind, id);
CREATE INDEX jobs_project_kind_status_id ON jobs (project_id, kind, status, id);
CREATE INDEX jobs_pipeline_id ON jobs (pipeline_id, id);

CREATE TABLE artifacts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  file_type TEXT NOT NULL,
  file_format TEXT NOT NULL,
  filename TEXT NOT NULL,
  size BIGINT NOT NULL,
  blob_key TEXT NOT NULL,
  expire_at BIGINT,
  created_at BIGINT NOT NULL
);
CREATE INDEX artifacts_job ON artifacts (job_id, id);

CREATE TABLE trace_chunks (
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  start_offset BIGINT NOT NULL,
  data BLOB NOT NULL,
  PRIMARY KEY (job_id, start_offset)
);
