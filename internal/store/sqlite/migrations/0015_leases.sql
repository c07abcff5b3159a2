-- Named, expiring claims: several nodes sharing one database let the
-- holder of a lease run a background sweep (the watchdog, artifact expiry,
-- log archiving) so the others do not do the same work twice. A lease
-- whose expires_at (UTC microseconds) has passed is free.
CREATE TABLE leases (
  name TEXT PRIMARY KEY,
  holder TEXT NOT NULL,
  expires_at BIGINT NOT NULL
);
