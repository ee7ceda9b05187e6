//! Carving: writing the packets of some flows as a new capture, by reading
//! their records at the offsets the index holds — never scanning a file.
//!
//! Invariants:
//! - Every source file is checked to be the one indexed (size, and hashes
//!   of its first bytes and of the bytes below the indexed size) and every
//!   record header is checked against the index before the first byte is
//!   written. A file that is gone or changed leaves its packets out and is
//!   reported in `Plan::unavailable`; with no packet left, its error is the
//!   carve's and nothing is written.
//! - Records come out in timestamp order (ties: the file whose first packet
//!   is earlier, then file id, then offset), each with its own timestamp,
//!   original length and captured bytes, never re-encoded beyond the container.
#![forbid(unsafe_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pcapidx_capture::{
    ByteSource, CaptureWriter, FileFormat, Interface, OutputFormat, WriteRecord, fingerprint,
    parse_record, read_record_at, record_span,
};
use pcapidx_positions::Position;
use pcapidx_store::{FileRow, Store, StoreError};
use thiserror::Error;

#[derive(Debug, Error)]
pub enum CarveError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("no flow {0} in the index")]
    NoSuchFlow(u64),
    #[error("{path}: {why}")]
    SourceChanged { path: String, why: String },
    #[error("{path}: {why}")]
    Record { path: String, why: String },
    /// A source file is gone or changed (the message names it).
    #[error("{0}")]
    Unavailable(String),
    #[error("the flows mix link types ({0}); pcap holds one: use --format pcapng")]
    MixedLinkTypes(String),
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The container asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Container {
    /// pcap when every packet has the same link type, pcapng otherwise.
    Auto,
    Pcap,
    PcapNg,
}

/// One packet to write, with where it comes from.
#[derive(Debug, Clone, Copy)]
struct Item {
    pos: Position,
    /// Index into `Plan::files`.
    file: usize,
    /// Output interface (pcapng).
    out_iface: u32,
}

struct Source {
    row: FileRow,
    format: FileFormat,
    ifaces: Vec<Interface>,
    bytes: Arc<dyn ByteSource>,
    /// An object in a bucket: its requests and bytes are counted.
    object: Option<Arc<pcapidx_source::ObjectSource>>,
}

/// Records read ahead together from an object, at most this many bytes'
/// worth: few requests, and memory bounded whatever the carve's size.
const READ_AHEAD_BYTES: u64 = 8 << 20;
const READ_AHEAD_RECORDS: usize = 4096;

/// One record read back from its file.
pub struct Record<'a> {
    pub position: &'a Position,
    pub link_type: u16,
    /// The captured bytes.
    pub data: &'a [u8],
    out_iface: u32,
}

/// Everything checked and ordered, ready to write.
pub struct Plan {
    files: Vec<Source>,
    items: Vec<Item>,
    format: OutputFormat,
    /// pcapng: (link type, if_tsresol) of each output interface.
    out_ifaces: Vec<(u16, u8)>,
    snaplen: u32,
    pub flows: usize,
    /// Source files that could not be used, and their packets left out.
    pub unavailable: Vec<Unavailable>,
    /// Bytes read so far (identity checks, record checks).
    bytes_read: std::cell::Cell<u64>,
}

/// A source file whose packets a carve leaves out.
#[derive(Debug, Clone)]
pub struct Unavailable {
    /// The error that names the file and says why.
    pub error: String,
    pub packets: usize,
}

/// What was written.
#[derive(Debug, Clone, Default)]
pub struct Carved {
    pub flows: usize,
    pub packets: u64,
    /// Captured bytes written.
    pub bytes: u64,
    pub files_read: usize,
    /// Bytes read from source files (records and identity checks).
    pub bytes_read: u64,
    /// Of objects in buckets: requests made, and bytes they returned.
    pub requests: u64,
    pub fetched: u64,
    pub pcapng: bool,
}

fn container_format(row: &FileRow, path: &str) -> Result<FileFormat, CarveError> {
    let changed = |why: &str| CarveError::SourceChanged {
        path: path.to_string(),
        why: why.to_string(),
    };
    let mut f = File::open(path).map_err(|e| changed(&format!("cannot open it: {e}")))?;
    let mut head = [0u8; 4];
    io::Read::read_exact(&mut f, &mut head)
        .map_err(|_| changed("it is now shorter than a capture header"))?;
    match pcapidx_capture::sniff(&head) {
        pcapidx_capture::Sniff::Capture(fmt) if Some(fmt.name()) == row.format.as_deref() => {
            Ok(fmt)
        }
        _ => Err(changed("it is no longer the capture that was indexed")),
    }
}

