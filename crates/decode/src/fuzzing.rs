//! The properties the `decode` fuzz target checks on any bytes, kept here so
//! that `tests/fuzzing.rs` replays them over saved crashes
//! (`fuzz/regressions/decode/`) on stable Rust.
use crate::{Decoded, decode};

/// Link types the decoder handles, plus one it does not; the input's first
/// byte picks one so the fuzzer spends its time on real decoders. The order
/// is the saved regressions' (`fuzz/regressions/decode/`); a test holds the
/// set to `SUPPORTED_LINK_TYPES`.
pub const LINK_TYPES: [u16; 16] = [
    1, 0, 108, 12, 14, 101, 228, 229, 113, 276, 9, 104, 105, 127, 239, 147,
];

/// Decodes `data[1..]` as a packet of the link type `data[0]` picks, and
/// checks: no panic; the result does not depend on what the output held
/// before (the indexer reuses it packet after packet).
pub fn check_decode(data: &[u8]) {
    let Some((&pick, packet)) = data.split_first() else {
        return;
    };
    let link_type = LINK_TYPES[usize::from(pick) % LINK_TYPES.len()];
    let mut fresh = Decoded::default();
    decode(link_type, packet, &mut fresh);
    // A dirty output: whatever another packet left behind.
    let mut reused = Decoded::default();
    decode(1, &[0xff; 60], &mut reused);
    decode(link_type, packet, &mut reused);
    assert_eq!(fresh, reused, "decoding depends on the previous packet");
    assert!(fresh.vlans().len() <= 3);
}

/// What the fuzzer found, decoded as the target decodes it.
#[cfg(test)]
mod found {
    use crate::{Decoded, Frag, Layer, decode};

    fn decode_saved(name: &str) -> Decoded {
        let input = std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../../fuzz/regressions/decode")
                .join(name),
        )
        .unwrap();
        let link_type = super::LINK_TYPES[usize::from(input[0]) % super::LINK_TYPES.len()];
        let mut d = Decoded::default();
        decode(link_type, &input[1..], &mut d);
        d
    }

    /// On this mangled IPv6 fragment, etherparse's extension iterator read
    /// past its slice (only AddressSanitizer sees that; here, what the packet
    /// must decode to).
    #[test]
    fn ipv6_later_fragment_cut_short() {
        let d = decode_saved("ipv6-fragment-header-cut-short");
        assert_eq!(d.layer, Layer::Ip);
        // Its fragment header (offset 16, identification 0x11000579) names
        // hop-by-hop (0) as the next header.
        assert_eq!(d.ip.proto, 0);
        assert_eq!(d.ip.frag, Frag::Later { id: 0x1100_0579 });
        assert_eq!(d.ip.ports, None);
    }

    /// An MPLS stack whose last label entry is cut after its bottom-of-stack
    /// byte sliced past the end of the frame (a panic).
    #[test]
    fn mpls_last_label_cut_short() {
        let d = decode_saved("mpls-last-label-cut-short");
        assert_eq!(d.layer, Layer::L2);
        assert_eq!(d.problem, Some("truncated MPLS label stack"));
    }
}
