-- The `tallies` table computed from the flows (schema version 7; see
-- crates/store/src/tallies.rs): what pcapidx keeps up to date as it writes
-- flows, recomputed when files are forgotten and when an index is upgraded.
DELETE FROM tallies;
INSERT INTO tallies (kind, key, flows, packets, bytes)
SELECT 1, coalesce(proto, 256 + ethertype), count(*), sum(packets_fwd + packets_rev),
       sum(bytes_fwd + bytes_rev)
FROM flow_data GROUP BY 2;
INSERT INTO tallies (kind, key, flows, packets, bytes)
SELECT 2, k, count(*), sum(p), sum(b)
FROM (SELECT src_key AS k, packets_fwd + packets_rev AS p, bytes_fwd + bytes_rev AS b
      FROM flow_data WHERE src_key IS NOT NULL
      UNION ALL
      SELECT dst_key, packets_fwd + packets_rev, bytes_fwd + bytes_rev
      FROM flow_data WHERE dst_key IS NOT NULL)
GROUP BY k;
INSERT INTO tallies (kind, key, flows, packets, bytes)
SELECT 3, service, count(*), sum(packets_fwd + packets_rev), sum(bytes_fwd + bytes_rev)
FROM flow_data WHERE service IS NOT NULL GROUP BY service;
INSERT INTO tallies (kind, key, flows, packets, bytes)
SELECT 4, m, count(*), sum(p), sum(b)
FROM (SELECT src_mac_key AS m, packets_fwd + packets_rev AS p, bytes_fwd + bytes_rev AS b
      FROM flow_data WHERE src_mac_key IS NOT NULL
      UNION ALL
      SELECT dst_mac_key, packets_fwd + packets_rev, bytes_fwd + bytes_rev
      FROM flow_data WHERE dst_mac_key IS NOT NULL AND dst_mac_key IS NOT src_mac_key)
GROUP BY m;
