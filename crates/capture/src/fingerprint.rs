//! File identity without reading the whole file: a hash of the first bytes
//! and of the bytes just below the indexed size. A file that only grew keeps
//! both; one replaced or rewritten in place almost surely changes one of them.
use std::io;

use crate::source::{ByteSource, read_full};

use xxhash_rust::xxh3::xxh3_64;

/// How many bytes each hash covers.
pub const FINGERPRINT_SPAN: u64 = 64 * 1024;
/// How many bytes the lead hash covers: past a capture's headers and into
/// its first records, so two captures share it only if they start alike
/// (one is a copy, or a prefix, of the other).
pub const LEAD_SPAN: u64 = 512;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    /// Hash of bytes `[0, min(span, len))`.
    pub head: u64,
    /// Hash of bytes `[len - span, len)` (clamped at 0).
    pub tail: u64,
    /// Hash of bytes `[0, min(LEAD_SPAN, len))`.
    pub lead: u64,
}

/// Fingerprints the first `len` bytes of `file` (normally its size, or the
/// size it had when it was indexed).
pub fn fingerprint<S: ByteSource + ?Sized>(file: &S, len: u64) -> io::Result<Fingerprint> {
    let first = read_range(file, 0, len.min(FINGERPRINT_SPAN))?;
    let lead = xxh3_64(&first[..first.len().min(LEAD_SPAN as usize)]);
    let start = len.saturating_sub(FINGERPRINT_SPAN);
    let tail = xxh3_64(&read_range(file, start, len - start)?);
    Ok(Fingerprint {
        head: xxh3_64(&first),
        tail,
        lead,
    })
}

/// The lead hash alone, of a file of `len` bytes.
pub fn lead_hash<S: ByteSource + ?Sized>(file: &S, len: u64) -> io::Result<u64> {
    Ok(xxh3_64(&read_range(file, 0, len.min(LEAD_SPAN))?))
}

fn read_range<S: ByteSource + ?Sized>(file: &S, start: u64, len: u64) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; len as usize];
    if read_full(file, start, &mut buf)? < buf.len() {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::File;
    use std::io::Write;

    #[test]
    fn growth_keeps_the_prefix_fingerprint() {
        let dir = std::env::temp_dir().join(format!("fp-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let mut f = File::create(&path).unwrap();
        f.write_all(&vec![7u8; 100_000]).unwrap();
        let r = File::open(&path).unwrap();
        let before = fingerprint(&r, 100_000).unwrap();
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap();
        f.write_all(b"more").unwrap();
        let r = File::open(&path).unwrap();
        assert_eq!(fingerprint(&r, 100_000).unwrap(), before);
        assert_ne!(fingerprint(&r, 100_004).unwrap(), before);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
