//! Packet position lists: where each packet of a flow is (file, byte offset,
//! interface) and what carving needs without opening the file (timestamp,
//! captured and original length, direction), in about 6-8 bytes per packet.
//!
//! A list is stored as self-contained chunks. A chunk is a sequence of
//! LEB128 varints; each entry starts with a tag:
//!
//! - `tag & 1 == 0`: a packet. Bit 1 = reverse direction, bit 2 = the
//!   original length differs from the captured one, bit 3 = the captured
//!   length is the previous packet's in the same direction (then the tag is
//!   just those bits), else `caplen = tag >> 4`.
//!   Then: `[zigzag(orig_len - caplen)]` if bit 2; the timestamp delta from
//!   the previous packet of the chunk (the first packet's delta is from 0),
//!   as `zigzag(delta/1000) << 1` when it is a whole number of microseconds,
//!   else `zigzag(delta) << 1 | 1`; and the offset gap
//!   `offset - (previous offset + previous caplen + 16)` (or `offset - base`
//!   after a file switch). Records never overlap and every record header is
//!   at least 16 bytes, so the gap is never negative.
//! - `tag & 1 == 1`: a control entry, `kind = tag >> 1`:
//!   `0` = file switch, followed by the file id and the base offset;
//!   `1` = interface switch, followed by the interface index (starts at 0);
//!   `2` = absolute timestamp `zigzag(ts)` for the next packet, whose delta
//!   is then 0 (only for deltas too large for the form above).
//!
//! Invariant: decoding never panics; malformed bytes are an error.
#![forbid(unsafe_code)]

#[doc(hidden)]
pub mod fuzzing;

use thiserror::Error;

/// Where one packet is and what its record header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Position {
    pub file_id: u32,
    pub offset: u64,
    pub ts_ns: i64,
    pub caplen: u32,
    pub orig_len: u32,
    /// Sent by the flow's destination (`dst` to `src`).
    pub reverse: bool,
    /// Interface index within the file (pcapng; 0 for pcap).
    pub iface: u32,
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("position list ends inside an entry")]
    Truncated,
    #[error("position list has a varint longer than 10 bytes")]
    Overlong,
    #[error("position list entry of unknown kind {0}")]
    UnknownControl(u64),
    #[error("position list packet before any file")]
    NoFile,
    #[error("position list value out of range")]
    OutOfRange,
}

const CTRL_FILE: u64 = 0;
const CTRL_IFACE: u64 = 1;
const CTRL_TS: u64 = 2;
const SAME_CAPLEN: u64 = 8;
/// Smallest record header of any format: the minimum distance between records
/// beyond the captured bytes.
const MIN_HEADER: u64 = 16;

#[inline]
fn put(buf: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        buf.push((v as u8) | 0x80);
        v >>= 7;
    }
    buf.push(v as u8);
}

#[inline]
fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

#[inline]
fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

/// Builds one chunk at a time.
#[derive(Debug, Default, Clone)]
pub struct Encoder {
    buf: Vec<u8>,
    file: Option<u32>,
    iface: u32,
    next_offset: u64,
    last_ts: i64,
    /// Captured length of the last packet in each direction.
    last_caplen: [Option<u32>; 2],
    count: u32,
}