/// Opens a source file and checks it is the one indexed. A file that only
/// grew since (a capture still being written) is fine.
fn open_source(store: &Store, file_id: u32, bytes_read: &mut u64) -> Result<Source, CarveError> {
    let row = store
        .file_by_id(i64::from(file_id))?
        .ok_or_else(|| StoreError::Damaged(format!("positions refer to unknown file {file_id}")))?;
    let path = row.path.clone();
    let changed = |why: String| CarveError::SourceChanged {
        path: path.clone(),
        why,
    };
    match row.status {
        pcapidx_store::FileStatus::Missing => {
            return Err(changed(
                "missing: no longer at its path since an index run found it gone".into(),
            ));
        }
        pcapidx_store::FileStatus::Overwritten => {
            return Err(changed(
                "overwritten: its path holds other content now (a later file id)".into(),
            ));
        }
        _ => {}
    }
    if pcapidx_source::is_url(&path) {
        return open_object(store, row);
    }
    let file =
        File::open(&path).map_err(|e| changed(format!("cannot open the indexed file: {e}")))?;
    let size = file.metadata()?.len();
    if size < row.indexed_bytes {
        return Err(changed(format!(
            "truncated since it was indexed ({size} bytes now, {} indexed)",
            row.indexed_bytes
        )));
    }
    let fp = fingerprint(&file, row.indexed_bytes)?;
    *bytes_read += 2 * row.indexed_bytes.min(pcapidx_capture::FINGERPRINT_SPAN);
    if Some(fp.head) != row.head_hash || Some(fp.tail) != row.tail_hash {
        return Err(changed("modified or replaced since it was indexed".into()));
    }
    let format = container_format(&row, &path)?;
    let ifaces = store.interfaces(row.file_id)?;
    Ok(Source {
        row,
        format,
        ifaces,
        bytes: Arc::new(file),
        object: None,
    })
}

/// An object: one HEAD says it is still there with the indexed ETag (so a
/// carve of a vanished or replaced object fails before a byte is written);
/// every range read after is conditional on that ETag too.
fn open_object(store: &Store, row: FileRow) -> Result<Source, CarveError> {
    let changed = |why: String| CarveError::SourceChanged {
        path: row.path.clone(),
        why,
    };
    let url = pcapidx_source::ObjectUrl::parse(&row.path).map_err(|e| changed(e.to_string()))?;
    let unwrap = |e: pcapidx_source::SourceError| {
        let text = e.to_string();
        let prefix = format!("{}: ", row.path);
        changed(text.strip_prefix(&prefix).unwrap_or(&text).to_string())
    };
    let now = pcapidx_source::head(&url).map_err(unwrap)?;
    let same = match (&row.etag, &now.etag) {
        (Some(a), Some(b)) => a.trim_matches('"') == b.trim_matches('"'),
        _ => false,
    };
    if !same || now.size < row.indexed_bytes {
        return Err(changed(format!(
            "replaced since it was indexed (ETag {} now, {} indexed)",
            now.etag.as_deref().unwrap_or("none"),
            row.etag.as_deref().unwrap_or("none")
        )));
    }
    let format = match row.format.as_deref() {
        Some("pcapng") => FileFormat::PcapNg,
        _ => {
            // The pcap variant (byte order, resolution) is in its header.
            let obj = pcapidx_source::open(&now).map_err(unwrap)?;
            let head = pcapidx_capture::read_vec(&*obj, 0, 4)?;
            match pcapidx_capture::sniff(&head) {
                pcapidx_capture::Sniff::Capture(f) => f,
                _ => {
                    return Err(changed(
                        "it is no longer the capture that was indexed".into(),
                    ));
                }
            }
        }
    };
    let object = pcapidx_source::open(&now).map_err(unwrap)?;
    let ifaces = store.interfaces(row.file_id)?;
    Ok(Source {
        row,
        format,
        ifaces,
        bytes: object.clone(),
        object: Some(object),
    })
}

/// Packets to keep by time: all by default.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Window {
    /// Keep packets at or after this time (ns since the epoch).
    pub since_ns: Option<i64>,
    /// Keep packets at or before this time.
    pub until_ns: Option<i64>,
}

impl Window {
    fn holds(&self, ts_ns: i64) -> bool {
        self.since_ns.is_none_or(|t| ts_ns >= t) && self.until_ns.is_none_or(|t| ts_ns <= t)
    }
}

