-- pcapidx index schema, version 8: captures read from object storage.
-- `files.path` holds a local path or a URL (`s3://bucket/key`); an object's
-- identity is its ETag (and version id where the store keeps versions),
-- as a local file's is its size, mtime and hashes. NULL for local files.
ALTER TABLE files ADD COLUMN etag TEXT;
ALTER TABLE files ADD COLUMN version_id TEXT;
