//! Captures in object storage: which objects an input or an event names,
//! and what to do with each. An object does not grow or move: its content
//! is named by its ETag, so one with the ETag and size the index holds is
//! unchanged, one with another ETag is new content at that URL (its earlier
//! content's row becomes `overwritten`), and one a run was interrupted in
//! is continued by a range read from where the index stopped.
use std::path::PathBuf;

use pcapidx_capture::{CaptureReader, OpenError, Resume};
use pcapidx_source::event::Created;
use pcapidx_source::{Object, ObjectUrl, SourceError};
use pcapidx_store::{FileRow, FileStatus, Store};

use crate::Action;
use crate::merge::Source;
use crate::plan::{Plan, Planned, now_ns};

/// ETags compare without the quotes some listings keep.
fn same_etag(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => a.trim_matches('"') == b.trim_matches('"'),
        _ => false,
    }
}

/// The objects named by URL inputs, and a problem per input that could not
/// be listed (a missing bucket, denied access: named, the others go on).
pub(crate) fn list(urls: &[String]) -> (Vec<Object>, Vec<(PathBuf, String)>) {
    let mut found = Vec::new();
    let mut problems = Vec::new();
    for u in urls {
        match ObjectUrl::parse(u).and_then(|url| pcapidx_source::list(&url)) {
            Ok(objs) => found.extend(objs),
            Err(e) => problems.push((PathBuf::from(u), without_url(&e, u))),
        }
    }
    found.sort_by(|a, b| (&a.url.bucket, &a.url.key).cmp(&(&b.url.bucket, &b.url.key)));
    found.dedup_by(|a, b| a.url == b.url);
    (found, problems)
}

/// The error's text without the URL it starts with (the report names it).
fn without_url(e: &SourceError, url: &str) -> String {
    let text = e.to_string();
    text.strip_prefix(url)
        .and_then(|t| t.strip_prefix(": "))
        .map_or(text.clone(), str::to_string)
}

/// What an event's objects need: a row written without any request (over
/// `--max-file-size` by the event's own size, or already indexed with the
/// event's ETag), or the object as a HEAD describes it now.
pub(crate) enum FromEvent {
    Known(Box<Planned>),
    Look(Object),
}

pub(crate) fn from_event(
    store: &Store,
    c: &Created,
    max_size: Option<u64>,
) -> Result<FromEvent, (PathBuf, String)> {
    let url = c.url.to_string();
    if let Some(size) = c.size {
        let mut row = FileRow::new(url.clone(), size, 0, FileStatus::Indexing);
        row.etag = c.etag.clone();
        if let Err(skipped) = crate::plan::over_max_size(row, max_size) {
            return Ok(FromEvent::Known(Box::new((*skipped).into())));
        }
    }
    if let Ok(Some(row)) = store.file_by_path(&url)
        && same_etag(row.etag.as_deref(), c.etag.as_deref())
        && c.size.is_none_or(|s| s == row.size)
        && matches!(
            row.status,
            FileStatus::Ok | FileStatus::Partial | FileStatus::NotACapture
        )
    {
        // A repeated event: nothing to fetch.
        return Ok(FromEvent::Known(Box::new(
            Plan::Leave {
                row,
                touched: false,
            }
            .into(),
        )));
    }
    pcapidx_source::head(&c.url)
        .map(FromEvent::Look)
        .map_err(|e| (PathBuf::from(&url), without_url(&e, &url)))
}

fn row_for(obj: &Object, status: FileStatus) -> FileRow {
    let mut row = FileRow::new(obj.url.to_string(), obj.size, obj.mtime_ns, status);
    row.etag = obj.etag.clone();
    row.version_id = obj.version.clone();
    row
}

pub(crate) fn plan(store: &Store, obj: &Object, max_size: Option<u64>) -> Planned {
    let url = obj.url.to_string();
    let known = match store.file_by_path(&url) {
        Ok(k) => k,
        Err(e) => {
            let mut row = row_for(obj, FileStatus::Error);
            row.error = Some(format!("index lookup failed: {e}"));
            return Plan::Record {
                row,
                action: Action::Failed,
            }
            .into();
        }
    };
    let Some(mut row) = known else {
        return fresh(row_for(obj, FileStatus::Indexing), obj, max_size).into();
    };
    let same = same_etag(row.etag.as_deref(), obj.etag.as_deref()) && row.size == obj.size;
    if same {
        match row.status {
            FileStatus::Ok | FileStatus::Partial | FileStatus::NotACapture => {
                return Plan::Leave {
                    row,
                    touched: false,
                }
                .into();
            }
            FileStatus::Missing if row.has_content() => {
                row.status = FileStatus::Ok;
                row.error = None;
                row.status_at_ns = Some(now_ns());
                let mut p = Planned::from(Plan::Leave { row, touched: true });
                p.note = Some("back as it was indexed".into());
                return p;
            }
            FileStatus::Indexing if row.has_content() => return resume(store, row, obj),
            _ => {
                // Nothing of it indexed (skipped, unreadable): look again.
                let mut again = row_for(obj, FileStatus::Indexing);
                again.file_id = row.file_id;
                return fresh(again, obj, max_size).into();
            }
        }
    }
    if !row.has_content() {
        let mut again = row_for(obj, FileStatus::Indexing);
        again.file_id = row.file_id;
        return fresh(again, obj, max_size).into();
    }
    let mut old = row;
    old.status = FileStatus::Overwritten;
    old.status_at_ns = Some(now_ns());
    old.error = Some(format!(
        "its URL now holds other content (ETag {}); its flows stay, but their packets in it \
         cannot be carved",
        obj.etag.as_deref().unwrap_or("unknown")
    ));
    let mut planned = Planned::from(fresh(row_for(obj, FileStatus::Indexing), obj, max_size));
    planned.before.push(old);
    planned.note = Some("new content: its earlier content is now `overwritten`".into());
    planned
}

