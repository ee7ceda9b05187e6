-- pcapidx index schema, version 7: the flows of each file, timestamps out of
-- line, and how flows are oriented. Documented in docs/schema.md.

-- Which flows have packets in which file, written as flows are (so "the
-- flows of file 3" and a file's flow count are index lookups, not a scan of
-- every position), as runs of consecutive flow ids: flow ids are given in
-- the order flows start, so a file's flows are few runs (those that started
-- in it, and those that went on into it). Every id of a run is a flow with
-- a packet in the file, or a flow since deleted (forgotten), which the
-- `file_flows` view's join leaves out. An index of an earlier version gets
-- its rows from the position lists when it is upgraded (migrate.rs).
CREATE TABLE file_flow_ranges (
    file_id       INTEGER NOT NULL,
    first_flow_id INTEGER NOT NULL,
    last_flow_id  INTEGER NOT NULL,
    PRIMARY KEY (file_id, first_flow_id)
) WITHOUT ROWID;

-- One row per (file, flow) pair: `SELECT flow_id FROM file_flows WHERE file_id = 3`
-- reads that file's runs and the flows in them, by flow id.
CREATE VIEW file_flows AS
SELECT r.file_id AS file_id, f.flow_id AS flow_id
FROM file_flow_ranges r
JOIN flow_data f ON f.flow_id BETWEEN r.first_flow_id AND r.last_flow_id;

-- Packets and bytes of the flows per second (level 0), minute (1) and hour
-- (2): slot = the time in ns divided by the level's length. Counted packet
-- by packet as they are indexed; an index of an earlier version gets them
-- from its positions when upgraded. What charts of traffic over time read.
CREATE TABLE traffic (
    level   INTEGER NOT NULL,
    slot    INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (level, slot)
) WITHOUT ROWID;

-- The summary's groupings, kept up to date as flows are written: flows,
-- packets and bytes per kind (1 protocol: the IP protocol, or 256 + the
-- EtherType; 2 address: as src_key/dst_key, both ends; 3 service; 4 MAC
-- address, once per flow) and key. Filled from the flows when an index is
-- upgraded (migrations/tallies.sql).
CREATE TABLE tallies (
    kind    INTEGER NOT NULL,
    key     NOT NULL,
    flows   INTEGER NOT NULL,
    packets INTEGER NOT NULL,
    bytes   INTEGER NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;

-- Records of the file whose time was far out of line with their neighbours'
-- (placed beside them; see docs/schema.md). 0 for files indexed before.
ALTER TABLE files ADD COLUMN out_of_line_ts INTEGER NOT NULL DEFAULT 0;

-- Why a flow's src is not the sender of its first packet (docs/schema.md,
-- "Orientation"): 1 its first packet was a SYN-ACK, 2 it came from a server
-- port to a port that is not one; NULL it is (or written before version 7).
ALTER TABLE flow_data ADD COLUMN turned INTEGER;
-- Teredo's server port (UDP 3544) marks a server too, as it does for Zeek.
INSERT OR IGNORE INTO services (proto, port, name) VALUES (17, 3544, 'teredo');

-- The flows view, as in version 3 with `turned` (as text) at its end.
DROP VIEW flows;
CREATE VIEW flows AS
SELECT
    flow_id,
    proto,
    CASE typeof(src_key)
        WHEN 'integer' THEN printf('%d.%d.%d.%d', (src_key >> 24) & 255,
            (src_key >> 16) & 255, (src_key >> 8) & 255, src_key & 255)
        ELSE src_ip6
    END AS src_ip,
    src_port,
    CASE typeof(dst_key)
        WHEN 'integer' THEN printf('%d.%d.%d.%d', (dst_key >> 24) & 255,
            (dst_key >> 16) & 255, (dst_key >> 8) & 255, dst_key & 255)
        ELSE dst_ip6
    END AS dst_ip,
    dst_port,
    ethertype,
    vlan,
    vlan_inner,
    first_ts_ns,
    last_ts_ns,
    packets_fwd,
    packets_rev,
    bytes_fwd,
    bytes_rev,
    CASE WHEN flags_fwd IS NOT NULL THEN
        CASE WHEN flags_fwd & 1 THEN 'F' ELSE '' END
        || CASE WHEN flags_fwd & 2 THEN 'S' ELSE '' END
        || CASE WHEN flags_fwd & 4 THEN 'R' ELSE '' END
        || CASE WHEN flags_fwd & 8 THEN 'P' ELSE '' END
        || CASE WHEN flags_fwd & 16 THEN 'A' ELSE '' END
        || CASE WHEN flags_fwd & 32 THEN 'U' ELSE '' END
        || CASE WHEN flags_fwd & 64 THEN 'E' ELSE '' END
        || CASE WHEN flags_fwd & 128 THEN 'C' ELSE '' END
    END AS tcp_flags_fwd,
    CASE WHEN flags_rev IS NOT NULL THEN
        CASE WHEN flags_rev & 1 THEN 'F' ELSE '' END
        || CASE WHEN flags_rev & 2 THEN 'S' ELSE '' END
        || CASE WHEN flags_rev & 4 THEN 'R' ELSE '' END
        || CASE WHEN flags_rev & 8 THEN 'P' ELSE '' END
        || CASE WHEN flags_rev & 16 THEN 'A' ELSE '' END
        || CASE WHEN flags_rev & 32 THEN 'U' ELSE '' END
        || CASE WHEN flags_rev & 64 THEN 'E' ELSE '' END
        || CASE WHEN flags_rev & 128 THEN 'C' ELSE '' END
    END AS tcp_flags_rev,
    CASE WHEN src_mac_key IS NOT NULL THEN
        printf('%02x:%02x:%02x:%02x:%02x:%02x', (src_mac_key >> 40) & 255,
            (src_mac_key >> 32) & 255, (src_mac_key >> 24) & 255,
            (src_mac_key >> 16) & 255, (src_mac_key >> 8) & 255, src_mac_key & 255)
    END AS src_mac,
    CASE WHEN dst_mac_key IS NOT NULL THEN
        printf('%02x:%02x:%02x:%02x:%02x:%02x', (dst_mac_key >> 40) & 255,
            (dst_mac_key >> 32) & 255, (dst_mac_key >> 24) & 255,
            (dst_mac_key >> 16) & 255, (dst_mac_key >> 8) & 255, dst_mac_key & 255)
    END AS dst_mac,
    files,
    service,
    community_id,
    src_key,
    dst_key,
    payload_fwd,
    payload_rev,
    missed_fwd,
    missed_rev,
    CASE turned WHEN 1 THEN 'syn-ack' WHEN 2 THEN 'port' END AS turned
FROM flow_data;
