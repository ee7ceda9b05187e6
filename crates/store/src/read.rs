//! Typed reads, and the query entry points the command line uses.
use pcapidx_capture::Interface;
use pcapidx_flow::{KeyKind, Payload, SavedFlow, ServerPorts, Turned, decode_all};
use pcapidx_positions::Position;
use rusqlite::types::Value;
use rusqlite::{OptionalExtension, Row, params};

use crate::format::{IpKey, mac_from_key};
use crate::{Result, Store, StoreError};

/// What a query visitor is given: the column names once, then each row.
pub enum QueryRow<'a> {
    Columns(&'a [String]),
    Values(&'a [Value]),
}

/// What happened to a file the last time it was examined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileStatus {
    /// Every record indexed.
    Ok,
    /// Indexed up to damage or a cut (see `error`); the records before it are kept.
    Partial,
    /// Could not be read as a capture (bad header, unsupported, I/O error, changed since indexed).
    Error,
    /// Not a capture file at all.
    NotACapture,
    /// Left out on purpose (larger than `--max-file-size`).
    Skipped,
    /// Being indexed, or interrupted: the next run resumes it at `indexed_bytes`.
    Indexing,
    /// Indexed, then gone from its path; its flows stay. Back unchanged, it is `ok` again.
    Missing,
    /// An earlier content of its path (a ring buffer rewrote it); its flows stay.
    Overwritten,
    /// Repeats the indexed content of another file (`duplicate_of`): not indexed again.
    Duplicate,
    /// Removed from the index (`pcapidx forget`, `--retain`): its packets are
    /// gone; the row stays so that the file is not indexed again unless it changes.
    Forgotten,
}

impl FileStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            FileStatus::Ok => "ok",
            FileStatus::Partial => "partial",
            FileStatus::Error => "error",
            FileStatus::NotACapture => "not-a-capture",
            FileStatus::Skipped => "skipped",
            FileStatus::Indexing => "indexing",
            FileStatus::Missing => "missing",
            FileStatus::Overwritten => "overwritten",
            FileStatus::Duplicate => "duplicate",
            FileStatus::Forgotten => "forgotten",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "ok" => FileStatus::Ok,
            "partial" => FileStatus::Partial,
            "error" => FileStatus::Error,
            "not-a-capture" => FileStatus::NotACapture,
            "skipped" => FileStatus::Skipped,
            "indexing" => FileStatus::Indexing,
            "missing" => FileStatus::Missing,
            "overwritten" => FileStatus::Overwritten,
            "duplicate" => FileStatus::Duplicate,
            "forgotten" => FileStatus::Forgotten,
            _ => return None,
        })
    }
}

/// One row of `files`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub file_id: i64,
    pub path: String,
    pub size: u64,
    pub mtime_ns: i64,
    pub head_hash: Option<u64>,
    pub tail_hash: Option<u64>,
    pub format: Option<String>,
    pub link_types: Option<String>,
    pub packets: u64,
    pub flow_packets: u64,
    pub filtered_packets: u64,
    pub undecodable_packets: u64,
    pub first_ts_ns: Option<i64>,
    pub last_ts_ns: Option<i64>,
    pub status: FileStatus,
    pub error: Option<String>,
    pub filters: Option<String>,
    pub indexed_bytes: u64,
    pub resume_section: u64,
    pub resume_ts_ns: i64,
    pub indexed_at_ns: Option<i64>,
    /// xxh3 of the first `LEAD_SPAN` bytes (fewer in a smaller file).
    pub lead_hash: Option<u64>,
    /// `Duplicate`: the file whose content this one repeats.
    pub duplicate_of: Option<i64>,
    /// When `status` last changed.
    pub status_at_ns: Option<i64>,
    /// The flow timeouts in force when it was indexed.
    pub timeouts: Option<String>,
    /// Records whose time was far out of line with their neighbours' (and
    /// was placed beside theirs).
    pub out_of_line_ts: u64,
    /// An object's ETag (its identity; `None` for a local file).
    pub etag: Option<String>,
    /// An object's version id, where the store keeps versions.
    pub version_id: Option<String>,
}

