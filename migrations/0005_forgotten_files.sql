-- pcapidx index schema, version 5: files can be forgotten (`pcapidx forget`,
-- `index --watch --retain AGE`). A forgotten file's packets leave the
-- index; its row stays, status `forgotten`, so that a later run leaves the
-- file alone if it is still there (and indexes its path again only when its
-- content changes). Documented in docs/schema.md.
--
-- SQLite cannot change a CHECK constraint in place: the table is rebuilt
-- with the same columns, ids and rows.

CREATE TABLE files_v5 (
    file_id             INTEGER PRIMARY KEY,
    path                TEXT NOT NULL,
    size                INTEGER NOT NULL,
    mtime_ns            INTEGER NOT NULL,
    head_hash           INTEGER,
    tail_hash           INTEGER,
    format              TEXT,
    link_types          TEXT,
    packets             INTEGER NOT NULL DEFAULT 0,
    flow_packets        INTEGER NOT NULL DEFAULT 0,
    filtered_packets    INTEGER NOT NULL DEFAULT 0,
    undecodable_packets INTEGER NOT NULL DEFAULT 0,
    first_ts_ns         INTEGER,
    last_ts_ns          INTEGER,
    status              TEXT NOT NULL CHECK (status IN
                          ('ok', 'partial', 'error', 'not-a-capture', 'skipped', 'indexing',
                           'missing', 'overwritten', 'duplicate', 'forgotten')),
    error               TEXT,
    filters             TEXT,
    indexed_bytes       INTEGER NOT NULL DEFAULT 0,
    resume_section      INTEGER NOT NULL DEFAULT 0,
    resume_ts_ns        INTEGER NOT NULL DEFAULT 0,
    indexed_at_ns       INTEGER,
    -- xxh3 of the first 512 bytes (fewer in a smaller file): finds the
    -- indexed file a new path is a copy of, or was moved from.
    lead_hash           INTEGER,
    -- `duplicate`: the file whose indexed content this one repeats.
    duplicate_of        INTEGER,
    -- When the status last changed (ns since the epoch): when a file was
    -- found missing, overwritten or a duplicate.
    status_at_ns        INTEGER,
    -- The flow timeouts in force when it was indexed (`--*-timeout`, seconds).
    timeouts            TEXT
);

INSERT INTO files_v5 SELECT * FROM files;

DROP TABLE files;
ALTER TABLE files_v5 RENAME TO files;

CREATE UNIQUE INDEX files_current_path ON files (path) WHERE status <> 'overwritten';
CREATE INDEX files_lead ON files (lead_hash) WHERE lead_hash IS NOT NULL;
