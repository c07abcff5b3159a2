-- Inbound CI/CD job token scope: which other projects' jobs may use their
-- tokens on a project.
ALTER TABLE projects ADD COLUMN job_token_inbound BOOLEAN NOT NULL DEFAULT TRUE;
CREATE TABLE job_token_project_links (
  target_project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  source_project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (target_project_id, source_project_id)
);
CREATE TABLE job_token_group_links (
  target_project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  source_namespace_id BIGINT NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
  created_at BIGINT NOT NULL,
  PRIMARY KEY (target_project_id, source_namespace_id)
);