/// Looks up the flows, checks their files and orders their packets (those
/// inside `window`), then reads every record's header back: a record that
/// is not the one indexed is an error before anything is written.
pub fn plan(
    store: &Store,
    flow_ids: &[u64],
    container: Container,
    window: Window,
) -> Result<Plan, CarveError> {
    let plan = plan_streaming(store, flow_ids, container, window)?;
    plan.check_records()?;
    Ok(plan)
}

/// As [`plan`], without reading the records ahead: for output that starts
/// at once (a download), each record is checked as it is written, and one
/// that is not the one indexed ends the output with an error. The files'
/// fingerprints (size, first and last indexed bytes) are checked first all
/// the same.
pub fn plan_streaming(
    store: &Store,
    flow_ids: &[u64],
    container: Container,
    window: Window,
) -> Result<Plan, CarveError> {
    let ids: BTreeSet<u64> = flow_ids.iter().copied().collect();
    let mut positions = Vec::new();
    for &id in &ids {
        if !store.flow_exists(id)? {
            return Err(CarveError::NoSuchFlow(id));
        }
        positions.extend(
            store
                .positions(id)?
                .into_iter()
                .filter(|p| window.holds(p.ts_ns)),
        );
    }
    let mut bytes_read = 0;
    let mut files = Vec::new();
    let mut index_of: BTreeMap<u32, usize> = BTreeMap::new();
    // A file that is gone or changed leaves its packets out; the others are
    // carved. With nothing left, its error is the carve's.
    let mut gone: BTreeMap<u32, (CarveError, usize)> = BTreeMap::new();
    for p in &positions {
        if let Some(g) = gone.get_mut(&p.file_id) {
            g.1 += 1;
        } else if let std::collections::btree_map::Entry::Vacant(e) = index_of.entry(p.file_id) {
            match open_source(store, p.file_id, &mut bytes_read) {
                Ok(src) => {
                    e.insert(files.len());
                    files.push(src);
                }
                Err(err @ CarveError::SourceChanged { .. }) => {
                    gone.insert(p.file_id, (err, 1));
                }
                Err(err) => return Err(err),
            }
        }
    }
    positions.retain(|p| !gone.contains_key(&p.file_id));
    if positions.is_empty()
        && let Some((_, (err, _))) = gone.pop_first()
    {
        return Err(err);
    }
    let unavailable: Vec<Unavailable> = gone
        .into_values()
        .map(|(e, packets)| Unavailable {
            error: e.to_string(),
            packets,
        })
        .collect();
    // Output interfaces: one per link type, nanosecond resolution if any
    // source of that link type is finer than a microsecond.
    let mut out_ifaces: Vec<(u16, u8)> = Vec::new();
    let mut items = Vec::with_capacity(positions.len());
    let mut snaplen = 0u32;
    for p in positions {
        let fi = index_of[&p.file_id];
        let src = &files[fi];
        let iface = src
            .ifaces
            .get(p.iface as usize)
            .ok_or_else(|| CarveError::Record {
                path: src.row.path.clone(),
                why: format!(
                    "the index names interface {} of {}",
                    p.iface,
                    src.ifaces.len()
                ),
            })?;
        let resol = if iface.sub_microsecond() { 9 } else { 6 };
        let out_iface = match out_ifaces.iter().position(|o| o.0 == iface.link_type) {
            Some(i) => {
                out_ifaces[i].1 = out_ifaces[i].1.max(resol);
                i
            }
            None => {
                out_ifaces.push((iface.link_type, resol));
                out_ifaces.len() - 1
            }
        };
        snaplen = snaplen.max(iface.snaplen).max(p.caplen);
        items.push(Item {
            pos: p,
            file: fi,
            out_iface: out_iface as u32,
        });
    }
    let key = |i: &Item| {
        let f = &files[i.file].row;
        (
            i.pos.ts_ns,
            f.first_ts_ns.unwrap_or(i64::MIN),
            f.file_id,
            i.pos.offset,
        )
    };
    items.sort_by_key(key);
    items.dedup_by_key(|i| (i.pos.file_id, i.pos.offset));
    let nanos = out_ifaces.iter().any(|o| o.1 == 9);
    let format = match container {
        Container::PcapNg => OutputFormat::PcapNg { big_endian: false },
        _ if out_ifaces.len() <= 1 => OutputFormat::Pcap {
            big_endian: false,
            nanos,
        },
        Container::Auto => OutputFormat::PcapNg { big_endian: false },
        Container::Pcap => {
            let lts: Vec<String> = out_ifaces.iter().map(|o| o.0.to_string()).collect();
            return Err(CarveError::MixedLinkTypes(lts.join(", ")));
        }
    };
    let plan = Plan {
        files,
        items,
        format,
        out_ifaces,
        snaplen: if snaplen == 0 { 262_144 } else { snaplen },
        flows: ids.len(),
        unavailable,
        bytes_read: std::cell::Cell::new(bytes_read),
    };
    Ok(plan)
}

