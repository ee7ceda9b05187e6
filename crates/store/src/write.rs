//! Batched writes: one transaction, prepared statements reused across rows.
use std::collections::HashMap;

use pcapidx_capture::Interface;
use pcapidx_flow::{FlowRecord, KeyKind, RowCounts};
use rusqlite::{Connection, Statement, params};

use crate::checkpoint::Checkpointer;
use crate::format::{IpKey, ip6_text, mac_key};
use crate::read::FileRow;
use crate::{Result, tallies};

/// Binds each value with its own type and executes. `params!` binds
/// through `&dyn ToSql`, a call that cannot be inlined; for a flow row's 25
/// values that call was 12% of the instructions spent writing the row.
macro_rules! execute_typed {
    ($st:expr; $($v:expr),+ $(,)?) => {{
        let st: &mut Statement = $st;
        let mut i = 0;
        $(
            i += 1;
            st.raw_bind_parameter(i, $v)?;
        )+
        debug_assert_eq!(i, st.parameter_count());
        st.raw_execute()
    }};
}

/// The `services` table, held in memory while writing.
#[derive(Debug, Default)]
pub(crate) struct Services(HashMap<(u8, u16), String>);

impl Services {
    pub(crate) fn load(conn: &Connection) -> Result<Services> {
        let mut st = conn.prepare("SELECT proto, port, name FROM services")?;
        let map = st
            .query_map([], |r| {
                Ok(((r.get::<_, u8>(0)?, r.get::<_, u16>(1)?), r.get(2)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        Ok(Services(map))
    }

    /// The named services' (protocol, port) pairs.
    pub(crate) fn ports(&self) -> impl Iterator<Item = (u8, u16)> + '_ {
        self.0.keys().copied()
    }

    /// The service of a flow: its responder's port, else its originator's.
    fn guess(&self, proto: u8, dst_port: u16, src_port: u16) -> Option<&str> {
        self.0
            .get(&(proto, dst_port))
            .or_else(|| self.0.get(&(proto, src_port)))
            .map(String::as_str)
    }
}

/// Adds (file id, flow id) pairs to `file_flow_ranges` as runs of
/// consecutive flow ids (inside the caller's transaction), and empties them.
pub(crate) fn save_file_flows(conn: &Connection, pairs: &mut Vec<(u32, u64)>) -> Result<()> {
    pairs.sort_unstable();
    pairs.dedup();
    let mut st = conn.prepare_cached(
        "INSERT INTO file_flow_ranges (file_id, first_flow_id, last_flow_id) VALUES (?1, ?2, ?3)
         ON CONFLICT (file_id, first_flow_id)
         DO UPDATE SET last_flow_id = max(last_flow_id, excluded.last_flow_id)",
    )?;
    let mut run: Option<(u32, u64, u64)> = None;
    for &(file, flow) in pairs.iter() {
        run = match run {
            Some((f, a, b)) if f == file && b + 1 == flow => Some((f, a, flow)),
            Some((f, a, b)) => {
                st.execute(params![f, a as i64, b as i64])?;
                Some((file, flow, flow))
            }
            None => Some((file, flow, flow)),
        };
    }
    if let Some((f, a, b)) = run {
        st.execute(params![f, a as i64, b as i64])?;
    }
    pairs.clear();
    Ok(())
}

/// One transaction of writes. Its statements are prepared once and reused
/// for every row. Dropped without [`Batch::commit`], it rolls back.
pub struct Batch<'a> {
    conn: &'a Connection,
    services: &'a Services,
    checkpointer: &'a Checkpointer,
    file: Statement<'a>,
    file_by_id: Statement<'a>,
    iface: Statement<'a>,
    flow: Statement<'a>,
    chunk: Statement<'a>,
    /// (file id, flow id) pairs for `file_flows`, inserted in order at the commit.
    flow_files: Vec<(u32, u64)>,
    tracker: Statement<'a>,
    /// What the flow rows written add to `tallies`, saved at the commit.
    tallies: tallies::Pending<'a>,
    done: bool,
}

impl Drop for Batch<'_> {
    fn drop(&mut self) {
        if !self.done {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
    }
}

impl<'a> Batch<'a> {
    pub(crate) fn begin(
        conn: &'a Connection,
        services: &'a Services,
        checkpointer: &'a Checkpointer,
    ) -> Result<Self> {
        conn.execute_batch("BEGIN IMMEDIATE")?;
        let prepare = || -> rusqlite::Result<Batch<'a>> {
            Ok(Batch {
                conn,
                services,
                checkpointer,
                file: conn.prepare(
                    "INSERT INTO files (path, size, mtime_ns, head_hash, tail_hash, format, link_types,
                        packets, flow_packets, filtered_packets, undecodable_packets, first_ts_ns, last_ts_ns,
                        status, error, filters, indexed_bytes, resume_section, resume_ts_ns, indexed_at_ns,
                        lead_hash, duplicate_of, status_at_ns, timeouts, out_of_line_ts, etag, version_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19,
                        ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27)
                     ON CONFLICT (path) WHERE status <> 'overwritten' DO UPDATE SET size = ?2, mtime_ns = ?3,
                        head_hash = ?4, tail_hash = ?5, format = ?6, link_types = ?7, packets = ?8,
                        flow_packets = ?9, filtered_packets = ?10, undecodable_packets = ?11,
                        first_ts_ns = ?12, last_ts_ns = ?13, status = ?14, error = ?15, filters = ?16,
                        indexed_bytes = ?17, resume_section = ?18, resume_ts_ns = ?19, indexed_at_ns = ?20,
                        lead_hash = ?21, duplicate_of = ?22, status_at_ns = ?23, timeouts = ?24,
                        out_of_line_ts = ?25, etag = ?26, version_id = ?27
                     RETURNING file_id",
                )?,
                file_by_id: conn.prepare(
                    "UPDATE files SET path = ?2, size = ?3, mtime_ns = ?4, head_hash = ?5, tail_hash = ?6,
                        format = ?7, link_types = ?8, packets = ?9, flow_packets = ?10, filtered_packets = ?11,
                        undecodable_packets = ?12, first_ts_ns = ?13, last_ts_ns = ?14, status = ?15,
                        error = ?16, filters = ?17, indexed_bytes = ?18, resume_section = ?19,
                        resume_ts_ns = ?20, indexed_at_ns = ?21, lead_hash = ?22, duplicate_of = ?23,
                        status_at_ns = ?24, timeouts = ?25, out_of_line_ts = ?26, etag = ?27,
                        version_id = ?28
                     WHERE file_id = ?1 RETURNING file_id",
                )?,
                iface: conn.prepare(
                    "INSERT OR REPLACE INTO interfaces (file_id, if_index, link_type, snaplen, ts_resol,
                        ts_offset_s, section_offset, block_offset, big_endian)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                )?,
                flow: conn.prepare(
                    // A flow's row is written again as it grows: only the columns
                    // that can change are updated, so the key indexes are left alone.
                    "INSERT INTO flow_data (flow_id, proto, src_key, src_port, dst_key,
                        dst_port, ethertype, vlan, vlan_inner, first_ts_ns, last_ts_ns, packets_fwd,
                        packets_rev, bytes_fwd, bytes_rev, flags_fwd, flags_rev, src_mac_key,
                        dst_mac_key, files, service, community_id, src_ip6, dst_ip6, first_chunk,
                        payload_fwd, payload_rev, missed_fwd, missed_rev, turned)
                     VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,
                        ?, ?, ?, ?, ?)
                     ON CONFLICT (flow_id) DO UPDATE SET first_ts_ns = excluded.first_ts_ns,
                        last_ts_ns = excluded.last_ts_ns, packets_fwd = excluded.packets_fwd,
                        packets_rev = excluded.packets_rev, bytes_fwd = excluded.bytes_fwd,
                        bytes_rev = excluded.bytes_rev, flags_fwd = excluded.flags_fwd,
                        flags_rev = excluded.flags_rev, src_mac_key = excluded.src_mac_key,
                        dst_mac_key = excluded.dst_mac_key, files = excluded.files,
                        first_chunk = coalesce(first_chunk, excluded.first_chunk),
                        payload_fwd = excluded.payload_fwd, payload_rev = excluded.payload_rev,
                        missed_fwd = excluded.missed_fwd, missed_rev = excluded.missed_rev",
                )?,
                chunk: conn.prepare("INSERT INTO packet_chunks (flow_id, data) VALUES (?, ?)")?,
                flow_files: Vec::new(),
                tracker: conn.prepare("INSERT OR REPLACE INTO tracker_state (id, state) VALUES (1, ?)")?,
                tallies: Default::default(),
                done: false,
            })
        };
        match prepare() {
            Ok(b) => Ok(b),
            Err(e) => {
                let _ = conn.execute_batch("ROLLBACK");
                Err(e.into())
            }
        }
    }

    /// Writes a file's row: the row `f.file_id` names, or (id 0) the current
    /// row of its path, inserted if there is none. Returns its id.
    pub fn put_file(&mut self, f: &FileRow) -> Result<i64> {
        let values = params![
            f.path,
            f.size as i64,
            f.mtime_ns,
            f.head_hash.map(|h| h as i64),
            f.tail_hash.map(|h| h as i64),
            f.format,
            f.link_types,
            f.packets as i64,
            f.flow_packets as i64,
            f.filtered_packets as i64,
            f.undecodable_packets as i64,
            f.first_ts_ns,
            f.last_ts_ns,
            f.status.as_str(),
            f.error,
            f.filters,
            f.indexed_bytes as i64,
            f.resume_section as i64,
            f.resume_ts_ns,
            f.indexed_at_ns,
            f.lead_hash.map(|h| h as i64),
            f.duplicate_of,
            f.status_at_ns,
            f.timeouts,
            f.out_of_line_ts as i64,
            f.etag,
            f.version_id,
        ];
        if f.file_id == 0 {
            return Ok(self.file.query_row(values, |r| r.get(0))?);
        }
        let mut with_id: Vec<&dyn rusqlite::ToSql> = vec![&f.file_id];
        with_id.extend_from_slice(values);
        Ok(self.file_by_id.query_row(&with_id[..], |r| r.get(0))?)
    }

    /// Records a file's interfaces (indexes already stored are replaced).
    pub fn put_interfaces(&mut self, file_id: i64, ifaces: &[Interface]) -> Result<()> {
        for (i, f) in ifaces.iter().enumerate() {
            self.iface.execute(params![
                file_id,
                i as i64,
                f.link_type,
                f.snaplen,
                f.ts_resol,
                f.ts_offset_s,
                f.section_offset as i64,
                f.block_offset as i64,
                f.big_endian,
            ])?;
        }
        Ok(())
    }

    /// Inserts or updates a flow's row; `first_chunk` (the first chunk of
    /// its positions) is stored with the row's first write; `before`: what
    /// the flow's previous row said (None: this is its first), which the
    /// summary's tallies take out before adding this one.
    pub fn put_flow(
        &mut self,
        r: &FlowRecord,
        first_chunk: Option<&[u8]>,
        before: Option<&RowCounts>,
    ) -> Result<()> {
        let k = &r.key;
        let ip = k.kind != KeyKind::L2;
        let ((src, sp), (dst, dp)) = (r.src(), r.dst());
        let port = |p: u16| (ip && k.has_ports).then_some(p);
        let ethertype = match k.kind {
            KeyKind::Ip4 => 0x0800,
            KeyKind::Ip6 => 0x86dd,
            KeyKind::L2 => k.ethertype,
        };
        let tcp = ip && k.proto == 6;
        let flags = |f: u8| tcp.then_some(f);
        let vlans = k.vlans();
        let services: &'a Services = self.services;
        let service = match (ip, port(sp), port(dp)) {
            (true, Some(sp), Some(dp)) => services.guess(k.proto, dp, sp),
            _ => None,
        };
        self.tallies
            .flow(&tallies::Groups::of(r, service), before, &RowCounts::of(r));
        let community_id = r.community_id();
        let payload = r.payload.as_ref();
        let count = |v: Option<u64>| v.map(|n| n as i64);
        execute_typed!(&mut self.flow;
            r.id as i64,
            ip.then_some(k.proto),
            IpKey::of(k.kind, src),
            port(sp),
            IpKey::of(k.kind, dst),
            port(dp),
            ethertype,
            vlans.first(),
            vlans.get(1),
            r.first_ts_ns,
            r.last_ts_ns,
            r.packets[0] as i64,
            r.packets[1] as i64,
            r.bytes[0] as i64,
            r.bytes[1] as i64,
            flags(r.tcp_flags[0]),
            flags(r.tcp_flags[1]),
            r.src_mac.as_ref().map(mac_key),
            r.dst_mac.as_ref().map(mac_key),
            r.files,
            service,
            community_id.as_ref().map(|c| c.as_str()),
            ip6_text(k.kind, src),
            ip6_text(k.kind, dst),
            first_chunk,
            count(payload.map(|p| p.sent[0])),
            count(payload.map(|p| p.sent[1])),
            count(payload.map(|p| p.missed[0])),
            count(payload.map(|p| p.missed[1])),
            r.turned.map(|t| t.code()),
        )?;
        Ok(())
    }

    /// Adds the packets counted since the last commit to `traffic`.
    pub fn put_traffic(&mut self, t: &mut crate::Traffic) -> Result<()> {
        t.save(self.conn)
    }

    /// Records that the flow has packets in these files (at the commit).
    pub fn put_flow_files(
        &mut self,
        flow_id: u64,
        file_ids: impl IntoIterator<Item = u32>,
    ) -> Result<()> {
        self.flow_files
            .extend(file_ids.into_iter().map(|f| (f, flow_id)));
        Ok(())
    }

    /// The `file_flows` pairs gathered, as runs of consecutive flow ids.
    fn save_flow_files(&mut self) -> Result<()> {
        save_file_flows(self.conn, &mut self.flow_files)
    }

    pub fn put_chunk(&mut self, flow_id: u64, data: &[u8]) -> Result<()> {
        execute_typed!(&mut self.chunk; flow_id as i64, data)?;
        Ok(())
    }

    /// Replaces the saved state of the flows that a later run may continue.
    pub fn put_open_flows(&mut self, state: &[u8]) -> Result<()> {
        self.tracker.execute(params![state])?;
        Ok(())
    }

    pub fn commit(mut self) -> Result<()> {
        self.save_flow_files()?;
        self.tallies.save(self.conn)?;
        self.conn.execute_batch("COMMIT")?;
        self.done = true;
        self.checkpointer.wake();
        Ok(())
    }
}