/// Opens a reader on the object, at `at` if given.
pub(crate) fn open_reader(
    obj: &Object,
    at: Option<&(Resume, Vec<pcapidx_capture::Interface>)>,
) -> Result<CaptureReader, OpenError> {
    let src = pcapidx_source::open(obj).map_err(|e| OpenError::Io(std::io::Error::other(e)))?;
    match at {
        None => CaptureReader::open_source(src, obj.size),
        Some((at, ifaces)) => CaptureReader::open_source_at(src, obj.size, *at, ifaces.clone()),
    }
}

fn source(
    obj: &Object,
    resume: Option<(Resume, Vec<pcapidx_capture::Interface>)>,
    head: Option<(i64, u64)>,
    first_ts: i64,
    clock: Option<i64>,
) -> Source {
    Source {
        path: PathBuf::from(obj.url.to_string()),
        object: Some(Box::new(obj.clone())),
        size: obj.size,
        resume,
        head,
        first_ts,
        clock,
    }
}

/// An object met for the first time (or with nothing indexed from it).
fn fresh(row: FileRow, obj: &Object, max_size: Option<u64>) -> Plan {
    let mut row = match crate::plan::over_max_size(row, max_size) {
        Ok(row) => row,
        Err(skipped) => return *skipped,
    };
    match open_reader(obj, None) {
        Ok(r) => {
            row.format = Some(r.format().name().to_string());
            let head = crate::plan::peek(r);
            Plan::Read {
                row,
                source: source(obj, None, head, head.map_or(i64::MIN, |h| h.0), None),
                action: Action::Indexed,
            }
        }
        Err(e) => crate::plan::not_opened(row, e),
    }
}

/// Continue an object a run was interrupted in, from where the index stopped.
fn resume(store: &Store, mut row: FileRow, obj: &Object) -> Planned {
    let ifaces = match store.interfaces(row.file_id) {
        Ok(v) => v
            .into_iter()
            .filter(|i| i.block_offset < row.indexed_bytes)
            .collect::<Vec<_>>(),
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
    let at = Resume {
        offset: row.indexed_bytes,
        section_offset: row.resume_section,
        last_ts_ns: row.resume_ts_ns,
    };
    let resume = (at, ifaces);
    let head = open_reader(obj, Some(&resume))
        .ok()
        .and_then(crate::plan::peek);
    let first_ts = row.first_ts_ns.or(head.map(|h| h.0)).unwrap_or(i64::MIN);
    let src = source(obj, Some(resume), head, first_ts, row.last_ts_ns);
    row.error = None;
    Plan::Read {
        row,
        source: src,
        action: Action::Resumed,
    }
    .into()
}

/// Indexed objects under the prefixes listed that the listing no longer
/// holds: deleted from the bucket.
pub(crate) fn missing(
    store: &Store,
    urls: &[String],
    listed: &[Object],
) -> Result<Vec<FileRow>, pcapidx_store::StoreError> {
    let mut out: Vec<FileRow> = Vec::new();
    for u in urls {
        let Ok(url) = ObjectUrl::parse(u) else {
            continue;
        };
        // Only a prefix that was listed (a bucket or a folder) says what is gone.
        if !(url.key.is_empty() || url.key.ends_with('/')) {
            continue;
        }
        let dir = url.to_string();
        for row in store.files_under(dir.trim_end_matches('/'))? {
            let gone = row.has_content()
                && !matches!(row.status, FileStatus::Missing | FileStatus::Forgotten)
                && !listed.iter().any(|o| o.url.to_string() == row.path);
            if gone && !out.iter().any(|r| r.file_id == row.file_id) {
                out.push(row);
            }
        }
    }
    Ok(out)
}

/// Objects planned side by side, when there are several: planning one may
/// wait on two requests (its header, its first record), which for a
/// bucket of thousands would add up. Each thread reads the index through
/// a read-only connection of its own; what it cannot open is planned here.
pub(crate) fn plan_all(store: &Store, objs: &[Object], max_size: Option<u64>) -> Vec<Planned> {
    const THREADS: usize = 16;
    if objs.len() < 2 {
        return objs.iter().map(|o| plan(store, o, max_size)).collect();
    }
    let per = objs.len().div_ceil(THREADS);
    let db = store.path().to_path_buf();
    let done: Vec<Option<Vec<Planned>>> = std::thread::scope(|s| {
        let handles: Vec<_> = objs
            .chunks(per)
            .map(|chunk| {
                let db = &db;
                s.spawn(move || {
                    let own = Store::open_read_only(db).ok()?;
                    Some(chunk.iter().map(|o| plan(&own, o, max_size)).collect())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().ok().flatten())
            .collect()
    });
    let mut out = Vec::with_capacity(objs.len());
    for (chunk, got) in objs.chunks(per).zip(done) {
        match got {
            Some(p) => out.extend(p),
            None => out.extend(chunk.iter().map(|o| plan(store, o, max_size))),
        }
    }
    out
}
