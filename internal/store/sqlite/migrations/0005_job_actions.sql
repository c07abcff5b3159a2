-- Variables given when a manual job is played (or a job retried).
CREATE TABLE job_variables (
  job_id INTEGER NOT NULL REFERENCES jobs(id) ON DELETE CASCADE,
  key TEXT NOT NULL,
  value TEXT NOT NULL,
  PRIMARY KEY (job_id, key)
);
CREATE INDEX jobs_canceling ON jobs (updated_at) WHERE status = 'canceling';
