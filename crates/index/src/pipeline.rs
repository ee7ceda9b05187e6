//! A session of passes over the inputs: each plans its files against the
//! index (what is new, grew, moved, repeats, vanished), records what needs
//! no reading, and hands the rest to the stages of `indexer.rs`, whose
//! writes `writes.rs` applies. A one-shot run is one pass; `--watch` keeps
//! the session (store and flow tracker) between passes.
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::time::Instant;

use pcapidx_capture::fingerprint;
use pcapidx_flow::Tracker;
use pcapidx_store::{FileRow, FileStatus, Store, StoreError};

use crate::filter::IgnoreFilter;
use crate::indexer::{FileProgress, read_files, restore_tracker};
use crate::plan::{Plan, Planned, now_ns, plan};
use crate::writes::stopped;
use crate::{Action, FileOutcome, IndexError, Options, Phase, Progress, Report, walk};

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
        let (local, urls) = split_inputs(inputs);
        let (mut paths, mut problems) = walk::files(&local, &self.exclude);
        let (objects, object_problems) = crate::objects::list(&urls);
        if changed {
            problems.retain(|p| p.path.exists());
        }
        if self.live {
            let now = now_ns();
            paths.retain(|p| !still_being_created(p, now));
        }
        let mut report = Report {
            walk_errors: problems
                .into_iter()
                .map(|p| (p.path, p.error))
                .chain(object_problems)
                .collect(),
            ..Report::default()
        };
        progress.files_total.fetch_add(
            (paths.len() + objects.len() + opts.events.len()) as u64,
            Ordering::Relaxed,
        );
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
            planned.extend(crate::objects::plan_all(
                store,
                &objects,
                opts.max_file_size,
            ));
            for c in &opts.events {
                match crate::objects::from_event(store, c, opts.max_file_size) {
                    Ok(crate::objects::FromEvent::Known(p)) => planned.push(*p),
                    Ok(crate::objects::FromEvent::Look(o)) => {
                        planned.push(crate::objects::plan(store, &o, opts.max_file_size))
                    }
                    Err(problem) => report.walk_errors.push(problem),
                }
            }
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
            let mut missing = missing_files(store, &local, &paths)?;
            missing.extend(crate::objects::missing(store, &urls, &objects)?);
            missing.retain(|r| !claimed.contains(&r.file_id));
            let timeouts = describe_flow_options(&opts.flow);
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

/// Inputs split into local paths and object URLs (`s3://…`).
fn split_inputs(inputs: &[PathBuf]) -> (Vec<PathBuf>, Vec<String>) {
    let mut local = Vec::new();
    let mut urls = Vec::new();
    for i in inputs {
        match i.to_str().filter(|s| pcapidx_source::is_url(s)) {
            Some(u) => urls.push(u.to_string()),
            None => local.push(i.clone()),
        }
    }
    (local, urls)
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

/// The flow timeouts of a run, in seconds, as `files.timeouts` records them.
/// The flow options of a run as `files.timeouts` records them: the
/// timeouts in seconds, and the orientation rule when it is not the default.
fn describe_flow_options(c: &pcapidx_flow::Config) -> String {
    let s = |ns: i64| ns as f64 / 1e9;
    let orient = match c.orient {
        pcapidx_flow::Orient::Evidence => "",
        pcapidx_flow::Orient::FirstPacket => " orient=first-packet",
    };
    format!(
        "tcp={} tcp-closed={} udp={} other={}{orient}",
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
                    .and_then(|f| pcapidx_capture::lead_hash(&f, row.size))
                    .ok()?;
                let indexed = (*action == Action::Resumed).then_some(row.file_id);
                Some((i, row.size, lead, row.path.clone(), indexed))
            }
            _ => None,
        })
        .collect();
    let fp = |path: &str, len: u64| File::open(path).and_then(|f| fingerprint(&f, len)).ok();
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
    let timeouts = describe_flow_options(&opts.flow);
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
                what.push(format!("flow options {t} then, {timeouts} now"));
            }
            (!what.is_empty()).then(|| (row.path.clone(), what.join("; ")))
        })
        .collect()
}
