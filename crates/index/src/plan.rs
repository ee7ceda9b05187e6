//! Deciding what to do with each file: index it from the start, continue
//! it (it grew, or a run was interrupted, or it came back), leave it
//! (unchanged), recognise it (moved from a path now gone, or a copy of an
//! indexed file), or record why it cannot be indexed. A path whose content
//! changed is a new file: its earlier content's row becomes `overwritten`.
use std::fs::{self, File};
use std::path::Path;
use std::time::UNIX_EPOCH;

use pcapidx_capture::{
    CaptureReader, Fingerprint, Interface, LEAD_SPAN, OpenError, Resume, fingerprint,
};
use pcapidx_store::{FileRow, FileStatus, Store};

use crate::Action;
use crate::merge::Source;

/// A plan, the rows to write before it (an earlier content of the path,
/// now `overwritten`), and what to tell the user.
pub(crate) struct Planned {
    pub before: Vec<FileRow>,
    pub plan: Plan,
    pub note: Option<String>,
    /// The row of another path this plan takes over (a moved file).
    pub claims: Option<i64>,
}

impl From<Plan> for Planned {
    fn from(plan: Plan) -> Self {
        Planned {
            before: Vec::new(),
            plan,
            note: None,
            claims: None,
        }
    }
}

pub(crate) enum Plan {
    /// Unchanged since it was last examined; `touched` if its row must be
    /// written again (its mtime or path changed).
    Leave { row: FileRow, touched: bool },
    /// Not indexed this run; the row says why.
    Record { row: FileRow, action: Action },
    /// Read records: from the start, or from where the index stopped.
    Read {
        row: FileRow,
        source: Source,
        action: Action,
    },
}

pub(crate) fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The first record a reader would deliver: (timestamp, offset).
pub(crate) fn peek(mut r: CaptureReader) -> Option<(i64, u64)> {
    // Once per file before the run: read little (a first record longer
    // than this is still read whole).
    r.set_chunk_size(4 * 1024);
    r.next_chunk()
        .ok()
        .flatten()
        .and_then(|c| c.records.first().map(|m| (m.ts_ns, m.offset)))
}

fn fingerprint_of(path: &Path, len: u64) -> Option<Fingerprint> {
    File::open(path).and_then(|f| fingerprint(&f, len)).ok()
}

/// Does `path` hold, in its first `row.indexed_bytes` bytes, the content `row` indexed?
pub(crate) fn holds(path: &Path, row: &FileRow) -> bool {
    fingerprint_of(path, row.indexed_bytes)
        .is_some_and(|fp| Some(fp.head) == row.head_hash && Some(fp.tail) == row.tail_hash)
}

pub(crate) fn now_ns() -> i64 {
    std::time::SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i64)
}

pub(crate) fn plan(store: &Store, path: &Path, max_size: Option<u64>) -> Planned {
    let path_text = path.to_string_lossy().into_owned();
    let (size, mtime) = match fs::metadata(path) {
        Ok(m) => (m.len(), mtime_ns(&m)),
        Err(e) => {
            let mut row = FileRow::new(path_text, 0, 0, FileStatus::Error);
            row.error = Some(match fs::read_link(path) {
                Ok(target) => format!("broken link to {}: {e}", target.display()),
                Err(_) => format!("cannot read: {e}"),
            });
            return Plan::Record {
                row,
                action: Action::Failed,
            }
            .into();
        }
    };
    let known = match store.file_by_path(&path_text) {
        Ok(k) => k,
        Err(e) => {
            let mut row = FileRow::new(path_text, size, mtime, FileStatus::Error);
            row.error = Some(format!("index lookup failed: {e}"));
            return Plan::Record {
                row,
                action: Action::Failed,
            }
            .into();
        }
    };
    match known {
        None => new_path(
            store,
            FileRow::new(path_text, size, mtime, FileStatus::Indexing),
            path,
            max_size,
        ),
        Some(row) => again(store, row, path, size, mtime, max_size),
    }
}

/// A path the index has no current row for (or whose content is new): is
/// it an indexed file moved here from a path now gone, or a copy of an
/// indexed file that is still in its place? Otherwise it is read afresh.
fn new_path(store: &Store, row: FileRow, path: &Path, max_size: Option<u64>) -> Planned {
    let size = row.size;
    if size > 0 {
        let lead = File::open(path).and_then(|f| pcapidx_capture::lead_hash(&f, size));
        let candidates = match lead {
            Ok(lead) => store.files_by_lead(lead).unwrap_or_default(),
            Err(_) => Vec::new(),
        };
        for k in candidates
            .into_iter()
            .filter(|k| k.has_content() && k.path != row.path)
        {
            // Same content up to the shorter of the two, and the lead covers
            // the same bytes (a shorter file's lead is over all of it).
            let common = k.indexed_bytes.min(size);
            if common < LEAD_SPAN && k.indexed_bytes != size {
                continue;
            }
            let k_path = Path::new(&k.path);
            let k_in_place = holds(k_path, &k);
            if k.indexed_bytes <= size && holds(path, &k) {
                if k_in_place && k.indexed_bytes == size {
                    return duplicate(row, &k);
                }
                if !k_in_place {
                    return moved(store, k, row, path);
                }
                // A copy that holds more than the indexed file, which is
                // still in its place: read afresh below (see docs/schema.md).
            } else if k.indexed_bytes > size
                && k_in_place
                && fingerprint_of(path, size) == fingerprint_of(k_path, size)
            {
                return duplicate(row, &k);
            }
        }
    }
    fresh(row, path, max_size).into()
}

