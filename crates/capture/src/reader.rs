//! The streaming reader: fills large buffers, frames every complete record in
//! them and hands each buffer over as a [`Chunk`] together with the records'
//! metadata. A record never straddles two chunks (the partial tail is carried
//! into the next buffer), so consumers get plain slices. Reading stops at the
//! size the file had when it was opened, so a capture still being written is
//! read up to a consistent point and resumed on a later run.
use std::fs::File;
use std::io::{self, Read};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::error::{OpenError, ReadError, ReadErrorKind};
use crate::pcap::{FILE_HEADER_LEN, PcapFramer, Step};
use crate::pcapng::{NgFramer, SectionError};
use crate::source::{ByteSource, read_vec};
use crate::{FileFormat, Interface, MAX_BLOCK, RecordMeta, Sniff, sniff};

/// Default bytes read per chunk.
pub const DEFAULT_CHUNK: usize = 1 << 20;

/// Recycles chunk buffers: fresh multi-megabyte allocations cost page faults.
#[derive(Default)]
struct BufPool {
    free: Mutex<Vec<Vec<u8>>>,
}

impl BufPool {
    fn get(&self, cap: usize) -> Vec<u8> {
        let mut v = self
            .free
            .lock()
            .ok()
            .and_then(|mut f| f.pop())
            .unwrap_or_default();
        v.clear();
        v.reserve(cap);
        v
    }

    fn put(&self, v: Vec<u8>) {
        if let Ok(mut f) = self.free.lock()
            && f.len() < 16
        {
            f.push(v);
        }
    }
}

/// A buffer of complete records. Dropping it returns the buffer for reuse.
pub struct Chunk {
    buf: Vec<u8>,
    pool: Arc<BufPool>,
    pub records: Vec<RecordMeta>,
}

impl Chunk {
    /// The captured bytes of `r`, which must be one of this chunk's records.
    #[inline]
    pub fn data(&self, r: &RecordMeta) -> &[u8] {
        let start = r.data_start as usize;
        self.buf
            .get(start..start + r.caplen as usize)
            .unwrap_or_default()
    }
}

impl Drop for Chunk {
    fn drop(&mut self) {
        self.pool.put(std::mem::take(&mut self.buf));
    }
}

/// Where to continue reading a file: the end of its last complete record,
/// plus the pcapng section state at that point.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Resume {
    pub offset: u64,
    /// pcapng: offset of the section header in force (0 for pcap).
    pub section_offset: u64,
    /// pcapng: timestamp of the last packet (what a following SPB inherits).
    pub last_ts_ns: i64,
}

enum Framer {
    Pcap(PcapFramer),
    Ng(Box<NgFramer>),
}

pub struct CaptureReader {
    src: Arc<dyn ByteSource>,
    /// The records' bytes, read in order from where reading starts.
    stream: Box<dyn Read + Send>,
    format: FileFormat,
    framer: Framer,
    interfaces: Vec<Interface>,
    pool: Arc<BufPool>,
    buf: Vec<u8>,
    /// Unparsed bytes are `buf[start..]`; `buf[start]` is at file offset `pos`.
    start: usize,
    pos: u64,
    /// File offset just past the bytes in `buf`.
    read_to: u64,
    /// Size of the file when opened: reading stops there.
    limit: u64,
    chunk_size: usize,
    /// Records in the last chunk: the next one's list starts that large
    /// rather than growing (and copying) a dozen times.
    records_hint: usize,
    done: bool,
    pending: Option<ReadError>,
    /// A read that failed after delivering some bytes: the records they
    /// complete are framed first, then this ends the reading.
    broken: Option<io::Error>,
}

