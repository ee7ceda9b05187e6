//! The run: planning, then the stages reader → decode → flows → writer,
//! either on one thread or as a pipeline of threads connected by bounded
//! channels (batches carry sequence numbers and are put back in order
//! before the flow tracker, so the result does not depend on scheduling).
use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::bounded;
use pcapidx_capture::{Fingerprint, Interface, RecordMeta, Resume, fingerprint};
use pcapidx_decode::{Decoded, Layer, decode};
use pcapidx_flow::{FlowRecord, FlowSink, PacketIn, RowCounts, Summary, Tracker};
use pcapidx_store::{FileRow, FileStatus, Store, StoreError, Traffic};

use crate::filter::IgnoreFilter;
use crate::merge::{End, Item, Merger, RawBatch, Source};
use crate::plan::{Plan, Planned, now_ns, plan};
use crate::{Action, FileOutcome, IndexError, Options, Phase, Progress, Report, walk};

/// Records per batch handed between stages.
const BATCH_RECORDS: usize = 1024;
/// Decoded batches that may wait for the flow tracker. With more threads
/// than cores, a thread waits its turn for a few ms at a time: a queue
/// that holds only a few ms of work (it held 4 batches) left the tracker
/// without input while the reader waited, and reading took 8% longer (8, 16
/// and 32 were no faster). 64 batches are about 10 MB (160 bytes an item).
const DECODED_QUEUE: usize = 64;
/// Writes handed to the writer at a time.
const WRITES_PER_HANDOVER: usize = 4096;

/// A decoded batch item, in processing order.
enum DItem {
    /// `s`: what flows need of the packet (None: nothing to key a flow on);
    /// `dropped`: an ignore filter matched.
    Record {
        slot: u32,
        meta: RecordMeta,
        /// The time it is placed at (clock.rs).
        at_ns: i64,
        s: Option<Summary>,
        dropped: bool,
    },
    Interfaces {
        slot: u32,
        ifaces: Vec<Interface>,
    },
    End {
        slot: u32,
        end: End,
        resume: Resume,
        fingerprint: Option<Fingerprint>,
    },
}

/// Decodes a batch and keys its packets: the parallel part of the work.
fn decode_batch(b: RawBatch, filter: &IgnoreFilter) -> Vec<DItem> {
    let RawBatch { chunks, items } = b;
    items
        .into_iter()
        .map(|item| match item {
            Item::Record {
                slot,
                chunk,
                meta,
                at_ns,
            } => {
                let mut d = Decoded::default();
                if let Some(c) = chunks.get(chunk as usize) {
                    decode(meta.link_type, c.data(&meta), &mut d);
                }
                let dropped = d.layer == Layer::Ip && filter.drops(&d.ip);
                let s = if dropped { None } else { Summary::of(&d) };
                DItem::Record {
                    slot,
                    meta,
                    at_ns,
                    s,
                    dropped,
                }
            }
            Item::Interfaces { slot, ifaces } => DItem::Interfaces { slot, ifaces },
            Item::End {
                slot,
                end,
                resume,
                fingerprint,
            } => DItem::End {
                slot,
                end,
                resume,
                fingerprint,
            },
        })
        .collect()
}

/// One write for the store, applied at the next commit.
pub(crate) enum Write {
    Chunk(u64, Vec<u8>),
    /// A flow's row, the first time with its first position chunk, the
    /// files no earlier row of it named, and what its previous row said.
    Flow(FlowRecord, Option<Vec<u8>>, NewFiles, Option<RowCounts>),
    OpenFlows(Vec<u8>),
    File(FileRow, Vec<Interface>),
    /// The flows' packets per second, minute and hour since the last commit.
    Traffic(Traffic),
}

/// A flow row's new files: almost always none or one, kept without an
/// allocation.
pub(crate) struct NewFiles {
    first: Option<u32>,
    rest: Vec<u32>,
}

impl NewFiles {
    fn of(files: &[u32]) -> Self {
        NewFiles {
            first: files.first().copied(),
            rest: files.get(1..).map_or_else(Vec::new, <[u32]>::to_vec),
        }
    }

    fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.first.into_iter().chain(self.rest.iter().copied())
    }
}

struct Writes<'a>(&'a mut Vec<Write>);

impl FlowSink for Writes<'_> {
    fn chunk(&mut self, flow_id: u64, data: Vec<u8>) {
        self.0.push(Write::Chunk(flow_id, data));
    }
    fn flow(
        &mut self,
        rec: &FlowRecord,
        first_chunk: Option<Vec<u8>>,
        new_files: &[u32],
        before: Option<RowCounts>,
    ) {
        self.0.push(Write::Flow(
            rec.clone(),
            first_chunk,
            NewFiles::of(new_files),
            before,
        ));
    }
    fn open_flows(&mut self, state: Vec<u8>) {
        self.0.push(Write::OpenFlows(state));
    }
}

/// Writes handed to the writer as they accumulate, for the bursts of a
/// checkpoint or the end of the run (every open flow at once): the writer
/// applies them while the tracker produces the rest.
struct HandedWrites<'a> {
    writes: &'a mut Vec<Write>,
    out: &'a mut dyn Writer,
    error: Option<IndexError>,
}

impl HandedWrites<'_> {
    fn pushed(&mut self) {
        if self.writes.len() >= WRITES_PER_HANDOVER && self.error.is_none() {
            self.error = self.out.write(self.writes).err();
        }
    }

    fn done(self) -> Result<(), IndexError> {
        self.error.map_or(Ok(()), Err)
    }
}

