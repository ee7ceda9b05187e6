//! Deciding what to do with each file: index it from the start, continue
//! it (it grew, or a run was interrupted), leave it (unchanged), or record
//! why it cannot be indexed.
use std::fs::{self, File};
use std::path::Path;
use std::time::UNIX_EPOCH;

use pcapidx_capture::{CaptureReader, Interface, OpenError, Resume, fingerprint};
use pcapidx_store::{FileRow, FileStatus, Store};

use crate::Action;
use crate::merge::Source;

pub(crate) enum Plan {
    /// Unchanged since it was last examined; `touched` if only its mtime changed.
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

fn mtime_ns(m: &fs::Metadata) -> i64 {
    m.modified()
        .ok()
        .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
        .map_or(0, |d| d.as_nanos() as i64)
}

/// The first record a reader would deliver: (timestamp, offset).
fn peek(mut r: CaptureReader) -> Option<(i64, u64)> {
    // Once per file before the run: read little (a first record longer
    // than this is still read whole).
    r.set_chunk_size(4 * 1024);
    r.next_chunk()
        .ok()
        .flatten()
        .and_then(|c| c.records.first().map(|m| (m.ts_ns, m.offset)))
}

pub(crate) fn plan(store: &Store, path: &Path, max_size: Option<u64>) -> Plan {
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
            };
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
            };
        }
    };
    match known {
        None => fresh(
            FileRow::new(path_text, size, mtime, FileStatus::Indexing),
            path,
            max_size,
        ),
        Some(row) => again(store, row, path, size, mtime, max_size),
    }
}

/// A file met for the first time (or one with nothing indexed from it).
fn fresh(mut row: FileRow, path: &Path, max_size: Option<u64>) -> Plan {
    if let Some(max) = max_size.filter(|&m| row.size > m) {
        row.status = FileStatus::Skipped;
        row.error = Some(format!(
            "larger than --max-file-size ({} > {max} bytes)",
            row.size
        ));
        return Plan::Record {
            row,
            action: Action::Skipped,
        };
    }
    match CaptureReader::open(path) {
        Ok(r) => {
            row.format = Some(r.format().name().to_string());
            row.status = FileStatus::Indexing;
            row.error = None;
            let head = peek(r);
            let source = Source {
                path: path.to_path_buf(),
                size: row.size,
                resume: None,
                head,
                first_ts: head.map_or(i64::MIN, |h| h.0),
            };
            Plan::Read {
                row,
                source,
                action: Action::Indexed,
            }
        }
        Err(OpenError::NotACapture(why)) => {
            row.status = FileStatus::NotACapture;
            row.error = Some(why);
            Plan::Record {
                row,
                action: Action::NotACapture,
            }
        }
        Err(e) => {
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
) -> Plan {
    let interrupted = row.status == FileStatus::Indexing;
    // Skipping depends on this run's options: look again.
    let skipped = row.status == FileStatus::Skipped;
    if !interrupted && !skipped && row.size == size && row.mtime_ns == mtime {
        return Plan::Leave {
            row,
            touched: false,
        };
    }
    let has_content = row.indexed_bytes > 0 && row.format.is_some();
    if !has_content {
        // Nothing of it is indexed (not a capture, unreadable, skipped): look again.
        let file_id = row.file_id;
        let mut fresh_row = FileRow::new(row.path.clone(), size, mtime, FileStatus::Indexing);
        fresh_row.file_id = file_id;
        return fresh(fresh_row, path, max_size);
    }
    // Is the part already indexed still the same bytes?
    let same = File::open(path)
        .and_then(|mut f| fingerprint(&mut f, row.indexed_bytes))
        .is_ok_and(|fp| Some(fp.head) == row.head_hash && Some(fp.tail) == row.tail_hash)
        && size >= row.indexed_bytes;
    if !same {
        row.status = FileStatus::Error;
        row.error = Some(format!(
            "changed since it was indexed ({} bytes then, {size} now, content differs); \
             its {} packets already indexed stay, and carving them will fail",
            row.size, row.packets
        ));
        return Plan::Record {
            row,
            action: Action::Failed,
        };
    }
    if size == row.indexed_bytes && !interrupted {
        row.mtime_ns = mtime;
        return Plan::Leave { row, touched: true };
    }
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
            };
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
        size,
        resume: Some((resume, ifaces)),
        head,
        first_ts: row.first_ts_ns.or(head.map(|h| h.0)).unwrap_or(i64::MIN),
    };
    row.size = size;
    row.mtime_ns = mtime;
    row.status = FileStatus::Indexing;
    Plan::Read {
        row,
        source,
        action: Action::Resumed,
    }
}
