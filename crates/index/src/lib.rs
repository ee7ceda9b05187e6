//! One indexing run: walk the inputs, decide per file what to read, read
//! the files as one stream in timestamp order, decode every record, build
//! flows, and store flows, packet positions and per-file accounts.
//!
//! Data flows one way: files → records (with offsets) → decoded headers →
//! flows → store. With more than one job the stages run as a pipeline
//! (reader, decoders, flow tracker, writer); the result is the same.
//!
//! Invariants:
//! - Every record read is accounted for in its file's row: in a flow,
//!   dropped by a filter, or undecodable.
//! - A file is marked indexed only in the transaction that stores its last
//!   packet. Commits happen every `checkpoint_packets` packets and at the
//!   end, each with the state needed to continue: a run killed at any
//!   moment and started again gives the same index as an uninterrupted one.
//! - Library code never prints: outcomes go to the caller's callback.
#![forbid(unsafe_code)]

mod clock;
mod filter;
mod indexer;
mod merge;
mod objects;
mod pipeline;
mod plan;
mod reindex;
mod walk;
mod watch;
mod writes;

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pcapidx_store::{FileStatus, StoreError};
use thiserror::Error;

pub use filter::{IgnoreFilter, parse_cidr, parse_ignore_file};
pub use ipnet::IpNet;
pub use pcapidx_flow::{Config as FlowConfig, Orient};
pub use pcapidx_store::Forgotten;
pub use pipeline::Retained;
pub use watch::{Pass, WatchEvent, WatchOptions, WatchReport, watch};

#[derive(Debug, Error)]
pub enum IndexError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("another `pcapidx index` is running on this index (lock {0} is held)")]
    Locked(PathBuf),
    #[error("{0}")]
    Input(String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

#[derive(Debug, Clone)]
pub struct Options {
    pub flow: FlowConfig,
    pub ignore: Vec<IpNet>,
    /// Threads to use (1 = everything on the calling thread).
    pub jobs: usize,
    /// Files larger than this are skipped.
    pub max_file_size: Option<u64>,
    /// Commit after this many packets (and at the end of the run).
    pub checkpoint_packets: u64,
    /// With more than one job: the WAL size past which the writer waits for
    /// the background checkpoint, so that the WAL starts over.
    pub wal_soft_limit: u64,
    /// Also commit when this long has passed since the last commit and
    /// records were read (what `--watch` readers wait for at most).
    pub commit_interval: Option<Duration>,
    /// Raised (by a signal handler) to stop: reading ends at the next batch,
    /// what was read is committed, and files not finished stay `indexing`
    /// for a later run to continue.
    pub stop: Option<Arc<AtomicBool>>,
    /// Forget files whose last packet is older than this before the newest
    /// packet indexed (after each run, and each rescan of `--watch`).
    pub retain: Option<Duration>,
    /// Read the files named again under this run's options (and every file
    /// sharing a flow with them), replacing what the index holds of them.
    pub reindex: bool,
    /// The sensor id for an index made by this run (`None`: made up once,
    /// from the host name); an index that has another is refused.
    pub sensor: Option<String>,
    /// Objects an S3 event notification says were created: indexed as if
    /// named by URL, with the event's size checked against
    /// `max_file_size` and its ETag against the index before any request.
    pub events: Vec<pcapidx_source::event::Created>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            flow: FlowConfig::default(),
            ignore: Vec::new(),
            jobs: std::thread::available_parallelism().map_or(1, |n| n.get()),
            max_file_size: None,
            checkpoint_packets: 2_000_000,
            wal_soft_limit: 64 << 20,
            commit_interval: None,
            stop: None,
            retain: None,
            reindex: false,
            sensor: None,
            events: Vec::new(),
        }
    }
}