impl FlowSink for HandedWrites<'_> {
    fn chunk(&mut self, flow_id: u64, data: Vec<u8>) {
        Writes(self.writes).chunk(flow_id, data);
        self.pushed();
    }
    fn flow(
        &mut self,
        rec: &FlowRecord,
        first_chunk: Option<Vec<u8>>,
        new_files: &[u32],
        before: Option<RowCounts>,
    ) {
        Writes(self.writes).flow(rec, first_chunk, new_files, before);
        self.pushed();
    }
    fn open_flows(&mut self, state: Vec<u8>) {
        Writes(self.writes).open_flows(state);
        self.pushed();
    }
}

/// Where the flow tracker's writes go: applied inside the open transaction
/// as they come, made durable by `commit`.
trait Writer {
    /// Takes the writes out of `w` (leaving it empty, with room for more).
    fn write(&mut self, w: &mut Vec<Write>) -> Result<(), IndexError>;
    fn commit(&mut self) -> Result<(), IndexError>;
}

/// Writes applied on the calling thread, inside the open transaction as they
/// come (holding them until the commit took memory in proportion to
/// `--checkpoint-packets`: 60 MB more on the 3 GB benchmark).
struct Inline<'s> {
    store: &'s Store,
    batch: Option<pcapidx_store::Batch<'s>>,
    /// Writes held back while a background checkpoint finishes (see
    /// `Store::wal_wants_restart`).
    held: Vec<Vec<Write>>,
}

/// Handovers held at most while a checkpoint finishes (about 1 MB each).
const MAX_HELD: usize = 16;

impl<'s> Inline<'s> {
    fn new(store: &'s Store) -> Self {
        Inline {
            store,
            batch: None,
            held: Vec::new(),
        }
    }

    /// The open transaction, begun now if need be with the held writes.
    fn begin(&mut self) -> Result<&mut pcapidx_store::Batch<'s>, IndexError> {
        let b = match self.batch.take() {
            Some(b) => b,
            None => self.store.batch()?,
        };
        let b = self.batch.insert(b);
        for mut w in self.held.drain(..) {
            apply(b, &mut w)?;
        }
        Ok(b)
    }
}

impl Writer for Inline<'_> {
    fn write(&mut self, w: &mut Vec<Write>) -> Result<(), IndexError> {
        if self.batch.is_none() && self.held.len() < MAX_HELD && self.store.wal_wants_restart() {
            self.held.push(std::mem::take(w));
            return Ok(());
        }
        apply(self.begin()?, w)?;
        Ok(())
    }
    fn commit(&mut self) -> Result<(), IndexError> {
        if !self.held.is_empty() {
            self.begin()?;
        }
        if let Some(b) = self.batch.take() {
            b.commit()?;
        }
        Ok(())
    }
}

enum ToWriter {
    Write(Vec<Write>),
    Commit,
}

/// A writer thread: writes are applied while the tracker goes on.
struct Threaded(crossbeam_channel::Sender<ToWriter>);

impl Writer for Threaded {
    fn write(&mut self, w: &mut Vec<Write>) -> Result<(), IndexError> {
        // Sized for a whole handover, so it is not grown step by step.
        let full = std::mem::replace(w, Vec::with_capacity(2 * WRITES_PER_HANDOVER));
        self.0.send(ToWriter::Write(full)).map_err(|_| stopped())
    }
    fn commit(&mut self) -> Result<(), IndexError> {
        self.0.send(ToWriter::Commit).map_err(|_| stopped())
    }
}

fn stopped() -> IndexError {
    IndexError::Input("the index writer stopped".into())
}

/// The writer thread's loop; returns the store when the tracker is done.
fn writer_loop(
    store: Store,
    rx: crossbeam_channel::Receiver<ToWriter>,
) -> Result<Store, IndexError> {
    let mut out = Inline::new(&store);
    for msg in rx {
        match msg {
            ToWriter::Write(mut w) => out.write(&mut w)?,
            ToWriter::Commit => out.commit()?,
        }
    }
    drop(out);
    Ok(store)
}

/// Applies writes inside an open transaction, emptying `writes`.
fn apply(b: &mut pcapidx_store::Batch, writes: &mut Vec<Write>) -> Result<(), StoreError> {
    for w in writes.drain(..) {
        match w {
            Write::Chunk(id, data) => b.put_chunk(id, &data)?,
            Write::Flow(rec, first_chunk, files, before) => {
                b.put_flow(&rec, first_chunk.as_deref(), before.as_ref())?;
                b.put_flow_files(rec.id, files.iter())?;
            }
            Write::OpenFlows(state) => b.put_open_flows(&state)?,
            Write::Traffic(mut t) => b.put_traffic(&mut t)?,
            Write::File(row, ifaces) => {
                let id = b.put_file(&row)?;
                b.put_interfaces(id, &ifaces)?;
            }
        }
    }
    Ok(())
}