impl Plan {
    pub fn packets(&self) -> usize {
        self.items.len()
    }

    pub fn pcapng(&self) -> bool {
        matches!(self.format, OutputFormat::PcapNg { .. })
    }

    /// Reads each record's header back and checks it against the index
    /// (not an object's: every read of it is conditional on its ETag).
    fn check_records(&self) -> Result<(), CarveError> {
        for it in self
            .items
            .iter()
            .filter(|it| !self.files[it.file].bytes.self_checking())
        {
            self.read(it, None, None)?;
        }
        Ok(())
    }

    /// Reads the record `it` (or parses it from `ahead`, its bytes read in
    /// advance) and checks its header against the index.
    fn read(
        &self,
        it: &Item,
        ahead: Option<&[u8]>,
        data: Option<&mut Vec<u8>>,
    ) -> Result<(), CarveError> {
        let src = &self.files[it.file];
        let p = &it.pos;
        let bad = |why: String| CarveError::Record {
            path: src.row.path.clone(),
            why,
        };
        let iface = src
            .ifaces
            .get(p.iface as usize)
            .ok_or_else(|| bad(format!("no interface {}", p.iface)))?;
        let h = match ahead {
            Some(buf) => parse_record(buf, src.format, iface, p.offset, p.caplen, data),
            None => read_record_at(&*src.bytes, src.format, iface, p.offset, p.caplen, data),
        }
        .map_err(bad)?;
        self.bytes_read.set(self.bytes_read.get() + h.bytes_read);
        if h.caplen != p.caplen || h.orig_len != p.orig_len || h.ts_ns.is_some_and(|t| t != p.ts_ns)
        {
            return Err(bad(format!(
                "the record at byte {} is not the one indexed (modified since it was indexed?)",
                p.offset
            )));
        }
        Ok(())
    }

