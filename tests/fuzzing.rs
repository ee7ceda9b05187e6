//! Every input the fuzzers crashed on (`fuzz/regressions/TARGET/`), and the
//! seed corpora when `cargo xtask fuzz-seeds` has written them, through the
//! same checks the fuzz targets run — on stable Rust, without libFuzzer.
use std::path::Path;

use crate::common::{testdata, walk};

fn replay(target: &str, check: fn(&[u8])) -> usize {
    let fuzz = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz");
    let mut replayed = 0;
    for dir in ["regressions", "corpus"] {
        let Ok(entries) = std::fs::read_dir(fuzz.join(dir).join(target)) else {
            continue;
        };
        for e in entries.flatten() {
            let data = std::fs::read(e.path()).unwrap();
            let r = std::panic::catch_unwind(|| check(&data));
            assert!(r.is_ok(), "{} fails again", e.path().display());
            replayed += 1;
        }
    }
    eprintln!("{target}: replayed {replayed} fuzz inputs");
    replayed
}

/// The generator's captures in `testdata/`: always there, unlike the corpus.
fn testdata_captures() -> Vec<std::path::PathBuf> {
    let mut out: Vec<_> = walk(&testdata(""))
        .into_iter()
        .filter(|p| pcapidx_capture::CaptureReader::open(p).is_ok())
        .collect();
    out.sort();
    out
}

#[test]
fn capture_reader() {
    replay("capture_reader", pcapidx_capture::fuzzing::check_reader);
    let files = testdata_captures();
    assert!(files.len() >= 20, "{files:?}");
    for f in files {
        pcapidx_capture::fuzzing::check_reader(&std::fs::read(f).unwrap());
    }
}

#[test]
fn decode() {
    // Two crashes found so far; both must be there to be replayed.
    assert!(replay("decode", pcapidx_decode::fuzzing::check_decode) >= 2);
}

#[test]
fn positions() {
    replay("positions", pcapidx_positions::fuzzing::check_chunk);
    // Chunks of real positions: every record of each testdata capture.
    let mut chunks = 0;
    for (file_id, f) in testdata_captures().iter().enumerate() {
        let mut reader = pcapidx_capture::CaptureReader::open(f).unwrap();
        let mut enc = pcapidx_positions::Encoder::new();
        while let Ok(Some(chunk)) = reader.next_chunk() {
            for (i, r) in chunk.records.iter().enumerate() {
                enc.push(&pcapidx_positions::Position {
                    file_id: file_id as u32,
                    offset: r.offset,
                    ts_ns: r.ts_ns,
                    caplen: r.caplen,
                    orig_len: r.orig_len,
                    reverse: i % 3 == 1,
                    iface: r.iface,
                });
            }
        }
        if !enc.is_empty() {
            pcapidx_positions::fuzzing::check_chunk(&enc.take());
            chunks += 1;
        }
    }
    assert!(chunks >= 20, "{chunks}");
}
