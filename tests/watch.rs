//! `pcapidx index --watch` against a writer that appends records at a
//! steady rate (cutting records across writes, as a buffered writer does),
//! rotates, overwrites a ring file, copies, moves, deletes and restores
//! files. What it indexes equals a one-shot index of the final files, and
//! Ctrl-C ends it with everything committed and exit status 0.
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A running `index --watch`, stopped (killed) when dropped.
struct Watching(Option<Child>);

impl Watching {
    fn start(db: &Path, paths: &[&Path]) -> Self {
        Self::start_with(db, paths, &[])
    }

    fn start_with(db: &Path, paths: &[&Path], extra: &[&str]) -> Self {
        let mut c = bin();
        c.arg("--db").arg(db).args([
            "index",
            "--watch",
            "--commit-interval",
            "200ms",
            "--rescan-interval",
            "3s",
        ]);
        c.args(extra).args(paths);
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        Watching(Some(c.spawn().expect("start pcapidx index --watch")))
    }

    /// Ctrl-C; returns (exit code, stdout, stderr).
    fn interrupt(mut self) -> (Option<i32>, String, String) {
        let child = self.0.take().unwrap();
        signal(&child, "INT");
        let out = child.wait_with_output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        if let Some(mut c) = self.0.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn signal(child: &Child, name: &str) {
    let ok = Command::new("kill")
        .args([format!("-{name}"), child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok, "kill -{name}");
}

/// Waits (up to 20 s) until `query`'s first row's `n` is `want`.
fn wait_for(db: &Path, what: &str, query: &str, want: i64) {
    let start = Instant::now();
    let mut last = None;
    while start.elapsed() < Duration::from_secs(20) {
        if db.exists() {
            let out = pcapidx(db, &["sql", query, "--format", "jsonl"]);
            if out.status.success() {
                let text = String::from_utf8_lossy(&out.stdout).into_owned();
                let n = text
                    .lines()
                    .next()
                    .and_then(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                    .and_then(|v| v["n"].as_i64());
                if n == Some(want) {
                    return;
                }
                last = Some(text);
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let files = pcapidx(db, &["sql", "SELECT * FROM files", "--format", "jsonl"]);
    panic!(
        "waiting for {what}: `{query}` gave {last:?}, not {want}; files:\n{}",
        String::from_utf8_lossy(&files.stdout)
    );
}

/// Writes `src` to `dst` the way a capture writer does: in pieces of
/// `piece` bytes (so records are cut across writes) at a steady pace.
fn write_slowly(src: &Path, dst: &Path, piece: usize, pause: Duration) {
    let bytes = std::fs::read(src).unwrap();
    let mut f = std::fs::File::create(dst).unwrap();
    for part in bytes.chunks(piece) {
        f.write_all(part).unwrap();
        f.flush().unwrap();
        std::thread::sleep(pause);
    }
}

/// Every packet of the content an index holds now (files `ok`), by what it
/// is rather than where: (time, lengths, its flow's addresses and ports),
/// sorted. Indexes of the same bytes at other paths agree on it.
fn content(db: &Path) -> Vec<String> {
    let rows = sql(
        db,
        "SELECT p.ts_ns, p.caplen, p.orig_len, f.proto, f.src_ip, f.src_port, f.dst_ip, f.dst_port
         FROM packets p JOIN flows f USING (flow_id) JOIN files USING (file_id)
         WHERE files.status = 'ok'",
    );
    let mut v: Vec<String> = rows
        .iter()
        .map(|r| r.values().map(cell).collect::<Vec<_>>().join(" "))
        .collect();
    v.sort();
    v
}

/// Captures with no time overlap, in time order (as one sensor writes
/// them): the bundled rotated pcap set, the pcap/pcapng set, and where
/// present three real third-party captures from Arkime's test set.
fn sensor_sources() -> Vec<PathBuf> {
    let mut v = captures_in(&testdata("rotated"));
    v.extend(captures_in(&testdata("rotated-mixed")));
    if let Some(c) = corpus() {
        v.extend(
            captures_in(&c.join("multi/arkime-synthetic"))
                .into_iter()
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    ["_00003_", "_00004_", "_00005_"]
                        .iter()
                        .any(|k| n.contains(k))
                }),
        );
    } else {
        skip("../shared/corpus is absent: the watch follows the bundled captures only");
    }
    v
}

#[test]
fn a_watch_follows_a_rotating_writer_and_equals_a_one_shot_index() {
    let dir = tmpdir("watch-rotating");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let db = dir.join("live.db");
    let watching = Watching::start(&db, &[&spool]);
    let sources = sensor_sources();
    let mut total = 0;
    for (i, src) in sources.iter().enumerate() {
        let ext = src.extension().unwrap().to_string_lossy();
        let dst = spool.join(format!("cap-{i:03}.{ext}"));
        write_slowly(src, &dst, 1000, Duration::from_millis(8));
        total += std::fs::metadata(&dst).unwrap().len() as i64;
    }
    // Everything written is indexed, as the writer left it, while it runs.
    wait_for(
        &db,
        "every byte indexed",
        "SELECT sum(indexed_bytes) AS n FROM files WHERE status = 'ok'",
        total,
    );
    let (code, stdout, stderr) = watching.interrupt();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one closing line: {stdout}");
    assert!(
        stdout.contains("committed") && stdout.contains("--watch` on the same paths continues"),
        "{stdout}"
    );
    assert!(
        !stderr.contains("partial") && !stderr.contains("truncated"),
        "records cut across writes are not damage: {stderr}"
    );
    let once = dir.join("once.db");
    pcapidx_ok(&once, &["index", "-q", spool.to_str().unwrap()], 0);
    assert_eq!(flow_summaries(&db), flow_summaries(&once));
    let positions = |db: &Path| {
        sql(
            db,
            "SELECT flow_id, path, offset, ts_ns, caplen FROM packets JOIN files USING (file_id)
             ORDER BY path, offset",
        )
    };
    assert_eq!(positions(&db), positions(&once));
    let files = |db: &Path| {
        sql(
            db,
            "SELECT path, status, packets, flow_packets, indexed_bytes, size FROM files ORDER BY path",
        )
    };
    assert_eq!(files(&db), files(&once));
    assert_kept_tables_agree(&db);
    assert_eq!(
        sql(&db, "SELECT count(*) AS n FROM files")[0]["n"],
        sources.len() as i64
    );
}

#[test]
fn a_watch_keeps_the_index_true_as_files_are_overwritten_copied_moved_and_deleted() {
    let dir = tmpdir("watch-lifecycle");
    let spool = dir.join("spool");
    for d in ["copies", "old"] {
        std::fs::create_dir_all(spool.join(d)).unwrap();
    }
    let db = dir.join("live.db");
    let src = captures_in(&testdata("rotated"));
    let watching = Watching::start(&db, &[&spool]);
    let ring = |i: usize| spool.join(format!("ring{i}.pcap"));
    for (i, s) in src.iter().take(3).enumerate() {
        write_slowly(s, &ring(i), 2000, Duration::from_millis(5));
    }
    // Every byte on disk indexed (a row whose size equals its indexed bytes
    // may be a snapshot taken while the writer paused at a record's end).
    let written: u64 = (0..3)
        .map(|i| std::fs::metadata(ring(i)).unwrap().len())
        .sum();
    wait_for(
        &db,
        "three ring files",
        "SELECT sum(indexed_bytes) AS n FROM files WHERE status = 'ok'",
        written as i64,
    );
    let ring2_id = sql(
        &db,
        &format!(
            "SELECT file_id FROM files WHERE path = '{}'",
            ring(2).display()
        ),
    )[0]["file_id"]
        .clone();
    // A copy into a second folder: a duplicate, not indexed again.
    std::fs::copy(ring(2), spool.join("copies/dup.pcap")).unwrap();
    wait_for(
        &db,
        "the copy recorded as a duplicate",
        &format!(
            "SELECT count(*) AS n FROM files WHERE status = 'duplicate' AND duplicate_of = {ring2_id}"
        ),
        1,
    );
    // Moved: the same row, at its new path.
    std::fs::rename(ring(2), spool.join("old/ring2.pcap")).unwrap();
    wait_for(
        &db,
        "the moved file's row at its new path",
        &format!(
            "SELECT count(*) AS n FROM files WHERE file_id = {ring2_id} AND status = 'ok'
             AND path = '{}'",
            spool.join("old/ring2.pcap").display()
        ),
        1,
    );
    // Deleted: missing, its flows kept.
    let flows_before = sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"].clone();
    std::fs::remove_file(ring(1)).unwrap();
    wait_for(
        &db,
        "the deleted file missing",
        &format!(
            "SELECT count(*) AS n FROM files WHERE status = 'missing' AND path = '{}'",
            ring(1).display()
        ),
        1,
    );
    assert_eq!(
        sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"],
        flows_before
    );
    // Cut short, then restored: an error while cut, `ok` again after.
    let moved = spool.join("old/ring2.pcap");
    let kept = std::fs::read(&moved).unwrap();
    std::fs::write(&moved, &kept[..1000]).unwrap();
    let cut =
        format!("SELECT count(*) AS n FROM files WHERE file_id = {ring2_id} AND status = 'error'");
    wait_for(&db, "the cut file an error", &cut, 1);
    std::fs::write(&moved, &kept).unwrap();
    wait_for(
        &db,
        "the restored file ok again",
        &format!(
            "SELECT count(*) AS n FROM files WHERE file_id = {ring2_id} AND status = 'ok'
             AND error IS NULL"
        ),
        1,
    );
    // The ring comes round: its oldest file is rewritten with new traffic.
    write_slowly(&src[3], &ring(0), 2000, Duration::from_millis(5));
    let size = std::fs::metadata(ring(0)).unwrap().len();
    wait_for(
        &db,
        "the ring file's new content indexed",
        &format!(
            "SELECT count(*) AS n FROM files WHERE path = '{}' AND status = 'ok'
             AND indexed_bytes = {size}",
            ring(0).display()
        ),
        1,
    );
    assert_eq!(
        sql(
            &db,
            &format!(
                "SELECT count(*) AS n FROM files WHERE path = '{}' AND status = 'overwritten'",
                ring(0).display()
            )
        )[0]["n"],
        1
    );
    let (code, stdout, stderr) = watching.interrupt();
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    for what in [
        "duplicate of",
        "moved from",
        "missing",
        "truncated",
        "new content",
    ] {
        assert!(stderr.contains(what), "the watch said {what:?}: {stderr}");
    }
    // The content still there is indexed exactly as a one-shot index of
    // the final files indexes it: once each, in the same flows.
    let once = dir.join("once.db");
    pcapidx_ok(&once, &["index", "-q", spool.to_str().unwrap()], 0);
    let (live, fresh) = (content(&db), content(&once));
    // ring0's new content and ring2's (once, though at two paths).
    assert_eq!(fresh.len(), 80);
    assert_eq!(live, fresh);
    assert_kept_tables_agree(&db);
}

/// Ctrl-C during a one-shot run: exit status 130, what was committed is
/// said, and running it again continues to the same index as one run.
#[test]
fn an_interrupted_run_says_what_it_committed_and_continues() {
    let dir = tmpdir("watch-interrupt");
    let data = dir.join("data");
    pcapidx_ok(
        &dir.join("unused.db"),
        &[
            "generate",
            "--profile",
            "bench",
            "--size",
            "120M",
            "--file-size",
            "30M",
            "-o",
            data.to_str().unwrap(),
        ],
        0,
    );
    let db = dir.join("i.db");
    let child = bin()
        .arg("--db")
        .arg(&db)
        .args(["index", "--jobs", "1", "--checkpoint-packets", "5000"])
        .arg(&data)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let child = Watching(Some(child));
    wait_for(
        &db,
        "a first commit",
        "SELECT count(*) > 0 AS n FROM files WHERE packets > 0",
        1,
    );
    let (code, _, stderr) = child.interrupt();
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("interrupted") && stderr.contains("again to continue"),
        "{stderr}"
    );
    let committed = sql(&db, "SELECT sum(packets) AS n FROM files")[0]["n"]
        .as_i64()
        .unwrap();
    assert!(committed > 0);
    let out = pcapidx_ok(&db, &["index", data.to_str().unwrap()], 0);
    assert!(out.contains("continued"), "{out}");
    let once = dir.join("once.db");
    pcapidx_ok(&once, &["index", "-q", data.to_str().unwrap()], 0);
    assert_eq!(flow_summaries(&db), flow_summaries(&once));
}

/// A sensor that runs for months: `--retain` forgets, as the watch goes,
/// the files whose last packet is older than the age before the newest.
#[test]
fn a_watch_with_retain_forgets_old_files_as_new_ones_come() {
    let dir = tmpdir("watch-retain");
    let spool = dir.join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    let db = dir.join("live.db");
    let watching = Watching::start_with(&db, &[&spool], &["--retain", "30s"]);
    for (i, src) in captures_in(&testdata("rotated")).iter().enumerate() {
        write_slowly(
            src,
            &spool.join(format!("cap-{i}.pcap")),
            4000,
            Duration::from_millis(2),
        );
    }
    // The rotated set spans 97 s: all but its last two files end more
    // than 30 s before its last packet.
    wait_for(
        &db,
        "old files forgotten",
        "SELECT count(*) AS n FROM files WHERE status = 'forgotten'",
        7,
    );
    wait_for(
        &db,
        "no packet of a forgotten file left",
        "SELECT count(*) AS n FROM packets JOIN files USING (file_id) WHERE status = 'forgotten'",
        0,
    );
    let (code, _, stderr) = watching.interrupt();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("--retain: forgot"), "{stderr}");
    assert_kept_tables_agree(&db);
}
