//! Reading the files of a run as one stream in timestamp order, the way
//! mergecap and Zeek read several files: a greedy merge by each file's next
//! record (ties: the file whose first packet is earlier, then the record's
//! offset, then the file's place in path order). Files are opened lazily,
//! in order of their first packet, so rotated files that do not overlap are
//! read one after the other and only overlapping ones are open together.
use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::clock::{Clock, NeedMore};
use pcapidx_capture::{
    CaptureReader, Chunk, Fingerprint, Interface, ReadError, RecordMeta, Resume,
};

/// One file to read in this run.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    /// Its path, or its URL for an object.
    pub path: PathBuf,
    /// An object in a bucket, read by requests rather than from a file.
    pub object: Option<Box<pcapidx_source::Object>>,
    /// Its size when the run was planned: what the progress count expects.
    pub size: u64,
    pub resume: Option<(Resume, Vec<Interface>)>,
    /// Timestamp and offset of the first record to be read (the merge key of
    /// a file not yet opened); `None` when there is none.
    pub head: Option<(i64, u64)>,
    /// Timestamp of the file's first packet ever (tie-breaker).
    pub first_ts: i64,
    /// The time of its last record in line (a file continued; see clock.rs).
    pub clock: Option<i64>,
}

/// How a file's reading ended.
#[derive(Debug)]
pub(crate) enum End {
    Clean,
    Damaged(ReadError),
    /// Could not be (re)opened.
    Failed(String),
}

/// Items of a batch, in processing order.
pub(crate) enum Item {
    Record {
        slot: u32,
        chunk: u32,
        meta: RecordMeta,
        /// The time it is placed at: its own, unless out of line (clock.rs).
        at_ns: i64,
    },
    /// Interfaces met so far by a file's reader (a growing list).
    Interfaces { slot: u32, ifaces: Vec<Interface> },
    /// A file's last record has been delivered; `resume` is where a later
    /// run would continue, and `fingerprint` (when the file was read) that
    /// of the bytes up to it, taken while the file is still open.
    End {
        slot: u32,
        end: End,
        resume: Resume,
        fingerprint: Option<Fingerprint>,
    },
}

pub(crate) struct RawBatch {
    pub chunks: Vec<Arc<Chunk>>,
    pub items: Vec<Item>,
}

struct Cursor {
    reader: CaptureReader,
    chunk: Arc<Chunk>,
    /// The times its records are placed at.
    at: Vec<i64>,
    /// The next chunk, when placing this one's last records needed it read.
    ahead: Option<Result<Option<Chunk>, ReadError>>,
    idx: usize,
    /// This chunk's index in the batch being built, if it is in it.
    in_batch: Option<(u64, u32)>,
}

type HeadKey = (i64, i64, u64, u32);

pub(crate) struct Merger {
    sources: Vec<Source>,
    /// Slots not opened yet, in order of their merge key.
    pending: VecDeque<u32>,
    heads: BinaryHeap<Reverse<HeadKey>>,
    cursors: Vec<Option<Cursor>>,
    /// How many of each file's interfaces have been passed on.
    ifaces_sent: Vec<usize>,
    clocks: Vec<Clock>,
    batch_no: u64,
    batch_records: usize,
    bytes_read: Arc<AtomicU64>,
    /// A record cut short by the end of a file is one still being written:
    /// the file ends cleanly before it (and is read from there next time).
    pub tail_pending: bool,
}

impl Merger {
    pub fn new(sources: Vec<Source>, batch_records: usize, bytes_read: Arc<AtomicU64>) -> Self {
        let mut order: Vec<u32> = (0..sources.len() as u32).collect();
        order.sort_by_key(|&s| {
            let src = &sources[s as usize];
            let (ts, off) = src.head.unwrap_or((i64::MIN, 0));
            (ts, src.first_ts, off, s)
        });
        let n = sources.len();
        let clocks = sources.iter().map(|s| Clock::resumed(s.clock)).collect();
        Merger {
            clocks,
            sources,
            pending: order.into(),
            heads: BinaryHeap::new(),
            cursors: (0..n).map(|_| None).collect(),
            ifaces_sent: vec![0; n],
            batch_no: 0,
            batch_records: batch_records.max(1),
            bytes_read,
            tail_pending: false,
        }
    }