impl Encoder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a packet to the current chunk.
    pub fn push(&mut self, p: &Position) {
        if self.buf.capacity() == 0 {
            // Most chunks end between 100 and 300 bytes: skip the first few doublings.
            self.buf.reserve(128);
        }
        if self.file != Some(p.file_id) || p.offset < self.next_offset {
            put(&mut self.buf, CTRL_FILE << 1 | 1);
            put(&mut self.buf, u64::from(p.file_id));
            put(&mut self.buf, p.offset);
            self.file = Some(p.file_id);
            self.next_offset = p.offset;
        }
        if p.iface != self.iface {
            put(&mut self.buf, CTRL_IFACE << 1 | 1);
            put(&mut self.buf, u64::from(p.iface));
            self.iface = p.iface;
        }
        // A delta too large for the packet entry becomes an absolute-time entry,
        // which (like every control entry) must precede the packet's tag.
        let mut delta = p.ts_ns.wrapping_sub(self.last_ts);
        if delta % 1000 != 0 && zigzag(delta) >> 63 != 0 {
            put(&mut self.buf, CTRL_TS << 1 | 1);
            put(&mut self.buf, zigzag(p.ts_ns));
            delta = 0;
        }
        let differs = p.orig_len != p.caplen;
        let dir = usize::from(p.reverse);
        let flags = u64::from(differs) << 2 | u64::from(p.reverse) << 1;
        if self.last_caplen[dir] == Some(p.caplen) {
            put(&mut self.buf, flags | SAME_CAPLEN);
        } else {
            put(&mut self.buf, u64::from(p.caplen) << 4 | flags);
            self.last_caplen[dir] = Some(p.caplen);
        }
        if differs {
            put(
                &mut self.buf,
                zigzag(i64::from(p.orig_len) - i64::from(p.caplen)),
            );
        }
        if delta % 1000 == 0 {
            put(&mut self.buf, zigzag(delta / 1000) << 1);
        } else {
            put(&mut self.buf, zigzag(delta) << 1 | 1);
        }
        self.last_ts = p.ts_ns;
        put(&mut self.buf, p.offset - self.next_offset);
        self.next_offset = p.offset + u64::from(p.caplen) + MIN_HEADER;
        self.count += 1;
    }

    /// Bytes in the current chunk.
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Packets in the current chunk.
    pub fn count(&self) -> u32 {
        self.count
    }

    /// Ends the current chunk and returns its bytes; the next push starts a new one.
    pub fn take(&mut self) -> Vec<u8> {
        let out = std::mem::take(&mut self.buf);
        *self = Encoder::default();
        out
    }
}

struct Cursor<'a> {
    b: &'a [u8],
    at: usize,
}

impl Cursor<'_> {
    #[inline]
    fn get(&mut self) -> Result<u64, DecodeError> {
        let mut v = 0u64;
        for shift in (0..70).step_by(7) {
            let byte = *self.b.get(self.at).ok_or(DecodeError::Truncated)?;
            self.at += 1;
            if shift == 63 && byte > 1 {
                return Err(DecodeError::Overlong);
            }
            v |= u64::from(byte & 0x7f) << shift;
            if byte & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(DecodeError::Overlong)
    }
}

fn u32_of(v: u64) -> Result<u32, DecodeError> {
    u32::try_from(v).map_err(|_| DecodeError::OutOfRange)
}

/// Decodes one chunk, appending its packets to `out`.
pub fn decode_into(chunk: &[u8], out: &mut Vec<Position>) -> Result<(), DecodeError> {
    let mut c = Cursor { b: chunk, at: 0 };
    let mut file = None;
    let mut iface = 0u32;
    let mut next_offset = 0u64;
    let mut last_ts = 0i64;
    let mut last_caplen: [Option<u32>; 2] = [None; 2];
    while c.at < chunk.len() {
        let tag = c.get()?;
        if tag & 1 == 1 {
            match tag >> 1 {
                CTRL_FILE => {
                    file = Some(u32_of(c.get()?)?);
                    next_offset = c.get()?;
                }
                CTRL_IFACE => iface = u32_of(c.get()?)?,
                CTRL_TS => last_ts = unzigzag(c.get()?),
                k => return Err(DecodeError::UnknownControl(k)),
            }
            continue;
        }
        let file_id = file.ok_or(DecodeError::NoFile)?;
        let dir = usize::from(tag & 2 != 0);
        let caplen = if tag & SAME_CAPLEN != 0 {
            last_caplen[dir].ok_or(DecodeError::OutOfRange)?
        } else {
            let c = u32_of(tag >> 4)?;
            last_caplen[dir] = Some(c);
            c
        };
        let orig_len = if tag & 4 != 0 {
            let d = unzigzag(c.get()?);
            u32::try_from(i64::from(caplen) + d).map_err(|_| DecodeError::OutOfRange)?
        } else {
            caplen
        };
        let t = c.get()?;
        let delta = if t & 1 == 0 {
            unzigzag(t >> 1).wrapping_mul(1000)
        } else {
            unzigzag(t >> 1)
        };
        let ts_ns = last_ts.wrapping_add(delta);
        last_ts = ts_ns;
        let offset = next_offset
            .checked_add(c.get()?)
            .ok_or(DecodeError::OutOfRange)?;
        next_offset = offset
            .checked_add(u64::from(caplen) + MIN_HEADER)
            .ok_or(DecodeError::OutOfRange)?;
        out.push(Position {
            file_id,
            offset,
            ts_ns,
            caplen,
            orig_len,
            reverse: tag & 2 != 0,
            iface,
        });
    }
    Ok(())
}

