//! `pcapidx export DEST`: the index's flows and files as Parquet, in hive
//! partitions that many sensors can write side by side:
//!
//! ```text
//! DEST/flows/sensor=<id>/date=YYYY-MM-DD/hour=HH/v<export>-<n>.parquet
//! DEST/files/sensor=<id>/v<export>-<n>.parquet
//! DEST/packets/sensor=<id>/date=YYYY-MM-DD/hour=HH/v<export>-<n>.parquet  (packets)
//! ```
//!
//! Exports are incremental: each writes the flows new since the last one and
//! the flows that were still open then (again, with a higher
//! `export_version`), and never touches an earlier file (but `compact`, which
//! merges a partition's files into one, rows unchanged); the latest version
//! of each (`sensor`, `flow_id`) is the flow. Rows keep the `flows` view's
//! column names; times are TIMESTAMP(NANOS, UTC).
#![forbid(unsafe_code)]

mod compact;

pub use compact::{Compacted, compact};

use std::collections::HashSet;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{
    FixedSizeBinaryBuilder, Int64Builder, ListBuilder, StringBuilder, TimestampNanosecondBuilder,
};
use arrow_array::{ArrayRef, RecordBatch};
use arrow_schema::{DataType, Field, Schema, TimeUnit};
use parquet::arrow::ArrowWriter;
use parquet::basic::Compression;
use parquet::file::properties::WriterProperties;
use pcapidx_store::{ExportState, QueryRow, Store, StoreError, Value};
use thiserror::Error;

/// Written into every file's key-value metadata.
pub const PARQUET_SCHEMA_VERSION: &str = "3";

/// Rows per row group (and the most held in memory at once).
const ROW_GROUP: usize = 65_536;

