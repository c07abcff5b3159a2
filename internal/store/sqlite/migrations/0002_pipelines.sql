-- Pipeline processing: what the compiler planned for each job, and the
-- flag that makes processing resumable after a crash.
ALTER TABLE pipelines ADD COLUMN needs_processing BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE pipelines ADD COLUMN config_errors TEXT NOT NULL DEFAULT '';
ALTER TABLE pipelines ADD COLUMN yaml_errors BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE jobs ADD COLUMN scheduling_dag BOOLEAN NOT NULL DEFAULT FALSE;
ALTER TABLE jobs ADD COLUMN needs TEXT NOT NULL DEFAULT '[]';
ALTER TABLE jobs ADD COLUMN spec TEXT NOT NULL DEFAULT '{}';
ALTER TABLE jobs ADD COLUMN scheduled_at BIGINT;
ALTER TABLE jobs ADD COLUMN resource_group TEXT NOT NULL DEFAULT '';
CREATE INDEX pipelines_needs_processing ON pipelines (needs_processing) WHERE needs_processing;
CREATE INDEX pipelines_project_id ON pipelines (project_id, id);

CREATE TABLE pipeline_variables (
  pipeline_id INTEGER NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  variable_type TEXT NOT NULL DEFAULT 'env_var',
  PRIMARY KEY (pipeline_id, key)
);

CREATE TABLE trigger_tokens (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  owner_id INTEGER NOT NULL REFERENCES users(id),
  description TEXT NOT NULL DEFAULT '',
  digest TEXT NOT NULL UNIQUE,
  token_prefix TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL,
  last_used BIGINT
);
