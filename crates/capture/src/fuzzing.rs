//! The properties the `capture_reader` fuzz target checks on any bytes, kept
//! here so that `tests/fuzzing.rs` replays the same checks over the seed corpus
//! and every saved crash (`fuzz/regressions/capture_reader/`) on stable Rust.
use std::fs::File;
use std::path::Path;

use crate::{CaptureReader, read_record_at};

/// Reads `data` as a capture file and checks what the reader promises:
/// no panic, records in file order inside the file, and each record read
/// back at its offset gives the same header and bytes.
pub fn check_reader(data: &[u8]) {
    // One file per thread: libFuzzer runs one input at a time, tests in parallel.
    let path = std::env::temp_dir().join(format!(
        "pcapidx-fuzz-{}-{:?}",
        std::process::id(),
        std::thread::current().id()
    ));
    if std::fs::write(&path, data).is_err() {
        return;
    }
    check_file(&path, data.len() as u64);
    let _ = std::fs::remove_file(&path);
}

fn check_file(path: &Path, size: u64) {
    let Ok(mut reader) = CaptureReader::open(path) else {
        return;
    };
    let Ok(file) = File::open(path) else { return };
    let mut end = 0u64;
    let mut data = Vec::new();
    loop {
        let chunk = match reader.next_chunk() {
            Ok(Some(c)) => c,
            Ok(None) => break,
            Err(e) => {
                assert!(e.offset <= size, "error offset {} past the end", e.offset);
                break;
            }
        };
        let interfaces = reader.interfaces();
        for r in &chunk.records {
            assert!(
                r.offset >= end,
                "record at {} overlaps the previous one",
                r.offset
            );
            assert!(r.end() <= size, "record at {} runs past the end", r.offset);
            assert!(
                r.caplen <= r.len,
                "caplen {} above the record length",
                r.caplen
            );
            end = r.end();
            let iface = &interfaces[r.iface as usize];
            let h = read_record_at(
                &file,
                reader.format(),
                iface,
                r.offset,
                r.caplen,
                Some(&mut data),
            )
            .unwrap_or_else(|e| panic!("record at {} does not read back: {e}", r.offset));
            assert_eq!(h.caplen, r.caplen, "caplen at {}", r.offset);
            assert_eq!(h.orig_len, r.orig_len, "orig_len at {}", r.offset);
            if let Some(ts) = h.ts_ns {
                assert_eq!(ts, r.ts_ns, "timestamp at {}", r.offset);
            }
            assert_eq!(data.as_slice(), chunk.data(r), "bytes at {}", r.offset);
        }
    }
}