    /// The records of objects among `items[from..]`, read in advance: as
    /// many as fit the read-ahead, each object's as one list of ranges (so
    /// neighbours share a request). Returns where the window ends, and per
    /// item of it the bytes read (none for a local file's, read one by one).
    #[allow(clippy::type_complexity)]
    fn read_ahead(&self, from: usize) -> Result<(usize, Vec<Option<Vec<u8>>>), CarveError> {
        if self.files.iter().all(|f| f.object.is_none()) {
            return Ok((self.items.len(), Vec::new()));
        }
        let mut end = from;
        let mut bytes = 0u64;
        while end < self.items.len() && end - from < READ_AHEAD_RECORDS && bytes < READ_AHEAD_BYTES
        {
            bytes += u64::from(self.items[end].pos.caplen) + 28;
            end += 1;
        }
        let mut out: Vec<Option<Vec<u8>>> = vec![None; end - from];
        let mut by_file: BTreeMap<usize, Vec<usize>> = BTreeMap::new();
        for (k, it) in self.items[from..end].iter().enumerate() {
            if self.files[it.file].object.is_some() {
                by_file.entry(it.file).or_default().push(k);
            }
        }
        // The objects are read side by side, each with its own requests in
        // flight: the window costs the slowest object's round trips.
        let fetched: Vec<(Vec<usize>, io::Result<Vec<Vec<u8>>>, usize)> =
            std::thread::scope(|scope| {
                let handles: Vec<_> = by_file
                    .into_iter()
                    .map(|(file, ks)| {
                        let src = &self.files[file];
                        let ranges: Vec<std::ops::Range<u64>> = ks
                            .iter()
                            .map(|&k| {
                                let p = &self.items[from + k].pos;
                                p.offset..p.offset + record_span(src.format, p.caplen, true)
                            })
                            .collect();
                        let h = scope.spawn(move || src.bytes.read_ranges(&ranges));
                        (ks, h, file)
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|(ks, h, file)| {
                        let got = h.join().unwrap_or_else(|_| {
                            Err(io::Error::other("a read-ahead thread failed"))
                        });
                        (ks, got, file)
                    })
                    .collect()
            });
        for (ks, got, file) in fetched {
            let src = &self.files[file];
            let got = got.map_err(|e| {
                let text = e.to_string();
                let prefix = format!("{}: ", src.row.path);
                CarveError::SourceChanged {
                    path: src.row.path.clone(),
                    why: text.strip_prefix(&prefix).unwrap_or(&text).to_string(),
                }
            })?;
            for (&k, buf) in ks.iter().zip(got) {
                out[k] = Some(buf);
            }
        }
        Ok((end, out))
    }

    /// Orders the packets as they lie in their files (files by first
    /// packet, then offset): the order a tool reading the files sees, which
    /// decides, say, which of two copies of a TCP segment came first. Carving
    /// orders by timestamp, as `mergecap` does.
    pub fn in_capture_order(mut self) -> Self {
        let files = &self.files;
        self.items.sort_by_key(|i| {
            let f = &files[i.file].row;
            (f.first_ts_ns.unwrap_or(i64::MIN), f.file_id, i.pos.offset)
        });
        self
    }

    /// Reads every record in order, checking each against the index, and
    /// hands it to `f` (its bytes live until the next record): the one way
    /// records come back out, for a capture, a stream or a page.
    pub fn each_record<E: From<CarveError>>(
        &self,
        mut f: impl FnMut(Record<'_>) -> Result<(), E>,
    ) -> Result<(), E> {
        let mut data = Vec::with_capacity(2048);
        let mut from = 0;
        while from < self.items.len() {
            let (end, ahead) = self.read_ahead(from)?;
            for (k, it) in self.items[from..end].iter().enumerate() {
                let pre = ahead.get(k).and_then(|a| a.as_deref());
                self.read(it, pre, Some(&mut data))?;
                let link_type = self.out_ifaces[it.out_iface as usize].0;
                f(Record {
                    position: &it.pos,
                    link_type,
                    data: &data,
                    out_iface: it.out_iface,
                })?;
            }
            from = end;
        }
        Ok(())
    }

    /// Requests made to objects so far, and the bytes they returned.
    pub fn object_traffic(&self) -> (u64, u64) {
        self.files
            .iter()
            .filter_map(|f| f.object.as_ref())
            .map(|o| o.traffic())
            .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
    }

    /// Writes the capture.
    pub fn write<W: Write>(&self, out: W) -> Result<Carved, CarveError> {
        let mut w = match self.format {
            OutputFormat::Pcap { big_endian, nanos } => {
                let lt = self.out_ifaces.first().map_or(1, |o| o.0);
                CaptureWriter::pcap(out, lt, self.snaplen, nanos, big_endian)?
            }
            OutputFormat::PcapNg { big_endian } => {
                let mut w = CaptureWriter::pcapng(out, big_endian)?;
                for &(lt, resol) in &self.out_ifaces {
                    w.add_interface(lt, self.snaplen, resol, 0)?;
                }
                w
            }
        };
        let mut done = Carved {
            flows: self.flows,
            files_read: self.files.len(),
            pcapng: self.pcapng(),
            ..Carved::default()
        };
        self.each_record(|r| -> Result<(), CarveError> {
            w.write(&WriteRecord {
                ts_ns: r.position.ts_ns,
                orig_len: r.position.orig_len,
                data: r.data,
                iface: r.out_iface,
            })?;
            done.packets += 1;
            done.bytes += r.data.len() as u64;
            Ok(())
        })?;
        w.finish()?;
        done.bytes_read = self.bytes_read.get();
        (done.requests, done.fetched) = self.object_traffic();
        Ok(done)
    }
}

/// Where `-o PATH` really writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutputTarget {
    /// A regular file (or none yet) at this path, a symlink's final target
    /// when `-o` named a link: written beside it and renamed over it.
    Replace(PathBuf),
    /// Anything else that exists (a FIFO, a character device such as
    /// `/dev/null`, a socket, `/dev/stdout`, `/dev/fd/N`): opened and
    /// written in place, as `tcpdump -w` does, since replacing it would
    /// destroy the device or leave its reader waiting forever.
    InPlace(PathBuf),
}

/// Decides how `-o path` is written (see [`OutputTarget`]).
pub fn output_target(path: &Path) -> io::Result<OutputTarget> {
    // `/dev/fd/N` and `/proc/self/fd/N` name open descriptors: their links
    // cannot be followed by name to a place where a rename would mean
    // anything (a pipe has no folder), so they are always written in place.
    let abs = std::path::absolute(path)?;
    let descriptor = ["/dev/stdout", "/dev/stderr", "/dev/fd"]
        .iter()
        .any(|d| abs.starts_with(d))
        || (abs.starts_with("/proc") && abs.components().any(|c| c.as_os_str() == "fd"));
    if descriptor {
        return Ok(OutputTarget::InPlace(path.to_path_buf()));
    }
    match std::fs::metadata(path) {
        Ok(m) if !m.is_file() && !m.is_dir() => {
            return Ok(OutputTarget::InPlace(path.to_path_buf()));
        }
        Ok(m) if m.is_dir() => {
            return Err(io::Error::new(
                io::ErrorKind::IsADirectory,
                "it is a folder: name a file inside it",
            ));
        }
        _ => {}
    }
    Ok(OutputTarget::Replace(final_target(&abs)?))
}

/// The path a chain of symbolic links ends at (the path itself when it is
/// not a link; a dangling link's target, which the rename then creates).
fn final_target(path: &Path) -> io::Result<PathBuf> {
    let mut p = path.to_path_buf();
    // As the kernel does (MAXSYMLINKS): past 40 links it is a loop.
    for _ in 0..40 {
        match std::fs::symlink_metadata(&p) {
            Ok(m) if m.file_type().is_symlink() => {
                let target = std::fs::read_link(&p)?;
                p = match p.parent() {
                    Some(dir) if target.is_relative() => dir.join(target),
                    _ => target,
                };
            }
            _ => return Ok(p),
        }
    }
    Err(io::Error::other("too many levels of symbolic links"))
}

/// Writes to `path`: a regular file through a temporary file beside it,
/// renamed at the end, so a failure never leaves a half-written capture
/// under the name asked for; a device, FIFO or descriptor in place.
pub fn write_file(plan: &Plan, path: &Path) -> Result<Carved, CarveError> {
    match output_target(path)? {
        OutputTarget::InPlace(p) => {
            // Truncation is what `tcpdump -w /dev/stdout` does to a file
            // behind a descriptor; devices and FIFOs ignore it.
            let f = std::fs::OpenOptions::new()
                .write(true)
                .truncate(true)
                .open(&p)?;
            let mut out = io::BufWriter::with_capacity(1 << 16, f);
            let carved = plan.write(&mut out)?;
            out.flush()?;
            Ok(carved)
        }
        OutputTarget::Replace(p) => replace_file(plan, &p),
    }
}

fn replace_file(plan: &Plan, path: &Path) -> Result<Carved, CarveError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .map_or_else(|| "carve".into(), |n| n.to_string_lossy().into_owned());
    let tmp: PathBuf = dir.join(format!(".{name}.pcapidx-{}.tmp", std::process::id()));
    let result = (|| {
        let f = File::create(&tmp)?;
        // A file that is replaced keeps its permissions (a umask-made
        // temporary file would otherwise loosen or tighten them).
        if let Ok(m) = std::fs::metadata(path) {
            f.set_permissions(m.permissions())?;
        }
        let carved = plan.write(io::BufWriter::with_capacity(1 << 16, &f))?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)?;
        Ok(carved)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tmp(name: &str) -> PathBuf {
        let d = std::env::temp_dir().join(format!("pcapidx-carve-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn output_targets_follow_links_and_keep_devices() {
        let d = tmp("targets");
        let plain = d.join("a.pcap");
        assert_eq!(
            output_target(&plain).unwrap(),
            OutputTarget::Replace(plain.clone())
        );
        std::fs::write(d.join("real.pcap"), b"x").unwrap();
        std::os::unix::fs::symlink("real.pcap", d.join("link.pcap")).unwrap();
        std::os::unix::fs::symlink("link.pcap", d.join("link2.pcap")).unwrap();
        assert_eq!(
            output_target(&d.join("link2.pcap")).unwrap(),
            OutputTarget::Replace(d.join("real.pcap"))
        );
        std::os::unix::fs::symlink("gone.pcap", d.join("dangling.pcap")).unwrap();
        assert_eq!(
            output_target(&d.join("dangling.pcap")).unwrap(),
            OutputTarget::Replace(d.join("gone.pcap"))
        );
        std::os::unix::fs::symlink("loop", d.join("loop")).unwrap();
        assert!(output_target(&d.join("loop")).is_err());
        assert!(output_target(&d).is_err());
        for dev in ["/dev/null", "/dev/stdout", "/dev/fd/1", "/proc/self/fd/1"] {
            assert_eq!(
                output_target(Path::new(dev)).unwrap(),
                OutputTarget::InPlace(dev.into())
            );
        }
    }
}