#[derive(Debug, Error)]
pub enum ExportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Parquet(#[from] parquet::errors::ParquetError),
    #[error(transparent)]
    Arrow(#[from] arrow_schema::ArrowError),
    #[error("{0}")]
    Object(String),
    #[error("{path}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// What an export wrote.
#[derive(Debug, Default)]
pub struct Exported {
    pub sensor: String,
    pub version: u64,
    /// Flow rows written (new flows, and open ones written again).
    pub flows: u64,
    /// Packet rows written (`--packets`: the packets of those flows).
    pub packets: u64,
    pub files: Vec<PathBuf>,
}

/// The flows columns and their Parquet types, in the `flows` view's order.
const TEXT: &[&str] = &[
    "src_ip",
    "dst_ip",
    "tcp_flags_fwd",
    "tcp_flags_rev",
    "src_mac",
    "dst_mac",
    "service",
    "community_id",
    "turned",
    "path",
    "format",
    "link_types",
    "status",
    "error",
    "filters",
    "timeouts",
    "direction",
    "etag",
    "version_id",
];

fn kind(column: &str) -> DataType {
    if column == "src_key" || column == "dst_key" {
        // 16 bytes, IPv4 as ::ffff:a.b.c.d: sorts and range-scans across families.
        DataType::FixedSizeBinary(16)
    } else if column == "file_paths" {
        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
    } else if TEXT.contains(&column) {
        DataType::Utf8
    } else if column.ends_with("_ts_ns")
        || column.ends_with("_at_ns")
        || column == "mtime_ns"
        || column == "ts_ns"
    {
        DataType::Timestamp(TimeUnit::Nanosecond, Some("UTC".into()))
    } else {
        DataType::Int64
    }
}

/// What to export beside the flows and files.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// The packets of the flows written (their positions), by the hour of
    /// each packet.
    pub packets: bool,
}

/// Names already taken where the export goes: an earlier file is never
/// rewritten. Local files are looked at; an object-store DEST's keys are
/// listed once, relative to the staging folder its files are written in.
struct Taken {
    root: PathBuf,
    remote: HashSet<String>,
}

impl Taken {
    fn local(root: &Path) -> Self {
        Taken {
            root: root.to_path_buf(),
            remote: HashSet::new(),
        }
    }

    fn free(&self, p: &Path) -> bool {
        let remote = p
            .strip_prefix(&self.root)
            .ok()
            .and_then(|r| r.to_str())
            .is_some_and(|r| self.remote.contains(r));
        !remote && !p.exists()
    }
}

/// Exports what changed since the last export of `store` into `dest`.
pub fn export(store: &Store, dest: &Path, opts: Options) -> Result<Exported, ExportError> {
    let (out, state) = write_export(store, dest, opts, &Taken::local(dest))?;
    // Recorded last: an export that failed half way is done again whole.
    store.set_export_state(&state)?;
    Ok(out)
}

/// Exports into an object-store DEST (`s3://BUCKET/PREFIX/`): the files are
/// written in a staging folder, then each is uploaded as a new object (the
/// store refuses to replace one) and removed; the export is recorded once
/// all are up. `Exported::files` are their URLs.
pub fn export_to_objects(
    store: &Store,
    dest: &str,
    opts: Options,
) -> Result<Exported, ExportError> {
    let object = |e: pcapidx_source::SourceError| ExportError::Object(e.to_string());
    let url = pcapidx_source::ObjectUrl::parse(dest).map_err(object)?;
    if url.is_http() {
        return Err(ExportError::Object(format!(
            "{dest}: a web server is read, not written: export to a folder or s3://"
        )));
    }
    let remote = pcapidx_source::keys_under(&url).map_err(object)?;
    let staging = Staging::new()?;
    let taken = Taken {
        root: staging.0.clone(),
        remote: remote.into_iter().collect(),
    };
    let (mut out, state) = write_export(store, &staging.0, opts, &taken)?;
    let base = url.key.trim_end_matches('/');
    let mut urls = Vec::with_capacity(out.files.len());
    for f in &out.files {
        let rel = f
            .strip_prefix(&staging.0)
            .ok()
            .and_then(|r| r.to_str())
            .ok_or_else(|| ExportError::Object(format!("{}: not a staged file", f.display())))?;
        let key = if base.is_empty() {
            rel.to_string()
        } else {
            format!("{base}/{rel}")
        };
        let to = url.with_key(&key);
        pcapidx_source::upload(f, &to).map_err(object)?;
        let _ = std::fs::remove_file(f);
        urls.push(PathBuf::from(to.to_string()));
    }
    out.files = urls;
    store.set_export_state(&state)?;
    Ok(out)
}

/// A staging folder, removed with what is left in it when dropped.
struct Staging(PathBuf);

impl Staging {
    fn new() -> Result<Self, ExportError> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let p = std::env::temp_dir().join(format!("pcapidx-export-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&p).map_err(|source| ExportError::Io {
            path: p.clone(),
            source,
        })?;
        Ok(Staging(p))
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Writes the export's files into `dest`; returns what was written and the
/// export state to record once they are all where they belong.
fn write_export(
    store: &Store,
    dest: &Path,
    opts: Options,
    taken: &Taken,
) -> Result<(Exported, ExportState), ExportError> {
    let sensor = store.ensure_sensor(None)?;
    let before = store.export_state()?;
    let version = before.version + 1;
    let open_now = store.open_flow_ids()?;
    let mut out = Exported {
        sensor: sensor.clone(),
        version,
        ..Exported::default()
    };
    // New flows, and those open at the last export, by first time (so that
    // each hour's rows come together).
    let open_list = before
        .open
        .iter()
        .map(u64::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let chosen = |col: &str| format!("{col} > {} OR {col} IN ({open_list})", before.max_flow_id);
    let sql = format!(
        "SELECT {}, src_key, dst_key, {version} AS export_version FROM flows
         WHERE {} ORDER BY first_ts_ns, flow_id",
        pcapidx_store::FLOW_COLUMNS,
        chosen("flow_id"),
    );
    // What a carve needs to find each flow's packets again: its files' paths
    // (from `file_flows`, one pass over the flows exported).
    let paths = file_paths(store, &chosen("ff.flow_id"))?;
    let flows_dir = dest.join("flows").join(format!("sensor={sensor}"));
    let mut part: Option<Part> = None;
    let mut max_id = before.max_flow_id;
    let mut columns: Vec<String> = Vec::new();
    let r = store.query::<ExportError>(&sql, &[], |row| {
        match row {
            QueryRow::Columns(c) => {
                columns = c.to_vec();
                columns.push("file_paths".into());
            }
            QueryRow::Values(v) => {
                let id = match v.get(column(&columns, "flow_id")) {
                    Some(Value::Integer(id)) => *id as u64,
                    _ => 0,
                };
                let mut v = v.to_vec();
                v.push(paths.get(&id).map_or(Value::Null, |p| {
                    Value::Text(serde_json::Value::from(p.clone()).to_string())
                }));
                let v = &v[..];
                let ts = match v.get(column(&columns, "first_ts_ns")) {
                    Some(Value::Integer(t)) => *t,
                    _ => 0,
                };
                if let Some(Value::Integer(id)) = v.get(column(&columns, "flow_id")) {
                    max_id = max_id.max(*id as u64);
                }
                let (date, hour) = date_hour(ts);
                let dir = flows_dir
                    .join(format!("date={date}"))
                    .join(format!("hour={hour:02}"));
                if part.as_ref().is_none_or(|p| p.dir != dir) {
                    if let Some(p) = part.take() {
                        out.files.push(p.finish()?);
                    }
                    part = Some(Part::new(dir, format!("v{version:06}"), &columns, taken)?);
                }
                if let Some(p) = part.as_mut() {
                    p.push(v)?;
                }
                out.flows += 1;
            }
        }
        Ok(())
    });
    r?;
    if let Some(p) = part.take() {
        out.files.push(p.finish()?);
    }
    if opts.packets {
        out.packets = export_packets(
            store,
            dest,
            &sensor,
            version,
            &chosen("p.flow_id"),
            &mut out.files,
            taken,
        )?;
    }
    // The files table, whole, each time (it is small, and statuses change).
    let files_dir = dest.join("files").join(format!("sensor={sensor}"));
    let mut files_part: Option<Part> = None;
    let mut cols = Vec::new();
    store.query::<ExportError>("SELECT * FROM files ORDER BY file_id", &[], |row| {
        match row {
            QueryRow::Columns(c) => {
                cols = c.to_vec();
                files_part = Some(Part::new(
                    files_dir.clone(),
                    format!("v{version:06}"),
                    &cols,
                    taken,
                )?);
            }
            QueryRow::Values(v) => {
                if let Some(p) = files_part.as_mut() {
                    p.push(v)?;
                }
            }
        }
        Ok(())
    })?;
    if let Some(p) = files_part.take() {
        out.files.push(p.finish()?);
    }
    let state = ExportState {
        version,
        max_flow_id: max_id,
        open: open_now,
    };
    Ok((out, state))
}

/// Most packet partitions (hours) open at once; more, and the oldest one's
/// file is finished (a later packet of that hour starts another).
const OPEN_PACKET_PARTS: usize = 32;

/// The packets of the flows `chosen` (a condition on `p.flow_id`) selects, into
/// `packets/sensor=S/date=D/hour=H/` by each packet's hour; returns how many.
fn export_packets(
    store: &Store,
    dest: &Path,
    sensor: &str,
    version: u64,
    chosen: &str,
    written: &mut Vec<PathBuf>,
    taken: &Taken,
) -> Result<u64, ExportError> {
    let sql = format!(
        "SELECT p.flow_id, p.file_id, f.path, p.offset, p.ts_ns, p.caplen, p.orig_len,
            p.direction, p.iface, {version} AS export_version
         FROM packets p JOIN files f USING (file_id) WHERE {}",
        chosen
    );
    let base = dest.join("packets").join(format!("sensor={sensor}"));
    // Open parts by (date, hour), with the last use of each.
    let mut parts: std::collections::HashMap<(String, u32), (Part, u64)> = Default::default();
    let (mut columns, mut n, mut clock) = (Vec::new(), 0u64, 0u64);
    store.query::<ExportError>(&sql, &[], |row| {
        match row {
            QueryRow::Columns(c) => columns = c.to_vec(),
            QueryRow::Values(v) => {
                let ts = match v.get(column(&columns, "ts_ns")) {
                    Some(Value::Integer(t)) => *t,
                    _ => 0,
                };
                let key = date_hour(ts);
                clock += 1;
                if !parts.contains_key(&key) {
                    if parts.len() >= OPEN_PACKET_PARTS
                        && let Some(oldest) = parts
                            .iter()
                            .min_by_key(|(_, (_, at))| *at)
                            .map(|(k, _)| k.clone())
                        && let Some((p, _)) = parts.remove(&oldest)
                    {
                        written.push(p.finish()?);
                    }
                    let dir = base
                        .join(format!("date={}", key.0))
                        .join(format!("hour={:02}", key.1));
                    let part = Part::new(dir, format!("v{version:06}"), &columns, taken)?;
                    parts.insert(key.clone(), (part, clock));
                }
                if let Some((p, at)) = parts.get_mut(&key) {
                    *at = clock;
                    p.push(v)?;
                }
                n += 1;
            }
        }
        Ok(())
    })?;
    let mut rest: Vec<_> = parts.into_iter().collect();
    rest.sort_by(|a, b| a.0.cmp(&b.0));
    for (_, (p, _)) in rest {
        written.push(p.finish()?);
    }
    Ok(n)
}

/// The paths of the files of each flow `chosen` (an SQL condition on
/// `ff.flow_id`) selects, in file id order.
fn file_paths(
    store: &Store,
    chosen: &str,
) -> Result<std::collections::HashMap<u64, Vec<String>>, ExportError> {
    let mut out: std::collections::HashMap<u64, Vec<String>> = Default::default();
    let sql = format!(
        "SELECT ff.flow_id, f.path FROM file_flows ff JOIN files f USING (file_id)
         WHERE {} ORDER BY ff.flow_id, ff.file_id",
        chosen
    );
    store.query::<ExportError>(&sql, &[], |row| {
        if let QueryRow::Values(v) = row
            && let (Some(Value::Integer(id)), Some(Value::Text(path))) = (v.first(), v.get(1))
        {
            out.entry(*id as u64).or_default().push(path.clone());
        }
        Ok(())
    })?;
    Ok(out)
}

fn column(columns: &[String], name: &str) -> usize {
    columns.iter().position(|c| c == name).unwrap_or(usize::MAX)
}

/// UTC date and hour of a time in ns since the epoch.
fn date_hour(ns: i64) -> (String, u32) {
    let secs = ns.div_euclid(1_000_000_000);
    let days = secs.div_euclid(86_400);
    let hour = (secs.rem_euclid(86_400) / 3600) as u32;
    let (y, m, d) = pcapidx_store::civil_from_days(days);
    (format!("{y:04}-{m:02}-{d:02}"), hour)
}

/// How every file pcapidx writes is written: Snappy, and the schema
/// version in the key-value metadata.
fn writer_properties() -> WriterProperties {
    WriterProperties::builder()
        .set_compression(Compression::SNAPPY)
        .set_key_value_metadata(Some(vec![parquet::file::metadata::KeyValue::new(
            "pcapidx.schema_version".into(),
            PARQUET_SCHEMA_VERSION.to_string(),
        )]))
        .build()
}

/// One Parquet file being written, a row group at a time.
struct Part {
    dir: PathBuf,
    path: PathBuf,
    schema: Arc<Schema>,
    writer: ArrowWriter<File>,
    rows: Vec<Vec<Value>>,
}

impl Part {
    fn new(
        dir: PathBuf,
        stem: String,
        columns: &[String],
        taken: &Taken,
    ) -> Result<Part, ExportError> {
        std::fs::create_dir_all(&dir).map_err(|source| ExportError::Io {
            path: dir.clone(),
            source,
        })?;
        // A name not taken yet: an earlier file is never rewritten.
        let mut n = 0;
        let path = loop {
            let p = dir.join(format!("{stem}-{n}.parquet"));
            if taken.free(&p) {
                break p;
            }
            n += 1;
        };
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| Field::new(c, kind(c), true))
                .collect::<Vec<_>>(),
        ));
        let file = File::create(&path).map_err(|source| ExportError::Io {
            path: path.clone(),
            source,
        })?;
        let writer = ArrowWriter::try_new(file, schema.clone(), Some(writer_properties()))?;
        Ok(Part {
            dir,
            path,
            schema,
            writer,
            rows: Vec::new(),
        })
    }

    fn push(&mut self, row: &[Value]) -> Result<(), ExportError> {
        self.rows.push(row.to_vec());
        if self.rows.len() >= ROW_GROUP {
            self.flush()?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), ExportError> {
        if self.rows.is_empty() {
            return Ok(());
        }
        let arrays: Vec<ArrayRef> = self
            .schema
            .fields()
            .iter()
            .enumerate()
            .map(|(i, f)| array(f.data_type(), self.rows.iter().map(|r| &r[i])))
            .collect();
        let batch = RecordBatch::try_new(self.schema.clone(), arrays)?;
        self.writer.write(&batch)?;
        self.writer.flush()?;
        self.rows.clear();
        Ok(())
    }

    fn finish(mut self) -> Result<PathBuf, ExportError> {
        self.flush()?;
        self.writer.close()?;
        Ok(self.path)
    }
}

fn array<'a>(t: &DataType, values: impl Iterator<Item = &'a Value>) -> ArrayRef {
    match t {
        DataType::Utf8 => {
            let mut b = StringBuilder::new();
            for v in values {
                match v {
                    Value::Text(s) => b.append_value(s),
                    Value::Integer(i) => b.append_value(i.to_string()),
                    Value::Real(f) => b.append_value(f.to_string()),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::FixedSizeBinary(n) => {
            let mut b = FixedSizeBinaryBuilder::new(*n);
            for v in values {
                let key = match v {
                    Value::Integer(i) => {
                        let mut k = [0u8; 16];
                        k[10] = 0xff;
                        k[11] = 0xff;
                        k[12..].copy_from_slice(&(*i as u32).to_be_bytes());
                        Some(k)
                    }
                    Value::Blob(b) => <[u8; 16]>::try_from(b.as_slice()).ok(),
                    _ => None,
                };
                match key {
                    Some(k) => b.append_value(k).unwrap_or_else(|_| b.append_null()),
                    None => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        DataType::List(_) => {
            let mut b = ListBuilder::new(StringBuilder::new());
            for v in values {
                let items: Option<Vec<String>> = match v {
                    Value::Text(t) => serde_json::from_str(t).ok(),
                    _ => None,
                };
                match items {
                    Some(items) => {
                        for i in items {
                            b.values().append_value(i);
                        }
                        b.append(true);
                    }
                    None => b.append(false),
                }
            }
            Arc::new(b.finish())
        }
        DataType::Timestamp(_, tz) => {
            let mut b = TimestampNanosecondBuilder::new().with_timezone_opt(tz.clone());
            for v in values {
                match v {
                    Value::Integer(i) => b.append_value(*i),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
        _ => {
            let mut b = Int64Builder::new();
            for v in values {
                match v {
                    Value::Integer(i) => b.append_value(*i),
                    Value::Real(f) => b.append_value(*f as i64),
                    _ => b.append_null(),
                }
            }
            Arc::new(b.finish())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_hours_are_utc_civil_time() {
        assert_eq!(date_hour(0), ("1970-01-01".into(), 0));
        // 2024-03-01T01:00:00.123Z
        assert_eq!(
            date_hour(1_709_254_800_123_456_000),
            ("2024-03-01".into(), 1)
        );
        // 2000-02-29T23:59:59Z (a leap day)
        assert_eq!(
            date_hour(951_868_799_000_000_000),
            ("2000-02-29".into(), 23)
        );
        assert_eq!(date_hour(-1), ("1969-12-31".into(), 23));
    }
}

/// One row of a flow list that a central query selected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wanted {
    pub sensor: Option<String>,
    pub flow_id: u64,
}

/// Reads (`sensor`, `flow_id`) rows from a query result: Parquet (by its
/// magic), JSON (an array of objects), JSON lines, or CSV with a header
/// row (`flow_id` required, `sensor` optional); `-` is standard input.
pub fn read_flow_list(path: &Path) -> Result<Vec<Wanted>, String> {
    let bytes = if path.as_os_str() == "-" {
        let mut b = Vec::new();
        std::io::Read::read_to_end(&mut std::io::stdin(), &mut b).map_err(|e| e.to_string())?;
        b
    } else {
        std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?
    };
    if bytes.starts_with(b"PAR1") {
        return parquet_list(bytes);
    }
    let text = String::from_utf8(bytes).map_err(|_| "not UTF-8 text, nor Parquet".to_string())?;
    let t = text.trim_start();
    if t.starts_with('[') || t.starts_with('{') {
        let rows: Vec<serde_json::Value> = if t.starts_with('[') {
            serde_json::from_str(t).map_err(|e| format!("JSON: {e}"))?
        } else {
            t.lines()
                .filter(|l| !l.trim().is_empty())
                .map(serde_json::from_str)
                .collect::<Result<_, _>>()
                .map_err(|e| format!("JSON lines: {e}"))?
        };
        return rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let flow_id = r["flow_id"]
                    .as_u64()
                    .ok_or_else(|| format!("row {}: no flow_id number", i + 1))?;
                let sensor = r["sensor"].as_str().map(str::to_string);
                Ok(Wanted { sensor, flow_id })
            })
            .collect();
    }
    let mut lines = t.lines().filter(|l| !l.trim().is_empty());
    let head: Vec<String> = lines
        .next()
        .unwrap_or("")
        .split(',')
        .map(|h| h.trim().trim_matches('"').to_string())
        .collect();
    let id_at = head
        .iter()
        .position(|h| h == "flow_id")
        .ok_or("CSV: the header row has no flow_id column")?;
    let sensor_at = head.iter().position(|h| h == "sensor");
    lines
        .enumerate()
        .map(|(i, l)| {
            let cells: Vec<&str> = l.split(',').map(|c| c.trim().trim_matches('"')).collect();
            let flow_id = cells
                .get(id_at)
                .and_then(|c| c.parse().ok())
                .ok_or_else(|| format!("CSV line {}: no flow_id number", i + 2))?;
            let sensor = sensor_at
                .and_then(|s| cells.get(s))
                .map(|s| s.to_string())
                .filter(|s| !s.is_empty());
            Ok(Wanted { sensor, flow_id })
        })
        .collect()
}

fn parquet_list(bytes: Vec<u8>) -> Result<Vec<Wanted>, String> {
    use arrow_array::{Array, Int64Array, StringArray};
    let reader = parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
        bytes::Bytes::from(bytes),
    )
    .and_then(|b| b.build())
    .map_err(|e| format!("Parquet: {e}"))?;
    let mut out = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| format!("Parquet: {e}"))?;
        let ids = batch
            .column_by_name("flow_id")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>().cloned())
            .ok_or("Parquet: no integer flow_id column")?;
        let sensors = batch
            .column_by_name("sensor")
            .and_then(|c| c.as_any().downcast_ref::<StringArray>().cloned());
        for i in 0..ids.len() {
            if ids.is_null(i) {
                continue;
            }
            out.push(Wanted {
                sensor: sensors
                    .as_ref()
                    .filter(|s| !s.is_null(i))
                    .map(|s| s.value(i).to_string()),
                flow_id: ids.value(i) as u64,
            });
        }
    }
    Ok(out)
}
