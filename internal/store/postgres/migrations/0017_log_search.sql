-- Log search: archived logs wait in log_search_pending until the indexer
-- puts them into a segment (one blob holding the trigram signatures of up
-- to a thousand logs of one project); search scans pending and live logs.
CREATE TABLE log_search_pending (
  job_id BIGINT PRIMARY KEY REFERENCES jobs(id) ON DELETE CASCADE,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  size BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX log_search_pending_project ON log_search_pending (project_id, job_id);
CREATE TABLE log_search_segments (
  id BIGSERIAL PRIMARY KEY,
  project_id BIGINT NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  blob_key TEXT NOT NULL,
  first_job_id BIGINT NOT NULL,
  last_job_id BIGINT NOT NULL,
  logs INTEGER NOT NULL,
  log_bytes BIGINT NOT NULL,
  index_bytes BIGINT NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX log_search_segments_project ON log_search_segments (project_id, last_job_id);
-- Logs archived before search existed are indexed too.
INSERT INTO log_search_pending (job_id, project_id, size, created_at)
  SELECT job_id, MIN(project_id), MIN(size), MIN(created_at) FROM artifacts WHERE file_type = 'trace' GROUP BY job_id;
