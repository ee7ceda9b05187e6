//! `pcapidx summary`'s sections and `pcapidx macs`, computed.
//!
//! Each section is defined by its query ([`summary_sections`]), and that is
//! what an analyst can run. The four that group every flow (protocols, top
//! talkers, services, MAC vendors) are computed instead in one pass over
//! `flow_data` with hash tables: SQLite groups by sorting, one sort of every
//! flow per section (3.9 s for the summary of 526k flows, growing as
//! n log n), where one scan takes a fraction of that. `pcapidx macs` (the
//! `macs` view) likewise. The tests hold each to its query's result.
use std::collections::HashMap;

use rusqlite::types::{Value, ValueRef};

use crate::format::{IpKey, mac_from_key};
use crate::reports::{Section, TimeWindow, summary_sections};
use crate::{Result, Store, tallies};

/// A section's result: column names and rows.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<Vec<Value>>,
}

/// Packets and bytes of a group of flows, and how many.
#[derive(Default, Clone, Copy)]
struct Totals {
    flows: i64,
    packets: i64,
    bytes: i64,
}

impl Totals {
    fn add(&mut self, packets: i64, bytes: i64) {
        self.flows += 1;
        self.packets += packets;
        self.bytes += bytes;
    }
}

/// An address key as SQLite orders it: integers (IPv4) before blobs (IPv6).
#[derive(PartialEq, Eq, Hash, PartialOrd, Ord)]
enum AddrKey {
    Int(i64),
    Blob(Vec<u8>),
}

impl AddrKey {
    fn of(v: ValueRef<'_>) -> Option<AddrKey> {
        match v {
            ValueRef::Integer(i) => Some(AddrKey::Int(i)),
            ValueRef::Blob(b) => Some(AddrKey::Blob(b.to_vec())),
            _ => None,
        }
    }

    fn value(&self) -> ValueRef<'_> {
        match self {
            AddrKey::Int(i) => ValueRef::Integer(*i),
            AddrKey::Blob(b) => ValueRef::Blob(b),
        }
    }
}

/// The grouping sections' tallies, from one scan.
#[derive(Default)]
struct Tallies {
    protocols: HashMap<(Option<i64>, i64), Totals>,
    talkers: HashMap<AddrKey, Totals>,
    services: HashMap<String, Totals>,
    macs: HashMap<i64, MacTotals>,
    /// The addresses seen behind each MAC (as a flow's source or
    /// destination with it), for `pcapidx macs`.
    mac_ips: HashMap<i64, std::collections::BTreeSet<AddrKey>>,
}

/// Addresses `pcapidx macs` names per MAC (`ip_count` gives them all).
pub(crate) const MAC_IPS_SHOWN: usize = 16;
/// Of those, the table shows this many and a count of the rest.
const MAC_IPS_IN_TABLE: usize = 3;

/// One MAC address's flows, as the `macs` view sums them.
#[derive(Clone, Copy)]
struct MacTotals {
    flows: i64,
    sent: i64,
    received: i64,
    bytes_sent: i64,
    bytes_received: i64,
    first_ts_ns: i64,
    last_ts_ns: i64,
}

impl MacTotals {
    const NONE: MacTotals = MacTotals {
        flows: 0,
        sent: 0,
        received: 0,
        bytes_sent: 0,
        bytes_received: 0,
        first_ts_ns: i64::MAX,
        last_ts_ns: i64::MIN,
    };

    fn add(&mut self, other: &MacTotals) {
        self.flows += other.flows;
        self.sent += other.sent;
        self.received += other.received;
        self.bytes_sent += other.bytes_sent;
        self.bytes_received += other.bytes_received;
        self.first_ts_ns = self.first_ts_ns.min(other.first_ts_ns);
        self.last_ts_ns = self.last_ts_ns.max(other.last_ts_ns);
    }
}

