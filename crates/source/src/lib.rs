//! Captures in object storage, read in place: `s3://bucket/key` objects are
//! listed, streamed once to be indexed, and read back by range requests to
//! be carved, each request on condition of the ETag the index recorded, so
//! a replaced object is a clear error, never mixed bytes.
//!
//! Everything above this crate reads through
//! [`pcapidx_capture::ByteSource`]; an object is one more implementation of
//! it ([`ObjectSource`]). The object store's client is asynchronous: its
//! calls run on a small runtime of this crate's own and are waited for, so
//! callers stay synchronous (never call these from inside an async task).
#![forbid(unsafe_code)]

mod config;
pub mod event;
mod object;
mod put;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use futures_util::TryStreamExt;
use object_store::path::Path as KeyPath;
use object_store::{ObjectStore, ObjectStoreExt};
use thiserror::Error;

pub use object::ObjectSource;
pub use put::{keys_under, upload};

/// What went wrong with an object, in one line that names its URL.
#[derive(Debug, Error)]
pub enum SourceError {
    #[error("{0}: not an object URL (expected s3://bucket/key)")]
    BadUrl(String),
    #[error("{url}: {why}")]
    Config { url: String, why: String },
    #[error("{url}: no such object")]
    NotFound { url: String },
    #[error("{url}: no such bucket")]
    NoBucket { url: String },
    #[error("{url}: access denied ({why})")]
    Denied { url: String, why: String },
    #[error("{url}: replaced since it was indexed ({why})")]
    Changed { url: String, why: String },
    #[error("{url}: {why}")]
    Other { url: String, why: String },
}

impl SourceError {
    fn from_store(url: &str, e: object_store::Error) -> Self {
        let url = url.to_string();
        match e {
            object_store::Error::NotFound { source, .. } => {
                if source.to_string().contains("NoSuchBucket") {
                    SourceError::NoBucket { url }
                } else {
                    SourceError::NotFound { url }
                }
            }
            object_store::Error::PermissionDenied { source, .. }
            | object_store::Error::Unauthenticated { source, .. } => SourceError::Denied {
                url,
                why: short(&source.to_string()),
            },
            object_store::Error::Precondition { .. } => SourceError::Changed {
                url,
                why: "its ETag no longer matches the index".into(),
            },
            other if other.to_string().contains("403 Forbidden") => SourceError::Denied {
                url,
                why: "403 Forbidden: the credentials or the request's signature were refused"
                    .into(),
            },
            other => {
                // The causes too: "HTTP error" alone says little.
                let mut text = other.to_string();
                let mut cause = std::error::Error::source(&other);
                while let Some(c) = cause {
                    let t = c.to_string();
                    if !text.contains(&t) {
                        text.push_str(": ");
                        text.push_str(&t);
                    }
                    cause = c.source();
                }
                if text.contains("NoSuchBucket") {
                    SourceError::NoBucket { url }
                } else {
                    SourceError::Other {
                        url,
                        why: short(&text),
                    }
                }
            }
        }
    }
}

/// An error's text on one line, without the XML bodies some servers send.
fn short(text: &str) -> String {
    let one: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let cut = one.find("<?xml").unwrap_or(one.len());
    let mut s = one[..cut].trim_end_matches([' ', ':', ',']).to_string();
    if s.len() > 300 {
        let mut end = 300;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
        s.push('…');
    }
    s
}

/// Whether an input names an object (`scheme://…`) rather than a path.
pub fn is_url(s: &str) -> bool {
    match s.split_once("://") {
        Some((scheme, _)) => {
            !scheme.is_empty()
                && scheme
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        }
        None => false,
    }
}

/// `s3://bucket/key`, parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    pub bucket: String,
    pub key: String,
}

impl ObjectUrl {
    pub fn parse(url: &str) -> Result<Self, SourceError> {
        let rest = url
            .strip_prefix("s3://")
            .ok_or_else(|| SourceError::BadUrl(url.to_string()))?;
        let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
        if bucket.is_empty() {
            return Err(SourceError::BadUrl(url.to_string()));
        }
        Ok(ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        })
    }

    pub fn new(bucket: &str, key: &str) -> Self {
        ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
        }
    }

    fn key_path(&self) -> KeyPath {
        KeyPath::parse(&self.key).unwrap_or_else(|_| KeyPath::from(self.key.as_str()))
    }
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "s3://{}/{}", self.bucket, self.key)
    }
}

/// An object as a listing, a HEAD or an event describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Object {
    pub url: ObjectUrl,
    pub size: u64,
    pub etag: Option<String>,
    pub version: Option<String>,
    /// Last modified, ns since the epoch (0 when not known).
    pub mtime_ns: i64,
}