/// `row`'s path repeats the content of the indexed file `of`.
fn duplicate(mut row: FileRow, of: &FileRow) -> Planned {
    row.status = FileStatus::Duplicate;
    row.duplicate_of = Some(of.file_id);
    row.format = of.format.clone();
    row.status_at_ns = Some(now_ns());
    row.error = Some(format!("same content as {} (file {})", of.path, of.file_id));
    Planned {
        before: Vec::new(),
        plan: Plan::Record {
            row,
            action: Action::Duplicate,
        },
        note: Some(format!("duplicate of {}", of.path)),
        claims: None,
    }
}

/// The indexed file `k`, whose path is gone, is at `now.path`: its row
/// follows it, and what it gained since is read.
fn moved(store: &Store, mut k: FileRow, now: FileRow, path: &Path) -> Planned {
    let note = Some(format!("moved from {}", k.path));
    let id = k.file_id;
    k.path = now.path;
    k.status_at_ns = Some(now_ns());
    let size = now.size;
    let mtime = now.mtime_ns;
    let mut planned = if k.indexed_bytes == size && k.status != FileStatus::Indexing {
        k.mtime_ns = mtime;
        k.size = size;
        if k.status == FileStatus::Missing {
            k.status = FileStatus::Ok;
            k.error = None;
        }
        Planned::from(Plan::Leave {
            row: k,
            touched: true,
        })
    } else {
        resume(store, k, path, size, mtime)
    };
    if let Plan::Leave { row, .. } = &planned.plan {
        planned.plan = Plan::Record {
            row: row.clone(),
            action: Action::Moved,
        };
    }
    planned.note = note;
    planned.claims = Some(id);
    planned
}

/// A file met for the first time (or one with nothing indexed from it).
fn fresh(row: FileRow, path: &Path, max_size: Option<u64>) -> Plan {
    let mut row = match over_max_size(row, max_size) {
        Ok(row) => row,
        Err(skipped) => return *skipped,
    };
    match CaptureReader::open(path) {
        Ok(r) => {
            row.format = Some(r.format().name().to_string());
            row.status = FileStatus::Indexing;
            row.error = None;
            let head = peek(r);
            let source = Source {
                path: path.to_path_buf(),
                object: None,
                size: row.size,
                resume: None,
                head,
                first_ts: head.map_or(i64::MIN, |h| h.0),
                clock: None,
            };
            Plan::Read {
                row,
                source,
                action: Action::Indexed,
            }
        }
        Err(e) => not_opened(row, e),
    }
}

/// `row` as it stands, or (larger than `--max-file-size`) the plan that skips it.
pub(crate) fn over_max_size(mut row: FileRow, max_size: Option<u64>) -> Result<FileRow, Box<Plan>> {
    match max_size.filter(|&m| row.size > m) {
        None => Ok(row),
        Some(max) => {
            row.status = FileStatus::Skipped;
            row.error = Some(format!(
                "larger than --max-file-size ({} > {max} bytes)",
                row.size
            ));
            Err(Box::new(Plan::Record {
                row,
                action: Action::Skipped,
            }))
        }
    }
}

/// What is recorded of a file or object that did not open as a capture.
pub(crate) fn not_opened(mut row: FileRow, e: OpenError) -> Plan {
    match e {
        OpenError::NotACapture(why) => {
            row.status = FileStatus::NotACapture;
            row.error = Some(why);
            Plan::Record {
                row,
                action: Action::NotACapture,
            }
        }
        e => {
            row.status = FileStatus::Error;
            row.error = Some(e.to_string());
            Plan::Record {
                row,
                action: Action::Failed,
            }
        }
    }
}