impl Store {
    /// Every section of `pcapidx summary`, in order; lists hold at most
    /// `top` rows; the flow sections count the flows of `window`.
    pub fn summary(&self, top: u32, window: TimeWindow) -> Result<Vec<(Section, Table)>> {
        // The whole index: the groupings kept as flows were written; a
        // window: one scan of its flows.
        let tallies = if window.is_all() {
            self.kept_tallies()?
        } else {
            self.tally(true, window)?
        };
        let mut out = Vec::new();
        for s in summary_sections(top, window) {
            let t = match s.key {
                "protocols" => self.protocols(&tallies, top)?,
                "top_talkers" => talkers(&tallies, top),
                "top_services" => services(&tallies, top),
                "top_mac_vendors" => vendors(&tallies, top),
                _ => self.run_section(&s.sql)?,
            };
            out.push((s, t));
        }
        Ok(out)
    }

    /// A section by its query.
    pub fn run_section(&self, sql: &str) -> Result<Table> {
        let mut t = Table {
            columns: Vec::new(),
            rows: Vec::new(),
        };
        self.query::<crate::StoreError>(sql, &[], |row| {
            match row {
                crate::QueryRow::Columns(c) => t.columns = c.to_vec(),
                crate::QueryRow::Values(v) => t.rows.push(v.to_vec()),
            }
            Ok(())
        })?;
        Ok(t)
    }

    /// `pcapidx macs`: what [`crate::macs_sql`] gives, computed in one scan.
    pub fn macs(&self, table: bool, limit: Option<u64>) -> Result<Table> {
        let tallies = self.tally(false, TimeWindow::default())?;
        let mut macs: Vec<_> = tallies.macs.into_iter().collect();
        macs.sort_by(|a, b| {
            (b.1.sent + b.1.received)
                .cmp(&(a.1.sent + a.1.received))
                .then(a.0.cmp(&b.0))
        });
        let names: &[&str] = if table {
            &[
                "MAC", "Vendor", "IPs", "Flows", "Sent", "Received", "Bytes", "First", "Last",
            ]
        } else {
            &[
                "mac",
                "vendor",
                "ip_count",
                "ips",
                "flows",
                "packets_sent",
                "packets_received",
                "bytes_sent",
                "bytes_received",
                "first_ts_ns",
                "last_ts_ns",
            ]
        };
        // As the view's printf('%02x:…') and the table's trimmed ts_iso.
        let text = |mac: i64| {
            let b = mac_from_key(mac);
            Value::Text(format!(
                "{:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x}",
                b[0], b[1], b[2], b[3], b[4], b[5]
            ))
        };
        let when = |ns: i64| {
            let iso: String = crate::ts_iso(ns).chars().take(19).collect();
            Value::Text(iso.replace('T', " "))
        };
        let no_ips = std::collections::BTreeSet::new();
        let rows = macs
            .into_iter()
            .take(limit.map_or(usize::MAX, |n| n as usize))
            .map(|(mac, m)| {
                let vendor = Value::Text(pcapidx_oui::label(mac_from_key(mac)));
                let int = Value::Integer;
                let ips = tallies.mac_ips.get(&mac).unwrap_or(&no_ips);
                let shown = |n: usize| -> Vec<String> {
                    ips.iter()
                        .take(n)
                        .filter_map(|k| IpKey::from_sql(k.value()).map(|k| k.addr().to_string()))
                        .collect()
                };
                let ip_cells = if table {
                    let mut t = shown(MAC_IPS_IN_TABLE).join(", ");
                    if ips.len() > MAC_IPS_IN_TABLE {
                        t.push_str(&format!(" (+{})", ips.len() - MAC_IPS_IN_TABLE));
                    }
                    vec![Value::Text(t)]
                } else {
                    let list = shown(MAC_IPS_SHOWN);
                    vec![
                        int(ips.len() as i64),
                        if list.is_empty() {
                            Value::Null
                        } else {
                            Value::Text(list.join(" "))
                        },
                    ]
                };
                let mut row = vec![text(mac), vendor];
                row.extend(ip_cells);
                row.extend([int(m.flows), int(m.sent), int(m.received)]);
                if table {
                    let bytes = m.bytes_sent + m.bytes_received;
                    row.extend([int(bytes), when(m.first_ts_ns), when(m.last_ts_ns)]);
                } else {
                    row.extend(
                        [m.bytes_sent, m.bytes_received, m.first_ts_ns, m.last_ts_ns].map(int),
                    );
                }
                row
            })
            .collect();
        Ok(Table {
            columns: names.iter().map(|s| s.to_string()).collect(),
            rows,
        })
    }