/// A file being read in this run.
struct FileProgress {
    row: FileRow,
    /// The flow timeouts of this run, as recorded in `files.timeouts`.
    timeouts: String,
    path: PathBuf,
    action: Action,
    ifaces: Vec<Interface>,
    /// Where this run started reading it.
    start: Resume,
    /// The last record the flow tracker has taken.
    last: Option<RecordMeta>,
    /// Set when its reader finished: how, where it stopped, and the
    /// fingerprint of what it read (taken through its open handle).
    end: Option<(FileStatus, Option<String>, Resume, Option<Fingerprint>)>,
    run_packets: u64,
    /// Changed since the last commit.
    touched: bool,
    note: Option<String>,
}

impl FileProgress {
    /// The file's row as of the records taken so far.
    fn row_now(&self, filters: &Option<String>) -> (FileRow, Vec<Interface>) {
        let mut row = self.row.clone();
        let resume = match (&self.end, &self.last) {
            (Some((_, _, r, _)), _) => *r,
            (None, Some(m)) => Resume {
                offset: m.end(),
                section_offset: self
                    .ifaces
                    .get(m.iface as usize)
                    .map_or(0, |i| i.section_offset),
                last_ts_ns: m.ts_ns,
            },
            (None, None) => self.start,
        };
        (row.status, row.error) = match &self.end {
            Some((s, e, _, _)) => (*s, e.clone()),
            None => (FileStatus::Indexing, None),
        };
        row.indexed_bytes = resume.offset;
        // A file still being written may have grown between planning and
        // reading: its size is at least what was read of it.
        row.size = row.size.max(resume.offset);
        row.resume_section = resume.section_offset;
        row.resume_ts_ns = resume.last_ts_ns;
        let mut lts: Vec<u16> = self.ifaces.iter().map(|i| i.link_type).collect();
        lts.sort_unstable();
        lts.dedup();
        row.link_types =
            (!lts.is_empty()).then(|| lts.iter().map(u16::to_string).collect::<Vec<_>>().join(","));
        row.filters = filters.clone();
        row.indexed_at_ns = Some(now_ns());
        let fp = match &self.end {
            Some((_, _, _, Some(fp))) => Ok(*fp),
            _ => File::open(&self.path).and_then(|mut f| fingerprint(&mut f, resume.offset)),
        };
        if let Ok(fp) = fp {
            row.head_hash = Some(fp.head);
            row.tail_hash = Some(fp.tail);
            row.lead_hash = Some(fp.lead);
        }
        row.timeouts = Some(self.timeouts.clone());
        let ifaces = self
            .ifaces
            .iter()
            .filter(|i| i.block_offset < resume.offset || i.block_offset == 0)
            .cloned()
            .collect();
        (row, ifaces)
    }
}

/// How many records ahead the tracker asks for a flow's state (and twice as
/// far ahead, for its table entry): enough to hide a trip to memory behind
/// the work on the records between.
const PREFETCH_AHEAD: usize = 8;

/// The flow-tracking stage and the accounts it keeps.
struct Indexer<'a> {
    tracker: Tracker,
    files: Vec<FileProgress>,
    filter: IgnoreFilter,
    filters_text: Option<String>,
    writes: Vec<Write>,
    since_commit: u64,
    commit_every: u64,
    /// Commit at least this often while there are records (`--watch`).
    commit_interval: Option<std::time::Duration>,
    last_commit: Instant,
    packets: u64,
    /// The flows' packets per time slot since the last commit.
    traffic: Traffic,
    progress: &'a Progress,
}