    fn key_of_pending(&self, slot: u32) -> HeadKey {
        let s = &self.sources[slot as usize];
        let (ts, off) = s.head.unwrap_or((i64::MIN, 0));
        (ts, s.first_ts, off, slot)
    }

    /// Opens a source; its first record (if any) joins the heads.
    fn open(&mut self, slot: u32, out: &mut Vec<Item>) {
        let src = &self.sources[slot as usize];
        let opened = match (&src.object, &src.resume) {
            (Some(obj), at) => crate::objects::open_reader(obj, at.as_ref()),
            (None, None) => CaptureReader::open(&src.path),
            (None, Some((at, ifaces))) => CaptureReader::open_at(&src.path, *at, ifaces.clone()),
        };
        let mut reader = match opened {
            Ok(r) => r,
            Err(e) => {
                let resume = src.resume.as_ref().map(|r| r.0).unwrap_or_default();
                self.account_rest(slot, resume.offset);
                out.push(Item::End {
                    slot,
                    end: End::Failed(e.to_string()),
                    resume,
                    fingerprint: None,
                });
                return;
            }
        };
        // From where the run starts in the file, so its header counts too.
        let start = src.resume.as_ref().map_or(0, |r| r.0.offset);
        let first = reader.next_chunk();
        self.account(&reader, start);
        self.after_read(slot, reader, first, out);
    }

    fn account(&self, reader: &CaptureReader, before: u64) {
        let now = reader.resume_point().offset;
        self.bytes_read
            .fetch_add(now.saturating_sub(before), Ordering::Relaxed);
    }

    /// A file has ended at `at`: what is left of it (after damage, or a
    /// file that could not be opened) is done as far as progress goes.
    fn account_rest(&self, slot: u32, at: u64) {
        let size = self.sources[slot as usize].size;
        self.bytes_read
            .fetch_add(size.saturating_sub(at), Ordering::Relaxed);
    }

    /// Installs the chunk just read for `slot`, or ends the file.
    fn after_read(
        &mut self,
        slot: u32,
        mut reader: CaptureReader,
        read: Result<Option<Chunk>, ReadError>,
        out: &mut Vec<Item>,
    ) {
        if reader.interfaces().len() > self.ifaces_sent[slot as usize] {
            self.ifaces_sent[slot as usize] = reader.interfaces().len();
            out.push(Item::Interfaces {
                slot,
                ifaces: reader.interfaces().to_vec(),
            });
        }
        match read {
            Ok(Some(chunk)) if !chunk.records.is_empty() => {
                let (at, ahead) = self.place(slot, &chunk, &mut reader);
                self.heads.push(Reverse((
                    at[0],
                    self.sources[slot as usize].first_ts,
                    chunk.records[0].offset,
                    slot,
                )));
                self.cursors[slot as usize] = Some(Cursor {
                    reader,
                    chunk: Arc::new(chunk),
                    at,
                    ahead,
                    idx: 0,
                    in_batch: None,
                });
            }
            Ok(_) => {
                self.cursors[slot as usize] = None;
                self.end(slot, &mut reader, End::Clean, out);
            }
            Err(e) if self.tail_pending && e.kind.is_truncation() => {
                self.cursors[slot as usize] = None;
                self.end(slot, &mut reader, End::Clean, out);
            }
            Err(e) => {
                self.cursors[slot as usize] = None;
                self.end(slot, &mut reader, End::Damaged(e), out);
            }
        }
    }

