-- Artifact expiry and the project-wide delete find their rows without
-- scanning every artifact.
CREATE INDEX artifacts_expire_at ON artifacts (expire_at) WHERE expire_at IS NOT NULL;
CREATE INDEX artifacts_project ON artifacts (project_id, id);
