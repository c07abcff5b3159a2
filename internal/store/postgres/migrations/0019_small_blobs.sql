-- Blobs small enough to be cheaper as a row than as a file or an object
-- (the archived logs of short jobs): see blob.Tiered. An object costs a
-- round trip to the object store; a row costs one small write.
CREATE TABLE small_blobs (
  key TEXT PRIMARY KEY,
  data BYTEA NOT NULL
);
