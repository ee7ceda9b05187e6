//! Bad input, crashes and concurrent use: nothing panics, nothing already
//! indexed is lost, and the index never ends up different from a clean run.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use crate::common::*;

/// Every file of the malformed corpus gets the status it deserves, one clear
/// message naming it, and the rest of the folder is indexed.
#[test]
fn malformed_files_are_named_and_the_rest_is_indexed() {
    let Some(corpus) = corpus() else { return };
    let dir = corpus.join("malformed");
    let db = tmpdir("malformed").join("i.db");
    let out = pcapidx(&db, &["index", dir.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "some capture files are damaged: exit 1"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    // Each file counted once: the groups add up to the 16 files.
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains(
            "files:   5 indexed, 0 continued, 0 unchanged, 4 partial, 4 failed, 0 skipped, 3 not captures"
        ),
        "{stdout}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&pcapidx_ok(&db, &["summary", "--format", "json"], 0)).unwrap();
    let o = &summary["overview"];
    assert_eq!(
        [
            &o["files"],
            &o["files_ok"],
            &o["files_with_errors"],
            &o["files_in_progress"],
            &o["not_captures"]
        ],
        [16, 5, 8, 0, 3]
    );
    // (file, status, packets kept, what the message says). Cut-short files keep
    // the records capinfos counts (http-mime-truncated 2696, truncated_dns_2 1).
    let expected: [(&str, &str, u64, &str); 16] = [
        ("caplen-gt-len-aoe-oobr-1.pcap", "ok", 1, ""),
        (
            "err-eof-partial-block.bin",
            "not-a-capture",
            0,
            "no pcap or pcapng magic",
        ),
        // Wireshark counts 2 here by guessing the 1999 "modified" layout; the
        // file declares the standard one, under which the second record is the damage.
        (
            "fuzz-bogus-reclen.pcap",
            "partial",
            1,
            "at byte 228: record claims 1409179648 captured bytes",
        ),
        (
            "git-lfs-pointer-named.pcap",
            "not-a-capture",
            0,
            "no pcap or pcapng magic",
        ),
        ("gzip-compressed.pcap.gz", "error", 0, "gzip-compressed"),
        ("header-only-empty.pcap", "ok", 0, ""),
        // An unknown link type: the record is kept, counted as undecodable.
        ("hoobr_juniper3-linktype-fcs-bits.pcap", "ok", 1, ""),
        (
            "http-mime-truncated-2.7MB.pcap",
            "partial",
            2696,
            "at byte 2715459: file ends inside a record",
        ),
        (
            "pcap-invalid-version-1.pcap",
            "error",
            0,
            "pcap version 1.4 is not 2.x",
        ),
        (
            "pcapng-invalid-vers-1.pcapng",
            "error",
            0,
            "pcapng version 0.1 is not 1.x",
        ),
        (
            "shb-option-too-long.pcapng",
            "error",
            0,
            "damaged header at byte 0",
        ),
        (
            "smtp-to-comma-garbage-tail.pcap",
            "partial",
            18,
            "at byte 3695: record claims 3925868813 captured bytes",
        ),
        ("timestamp_invalid_micro.pcap", "ok", 3, ""),
        ("trunc-hdr-caplen8.pcap", "ok", 1, ""),
        (
            "truncated_dns_2-eof-mid-record.pcap",
            "partial",
            1,
            "at byte 240: file ends inside a record",
        ),
        ("zero-length.pcap", "not-a-capture", 0, "empty file"),
    ];
    let rows = sql(
        &db,
        "SELECT path, status, packets, flow_packets + filtered_packets + undecodable_packets AS counted, error FROM files",
    );
    let by_name: BTreeMap<String, _> = rows.iter().map(|r| (file_name(&r["path"]), r)).collect();
    assert_eq!(by_name.len(), expected.len());
    for (name, status, packets, says) in expected {
        let r = by_name[name];
        assert_eq!(
            (
                r["status"].as_str().unwrap(),
                r["packets"].as_u64().unwrap()
            ),
            (status, packets),
            "{name}"
        );
        assert_eq!(
            r["counted"], r["packets"],
            "{name}: every record accounted for"
        );
        assert!(
            cell(&r["error"]).contains(says),
            "{name}: {}",
            cell(&r["error"])
        );
        // Failures are named once on stderr; non-captures only in the summary.
        if matches!(status, "error" | "partial") {
            assert_eq!(stderr.matches(name).count(), 1, "{name} in\n{stderr}");
        }
    }
}

#[test]
fn larger_files_are_skipped_when_asked() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/rotated");
    let db = tmpdir("maxsize").join("i.db");
    let out = pcapidx(
        &db,
        &["index", dir.to_str().unwrap(), "--max-file-size", "12K"],
    );
    assert_eq!(out.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().find(|l| l.starts_with("files:")).unwrap();
    assert!(
        line.contains(" 0 failed, ") && !line.contains(" 0 skipped"),
        "{line}"
    );
    let skipped = sql(
        &db,
        "SELECT count(*) AS n FROM files WHERE status = 'skipped' AND error LIKE '%--max-file-size%'",
    );
    let ok = sql(
        &db,
        "SELECT count(*) AS n FROM files WHERE status = 'ok' AND size <= 12288",
    );
    assert!(skipped[0]["n"].as_u64().unwrap() > 0 && ok[0]["n"].as_u64().unwrap() > 0);
    // Without the limit, the next run indexes them.
    pcapidx_ok(&db, &["index", dir.to_str().unwrap(), "-q"], 0);
    assert_eq!(
        sql(
            &db,
            "SELECT count(*) AS n FROM files WHERE status NOT IN ('ok', 'not-a-capture')"
        )[0]["n"]
            .as_u64(),
        Some(0)
    );
}

/// A generated rotated run of about `mb` MB, shared by the tests that need volume.
fn bench_run(name: &str, mb: u64) -> PathBuf {
    let dir = tmpdir(name).join("caps");
    let cfg = pcapidx_gen::bench::Config {
        total_bytes: mb << 20,
        file_bytes: 4 << 20,
        mean_frame: None,
        seed: 3,
    };
    pcapidx_gen::bench::write(&dir, &cfg).unwrap();
    dir
}

fn content(db: &Path) -> (Vec<String>, usize, String, Vec<String>) {
    let positions = sql(
        db,
        "SELECT count(*) AS n, sum(offset + ts_ns % 1000003) AS h FROM packets",
    );
    let h = format!("{}/{}", cell(&positions[0]["n"]), cell(&positions[0]["h"]));
    let files = sql(db, "SELECT count(*) AS n FROM files WHERE status = 'ok'")[0]["n"]
        .as_u64()
        .unwrap() as usize;
    (flow_summaries(db), files, h, flow_payloads(db))
}

#[test]
fn killed_at_any_moment_then_run_again_gives_the_same_index() {
    let caps = bench_run("kill", 160);
    let caps_s = caps.to_str().unwrap();
    let reference = caps.with_file_name("ref.db");
    let args = ["index", caps_s, "-q", "--checkpoint-packets", "3000"];
    let t = Instant::now();
    pcapidx_ok(&reference, &args, 0);
    let full = t.elapsed();
    let want = content(&reference);
    let db = caps.with_file_name("killed.db");
    // Kill each run after a fraction of a full run's time; each restart
    // continues from the last commit, so eventually one completes.
    let mut kills = 0;
    let mut committed = false;
    for i in 0..40 {
        let mut child = bin()
            .arg("--db")
            .arg(&db)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Vary the moment: early (planning, first commit) to late.
        std::thread::sleep(full.mul_f64([0.02, 0.12, 0.25][i % 3]));
        let running = child.try_wait().unwrap().is_none();
        if running {
            child.kill().unwrap(); // SIGKILL
            kills += 1;
        }
        child.wait().unwrap();
        // Whatever the moment, the index opens and reads; only a kill before
        // the first commit leaves nothing to read, and readers say so.
        let out = pcapidx(&db, &["sql", "SELECT count(*) FROM flows"]);
        let err = String::from_utf8_lossy(&out.stderr);
        if out.status.success() {
            committed = true;
        } else {
            assert!(!committed && err.contains("holds no index yet"), "{err}");
        }
        if !running {
            break;
        }
    }
    assert!(kills >= 3, "only {kills} runs were still going when killed");
    pcapidx_ok(&db, &args, 0);
    assert_eq!(content(&db), want);
    let check = sql(&db, "PRAGMA integrity_check");
    assert_eq!(cell(&check[0]["integrity_check"]), "ok");
    // The run that completed built the indexes the killed ones had not.
    let indexes = |db: &Path| {
        let q = "SELECT group_concat(name) AS n FROM
                 (SELECT name FROM sqlite_schema WHERE type = 'index' ORDER BY name)";
        cell(&sql(db, q)[0]["n"])
    };
    let built = indexes(&db);
    assert_eq!(built, indexes(&reference));
    assert!(built.contains("flow_data_src_key"), "{built}");
}

#[test]
fn a_second_index_is_refused_and_readers_work_while_one_runs() {
    let caps = bench_run("concurrent", 160);
    let db = caps.with_file_name("i.db");
    pcapidx_ok(
        &db,
        &[
            "index",
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("testdata/rotated")
                .to_str()
                .unwrap(),
            "-q",
        ],
        0,
    );
    // While the lock is held, another index refuses at once, clearly.
    let lock = std::fs::OpenOptions::new()
        .write(true)
        .open(db.with_extension("db.lock"))
        .unwrap();
    lock.lock().unwrap();
    let out = pcapidx(&db, &["index", caps.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("another `pcapidx index` is running"),
        "{out:?}"
    );
    lock.unlock().unwrap();
    // Readers keep working while an index runs (WAL), seeing committed data.
    let mut child = bin()
        .arg("--db")
        .arg(&db)
        .args([
            "index",
            caps.to_str().unwrap(),
            "-q",
            "--checkpoint-packets",
            "3000",
        ])
        .spawn()
        .unwrap();
    let (mut during, mut seen) = (0, Vec::new());
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
        let n = sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"]
            .as_u64()
            .unwrap();
        pcapidx_ok(&db, &["flows", "--limit", "1", "--format", "csv"], 0);
        let out = db.with_file_name("during.pcap");
        pcapidx_ok(
            &db,
            &["carve", "--flow-id", "1", "-o", out.to_str().unwrap(), "-q"],
            0,
        );
        seen.push(n);
        during += 1;
    }
    assert!(child.wait().unwrap().success());
    assert!(
        during >= 2,
        "the index finished before readers could overlap it"
    );
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "readers see a growing index: {seen:?}"
    );
}