/// A file the index already knows.
fn again(
    store: &Store,
    mut row: FileRow,
    path: &Path,
    size: u64,
    mtime: i64,
    max_size: Option<u64>,
) -> Planned {
    let interrupted = row.status == FileStatus::Indexing;
    // Skipping depends on this run's options: look again.
    let skipped = row.status == FileStatus::Skipped;
    let back = row.status == FileStatus::Missing;
    // An `ok` file with bytes after its last record: a record was being
    // written when it was read (`--watch`); look again.
    let tail = row.status == FileStatus::Ok && row.indexed_bytes < size;
    if !interrupted && !skipped && !back && !tail && row.size == size && row.mtime_ns == mtime {
        if row.lead_hash.is_none() && row.has_content() {
            // Indexed before schema version 4: learn its lead hash, so that
            // a move or a copy of it is recognised.
            row.lead_hash = fingerprint_of(path, row.indexed_bytes).map(|fp| fp.lead);
            return Plan::Leave { row, touched: true }.into();
        }
        return Plan::Leave {
            row,
            touched: false,
        }
        .into();
    }
    if row.status == FileStatus::Duplicate {
        // The copy changed: look at it as a new path, in its row.
        let mut fresh_row = FileRow::new(row.path.clone(), size, mtime, FileStatus::Indexing);
        fresh_row.file_id = row.file_id;
        return new_path(store, fresh_row, path, max_size);
    }
    if !row.has_content() {
        // Nothing of it is indexed (not a capture, unreadable, skipped): look again.
        let file_id = row.file_id;
        let mut fresh_row = FileRow::new(row.path.clone(), size, mtime, FileStatus::Indexing);
        fresh_row.file_id = file_id;
        return new_path(store, fresh_row, path, max_size);
    }
    // Is the part already indexed still the same bytes?
    if size >= row.indexed_bytes && holds(path, &row) {
        let restored = matches!(row.status, FileStatus::Error | FileStatus::Missing);
        if size == row.indexed_bytes && !interrupted && !restored {
            row.mtime_ns = mtime;
            row.size = size;
            return Plan::Leave { row, touched: true }.into();
        }
        // Grown, interrupted, or back as it was (after it went missing or
        // was cut short): read from where the index stopped, which also
        // sets its status again.
        let mut planned = resume(store, row, path, size, mtime);
        if restored {
            planned.note = Some("back as it was indexed".into());
        }
        return planned;
    }
    // Its content changed. Cut short (what is left starts as the indexed
    // content did, or is too short to tell): the indexed packets may come
    // back, so the row waits as an error. Otherwise it is new content.
    let lead_now = File::open(path)
        .and_then(|f| pcapidx_capture::lead_hash(&f, size))
        .ok();
    let comparable = size.min(row.indexed_bytes) >= LEAD_SPAN;
    if size < row.indexed_bytes && (!comparable || lead_now == row.lead_hash) {
        row.status = FileStatus::Error;
        row.error = Some(format!(
            "truncated since it was indexed ({size} bytes now, {} indexed); its {} packets \
             stay in the index, and carving them will fail until it is restored",
            row.indexed_bytes, row.packets
        ));
        row.status_at_ns = Some(now_ns());
        return Plan::Record {
            row,
            action: Action::Failed,
        }
        .into();
    }
    let mut old = row.clone();
    old.status = FileStatus::Overwritten;
    old.status_at_ns = Some(now_ns());
    old.error = Some(format!(
        "its path now holds other content ({size} bytes); its flows stay, but their \
         packets in it cannot be carved"
    ));
    let new = FileRow::new(row.path, size, mtime, FileStatus::Indexing);
    let mut planned = new_path(store, new, path, max_size);
    planned.before.insert(0, old);
    planned
        .note
        .get_or_insert_with(|| "new content: its earlier content is now `overwritten`".into());
    planned
}

/// Read `row`'s file from where the index stopped.
fn resume(store: &Store, mut row: FileRow, path: &Path, size: u64, mtime: i64) -> Planned {
    let ifaces: Vec<Interface> = match store.interfaces(row.file_id) {
        Ok(v) => v
            .into_iter()
            .filter(|i| i.block_offset < row.indexed_bytes)
            .collect(),
        Err(e) => {
            row.status = FileStatus::Error;
            row.error = Some(format!("index lookup failed: {e}"));
            return Plan::Record {
                row,
                action: Action::Failed,
            }
            .into();
        }
    };
    let resume = Resume {
        offset: row.indexed_bytes,
        section_offset: row.resume_section,
        last_ts_ns: row.resume_ts_ns,
    };
    let head = CaptureReader::open_at(path, resume, ifaces.clone())
        .ok()
        .and_then(peek);
    let source = Source {
        path: path.to_path_buf(),
        object: None,
        size,
        resume: Some((resume, ifaces)),
        head,
        first_ts: row.first_ts_ns.or(head.map(|h| h.0)).unwrap_or(i64::MIN),
        clock: row.last_ts_ns,
    };
    row.size = size;
    row.mtime_ns = mtime;
    row.status = FileStatus::Indexing;
    row.error = None;
    Plan::Read {
        row,
        source,
        action: Action::Resumed,
    }
    .into()
}
