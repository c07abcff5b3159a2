-- The project jobs list filters by exact name and by creation and update
-- time; without these a selective filter walks every job of the project.
CREATE INDEX jobs_project_kind_name_id ON jobs (project_id, kind, name, id);
CREATE INDEX jobs_project_kind_updated ON jobs (project_id, kind, updated_at);
CREATE INDEX jobs_project_kind_created ON jobs (project_id, kind, created_at);