impl FileRow {
    /// A row for a file met for the first time.
    pub fn new(path: String, size: u64, mtime_ns: i64, status: FileStatus) -> Self {
        FileRow {
            file_id: 0,
            path,
            size,
            mtime_ns,
            head_hash: None,
            tail_hash: None,
            format: None,
            link_types: None,
            packets: 0,
            flow_packets: 0,
            filtered_packets: 0,
            undecodable_packets: 0,
            first_ts_ns: None,
            last_ts_ns: None,
            status,
            error: None,
            filters: None,
            indexed_bytes: 0,
            resume_section: 0,
            resume_ts_ns: 0,
            indexed_at_ns: None,
            lead_hash: None,
            duplicate_of: None,
            status_at_ns: None,
            timeouts: None,
            out_of_line_ts: 0,
            etag: None,
            version_id: None,
        }
    }

    /// Whether records of it are in the index (as opposed to a row that only
    /// says why nothing could be read).
    pub fn has_content(&self) -> bool {
        self.indexed_bytes > 0 && self.format.is_some() && self.status != FileStatus::Forgotten
    }
}

const FILE_COLUMNS: &str =
    "file_id, path, size, mtime_ns, head_hash, tail_hash, format, link_types,
    packets, flow_packets, filtered_packets, undecodable_packets, first_ts_ns, last_ts_ns, status,
    error, filters, indexed_bytes, resume_section, resume_ts_ns, indexed_at_ns, lead_hash,
    duplicate_of, status_at_ns, timeouts, out_of_line_ts, etag, version_id";

fn file_row(r: &Row) -> rusqlite::Result<FileRow> {
    let status: String = r.get(14)?;
    Ok(FileRow {
        file_id: r.get(0)?,
        path: r.get(1)?,
        size: r.get::<_, i64>(2)? as u64,
        mtime_ns: r.get(3)?,
        head_hash: r.get::<_, Option<i64>>(4)?.map(|h| h as u64),
        tail_hash: r.get::<_, Option<i64>>(5)?.map(|h| h as u64),
        format: r.get(6)?,
        link_types: r.get(7)?,
        packets: r.get::<_, i64>(8)? as u64,
        flow_packets: r.get::<_, i64>(9)? as u64,
        filtered_packets: r.get::<_, i64>(10)? as u64,
        undecodable_packets: r.get::<_, i64>(11)? as u64,
        first_ts_ns: r.get(12)?,
        last_ts_ns: r.get(13)?,
        status: FileStatus::parse(&status).unwrap_or(FileStatus::Error),
        error: r.get(15)?,
        filters: r.get(16)?,
        indexed_bytes: r.get::<_, i64>(17)? as u64,
        resume_section: r.get::<_, i64>(18)? as u64,
        resume_ts_ns: r.get(19)?,
        indexed_at_ns: r.get(20)?,
        lead_hash: r.get::<_, Option<i64>>(21)?.map(|h| h as u64),
        duplicate_of: r.get(22)?,
        status_at_ns: r.get(23)?,
        timeouts: r.get(24)?,
        out_of_line_ts: r.get::<_, i64>(25)? as u64,
        etag: r.get(26)?,
        version_id: r.get(27)?,
    })
}

