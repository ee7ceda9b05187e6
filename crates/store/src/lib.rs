//! The SQLite index. All SQL lives here and in `migrations/`: the [`Store`]
//! opens the database, sets its pragmas, applies migrations, and offers
//! batched writes ([`Batch`], one transaction each) and typed reads.
//!
//! Invariants:
//! - A database whose schema is newer than this binary is refused, naming
//!   both versions; an older one is migrated in one transaction.
//! - Read-only stores ([`Store::open_read_only`]) cannot write, whatever SQL
//!   they are given; user SQL runs only there.
//! - Parameters are always bound; the only SQL text from outside is a
//!   user's own query or `--where` expression, on a read-only store.
#![deny(unsafe_code)]

mod format;
mod migrate;
mod packets_vtab;
mod read;
mod write;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};
use thiserror::Error;

pub use format::{ip_text, mac_text, tcp_flag_letters};
pub use migrate::{MIGRATIONS, SCHEMA_VERSION};
pub use read::{FileRow, FileStatus, QueryRow};
pub use rusqlite::types::Value;
pub use write::Batch;

#[derive(Debug, Error)]
pub enum StoreError {
    #[error("{0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("no index at {0} (run `pcapidx index` first)")]
    Missing(PathBuf),
    #[error("{0} is not a pcapidx index")]
    NotAnIndex(PathBuf),
    #[error(
        "the index was written by a newer pcapidx (schema version {found}); this pcapidx knows up to version {known}: upgrade pcapidx"
    )]
    NewerSchema { found: i64, known: i64 },
    #[error(
        "the index uses schema version {found} but this pcapidx needs {known}: run `pcapidx index` once to upgrade it"
    )]
    OlderSchema { found: i64, known: i64 },
    #[error("migration to schema version {version} failed: {source}")]
    Migration {
        version: i64,
        source: rusqlite::Error,
    },
    #[error("damaged index: {0}")]
    Damaged(String),
    #[error("the index is read-only here: {0}")]
    ReadOnly(String),
}

pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// The index database.
pub struct Store {
    conn: Connection,
    path: PathBuf,
}

impl Store {
    /// Opens (creating if needed) an index for writing, migrating it to the
    /// current schema.
    pub fn open(path: &Path) -> Result<Store> {
        let conn = Connection::open(path)?;
        conn.busy_timeout(Duration::from_secs(10))?;
        let existing: i64 = conn
            .query_row("SELECT count(*) FROM sqlite_schema", [], |r| r.get(0))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    StoreError::NotAnIndex(path.to_path_buf())
                }
                e => e.into(),
            })?;
        if existing == 0 {
            // Must precede the first write; larger pages suit the position blobs.
            conn.pragma_update(None, "page_size", 8192)?;
        }
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "NORMAL")?;
        conn.pragma_update(None, "foreign_keys", "ON")?;
        conn.pragma_update(None, "cache_size", -65536)?;
        migrate::migrate(&conn, path)?;
        packets_vtab::register(&conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    /// Opens an existing index read-only: nothing done through it can
    /// change the database.
    pub fn open_read_only(path: &Path) -> Result<Store> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )?;
        conn.busy_timeout(Duration::from_secs(10))?;
        conn.pragma_update(None, "query_only", "ON")?;
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(f, _)
                    if f.code == rusqlite::ErrorCode::NotADatabase =>
                {
                    StoreError::NotAnIndex(path.to_path_buf())
                }
                e => e.into(),
            })?;
        migrate::check_version(version, path)?;
        packets_vtab::register(&conn, path)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Starts a batch of writes (one transaction; one at a time).
    pub fn batch(&self) -> Result<Batch<'_>> {
        Batch::begin(&self.conn)
    }

    /// Size on disk of the database and its WAL.
    pub fn disk_bytes(&self) -> u64 {
        let mut total = 0;
        for suffix in ["", "-wal", "-shm"] {
            let mut p = self.path.clone().into_os_string();
            p.push(suffix);
            total += std::fs::metadata(&p).map(|m| m.len()).unwrap_or(0);
        }
        total
    }

    /// Folds the WAL back into the database file (after a large load).
    pub fn checkpoint_wal(&self) -> Result<()> {
        self.conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
        Ok(())
    }
}
