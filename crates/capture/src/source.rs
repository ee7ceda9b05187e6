//! Where capture bytes come from. Everything that reads a capture (the
//! streaming reader, fingerprints, reading a record back at an offset) reads
//! through [`ByteSource`], so a local file and an object in a bucket share
//! every code path above it. Local files implement it here; remote sources
//! live in their own crate.
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::fs::FileExt;

/// Bytes that can be read at an offset and as a stream.
pub trait ByteSource: Send + Sync {
    /// Reads into `buf` at `offset`; returns how many bytes were read, fewer
    /// than asked only at the end of the source.
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize>;

    /// A sequential reader of the bytes in `range` (it ends early only at
    /// the end of the source).
    fn stream(&self, range: Range<u64>) -> io::Result<Box<dyn Read + Send>>;

    /// Reads several ranges. A remote source coalesces neighbours into few
    /// requests and keeps several in flight; a file reads them in turn.
    fn read_ranges(&self, ranges: &[Range<u64>]) -> io::Result<Vec<Vec<u8>>> {
        ranges
            .iter()
            .map(|r| {
                let mut v = vec![0u8; (r.end - r.start) as usize];
                let n = read_full(self, r.start, &mut v)?;
                v.truncate(n);
                Ok(v)
            })
            .collect()
    }

    /// Whether its identity is checked by every read (an object read on
    /// condition of its ETag): nothing else needs to be checked first.
    fn self_checking(&self) -> bool {
        false
    }
}

/// Reads as much of `buf` as the source holds at `offset`.
pub fn read_full<S: ByteSource + ?Sized>(
    src: &S,
    offset: u64,
    buf: &mut [u8],
) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match src.read_at(offset + n as u64, &mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Reads `len` bytes at `offset`, or fewer at the end of the source.
pub fn read_vec<S: ByteSource + ?Sized>(src: &S, offset: u64, len: usize) -> io::Result<Vec<u8>> {
    let mut v = vec![0u8; len];
    let n = read_full(src, offset, &mut v)?;
    v.truncate(n);
    Ok(v)
}

impl ByteSource for File {
    fn read_at(&self, offset: u64, buf: &mut [u8]) -> io::Result<usize> {
        FileExt::read_at(self, buf, offset)
    }

    fn stream(&self, range: Range<u64>) -> io::Result<Box<dyn Read + Send>> {
        // A handle of its own: its position is not shared with positioned reads.
        let mut f = self.try_clone()?;
        f.seek(SeekFrom::Start(range.start))?;
        Ok(Box::new(f.take(range.end.saturating_sub(range.start))))
    }
}
