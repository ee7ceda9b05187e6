-- pcapidx index schema, version 1.
-- Documented for analysts in docs/schema.md. Never edit a migration that
-- has shipped; add the next numbered file instead.

-- Every file met while indexing, capture or not.
CREATE TABLE files (
    file_id             INTEGER PRIMARY KEY,
    path                TEXT NOT NULL UNIQUE,
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
                          ('ok', 'partial', 'error', 'not-a-capture', 'skipped', 'indexing')),
    error               TEXT,
    filters             TEXT,
    indexed_bytes       INTEGER NOT NULL DEFAULT 0,
    resume_section      INTEGER NOT NULL DEFAULT 0,
    resume_ts_ns        INTEGER NOT NULL DEFAULT 0,
    indexed_at_ns       INTEGER
);

-- Capture interfaces: one per pcap file, one per pcapng IDB.
CREATE TABLE interfaces (
    file_id        INTEGER NOT NULL REFERENCES files(file_id),
    if_index       INTEGER NOT NULL,
    link_type      INTEGER NOT NULL,
    snaplen        INTEGER NOT NULL,
    ts_resol       INTEGER NOT NULL,
    ts_offset_s    INTEGER NOT NULL,
    section_offset INTEGER NOT NULL,
    block_offset   INTEGER NOT NULL,
    big_endian     INTEGER NOT NULL,
    PRIMARY KEY (file_id, if_index)
) WITHOUT ROWID;

-- One row per bidirectional flow (session).
CREATE TABLE flows (
    flow_id       INTEGER PRIMARY KEY,
    proto         INTEGER,
    src_ip        TEXT,
    src_port      INTEGER,
    dst_ip        TEXT,
    dst_port      INTEGER,
    ethertype     INTEGER NOT NULL,
    vlan          INTEGER,
    vlan_inner    INTEGER,
    first_ts_ns   INTEGER NOT NULL,
    last_ts_ns    INTEGER NOT NULL,
    packets_fwd   INTEGER NOT NULL,
    packets_rev   INTEGER NOT NULL,
    bytes_fwd     INTEGER NOT NULL,
    bytes_rev     INTEGER NOT NULL,
    tcp_flags_fwd TEXT,
    tcp_flags_rev TEXT,
    src_mac       TEXT,
    dst_mac       TEXT,
    files         INTEGER NOT NULL
);
CREATE INDEX flows_first_ts ON flows (first_ts_ns);

-- Each flow's packet positions, delta-encoded (see docs/schema.md).
CREATE TABLE packet_chunks (
    chunk_id INTEGER PRIMARY KEY,
    flow_id  INTEGER NOT NULL,
    data     BLOB NOT NULL
);
CREATE INDEX packet_chunks_flow ON packet_chunks (flow_id);

-- The flow tracker's state at the last commit: what a later run needs to
-- continue the flows still open. One row.
CREATE TABLE tracker_state (
    id    INTEGER PRIMARY KEY CHECK (id = 1),
    state BLOB NOT NULL
);