    /// The times `chunk`'s records are placed at, and the next chunk when
    /// that needed it read.
    fn place(
        &mut self,
        slot: u32,
        chunk: &Chunk,
        reader: &mut CaptureReader,
    ) -> (Vec<i64>, Option<Result<Option<Chunk>, ReadError>>) {
        let ts: Vec<i64> = chunk.records.iter().map(|m| m.ts_ns).collect();
        if let Ok(at) = self.clocks[slot as usize].place(&ts, &[], false) {
            return (at, None);
        }
        let before = reader.resume_point().offset;
        let next = reader.next_chunk();
        self.account(reader, before);
        let clock = &mut self.clocks[slot as usize];
        let next_ts: Vec<i64> = match &next {
            Ok(Some(c)) => c.records.iter().map(|m| m.ts_ns).collect(),
            _ => Vec::new(),
        };
        // What lies beyond the next chunk is not read: judged as if the
        // file ended there (a chunk holds far more than LOOK_AHEAD records
        // but for a file's last one).
        let at = clock
            .place(&ts, &next_ts, next_ts.is_empty())
            .or_else(|NeedMore| clock.place(&ts, &next_ts, true))
            .unwrap_or(ts);
        (at, Some(next))
    }

    fn end(&mut self, slot: u32, reader: &mut CaptureReader, end: End, out: &mut Vec<Item>) {
        let resume = reader.resume_point();
        self.account_rest(slot, resume.offset);
        out.push(Item::End {
            slot,
            end,
            resume,
            // An object's identity is its ETag: no reads to fingerprint it.
            fingerprint: (!reader.self_checking())
                .then(|| reader.fingerprint(resume.offset).ok())
                .flatten(),
        });
    }

    /// The next batch of records in merge order; `None` when every file is done.
    pub fn next_batch(&mut self) -> Option<RawBatch> {
        self.batch_no += 1;
        let mut batch = RawBatch {
            chunks: Vec::new(),
            // A batch's records, and room for a few file openings and ends.
            items: Vec::with_capacity(self.batch_records + 8),
        };
        let mut records = 0;
        while records < self.batch_records {
            // Open every file whose first record would come before the current heads.
            while let Some(&next) = self.pending.front() {
                let due = match self.heads.peek() {
                    None => true,
                    Some(Reverse(h)) => self.key_of_pending(next) < *h,
                };
                if !due {
                    break;
                }
                self.pending.pop_front();
                self.open(next, &mut batch.items);
            }
            let Some(Reverse((_, _, _, slot))) = self.heads.pop() else {
                if self.pending.is_empty() {
                    break;
                }
                continue;
            };
            // Records keep coming from this file while they still sort before
            // every other head and every unopened file: for rotated files that
            // do not overlap, the heap is touched only when a file ends.
            let limit = match (self.heads.peek(), self.pending.front()) {
                (Some(Reverse(h)), Some(&p)) => Some((*h).min(self.key_of_pending(p))),
                (Some(Reverse(h)), None) => Some(*h),
                (None, Some(&p)) => Some(self.key_of_pending(p)),
                (None, None) => None,
            };
            let first_ts = self.sources[slot as usize].first_ts;
            let Some(cur) = self.cursors[slot as usize].as_mut() else {
                continue;
            };
            let chunk_idx = match cur.in_batch {
                Some((b, i)) if b == self.batch_no => i,
                _ => {
                    batch.chunks.push(cur.chunk.clone());
                    let i = batch.chunks.len() as u32 - 1;
                    cur.in_batch = Some((self.batch_no, i));
                    i
                }
            };
            let mut next_key = None;
            while let Some(m) = cur.chunk.records.get(cur.idx) {
                let at_ns = cur.at.get(cur.idx).copied().unwrap_or(m.ts_ns);
                let key = (at_ns, first_ts, m.offset, slot);
                if records > 0 && (limit.is_some_and(|l| key > l) || records >= self.batch_records)
                {
                    next_key = Some(key);
                    break;
                }
                batch.items.push(Item::Record {
                    slot,
                    chunk: chunk_idx,
                    meta: *m,
                    at_ns,
                });
                records += 1;
                cur.idx += 1;
            }
            if let Some(key) = next_key {
                self.heads.push(Reverse(key));
                continue;
            }
            // This chunk is used up: read the next one.
            if let Some(c) = self.cursors[slot as usize].take() {
                let mut reader = c.reader;
                let read = c.ahead.unwrap_or_else(|| {
                    let before = reader.resume_point().offset;
                    let read = reader.next_chunk();
                    self.account(&reader, before);
                    read
                });
                self.after_read(slot, reader, read, &mut batch.items);
            }
        }
        if batch.items.is_empty() {
            None
        } else {
            Some(batch)
        }
    }
}
