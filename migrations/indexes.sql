-- Secondary indexes, kept apart from the numbered migrations because
-- pcapidx builds them after a bulk load: an index run into an empty index,
-- or one that reads at least a quarter as many bytes as the index holds,
-- drops them at its start, and every index run ends by running this file
-- (building them from sorted data costs less than maintaining them row by
-- row past that point). Every statement must be idempotent.
CREATE INDEX IF NOT EXISTS flow_data_first_ts ON flow_data (first_ts_ns);
CREATE INDEX IF NOT EXISTS flow_data_src_key ON flow_data (src_key);
CREATE INDEX IF NOT EXISTS flow_data_dst_key ON flow_data (dst_key);
CREATE INDEX IF NOT EXISTS packet_chunks_flow ON packet_chunks (flow_id);