impl Indexer<'_> {
    fn consume(
        &mut self,
        items: Vec<DItem>,
        on_file: &mut dyn FnMut(&FileOutcome),
        out: &mut dyn Writer,
    ) -> Result<(), IndexError> {
        let mut n = 0;
        for (i, item) in items.iter().enumerate() {
            if let Some(DItem::Record { s: Some(s), .. }) = items.get(i + 2 * PREFETCH_AHEAD) {
                self.tracker.prefetch_entry(&s.keyed);
            }
            if let Some(DItem::Record { s: Some(s), .. }) = items.get(i + PREFETCH_AHEAD) {
                self.tracker.prefetch_flow(&s.keyed);
            }
            match item {
                &DItem::Record {
                    slot,
                    meta,
                    at_ns,
                    ref s,
                    dropped,
                } => {
                    let Some(f) = self.files.get_mut(slot as usize) else {
                        continue;
                    };
                    n += 1;
                    f.row.packets += 1;
                    f.run_packets += 1;
                    f.row.first_ts_ns = Some(f.row.first_ts_ns.map_or(at_ns, |t| t.min(at_ns)));
                    f.row.last_ts_ns = Some(f.row.last_ts_ns.map_or(at_ns, |t| t.max(at_ns)));
                    if at_ns != meta.ts_ns {
                        f.row.out_of_line_ts += 1;
                    }
                    f.last = Some(meta);
                    f.touched = true;
                    match s {
                        _ if dropped => f.row.filtered_packets += 1,
                        None => f.row.undecodable_packets += 1,
                        Some(s) => {
                            let p = PacketIn {
                                ts_ns: at_ns,
                                record_ts_ns: meta.ts_ns,
                                file_id: f.row.file_id as u32,
                                offset: meta.offset,
                                caplen: meta.caplen,
                                orig_len: meta.orig_len,
                                iface: meta.iface,
                                s,
                            };
                            self.tracker.push(&p, &mut Writes(&mut self.writes));
                            self.traffic.add(at_ns, meta.orig_len);
                            f.row.flow_packets += 1;
                        }
                    }
                    self.since_commit += 1;
                    if self.since_commit >= self.commit_every {
                        self.checkpoint(out)?;
                    }
                }
                DItem::Interfaces { slot, ifaces } => {
                    if let Some(f) = self.files.get_mut(*slot as usize) {
                        f.ifaces.clone_from(ifaces);
                        f.touched = true;
                    }
                }
                DItem::End {
                    slot,
                    end,
                    resume,
                    fingerprint,
                } => {
                    let Some(f) = self.files.get_mut(*slot as usize) else {
                        continue;
                    };
                    let (status, error) = match end {
                        End::Clean => (FileStatus::Ok, None),
                        End::Damaged(e) => (FileStatus::Partial, Some(e.to_string())),
                        End::Failed(e) => (FileStatus::Error, Some(e.clone())),
                    };
                    f.end = Some((status, error.clone(), *resume, *fingerprint));
                    f.touched = true;
                    self.progress.files_done.fetch_add(1, Ordering::Relaxed);
                    on_file(&FileOutcome {
                        path: f.row.path.clone(),
                        action: f.action,
                        status,
                        error,
                        packets: f.run_packets,
                        note: f.note.clone(),
                    });
                }
            }
        }
        self.packets += n;
        self.progress.packets.fetch_add(n, Ordering::Relaxed);
        if self.since_commit > 0
            && self
                .commit_interval
                .is_some_and(|i| self.last_commit.elapsed() >= i)
        {
            self.checkpoint(out)?;
        }
        if self.writes.len() >= WRITES_PER_HANDOVER {
            out.write(&mut self.writes)?;
        }
        Ok(())
    }

    /// Commits: flow changes and the rows of touched files, then a commit.
    fn checkpoint(&mut self, out: &mut dyn Writer) -> Result<(), IndexError> {
        self.save_flows(out, |t, w| t.checkpoint(w))
    }

    /// The run's last commit: `Tracker::finish` checkpoints the flows.
    fn finish(&mut self, out: &mut dyn Writer) -> Result<(), IndexError> {
        self.progress.set_phase(Phase::Saving);
        self.save_flows(out, |t, w| t.finish(w))
    }

    /// `save` (a burst of flow writes) with its writes handed to `out` as
    /// they come, then a commit.
    fn save_flows(
        &mut self,
        out: &mut dyn Writer,
        save: impl FnOnce(&mut Tracker, &mut HandedWrites),
    ) -> Result<(), IndexError> {
        let mut w = HandedWrites {
            writes: &mut self.writes,
            out,
            error: None,
        };
        save(&mut self.tracker, &mut w);
        w.done()?;
        self.commit(out)
    }

    /// The rows of touched files after the tracker's writes, then a commit.
    fn commit(&mut self, out: &mut dyn Writer) -> Result<(), IndexError> {
        for f in self.files.iter_mut().filter(|f| f.touched) {
            let (row, ifaces) = f.row_now(&self.filters_text);
            self.writes.push(Write::File(row, ifaces));
            f.touched = false;
        }
        if !self.traffic.is_empty() {
            self.writes
                .push(Write::Traffic(std::mem::take(&mut self.traffic)));
        }
        self.since_commit = 0;
        self.last_commit = Instant::now();
        out.write(&mut self.writes)?;
        out.commit()
    }
}

/// An open index being written: the store, and the flow tracker once a
/// pass has read records (kept between the passes of `--watch`, so open
/// flows are not restored and saved again for every pass).
pub(crate) struct Session<'p> {
    store: Option<Store>,
    tracker: Option<Tracker>,
    opts: Options,
    exclude: Vec<PathBuf>,
    progress: &'p Progress,
    /// Following files as they are written: a record cut short at the end
    /// of a file is one not written yet (read on a later pass), and files
    /// just created are left until they hold something.
    live: bool,
}

/// A file this young and this small may still be getting its header.
const YOUNG_NS: i64 = 5_000_000_000;
const SMALL: u64 = 64;

impl<'p> Session<'p> {
    pub fn open(
        db: &Path,
        exclude: Vec<PathBuf>,
        opts: &Options,
        progress: &'p Progress,
        live: bool,
    ) -> Result<Self, IndexError> {
        let mut store = Store::open(db)?;
        store.ensure_sensor(opts.sensor.as_deref())?;
        if opts.jobs > 1 {
            store.checkpoint_in_background(opts.wal_soft_limit)?;
        }
        Ok(Session {
            store: Some(store),
            tracker: None,
            opts: opts.clone(),
            exclude,
            progress,
            live,
        })
    }

    fn store(&self) -> Result<&Store, IndexError> {
        self.store
            .as_ref()
            .ok_or_else(|| IndexError::Input("the index was lost by an earlier failure".into()))
    }

