-- A job's artifacts kept on its row: one JSON array of [id, file_type,
-- file_format, filename, size, blob_key, expire_at, created_at] arrays in
-- id order, NULL when it has none. Job lists read it with the row instead
-- of running an artifacts subquery for every job of a page. The triggers
-- keep it equal to the artifacts table whichever statement writes there.
ALTER TABLE jobs ADD COLUMN artifacts_list TEXT;

-- A filter on job_id reaches the artifacts_job index through the view.
CREATE VIEW job_artifact_lists AS
SELECT job_id, json_group_array(json_array(id, file_type, file_format, filename, size, blob_key, expire_at, created_at) ORDER BY id) AS list
FROM artifacts GROUP BY job_id;

UPDATE jobs SET artifacts_list = (SELECT list FROM job_artifact_lists WHERE job_id = jobs.id)
WHERE id IN (SELECT job_id FROM artifacts);

-- A new artifact has the highest id so far (the one writer takes ids in
-- order), so an insert appends instead of rebuilding the list: archiving a
-- job's log costs one small row update.
CREATE TRIGGER artifacts_list_insert AFTER INSERT ON artifacts
BEGIN
  UPDATE jobs SET artifacts_list = json_insert(COALESCE(artifacts_list, '[]'), '$[#]',
    json_array(NEW.id, NEW.file_type, NEW.file_format, NEW.filename, NEW.size, NEW.blob_key, NEW.expire_at, NEW.created_at))
  WHERE id = NEW.job_id;
END;

CREATE TRIGGER artifacts_list_update AFTER UPDATE ON artifacts
BEGIN
  UPDATE jobs SET artifacts_list = (SELECT list FROM job_artifact_lists WHERE job_id = NEW.job_id) WHERE id = NEW.job_id;
END;

CREATE TRIGGER artifacts_list_delete AFTER DELETE ON artifacts
BEGIN
  UPDATE jobs SET artifacts_list = (SELECT list FROM job_artifact_lists WHERE job_id = OLD.job_id) WHERE id = OLD.job_id;
END;
