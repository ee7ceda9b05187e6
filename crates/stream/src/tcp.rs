//! TCP reassembly, one direction at a time, by Wireshark's rules for
//! following a stream: the stream starts at the first sequence number seen
//! in that direction (one past a SYN's), the first copy of a byte wins, a
//! segment ahead of the stream waits until what precedes it arrives, or is
//! given up as missing once the other side acknowledges past it (or the
//! session ends; Wireshark then drops what waited, pcapidx reports a gap
//! and delivers it).
//!
//! Gaps are never written into the bytes: they are events of their own.
use std::collections::{BTreeMap, VecDeque};

use crate::GapKind;

/// Delivered bytes kept to compare retransmissions with (a different copy
/// of bytes already delivered is counted as inconsistent).
const HISTORY: usize = 1 << 20;
/// Bytes a direction may hold ahead of a hole before the hole is declared
/// missing: memory stays bounded on any session.
pub const PENDING_LIMIT: usize = 64 << 20;

/// What one direction delivers, in stream order.
#[derive(Debug, PartialEq, Eq)]
pub enum Piece<'a> {
    Data {
        offset: u64,
        ts_ns: i64,
        bytes: &'a [u8],
    },
    Gap {
        offset: u64,
        len: u64,
        ts_ns: i64,
        kind: GapKind,
    },
}

/// Counts of one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HalfStats {
    /// Payload bytes delivered.
    pub bytes: u64,
    /// Bytes reported missing, and in how many gaps.
    pub missing: u64,
    pub gaps: u64,
    /// Bytes seen again (retransmitted or overlapping) and, of those, how
    /// many differed from the first copy.
    pub retransmitted: u64,
    pub inconsistent: u64,
}

enum Held {
    Bytes(Vec<u8>),
    /// Known to be missing (cut by the snaplen).
    Cut(u64),
}

impl Held {
    fn len(&self) -> u64 {
        match self {
            Held::Bytes(b) => b.len() as u64,
            Held::Cut(n) => *n,
        }
    }
}

#[derive(Clone, Copy)]
enum Part<'a> {
    Bytes(&'a [u8]),
    Cut(u64),
}

impl<'a> Part<'a> {
    fn len(&self) -> u64 {
        match self {
            Part::Bytes(b) => b.len() as u64,
            Part::Cut(n) => *n,
        }
    }

    /// What remains after dropping the first `n` units.
    fn skip(self, n: u64) -> Part<'a> {
        match self {
            Part::Bytes(b) => Part::Bytes(&b[(n as usize).min(b.len())..]),
            Part::Cut(c) => Part::Cut(c.saturating_sub(n)),
        }
    }

    fn take(self, n: u64) -> Part<'a> {
        match self {
            Part::Bytes(b) => Part::Bytes(&b[..(n as usize).min(b.len())]),
            Part::Cut(c) => Part::Cut(c.min(n)),
        }
    }
}

struct Pending {
    held: Held,
    ts_ns: i64,
}

/// One direction of a TCP session.
#[derive(Default)]
pub struct Half {
    /// The sequence number of stream offset 0.
    base: Option<u32>,
    /// The next stream offset to deliver.
    next: u64,
    /// The stream offset of the FIN, once seen (it takes a sequence number
    /// but is no byte).
    fin: Option<u64>,
    pending: BTreeMap<u64, Pending>,
    pending_bytes: usize,
    /// The last delivered bytes, ending at `next` (emptied by a gap).
    history: VecDeque<u8>,
    pub stats: HalfStats,
}

/// One segment as it arrived.
#[derive(Debug, Clone, Copy)]
pub struct Segment<'a> {
    pub seq: u32,
    pub syn: bool,
    pub fin: bool,
    /// The captured payload.
    pub data: &'a [u8],
    /// The payload's length on the wire (more than `data` when cut).
    pub wire_len: u32,
    pub ts_ns: i64,
}

impl Half {
    fn offset(&self, base: u32, seq: u32) -> i64 {
        pcapidx_decode::tcp_offset(base, seq, self.next)
    }