/// Reads the pcapng block at `offset` whole (bounded by [`MAX_BLOCK`]).
fn read_block_at(file: &dyn ByteSource, offset: u64) -> Result<Vec<u8>, OpenError> {
    let head = read_vec(file, offset, 12)?;
    let corrupt = |what: String| OpenError::Corrupt { offset, what };
    if head.len() < 12 {
        return Err(corrupt("file ends inside the section header".into()));
    }
    let big = match &head[8..12] {
        [0x1a, 0x2b, 0x3c, 0x4d] => true,
        [0x4d, 0x3c, 0x2b, 0x1a] => false,
        _ => return Err(corrupt("section header without byte-order magic".into())),
    };
    let b = [head[4], head[5], head[6], head[7]];
    let len = if big {
        u32::from_be_bytes(b)
    } else {
        u32::from_le_bytes(b)
    };
    if !(28..=MAX_BLOCK).contains(&len) || len % 4 != 0 {
        return Err(corrupt(format!(
            "section header claims impossible length {len}"
        )));
    }
    let block = read_vec(file, offset, len as usize)?;
    if block.len() < len as usize {
        return Err(corrupt("file ends inside the section header".into()));
    }
    Ok(block)
}

impl CaptureReader {
    /// Opens a capture and reads its file header (pcap) or first section header (pcapng).
    pub fn open(path: &Path) -> Result<Self, OpenError> {
        let file = File::open(path)?;
        let limit = file.metadata()?.len();
        Self::open_source(Arc::new(file), limit)
    }

    /// Opens a capture of `limit` bytes (its size when it was looked at:
    /// reading stops there) read through `src`.
    pub fn open_source(src: Arc<dyn ByteSource>, limit: u64) -> Result<Self, OpenError> {
        let file = src;
        let head = read_vec(&*file, 0, FILE_HEADER_LEN.min(limit as usize))?;
        let format = match sniff(&head) {
            Sniff::Capture(f) => f,
            Sniff::Gzip => {
                return Err(OpenError::Unsupported(
                    "gzip-compressed; decompress it first (packet offsets must point into the capture itself)"
                        .into(),
                ));
            }
            Sniff::Empty => return Err(OpenError::NotACapture("empty file".into())),
            Sniff::Other => {
                let shown: Vec<String> = head.iter().take(8).map(|b| format!("{b:02x}")).collect();
                return Err(OpenError::NotACapture(format!(
                    "no pcap or pcapng magic; starts with {}",
                    shown.join(" ")
                )));
            }
        };
        let (framer, start_at) = match format {
            FileFormat::Pcap {
                big_endian,
                nanos,
                modified,
            } => {
                if head.len() < FILE_HEADER_LEN {
                    return Err(OpenError::Corrupt {
                        offset: 0,
                        what: format!("pcap file header cut short ({} of 24 bytes)", head.len()),
                    });
                }
                let f = PcapFramer::from_header(&head, big_endian, nanos, modified)
                    .map_err(OpenError::Unsupported)?;
                (Framer::Pcap(f), FILE_HEADER_LEN as u64)
            }
            FileFormat::PcapNg => {
                let block = read_block_at(&*file, 0)?;
                let f = NgFramer::start(&block, 0).map_err(|e| match e {
                    SectionError::Unsupported(why) => OpenError::Unsupported(why),
                    SectionError::Corrupt(what) => OpenError::Corrupt { offset: 0, what },
                })?;
                (Framer::Ng(Box::new(f)), block.len() as u64)
            }
        };
        let interfaces = match &framer {
            Framer::Pcap(p) => vec![p.interface()],
            Framer::Ng(_) => Vec::new(),
        };
        Self::build(file, format, framer, interfaces, start_at, limit)
    }

    /// Reopens a file at a point a previous reader reported with
    /// [`CaptureReader::resume_point`], given the interfaces it had met.
    pub fn open_at(path: &Path, at: Resume, interfaces: Vec<Interface>) -> Result<Self, OpenError> {
        let file = File::open(path)?;
        let limit = file.metadata()?.len();
        Self::open_source_at(Arc::new(file), limit, at, interfaces)
    }

    /// As [`CaptureReader::open_at`], through `src`.
    pub fn open_source_at(
        src: Arc<dyn ByteSource>,
        limit: u64,
        at: Resume,
        interfaces: Vec<Interface>,
    ) -> Result<Self, OpenError> {
        let fresh = Self::open_source(src, limit)?;
        let CaptureReader {
            src: file,
            format,
            framer,
            limit,
            ..
        } = fresh;
        let framer = match framer {
            Framer::Pcap(p) => Framer::Pcap(p),
            Framer::Ng(_) => {
                let block = read_block_at(&*file, at.section_offset)?;
                let f = NgFramer::resume(&block, at.section_offset, &interfaces, at.last_ts_ns)
                    .map_err(|e| OpenError::Corrupt {
                        offset: at.section_offset,
                        what: e.to_string(),
                    })?;
                Framer::Ng(Box::new(f))
            }
        };
        let interfaces = match &framer {
            Framer::Pcap(p) => vec![p.interface()],
            Framer::Ng(_) => interfaces,
        };
        Self::build(file, format, framer, interfaces, at.offset, limit)
    }

