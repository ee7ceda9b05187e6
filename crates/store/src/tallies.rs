//! The summary's groupings kept up to date as flows are written (table
//! `tallies`): flows, packets and bytes per protocol, address, service and
//! MAC address, so that `summary` and the server's overview read a row per
//! group instead of every flow. A flow's row is written again as it grows:
//! each write adds what changed since the flow's previous row (which the
//! tracker hands along), gathered per transaction and added at its commit.
//! Forgetting files recomputes them from the flows (`tallies.sql`), as the
//! upgrade to schema 7 computes them.
use pcapidx_flow::{FlowRecord, KeyKind, RowCounts};
use rusqlite::types::{ToSqlOutput, Value, ValueRef};
use rusqlite::{Connection, ToSql, params};
use rustc_hash::FxHashMap;

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
    pub src: Option<IpKey>,
    pub dst: Option<IpKey>,
    pub service: Option<&'a str>,
}

impl<'a> Groups<'a> {
    pub(crate) fn of(r: &FlowRecord, service: Option<&'a str>) -> Self {
        let k = &r.key;
        let ((src, _), (dst, _)) = (r.src(), r.dst());
        Groups {
            protocol: match k.kind {
                KeyKind::L2 => 256 + i64::from(k.ethertype),
                _ => i64::from(k.proto),
            },
            src: IpKey::of(k.kind, src),
            dst: IpKey::of(k.kind, dst),
            service,
        }
    }
}

/// What the writes of one transaction add to `tallies`: a map per kind of
/// key (hashing a plain integer is most of what a flow write costs here).
#[derive(Default)]
pub(crate) struct Pending<'a> {
    protocols: FxHashMap<i64, [i64; 3]>,
    v4: FxHashMap<i64, [i64; 3]>,
    v6: FxHashMap<[u8; 16], [i64; 3]>,
    services: FxHashMap<&'a str, [i64; 3]>,
    macs: FxHashMap<i64, [i64; 3]>,
    /// Something was taken out: groups may be left empty.
    took_out: bool,
}

fn bump(sum: &mut [i64; 3], d: [i64; 3]) {
    for (s, v) in sum.iter_mut().zip(d) {
        *s += v;
    }
}

impl<'a> Pending<'a> {
    /// A flow's row `now`, whose previous row said `before`.
    pub(crate) fn flow(&mut self, g: &Groups<'a>, before: Option<&RowCounts>, now: &RowCounts) {
        match before {
            // The same groups (MACs unchanged): what grew.
            Some(b) if (b.src_mac, b.dst_mac) == (now.src_mac, now.dst_mac) => {
                let p = total(&now.packets) - total(&b.packets);
                let by = total(&now.bytes) - total(&b.bytes);
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
        bump(self.protocols.entry(g.protocol).or_default(), d);
        // Both ends, even when they are one address (as the summary's query).
        for a in [g.src, g.dst].into_iter().flatten() {
            match a {
                IpKey::V4(v) => bump(self.v4.entry(i64::from(v)).or_default(), d),
                IpKey::V6(b) => bump(self.v6.entry(b).or_default(), d),
            }
        }
        if let Some(s) = g.service {
            bump(self.services.entry(s).or_default(), d);
        }
        let (sm, dm) = (
            c.src_mac.as_ref().map(mac_key),
            c.dst_mac.as_ref().map(mac_key),
        );
        if let Some(m) = sm {
            bump(self.macs.entry(m).or_default(), d);
        }
        if let Some(m) = dm.filter(|&d| Some(d) != sm) {
            bump(self.macs.entry(m).or_default(), d);
        }
    }

    /// Adds the sums to `tallies` (inside the caller's transaction).
    pub(crate) fn save(&mut self, conn: &Connection) -> Result<()> {
        let mut st = conn.prepare_cached(
            "INSERT INTO tallies (kind, key, flows, packets, bytes) VALUES (?1, ?2, ?3, ?4, ?5)
             ON CONFLICT (kind, key) DO UPDATE SET flows = flows + excluded.flows,
                packets = packets + excluded.packets, bytes = bytes + excluded.bytes",
        )?;
        let mut put = |kind: i64, key: Key<'_>, [f, p, b]: [i64; 3]| {
            st.execute(params![kind, key, f, p, b]).map(|_| ())
        };
        for (k, v) in self.protocols.drain() {
            put(PROTOCOL, Key::Int(k), v)?;
        }
        for (k, v) in self.v4.drain() {
            put(ADDRESS, Key::Int(k), v)?;
        }
        for (k, v) in self.v6.drain() {
            put(ADDRESS, Key::V6(k), v)?;
        }
        for (k, v) in self.services.drain() {
            put(SERVICE, Key::Text(k), v)?;
        }
        for (k, v) in self.macs.drain() {
            put(MAC, Key::Int(k), v)?;
        }
        drop(st);
        if self.took_out {
            conn.execute("DELETE FROM tallies WHERE flows <= 0", [])?;
            self.took_out = false;
        }
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