    /// One pass over `inputs`: plan every file, read what is new, commit.
    /// With `changed`, `inputs` are paths reported changed (some may be
    /// gone): those not there are not walk errors, and are `missing` if
    /// the index holds them.
    pub fn pass(
        &mut self,
        inputs: &[PathBuf],
        changed: bool,
        on_file: &mut dyn FnMut(&FileOutcome),
    ) -> Result<Report, IndexError> {
        let started = Instant::now();
        let (progress, opts) = (self.progress, self.opts.clone());
        let store = self.store()?;
        let (mut paths, mut problems) = walk::files(inputs, &self.exclude);
        if changed {
            problems.retain(|p| p.path.exists());
        }
        if self.live {
            let now = now_ns();
            paths.retain(|p| !still_being_created(p, now));
        }
        let mut report = Report {
            walk_errors: problems.into_iter().map(|p| (p.path, p.error)).collect(),
            ..Report::default()
        };
        progress
            .files_total
            .fetch_add(paths.len() as u64, Ordering::Relaxed);
        // Decide what to do with every file, then record those decisions (and
        // the files about to be read, as `indexing`), all in one transaction:
        // one snapshot, not a lock round trip per file.
        let mut files = Vec::new();
        let mut sources = Vec::new();
        let mut pass_bytes = 0u64;
        // Files read from the start with packets before the newest one
        // already indexed: flows already closed cannot take them in.
        let newest_held = if opts.reindex {
            None
        } else {
            store.last_packet_ns()?
        };
        let mut outcomes = Vec::new();
        {
            let mut b = store.batch()?;
            let mut planned: Vec<Planned> = paths
                .iter()
                .map(|p| plan(store, p, opts.max_file_size))
                .collect();
            same_content_in_run(&mut planned);
            // A moved file's row follows it: its old path is not also marked
            // overwritten, and the move is written before any new content at
            // that old path (one current row per path).
            let claimed: Vec<i64> = planned.iter().filter_map(|p| p.claims).collect();
            for p in &mut planned {
                p.before.retain(|r| !claimed.contains(&r.file_id));
            }
            // Copies after their originals, whose ids they name.
            planned.sort_by_key(|p| {
                let copy = matches!(
                    p.plan,
                    Plan::Record {
                        action: Action::Duplicate,
                        ..
                    }
                );
                (p.claims.is_none(), copy)
            });
            report.other_options = other_options(&planned, &opts);
            let mut missing = missing_files(store, inputs, &paths)?;
            missing.retain(|r| !claimed.contains(&r.file_id));
            let timeouts = describe_timeouts(&opts.flow);
            let mut ids: std::collections::HashMap<String, i64> = Default::default();
            for Planned {
                before, plan, note, ..
            } in planned
            {
                for row in &before {
                    b.put_file(row)?;
                }
                let outcome = |row: &FileRow, action, note| FileOutcome {
                    path: row.path.clone(),
                    action,
                    status: row.status,
                    error: row.error.clone(),
                    packets: 0,
                    note,
                };
                match plan {
                    Plan::Leave { row, touched } => {
                        if touched {
                            b.put_file(&row)?;
                        }
                        outcomes.push(outcome(&row, Action::Unchanged, note));
                    }
                    Plan::Record { mut row, action } => {
                        if row.status == FileStatus::Duplicate && row.duplicate_of.is_none() {
                            // A copy of a file first met in this run, inserted above.
                            row.duplicate_of = note
                                .as_deref()
                                .and_then(|n| n.strip_prefix("duplicate of "))
                                .and_then(|p| ids.get(p).copied());
                        }
                        ids.insert(row.path.clone(), b.put_file(&row)?);
                        outcomes.push(outcome(&row, action, note));
                    }
                    Plan::Read {
                        mut row,
                        source,
                        action,
                    } => {
                        if action == Action::Indexed
                            && let (Some((ts, _)), Some(newest)) = (source.head, newest_held)
                            && ts < newest
                        {
                            report.backfilled.push(row.path.clone());
                        }
                        row.file_id = b.put_file(&row)?;
                        ids.insert(row.path.clone(), row.file_id);
                        let start = source.resume.as_ref().map(|r| r.0).unwrap_or_default();
                        let ifaces = source
                            .resume
                            .as_ref()
                            .map(|r| r.1.clone())
                            .unwrap_or_default();
                        let to_read = row.size.saturating_sub(start.offset);
                        pass_bytes += to_read;
                        progress.bytes_total.fetch_add(to_read, Ordering::Relaxed);
                        files.push(FileProgress {
                            path: source.path.clone(),
                            row,
                            timeouts: timeouts.clone(),
                            action,
                            ifaces,
                            start,
                            last: None,
                            end: None,
                            run_packets: 0,
                            touched: true,
                            note,
                        });
                        sources.push(source);
                    }
                }
            }
            for mut row in missing {
                row.status = FileStatus::Missing;
                row.status_at_ns = Some(now_ns());
                row.error = Some(
                    "no longer at its path; its flows stay, but their packets in it cannot be carved"
                        .into(),
                );
                b.put_file(&row)?;
                outcomes.push(FileOutcome {
                    path: row.path.clone(),
                    action: Action::Missing,
                    status: row.status,
                    error: row.error.clone(),
                    packets: 0,
                    note: None,
                });
            }
            b.commit()?;
        }
        // This pass's bytes (the progress counts add up over a watch's passes).
        store.defer_indexes(pass_bytes)?;
        for o in &outcomes {
            progress.files_done.fetch_add(1, Ordering::Relaxed);
            on_file(o);
        }
        report.files = outcomes;

        if !files.is_empty() {
            report.newest_mtime_ns = files.iter().map(|f| f.row.mtime_ns).max();
            let store = self.store.take().ok_or_else(stopped)?;
            let tracker = match self.tracker.take() {
                Some(t) => t,
                None => restore_tracker(&store, &opts)?,
            };
            let (store, tracker, read) = read_files(
                store, tracker, files, sources, &opts, progress, self.live, on_file,
            )?;
            self.store = Some(store);
            self.tracker = Some(tracker);
            report.files.extend(read.outcomes);
            report.packets = read.packets;
            report.flows_started = read.flows_started;
            report.interrupted = read.interrupted;
        }
        // Nothing read: the open flows stay saved as they are (restoring
        // and saving them would write the same state again).
        progress.set_phase(Phase::Indexing);
        self.store()?.build_indexes(opts.jobs)?;
        report.elapsed = started.elapsed();
        Ok(report)
    }

