-- A job's log is archived into one blob when the job ends; its trace
-- artifact row keeps the blob's sha256 so a re-run can verify it.
ALTER TABLE artifacts ADD COLUMN file_sha256 TEXT;