    fn build(
        src: Arc<dyn ByteSource>,
        format: FileFormat,
        framer: Framer,
        interfaces: Vec<Interface>,
        start_at: u64,
        limit: u64,
    ) -> Result<Self, OpenError> {
        let stream = src.stream(start_at..limit.max(start_at))?;
        let pool = Arc::new(BufPool::default());
        // A small file (or what is left of one) gets a buffer its size.
        let left = usize::try_from(limit.saturating_sub(start_at)).unwrap_or(usize::MAX);
        Ok(CaptureReader {
            src,
            stream,
            format,
            framer,
            interfaces,
            buf: pool.get(DEFAULT_CHUNK.min(left)),
            pool,
            start: 0,
            pos: start_at,
            read_to: start_at,
            limit,
            chunk_size: DEFAULT_CHUNK,
            records_hint: 0,
            done: false,
            pending: None,
            broken: None,
        })
    }

    /// Bytes read per chunk (at least 4 KiB; a record larger than that is
    /// still read whole).
    pub fn set_chunk_size(&mut self, bytes: usize) {
        self.chunk_size = bytes.max(4 * 1024);
    }

    pub fn format(&self) -> FileFormat {
        self.format
    }

    /// Every interface met so far (pcap: exactly one).
    pub fn interfaces(&self) -> &[Interface] {
        &self.interfaces
    }

    /// Size of the file when it was opened; reading stops there.
    pub fn size(&self) -> u64 {
        self.limit
    }

    /// The fingerprint of the file's first `len` bytes, through the source
    /// already open.
    pub fn fingerprint(&mut self, len: u64) -> io::Result<crate::Fingerprint> {
        crate::fingerprint(&*self.src, len)
    }

    /// Whether every read of its source checks the source's identity (an
    /// object read on condition of its ETag): no fingerprint is needed.
    pub fn self_checking(&self) -> bool {
        self.src.self_checking()
    }

    /// Where reading would continue: just past the last complete record delivered.
    pub fn resume_point(&self) -> Resume {
        match &self.framer {
            Framer::Pcap(_) => Resume {
                offset: self.pos,
                section_offset: 0,
                last_ts_ns: 0,
            },
            Framer::Ng(f) => Resume {
                offset: self.pos,
                section_offset: f.section_offset(),
                last_ts_ns: f.last_ts(),
            },
        }
    }

    /// The next chunk of complete records; `Ok(None)` at a clean end of file.
    /// After an error, every record before the damage has been delivered and
    /// the reader is finished.
    pub fn next_chunk(&mut self) -> Result<Option<Chunk>, ReadError> {
        loop {
            if self.done {
                return match self.pending.take() {
                    Some(e) => Err(e),
                    None => Ok(None),
                };
            }
            let mut records = Vec::with_capacity(self.records_hint);
            let need = self.frame(&mut records);
            if !records.is_empty() {
                self.records_hint = records.len();
                return Ok(Some(self.hand_over(records)));
            }
            if self.done {
                continue;
            }
            if let Err(e) = self.refill(need) {
                self.fail(self.pos, ReadErrorKind::Io(e));
            }
        }
    }

