//! A real S3 server for the tests: s3s (the S3 protocol, with SigV4
//! signatures checked against one access key) over s3s-fs (objects are files
//! under a folder: `ROOT/BUCKET/KEY`), on 127.0.0.1 at an ephemeral port, in
//! the test process; it stops with the test. Between the protocol and the
//! files sits a layer that counts GETs and the bytes they send, and injects
//! faults on demand: `503 SlowDown`, and a connection dropped in the middle
//! of a body.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::StreamExt;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto::Builder as ConnBuilder;
use s3s::dto::*;
use s3s::{S3, S3Request, S3Response, S3Result, s3_error};

pub const ACCESS_KEY: &str = "pcapidx-test";
pub const SECRET_KEY: &str = "pcapidx-test-secret-0123456789";

#[derive(Default)]
pub struct Faults {
    /// The next this many requests answer 503 SlowDown.
    pub slow_down: AtomicU32,
    /// The next GET body longer than this stops after this many bytes, its
    /// connection dropped (0: none).
    pub cut_next_get_after: AtomicU64,
    /// With a cut: the object is deleted too (so it cannot be resumed).
    pub delete_on_cut: std::sync::atomic::AtomicBool,
    pub gets: AtomicU64,
    pub get_bytes: AtomicU64,
}

struct Faulty {
    inner: s3s_fs::FileSystem,
    faults: Arc<Faults>,
    root: PathBuf,
}

impl Faulty {
    fn throttled(&self) -> bool {
        self.faults
            .slow_down
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }
}

#[derive(Debug)]
struct Dropped;
impl std::fmt::Display for Dropped {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection dropped by the test")
    }
}
impl std::error::Error for Dropped {}

#[async_trait::async_trait]
impl S3 for Faulty {
    async fn get_object(
        &self,
        req: S3Request<GetObjectInput>,
    ) -> S3Result<S3Response<GetObjectOutput>> {
        if self.throttled() {
            return Err(s3_error!(SlowDown, "test throttling"));
        }
        self.faults.gets.fetch_add(1, Ordering::SeqCst);
        let file = self.root.join(&req.input.bucket).join(&req.input.key);
        let mut resp = self.inner.get_object(req).await?;
        // Armed until a body passes it (a short read leaves it armed).
        let cut = self.faults.cut_next_get_after.load(Ordering::SeqCst);
        let faults = self.faults.clone();
        if let Some(body) = resp.output.body.take() {
            let mut sent = 0u64;
            let counted = body.map(move |part| {
                let part: Bytes = part.map_err(|_| Dropped)?;
                if cut > 0 && sent + part.len() as u64 > cut {
                    faults.cut_next_get_after.store(0, Ordering::SeqCst);
                    if faults.delete_on_cut.load(Ordering::SeqCst) {
                        // The next request finds nothing to resume.
                        let _ = std::fs::remove_file(&file);
                    }
                    return Err(Dropped);
                }
                sent += part.len() as u64;
                faults
                    .get_bytes
                    .fetch_add(part.len() as u64, Ordering::SeqCst);
                Ok(part)
            });
            resp.output.body = Some(StreamingBlob::wrap(counted));
        }
        Ok(resp)
    }

    async fn head_object(
        &self,
        req: S3Request<HeadObjectInput>,
    ) -> S3Result<S3Response<HeadObjectOutput>> {
        if self.throttled() {
            return Err(s3_error!(SlowDown, "test throttling"));
        }
        self.inner.head_object(req).await
    }

    async fn head_bucket(
        &self,
        req: S3Request<HeadBucketInput>,
    ) -> S3Result<S3Response<HeadBucketOutput>> {
        self.inner.head_bucket(req).await
    }

    async fn put_object(
        &self,
        req: S3Request<PutObjectInput>,
    ) -> S3Result<S3Response<PutObjectOutput>> {
        self.inner.put_object(req).await
    }

    async fn create_multipart_upload(
        &self,
        req: S3Request<CreateMultipartUploadInput>,
    ) -> S3Result<S3Response<CreateMultipartUploadOutput>> {
        self.inner.create_multipart_upload(req).await
    }

    async fn upload_part(
        &self,
        req: S3Request<UploadPartInput>,
    ) -> S3Result<S3Response<UploadPartOutput>> {
        self.inner.upload_part(req).await
    }

    async fn complete_multipart_upload(
        &self,
        req: S3Request<CompleteMultipartUploadInput>,
    ) -> S3Result<S3Response<CompleteMultipartUploadOutput>> {
        self.inner.complete_multipart_upload(req).await
    }