/// Decodes one chunk.
pub fn decode(chunk: &[u8]) -> Result<Vec<Position>, DecodeError> {
    let mut v = Vec::new();
    decode_into(chunk, &mut v)?;
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn roundtrip(ps: &[Position]) -> usize {
        let mut e = Encoder::new();
        for p in ps {
            e.push(p);
        }
        assert_eq!(e.count() as usize, ps.len());
        let bytes = e.take();
        assert_eq!(decode(&bytes).unwrap(), ps);
        assert!(e.is_empty());
        bytes.len()
    }

    fn p(file_id: u32, offset: u64, ts_ns: i64, caplen: u32) -> Position {
        Position {
            file_id,
            offset,
            ts_ns,
            caplen,
            orig_len: caplen,
            reverse: false,
            iface: 0,
        }
    }

    #[test]
    fn roundtrips() {
        let base = 1_700_000_000_000_000_000;
        roundtrip(&[]);
        roundtrip(&[p(1, 24, base, 60)]);
        // Back-to-back records, file switches, time going backwards,
        // nanosecond timestamps, snaplen cuts, caplen > orig_len, interfaces.
        let mut v = vec![
            p(1, 24, base, 60),
            p(1, 100, base + 1_000, 1514),
            p(1, 5_000_000, base + 999, 54),
            p(2, 24, base - 5_000_000_000, 0),
            p(1, 6_000_000, base + 7, 70),
        ];
        v[1].orig_len = 9000;
        v[2].orig_len = 10;
        v[2].reverse = true;
        v[4].iface = 3;
        roundtrip(&v);
        roundtrip(&[
            p(u32::MAX, u64::MAX - 100, i64::MIN, 0),
            p(0, 0, i64::MAX, u32::MAX),
        ]);
        // Offsets that go backwards in one file (never produced by the indexer) still roundtrip.
        roundtrip(&[p(1, 500, base, 10), p(1, 100, base, 10)]);
    }

    #[test]
    fn typical_packets_take_few_bytes() {
        // A TCP session: packets 1 ms apart, interleaved with 2 KB of other traffic.
        let base = 1_700_000_000_000_000_000;
        let v: Vec<Position> = (0..1000)
            .map(|i| {
                let mut x = p(
                    1,
                    24 + i * 3000,
                    base + i as i64 * 1_000_000,
                    if i % 2 == 0 { 1514 } else { 66 },
                );
                x.reverse = i % 2 == 1;
                x
            })
            .collect();
        let bytes = roundtrip(&v);
        assert!(bytes < 7 * 1000, "{bytes} bytes for 1000 packets");
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        assert_eq!(decode(&[0x80]), Err(DecodeError::Truncated));
        assert_eq!(decode(&[0x10, 0, 0]), Err(DecodeError::NoFile));
        assert_eq!(decode(&[0x07]), Err(DecodeError::UnknownControl(3)));
        assert!(decode(&[0xff; 12]).is_err());
        let mut e = Encoder::new();
        e.push(&p(1, 24, 1, 60));
        let good = e.take();
        for n in 0..good.len() {
            let _ = decode(&good[..n]);
        }
        for i in 0..good.len() {
            for bit in 0..8 {
                let mut b = good.clone();
                b[i] ^= 1 << bit;
                let _ = decode(&b);
            }
        }
    }
}
