//! Captures written by the project's generator, checked against the ground
//! truth the generator records: every flow, its totals, and the position of
//! every one of its packets.
use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// What pcapidx stored for one packet: (ts, caplen, orig_len, reverse, flow id).
type Stored = (i64, u64, u64, bool, i64);

/// (path, offset) -> what pcapidx stored, for every packet.
fn stored_positions(db: &Path) -> BTreeMap<(String, u64), Stored> {
    sql(
        db,
        "SELECT f.path, p.offset, p.ts_ns, p.caplen, p.orig_len, p.direction, p.flow_id
         FROM packets p JOIN files f USING (file_id)",
    )
    .into_iter()
    .map(|r| {
        let key = (
            r["path"].as_str().unwrap().to_string(),
            r["offset"].as_u64().unwrap(),
        );
        let v = (
            r["ts_ns"].as_i64().unwrap(),
            r["caplen"].as_u64().unwrap(),
            r["orig_len"].as_u64().unwrap(),
            r["direction"] == "rev",
            r["flow_id"].as_i64().unwrap(),
        );
        (key, v)
    })
    .collect()
}

#[test]
fn every_sample_set_indexes_to_its_ground_truth() {
    let dir = tmpdir("samples");
    let sets = pcapidx_gen::sample::write_all(&dir).expect("generate samples");
    assert!(sets.len() > 25);
    for set in &sets {
        let db = dir.join(format!("{}.db", set.name));
        let set_dir = set.files[0].parent().unwrap();
        pcapidx_ok(&db, &["index", set_dir.to_str().unwrap(), "--jobs", "2"], 0);
        let got = flow_summaries(&db);
        let want = set.truth.summaries();
        if got != want {
            let only_got: Vec<_> = got.iter().filter(|g| !want.contains(g)).collect();
            let only_want: Vec<_> = want.iter().filter(|w| !got.contains(w)).collect();
            panic!(
                "{}: flows differ\nonly in pcapidx:\n{only_got:#?}\nonly in truth:\n{only_want:#?}",
                set.name
            );
        }
        // Every packet of every flow is where the truth says, with its lengths,
        // timestamp and direction; packets of one truth flow share one flow id.
        let stored = stored_positions(&db);
        assert_eq!(stored.len(), set.truth.packets(), "{}", set.name);
        for (i, f) in set.truth.flows.iter().enumerate() {
            let mut ids = std::collections::BTreeSet::new();
            for p in &f.packets {
                let path = std::fs::canonicalize(&set.files[p.file]).unwrap();
                let key = (path.to_string_lossy().into_owned(), p.offset);
                let Some(&(ts, cap, orig, rev, id)) = stored.get(&key) else {
                    panic!("{}: truth flow {i}: no packet stored at {key:?}", set.name);
                };
                assert_eq!(
                    (ts, cap, orig as u32, rev),
                    (p.ts_ns, u64::from(p.caplen), p.orig_len, p.reverse),
                    "{}: truth flow {i} packet at {key:?}",
                    set.name
                );
                ids.insert(id);
            }
            assert!(
                ids.len() <= 1,
                "{}: truth flow {i} split into flows {ids:?}",
                set.name
            );
        }
    }
}

fn files_under(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p)
            } else {
                out.push(p)
            }
        }
    }
    out.sort();
    out
}

/// `testdata/` is exactly what the generator writes for the bundled sets.
/// After a deliberate change to the generator, `PCAPIDX_BLESS=1 cargo test`
/// rewrites it; review the diff (EXPECTED.tsv shows what changed).
#[test]
fn testdata_is_what_the_generator_writes() {
    let fresh = tmpdir("bundled");
    pcapidx_gen::sample::write_bundled(&fresh).unwrap();
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let bless = std::env::var_os("PCAPIDX_BLESS").is_some();
    if bless {
        for set in pcapidx_gen::sample::BUNDLED {
            let _ = std::fs::remove_dir_all(testdata.join(set));
        }
    }
    let mut differ = Vec::new();
    for f in files_under(&fresh) {
        let rel = f.strip_prefix(&fresh).unwrap();
        let committed = testdata.join(rel);
        let new = std::fs::read(&f).unwrap();
        if std::fs::read(&committed).ok().as_ref() != Some(&new) {
            if bless {
                std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
                std::fs::write(&committed, &new).unwrap();
            } else {
                differ.push(rel.display().to_string());
            }
        }
    }
    assert!(
        differ.is_empty(),
        "testdata/ differs from the generator for {differ:?}; rerun with PCAPIDX_BLESS=1 if intended"
    );
}

/// Each bundled set indexes to the flows listed in its EXPECTED.tsv.
#[test]
fn testdata_indexes_to_its_expected_flows() {
    let testdata = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    for set in pcapidx_gen::sample::BUNDLED {
        let dir = testdata.join(set);
        let expected = std::fs::read_to_string(dir.join("EXPECTED.tsv")).unwrap();
        let mut want: Vec<String> = expected.lines().skip(1).map(str::to_string).collect();
        want.sort();
        let db = tmpdir("testdata").join("t.db");
        pcapidx_ok(&db, &["index", dir.to_str().unwrap(), "-q"], 0);
        assert_eq!(flow_summaries(&db), want, "{set}");
    }
}
