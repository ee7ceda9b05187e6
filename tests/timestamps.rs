//! Timestamps out of line (docs/schema.md): one broken record time neither
//! splits nor stretches a flow nor moves a span, is counted and carvable;
//! a clock that really moves is followed; on the real corpus only the one
//! record known to be broken is placed.
use std::path::{Path, PathBuf};

use crate::common::*;

const YEAR: i64 = 365 * 24 * 3600;

/// The (offset, ts_sec) of each record of a little-endian microsecond pcap.
fn records(pcap: &[u8]) -> Vec<(usize, u32)> {
    assert_eq!(
        &pcap[..4],
        &[0xd4, 0xc3, 0xb2, 0xa1],
        "a little-endian pcap"
    );
    let mut out = Vec::new();
    let mut at = 24;
    while at + 16 <= pcap.len() {
        let u = |o: usize| u32::from_le_bytes(pcap[at + o..at + o + 4].try_into().unwrap());
        out.push((at, u(0)));
        at += 16 + u(8) as usize;
    }
    out
}

fn set_ts(pcap: &mut [u8], offset: usize, ts_sec: i64) {
    pcap[offset..offset + 4].copy_from_slice(&(ts_sec as u32).to_le_bytes());
}

/// The rotated test set copied to `dir`, with `edit` applied to its first file.
fn rotated_with(dir: &Path, edit: impl FnOnce(&mut Vec<u8>)) -> (PathBuf, PathBuf) {
    let set = dir.join("set");
    std::fs::create_dir_all(&set).unwrap();
    let files = captures_in(&testdata("rotated"));
    for f in &files {
        std::fs::copy(f, set.join(f.file_name().unwrap())).unwrap();
    }
    let first = set.join(files[0].file_name().unwrap());
    let mut bytes = std::fs::read(&first).unwrap();
    edit(&mut bytes);
    std::fs::write(&first, bytes).unwrap();
    (set, first)
}

fn files_spans(db: &Path) -> Vec<String> {
    sql(
        db,
        "SELECT substr(path, -18) AS p, first_ts_ns, last_ts_ns, packets FROM files
         WHERE format IS NOT NULL ORDER BY path",
    )
    .iter()
    .map(|r| {
        format!(
            "{} {} {} {}",
            cell(&r["p"]),
            cell(&r["first_ts_ns"]),
            cell(&r["last_ts_ns"]),
            cell(&r["packets"])
        )
    })
    .collect()
}

fn summary(db: &Path) -> serde_json::Value {
    serde_json::from_str(&pcapidx_ok(db, &["summary", "--format", "json"], 0)).unwrap()
}

#[test]
fn one_broken_record_time_changes_no_flow_and_no_span() {
    let dir = tmpdir("ts-out-of-line");
    let fresh = indexed("ts-out-of-line-fresh", "rotated");
    // A record in the middle of the first file: 28 years ahead, then (a
    // second case) zero.
    for (name, bad) in [("future", Some(28 * YEAR)), ("zero", None)] {
        let sub = dir.join(name);
        let mut chosen = (0, 0);
        let (set, _) = rotated_with(&sub, |b| {
            let recs = records(b);
            chosen = recs[recs.len() / 2];
            let t = bad.map_or(0, |d| i64::from(chosen.1) + d);
            set_ts(b, chosen.0, t);
        });
        let db = sub.join("i.db");
        pcapidx_ok(&db, &["index", "-q", set.to_str().unwrap()], 0);
        assert_eq!(
            flow_summaries(&db),
            flow_summaries(&fresh),
            "{name}: the same flows"
        );
        assert_eq!(
            files_spans(&db),
            files_spans(&fresh),
            "{name}: the same spans"
        );
        let (s, f) = (summary(&db), summary(&fresh));
        assert_eq!(s["overview"]["span_seconds"], f["overview"]["span_seconds"]);
        assert_eq!(s["overview"]["times_out_of_line"], 1, "{name}");
        assert_eq!(f["overview"]["times_out_of_line"], 0);
        let flagged = sql(
            &db,
            "SELECT out_of_line_ts FROM files WHERE format IS NOT NULL ORDER BY path",
        );
        assert_eq!(
            cell(&flagged[0]["out_of_line_ts"]),
            "1",
            "{name}: {flagged:?}"
        );
        // The packet keeps its record's own time, and its flow carves: the
        // carve checks each record against its position.
        let p = sql(
            &db,
            &format!(
                "SELECT flow_id, ts_ns FROM packets JOIN files USING (file_id)
                 WHERE offset = {} AND path LIKE '%rotated_00000.pcap'",
                chosen.0
            ),
        );
        let own = bad.map_or(0, |d| (i64::from(chosen.1) + d) * 1_000_000_000);
        assert_eq!(
            p[0]["ts_ns"].as_i64().unwrap() / 1_000_000_000 * 1_000_000_000,
            own
        );
        let flow = cell(&p[0]["flow_id"]);
        let carved = pcapidx(&db, &["carve", "--flow-id", &flow, "-o", "-", "-q"]);
        assert!(carved.status.success(), "{name}: {carved:?}");
        let want = pcapidx(&fresh, &["carve", "--flow-id", &flow, "-o", "-", "-q"]).stdout;
        // The same records, the one with its own (broken) time, wherever
        // that time sorts it.
        let without_ts = |pcap: &[u8]| {
            let recs = records(pcap);
            let mut v: Vec<Vec<u8>> = recs
                .iter()
                .enumerate()
                .map(|(i, &(at, _))| {
                    let end = recs.get(i + 1).map_or(pcap.len(), |r| r.0);
                    pcap[at + 8..end].to_vec()
                })
                .collect();
            v.sort();
            v
        };
        assert_eq!(without_ts(&carved.stdout), without_ts(&want), "{name}");
        let bad_ts = (own / 1_000_000_000) as u32;
        assert!(
            records(&carved.stdout).iter().any(|r| r.1 == bad_ts),
            "{name}: the record as it is"
        );
    }
}

