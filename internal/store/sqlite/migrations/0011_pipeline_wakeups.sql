-- Pipelines that need processing, as one row per event instead of a flag
-- on the pipeline: concurrent job moves of one pipeline then insert rows
-- rather than all updating (and locking) the same pipeline row. Processing
-- deletes the rows it has seen; a move committed later leaves its row for
-- the next run. The old flag is carried over and no longer written.
CREATE TABLE pipeline_wakeups (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  pipeline_id INTEGER NOT NULL REFERENCES pipelines(id) ON DELETE CASCADE
);
CREATE INDEX pipeline_wakeups_pipeline ON pipeline_wakeups (pipeline_id);
INSERT INTO pipeline_wakeups (pipeline_id) SELECT id FROM pipelines WHERE needs_processing;
UPDATE pipelines SET needs_processing = FALSE WHERE needs_processing;
