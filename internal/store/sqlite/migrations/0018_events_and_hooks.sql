-- Status changes of jobs and pipelines, and project webhooks.
--
-- Triggers record every status change in the transaction that makes it, so
-- no code path can change a status without an event, and no event exists
-- for a change that rolled back. Each event carries what a consumer needs
-- (names, ref, sha, times as of the change), so it outlives its job.
-- Events are pruned after a retention period.
CREATE TABLE status_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL,
  kind TEXT NOT NULL CHECK (kind IN ('job','pipeline')),
  object_id INTEGER NOT NULL,
  pipeline_id INTEGER NOT NULL,
  name TEXT NOT NULL,
  stage TEXT NOT NULL,
  ref TEXT NOT NULL,
  tag BOOLEAN NOT NULL,
  sha TEXT NOT NULL,
  status TEXT NOT NULL,
  previous_status TEXT,
  failure_reason TEXT NOT NULL,
  created_at BIGINT NOT NULL,
  started_at BIGINT,
  finished_at BIGINT,
  at BIGINT NOT NULL
);
CREATE INDEX status_events_project ON status_events (project_id, id);
CREATE INDEX status_events_at ON status_events (at);

CREATE TABLE project_hooks (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
  url TEXT NOT NULL,
  name TEXT NOT NULL DEFAULT '',
  description TEXT NOT NULL DEFAULT '',
  -- Sent as X-Gitlab-Token, so kept as given (never shown by the API).
  token TEXT NOT NULL DEFAULT '',
  push_events BOOLEAN NOT NULL,
  job_events BOOLEAN NOT NULL,
  pipeline_events BOOLEAN NOT NULL,
  enable_ssl_verification BOOLEAN NOT NULL,
  created_at BIGINT NOT NULL
);
CREATE INDEX project_hooks_project ON project_hooks (project_id);

-- One row per (hook, event): the work queue of the delivery workers and,
-- once done, the delivery log. The payload is built at the first attempt
-- and resent unchanged by retries.
CREATE TABLE hook_deliveries (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  hook_id INTEGER NOT NULL REFERENCES project_hooks(id) ON DELETE CASCADE,
  event_id BIGINT NOT NULL,
  kind TEXT NOT NULL,
  state TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending','delivered','failed')),
  attempts INTEGER NOT NULL DEFAULT 0,
  next_attempt_at BIGINT NOT NULL,
  uuid TEXT NOT NULL DEFAULT '',
  payload TEXT,
  response_status INTEGER,
  response_excerpt TEXT NOT NULL DEFAULT '',
  error TEXT NOT NULL DEFAULT '',
  duration DOUBLE PRECISION,
  created_at BIGINT NOT NULL,
  updated_at BIGINT NOT NULL
);
CREATE INDEX hook_deliveries_due ON hook_deliveries (next_attempt_at) WHERE state = 'pending';
CREATE INDEX hook_deliveries_hook ON hook_deliveries (hook_id, id);
CREATE INDEX hook_deliveries_updated ON hook_deliveries (updated_at) WHERE state <> 'pending';

CREATE TRIGGER jobs_status_event AFTER UPDATE OF status ON jobs
WHEN NEW.status <> OLD.status
BEGIN
  INSERT INTO status_events (project_id, kind, object_id, pipeline_id, name, stage, ref, tag, sha, status, previous_status,
    failure_reason, created_at, started_at, finished_at, at)
  VALUES (NEW.project_id, 'job', NEW.id, NEW.pipeline_id, NEW.name, NEW.stage, NEW.ref, NEW.tag,
    COALESCE((SELECT sha FROM pipelines WHERE id = NEW.pipeline_id), ''), NEW.status, OLD.status,
    NEW.failure_reason, NEW.created_at, NEW.started_at, NEW.finished_at, NEW.updated_at);
  INSERT INTO hook_deliveries (hook_id, event_id, kind, next_attempt_at, created_at, updated_at)
  SELECT id, last_insert_rowid(), 'job', NEW.updated_at, NEW.updated_at, NEW.updated_at
  FROM project_hooks WHERE project_id = NEW.project_id AND job_events;
END;

CREATE TRIGGER pipelines_status_event AFTER UPDATE OF status ON pipelines
WHEN NEW.status <> OLD.status
BEGIN
  INSERT INTO status_events (project_id, kind, object_id, pipeline_id, name, stage, ref, tag, sha, status, previous_status,
    failure_reason, created_at, started_at, finished_at, at)
  VALUES (NEW.project_id, 'pipeline', NEW.id, NEW.id, '', '', NEW.ref, NEW.tag, NEW.sha, NEW.status, OLD.status,
    '', NEW.created_at, NEW.started_at, NEW.finished_at, NEW.updated_at);
  INSERT INTO hook_deliveries (hook_id, event_id, kind, next_attempt_at, created_at, updated_at)
  SELECT id, last_insert_rowid(), 'pipeline', NEW.updated_at, NEW.updated_at, NEW.updated_at
  FROM project_hooks WHERE project_id = NEW.project_id AND pipeline_events;
END;

-- A pipeline born in a final state (an invalid configuration) still
-- changed status, as GitLab sees it.
CREATE TRIGGER pipelines_created_event AFTER INSERT ON pipelines
WHEN NEW.status <> 'created'
BEGIN
  INSERT INTO status_events (project_id, kind, object_id, pipeline_id, name, stage, ref, tag, sha, status, previous_status,
    failure_reason, created_at, started_at, finished_at, at)
  VALUES (NEW.project_id, 'pipeline', NEW.id, NEW.id, '', '', NEW.ref, NEW.tag, NEW.sha, NEW.status, NULL,
    '', NEW.created_at, NEW.started_at, NEW.finished_at, NEW.updated_at);
  INSERT INTO hook_deliveries (hook_id, event_id, kind, next_attempt_at, created_at, updated_at)
  SELECT id, last_insert_rowid(), 'pipeline', NEW.updated_at, NEW.updated_at, NEW.updated_at
  FROM project_hooks WHERE project_id = NEW.project_id AND pipeline_events;
END;