/// A flow's row and saved state, back into the tracker's terms.
fn saved_flow(r: &Row, state: Vec<u8>) -> Result<SavedFlow> {
    let id: i64 = r.get(0)?;
    let bad = |what: &str| StoreError::Damaged(format!("open flow {id}: {what}"));
    let proto: Option<i64> = r.get(1)?;
    let mac =
        |i: usize| -> Result<Option<[u8; 6]>> { Ok(r.get::<_, Option<i64>>(i)?.map(mac_from_key)) };
    let (src_mac, dst_mac) = (mac(17)?, mac(18)?);
    let (kind, src, dst) = match proto {
        None => {
            // A layer-2 flow is keyed by its MAC addresses.
            let widen = |m: Option<[u8; 6]>| {
                let mut v = [0u8; 16];
                v[..6].copy_from_slice(&m.unwrap_or_default());
                v
            };
            (KeyKind::L2, widen(src_mac), widen(dst_mac))
        }
        Some(_) => {
            let ip = |i: usize| -> Result<(KeyKind, [u8; 16])> {
                IpKey::from_sql(r.get_ref(i)?)
                    .map(IpKey::to_flow)
                    .ok_or_else(|| bad("bad address key"))
            };
            let ((kind, s), (kind_d, d)) = (ip(2)?, ip(4)?);
            if kind != kind_d {
                return Err(bad("addresses of two families"));
            }
            (kind, s, d)
        }
    };
    let port =
        |i: usize| -> Result<Option<u16>> { Ok(r.get::<_, Option<i64>>(i)?.map(|p| p as u16)) };
    let ports = match (port(3)?, port(5)?) {
        (Some(a), Some(b)) => Some((a, b)),
        _ => None,
    };
    let flags = |i: usize| -> Result<u8> { Ok(r.get::<_, Option<i64>>(i)?.unwrap_or(0) as u8) };
    let u = |i: usize| -> Result<u64> { Ok(r.get::<_, i64>(i)? as u64) };
    Ok(SavedFlow {
        id: id as u64,
        kind,
        proto: proto.unwrap_or(0) as u8,
        src,
        dst,
        ports,
        ethertype: r.get::<_, i64>(6)? as u16,
        vlan: r.get::<_, Option<i64>>(7)?.map(|v| v as u16),
        vlan_inner: r.get::<_, Option<i64>>(8)?.map(|v| v as u16),
        first_ts_ns: r.get(9)?,
        last_ts_ns: r.get(10)?,
        packets: [u(11)?, u(12)?],
        bytes: [u(13)?, u(14)?],
        tcp_flags: [flags(15)?, flags(16)?],
        src_mac,
        dst_mac,
        payload: payload(r)?,
        turned: r
            .get::<_, Option<i64>>(23)?
            .and_then(|c| Turned::from_code(c as u8)),
        state,
    })
}

/// The payload columns of an `open_flows` row (None when any is NULL: a
/// row written before they existed, or a layer-2 flow).
fn payload(r: &rusqlite::Row<'_>) -> Result<Option<Payload>> {
    let mut v = [0u64; 4];
    for (i, slot) in v.iter_mut().enumerate() {
        match r.get::<_, Option<i64>>(19 + i)? {
            Some(n) => *slot = n as u64,
            None => return Ok(None),
        }
    }
    Ok(Some(Payload {
        sent: [v[0], v[1]],
        missed: [v[2], v[3]],
    }))
}

impl Store {
    pub fn file_by_path(&self, path: &str) -> Result<Option<FileRow>> {
        let sql =
            format!("SELECT {FILE_COLUMNS} FROM files WHERE path = ? AND status <> 'overwritten'");
        // Once per file of a run: prepared once.
        let mut st = self.conn.prepare_cached(&sql)?;
        Ok(st.query_row([path], file_row).optional()?)
    }

    /// The file ids `name` designates (`--in-file`): a file id; a path as
    /// `pcapidx files` lists it, or as given here (made absolute); else the
    /// end of one path after a `/` (`cap-003.pcap`). A path names every
    /// content it has had (a ring buffer's earlier ones too).
    pub fn files_named(&self, name: &str) -> Result<Vec<i64>> {
        let ids = |sql: &str, arg: &dyn rusqlite::ToSql| -> Result<Vec<(i64, String)>> {
            let mut st = self.conn.prepare_cached(sql)?;
            let rows = st
                .query_map([arg], |r| Ok((r.get(0)?, r.get(1)?)))?
                .collect::<rusqlite::Result<_>>()?;
            Ok(rows)
        };
        if let Ok(id) = name.parse::<i64>() {
            let found = ids("SELECT file_id, path FROM files WHERE file_id = ?", &id)?;
            if !found.is_empty() {
                return Ok(found.into_iter().map(|f| f.0).collect());
            }
        }
        let by_path = "SELECT file_id, path FROM files WHERE path = ? ORDER BY file_id";
        let mut found = ids(by_path, &name)?;
        if found.is_empty()
            && let Ok(abs) = std::path::absolute(name)
        {
            found = ids(by_path, &abs.to_string_lossy().as_ref())?;
        }
        if found.is_empty() {
            let tail = format!("/{}", name.trim_start_matches('/'));
            found = ids(
                "SELECT file_id, path FROM files
                 WHERE substr(path, -length(?1)) = ?1 ORDER BY file_id",
                &tail,
            )?;
        }
        let mut paths: Vec<&str> = found.iter().map(|f| f.1.as_str()).collect();
        paths.sort_unstable();
        paths.dedup();
        match paths.len() {
            0 => Err(StoreError::NoSuch(format!(
                "no file of the index is named {name:?} (`pcapidx files` lists them)"
            ))),
            1 => Ok(found.into_iter().map(|f| f.0).collect()),
            n => Err(StoreError::NoSuch(format!(
                "{n} files of the index end with {name:?} ({}{}): give more of the path, or the file id",
                paths[..n.min(3)].join(", "),
                if n > 3 { ", ..." } else { "" }
            ))),
        }
    }

