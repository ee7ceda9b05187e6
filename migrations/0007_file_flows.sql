-- pcapidx index schema, version 7: which flows have packets in which file,
-- written as flows are (so "the flows of file 3" and a file's flow count are
-- index lookups, not a scan of every position). Documented in docs/schema.md.
-- An index of an earlier version gets its rows from the position lists when
-- it is opened for writing (crates/store/src/migrate.rs).
CREATE TABLE file_flows (
    file_id INTEGER NOT NULL,
    flow_id INTEGER NOT NULL,
    PRIMARY KEY (file_id, flow_id)
) WITHOUT ROWID;