    /// Frames complete records in the buffer; returns how many bytes the
    /// first incomplete one needs (0 if the buffer ended on a boundary).
    fn frame(&mut self, out: &mut Vec<RecordMeta>) -> usize {
        loop {
            let avail = &self.buf[self.start..];
            if avail.is_empty() && self.read_to >= self.limit {
                match self.broken.take() {
                    Some(e) => self.fail(self.pos, ReadErrorKind::Io(e)),
                    None => self.done = true,
                }
                return 0;
            }
            let step = match &mut self.framer {
                Framer::Pcap(p) => p.step(avail, self.pos),
                Framer::Ng(f) => f.step(avail, self.pos),
            };
            match step {
                Step::Record { mut meta, len } => {
                    meta.data_start += self.start as u32;
                    out.push(meta);
                    self.advance(len);
                }
                Step::Skip(len) => {
                    self.advance(len);
                    if let Framer::Ng(f) = &mut self.framer {
                        self.interfaces.append(&mut f.new_ifaces);
                    }
                }
                Step::Need(n) => {
                    if self.read_to >= self.limit {
                        let available = self.limit - self.pos;
                        let kind = match self.broken.take() {
                            Some(e) => ReadErrorKind::Io(e),
                            None => ReadErrorKind::Truncated {
                                needed: n as u64,
                                available,
                            },
                        };
                        self.fail(self.pos, kind);
                    }
                    return n;
                }
                Step::Corrupt(what) => {
                    self.fail(self.pos, ReadErrorKind::Corrupt(what));
                    return 0;
                }
            }
        }
    }

    #[inline]
    fn advance(&mut self, len: usize) {
        self.start += len;
        self.pos += len as u64;
    }

    fn fail(&mut self, offset: u64, kind: ReadErrorKind) {
        self.done = true;
        self.pending = Some(ReadError { offset, kind });
    }

    /// Gives the current buffer away with its records, carrying the unparsed
    /// tail into a fresh buffer.
    fn hand_over(&mut self, records: Vec<RecordMeta>) -> Chunk {
        let tail = &self.buf[self.start..];
        let left = usize::try_from(self.limit.saturating_sub(self.read_to)).unwrap_or(usize::MAX);
        let mut next = self
            .pool
            .get(self.chunk_size.min(left.saturating_add(tail.len())));
        next.extend_from_slice(tail);
        let buf = std::mem::replace(&mut self.buf, next);
        self.start = 0;
        Chunk {
            buf,
            pool: self.pool.clone(),
            records,
        }
    }

