//! Traffic over time for a chart: packets and bytes of the flows per
//! second, minute and hour (the `traffic` table), counted packet by packet
//! as they are indexed (`Traffic`, added at each commit), so a chart of any
//! span reads a few thousand rows, not every flow.
use std::collections::HashMap;

use rusqlite::{Connection, params};

use crate::{Result, Store, TimeWindow};

/// The slot length of each level of `traffic`, in ns.
pub(crate) const LEVELS: [i64; 3] = [1_000_000_000, 60_000_000_000, 3_600_000_000_000];

/// A chart reads at most about this many slots.
const MAX_SLOTS: i64 = 20_000;

/// Packets and bytes per slot of each level, gathered while indexing and
/// added to `traffic` with the commit that stores the packets.
#[derive(Debug, Default)]
pub struct Traffic {
    slots: HashMap<(u8, i64), (i64, i64)>,
    /// The second last added to and its counts: most packets fall in the
    /// second of the one before.
    last: Option<(i64, i64, i64)>,
}

impl Traffic {
    /// A packet of `bytes` (its original length) at `ts_ns`.
    #[inline]
    pub fn add(&mut self, ts_ns: i64, bytes: u32) {
        self.count(ts_ns, 1, i64::from(bytes));
    }

    /// Takes a packet out (forgetting a file).
    pub(crate) fn remove(&mut self, ts_ns: i64, bytes: u32) {
        self.count(ts_ns, -1, -i64::from(bytes));
    }

    fn count(&mut self, ts_ns: i64, packets: i64, bytes: i64) {
        let sec = ts_ns.div_euclid(LEVELS[0]);
        match &mut self.last {
            Some((s, p, b)) if *s == sec => {
                *p += packets;
                *b += bytes;
            }
            _ => {
                self.spill();
                self.last = Some((sec, packets, bytes));
            }
        }
    }

    fn spill(&mut self) {
        if let Some((sec, p, b)) = self.last.take() {
            for (level, unit) in LEVELS.iter().enumerate() {
                let slot = sec.saturating_mul(LEVELS[0]).div_euclid(*unit);
                let e = self.slots.entry((level as u8, slot)).or_default();
                e.0 += p;
                e.1 += b;
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.slots.is_empty() && self.last.is_none()
    }

    /// Adds the counts to `traffic` (inside the caller's transaction) and
    /// empties them.
    pub(crate) fn save(&mut self, conn: &Connection) -> Result<()> {
        self.spill();
        if self.slots.is_empty() {
            return Ok(());
        }
        let mut st = conn.prepare_cached(
            "INSERT INTO traffic (level, slot, packets, bytes) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (level, slot) DO UPDATE SET packets = packets + excluded.packets,
                bytes = bytes + excluded.bytes",
        )?;
        let mut emptied = false;
        for ((level, slot), (p, b)) in self.slots.drain() {
            st.execute(params![level, slot, p, b])?;
            emptied |= p < 0;
        }
        if emptied {
            conn.execute("DELETE FROM traffic WHERE packets <= 0", [])?;
        }
        Ok(())
    }
}

/// One bucket of [`Store::timeline`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub start_ns: i64,
    pub packets: i64,
    pub bytes: i64,
}

impl Store {
    /// Packets and bytes of the flows from the first packet to the last (of
    /// the window, when one is given), in about `buckets` equal spans of
    /// whole seconds, minutes or hours (the finest that keeps the read
    /// small); returns the bucket width.
    pub fn timeline(&self, buckets: usize, window: TimeWindow) -> Result<(i64, Vec<Bucket>)> {
        let buckets = buckets.clamp(1, 10_000) as i64;
        let (lo, hi): (Option<i64>, Option<i64>) = self.conn.query_row(
            "SELECT min(slot), max(slot) FROM traffic WHERE level = 0",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?;
        let (Some(lo), Some(hi)) = (lo, hi) else {
            return Ok((0, Vec::new()));
        };
        let (mut lo, mut hi) = (lo * LEVELS[0], (hi + 1) * LEVELS[0] - 1);
        lo = window.since_ns.map_or(lo, |s| s.max(lo));
        hi = window.until_ns.map_or(hi, |u| u.min(hi)).max(lo);
        let (level, unit) = LEVELS
            .iter()
            .enumerate()
            .find(|(_, u)| (hi - lo) / **u <= MAX_SLOTS)
            .map_or((LEVELS.len() - 1, LEVELS[LEVELS.len() - 1]), |(l, u)| {
                (l, *u)
            });
        lo = lo.div_euclid(unit) * unit;
        // Whole slots per bucket, so no slot is split between two.
        let up = |x: i64, d: i64| (x + d - 1) / d;
        let width = up(up(hi - lo + 1, buckets), unit).max(1) * unit;
        let n = ((hi - lo) / width + 1) as usize;
        let mut out: Vec<Bucket> = (0..n)
            .map(|i| Bucket {
                start_ns: lo + i as i64 * width,
                packets: 0,
                bytes: 0,
            })
            .collect();
        let mut st = self.conn.prepare(
            "SELECT slot, packets, bytes FROM traffic WHERE level = ?1 AND slot BETWEEN ?2 AND ?3",
        )?;
        let mut rows = st.query(params![level as i64, lo / unit, hi.div_euclid(unit)])?;
        while let Some(r) = rows.next()? {
            let (slot, packets, bytes): (i64, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let i = ((slot * unit - lo) / width) as usize;
            if let Some(b) = out.get_mut(i) {
                b.packets += packets;
                b.bytes += bytes;
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
