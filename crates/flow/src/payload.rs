//! Payload bytes per direction, and those missing from the capture, as
//! Zeek's conn.log counts them (`orig_bytes`, `resp_bytes`,
//! `missed_bytes`): for TCP from sequence numbers (the span of sequence
//! space sent, whatever was retransmitted), for other protocols the sum of
//! the datagrams' payloads. Cheap: no payload is kept, and a flow holds a
//! list of holes only while its sequence numbers jump.
use std::collections::VecDeque;

use crate::record::Payload;

/// Holes remembered per direction; past it the oldest is forgotten (its
/// bytes stay counted as missed even if they arrive later).
const MAX_HOLES: usize = 16;

/// Sequence-space holes of a flow not yet filled, per direction.
pub(crate) type Holes = Option<Box<[VecDeque<(u64, u64)>; 2]>>;

/// A TCP segment of `len` payload bytes (`cut` of them not captured) at
/// `seq`, in a direction whose stream starts after `base` (the SYN's
/// sequence number, as the tracker keeps it).
#[allow(clippy::too_many_arguments)]
pub(crate) fn tcp_segment(
    p: &mut Payload,
    holes: &mut Holes,
    dir: usize,
    base: u32,
    seq: u32,
    syn: bool,
    len: u32,
    cut: u32,
) {
    let seq = seq.wrapping_add(u32::from(syn));
    let end = p.sent[dir];
    let start = pcapidx_decode::tcp_offset(base.wrapping_add(1), seq, end);
    let stop = start + i64::from(len);
    if len == 0 || stop <= 0 {
        return;
    }
    let (start, stop) = (start.max(0) as u64, stop as u64);
    if start > end {
        let h = holes.get_or_insert_with(Default::default);
        let list = &mut h[dir];
        if list.len() == MAX_HOLES {
            list.pop_front();
        }
        list.push_back((end, start));
        p.missed[dir] += start - end;
    } else if start < end
        && let Some(h) = holes
    {
        // Only what was captured fills a hole (the snaplen cuts the tail).
        let captured_end = stop.saturating_sub(u64::from(cut)).max(start);
        p.missed[dir] -= fill(&mut h[dir], start, captured_end.min(end));
    }
    if stop > end {
        p.sent[dir] = stop;
        p.missed[dir] += u64::from(cut).min(stop - start.max(end));
    }
}

/// A datagram (or a fragment) of `len` payload bytes, `cut` not captured.
pub(crate) fn datagram(p: &mut Payload, dir: usize, len: u32, cut: u32) {
    p.sent[dir] += u64::from(len);
    p.missed[dir] += u64::from(cut.min(len));
}

/// Removes `[from, to)` from the holes; returns how many bytes it filled.
fn fill(list: &mut VecDeque<(u64, u64)>, from: u64, to: u64) -> u64 {
    // Holes are in stream order: none ends past `from`, none is filled.
    if list.back().is_none_or(|h| h.1 <= from) {
        return 0;
    }
    let mut filled = 0;
    let mut kept = VecDeque::with_capacity(list.len() + 1);
    for &(s, e) in list.iter() {
        let (a, b) = (s.max(from), e.min(to));
        if a >= b {
            kept.push_back((s, e));
            continue;
        }
        filled += b - a;
        if s < a {
            kept.push_back((s, a));
        }
        if b < e {
            kept.push_back((b, e));
        }
    }
    *list = kept;
    filled
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(segs: &[(u32, u32, u32)]) -> (Payload, Holes) {
        let (mut p, mut h) = (Payload::default(), None);
        for &(seq, len, cut) in segs {
            tcp_segment(&mut p, &mut h, 0, 999, seq, false, len, cut);
        }
        (p, h)
    }

    #[test]
    fn sequence_span_holes_and_cuts() {
        // In order, then a retransmission: the span, nothing missed.
        let (p, _) = run(&[(1000, 100, 0), (1100, 100, 0), (1000, 100, 0)]);
        assert_eq!((p.sent[0], p.missed[0]), (200, 0));
        // A hole, later filled in two parts.
        let (p, _) = run(&[(1000, 100, 0), (1300, 100, 0)]);
        assert_eq!((p.sent[0], p.missed[0]), (400, 200));
        let (p, h) = run(&[(1000, 100, 0), (1300, 100, 0), (1150, 50, 0), (1100, 50, 0)]);
        assert_eq!((p.sent[0], p.missed[0]), (400, 100));
        assert_eq!(h.unwrap()[0], [(200, 300)]);
        // Cut by the snaplen: missing, unless a retransmission is all that has it.
        let (p, _) = run(&[(1000, 1000, 900), (1000, 1000, 0)]);
        assert_eq!((p.sent[0], p.missed[0]), (1000, 900));
        // A cut segment fills only the part of a hole it captured.
        let (p, _) = run(&[(1000, 100, 0), (1300, 100, 0), (1100, 200, 150)]);
        assert_eq!((p.sent[0], p.missed[0]), (400, 150));
        // Sequence numbers wrap.
        let (mut p, mut h) = (Payload::default(), None);
        tcp_segment(&mut p, &mut h, 1, u32::MAX - 10, u32::MAX - 9, false, 20, 0);
        tcp_segment(&mut p, &mut h, 1, u32::MAX - 10, 10, false, 5, 0);
        assert_eq!((p.sent[1], p.missed[1]), (25, 0));
        // Data before the stream's start is not counted.
        let (p, _) = run(&[(900, 50, 0), (990, 20, 0)]);
        assert_eq!((p.sent[0], p.missed[0]), (10, 0));
    }
}
