//! The stages of a pass after planning: the reader (the time-ordered merge
//! of the files), the decoders, and the flow tracker with the per-file
//! accounts it keeps, on one thread or as threads joined by bounded channels
//! (batches carry sequence numbers and are put back in order before the
//! tracker).
use std::collections::BTreeMap;
use std::fs::File;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use crossbeam_channel::bounded;
use pcapidx_capture::{Fingerprint, Interface, RecordMeta, Resume, fingerprint};
use pcapidx_decode::{Decoded, Layer, decode};
use pcapidx_flow::{PacketIn, Summary, Tracker};
use pcapidx_store::{FileRow, FileStatus, Store, StoreError, Traffic};

use crate::filter::IgnoreFilter;
use crate::merge::{End, Item, Merger, RawBatch, Source};
use crate::plan::now_ns;
use crate::writes::{
    HandedWrites, Inline, Threaded, ToWriter, WRITES_PER_HANDOVER, Write, Writer, Writes,
    writer_loop,
};
use crate::{Action, FileOutcome, IndexError, Options, Phase, Progress};

/// Records per batch handed between stages.
pub(crate) const BATCH_RECORDS: usize = 1024;

/// Decoded batches that may wait for the flow tracker. With more threads
/// than cores, a thread waits its turn for a few ms at a time: a queue
/// that holds only a few ms of work (it held 4 batches) left the tracker
/// without input while the reader waited, and reading took 8% longer (8, 16
/// and 32 were no faster). 64 batches are about 10 MB (160 bytes an item).
pub(crate) const DECODED_QUEUE: usize = 64;

/// A decoded batch item, in processing order.
pub(crate) enum DItem {
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
pub(crate) fn decode_batch(b: RawBatch, filter: &IgnoreFilter) -> Vec<DItem> {
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

/// A file being read in this run.
pub(crate) struct FileProgress {
    pub(crate) row: FileRow,
    /// The flow timeouts of this run, as recorded in `files.timeouts`.
    pub(crate) timeouts: String,
    pub(crate) path: PathBuf,
    pub(crate) action: Action,
    pub(crate) ifaces: Vec<Interface>,
    /// Where this run started reading it.
    pub(crate) start: Resume,
    /// The last record the flow tracker has taken.
    pub(crate) last: Option<RecordMeta>,
    /// Set when its reader finished: how, where it stopped, and the
    /// fingerprint of what it read (taken through its open handle).
    pub(crate) end: Option<(FileStatus, Option<String>, Resume, Option<Fingerprint>)>,
    pub(crate) run_packets: u64,
    /// Changed since the last commit.
    pub(crate) touched: bool,
    pub(crate) note: Option<String>,
}

impl FileProgress {
    /// The file's row as of the records taken so far.
    pub(crate) fn row_now(&self, filters: &Option<String>) -> (FileRow, Vec<Interface>) {
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
            // An object's identity is its ETag.
            _ if self.row.etag.is_some() => Err(std::io::ErrorKind::Unsupported.into()),
            _ => File::open(&self.path).and_then(|f| fingerprint(&f, resume.offset)),
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
pub(crate) const PREFETCH_AHEAD: usize = 8;

/// The flow-tracking stage and the accounts it keeps.
pub(crate) struct Indexer<'a> {
    pub(crate) tracker: Tracker,
    pub(crate) files: Vec<FileProgress>,
    pub(crate) filter: IgnoreFilter,
    pub(crate) filters_text: Option<String>,
    pub(crate) writes: Vec<Write>,
    pub(crate) since_commit: u64,
    pub(crate) commit_every: u64,
    /// Commit at least this often while there are records (`--watch`).
    pub(crate) commit_interval: Option<std::time::Duration>,
    pub(crate) last_commit: Instant,
    pub(crate) packets: u64,
    /// The flows' packets per time slot since the last commit.
    pub(crate) traffic: Traffic,
    pub(crate) progress: &'a Progress,
}

impl Indexer<'_> {
    pub(crate) fn consume(
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
    pub(crate) fn checkpoint(&mut self, out: &mut dyn Writer) -> Result<(), IndexError> {
        self.save_flows(out, |t, w| t.checkpoint(w))
    }

    /// The run's last commit: `Tracker::finish` checkpoints the flows.
    pub(crate) fn finish(&mut self, out: &mut dyn Writer) -> Result<(), IndexError> {
        self.progress.set_phase(Phase::Saving);
        self.save_flows(out, |t, w| t.finish(w))
    }

    /// `save` (a burst of flow writes) with its writes handed to `out` as
    /// they come, then a commit.
    pub(crate) fn save_flows(
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
    pub(crate) fn commit(&mut self, out: &mut dyn Writer) -> Result<(), IndexError> {
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

pub(crate) fn restore_tracker(store: &Store, opts: &Options) -> Result<Tracker, IndexError> {
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
pub(crate) struct Read {
    pub(crate) outcomes: Vec<FileOutcome>,
    pub(crate) packets: u64,
    pub(crate) flows_started: u64,
    /// `Options::stop` was raised before every file was read.
    pub(crate) interrupted: bool,
}

/// Reads the planned files through the flow tracker into the store.
#[allow(clippy::too_many_arguments)]
pub(crate) fn read_files(
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

pub(crate) fn sequential(
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
pub(crate) fn parallel(
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