#[test]
fn a_clock_that_moves_is_followed() {
    // Every record from the middle of the first file on, two days later: the
    // file spans two days and nothing is out of line.
    let dir = tmpdir("ts-jump");
    let (set, _) = rotated_with(&dir, |b| {
        let recs = records(b);
        for &(at, ts) in &recs[recs.len() / 2..] {
            set_ts(b, at, i64::from(ts) + 2 * 24 * 3600);
        }
    });
    let db = dir.join("i.db");
    pcapidx_ok(&db, &["index", "-q", set.to_str().unwrap()], 0);
    assert_eq!(summary(&db)["overview"]["times_out_of_line"], 0);
    let first = &sql(
        &db,
        "SELECT (last_ts_ns - first_ts_ns) / 1e9 AS span FROM files ORDER BY path LIMIT 1",
    )[0];
    assert!(
        first["span"].as_f64().unwrap() > 2.0 * 24.0 * 3600.0,
        "{first:?}"
    );
}

/// The corpus' one known broken time: a DHCP record at 0 in a pcapng test
/// file, which made a 42-year "session" and a capture starting in 1970.
/// Nothing else in the corpus is out of line.
#[test]
fn the_corpus_broken_time_is_placed_and_nothing_else_moves() {
    let Some(corpus) = corpus() else { return };
    let db = tmpdir("ts-corpus").join("i.db");
    let out = pcapidx(&db, &["index", "-q", corpus.to_str().unwrap()]);
    assert!(matches!(out.status.code(), Some(0 | 1)), "{out:?}");
    let flagged = sql(
        &db,
        "SELECT path AS p, out_of_line_ts AS n FROM files WHERE out_of_line_ts > 0",
    );
    assert_eq!(flagged.len(), 1, "{flagged:?}");
    assert!(cell(&flagged[0]["p"]).ends_with("pcapng-test202-mixed-endian-sections.pcapng"));
    assert_eq!(cell(&flagged[0]["n"]), "1");
    let longest = sql(&db, "SELECT max(duration_s) AS d FROM flow_summary");
    assert!(longest[0]["d"].as_f64().unwrap() < 3600.0, "{longest:?}");
    let dhcp = sql(
        &db,
        "SELECT duration_s FROM flow_summary JOIN files f ON f.path LIKE '%test202%'
         WHERE flow_id IN (SELECT flow_id FROM file_flows WHERE file_id = f.file_id) AND dst_port = 67",
    );
    assert!(!dhcp.is_empty());
    assert!(
        dhcp.iter()
            .all(|r| r["duration_s"].as_f64().unwrap() < 60.0),
        "{dhcp:?}"
    );
}
