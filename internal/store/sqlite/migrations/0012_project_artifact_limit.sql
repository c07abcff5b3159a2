-- A project's own limit on one artifact upload, in MB (GitLab's
-- max_artifacts_size); NULL falls back to the instance limit.
ALTER TABLE projects ADD COLUMN max_artifacts_size INTEGER;
