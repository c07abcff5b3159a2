-- Protected branches and tags, with who may push, merge, unprotect or
-- create; pipelines record whether their ref was protected when created
-- (protected-only runners take only such pipelines' jobs).
CREATE TABLE protected_refs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  kind TEXT NOT NULL CHECK (kind IN ('branch', 'tag')),
  name TEXT NOT NULL,
  allow_force_push BOOLEAN NOT NULL DEFAULT FALSE,
  code_owner_approval_required BOOLEAN NOT NULL DEFAULT FALSE,
  created_at BIGINT NOT NULL,
  UNIQUE (project_id, kind, name)
);
CREATE TABLE protected_ref_access_levels (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  protected_ref_id INTEGER NOT NULL REFERENCES protected_refs(id) ON DELETE CASCADE,
  action TEXT NOT NULL CHECK (action IN ('push', 'merge', 'unprotect', 'create')),
  access_level INTEGER NOT NULL
);
CREATE INDEX protected_ref_access_levels_ref ON protected_ref_access_levels (protected_ref_id, id);
ALTER TABLE pipelines ADD COLUMN protected BOOLEAN NOT NULL DEFAULT FALSE;
