//! Writing to object storage (what `pcapidx export` does with an s3:// DEST):
//! listing what is there, and uploading new objects, never replacing one.
use futures_util::TryStreamExt;
use object_store::path::Path as KeyPath;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::{ObjectUrl, SourceError, client, wait};

/// Keys under a prefix URL (a folder), relative to it: what an export must
/// not write over. None for a bucket or prefix that holds nothing yet.
pub fn keys_under(prefix: &ObjectUrl) -> Result<Vec<String>, SourceError> {
    let store = client(prefix)?;
    let text = prefix.to_string();
    let base = prefix.key.trim_end_matches('/');
    let p = (!base.is_empty()).then(|| KeyPath::from(base));
    let found: Vec<String> = wait(&text, async {
        store
            .list(p.as_ref())
            .map_ok(|m| m.location.as_ref().to_string())
            .try_collect()
            .await
            .map_err(|e| SourceError::from_store(&text, e))
    })?;
    Ok(found
        .into_iter()
        .filter_map(|k| {
            let rel = if base.is_empty() {
                Some(k.as_str())
            } else {
                k.strip_prefix(base).and_then(|r| r.strip_prefix('/'))
            };
            rel.map(str::to_string)
        })
        .collect())
}

/// Parts of a multipart upload (S3's minimum, but for the last, is 5 MiB).
const UPLOAD_PART: usize = 8 << 20;

/// Uploads a local file to `url` as a new object: one request up to a part's
/// size (refused by the store if the key exists: an object is never
/// replaced), a multipart upload above.
pub fn upload(file: &std::path::Path, url: &ObjectUrl) -> Result<(), SourceError> {
    use std::io::Read;
    let store = client(url)?;
    let text = url.to_string();
    let io = |e: std::io::Error| SourceError::Other {
        url: text.clone(),
        why: format!("reading {}: {e}", file.display()),
    };
    let mut f = std::fs::File::open(file).map_err(io)?;
    let size = f.metadata().map_err(io)?.len();
    let key = url.key_path();
    if size as usize <= UPLOAD_PART {
        let mut bytes = Vec::with_capacity(size as usize);
        f.read_to_end(&mut bytes).map_err(io)?;
        let opts = object_store::PutOptions {
            mode: object_store::PutMode::Create,
            ..Default::default()
        };
        return wait(&text, async {
            store
                .put_opts(&key, bytes.into(), opts)
                .await
                .map(drop)
                .map_err(|e| SourceError::from_store(&text, e))
        });
    }
    wait(&text, async {
        let mut up = store
            .put_multipart(&key)
            .await
            .map_err(|e| SourceError::from_store(&text, e))?;
        loop {
            let mut part = Vec::with_capacity(UPLOAD_PART);
            (&mut f)
                .take(UPLOAD_PART as u64)
                .read_to_end(&mut part)
                .map_err(io)?;
            if part.is_empty() {
                break;
            }
            if let Err(e) = up.put_part(part.into()).await {
                let _ = up.abort().await;
                return Err(SourceError::from_store(&text, e));
            }
        }
        up.complete()
            .await
            .map(drop)
            .map_err(|e| SourceError::from_store(&text, e))
    })
}
