//! The summary's groupings kept up to date as flows are written (table
//! `tallies`): flows, packets and bytes per protocol, address, service and
//! MAC address, so that `summary` and the server's overview read a row per
//! group instead of every flow. A flow's row is written again as it grows:
//! each write adds what changed since the flow's previous row (which the
//! tracker hands along), gathered per transaction and added at its commit.
//! Forgetting files recomputes them from the flows (`tallies.sql`), as the
//! upgrade to schema 7 computes them.
use std::collections::HashMap;

use pcapidx_flow::{FlowRecord, KeyKind, RowCounts};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ToSql, params};

use crate::Result;
use crate::format::{IpKey, mac_key};

/// `tallies.kind`: protocol (key: the IP protocol, or 256 + the EtherType of
/// a layer-2 flow), address (key: as `src_key`), service (its name), MAC
/// address (as `src_mac_key`; a flow counts once for a MAC at both ends).
pub(crate) const PROTOCOL: i64 = 1;
pub(crate) const ADDRESS: i64 = 2;
pub(crate) const SERVICE: i64 = 3;
pub(crate) const MAC: i64 = 4;

/// The SQL that computes `tallies` from the flows.
pub(crate) const FROM_FLOWS: &str = include_str!("../../../migrations/tallies.sql");

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Key<'a> {
    Int(i64),
    V6([u8; 16]),
    Text(&'a str),
}

impl ToSql for Key<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(ToSqlOutput::Borrowed(match self {
            Key::Int(i) => ValueRef::Integer(*i),
            Key::V6(b) => ValueRef::Blob(b),
            Key::Text(t) => ValueRef::Text(t.as_bytes()),
        }))
    }
}

/// The groups a flow's row counts in, but for its MACs (which a later row
/// may be the first to know).
pub(crate) struct Groups<'a> {
    pub protocol: i64,
    pub src: Option<Key<'a>>,
    pub dst: Option<Key<'a>>,
    pub service: Option<&'a str>,
}

impl<'a> Groups<'a> {
    pub(crate) fn of(r: &FlowRecord, service: Option<&'a str>) -> Self {
        let k = &r.key;
        let addr = |a: &[u8; 16]| match IpKey::of(k.kind, a) {
            Some(IpKey::V4(v)) => Some(Key::Int(i64::from(v))),
            Some(IpKey::V6(b)) => Some(Key::V6(b)),
            None => None,
        };
        let ((src, _), (dst, _)) = (r.src(), r.dst());
        Groups {
            protocol: match k.kind {
                KeyKind::L2 => 256 + i64::from(k.ethertype),
                _ => i64::from(k.proto),
            },
            src: addr(src),
            dst: addr(dst),
            service,
        }
    }
}

/// What the writes of one transaction add to `tallies`.
#[derive(Default)]
pub(crate) struct Pending<'a> {
    sums: HashMap<(i64, Key<'a>), [i64; 3]>,
    /// Something was taken out: groups may be left empty.
    took_out: bool,
}

impl<'a> Pending<'a> {
    /// A flow's row `now`, whose previous row said `before`.
    pub(crate) fn flow(&mut self, g: &Groups<'a>, before: Option<&RowCounts>, now: &RowCounts) {
        match before {
            // The same groups (MACs unchanged): what grew.
            Some(b) if (b.src_mac, b.dst_mac) == (now.src_mac, now.dst_mac) => {
                let (p, by) = (
                    total(&now.packets) - total(&b.packets),
                    total(&now.bytes) - total(&b.bytes),
                );
                if p != 0 || by != 0 {
                    self.add(g, now, [0, p, by]);
                }
            }
            Some(b) => {
                self.add(g, b, [-1, -total(&b.packets), -total(&b.bytes)]);
                self.took_out = true;
                self.add(g, now, [1, total(&now.packets), total(&now.bytes)]);
            }
            None => self.add(g, now, [1, total(&now.packets), total(&now.bytes)]),
        }
    }

    fn add(&mut self, g: &Groups<'a>, c: &RowCounts, d: [i64; 3]) {
        let mut put = |kind: i64, key: Key<'a>| {
            let e = self.sums.entry((kind, key)).or_default();
            for (s, v) in e.iter_mut().zip(d) {
                *s += v;
            }
        };
        put(PROTOCOL, Key::Int(g.protocol));
        // Both ends, even when they are one address (as the summary's query).
        for a in [g.src, g.dst].into_iter().flatten() {
            put(ADDRESS, a);
        }
        if let Some(s) = g.service {
            put(SERVICE, Key::Text(s));
        }
        let (sm, dm) = (
            c.src_mac.as_ref().map(mac_key),
            c.dst_mac.as_ref().map(mac_key),
        );
        if let Some(m) = sm {
            put(MAC, Key::Int(m));
        }
        if let Some(m) = dm.filter(|&d| Some(d) != sm) {
            put(MAC, Key::Int(m));
        }
    }

    /// Adds the sums to `tallies` (inside the caller's transaction).
    pub(crate) fn save(&mut self, conn: &Connection) -> Result<()> {
        if self.sums.is_empty() {
            return Ok(());
        }
        let mut st = conn.prepare_cached(
            "INSERT INTO tallies (kind, key, flows, packets, bytes) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (kind, key) DO UPDATE SET flows = flows + excluded.flows,
                packets = packets + excluded.packets, bytes = bytes + excluded.bytes",
        )?;
        for (&(kind, key), &[f, p, b]) in &self.sums {
            st.execute(params![kind, key, f, p, b])?;
        }
        if self.took_out {
            conn.execute("DELETE FROM tallies WHERE flows <= 0", [])?;
        }
        self.sums.clear();
        self.took_out = false;
        Ok(())
    }
}

fn total(v: &[u64; 2]) -> i64 {
    (v[0] + v[1]) as i64
}

/// Recomputes `tallies` from the flows (inside the caller's transaction).
pub(crate) fn recompute(conn: &Connection) -> rusqlite::Result<()> {
    conn.execute_batch(FROM_FLOWS)
}

/// Rows of one kind: (key, flows, packets, bytes).
pub(crate) fn read(conn: &Connection, kind: i64) -> Result<Vec<(Value, [i64; 3])>> {
    let mut st =
        conn.prepare_cached("SELECT key, flows, packets, bytes FROM tallies WHERE kind = ?1")?;
    let rows = st
        .query_map([kind], |r| {
            Ok((r.get(0)?, [r.get(1)?, r.get(2)?, r.get(3)?]))
        })?
        .collect::<rusqlite::Result<_>>()?;
    Ok(rows)
}
