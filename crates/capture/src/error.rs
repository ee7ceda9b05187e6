//! Typed errors of the capture reader: "cannot open as a capture" versus
//! "stopped at this offset", so callers keep what came before the damage.
use std::io;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum OpenError {
    #[error(transparent)]
    Io(#[from] io::Error),
    /// Not a capture at all (a text file, an empty file...).
    #[error("not a capture file ({0})")]
    NotACapture(String),
    /// A capture pcapidx cannot index (compressed, unknown version...).
    #[error("unsupported: {0}")]
    Unsupported(String),
    /// The file header itself is damaged.
    #[error("damaged header at byte {offset}: {what}")]
    Corrupt { offset: u64, what: String },
}

/// Reading stopped at `offset`; every record before it was delivered.
#[derive(Debug, Error)]
#[error("at byte {offset}: {kind}")]
pub struct ReadError {
    pub offset: u64,
    pub kind: ReadErrorKind,
}

#[derive(Debug, Error)]
pub enum ReadErrorKind {
    /// The file ends inside a record: cut short, or still being written.
    #[error("file ends inside a record ({needed} bytes needed, {available} present)")]
    Truncated { needed: u64, available: u64 },
    /// The bytes cannot be a record (impossible length, bad block...).
    #[error("{0}")]
    Corrupt(String),
    /// Its text is stored with the file's row, so it says its cause
    /// itself (and is not also its source).
    #[error("read error: {0}")]
    Io(io::Error),
}

impl ReadErrorKind {
    pub fn is_truncation(&self) -> bool {
        matches!(self, ReadErrorKind::Truncated { .. })
    }
}
