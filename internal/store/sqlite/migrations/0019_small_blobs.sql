-- Blobs small enough to be cheaper as a row than as a file or an object
-- (the archived logs of short jobs): see blob.Tiered. A file costs a
-- create, two fsyncs and a rename; a row costs one small write.
CREATE TABLE small_blobs (
  key TEXT PRIMARY KEY,
  data BLOB NOT NULL
);
