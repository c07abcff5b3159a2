-- Whether the job's log has been archived into a blob. Appends check it in
-- the same conditional UPDATE that moves trace_size, so an archive that
-- commits first is always seen (the flag lives on the row both lock).
ALTER TABLE jobs ADD COLUMN trace_archived BOOLEAN NOT NULL DEFAULT FALSE;
UPDATE jobs SET trace_archived = TRUE WHERE id IN (SELECT job_id FROM artifacts WHERE file_type = 'trace');
