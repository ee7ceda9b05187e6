-- pcapidx index schema, version 7. Documented in docs/schema.md.

-- Which flows have packets in which file, written as flows are (so "the
-- flows of file 3" and a file's flow count are index lookups, not a scan of
-- every position). An index of an earlier version gets its rows from the
-- position lists when it is opened for writing (crates/store/src/migrate.rs).
CREATE TABLE file_flows (
    file_id INTEGER NOT NULL,
    flow_id INTEGER NOT NULL,
    PRIMARY KEY (file_id, flow_id)
) WITHOUT ROWID;

-- Records of the file whose time was far out of line with their neighbours'
-- (placed beside them; see docs/schema.md). 0 for files indexed before.
ALTER TABLE files ADD COLUMN out_of_line_ts INTEGER NOT NULL DEFAULT 0;