    pub fn segment(&mut self, s: &Segment<'_>, emit: &mut dyn FnMut(Piece<'_>)) {
        let seq = s.seq.wrapping_add(u32::from(s.syn));
        let base = *self.base.get_or_insert(seq);
        let start = self.offset(base, seq);
        let captured = (s.data.len() as u64).min(u64::from(s.wire_len));
        if s.fin {
            let at = start + i64::from(s.wire_len);
            if at >= 0 {
                self.fin = Some(at as u64);
            }
        }
        let data = &s.data[..captured as usize];
        self.offer(start, Part::Bytes(data), s.ts_ns, emit);
        let cut = u64::from(s.wire_len) - captured;
        if cut > 0 {
            self.offer(start + captured as i64, Part::Cut(cut), s.ts_ns, emit);
        }
    }

    /// The other side acknowledged up to `ack`: what it has seen and the
    /// capture has not is missing (Wireshark's rule).
    pub fn acknowledged(&mut self, ack: u32, ts_ns: i64, emit: &mut dyn FnMut(Piece<'_>)) {
        let Some(base) = self.base else { return };
        let acked = self.offset(base, ack);
        while let Some((&lowest, _)) = self.pending.first_key_value() {
            if acked <= lowest as i64 {
                break;
            }
            self.gap_to(lowest, ts_ns, emit);
        }
    }

    /// The session is over: what still waits is delivered after gaps.
    pub fn finish(&mut self, emit: &mut dyn FnMut(Piece<'_>)) {
        while let Some((&lowest, p)) = self.pending.first_key_value() {
            let ts = p.ts_ns;
            self.gap_to(lowest, ts, emit);
        }
    }

    /// Where the stream stands: the next offset it would deliver.
    pub fn end(&self) -> u64 {
        self.next
    }

    fn gap_to(&mut self, to: u64, ts_ns: i64, emit: &mut dyn FnMut(Piece<'_>)) {
        if to > self.next {
            let len = to - self.next;
            emit(Piece::Gap {
                offset: self.next,
                len,
                ts_ns,
                kind: GapKind::NotCaptured,
            });
            self.stats.missing += len;
            self.stats.gaps += 1;
            self.history.clear();
            self.next = to;
        }
        self.drain(emit);
    }

    /// Data after the FIN starts one past it: the FIN's number is no byte.
    fn skip_fin(&mut self, start: i64) {
        if self.fin == Some(self.next) && start == self.next as i64 + 1 {
            self.next += 1;
        }
    }

    fn offer(&mut self, start: i64, part: Part<'_>, ts_ns: i64, emit: &mut dyn FnMut(Piece<'_>)) {
        let len = part.len() as i64;
        if len == 0 || start + len <= 0 {
            return;
        }
        let (start, part) = if start < 0 {
            (0u64, part.skip(start.unsigned_abs()))
        } else {
            (start as u64, part)
        };
        self.skip_fin(start as i64);
        let part = self.seen_again(start, part);
        let start = start.max(self.next);
        if part.len() == 0 {
            return;
        }
        if start == self.next && self.pending.is_empty() {
            self.deliver(part, ts_ns, emit);
        } else {
            // Waiting copies that this one overlaps keep their bytes.
            self.hold(start, part, ts_ns);
            self.drain(emit);
            if self.pending_bytes > PENDING_LIMIT
                && let Some((&lowest, _)) = self.pending.first_key_value()
            {
                self.gap_to(lowest, ts_ns, emit);
            }
        }
    }

    /// Counts the part of `[start, ..)` below `next` as seen again,
    /// comparing it with the history; returns what lies beyond.
    fn seen_again<'a>(&mut self, start: u64, part: Part<'a>) -> Part<'a> {
        if start >= self.next {
            return part;
        }
        let old = (self.next - start).min(part.len());
        self.stats.retransmitted += old;
        if let Part::Bytes(b) = part {
            let kept_from = self.next - self.history.len() as u64;
            for (i, &byte) in b[..old as usize].iter().enumerate() {
                let at = start + i as u64;
                if at >= kept_from && self.history[(at - kept_from) as usize] != byte {
                    self.stats.inconsistent += 1;
                }
            }
        }
        part.skip(old)
    }

    fn deliver(&mut self, part: Part<'_>, ts_ns: i64, emit: &mut dyn FnMut(Piece<'_>)) {
        let offset = self.next;
        match part {
            Part::Bytes(b) => {
                emit(Piece::Data {
                    offset,
                    ts_ns,
                    bytes: b,
                });
                self.stats.bytes += b.len() as u64;
                let keep = &b[b.len().saturating_sub(HISTORY)..];
                let excess = (self.history.len() + keep.len()).saturating_sub(HISTORY);
                self.history.drain(..excess);
                self.history.extend(keep);
            }
            Part::Cut(n) => {
                emit(Piece::Gap {
                    offset,
                    len: n,
                    ts_ns,
                    kind: GapKind::CutBySnaplen,
                });
                self.stats.missing += n;
                self.stats.gaps += 1;
                self.history.clear();
            }
        }
        self.next += part.len();
    }

    /// Delivers what waited and now fits.
    fn drain(&mut self, emit: &mut dyn FnMut(Piece<'_>)) {
        while let Some((&start, _)) = self.pending.first_key_value() {
            self.skip_fin(start as i64);
            if start > self.next {
                break;
            }
            let Some(p) = self.pending.remove(&start) else {
                break;
            };
            self.pending_bytes -= p.held.len() as usize;
            let part = match &p.held {
                Held::Bytes(b) => Part::Bytes(b),
                Held::Cut(n) => Part::Cut(*n),
            };
            let part = self.seen_again(start, part);
            if part.len() > 0 {
                self.deliver(part, p.ts_ns, emit);
            }
        }
    }

    /// Keeps a part ahead of the stream: only the bytes no earlier waiting
    /// copy covers (first copy wins), counting overlaps.
    fn hold(&mut self, start: u64, part: Part<'_>, ts_ns: i64) {
        let end = start + part.len();
        // Waiting copies that overlap [start, end), as (from, to).
        let mut covered: Vec<(u64, u64)> = Vec::new();
        if let Some((&s, p)) = self.pending.range(..start).next_back()
            && s + p.held.len() > start
        {
            covered.push((s, s + p.held.len()));
        }
        for (&s, p) in self.pending.range(start..end) {
            covered.push((s, s + p.held.len()));
        }
        let mut at = start;
        let mut fresh: Vec<(u64, u64)> = Vec::new();
        for &(s, e) in &covered {
            if s > at {
                fresh.push((at, s));
            }
            let (from, to) = (s.max(start), e.min(end));
            if to > from {
                self.stats.retransmitted += to - from;
                if let (
                    Part::Bytes(b),
                    Some(Pending {
                        held: Held::Bytes(old),
                        ..
                    }),
                ) = (part, self.pending.get(&s))
                {
                    let mine = &b[(from - start) as usize..(to - start) as usize];
                    let theirs = &old[(from - s) as usize..(to - s) as usize];
                    self.stats.inconsistent +=
                        mine.iter().zip(theirs).filter(|(a, b)| a != b).count() as u64;
                }
            }
            at = at.max(e);
        }
        if at < end {
            fresh.push((at, end));
        }
        for (s, e) in fresh {
            let piece = part.skip(s - start).take(e - s);
            let held = match piece {
                Part::Bytes(b) => Held::Bytes(b.to_vec()),
                Part::Cut(n) => Held::Cut(n),
            };
            self.pending_bytes += held.len() as usize;
            self.pending.insert(s, Pending { held, ts_ns });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs segments (seq, bytes) through a half, then finishes it; returns
    /// the stream with gaps as '_' and the stats.
    fn run(segs: &[(u32, &[u8])], syn_at: Option<u32>) -> (String, HalfStats) {
        let mut h = Half::default();
        let mut out = String::new();
        let mut emit = |p: Piece<'_>| match p {
            Piece::Data { offset, bytes, .. } => {
                assert_eq!(offset as usize, out.len());
                out.push_str(std::str::from_utf8(bytes).unwrap());
            }
            Piece::Gap { offset, len, .. } => {
                assert_eq!(offset as usize, out.len());
                out.extend(std::iter::repeat_n('_', len as usize));
            }
        };
        if let Some(s) = syn_at {
            h.segment(
                &Segment {
                    seq: s,
                    syn: true,
                    fin: false,
                    data: &[],
                    wire_len: 0,
                    ts_ns: 0,
                },
                &mut emit,
            );
        }
        for &(seq, data) in segs {
            h.segment(
                &Segment {
                    seq,
                    syn: false,
                    fin: false,
                    data,
                    wire_len: data.len() as u32,
                    ts_ns: 0,
                },
                &mut emit,
            );
        }
        h.finish(&mut emit);
        (out, h.stats)
    }

    #[test]
    fn in_order_retransmitted_and_out_of_order() {
        let (s, st) = run(&[(101, b"abc"), (104, b"def")], Some(100));
        assert_eq!(s, "abcdef");
        assert_eq!(st.retransmitted, 0);
        // A retransmission carrying more than was seen: only the new bytes.
        let (s, st) = run(&[(1, b"abc"), (1, b"abcdef"), (4, b"XYZ")], None);
        assert_eq!(s, "abcdef");
        assert_eq!((st.retransmitted, st.inconsistent), (6, 3));
        // Out of order: held, then placed.
        let (s, _) = run(&[(1, b"ab"), (5, b"ef"), (3, b"cd")], None);
        assert_eq!(s, "abcdef");
        // Overlapping waiting copies: the first one wins.
        let (s, st) = run(&[(1, b"a"), (3, b"cdef"), (4, b"XYZW"), (2, b"b")], None);
        assert_eq!(s, "abcdefW");
        assert_eq!((st.retransmitted, st.inconsistent), (3, 3));
    }

    #[test]
    fn gaps_wrap_and_mid_stream() {
        // A hole never filled: a gap, then the rest.
        let (s, st) = run(&[(1, b"ab"), (6, b"fg")], None);
        assert_eq!(s, "ab___fg");
        assert_eq!((st.missing, st.gaps), (3, 1));
        // Sequence numbers wrap past 2^32.
        let (s, _) = run(&[(u32::MAX - 1, b"ab"), (0, b"cd"), (2, b"ef")], None);
        assert_eq!(s, "abcdef");
        let (s, _) = run(&[(2, b"cd")], Some(u32::MAX - 1));
        // The SYN takes u32::MAX - 1; data at 2 starts three bytes later.
        assert_eq!(s, "___cd");
        // Data before the first segment seen (mid-stream start) is dropped.
        let (s, _) = run(&[(10, b"kl"), (8, b"ijkl"), (12, b"mn")], None);
        assert_eq!(s, "klmn");
    }

    #[test]
    fn ack_declares_a_hole_and_cut_segments_are_gaps() {
        let mut h = Half::default();
        let mut got = Vec::new();
        let mut emit = |p: Piece<'_>| {
            got.push(match p {
                Piece::Data { offset, bytes, .. } => format!("{offset}:{}", bytes.len()),
                Piece::Gap {
                    offset, len, kind, ..
                } => format!("{offset}:gap{len}:{kind:?}"),
            })
        };
        let seg = |seq: u32, data: &'static [u8], wire: u32| Segment {
            seq,
            syn: false,
            fin: false,
            data,
            wire_len: wire,
            ts_ns: 0,
        };
        h.segment(&seg(1000, b"aaaa", 4), &mut emit);
        h.segment(&seg(1010, b"bbbb", 4), &mut emit);
        h.acknowledged(1008, 0, &mut emit); // not past the waiting segment
        h.acknowledged(1014, 0, &mut emit);
        h.segment(&seg(1014, b"cc", 6), &mut emit);
        h.segment(&seg(1020, b"d", 1), &mut emit);
        assert_eq!(
            got,
            [
                "0:4",
                "4:gap6:NotCaptured",
                "10:4",
                "14:2",
                "16:gap4:CutBySnaplen",
                "20:1"
            ]
        );
    }
}