/// What this run did with a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    /// Read from the start.
    Indexed,
    /// Continued where the index stopped (it grew, or a run was interrupted).
    Resumed,
    /// Unchanged since the last run.
    Unchanged,
    NotACapture,
    /// Could not be read, or changed since it was indexed.
    Failed,
    /// Left out (`--max-file-size`).
    Skipped,
    /// An indexed file found at a new path (its old one is gone).
    Moved,
    /// A copy of an indexed file: not indexed again.
    Duplicate,
    /// Indexed, and no longer at its path.
    Missing,
}

#[derive(Debug, Clone)]
pub struct FileOutcome {
    pub path: String,
    pub action: Action,
    pub status: FileStatus,
    pub error: Option<String>,
    /// Packets read from it in this run.
    pub packets: u64,
    /// What else the user should know (moved from, duplicate of, overwritten).
    pub note: Option<String>,
}

impl FileOutcome {
    /// Did this file keep the run from being complete (exit status 1)?
    pub fn is_failure(&self) -> bool {
        match self.action {
            Action::Failed | Action::Skipped => true,
            Action::Indexed | Action::Resumed => self.status != FileStatus::Ok,
            Action::Unchanged
            | Action::NotACapture
            | Action::Moved
            | Action::Duplicate
            | Action::Missing => false,
        }
    }
}

#[derive(Debug, Default)]
pub struct Report {
    pub files: Vec<FileOutcome>,
    /// Problems met while walking folders.
    pub walk_errors: Vec<(PathBuf, String)>,
    pub packets: u64,
    pub bytes: u64,
    pub flows_started: u64,
    pub elapsed: Duration,
    /// Where `elapsed` went, phase by phase, in order (reading includes
    /// deciding what to read).
    pub phases: Vec<(Phase, Duration)>,
    /// Size of the index on disk after the run.
    pub index_bytes: u64,
    /// Files indexed earlier under other `--ignore` filters or flow timeouts
    /// than this run's: (path, what differs).
    pub other_options: Vec<(String, String)>,
    /// Stopped by `Options::stop` before every file was read.
    pub interrupted: bool,
    /// The latest modification time of the files read, as planned: the
    /// newest write this run's commit includes.
    pub newest_mtime_ns: Option<i64>,
    /// What `Options::retain` forgot after the pass.
    pub retained: Option<Retained>,
    /// `Options::reindex`: (files named that were in the index, files read
    /// again in all).
    pub reindexed: Option<(usize, usize)>,
    /// Files read from the start whose first packet is older than the newest
    /// packet the index held before: sessions crossing between them and the
    /// later files may be split in two.
    pub backfilled: Vec<String>,
}

impl Report {
    pub fn count(&self, a: Action) -> usize {
        self.files.iter().filter(|f| f.action == a).count()
    }

    /// Every capture file was indexed completely.
    pub fn complete(&self) -> bool {
        self.walk_errors.is_empty() && !self.files.iter().any(FileOutcome::is_failure)
    }
}

/// Live counters for a progress display.
#[derive(Debug, Default)]
pub struct Progress {
    pub bytes_read: Arc<AtomicU64>,
    pub bytes_total: AtomicU64,
    pub packets: AtomicU64,
    pub files_total: AtomicU64,
    pub files_done: AtomicU64,
    /// When each phase after the first began; the last is the current one.
    phase_starts: Mutex<Vec<(Phase, Instant)>>,
}

/// What a run is doing. After the last byte is read there is still work
/// (on a large capture, many seconds of it) that a byte count cannot show.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    Reading,
    /// Writing the flows still open and the last rows.
    Saving,
    /// Building the secondary indexes after a bulk load.
    Indexing,
    /// Folding the write-ahead log into the database file.
    Checkpointing,
}

impl Phase {
    pub fn describe(self) -> &'static str {
        match self {
            Phase::Reading => "reading",
            Phase::Saving => "saving open flows",
            Phase::Indexing => "building indexes",
            Phase::Checkpointing => "writing the database file",
        }
    }
}