    /// `--retain`: forgets the files whose last packet is older than `age`
    /// before the newest packet indexed (capture time, so that replayed old
    /// captures are not all forgotten at once).
    pub fn retain(&mut self, age: std::time::Duration) -> Result<Option<Retained>, IndexError> {
        let store = self.store()?;
        let Some(newest) = store.last_packet_ns()? else {
            return Ok(None);
        };
        let age_ns = i64::try_from(age.as_nanos()).unwrap_or(i64::MAX);
        let old = store.files_older_than(newest.saturating_sub(age_ns))?;
        if old.is_empty() {
            return Ok(None);
        }
        let ids: Vec<i64> = old.iter().map(|f| f.0).collect();
        let why = format!(
            "forgotten by --retain {}: its last packet is older than that before the newest one \
             indexed",
            describe_age(age)
        );
        let done = store.forget(&ids, &why)?;
        // Open flows may have lost packets: the tracker restores them from
        // the store on the next read.
        self.tracker = None;
        Ok(Some(Retained {
            paths: old.into_iter().map(|f| f.1).collect(),
            forgotten: done,
        }))
    }

    /// Folds the write-ahead log into the database file and leaves WAL
    /// mode; returns the index's size on disk.
    pub fn close(mut self) -> Result<u64, IndexError> {
        self.progress.set_phase(Phase::Checkpointing);
        let mut store = self.store.take().ok_or_else(stopped)?;
        store.checkpoint_wal()?;
        store.leave_wal();
        Ok(store.disk_bytes())
    }
}

/// What `--retain` forgot in a pass.
#[derive(Debug, Clone)]
pub struct Retained {
    pub paths: Vec<String>,
    pub forgotten: pcapidx_store::Forgotten,
}

/// "30d", "12h", "90s": the age as given, in its largest whole unit.
fn describe_age(d: std::time::Duration) -> String {
    let s = d.as_secs();
    match s {
        _ if s >= 86400 && s.is_multiple_of(86400) => format!("{}d", s / 86400),
        _ if s >= 3600 && s.is_multiple_of(3600) => format!("{}h", s / 3600),
        _ if s >= 60 && s.is_multiple_of(60) => format!("{}m", s / 60),
        _ => format!("{}s", d.as_secs_f64()),
    }
}

/// An empty file, or a small one written in the last seconds: a writer
/// that has just created it may not have written its header yet.
fn still_being_created(p: &Path, now: i64) -> bool {
    let Ok(m) = std::fs::metadata(p) else {
        return false;
    };
    let mtime = crate::plan::mtime_ns(&m);
    m.len() == 0 || (m.len() < SMALL && now.saturating_sub(mtime) < YOUNG_NS)
}

/// A one-shot run: one pass, then the index is closed.
pub(crate) fn run(
    db: &Path,
    inputs: &[PathBuf],
    exclude: &[PathBuf],
    opts: &Options,
    progress: &Progress,
    on_file: &mut dyn FnMut(&FileOutcome),
) -> Result<Report, IndexError> {
    let started = Instant::now();
    let mut session = Session::open(db, exclude.to_vec(), opts, progress, false)?;
    let mut inputs = inputs.to_vec();
    let mut reindexed = None;
    if opts.reindex {
        let (named, _) = walk::files(&inputs, exclude);
        let prepared = crate::reindex::prepare(session.store()?, &named)?;
        inputs.extend(prepared.also);
        reindexed = Some((prepared.named, prepared.total));
    }
    let mut report = session.pass(&inputs, false, on_file)?;
    report.reindexed = reindexed;
    if let Some(age) = opts.retain {
        report.retained = session.retain(age)?;
    }
    report.index_bytes = session.close()?;
    report.bytes = progress.bytes_read.load(Ordering::Relaxed);
    report.elapsed = started.elapsed();
    report.phases = progress.phase_times(started);
    Ok(report)
}

fn restore_tracker(store: &Store, opts: &Options) -> Result<Tracker, IndexError> {
    let mut tracker = Tracker::new(opts.flow, store.next_flow_id()?);
    tracker.set_server_ports(store.server_ports());
    for saved in store.open_flows()? {
        tracker
            .restore(&saved)
            .map_err(|e| StoreError::Damaged(format!("open flow state: {e}")))?;
    }
    Ok(tracker)
}

/// What reading the files of a pass gave.
struct Read {
    outcomes: Vec<FileOutcome>,
    packets: u64,
    flows_started: u64,
    /// `Options::stop` was raised before every file was read.
    interrupted: bool,
}

