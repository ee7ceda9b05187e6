//! One object as a [`ByteSource`]: positioned reads and range lists by
//! range requests (neighbours coalesced, several in flight), and a stream
//! that survives a dropped connection by resuming at the last byte it
//! delivered. Every request is conditional on the object's ETag (`If-Match`)
//! and every response's ETag is checked as well, for stores that ignore the
//! condition: bytes of a replaced object are never mixed with the indexed ones.
use std::io::{self, Read};
use std::ops::Range;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::BoxStream;
use object_store::{GetOptions, GetRange, ObjectStore};
use pcapidx_capture::ByteSource;

use crate::{Object, SourceError, wait};

/// Ranges closer than this are fetched as one: a gap costs less than a
/// request's round trip. `PCAPIDX_S3_COALESCE` (bytes) changes it: larger
/// makes fewer requests that fetch more bytes (BENCHMARKS.md measures both).
const COALESCE: u64 = 16 * 1024;

fn coalesce() -> u64 {
    std::env::var("PCAPIDX_S3_COALESCE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(COALESCE)
}
/// Attempts to resume a stream whose connection dropped.
const RESUMES: u32 = 5;

pub struct ObjectSource {
    store: Arc<dyn ObjectStore>,
    obj: Object,
    url: String,
    requests: Arc<AtomicU64>,
    fetched: Arc<AtomicU64>,
}

impl ObjectSource {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, obj: Object) -> Self {
        ObjectSource {
            url: obj.url.to_string(),
            store,
            obj,
            requests: Arc::new(AtomicU64::new(0)),
            fetched: Arc::new(AtomicU64::new(0)),
        }
    }

    pub fn object(&self) -> &Object {
        &self.obj
    }

    /// Requests made and body bytes received so far.
    pub fn traffic(&self) -> (u64, u64) {
        (
            self.requests.load(Ordering::Relaxed),
            self.fetched.load(Ordering::Relaxed),
        )
    }

    fn options(&self, range: Range<u64>) -> GetOptions {
        GetOptions {
            if_match: self.obj.etag.clone(),
            version: self.obj.version.clone(),
            range: Some(GetRange::Bounded(range)),
            ..GetOptions::default()
        }
    }

    /// Starts a GET of `range` and checks the response is of this object.
    async fn get(
        &self,
        range: Range<u64>,
    ) -> Result<BoxStream<'static, object_store::Result<Bytes>>, SourceError> {
        self.requests.fetch_add(1, Ordering::Relaxed);
        let path = self.obj.url.key_path();
        let r = self
            .store
            .get_opts(&path, self.options(range))
            .await
            .map_err(|e| SourceError::from_store(&self.url, e))?;
        if let (Some(want), Some(got)) = (&self.obj.etag, &r.meta.e_tag)
            && want != got
        {
            return Err(SourceError::Changed {
                url: self.url.clone(),
                why: format!("its ETag is {got} now, {want} when it was indexed"),
            });
        }
        Ok(r.into_stream())
    }

    async fn fetch(&self, range: Range<u64>) -> Result<Bytes, SourceError> {
        let want = range.end - range.start;
        let mut body = self.get(range).await?;
        let mut out = Vec::with_capacity(want as usize);
        while let Some(part) = body.next().await {
            let part = part.map_err(|e| SourceError::from_store(&self.url, e))?;
            self.fetched.fetch_add(part.len() as u64, Ordering::Relaxed);
            out.extend_from_slice(&part);
        }
        Ok(Bytes::from(out))
    }
}

fn io_err(e: SourceError) -> io::Error {
    let kind = match e {
        SourceError::NotFound { .. } | SourceError::NoBucket { .. } => io::ErrorKind::NotFound,
        SourceError::Denied { .. } => io::ErrorKind::PermissionDenied,
        _ => io::ErrorKind::Other,
    };
    io::Error::new(kind, e.to_string())
}