impl Object {
    fn from_meta(bucket: &str, m: object_store::ObjectMeta) -> Self {
        Object {
            url: ObjectUrl::new(bucket, m.location.as_ref()),
            size: m.size,
            etag: m.e_tag,
            version: m.version,
            mtime_ns: m.last_modified.timestamp_nanos_opt().unwrap_or(0),
        }
    }
}

/// The runtime the object store's calls run on.
pub(crate) fn runtime() -> Result<&'static tokio::runtime::Runtime, String> {
    static RT: OnceLock<Result<tokio::runtime::Runtime, String>> = OnceLock::new();
    RT.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("pcapidx-objects")
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the object store's runtime: {e}"))
    })
    .as_ref()
    .map_err(Clone::clone)
}

/// Runs `fut` to completion from synchronous code.
pub(crate) fn wait<T>(
    url: &str,
    fut: impl Future<Output = Result<T, SourceError>>,
) -> Result<T, SourceError> {
    let rt = runtime().map_err(|why| SourceError::Other {
        url: url.to_string(),
        why,
    })?;
    rt.block_on(fut)
}

/// One client per bucket, made once.
fn client(url: &ObjectUrl) -> Result<Arc<dyn ObjectStore>, SourceError> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Arc<dyn ObjectStore>>>> = OnceLock::new();
    let clients = CLIENTS.get_or_init(Default::default);
    if let Some(c) = clients
        .lock()
        .ok()
        .and_then(|m| m.get(&url.bucket).cloned())
    {
        return Ok(c);
    }
    let c = config::build(&url.bucket).map_err(|why| SourceError::Config {
        url: url.to_string(),
        why,
    })?;
    if let Ok(mut m) = clients.lock() {
        m.insert(url.bucket.clone(), c.clone());
    }
    Ok(c)
}

/// The object at `url`, as its HEAD describes it.
pub fn head(url: &ObjectUrl) -> Result<Object, SourceError> {
    let store = client(url)?;
    let text = url.to_string();
    wait(&text, async {
        store
            .head(&url.key_path())
            .await
            .map(|m| Object::from_meta(&url.bucket, m))
            .map_err(|e| SourceError::from_store(&text, e))
    })
}

/// The objects an input names: the object itself when its key names one,
/// else every object under it as a prefix (a folder), in key order.
pub fn list(url: &ObjectUrl) -> Result<Vec<Object>, SourceError> {
    if !url.key.is_empty() && !url.key.ends_with('/') {
        match head(url) {
            Ok(o) => return Ok(vec![o]),
            Err(SourceError::NotFound { .. }) => {}
            Err(e) => return Err(e),
        }
    }
    let store = client(url)?;
    let text = url.to_string();
    let prefix = url.key.trim_end_matches('/');
    let prefix = (!prefix.is_empty()).then(|| KeyPath::from(prefix));
    let mut found: Vec<Object> = wait(&text, async {
        store
            .list(prefix.as_ref())
            .map_ok(|m| Object::from_meta(&url.bucket, m))
            .try_collect()
            .await
            .map_err(|e| SourceError::from_store(&text, e))
    })?;
    if found.is_empty() && !url.key.is_empty() {
        return Err(SourceError::NotFound { url: text });
    }
    found.sort_by(|a, b| a.url.key.cmp(&b.url.key));
    // Some stores leave ETags out of listings: every read is conditional
    // on one, so ask.
    for o in found.iter_mut().filter(|o| o.etag.is_none()) {
        *o = head(&o.url)?;
    }
    Ok(found)
}

/// Opens an object to be read, on condition that it is still the one
/// `obj` describes (its ETag, when known).
pub fn open(obj: &Object) -> Result<Arc<ObjectSource>, SourceError> {
    let store = client(&obj.url)?;
    Ok(Arc::new(ObjectSource::new(store, obj.clone())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_told_from_paths() {
        assert!(is_url("s3://b/k"));
        assert!(is_url("gs://b"));
        assert!(!is_url("/tmp/x.pcap"));
        assert!(!is_url("dir/a://b")); // a path with "://" after a slash
        assert!(!is_url("://x"));
    }

    #[test]
    fn object_urls_parse() {
        let u = ObjectUrl::parse("s3://bucket/a/b c.pcap").unwrap();
        assert_eq!(
            (u.bucket.as_str(), u.key.as_str()),
            ("bucket", "a/b c.pcap")
        );
        assert_eq!(u.to_string(), "s3://bucket/a/b c.pcap");
        assert_eq!(ObjectUrl::parse("s3://bucket").unwrap().key, "");
        assert!(matches!(
            ObjectUrl::parse("s3:///k"),
            Err(SourceError::BadUrl(_))
        ));
        assert!(matches!(
            ObjectUrl::parse("gs://b/k"),
            Err(SourceError::BadUrl(_))
        ));
    }

    #[test]
    fn errors_are_one_line() {
        let s = short("Generic S3 error: status 403\n <?xml version=\"1.0\"?><Error/>");
        assert_eq!(s, "Generic S3 error: status 403");
    }
}
