-- pcapidx index schema, version 6: the index's sensor id and the state of
-- its Parquet exports (`pcapidx export`). Documented in docs/schema.md.

-- Settings of the index that outlive runs: `sensor` (the id its exports
-- carry, set once), `export_version` (the number of the last export) and
-- `export_max_flow_id` (the highest flow id it wrote).
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
) WITHOUT ROWID;

-- Flows that were still open at the last export: the next one writes them
-- again (with a higher export_version) whatever their id.
CREATE TABLE export_open (
    flow_id INTEGER PRIMARY KEY
);
