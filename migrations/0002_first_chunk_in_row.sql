-- pcapidx index schema, version 2: a flow's first chunk of positions is
-- stored in its row. Most flows are short and have no other chunk; stored
-- in the row it costs neither a packet_chunks row nor an entry in that
-- table's flow_id index (about 7% of an index of short flows).
-- Documented for analysts in docs/schema.md.

-- The first chunk of the flow's position list (NULL in rows written by
-- schema version 1, whose chunks are all in packet_chunks).
ALTER TABLE flow_data ADD COLUMN first_chunk BLOB;

-- Every chunk of every flow, in order: (flow_id, chunk_id) sorts a flow's
-- chunks (its first chunk has chunk_id 0; packet_chunks ids start at 1).
CREATE VIEW flow_chunks AS
SELECT flow_id, 0 AS chunk_id, first_chunk AS data
FROM flow_data
WHERE first_chunk IS NOT NULL
UNION ALL
SELECT flow_id, chunk_id, data
FROM packet_chunks;
