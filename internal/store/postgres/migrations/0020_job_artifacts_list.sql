-- A job's artifacts kept on its row: one JSON array of [id, file_type,
-- file_format, filename, size, blob_key, expire_at, created_at] arrays in
-- id order, NULL when it has none. Job lists read it with the row instead
-- of running an artifacts subquery for every job of a page. The triggers
-- keep it equal to the artifacts table whichever statement writes there.
ALTER TABLE jobs ADD COLUMN artifacts_list TEXT;

-- A filter on job_id reaches the artifacts_job index through the view.
CREATE VIEW job_artifact_lists AS
SELECT job_id, json_agg(json_build_array(id, file_type, file_format, filename, size, blob_key, expire_at, created_at) ORDER BY id)::text AS list
FROM artifacts GROUP BY job_id;

UPDATE jobs SET artifacts_list = l.list FROM job_artifact_lists l WHERE l.job_id = jobs.id;

-- The triggers run once per statement over its rows, so a statement that
-- writes many artifacts (the log archiver's batches) updates each job once.

-- An insert appends instead of rebuilding: archiving a job's log costs one
-- small row update. The row lock orders concurrent appends; ids taken out
-- of commit order are sorted when read.
CREATE FUNCTION append_job_artifacts_list() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  UPDATE jobs SET artifacts_list = CASE WHEN artifacts_list IS NULL THEN '[' ELSE left(artifacts_list, -1) || ', ' END || n.items || ']'
  FROM (SELECT job_id, string_agg(json_build_array(id, file_type, file_format, filename, size, blob_key, expire_at, created_at)::text, ', ' ORDER BY id) AS items
        FROM inserted GROUP BY job_id) n
  WHERE jobs.id = n.job_id;
  RETURN NULL;
END;
$$;

-- An update or a delete rebuilds the lists of the jobs it touched.
CREATE FUNCTION rebuild_job_artifacts_lists() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  -- Writers of one job's artifacts take turns here (locks taken in id
  -- order, so two writers cannot wait on each other). The UPDATE below
  -- then reads with a snapshot taken after the other's commit, so neither
  -- overwrites a list with one that lacks the other's rows. NO KEY UPDATE
  -- does not conflict with the key-share lock of a foreign-key check.
  PERFORM 1 FROM jobs WHERE id IN (SELECT job_id FROM touched) ORDER BY id FOR NO KEY UPDATE;
  UPDATE jobs SET artifacts_list = (SELECT list FROM job_artifact_lists WHERE job_id = jobs.id)
  WHERE id IN (SELECT job_id FROM touched);
  RETURN NULL;
END;
$$;

CREATE TRIGGER artifacts_list_insert AFTER INSERT ON artifacts
  REFERENCING NEW TABLE AS inserted FOR EACH STATEMENT EXECUTE FUNCTION append_job_artifacts_list();
CREATE TRIGGER artifacts_list_update AFTER UPDATE ON artifacts
  REFERENCING NEW TABLE AS touched FOR EACH STATEMENT EXECUTE FUNCTION rebuild_job_artifacts_lists();
CREATE TRIGGER artifacts_list_delete AFTER DELETE ON artifacts
  REFERENCING OLD TABLE AS touched FOR EACH STATEMENT EXECUTE FUNCTION rebuild_job_artifacts_lists();