impl ByteSource for ObjectSource {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        let end = (offset + buf.len() as u64).min(self.obj.size);
        if offset >= end {
            return Ok(0);
        }
        let got = wait(&self.url, self.fetch(offset..end)).map_err(io_err)?;
        let n = got.len().min(buf.len());
        buf[..n].copy_from_slice(&got[..n]);
        Ok(n)
    }

    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Vec<u8>>> {
        let size = self.obj.size;
        let clamped: Vec<Range<u64>> = ranges
            .iter()
            .map(|r| r.start.min(size)..r.end.min(size))
            .collect();
        let wanted: Vec<Range<u64>> = clamped
            .iter()
            .filter(|r| r.start < r.end)
            .cloned()
            .collect();
        let got = wait(
            &self.url,
            object_store::coalesce_ranges(&wanted, |r| self.fetch(r), coalesce()),
        )
        .map_err(io_err)?;
        let mut got = got.into_iter();
        Ok(clamped
            .iter()
            .map(|r| {
                if r.start < r.end {
                    got.next().map(|b| b.to_vec()).unwrap_or_default()
                } else {
                    Vec::new()
                }
            })
            .collect())
    }

    fn stream(&self, range: Range<u64>) -> io::Result<Box<dyn Read + Send>> {
        Ok(Box::new(ObjectStream {
            src: ObjectSource {
                store: self.store.clone(),
                obj: self.obj.clone(),
                url: self.url.clone(),
                requests: self.requests.clone(),
                fetched: self.fetched.clone(),
            },
            pos: range.start,
            end: range.end.min(self.obj.size),
            body: None,
            part: Bytes::new(),
            failures: 0,
        }))
    }

    fn self_checking(&self) -> bool {
        self.obj.etag.is_some()
    }
}

/// A sequential read of an object, opened at the first read (a reader that
/// is opened and dropped costs no request) and reopened at the byte it
/// stopped at when the connection fails, with a growing pause.
struct ObjectStream {
    src: ObjectSource,
    pos: u64,
    end: u64,
    body: Option<BoxStream<'static, object_store::Result<Bytes>>>,
    part: Bytes,
    failures: u32,
}

impl ObjectStream {
    fn fail(&mut self, e: SourceError) -> io::Result<()> {
        self.body = None;
        self.failures += 1;
        // A replaced or vanished object does not come back by retrying.
        let lasting = matches!(
            e,
            SourceError::Changed { .. }
                | SourceError::NotFound { .. }
                | SourceError::NoBucket { .. }
                | SourceError::Denied { .. }
        );
        if lasting || self.failures > RESUMES {
            let mut text = e.to_string();
            if !lasting {
                text.push_str(&format!(" (at byte {}, after {RESUMES} resumes)", self.pos));
            }
            return Err(io::Error::other(text));
        }
        std::thread::sleep(Duration::from_millis(100 << self.failures.min(6)));
        Ok(())
    }
}

impl Read for ObjectStream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            if !self.part.is_empty() {
                let n = self.part.len().min(buf.len());
                buf[..n].copy_from_slice(&self.part[..n]);
                self.part = self.part.slice(n..);
                self.pos += n as u64;
                return Ok(n);
            }
            if self.pos >= self.end || buf.is_empty() {
                return Ok(0);
            }
            let url = self.src.url.clone();
            if self.body.is_none() {
                let range = self.pos..self.end;
                match wait(&url, self.src.get(range)) {
                    Ok(b) => self.body = Some(b),
                    Err(e) => {
                        self.fail(e)?;
                        continue;
                    }
                }
            }
            let Some(body) = self.body.as_mut() else {
                continue;
            };
            let next = wait(&url, async {
                body.next()
                    .await
                    .transpose()
                    .map_err(|e| SourceError::from_store(&url, e))
            });
            match next {
                Ok(Some(part)) => {
                    self.src
                        .fetched
                        .fetch_add(part.len() as u64, Ordering::Relaxed);
                    let left = (self.end - self.pos) as usize;
                    self.part = if part.len() > left {
                        part.slice(..left)
                    } else {
                        part
                    };
                    if !self.part.is_empty() {
                        self.failures = 0;
                    }
                }
                // The body ended before the range did: the object is shorter
                // than listed, or the connection closed cleanly mid-body.
                Ok(None) => {
                    let e = SourceError::Other {
                        url: url.clone(),
                        why: format!("the response ended at byte {} of {}", self.pos, self.end),
                    };
                    self.fail(e)?;
                }
                Err(e) => self.fail(e)?,
            }
        }
    }
}