/// Reads the planned files through the flow tracker into the store.
#[allow(clippy::too_many_arguments)]
fn read_files(
    store: Store,
    tracker: Tracker,
    files: Vec<FileProgress>,
    sources: Vec<Source>,
    opts: &Options,
    progress: &Progress,
    live: bool,
    on_file: &mut dyn FnMut(&FileOutcome),
) -> Result<(Store, Tracker, Read), IndexError> {
    let flows_before = tracker.stats().flows_started;
    let filter = IgnoreFilter::new(&opts.ignore);
    let mut indexer = Indexer {
        tracker,
        files,
        filters_text: filter.describe(),
        filter,
        writes: Vec::new(),
        since_commit: 0,
        commit_every: opts.checkpoint_packets.max(1),
        commit_interval: opts.commit_interval,
        last_commit: Instant::now(),
        packets: 0,
        traffic: Traffic::default(),
        progress,
    };
    let mut merger = Merger::new(sources, BATCH_RECORDS, progress.bytes_read.clone());
    merger.tail_pending = live;
    let mut outcomes = Vec::new();
    let mut on_read_file = |o: &FileOutcome| {
        outcomes.push(o.clone());
        on_file(o);
    };
    let stop = opts.stop.clone().unwrap_or_default();
    let store = if opts.jobs <= 1 {
        sequential(store, merger, &mut indexer, &mut on_read_file, &stop)?
    } else {
        parallel(
            store,
            merger,
            &mut indexer,
            &mut on_read_file,
            opts.jobs,
            &stop,
        )?
    };
    let read = Read {
        outcomes,
        packets: indexer.packets,
        flows_started: indexer.tracker.stats().flows_started - flows_before,
        interrupted: stop.load(Ordering::Relaxed) && indexer.files.iter().any(|f| f.end.is_none()),
    };
    Ok((store, indexer.tracker, read))
}

fn sequential(
    store: Store,
    mut merger: Merger,
    indexer: &mut Indexer,
    on_file: &mut dyn FnMut(&FileOutcome),
    stop: &AtomicBool,
) -> Result<Store, IndexError> {
    let mut out = Inline::new(&store);
    while !stop.load(Ordering::Relaxed)
        && let Some(batch) = merger.next_batch()
    {
        indexer.consume(decode_batch(batch, &indexer.filter), on_file, &mut out)?;
    }
    indexer.finish(&mut out)?;
    drop(out);
    Ok(store)
}

/// The stages on their own threads: a reader (merging the files), decoders,
/// the flow tracker (this thread) and a writer, joined by bounded channels.
/// With two jobs the reader decodes too: the packets it has just read are
/// in its core's cache, and decoding them on another core cost more (in
/// cache traffic) than it gained on the 2-core benchmark machine.
fn parallel(
    store: Store,
    mut merger: Merger,
    indexer: &mut Indexer,
    on_file: &mut dyn FnMut(&FileOutcome),
    jobs: usize,
    stop: &AtomicBool,
) -> Result<Store, IndexError> {
    // Threads beside the reader, the tracker and the writer.
    let decoders = jobs.saturating_sub(2);
    let filter = indexer.filter.clone();
    let filter = &filter;
    std::thread::scope(|s| {
        let (raw_tx, raw_rx) = bounded::<(u64, RawBatch)>(2 * decoders.max(1) + 2);
        let (dec_tx, dec_rx) = bounded::<(u64, Vec<DItem>)>(DECODED_QUEUE);
        let (w_tx, w_rx) = bounded::<ToWriter>(4);
        let spawn = |name: &str| std::thread::Builder::new().name(format!("pcapidx-{name}"));
        let decoded_tx = dec_tx.clone();
        spawn("reader").spawn_scoped(s, move || {
            let mut seq = 0;
            while !stop.load(Ordering::Relaxed)
                && let Some(b) = merger.next_batch()
            {
                let sent = if decoders == 0 {
                    decoded_tx.send((seq, decode_batch(b, filter))).is_ok()
                } else {
                    raw_tx.send((seq, b)).is_ok()
                };
                if !sent {
                    break;
                }
                seq += 1;
            }
        })?;
        for _ in 0..decoders {
            let (rx, tx) = (raw_rx.clone(), dec_tx.clone());
            spawn("decode").spawn_scoped(s, move || {
                for (seq, b) in rx {
                    if tx.send((seq, decode_batch(b, filter))).is_err() {
                        break;
                    }
                }
            })?;
        }
        drop((raw_rx, dec_tx));
        let writer = spawn("writer").spawn_scoped(s, move || writer_loop(store, w_rx))?;
        let mut out = Threaded(w_tx);
        // Batches come back from the decoders in any order: put them back in sequence.
        let mut stash = BTreeMap::new();
        let mut next = 0;
        let mut result = Ok(());
        'outer: for (seq, items) in dec_rx {
            stash.insert(seq, items);
            while let Some(items) = stash.remove(&next) {
                next += 1;
                if let Err(e) = indexer.consume(items, on_file, &mut out) {
                    result = Err(e);
                    break 'outer;
                }
            }
        }
        if result.is_ok() {
            result = indexer.finish(&mut out);
        }
        drop(out);
        // The writer's own error explains a failed send best.
        let store = writer
            .join()
            .map_err(|_| IndexError::Input("the index writer panicked".into()))??;
        result.map(|()| store)
    })
}

/// The flow timeouts of a run, in seconds, as `files.timeouts` records them.
fn describe_timeouts(c: &pcapidx_flow::Config) -> String {
    let s = |ns: i64| ns as f64 / 1e9;
    format!(
        "tcp={} tcp-closed={} udp={} other={}",
        s(c.tcp_timeout_ns),
        s(c.tcp_closed_timeout_ns),
        s(c.udp_timeout_ns),
        s(c.other_timeout_ns)
    )
}

