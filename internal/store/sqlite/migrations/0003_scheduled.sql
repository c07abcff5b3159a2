CREATE INDEX jobs_scheduled ON jobs (scheduled_at) WHERE status = 'scheduled';
CREATE INDEX jobs_resource_group ON jobs (project_id, resource_group, status) WHERE resource_group <> '';