impl Progress {
    pub fn phase(&self) -> Phase {
        self.phase_starts
            .lock()
            .ok()
            .and_then(|s| s.last().map(|p| p.0))
            .unwrap_or(Phase::Reading)
    }

    /// Starts the phases over (each pass of `--watch` has its own).
    pub fn new_pass(&self) {
        if let Ok(mut starts) = self.phase_starts.lock() {
            starts.clear();
        }
    }

    pub fn set_phase(&self, p: Phase) {
        if let Ok(mut starts) = self.phase_starts.lock() {
            starts.push((p, Instant::now()));
        }
    }

    /// Time spent in each phase of a run that began at `started`.
    fn phase_times(&self, started: Instant) -> Vec<(Phase, Duration)> {
        let starts = self
            .phase_starts
            .lock()
            .map(|s| s.clone())
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut current = (Phase::Reading, started);
        for next in starts {
            out.push((current.0, next.1.saturating_duration_since(current.1)));
            current = next;
        }
        out.push((current.0, current.1.elapsed()));
        out
    }
}

/// Paths the index itself uses, which are never indexed.
fn own_files(db: &Path) -> Vec<PathBuf> {
    let dir = db
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let Ok(dir) = std::fs::canonicalize(dir) else {
        return Vec::new();
    };
    let Some(name) = db.file_name() else {
        return Vec::new();
    };
    ["", "-wal", "-shm", "-journal", ".lock"]
        .iter()
        .map(|s| {
            let mut n = name.to_os_string();
            n.push(s);
            dir.join(n)
        })
        .collect()
}

