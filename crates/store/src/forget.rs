//! Forgetting files (`pcapidx forget`, `index --watch --retain`): their
//! packets leave every flow, flows left with no packet are deleted, and the
//! counts a flow's positions give (packets, bytes, first and last time,
//! files) are recomputed for flows that keep packets in other files. What
//! positions do not hold (TCP flags, payload and missed bytes, MACs) stays
//! as measured over the whole session. Each file's row stays, `forgotten`,
//! so that a later run does not index it again while it is unchanged.
use std::collections::HashSet;

use pcapidx_positions::{Encoder, Position};
use rusqlite::{OptionalExtension, params};

use crate::{FileStatus, Result, Store, StoreError};

/// What forgetting did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forgotten {
    pub files: u64,
    /// Positions removed.
    pub packets: u64,
    /// Flows with no packet left, deleted.
    pub flows_deleted: u64,
    /// Flows that keep packets in other files, their counts recomputed.
    pub flows_trimmed: u64,
}

/// Chunk size for rewritten position lists (the tracker's default).
const CHUNK_BYTES: usize = 2000;

impl Store {
    /// Forgets the files `file_ids` in one transaction; `why` becomes their
    /// rows' `error` (e.g. "forgotten by --retain 30d").
    pub fn forget(&self, file_ids: &[i64], why: &str) -> Result<Forgotten> {
        let tx = self.conn.unchecked_transaction()?;
        let out = self.take_out(file_ids)?;
        let mut st = tx.prepare(
            "UPDATE files SET status = ?2, error = ?3, status_at_ns = ?4 WHERE file_id = ?1",
        )?;
        let mut files = 0;
        for &id in file_ids {
            files += st.execute(params![id, FileStatus::Forgotten.as_str(), why, now_ns()])? as u64;
        }
        drop(st);
        tx.commit()?;
        Ok(Forgotten { files, ..out })
    }

    /// `index --reindex`: takes the files' packets out as `forget` does and
    /// leaves their rows (same ids) as files never read, so that the run
    /// reads them from the start; in one transaction.
    pub fn clear_for_reindex(&self, file_ids: &[i64]) -> Result<Forgotten> {
        let tx = self.conn.unchecked_transaction()?;
        let out = self.take_out(file_ids)?;
        for &id in file_ids {
            // `indexing` with nothing indexed: the plan reads it afresh.
            tx.execute(
                "UPDATE files SET status = 'indexing', error = NULL, indexed_bytes = 0,
                 packets = 0, flow_packets = 0, filtered_packets = 0, undecodable_packets = 0,
                 first_ts_ns = NULL, last_ts_ns = NULL, resume_section = 0, resume_ts_ns = 0,
                 out_of_line_ts = 0,
                 head_hash = NULL, tail_hash = NULL WHERE file_id = ?1",
                [id],
            )?;
            tx.execute("DELETE FROM interfaces WHERE file_id = ?1", [id])?;
        }
        tx.commit()?;
        Ok(Forgotten {
            files: file_ids.len() as u64,
            ..out
        })
    }

    /// The files whose packets share a flow with a packet of `file_ids`,
    /// and theirs in turn (`file_ids` included): what `--reindex` must read
    /// again so that every flow it rebuilds is whole.
    pub fn files_sharing_flows(&self, file_ids: &[i64]) -> Result<Vec<i64>> {
        let mut all: HashSet<u32> = file_ids.iter().map(|&i| i as u32).collect();
        let mut frontier: HashSet<u32> = all.clone();
        while !frontier.is_empty() {
            let ids: Vec<i64> = frontier.iter().map(|&i| i64::from(i)).collect();
            let mut next = HashSet::new();
            for (_, positions) in self.flows_in(&ids, &frontier)? {
                for p in positions {
                    if all.insert(p.file_id) {
                        next.insert(p.file_id);
                    }
                }
            }
            frontier = next;
        }
        let mut v: Vec<i64> = all.into_iter().map(i64::from).collect();
        v.sort_unstable();
        Ok(v)
    }

    /// Flows with a packet in one of the files `gone` (ids `ids`), with all
    /// their positions.
    fn flows_in(&self, ids: &[i64], gone: &HashSet<u32>) -> Result<Vec<(u64, Vec<Position>)>> {
        let candidates: Vec<u64> = self
            .conn
            .prepare(
                "SELECT DISTINCT flow_id FROM file_flows
                 WHERE file_id IN (SELECT value FROM json_each(?1)) ORDER BY flow_id",
            )?
            .query_map([ids_json(ids)], |r| r.get::<_, i64>(0))?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        for flow_id in candidates {
            let all = self.positions(flow_id)?;
            if all.iter().any(|p| gone.contains(&p.file_id)) {
                out.push((flow_id, all));
            }
        }
        Ok(out)
    }

