-- A job's artifacts kept on its row: one JSON array of [id, file_type,
-- file_format, filename, size, blob_key, expire_at, created_at] arrays in
-- id order, NULL when it has none. Job lists read it with the row instead
-- of running an artifacts subquery for every job of a page. The trigger
-- keeps it equal to the artifacts table whichever statement writes there.
ALTER TABLE jobs ADD COLUMN artifacts_list TEXT;

-- A filter on job_id reaches the artifacts_job index through the view.
CREATE VIEW job_artifact_lists AS
SELECT job_id, json_agg(json_build_array(id, file_type, file_format, filename, size, blob_key, expire_at, created_at) ORDER BY id)::text AS list
FROM artifacts GROUP BY job_id;

UPDATE jobs SET artifacts_list = l.list FROM job_artifact_lists l WHERE l.job_id = jobs.id;

CREATE FUNCTION refresh_job_artifacts_list() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  job BIGINT;
BEGIN
  IF TG_OP = 'INSERT' THEN
    -- An insert appends instead of rebuilding the list: archiving a job's
    -- log costs one small row update. The row lock orders concurrent
    -- appends; ids taken out of commit order are sorted when read.
    UPDATE jobs SET artifacts_list = CASE WHEN artifacts_list IS NULL THEN '[' ELSE left(artifacts_list, -1) || ', ' END
      || json_build_array(NEW.id, NEW.file_type, NEW.file_format, NEW.filename, NEW.size, NEW.blob_key, NEW.expire_at, NEW.created_at)::text || ']'
    WHERE id = NEW.job_id;
    RETURN NULL;
  END IF;
  IF TG_OP = 'DELETE' THEN
    job := OLD.job_id;
  ELSE
    job := NEW.job_id;
  END IF;
  -- Two writers of one job's artifacts take turns here. The UPDATE below
  -- then reads with a snapshot taken after the other's commit, so neither
  -- overwrites the list with one that lacks the other's rows. NO KEY
  -- UPDATE does not conflict with the key-share lock of the foreign-key
  -- check, which each writer already holds.
  PERFORM 1 FROM jobs WHERE id = job FOR NO KEY UPDATE;
  UPDATE jobs SET artifacts_list = (SELECT list FROM job_artifact_lists WHERE job_id = job) WHERE id = job;
  RETURN NULL;
END;
$$;

CREATE TRIGGER artifacts_list_refresh AFTER INSERT OR UPDATE OR DELETE ON artifacts
  FOR EACH ROW EXECUTE FUNCTION refresh_job_artifacts_list();
