//! `index --watch`: index what is there, then follow the files as they are
//! written, rotated, overwritten, moved and deleted. File notifications say
//! which paths to look at; a periodic rescan of every input is the fallback
//! (notifications can be lost, or unavailable on network file systems) and
//! the truth. Each look is a pass of the same planning and reading as a
//! one-shot run, on one long-lived session: the flow tracker stays in
//! memory and the index stays in WAL mode, so readers see each commit.
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use notify::event::{AccessKind, AccessMode};
use notify::{Event, EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::pipeline::Session;
use crate::plan::now_ns;
use crate::{FileOutcome, IndexError, Options, Progress, Report};

#[derive(Debug, Clone, Copy)]
pub struct WatchOptions {
    /// The longest a change waits before a pass reads it (and commits).
    pub commit_interval: Duration,
    /// How often every input is walked again, whatever the notifications said.
    pub rescan_interval: Duration,
}

impl Default for WatchOptions {
    fn default() -> Self {
        WatchOptions {
            commit_interval: Duration::from_secs(1),
            rescan_interval: Duration::from_secs(10),
        }
    }
}

/// What a watch tells its caller as it goes.
pub enum WatchEvent<'a> {
    /// A file's outcome in a pass.
    File(&'a FileOutcome),
    /// A pass ended (its reads committed).
    Pass(&'a Pass),
    /// Something to know that is not about one file.
    Notice(String),
}

/// One pass of a watch.
pub struct Pass {
    pub report: Report,
    /// Every input was walked (the first pass and each rescan), not only
    /// the paths notifications named.
    pub full: bool,
    /// The first pass: what was there when the watch began.
    pub first: bool,
    /// At the commit, how old the newest write it includes was: the
    /// writer-to-reader delay of this pass.
    pub lag: Option<Duration>,
}

/// A watch's totals, when it stops.
#[derive(Debug, Default)]
pub struct WatchReport {
    pub passes: u64,
    pub packets: u64,
    pub flows_started: u64,
    /// Files read from (in part or whole) at least once.
    pub files_read: u64,
    pub elapsed: Duration,
    pub index_bytes: u64,
}

/// Watches `inputs` until `opts.stop` is raised.
pub fn watch(
    db: &Path,
    inputs: &[PathBuf],
    opts: &Options,
    wopts: &WatchOptions,
    progress: &Progress,
    on_event: &mut dyn FnMut(WatchEvent),
) -> Result<WatchReport, IndexError> {
    let started = Instant::now();
    let _lock = crate::lock(db)?;
    let own = crate::own_files(db);
    let stop = opts.stop.clone().unwrap_or_default();
    let opts = Options {
        commit_interval: Some(wopts.commit_interval),
        ..opts.clone()
    };
    let mut session = Session::open(db, own.clone(), &opts, progress, true)?;
    // Notifications begin before the first pass, so that nothing written
    // while it runs goes unseen until the next rescan.
    let (tx, rx) = channel();
    let targets = Targets::new(inputs, own);
    let watcher = match targets.start(tx) {
        Ok(w) => Some(w),
        Err(e) => {
            on_event(WatchEvent::Notice(format!(
                "file notifications are not available ({e}): looking for changes every {} s",
                wopts.rescan_interval.as_secs_f64()
            )));
            None
        }
    };
    let mut totals = WatchReport::default();
    let mut read_from = BTreeSet::new();
    let mut pass = |session: &mut Session, paths: &[PathBuf], full: bool, first: bool| {
        progress.new_pass();
        let mut on_file = |o: &FileOutcome| on_event(WatchEvent::File(o));
        let mut report = session.pass(paths, !full, &mut on_file)?;
        if let Some(age) = opts.retain.filter(|_| full) {
            report.retained = session.retain(age)?;
        }
        totals.passes += 1;
        totals.packets += report.packets;
        totals.flows_started += report.flows_started;
        read_from.extend(
            report
                .files
                .iter()
                .filter(|f| f.packets > 0)
                .map(|f| f.path.clone()),
        );
        let lag = report
            .newest_mtime_ns
            .map(|t| Duration::from_nanos(now_ns().saturating_sub(t).max(0) as u64));
        on_event(WatchEvent::Pass(&Pass {
            report,
            full,
            first,
            lag,
        }));
        Ok::<(), IndexError>(())
    };
    pass(&mut session, inputs, true, true)?;
    let mut changed = BTreeSet::new();
    let mut last_pass = Instant::now();
    let mut next_rescan = last_pass + wopts.rescan_interval;
    let mut rescan_now = false;
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        let mut due = next_rescan;
        if !changed.is_empty() {
            due = due.min(last_pass + wopts.commit_interval);
        }
        // Short waits, so that a stop is seen soon; waiting costs nothing.
        let wait = due
            .saturating_duration_since(now)
            .min(Duration::from_millis(200));
        if watcher.is_some() {
            collect(&rx, wait, &targets, &mut changed, &mut rescan_now);
        } else {
            std::thread::sleep(wait);
        }
        if stop.load(Ordering::Relaxed) {
            break;
        }
        let now = Instant::now();
        if rescan_now || now >= next_rescan {
            pass(&mut session, inputs, true, false)?;
            changed.clear();
            rescan_now = false;
            last_pass = Instant::now();
            next_rescan = last_pass + wopts.rescan_interval;
        } else if !changed.is_empty() && now >= last_pass + wopts.commit_interval {
            let paths: Vec<PathBuf> = std::mem::take(&mut changed).into_iter().collect();
            pass(&mut session, &paths, false, false)?;
            last_pass = Instant::now();
        }
    }
    drop(watcher);
    totals.files_read = read_from.len() as u64;
    totals.index_bytes = session.close()?;
    totals.elapsed = started.elapsed();
    Ok(totals)
}

/// What to ask notifications for, and which of the paths they report matter.
struct Targets {
    /// Folders watched recursively.
    dirs: Vec<PathBuf>,
    /// Files named as inputs (their folder is watched, so that a file
    /// replaced by a rename is still followed).
    files: Vec<PathBuf>,
    /// The index's own files, whose every commit would be a change.
    own: Vec<PathBuf>,
}

impl Targets {
    fn new(inputs: &[PathBuf], own: Vec<PathBuf>) -> Self {
        let (mut dirs, mut files) = (Vec::new(), Vec::new());
        for p in inputs {
            // Objects send no file notifications: each rescan lists them.
            if p.to_str().is_some_and(pcapidx_source::is_url) {
                continue;
            }
            let Ok(abs) = std::fs::canonicalize(p).or_else(|_| std::path::absolute(p)) else {
                continue;
            };
            if abs.is_dir() {
                dirs.push(abs);
            } else {
                files.push(abs);
            }
        }
        Targets { dirs, files, own }
    }

    fn start(
        &self,
        tx: std::sync::mpsc::Sender<notify::Result<Event>>,
    ) -> notify::Result<RecommendedWatcher> {
        let mut w = notify::recommended_watcher(tx)?;
        for d in &self.dirs {
            w.watch(d, RecursiveMode::Recursive)?;
        }
        let mut parents: Vec<&Path> = self.files.iter().filter_map(|f| f.parent()).collect();
        parents.sort();
        parents.dedup();
        for p in parents {
            w.watch(p, RecursiveMode::NonRecursive)?;
        }
        Ok(w)
    }

    fn wanted(&self, p: &Path) -> bool {
        !self.own.iter().any(|o| o == p)
            && (self.files.iter().any(|f| f == p) || self.dirs.iter().any(|d| p.starts_with(d)))
    }
}

/// Waits up to `wait` for notifications, then takes all that came: the
/// paths they name, or a request to rescan everything.
fn collect(
    rx: &Receiver<notify::Result<Event>>,
    wait: Duration,
    targets: &Targets,
    changed: &mut BTreeSet<PathBuf>,
    rescan: &mut bool,
) {
    let mut take = |msg: notify::Result<Event>| match msg {
        Err(_) => *rescan = true,
        Ok(e) if e.need_rescan() => *rescan = true,
        // Reads (ours too) change nothing; a writer closing a file may
        // follow its last write by a moment.
        Ok(Event {
            kind: EventKind::Access(k),
            ..
        }) if k != AccessKind::Close(AccessMode::Write) => {}
        Ok(e) => changed.extend(e.paths.into_iter().filter(|p| targets.wanted(p))),
    };
    match rx.recv_timeout(wait) {
        Ok(m) => take(m),
        Err(RecvTimeoutError::Timeout) => return,
        // The watcher is gone: the rescans go on.
        Err(RecvTimeoutError::Disconnected) => {
            std::thread::sleep(wait);
            return;
        }
    }
    while let Ok(m) = rx.try_recv() {
        take(m);
    }
}
