//! `cargo xtask fuzz-seeds`: seed corpora for the fuzz targets, made from
//! the generator's captures in `testdata/` — whole files for the reader,
//! one input per distinct packet for the decoder, and the position chunks
//! of an index built from them.
use std::collections::HashSet;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};
use pcapidx_capture::CaptureReader;
use pcapidx_decode::fuzzing::LINK_TYPES;

pub fn write(root: &Path, bin: &Path) -> Result<()> {
    let testdata = root.join("testdata");
    let corpus = root.join("fuzz/corpus");
    let mut files = Vec::new();
    walk(&testdata, &mut files)?;
    files.sort();
    let (mut n_files, mut n_packets) = (0, 0);
    let mut seen = HashSet::new();
    for f in &files {
        let Ok(mut reader) = CaptureReader::open(f) else {
            continue;
        };
        put(&corpus.join("capture_reader"), &std::fs::read(f)?)?;
        n_files += 1;
        while let Ok(Some(chunk)) = reader.next_chunk() {
            for r in &chunk.records {
                let Some(pick) = LINK_TYPES.iter().position(|&l| l == r.link_type) else {
                    continue;
                };
                let mut input = vec![pick as u8];
                // Headers are what the decoder reads; payloads only dilute.
                input.extend_from_slice(&chunk.data(r)[..chunk.data(r).len().min(160)]);
                if seen.insert(input.clone()) {
                    put(&corpus.join("decode"), &input)?;
                    n_packets += 1;
                }
            }
        }
    }
    let db = std::env::temp_dir().join(format!("pcapidx-seeds-{}.db", std::process::id()));
    let st = Command::new(bin)
        .arg("--db")
        .arg(&db)
        .args(["index", "-q"])
        .arg(&testdata)
        .status()?;
    if !matches!(st.code(), Some(0 | 1)) {
        bail!("indexing testdata failed: {st}");
    }
    let conn = rusqlite::Connection::open(&db)?;
    let mut stmt = conn.prepare("SELECT data FROM flow_chunks")?;
    let chunks: Vec<Vec<u8>> = stmt
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for c in &chunks {
        put(&corpus.join("positions"), c)?;
    }
    for ext in ["", "-wal", "-shm", ".lock"] {
        let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
    }
    eprintln!(
        "fuzz/corpus: {n_files} captures, {n_packets} packets, {} position chunks",
        chunks.len()
    );
    Ok(())
}

/// Writes one corpus input, named by its content as libFuzzer does.
fn put(dir: &Path, data: &[u8]) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    let name = format!("{:016x}", fnv(data));
    std::fs::write(dir.join(name), data).with_context(|| format!("writing into {}", dir.display()))
}

/// FNV-1a: a stable name for an input, no dependency needed.
fn fnv(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf29ce484222325u64, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x100000001b3)
    })
}

fn walk(dir: &Path, out: &mut Vec<std::path::PathBuf>) -> Result<()> {
    for e in std::fs::read_dir(dir)? {
        let p = e?.path();
        if p.is_dir() {
            walk(&p, out)?;
        } else {
            out.push(p);
        }
    }
    Ok(())
}
