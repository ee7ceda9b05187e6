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
    #[error("{0}: not an object URL (expected s3://BUCKET/KEY or http(s)://HOST/PATH)")]
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

/// `s3://bucket/key`, or `http(s)://host/path` (one object read by range
/// requests), parsed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ObjectUrl {
    /// The bucket; for http(s), the scheme and host (`https://host:port`).
    pub bucket: String,
    pub key: String,
    http: bool,
}

impl ObjectUrl {
    pub fn parse(url: &str) -> Result<Self, SourceError> {
        let bad = || SourceError::BadUrl(url.to_string());
        if let Some(rest) = url.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(bad());
            }
            return Ok(ObjectUrl::new(bucket, key));
        }
        let scheme = ["http://", "https://"]
            .into_iter()
            .find(|s| url.starts_with(s))
            .ok_or_else(bad)?;
        let rest = &url[scheme.len()..];
        let (host, key) = rest.split_once('/').unwrap_or((rest, ""));
        // A query would be part of no object's name.
        if host.is_empty() || url.contains('?') || url.contains('#') {
            return Err(bad());
        }
        Ok(ObjectUrl {
            bucket: format!("{scheme}{host}"),
            key: key.to_string(),
            http: true,
        })
    }

    /// An object of a bucket.
    pub fn new(bucket: &str, key: &str) -> Self {
        ObjectUrl {
            bucket: bucket.to_string(),
            key: key.to_string(),
            http: false,
        }
    }

    /// Another key of the same store.
    pub fn with_key(&self, key: &str) -> Self {
        ObjectUrl {
            key: key.to_string(),
            ..self.clone()
        }
    }

    /// Read from a web server (no listing, events or uploads).
    pub fn is_http(&self) -> bool {
        self.http
    }

    fn key_path(&self) -> KeyPath {
        KeyPath::parse(&self.key).unwrap_or_else(|_| KeyPath::from(self.key.as_str()))
    }
}

impl std::fmt::Display for ObjectUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.http {
            write!(f, "{}/{}", self.bucket, self.key)
        } else {
            write!(f, "s3://{}/{}", self.bucket, self.key)
        }
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
    fn from_meta(url: &ObjectUrl, m: object_store::ObjectMeta) -> Self {
        Object {
            url: url.with_key(m.location.as_ref()),
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
    let c = if url.http {
        config::build_http(&url.bucket)
    } else {
        config::build(&url.bucket)
    }
    .map_err(|why| SourceError::Config {
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
            .map(|m| Object::from_meta(url, m))
            .map_err(|e| SourceError::from_store(&text, e))
    })
}

/// The objects an input names: the object itself when its key names one,
/// else every object under it as a prefix (a folder), in key order.
pub fn list(url: &ObjectUrl) -> Result<Vec<Object>, SourceError> {
    if url.http && !url.key.ends_with('/') {
        // A web server's URL names one file; folders are listed only by WebDAV.
        return head(url).map(|o| vec![o]);
    }
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
            .map_ok(|m| Object::from_meta(url, m))
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
    fn web_urls_parse() {
        let u = ObjectUrl::parse("https://example.org:8443/caps/a.pcap").unwrap();
        assert!(u.is_http());
        assert_eq!(u.bucket, "https://example.org:8443");
        assert_eq!(u.key, "caps/a.pcap");
        assert_eq!(u.to_string(), "https://example.org:8443/caps/a.pcap");
        assert_eq!(
            u.with_key("b.pcap").to_string(),
            "https://example.org:8443/b.pcap"
        );
        for bad in ["https:///a", "http://h/a.pcap?sig=1", "ftp://h/a"] {
            assert!(ObjectUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn errors_are_one_line() {
        let s = short("Generic S3 error: status 403\n <?xml version=\"1.0\"?><Error/>");
        assert_eq!(s, "Generic S3 error: status 403");
    }
}
