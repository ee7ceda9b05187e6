//! Captures written by the project's generator, checked against the ground
//! truth the generator records: every flow, its totals, and the position of
//! every one of its packets.
use std::collections::BTreeMap;
use std::path::Path;

use crate::common::*;

/// (path, offset) -> (ts, caplen, orig_len, reverse) of every packet pcapidx stored.
fn stored_positions(db: &Path) -> BTreeMap<(String, u64), (i64, u64, u64, bool, i64)> {
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