    /// Takes the packets of `file_ids` out of every flow (inside the
    /// caller's transaction): flows left with none are deleted, the others'
    /// position-derived counts recomputed, open flows' states adjusted.
    fn take_out(&self, file_ids: &[i64]) -> Result<Forgotten> {
        let tx = &self.conn;
        let mut out = Forgotten::default();
        let gone: HashSet<u32> = file_ids.iter().map(|&id| id as u32).collect();
        let mut deleted = HashSet::new();
        let mut traffic = crate::Traffic::default();
        for (flow_id, all) in self.flows_in(file_ids, &gone)? {
            for p in all.iter().filter(|p| gone.contains(&p.file_id)) {
                traffic.remove(p.ts_ns, p.orig_len);
            }
            let before = all.len();
            let kept: Vec<Position> = all
                .into_iter()
                .filter(|p| !gone.contains(&p.file_id))
                .collect();
            out.packets += (before - kept.len()) as u64;
            tx.execute(
                "DELETE FROM packet_chunks WHERE flow_id = ?1",
                [flow_id as i64],
            )?;
            if kept.is_empty() {
                tx.execute("DELETE FROM flow_data WHERE flow_id = ?1", [flow_id as i64])?;
                deleted.insert(flow_id);
                out.flows_deleted += 1;
                continue;
            }
            let chunks = encode(&kept);
            let (mut packets, mut bytes) = ([0i64; 2], [0i64; 2]);
            for p in &kept {
                let d = usize::from(p.reverse);
                packets[d] += 1;
                bytes[d] += i64::from(p.orig_len);
            }
            let first = kept.iter().map(|p| p.ts_ns).min().unwrap_or(0);
            let last = kept.iter().map(|p| p.ts_ns).max().unwrap_or(0);
            let files = kept.iter().map(|p| p.file_id).collect::<HashSet<_>>().len();
            tx.execute(
                "UPDATE flow_data SET first_ts_ns = ?2, last_ts_ns = ?3, packets_fwd = ?4,
                 packets_rev = ?5, bytes_fwd = ?6, bytes_rev = ?7, files = ?8, first_chunk = ?9
                 WHERE flow_id = ?1",
                params![
                    flow_id as i64,
                    first,
                    last,
                    packets[0],
                    packets[1],
                    bytes[0],
                    bytes[1],
                    files as i64,
                    chunks[0]
                ],
            )?;
            for c in &chunks[1..] {
                tx.execute(
                    "INSERT INTO packet_chunks (flow_id, data) VALUES (?1, ?2)",
                    params![flow_id as i64, c],
                )?;
            }
            out.flows_trimmed += 1;
        }
        tx.execute(
            "DELETE FROM file_flow_ranges WHERE file_id IN (SELECT value FROM json_each(?1))",
            [ids_json(file_ids)],
        )?;
        traffic.save(tx)?;
        crate::tallies::recompute(tx)?;
        // Flows still open: the deleted ones are no longer, and the others'
        // file lists lose the forgotten files.
        let state: Option<Vec<u8>> = tx
            .query_row("SELECT state FROM tracker_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        if let Some(blob) = state {
            let rewritten =
                pcapidx_flow::states_without(&blob, &|id| deleted.contains(&id), &|f| {
                    gone.contains(&f)
                })
                .map_err(|e| StoreError::Damaged(format!("open flow state: {e}")))?;
            tx.execute(
                "UPDATE tracker_state SET state = ?1 WHERE id = 1",
                [rewritten],
            )?;
        }
        Ok(out)
    }

    /// Files with packets whose last packet is older than `before_ns`
    /// (capture time), not yet forgotten: what `--retain` forgets.
    pub fn files_older_than(&self, before_ns: i64) -> Result<Vec<(i64, String)>> {
        let mut st = self.conn.prepare(
            "SELECT file_id, path FROM files WHERE last_ts_ns < ?1 AND status <> 'forgotten'
             ORDER BY last_ts_ns",
        )?;
        let rows = st
            .query_map([before_ns], |r| Ok((r.get(0)?, r.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        Ok(rows)
    }
}

fn ids_json(ids: &[i64]) -> String {
    format!(
        "[{}]",
        ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",")
    )
}

/// Positions as chunks of about `CHUNK_BYTES` (always at least one).
fn encode(positions: &[Position]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut enc = Encoder::new();
    for p in positions {
        enc.push(p);
        if enc.len() >= CHUNK_BYTES {
            out.push(enc.take());
        }
    }
    if !enc.is_empty() || out.is_empty() {
        out.push(enc.take());
    }
    out
}

fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}