    /// Reads more bytes so that at least `need` unparsed bytes are available
    /// (or the file limit is reached).
    fn refill(&mut self, need: usize) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let have = self.buf.len();
        let target = self.chunk_size.max(need);
        let room = (target.saturating_sub(have) as u64).min(self.limit - self.read_to);
        self.buf.reserve(room as usize);
        // read_to_end into reserved capacity: no zero-filling of the buffer.
        let before = self.buf.len();
        let read = (&mut self.stream).take(room).read_to_end(&mut self.buf);
        // On an error, the bytes read before it are kept (read_to_end appends
        // them): the records they complete are still delivered.
        let n = (self.buf.len() - before) as u64;
        self.read_to += n;
        match read {
            Ok(_) if n < room => {
                // The file shrank since it was opened: stop where it now ends.
                self.limit = self.read_to;
                Ok(())
            }
            Ok(_) => Ok(()),
            Err(e) if n > 0 => {
                self.limit = self.read_to;
                self.broken = Some(e);
                Ok(())
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn corpus() -> Option<PathBuf> {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
        p.join("capinfos.tsv").exists().then_some(p)
    }

    /// Reads a whole file: (records, error if any).
    fn read_all(
        path: &Path,
        chunk: usize,
    ) -> Result<(Vec<RecordMeta>, Option<ReadError>), OpenError> {
        let mut r = CaptureReader::open(path)?;
        r.set_chunk_size(chunk);
        let mut all = Vec::new();
        loop {
            match r.next_chunk() {
                Ok(Some(c)) => {
                    for m in &c.records {
                        assert_eq!(c.data(m).len(), m.caplen as usize);
                    }
                    all.extend_from_slice(&c.records)
                }
                Ok(None) => return Ok((all, None)),
                Err(e) => return Ok((all, Some(e))),
            }
        }
    }

    /// Every corpus capture yields the record count capinfos reports, with
    /// the same first timestamp; damaged files stop with an error after it.
    #[test]
    fn record_counts_match_capinfos() {
        let Some(dir) = corpus() else {
            eprintln!("skipped: ../shared/corpus not present");
            return;
        };
        let tsv = std::fs::read_to_string(dir.join("capinfos.tsv")).unwrap();
        let mut checked = 0;
        for line in tsv.lines().skip(1) {
            let f: Vec<&str> = line.split('\t').collect();
            let (path, packets) = (f[0], f[8]);
            let Ok(expected) = packets.parse::<usize>() else {
                continue;
            };
            if path.ends_with(".gz") || path.ends_with("zero-length.pcap") {
                continue; // capinfos decompresses gzip; an empty file is no capture
            }
            // Small chunk sizes exercise records carried across buffers, and
            // (the smallest) records longer than a chunk.
            for chunk in [4 * 1024, 64 * 1024, DEFAULT_CHUNK] {
                let (recs, err) =
                    read_all(&dir.join(path), chunk).unwrap_or_else(|e| panic!("{path}: {e}"));
                assert_eq!(recs.len(), expected, "{path}: {err:?}");
                let offsets_increase = recs.windows(2).all(|w| w[0].offset < w[1].offset);
                assert!(offsets_increase, "{path}");
            }
            checked += 1;
        }
        assert!(checked > 50, "only {checked} files checked");
    }

    #[test]
    fn arkime_packet_positions_match_the_oracle() {
        // Arkime's packetPos for http-simple-get.pcap starts at 24 (first record header).
        let Some(dir) = corpus() else {
            eprintln!("skipped: ../shared/corpus not present");
            return;
        };
        let (recs, err) =
            read_all(&dir.join("arkime/http-simple-get.pcap"), DEFAULT_CHUNK).unwrap();
        assert!(err.is_none());
        assert_eq!(recs[0].offset, 24);
        assert_eq!(recs[1].offset, 24 + 16 + u64::from(recs[0].caplen));
    }

    #[test]
    fn damaged_files_report_offsets() {
        let Some(dir) = corpus() else {
            eprintln!("skipped: ../shared/corpus not present");
            return;
        };
        let m = dir.join("malformed");
        // capinfos counts 2 here: when the second record is impossible, Wireshark
        // retries the file as the 1999 "modified" layout with 24-byte record
        // headers. The file declares the standard layout, under which the
        // second record is the damage, so one record is kept.
        let (recs, err) = read_all(&m.join("fuzz-bogus-reclen.pcap"), DEFAULT_CHUNK).unwrap();
        assert_eq!(recs.len(), 1);
        assert!(matches!(err.unwrap().kind, ReadErrorKind::Corrupt(_)));
        let (recs, err) =
            read_all(&m.join("smtp-to-comma-garbage-tail.pcap"), DEFAULT_CHUNK).unwrap();
        assert_eq!(recs.len(), 18);
        assert!(err.is_some());
        let (recs, err) = read_all(
            &m.join("truncated_dns_2-eof-mid-record.pcap"),
            DEFAULT_CHUNK,
        )
        .unwrap();
        assert_eq!(recs.len(), 1);
        assert!(err.unwrap().kind.is_truncation());
        for (f, want) in [
            ("zero-length.pcap", "not a capture"),
            ("git-lfs-pointer-named.pcap", "not a capture"),
            ("err-eof-partial-block.bin", "not a capture"),
            ("gzip-compressed.pcap.gz", "unsupported"),
            ("pcap-invalid-version-1.pcap", "unsupported"),
            ("pcapng-invalid-vers-1.pcapng", "unsupported"),
            ("shb-option-too-long.pcapng", "damaged"),
        ] {
            let e = CaptureReader::open(&m.join(f))
                .err()
                .unwrap_or_else(|| panic!("{f} opened"));
            assert!(e.to_string().starts_with(want), "{f}: {e}");
        }
    }

    #[test]
    fn resume_continues_where_a_reader_stopped() {
        let Some(dir) = corpus() else {
            eprintln!("skipped: ../shared/corpus not present");
            return;
        };
        for f in [
            "formats/pcapng-test202-mixed-endian-sections.pcapng",
            "zeek/wikipedia.pcap",
            "formats/wireshark_samples-test.pcapng",
        ] {
            let path = dir.join(f);
            let (all, _) = read_all(&path, DEFAULT_CHUNK).unwrap();
            let mut r = CaptureReader::open(&path).unwrap();
            r.set_chunk_size(64 * 1024);
            let first = r.next_chunk().unwrap().unwrap().records.clone();
            let at = r.resume_point();
            let ifaces = r.interfaces().to_vec();
            let mut r2 = CaptureReader::open_at(&path, at, ifaces).unwrap();
            let mut rest = Vec::new();
            while let Some(c) = r2.next_chunk().unwrap() {
                rest.extend_from_slice(&c.records);
            }
            let key = |v: &[RecordMeta]| -> Vec<(u64, i64, u32, u32, u32)> {
                v.iter()
                    .map(|m| (m.offset, m.ts_ns, m.caplen, m.orig_len, m.iface))
                    .collect()
            };
            let resumed = [key(&first), key(&rest)].concat();
            assert!(resumed == key(&all), "{f}: resumed read differs");
        }
    }

    /// Reads a file held in memory (written to a temporary path).
    fn read_bytes(
        name: &str,
        bytes: &[u8],
    ) -> Result<(Vec<RecordMeta>, Option<ReadError>), OpenError> {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("pcapidx-prop-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{n}-{name}"));
        std::fs::write(&path, bytes).unwrap();
        let r = read_all(&path, 64 * 1024);
        std::fs::remove_file(&path).unwrap();
        r
    }

    fn samples() -> Vec<(String, Vec<u8>)> {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        [
            "rotated/rotated_00001.pcap",
            "rotated-mixed/mixed_00001.pcapng",
            "rotated-mixed/mixed_00002.pcap",
            "format-pcapng-mixed/format-pcapng-mixed_00000.pcapng",
            "multi-interface/multi-interface.pcapng",
        ]
        .iter()
        .map(|f| {
            (
                f.replace('/', "_"),
                std::fs::read(root.join(f)).unwrap_or_else(|e| panic!("{f}: {e}")),
            )
        })
        .collect()
    }

    /// Cut anywhere, a file keeps exactly its records that end before the cut.
    #[test]
    fn any_truncation_keeps_every_complete_record() {
        for (name, bytes) in samples() {
            let (all, err) = read_bytes(&name, &bytes).unwrap();
            assert!(err.is_none());
            // Every cut inside the first records, then a sample across the file.
            let cuts: Vec<usize> = (0..bytes.len().min(3000))
                .chain((3000..bytes.len()).step_by(97))
                .collect();
            for cut in cuts {
                match read_bytes(&name, &bytes[..cut]) {
                    Ok((recs, err)) => {
                        let complete = all.iter().filter(|m| m.end() <= cut as u64).count();
                        assert_eq!(recs.len(), complete, "{name} cut at {cut}: {err:?}");
                        assert_eq!(&recs[..], &all[..complete], "{name} cut at {cut}");
                        if let Some(e) = err {
                            assert!(e.kind.is_truncation(), "{name} cut at {cut}: {e}");
                        }
                    }
                    // Cut inside the file header or the first section header.
                    Err(_) => assert!(cut < 200, "{name} cut at {cut}"),
                }
            }
        }
    }

    /// Random corruption of one record header never panics, and every record
    /// before the damaged one is kept as it was.
    #[test]
    fn corrupted_record_headers_keep_the_records_before() {
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut rand = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for (name, bytes) in samples() {
            let (all, _) = read_bytes(&name, &bytes).unwrap();
            for _ in 0..400 {
                let victim = (rand() % all.len() as u64) as usize;
                let m = all[victim];
                // A byte of the record's header (pcap: 16 bytes; pcapng: the first 28 of the block).
                let header = if name.ends_with("pcapng") { 28 } else { 16 };
                let at = m.offset as usize + (rand() % header) as usize;
                let mut b = bytes.clone();
                b[at] ^= 1 << (rand() % 8);
                if rand() % 4 == 0 {
                    b[at] = 0xff;
                }
                let (recs, _) = read_bytes(&name, &b).unwrap();
                let key = |r: &RecordMeta| (r.offset, r.caplen, r.len);
                let kept: Vec<_> = recs.iter().take(victim).map(key).collect();
                let before: Vec<_> = all[..victim].iter().map(key).collect();
                assert_eq!(kept, before, "{name}: byte {at} of record {victim} flipped");
            }
        }
    }
}
