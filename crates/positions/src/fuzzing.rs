//! The properties the `positions` fuzz target checks on any bytes, kept here
//! so that `tests/fuzzing.rs` replays them over saved crashes
//! (`fuzz/regressions/positions/`) on stable Rust.
use crate::{Encoder, decode};

/// Decodes `data` as a chunk: no panic, and whatever decodes encodes back
/// to a chunk that decodes to the same positions.
pub fn check_chunk(data: &[u8]) {
    let Ok(positions) = decode(data) else { return };
    let mut enc = Encoder::new();
    for p in &positions {
        enc.push(p);
    }
    let again = decode(&enc.take()).expect("a chunk the encoder wrote decodes");
    assert_eq!(positions, again);
}