    async fn abort_multipart_upload(
        &self,
        req: S3Request<AbortMultipartUploadInput>,
    ) -> S3Result<S3Response<AbortMultipartUploadOutput>> {
        self.inner.abort_multipart_upload(req).await
    }

    async fn list_objects_v2(
        &self,
        req: S3Request<ListObjectsV2Input>,
    ) -> S3Result<S3Response<ListObjectsV2Output>> {
        if self.throttled() {
            return Err(s3_error!(SlowDown, "test throttling"));
        }
        self.inner.list_objects_v2(req).await
    }
}

pub struct Server {
    pub endpoint: String,
    /// Objects are files here: `root/BUCKET/KEY`.
    pub root: PathBuf,
    pub faults: Arc<Faults>,
    _rt: tokio::runtime::Runtime,
}

impl Server {
    /// Starts a server with one empty bucket per name.
    pub fn start(name: &str, buckets: &[&str]) -> Server {
        Server::start_with(name, buckets, true)
    }

    /// A server that asks for no signature: its objects are plain web
    /// resources (`GET`/`HEAD` with `Range`, answered with ETags).
    pub fn start_public(name: &str, buckets: &[&str]) -> Server {
        Server::start_with(name, buckets, false)
    }

    fn start_with(name: &str, buckets: &[&str], auth: bool) -> Server {
        let root = super::tmpdir(name).join("s3");
        for b in buckets {
            std::fs::create_dir_all(root.join(b)).unwrap();
        }
        let faults = Arc::new(Faults::default());
        let fs = s3s_fs::FileSystem::new(&root).expect("s3s-fs");
        let mut b = s3s::service::S3ServiceBuilder::new(Faulty {
            inner: fs,
            faults: faults.clone(),
            root: root.clone(),
        });
        if auth {
            b.set_auth(s3s::auth::SimpleAuth::from_single(ACCESS_KEY, SECRET_KEY));
        }
        let service = b.build();
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let listener = rt
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .unwrap();
        let addr = listener.local_addr().unwrap();
        rt.spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    continue;
                };
                let service = service.clone();
                tokio::spawn(async move {
                    let conn = ConnBuilder::new(TokioExecutor::new());
                    let _ = conn.serve_connection(TokioIo::new(socket), service).await;
                });
            }
        });
        Server {
            endpoint: format!("http://{addr}"),
            root,
            faults,
            _rt: rt,
        }
    }

    /// Writes an object (a file under the bucket's folder).
    pub fn put(&self, bucket: &str, key: &str, bytes: &[u8]) {
        let p = self.root.join(bucket).join(key);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }

    /// Copies every capture of a folder into `bucket/prefix`; returns their keys.
    pub fn put_folder(&self, dir: &Path, bucket: &str, prefix: &str) -> Vec<String> {
        let mut keys = Vec::new();
        for f in super::walk(dir) {
            let rel = f.strip_prefix(dir).unwrap().to_string_lossy().into_owned();
            let key = format!("{prefix}{rel}");
            self.put(bucket, &key, &std::fs::read(&f).unwrap());
            keys.push(key);
        }
        keys
    }

    /// The local file behind an object.
    pub fn file(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }

    /// pcapidx with this server's endpoint and credentials (and no profile
    /// files of the machine's).
    pub fn pcapidx(&self, db: &Path, args: &[&str]) -> Output {
        self.pcapidx_with(db, args, SECRET_KEY)
    }

    pub fn pcapidx_with(&self, db: &Path, args: &[&str], secret: &str) -> Output {
        let mut c = Command::new(env!("CARGO_BIN_EXE_pcapidx"));
        c.arg("--db").arg(db).args(args);
        self.env(&mut c, secret);
        c.output().expect("run pcapidx")
    }

    pub fn env(&self, c: &mut Command, secret: &str) {
        for v in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_DEFAULT_REGION",
            "AWS_VIRTUAL_HOSTED_STYLE_REQUEST",
        ] {
            c.env_remove(v);
        }
        c.env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
            .env("AWS_SECRET_ACCESS_KEY", secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ENDPOINT_URL", &self.endpoint)
            .env("AWS_CONFIG_FILE", "/nonexistent")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent");
    }

    /// GETs served so far, and their body bytes.
    pub fn gets(&self) -> (u64, u64) {
        (
            self.faults.gets.load(Ordering::SeqCst),
            self.faults.get_bytes.load(Ordering::SeqCst),
        )
    }
}
