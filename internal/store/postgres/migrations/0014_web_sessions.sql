-- Passwords for signing in to the web UI (a bcrypt digest; NULL: none set).
ALTER TABLE users ADD COLUMN password_digest TEXT;

-- Web sessions, by a digest of the session id (the id itself lives only in
-- the browser's cookie), so any node sharing the database can serve them.
CREATE TABLE web_sessions (
  digest TEXT PRIMARY KEY,
  user_id BIGINT NOT NULL REFERENCES users(id) ON DELETE CASCADE,
  created_at BIGINT NOT NULL,
  expires_at BIGINT NOT NULL
);
CREATE INDEX web_sessions_expires ON web_sessions (expires_at);