    pub fn file_by_id(&self, file_id: i64) -> Result<Option<FileRow>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE file_id = ?");
        Ok(self.conn.query_row(&sql, [file_id], file_row).optional()?)
    }

    /// Indexed contents whose first bytes hash to `lead` (where a new path
    /// may have been copied or moved from), longest first.
    pub fn files_by_lead(&self, lead: u64) -> Result<Vec<FileRow>> {
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE lead_hash = ?
             AND status NOT IN ('overwritten', 'duplicate') ORDER BY indexed_bytes DESC, file_id"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st
            .query_map([lead as i64], file_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The current rows of the paths under the folder `dir` (absolute).
    pub fn files_under(&self, dir: &str) -> Result<Vec<FileRow>> {
        let lo = format!("{}/", dir.trim_end_matches('/'));
        // Every path that starts with `lo` sorts below `lo` with its '/' bumped to '0'.
        let hi = format!("{}0", dir.trim_end_matches('/'));
        let sql = format!(
            "SELECT {FILE_COLUMNS} FROM files WHERE path >= ?1 AND path < ?2
             AND status <> 'overwritten' ORDER BY path"
        );
        let mut st = self.conn.prepare_cached(&sql)?;
        let rows = st
            .query_map([lo, hi], file_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn files(&self) -> Result<Vec<FileRow>> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files ORDER BY file_id");
        let mut st = self.conn.prepare(&sql)?;
        let rows = st
            .query_map([], file_row)?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    pub fn interfaces(&self, file_id: i64) -> Result<Vec<Interface>> {
        let mut st = self.conn.prepare_cached(
            "SELECT link_type, snaplen, ts_resol, ts_offset_s, section_offset, block_offset, big_endian
             FROM interfaces WHERE file_id = ? ORDER BY if_index",
        )?;
        let rows = st
            .query_map([file_id], |r| {
                Ok(Interface {
                    link_type: r.get(0)?,
                    snaplen: r.get(1)?,
                    ts_resol: r.get(2)?,
                    ts_offset_s: r.get(3)?,
                    section_offset: r.get::<_, i64>(4)? as u64,
                    block_offset: r.get::<_, i64>(5)? as u64,
                    big_endian: r.get(6)?,
                })
            })?
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(rows)
    }

    /// The flows a new run may continue: their rows and saved state.
    pub fn open_flows(&self) -> Result<Vec<SavedFlow>> {
        // One read transaction for the lot: one snapshot, and not a lock
        // round trip per flow.
        let tx = self.conn.unchecked_transaction()?;
        let blob: Option<Vec<u8>> = self
            .conn
            .query_row("SELECT state FROM tracker_state WHERE id = 1", [], |r| {
                r.get(0)
            })
            .optional()?;
        let Some(blob) = blob else {
            return Ok(Vec::new());
        };
        let states =
            decode_all(&blob).map_err(|e| StoreError::Damaged(format!("tracker state: {e}")))?;
        let mut st = self.conn.prepare(
            "SELECT flow_id, proto, src_key, src_port, dst_key, dst_port, ethertype, vlan,
                vlan_inner, first_ts_ns, last_ts_ns, packets_fwd, packets_rev, bytes_fwd, bytes_rev,
                flags_fwd, flags_rev, src_mac_key, dst_mac_key, payload_fwd, payload_rev,
                missed_fwd, missed_rev, turned
             FROM flow_data WHERE flow_id = ?",
        )?;
        let mut out = Vec::with_capacity(states.len());
        for (id, state) in states {
            let mut rows = st.query([id as i64])?;
            let r = rows.next()?.ok_or_else(|| {
                StoreError::Damaged(format!("tracker state names flow {id}, which has no row"))
            })?;
            out.push(saved_flow(r, state)?);
        }
        drop(st);
        tx.commit()?;
        Ok(out)
    }

    /// The next unused flow id. Every flow, open or not, has a row from the
    /// commit that first saw it.
    /// The ports that mark a server when orienting flows first seen
    /// mid-stream: the well-known ones and the `services` table's.
    pub fn server_ports(&self) -> ServerPorts {
        ServerPorts::new(self.services.ports())
    }

    pub fn next_flow_id(&self) -> Result<u64> {
        let max: Option<i64> =
            self.conn
                .query_row("SELECT max(flow_id) FROM flow_data", [], |r| r.get(0))?;
        Ok(max.map_or(1, |m| m as u64 + 1))
    }

    pub fn flow_exists(&self, flow_id: u64) -> Result<bool> {
        Ok(self
            .conn
            .query_row(
                "SELECT 1 FROM flow_data WHERE flow_id = ?",
                [flow_id as i64],
                |_| Ok(()),
            )
            .optional()?
            .is_some())
    }

    /// A flow's protocol and endpoints, as the `flows` view shows them.
    pub fn flow_ends(&self, flow_id: u64) -> Result<Option<FlowEnds>> {
        Ok(self
            .conn
            .query_row(
                "SELECT proto, src_ip, src_port, dst_ip, dst_port FROM flows WHERE flow_id = ?",
                [flow_id as i64],
                |r| {
                    Ok(FlowEnds {
                        proto: r.get(0)?,
                        src_ip: r.get(1)?,
                        src_port: r.get(2)?,
                        dst_ip: r.get(3)?,
                        dst_port: r.get(4)?,
                    })
                },
            )
            .optional()?)
    }

    /// Every packet position of a flow, in the order the flow received them.
    pub fn positions(&self, flow_id: u64) -> Result<Vec<Position>> {
        let mut st = self
            .conn
            .prepare_cached("SELECT data FROM flow_chunks WHERE flow_id = ? ORDER BY chunk_id")?;
        let mut rows = st.query(params![flow_id as i64])?;
        let mut out = Vec::new();
        while let Some(r) = rows.next()? {
            let data = r.get_ref(0)?.as_blob().map_err(rusqlite::Error::from)?;
            pcapidx_positions::decode_into(data, &mut out)
                .map_err(|e| StoreError::Damaged(format!("flow {flow_id}: {e}")))?;
        }
        Ok(out)
    }

    /// Checks a `--where` expression on its own, so that a mistake in it is
    /// reported against the expression, not the query built around it.
    pub fn check_where(&self, expr: &str) -> Result<()> {
        match self.conn.prepare(&format!(
            "SELECT flow_id FROM {} WHERE ({expr}\n)",
            crate::FLOW_FILTER
        )) {
            Ok(_) => Ok(()),
            Err(rusqlite::Error::SqlInputError { msg, .. }) => Err(StoreError::Expression(msg)),
            Err(e) => Err(e.into()),
        }
    }

    /// The time of the last packet in the index (None when it has none).
    pub fn last_packet_ns(&self) -> Result<Option<i64>> {
        Ok(self
            .conn
            .query_row("SELECT max(last_ts_ns) FROM files", [], |r| r.get(0))?)
    }

    /// Why a listing of every flow came out empty, in words for the user.
    pub fn why_no_flows(&self) -> Result<String> {
        let (files, in_progress, flows): (i64, i64, i64) = self.conn.query_row(
            "SELECT (SELECT count(*) FROM files),
                    (SELECT count(*) FROM files WHERE status = 'indexing'),
                    (SELECT count(*) FROM flow_data)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )?;
        Ok(if flows > 0 {
            "no flow matches".into()
        } else if in_progress > 0 {
            format!(
                "the index holds nothing yet: {in_progress} file{} being indexed, or left by a run that was interrupted (a running `pcapidx index` commits soon; an interrupted one continues when run again)",
                if in_progress == 1 { " is" } else { "s are" }
            )
        } else if files == 0 {
            "the index holds no files yet: run `pcapidx index PATH`".into()
        } else {
            "the index holds no flows: its files hold no packets, or every packet was left out by --ignore (see `pcapidx files`)".into()
        })
    }

    /// Ids of the flows `pcapidx flows` would list for `q`.
    pub fn flow_ids(&self, q: &crate::FlowQuery) -> Result<Vec<u64>> {
        let (sql, params) = crate::flows_sql(&crate::FlowQuery {
            ids_only: true,
            ..q.clone()
        });
        let mut st = self.conn.prepare(&sql)?;
        let ids = st
            .query_map(rusqlite::params_from_iter(params.iter()), |r| {
                r.get::<_, i64>(0)
            })?
            .map(|r| r.map(|v| v as u64))
            .collect::<rusqlite::Result<Vec<_>>>()?;
        Ok(ids)
    }

    /// Runs a query: `visit` gets the column names first, then each row's
    /// values. An error from `visit` stops the query and is returned as is.
    pub fn query<E: From<StoreError>>(
        &self,
        sql: &str,
        params: &[Value],
        mut visit: impl FnMut(QueryRow<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let sqlite = |e: rusqlite::Error| E::from(StoreError::from(e));
        let mut st = prepare_read_only(&self.conn, sql).map_err(E::from)?;
        let names: Vec<String> = st.column_names().map(str::to_string).collect();
        visit(QueryRow::Columns(&names))?;
        let mut rows = st
            .query(rusqlite::params_from_iter(params.iter()))
            .map_err(sqlite)?;
        let mut values = Vec::with_capacity(names.len());
        while let Some(r) = rows.next().map_err(sqlite)? {
            values.clear();
            for i in 0..names.len() {
                values.push(r.get::<_, Value>(i).map_err(sqlite)?);
            }
            visit(QueryRow::Values(&values))?;
        }
        Ok(())
    }
}

/// A flow's protocol and endpoints (`src` sent its first packet, or is the
/// client the tracker chose).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowEnds {
    /// None for a layer-2 flow.
    pub proto: Option<u8>,
    pub src_ip: Option<String>,
    pub src_port: Option<u16>,
    pub dst_ip: Option<String>,
    pub dst_port: Option<u16>,
}

/// Prepares one statement that only reads. Anything that would write — to
/// the index, or to another file (`VACUUM INTO`, `PRAGMA journal_mode`) —
/// is refused here, before it runs, so it touches nothing (the read-only
/// connection would refuse it too, but only after creating the file or
/// with an I/O error that reads like damage).
fn prepare_read_only<'c>(
    conn: &'c rusqlite::Connection,
    sql: &str,
) -> Result<rusqlite::Statement<'c>> {
    // SQLite prepares an empty text as no statement at all, which answers
    // "API misuse" when run.
    if is_blank_sql(sql) {
        return Err(StoreError::Expression("no SQL statement given".into()));
    }
    let st = match conn.prepare(sql) {
        Ok(st) => st,
        Err(rusqlite::Error::MultipleStatement) => {
            return Err(StoreError::Expression(
                "give one statement at a time (the text holds more than one)".into(),
            ));
        }
        Err(e) => return Err(e.into()),
    };
    if !st.readonly() && !is_pragma_query(sql) {
        return Err(StoreError::ReadOnly(
            "refused, nothing touched: the SQL is read-only and this statement would write (use SELECT, WITH, EXPLAIN, or a PRAGMA that only reads)".into(),
        ));
    }
    Ok(st)
}

/// Only white space and comments.
fn is_blank_sql(sql: &str) -> bool {
    let mut rest = sql.trim_start();
    loop {
        if let Some(r) = rest.strip_prefix("--") {
            rest = r.split_once('\n').map_or("", |(_, r)| r).trim_start();
        } else if let Some(r) = rest.strip_prefix("/*") {
            rest = r.split_once("*/").map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.is_empty();
        }
    }
}

/// `PRAGMA name` with no value: reading a setting (`journal_mode`,
/// `page_size`), which SQLite does not mark read-only because the same
/// pragma given a value writes. Those that act when named alone are left out.
fn is_pragma_query(sql: &str) -> bool {
    let mut words = sql.trim().trim_end_matches(';').split_whitespace();
    let (Some(kw), Some(name), None) = (words.next(), words.next(), words.next()) else {
        return false;
    };
    let name = name.rsplit('.').next().unwrap_or(name).to_ascii_lowercase();
    kw.eq_ignore_ascii_case("pragma")
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && ![
            "optimize",
            "wal_checkpoint",
            "incremental_vacuum",
            "shrink_memory",
        ]
        .contains(&name.as_str())
}