    /// The grouping tallies as `tallies` keeps them (per MAC, only what
    /// the vendors section needs: flows, and packets as `sent`).
    fn kept_tallies(&self) -> Result<Tallies> {
        let mut t = Tallies::default();
        let totals = |[flows, packets, bytes]: [i64; 3]| Totals {
            flows,
            packets,
            bytes,
        };
        for (key, n) in tallies::read(&self.conn, tallies::PROTOCOL)? {
            let k = match key {
                Value::Integer(k) if k >= 256 => (None, k - 256),
                Value::Integer(k) => (Some(k), 0),
                _ => continue,
            };
            t.protocols.insert(k, totals(n));
        }
        for (key, n) in tallies::read(&self.conn, tallies::ADDRESS)? {
            let k = match key {
                Value::Integer(i) => AddrKey::Int(i),
                Value::Blob(b) => AddrKey::Blob(b),
                _ => continue,
            };
            t.talkers.insert(k, totals(n));
        }
        for (key, n) in tallies::read(&self.conn, tallies::SERVICE)? {
            if let Value::Text(s) = key {
                t.services.insert(s, totals(n));
            }
        }
        for (key, [flows, packets, _]) in tallies::read(&self.conn, tallies::MAC)? {
            if let Value::Integer(m) = key {
                let mac = MacTotals {
                    flows,
                    sent: packets,
                    received: 0,
                    ..MacTotals::NONE
                };
                t.macs.insert(m, mac);
            }
        }
        Ok(t)
    }

    /// One scan of `flow_data` (the flows of `window`): every tally, or
    /// (`all` false) only the MACs'.
    fn tally(&self, all: bool, window: TimeWindow) -> Result<Tallies> {
        let mut t = Tallies::default();
        let mut sql = "SELECT packets_fwd, packets_rev, bytes_fwd, bytes_rev, first_ts_ns,
                last_ts_ns, src_mac_key, dst_mac_key, proto, ethertype, src_key, dst_key, service
             FROM flow_data"
            .to_string();
        if !window.is_all() {
            sql.push_str(" WHERE ");
            sql.push_str(&window.condition());
        }
        let mut st = self.conn.prepare(&sql)?;
        let mut rows = st.query([])?;
        while let Some(r) = rows.next()? {
            let (pf, pr, bf, br): (i64, i64, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            let (first_ts_ns, last_ts_ns) = (r.get(4)?, r.get(5)?);
            // As the `macs` view counts them: once per flow, even when both
            // ends share an address.
            let (src, dst): (Option<i64>, Option<i64>) = (r.get(6)?, r.get(7)?);
            let as_src = MacTotals {
                flows: 1,
                sent: pf,
                received: pr,
                bytes_sent: bf,
                bytes_received: br,
                first_ts_ns,
                last_ts_ns,
            };
            if let Some(m) = src {
                t.macs.entry(m).or_insert(MacTotals::NONE).add(&as_src);
            }
            if !all {
                for (mac, col) in [(src, 10), (dst, 11)] {
                    if let (Some(mac), Some(k)) = (mac, AddrKey::of(r.get_ref(col)?)) {
                        t.mac_ips.entry(mac).or_default().insert(k);
                    }
                }
            }
            if let Some(m) = dst.filter(|&d| Some(d) != src) {
                let as_dst = MacTotals {
                    sent: pr,
                    received: pf,
                    bytes_sent: br,
                    bytes_received: bf,
                    ..as_src
                };
                t.macs.entry(m).or_insert(MacTotals::NONE).add(&as_dst);
            }
            if !all {
                continue;
            }
            let (packets, bytes) = (pf + pr, bf + br);
            let proto: Option<i64> = r.get(8)?;
            t.protocols
                .entry((proto, r.get(9)?))
                .or_default()
                .add(packets, bytes);
            for col in [10, 11] {
                if let Some(k) = AddrKey::of(r.get_ref(col)?) {
                    t.talkers.entry(k).or_default().add(packets, bytes);
                }
            }
            if let ValueRef::Text(s) = r.get_ref(12)? {
                let s = String::from_utf8_lossy(s);
                match t.services.get_mut(s.as_ref()) {
                    Some(x) => x.add(packets, bytes),
                    None => t
                        .services
                        .entry(s.into_owned())
                        .or_default()
                        .add(packets, bytes),
                }
            }
        }
        Ok(t)
    }

    /// Protocols by name, named by the store's own tables (few groups, so a
    /// query each).
    fn protocols(&self, t: &Tallies, top: u32) -> Result<Table> {
        let mut st = self.conn.prepare_cached(
            "SELECT coalesce(p.name, e.name, CASE WHEN ?1 IS NULL
                 THEN printf('0x%04x', ?2) ELSE CAST(?1 AS TEXT) END)
             FROM (SELECT 1) LEFT JOIN ip_protocols p ON p.proto = ?1
             LEFT JOIN ethertypes e ON ?1 IS NULL AND e.ethertype = ?2",
        )?;
        let mut by_name: HashMap<String, Totals> = HashMap::new();
        for (&(proto, ethertype), x) in &t.protocols {
            let name: String = st.query_row((proto, ethertype), |r| r.get(0))?;
            let e = by_name.entry(name).or_default();
            e.flows += x.flows;
            e.packets += x.packets;
            e.bytes += x.bytes;
        }
        let mut rows: Vec<_> = by_name.into_iter().collect();
        rows.sort_by(|a, b| b.1.flows.cmp(&a.1.flows).then_with(|| a.0.cmp(&b.0)));
        Ok(totals_table("protocol", rows, top, Value::Text))
    }
}