/// Files first met in this run whose bytes are all at the start of another
/// one met in it (an identical copy, or a copy of its first part), or of an
/// indexed file this run continues (copied while its end was not indexed
/// yet): they are duplicates of the longest such file, not indexed again. Of
/// identical new files, the first is indexed.
fn same_content_in_run(planned: &mut [Planned]) {
    // (index in `planned`, size, lead hash, path, file id if already indexed)
    type Candidate = (usize, u64, u64, String, Option<i64>);
    let candidates: Vec<Candidate> = planned
        .iter()
        .enumerate()
        .filter_map(|(i, p)| match &p.plan {
            Plan::Read { row, action, .. }
                if row.size > 0 && matches!(action, Action::Indexed | Action::Resumed) =>
            {
                let lead = File::open(&row.path)
                    .and_then(|mut f| pcapidx_capture::lead_hash(&mut f, row.size))
                    .ok()?;
                let indexed = (*action == Action::Resumed).then_some(row.file_id);
                Some((i, row.size, lead, row.path.clone(), indexed))
            }
            _ => None,
        })
        .collect();
    let fp = |path: &str, len: u64| {
        File::open(path)
            .and_then(|mut f| fingerprint(&mut f, len))
            .ok()
    };
    // By lead hash: a folder of thousands of new files compares few pairs.
    let mut by_lead: std::collections::HashMap<u64, Vec<&Candidate>> = Default::default();
    for c in &candidates {
        by_lead.entry(c.2).or_default().push(c);
    }
    let mut dups = Vec::new();
    for &(i, size, lead, ref path, _) in candidates.iter().filter(|c| c.4.is_none()) {
        let short = size.min(pcapidx_capture::LEAD_SPAN);
        let of = by_lead[&lead]
            .iter()
            .filter(|&&&(j, s, l, _, indexed)| {
                let longer = match indexed {
                    Some(_) => s >= size,
                    None => s > size || (s == size && j < i),
                };
                l == lead && longer && (s == size || short == pcapidx_capture::LEAD_SPAN)
            })
            .filter(|c| fp(&c.3, size).is_some_and(|f| Some(f) == fp(path, size)))
            .max_by_key(|&&&(j, s, _, _, indexed)| (indexed.is_some(), s, std::cmp::Reverse(j)));
        if let Some(&&(_, _, _, ref of, indexed)) = of {
            dups.push((i, of.clone(), indexed));
        }
    }
    for (i, of, indexed) in dups {
        let p = &mut planned[i];
        if let Plan::Read { row, .. } = &p.plan {
            let mut dup = row.clone();
            dup.status = FileStatus::Duplicate;
            dup.status_at_ns = Some(now_ns());
            dup.error = Some(format!("same content as {of}"));
            dup.duplicate_of = indexed;
            p.note = Some(format!("duplicate of {of}"));
            p.plan = Plan::Record {
                row: dup,
                action: Action::Duplicate,
            };
        }
    }
}

/// Indexed files under the folders of `inputs` that the walk did not find
/// and that are not there: they were deleted (or moved away).
fn missing_files(
    store: &Store,
    inputs: &[PathBuf],
    walked: &[PathBuf],
) -> Result<Vec<FileRow>, StoreError> {
    let mut out = Vec::new();
    // A file named on the command line that is gone.
    for gone in inputs.iter().filter(|p| !p.exists()) {
        let Ok(abs) = std::path::absolute(gone) else {
            continue;
        };
        if let Some(row) = store.file_by_path(&abs.to_string_lossy())?
            && row.has_content()
            && row.status != FileStatus::Missing
        {
            out.push(row);
        }
    }
    for dir in inputs.iter().filter(|p| p.is_dir()) {
        let Ok(dir) = std::fs::canonicalize(dir) else {
            continue;
        };
        for row in store.files_under(&dir.to_string_lossy())? {
            let gone = !matches!(row.status, FileStatus::Missing | FileStatus::Forgotten)
                && !walked.iter().any(|w| w.as_os_str() == row.path.as_str())
                && !Path::new(&row.path).exists();
            if gone && !out.iter().any(|r: &FileRow| r.file_id == row.file_id) {
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// Files this run leaves or continues that were indexed under other
/// filters or timeouts: their flows were built under those.
fn other_options(planned: &[Planned], opts: &Options) -> Vec<(String, String)> {
    let filters = IgnoreFilter::new(&opts.ignore).describe();
    let timeouts = describe_timeouts(&opts.flow);
    let none = |o: &Option<String>| o.clone().unwrap_or_else(|| "none".into());
    planned
        .iter()
        .filter_map(|p| match &p.plan {
            Plan::Leave { row, .. }
            | Plan::Read {
                row,
                action: Action::Resumed,
                ..
            } if row.has_content() => Some(row),
            _ => None,
        })
        .filter_map(|row| {
            let mut what = Vec::new();
            if row.filters != filters {
                what.push(format!(
                    "--ignore {} then, {} now",
                    none(&row.filters),
                    none(&filters)
                ));
            }
            // Rows indexed before schema version 4 did not record them.
            if let Some(t) = row.timeouts.as_ref().filter(|t| **t != timeouts) {
                what.push(format!("timeouts {t} then, {timeouts} now"));
            }
            (!what.is_empty()).then(|| (row.path.clone(), what.join("; ")))
        })
        .collect()
}
