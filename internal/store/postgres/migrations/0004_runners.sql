-- Runners: scope assignments, token expiry; jobs: what dispatch and the
-- runner protocol record.
ALTER TABLE runners ADD COLUMN maintenance_note TEXT NOT NULL DEFAULT '';
ALTER TABLE runners ADD COLUMN token_expires_at BIGINT;
CREATE TABLE runner_projects (
  runner_id BIGINT NOT NULL REFERENCES runners(id) ON DELETE CASCADE,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  PRIMARY KEY (runner_id, project_id)
);
CREATE INDEX runner_projects_project ON runner_projects (project_id);
CREATE TABLE runner_namespaces (
  runner_id BIGINT NOT NULL REFERENCES runners(id) ON DELETE CASCADE,
  namespace_id BIGINT NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
  PRIMARY KEY (runner_id, namespace_id)
);
ALTER TABLE jobs ADD COLUMN trace_size BIGINT NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN exit_code BIGINT;
ALTER TABLE jobs ADD COLUMN timeout_seconds BIGINT;
ALTER TABLE jobs ADD COLUMN runner_updated_at BIGINT;
CREATE INDEX jobs_pending ON jobs (project_id, id) WHERE status = 'pending' AND kind = 'build';
CREATE INDEX jobs_running ON jobs (project_id) WHERE status IN ('running', 'canceling');