/// Holds the index's lock file for the duration of a run.
pub struct Lock(#[allow(dead_code)] File);

/// Takes the index's lock: one writer at a time.
pub fn lock(db: &Path) -> Result<Lock, IndexError> {
    let mut p = db.as_os_str().to_owned();
    p.push(".lock");
    let p = PathBuf::from(p);
    let f = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&p)?;
    match f.try_lock() {
        Ok(()) => Ok(Lock(f)),
        Err(std::fs::TryLockError::WouldBlock) => Err(IndexError::Locked(p)),
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

/// What `forget` did: the files forgotten, and the paths that matched none.
#[derive(Debug, Default)]
pub struct ForgetReport {
    pub forgotten: Forgotten,
    pub paths: Vec<String>,
    pub unmatched: Vec<PathBuf>,
}

/// Forgets the files at `paths` (files, or folders: every file under them,
/// whether still there or not): their packets leave the index, flows with
/// no packet left are deleted, the others' counts are recomputed, and each
/// file's row stays `forgotten`.
pub fn forget(db: &Path, paths: &[PathBuf]) -> Result<ForgetReport, IndexError> {
    let _lock = lock(db)?;
    let mut store = pcapidx_store::Store::open(db)?;
    let rows = store.files()?;
    let mut ids = Vec::new();
    let mut report = ForgetReport::default();
    for p in paths {
        let abs = std::fs::canonicalize(p)
            .or_else(|_| std::path::absolute(p))
            .map_err(IndexError::Io)?;
        let before = ids.len();
        for r in &rows {
            let at = Path::new(&r.path);
            if (at == abs || at.starts_with(&abs))
                && r.status != FileStatus::Forgotten
                && !ids.contains(&r.file_id)
            {
                ids.push(r.file_id);
                report.paths.push(r.path.clone());
            }
        }
        if ids.len() == before {
            report.unmatched.push(p.clone());
        }
    }
    if !ids.is_empty() {
        report.forgotten = store.forget(&ids, "forgotten by `pcapidx forget`")?;
    }
    store.checkpoint_wal()?;
    store.leave_wal();
    Ok(report)
}

/// Indexes `inputs` (files and folders) into the index at `db`.
pub fn run(
    db: &Path,
    inputs: &[PathBuf],
    opts: &Options,
    progress: &Progress,
    on_file: &mut dyn FnMut(&FileOutcome),
) -> Result<Report, IndexError> {
    let _lock = lock(db)?;
    pipeline::run(db, inputs, &own_files(db), opts, progress, on_file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    /// Everything in the index, in a stable order.
    fn content(db: &Path) -> Vec<String> {
        let store = pcapidx_store::Store::open_read_only(db).unwrap();
        let mut rows = Vec::new();
        for sql in [
            "SELECT * FROM flows ORDER BY flow_id",
            "SELECT * FROM packets ORDER BY flow_id, ts_ns, file_id, offset",
            "SELECT path, packets, flow_packets, status, indexed_bytes FROM files ORDER BY path",
        ] {
            store
                .query::<StoreError>(sql, &[], |r| {
                    if let pcapidx_store::QueryRow::Values(v) = r {
                        rows.push(format!("{v:?}"));
                    }
                    Ok(())
                })
                .unwrap();
        }
        rows
    }

    /// A writer that holds its writes while each commit is checkpointed
    /// (a WAL limit of 0 makes it hold after every commit) stores what one
    /// thread stores.
    #[test]
    fn writes_held_for_checkpoints_give_the_same_index() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata/overlap");
        let dir = std::env::temp_dir().join(format!("pcapidx-index-held-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let index = |name: &str, opts: Options| {
            let db = dir.join(name);
            let report = run(
                &db,
                std::slice::from_ref(&data),
                &opts,
                &Progress::default(),
                &mut |_| {},
            )
            .unwrap();
            assert!(report.complete() && report.packets > 100);
            db
        };
        let one = index(
            "one.db",
            Options {
                jobs: 1,
                ..Options::default()
            },
        );
        let held = index(
            "held.db",
            Options {
                jobs: 2,
                checkpoint_packets: 7,
                wal_soft_limit: 0,
                ..Options::default()
            },
        );
        let (a, b) = (content(&one), content(&held));
        assert!(a.len() > 100);
        assert_eq!(a, b);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A run ends in its last phase with every planned byte counted:
    /// file headers, pcapng, and the unread tail of a damaged file too.
    #[test]
    fn a_run_goes_through_its_phases() {
        let data = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata");
        for jobs in [1, 2] {
            let dir = std::env::temp_dir().join(format!(
                "pcapidx-index-phases-{jobs}-{}",
                std::process::id()
            ));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let whole = std::fs::read(data.join("rotated/rotated_00000.pcap")).unwrap();
            let damaged = dir.join("damaged.pcap");
            // Cut short, and not a copy of the start of the original (which
            // would be a duplicate, not read): its first timestamp differs.
            let mut cut = whole[..whole.len() / 2].to_vec();
            cut[24] ^= 1;
            std::fs::write(&damaged, &cut).unwrap();
            let progress = Progress::default();
            assert_eq!(progress.phase(), Phase::Reading);
            let opts = Options {
                jobs,
                ..Options::default()
            };
            let report = run(
                &dir.join("i.db"),
                &[data.clone(), damaged],
                &opts,
                &progress,
                &mut |_| {},
            )
            .unwrap();
            assert!(report.packets > 0);
            assert!(!report.complete(), "the damaged file is reported");
            assert_eq!(progress.phase(), Phase::Checkpointing);
            let order: Vec<Phase> = report.phases.iter().map(|p| p.0).collect();
            assert_eq!(
                order,
                [
                    Phase::Reading,
                    Phase::Saving,
                    Phase::Indexing,
                    Phase::Checkpointing
                ]
            );
            let total: Duration = report.phases.iter().map(|p| p.1).sum();
            assert!(total <= report.elapsed + Duration::from_millis(50));
            assert_eq!(
                progress.bytes_read.load(Ordering::Relaxed),
                progress.bytes_total.load(Ordering::Relaxed)
            );
            std::fs::remove_dir_all(&dir).unwrap();
        }
    }
}
