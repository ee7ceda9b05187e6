//! The properties the `positions` fuzz target checks on any bytes, kept here
//! so that unit tests replay them over saved crashes
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

/// Replays every crash the fuzzer found (`fuzz/regressions/positions/`)
/// and the seed corpus when it has been generated (`cargo xtask fuzz-seeds`).
#[cfg(test)]
mod tests {
    #[test]
    fn fuzz_regressions_and_seeds() {
        let fuzz = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz");
        let mut replayed = 0;
        for dir in ["regressions/positions", "corpus/positions"] {
            let Ok(entries) = std::fs::read_dir(fuzz.join(dir)) else {
                continue;
            };
            for e in entries.flatten() {
                let data = std::fs::read(e.path()).unwrap();
                let input = e.path();
                let r = std::panic::catch_unwind(|| super::check_chunk(&data));
                assert!(r.is_ok(), "{} fails again", input.display());
                replayed += 1;
            }
        }
        eprintln!("replayed {replayed} fuzz inputs");
    }
}
