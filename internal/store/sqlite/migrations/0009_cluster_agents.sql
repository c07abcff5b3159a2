-- Cluster agents and the CI access their configuration grants: which
-- projects' and groups' jobs may use an agent (GET /job/allowed_agents).
CREATE TABLE cluster_agents (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  name TEXT NOT NULL,
  created_by_user_id INTEGER REFERENCES users(id) ON DELETE SET NULL,
  created_at BIGINT NOT NULL,
  UNIQUE (project_id, name)
);
CREATE TABLE agent_project_authorizations (
  agent_id INTEGER NOT NULL REFERENCES cluster_agents(id) ON DELETE CASCADE,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  config TEXT NOT NULL,
  PRIMARY KEY (agent_id, project_id)
);
CREATE INDEX agent_project_authorizations_project ON agent_project_authorizations (project_id);
CREATE TABLE agent_group_authorizations (
  agent_id INTEGER NOT NULL REFERENCES cluster_agents(id) ON DELETE CASCADE,
  group_id INTEGER NOT NULL REFERENCES namespaces(id) ON DELETE CASCADE,
  config TEXT NOT NULL,
  PRIMARY KEY (agent_id, group_id)
);
CREATE INDEX agent_group_authorizations_group ON agent_group_authorizations (group_id);