fn talkers(t: &Tallies, top: u32) -> Table {
    let mut rows: Vec<_> = t.talkers.iter().collect();
    rows.sort_by(|a, b| b.1.bytes.cmp(&a.1.bytes).then_with(|| a.0.cmp(b.0)));
    let rows = rows.into_iter().map(|(k, x)| (k, *x)).collect();
    totals_table("address", rows, top, |k| {
        IpKey::from_sql(k.value()).map_or(Value::Null, |k| Value::Text(k.addr().to_string()))
    })
}

fn services(t: &Tallies, top: u32) -> Table {
    let mut rows: Vec<_> = t.services.iter().map(|(s, x)| (s.clone(), *x)).collect();
    rows.sort_by(|a, b| b.1.flows.cmp(&a.1.flows).then_with(|| a.0.cmp(&b.0)));
    totals_table("service", rows, top, Value::Text)
}

fn vendors(t: &Tallies, top: u32) -> Table {
    let mut by_vendor: HashMap<String, (i64, i64)> = HashMap::new();
    for (&mac, m) in &t.macs {
        let e = by_vendor
            .entry(pcapidx_oui::label(mac_from_key(mac)))
            .or_default();
        e.0 += 1;
        e.1 += m.sent + m.received;
    }
    let mut rows: Vec<_> = by_vendor.into_iter().collect();
    rows.sort_by(|a, b| b.1.1.cmp(&a.1.1).then_with(|| a.0.cmp(&b.0)));
    Table {
        columns: ["vendor", "macs", "packets"].map(String::from).to_vec(),
        rows: rows
            .into_iter()
            .take(top as usize)
            .map(|(v, (macs, packets))| {
                vec![
                    Value::Text(v),
                    Value::Integer(macs),
                    Value::Integer(packets),
                ]
            })
            .collect(),
    }
}

/// A (name, flows, packets, bytes) table of the first `top` rows.
fn totals_table<K>(
    name: &str,
    rows: Vec<(K, Totals)>,
    top: u32,
    label: impl Fn(K) -> Value,
) -> Table {
    Table {
        columns: [name, "flows", "packets", "bytes"]
            .map(String::from)
            .to_vec(),
        rows: rows
            .into_iter()
            .take(top as usize)
            .map(|(k, x)| {
                vec![
                    label(k),
                    Value::Integer(x.flows),
                    Value::Integer(x.packets),
                    Value::Integer(x.bytes),
                ]
            })
            .collect(),
    }
}
