//! Traffic over time for a chart: packets and bytes per time bucket, from
//! the flow rows (each flow's packets and bytes spread evenly over its
//! duration: an estimate that costs one pass over the flows instead of one
//! over every packet).
use crate::{Result, Store, TimeWindow};

/// One bucket of [`Store::timeline`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start_ns: i64,
    pub packets: f64,
    pub bytes: f64,
}

impl Store {
    /// `buckets` equal spans from the first packet to the last (of the
    /// window, when one is given).
    pub fn timeline(&self, buckets: usize, window: TimeWindow) -> Result<(i64, Vec<Bucket>)> {
        let buckets = buckets.clamp(1, 10_000);
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT min(first_ts_ns), max(last_ts_ns) FROM flow_data",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok((0, Vec::new()));
        };
        let lo = window.since_ns.map_or(lo, |s| s.max(lo));
        let hi = window.until_ns.map_or(hi, |u| u.min(hi)).max(lo);
        let width = ((hi - lo) / buckets as i64).max(1) + 1;
        let mut out: Vec<Bucket> = (0..buckets)
            .map(|i| Bucket {
                start_ns: lo + i as i64 * width,
                packets: 0.0,
                bytes: 0.0,
            })
            .collect();
        let mut st = self.conn.prepare(
            "SELECT first_ts_ns, last_ts_ns, packets_fwd + packets_rev, bytes_fwd + bytes_rev
             FROM flow_data WHERE last_ts_ns >= ?1 AND first_ts_ns <= ?2",
        )?;
        let mut rows = st.query([lo, hi])?;
        while let Some(r) = rows.next()? {
            let (first, last): (i64, i64) = (r.get(0)?, r.get(1)?);
            let (packets, bytes): (i64, i64) = (r.get(2)?, r.get(3)?);
            let span = (last - first).max(1) as f64;
            let (a, b) = (first.max(lo), last.min(hi));
            let (ia, ib) = (
                ((a - lo) / width) as usize,
                (((b - lo) / width) as usize).min(buckets - 1),
            );
            for (i, bucket) in out.iter_mut().enumerate().take(ib + 1).skip(ia) {
                let share = if first == last {
                    1.0
                } else {
                    let s = (lo + i as i64 * width).max(first);
                    let e = (lo + (i as i64 + 1) * width).min(last);
                    (e - s).max(0) as f64 / span
                };
                bucket.packets += packets as f64 * share;
                bucket.bytes += bytes as f64 * share;
            }
        }
        Ok((width, out))
    }

    /// Changes whenever another connection commits to the index (SQLite's
    /// `data_version`): what a server polls to tell its pages.
    pub fn data_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA data_version", [], |r| r.get(0))?)
    }
}
