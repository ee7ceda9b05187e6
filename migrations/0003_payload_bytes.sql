-- pcapidx index schema, version 3: payload bytes per direction, and the
-- bytes of it the capture lacks, as Zeek's conn.log counts them
-- (orig_bytes, resp_bytes, missed_bytes), so "sessions with gaps" or
-- "sessions that moved 10 MB of data" are a query, not a reassembly.
-- Documented for analysts in docs/schema.md.

-- TCP: the sequence space sent (retransmissions count once); UDP: the
-- datagrams' payloads after their headers; other IP protocols: the IP
-- payloads. NULL for layer-2 flows, and for flows written by schema
-- version 2 (their packets were not counted).
ALTER TABLE flow_data ADD COLUMN payload_fwd INTEGER;
ALTER TABLE flow_data ADD COLUMN payload_rev INTEGER;
-- Of those, bytes not in the capture: sequence space that no captured
-- segment holds (lost, or not captured yet), and payload cut by the snaplen.
ALTER TABLE flow_data ADD COLUMN missed_fwd INTEGER;
ALTER TABLE flow_data ADD COLUMN missed_rev INTEGER;

-- The flows view, as in version 1 with the four columns at its end.
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
    missed_rev
FROM flow_data;
