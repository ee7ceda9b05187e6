//! The property the `reassembly` fuzz target checks, kept here so unit
//! tests run it on stable over many generated inputs.
use crate::GapKind;
use crate::tcp::{Half, Piece, Segment};

/// What a stream byte is in the reference model.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Claim {
    Byte(u8),
    Cut,
}

/// Feeds one direction segments described by `data` (a base sequence
/// number, then 4 bytes per segment: offset, length, fill and whether the
/// snaplen cut it), in that order, and checks the stream against a simple
/// model: each offset holds the first copy that claimed it, offsets no
/// segment claimed are gaps, events are contiguous from 0, and the counts
/// add up.
pub fn check_reassembly(data: &[u8]) {
    let Some((base, rest)) = data.split_first_chunk::<4>() else {
        return;
    };
    // Near 2^32 half the time, so sequence numbers wrap.
    let base = u32::from_le_bytes(*base);
    let mut half = Half::default();
    let mut model: Vec<Option<Claim>> = Vec::new();
    let mut first: Option<i64> = None;
    let (mut again, mut differing, mut any_cut) = (0u64, 0u64, false);
    let mut out: Vec<Option<Claim>> = Vec::new();
    let mut emit = |p: Piece<'_>| match p {
        Piece::Data { offset, bytes, .. } => {
            assert_eq!(offset as usize, out.len(), "data out of place");
            out.extend(bytes.iter().map(|&b| Some(Claim::Byte(b))));
        }
        Piece::Gap {
            offset, len, kind, ..
        } => {
            assert_eq!(offset as usize, out.len(), "gap out of place");
            assert!(len > 0);
            let c = (kind == GapKind::CutBySnaplen).then_some(Claim::Cut);
            out.extend(std::iter::repeat_n(c, len as usize));
        }
    };
    for seg in rest.chunks_exact(4) {
        let offset = i64::from(u16::from_le_bytes([seg[0], seg[1]]) % 512) - 16;
        let len = u32::from(seg[2] % 40);
        let fill = seg[3] >> 1;
        let cut = seg[3] & 1 == 1;
        let captured = if cut { len / 2 } else { len };
        any_cut |= cut && captured < len;
        let bytes: Vec<u8> = (0..captured)
            .map(|i| fill ^ (offset as u8).wrapping_add(i as u8))
            .collect();
        half.segment(
            &Segment {
                seq: base.wrapping_add(offset as u32),
                syn: false,
                fin: false,
                data: &bytes,
                wire_len: len,
                ts_ns: 0,
            },
            &mut emit,
        );
        // The model: the stream starts at the first segment's offset.
        let start = *first.get_or_insert(offset);
        for i in 0..i64::from(len) {
            let at = offset + i - start;
            if at < 0 {
                continue;
            }
            let at = at as usize;
            if model.len() <= at {
                model.resize(at + 1, None);
            }
            let claim = if (i as u32) < captured {
                Claim::Byte(bytes[i as usize])
            } else {
                Claim::Cut
            };
            match model[at] {
                None => model[at] = Some(claim),
                Some(old) => {
                    again += 1;
                    if let (Claim::Byte(a), Claim::Byte(b)) = (old, claim) {
                        differing += u64::from(a != b);
                    }
                }
            }
        }
    }
    half.finish(&mut emit);
    assert_eq!(out, model, "stream differs from the first copies");
    let st = half.stats;
    assert_eq!(st.retransmitted, again);
    let (bytes, missing) = model.iter().fold((0, 0), |(b, m), c| match c {
        Some(Claim::Byte(_)) => (b + 1, m),
        _ => (b, m + 1),
    });
    assert_eq!((st.bytes, st.missing), (bytes, missing));
    // A cut clears the comparison history (its bytes are unknown).
    if any_cut {
        assert!(st.inconsistent <= differing);
    } else {
        assert_eq!(st.inconsistent, differing);
    }
}

#[cfg(test)]
mod tests {
    /// What the fuzzer found (`fuzz/regressions/reassembly/`), then many
    /// generated inputs, half of them with sequence numbers that wrap.
    #[test]
    fn reassembly_matches_the_model() {
        let saved = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../fuzz/regressions/reassembly");
        for e in std::fs::read_dir(saved).into_iter().flatten().flatten() {
            super::check_reassembly(&std::fs::read(e.path()).unwrap());
        }
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        for round in 0..20_000u32 {
            let n = 4 + (next() % 80) as usize;
            let mut input: Vec<u8> = (0..n).map(|_| next() as u8).collect();
            if round % 2 == 0 {
                input[..4].copy_from_slice(&(u32::MAX - 100).to_le_bytes());
            }
            super::check_reassembly(&input);
        }
    }
}
