//! What an analyst meets first: choosing flows (sort, time windows, grep,
//! summary columns in --where), messages for paths that cannot be indexed,
//! an index with nothing in it yet, and output that streams.
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::*;

/// The flow ids `pcapidx flows ARGS` lists, in order.
fn listed(db: &Path, args: &[&str]) -> Vec<u64> {
    let mut a = vec!["flows", "--format", "jsonl"];
    a.extend_from_slice(args);
    pcapidx_ok(db, &a, 0)
        .lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["flow_id"]
                .as_u64()
                .unwrap()
        })
        .collect()
}

/// The flow ids an SQL query returns, in order.
fn ids(db: &Path, query: &str) -> Vec<u64> {
    sql(db, query)
        .iter()
        .map(|r| r["flow_id"].as_u64().unwrap())
        .collect()
}

fn stderr_of(db: &Path, args: &[&str], code: i32) -> String {
    let out = pcapidx(db, args);
    assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn sort_window_grep_and_summary_columns_choose_flows_as_sql_does() {
    let db = indexed("choose", "rotated");
    let top = listed(&db, &["--sort", "bytes", "--desc", "--limit", "5"]);
    assert_eq!(
        top,
        ids(
            &db,
            "SELECT flow_id FROM flows ORDER BY bytes_fwd + bytes_rev DESC, flow_id DESC LIMIT 5"
        )
    );
    assert_eq!(top.len(), 5);
    // The table sorts the same way.
    let table = pcapidx_ok(
        &db,
        &["flows", "--sort", "bytes", "--desc", "--limit", "5"],
        0,
    );
    let table_ids: Vec<u64> = table
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap().parse().unwrap())
        .collect();
    assert_eq!(table_ids, top);
    let err = stderr_of(&db, &["flows", "--sort", "nope"], 2);
    assert!(err.contains("not a flows column"), "{err}");

    // --where sees flow_summary's columns, and ts_ns turns ISO into ns.
    let long = listed(&db, &["--where", "duration_s > 1 AND protocol = 'tcp'"]);
    assert_eq!(
        long,
        ids(
            &db,
            "SELECT flow_id FROM flow_summary WHERE duration_s > 1 AND protocol = 'tcp' ORDER BY flow_id"
        )
    );
    assert!(!long.is_empty());
    let after = listed(
        &db,
        &["--where", "first_ts_ns >= ts_ns('2024-03-01T01:00:30Z')"],
    );
    assert_eq!(
        after,
        ids(
            &db,
            "SELECT flow_id FROM flow_summary WHERE start_time >= '2024-03-01T01:00:30' ORDER BY flow_id"
        )
    );
    assert!(!after.is_empty());

    // A window keeps the flows with a packet inside it, in any zone.
    let (since, until) = ("2024-03-01T01:00:10Z", "2024-03-01T03:00:20+02:00");
    let window = listed(&db, &["--since", since, "--until", until]);
    let want = ids(
        &db,
        "SELECT flow_id FROM flows WHERE last_ts_ns >= ts_ns('2024-03-01T01:00:10Z')
         AND first_ts_ns <= ts_ns('2024-03-01T01:00:20Z') ORDER BY flow_id",
    );
    assert_eq!(window, want);
    assert!(!want.is_empty() && want.len() < 38);
    // Relative: before the index's last packet (01:01:37.143).
    assert_eq!(
        listed(&db, &["--since", "-10s"]),
        ids(
            &db,
            "SELECT flow_id FROM flows WHERE last_ts_ns >= (SELECT max(last_ts_ns) FROM files) - 10000000000 ORDER BY flow_id"
        )
    );
    let err = stderr_of(&db, &["flows", "--since", "yesterday"], 2);
    assert!(err.contains("is not a time"), "{err}");

    // --grep: every one must match; -i ignores case; the text is documented.
    let dns = listed(&db, &["--grep", "dns"]);
    assert!(!dns.is_empty());
    assert_eq!(listed(&db, &["--grep", "DNS", "-i"]), dns);
    assert_eq!(
        stderr_of(&db, &["flows", "--grep", "DNS"], 1).trim(),
        "pcapidx: no flow matches"
    );
    let v6_dns = listed(&db, &["--grep", "dns", "--grep", r"\[2001:"]);
    assert_eq!(
        v6_dns,
        ids(
            &db,
            "SELECT flow_id FROM flows WHERE service = 'dns' AND src_ip LIKE '2001:%' ORDER BY flow_id"
        )
    );
    assert!(!v6_dns.is_empty() && v6_dns.len() < dns.len());
    assert_eq!(
        listed(&db, &["--grep", ":22 "]),
        ids(
            &db,
            "SELECT flow_id FROM flows WHERE dst_port = 22 OR src_port = 22"
        )
    );
    let help = pcapidx_ok(&db, &["flows", "--help"], 0);
    assert!(help.contains("PROTOCOL SRC DST SERVICE"), "{help}");

    // --limit 0 asks for nothing: no rows, success.
    assert_eq!(pcapidx_ok(&db, &["flows", "--limit", "0"], 0), "");
}

#[test]
fn carve_takes_comma_lists_and_a_time_window_of_packets() {
    let db = indexed("carve-window", "rotated");
    let dir = db.parent().unwrap();
    let carve = |args: &[&str], name: &str| -> Vec<u8> {
        let out = dir.join(name);
        let mut a = vec!["carve", "-q", "-o", out.to_str().unwrap()];
        a.extend_from_slice(args);
        pcapidx_ok(&db, &a, 0);
        std::fs::read(out).unwrap()
    };
    assert_eq!(
        carve(&["--flow-id", "1,4"], "a.pcap"),
        carve(&["--flow-id", "1", "--flow-id", "4"], "b.pcap")
    );
    // Flow 1 (ssh) lasts 97 s: a 10 s window keeps its packets in the window.
    let (since, until) = ("2024-03-01T01:00:20Z", "2024-03-01T01:00:30Z");
    let cut = carve(
        &["--flow-id", "1", "--since", since, "--until", until],
        "cut.pcap",
    );
    let packets = sql(
        &db,
        "SELECT count(*) AS n FROM packets WHERE flow_id = 1
         AND ts_ns BETWEEN ts_ns('2024-03-01T01:00:20Z') AND ts_ns('2024-03-01T01:00:30Z')",
    )[0]["n"]
        .as_u64()
        .unwrap();
    assert!(packets > 0);
    let path = dir.join("cut.pcap");
    let mut r = pcapidx_capture::CaptureReader::open(&path).unwrap();
    let mut n = 0;
    while let Some(c) = r.next_chunk().unwrap() {
        n += c.records.len() as u64;
    }
    assert_eq!(n, packets);
    assert!(cut.len() < carve(&["--flow-id", "1"], "whole.pcap").len());
    // A window that holds none of the flow's packets writes nothing.
    let none = dir.join("none.pcap");
    let err = stderr_of(
        &db,
        &[
            "carve",
            "--flow-id",
            "1",
            "--since",
            "2030-01-01",
            "-o",
            none.to_str().unwrap(),
        ],
        1,
    );
    assert!(err.contains("nothing written"), "{err}");
    assert!(!none.exists());
    // A window alone chooses the flows too.
    carve(&["--since", since, "--until", until], "window.pcap");
}

#[test]
fn paths_that_cannot_be_indexed_are_named_and_the_rest_is_indexed() {
    let dir = tmpdir("bad-paths");
    let caps = dir.join("caps");
    std::fs::create_dir_all(&caps).unwrap();
    let good = &captures_in(&testdata("rotated"))[0];
    std::fs::copy(good, caps.join("good.pcap")).unwrap();
    std::os::unix::fs::symlink("gone.pcap", caps.join("dangling.pcap")).unwrap();
    let db = dir.join("i.db");
    let missing = dir.join("nonexistent.pcap");
    let out = pcapidx(
        &db,
        &["index", caps.to_str().unwrap(), missing.to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("nonexistent.pcap: No such file"), "{err}");
    assert_eq!(
        statuses(&db),
        [
            ("dangling.pcap".into(), "error".into()),
            ("good.pcap".into(), "ok".into())
        ]
    );
    let error = &sql(
        &db,
        "SELECT error FROM files WHERE path LIKE '%dangling.pcap'",
    )[0]["error"];
    assert!(cell(error).contains("broken link to gone.pcap"), "{error}");
    // `files --status` lists one kind; the table reads as times, and --db
    // may follow the command.
    let errors = bin()
        .args(["files", "--status", "error", "--format", "csv", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&errors.stdout);
    assert_eq!(errors.lines().count(), 2, "{errors}");
    assert!(errors.contains("dangling.pcap") && !errors.contains("good.pcap"));
    let table = pcapidx_ok(&db, &["files"], 0);
    assert!(
        table.starts_with("Id  Path") && table.contains("First (UTC)"),
        "{table}"
    );
    assert!(table.contains(" 2024-03-01 01:00:00.123 "), "{table}");
    let err = stderr_of(&db, &["files", "--status", "fine"], 2);
    assert!(err.contains("not a status"), "{err}");

    // A folder of logs beside the captures: a few names and a count.
    let logs = dir.join("logs");
    std::fs::create_dir_all(&logs).unwrap();
    for i in 0..50 {
        std::fs::write(logs.join(format!("app-{i:02}.log")), "a log line\n").unwrap();
    }
    let out = pcapidx_ok(&dir.join("logs.db"), &["index", logs.to_str().unwrap()], 0);
    let line = out
        .lines()
        .find(|l| l.starts_with("not captures:"))
        .unwrap();
    assert!(line.contains("app-02.log, and 47 more"), "{line}");
    assert!(
        line.contains("pcapidx files --status not-a-capture"),
        "{line}"
    );
    assert!(!line.contains("app-03.log"), "{line}");

    // Standard input has no offsets to store.
    let mut child = bin()
        .arg("--db")
        .arg(dir.join("stdin.db"))
        .args(["index", "-"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    drop(child.stdin.take());
    let mut err = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut err)
        .unwrap();
    assert_eq!(child.wait().unwrap().code(), Some(1));
    assert!(
        err.contains("standard input") && err.contains("save a stream first"),
        "{err}"
    );

    // Usage errors say what is wrong.
    let err = stderr_of(&db, &["index", "-j", "0", caps.to_str().unwrap()], 2);
    assert!(err.contains("give 1 or more cores"), "{err}");
    let help = pcapidx_ok(&db, &["generate", "--help"], 0);
    assert!(!help.contains("--db"), "{help}");
}

/// An index whose files are all still being indexed says so, rather than
/// printing an empty table; one with no files says how to fill it.
#[test]
fn an_index_with_nothing_in_it_yet_says_why() {
    let db = indexed("nothing-yet", "rotated");
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(
        "DELETE FROM packet_chunks; DELETE FROM flow_data;
         UPDATE files SET status = 'indexing' WHERE format IS NOT NULL;",
    )
    .unwrap();
    drop(conn);
    let out = pcapidx(&db, &["flows"]);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, b"");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("holds nothing yet: 9 files are being indexed"),
        "{err}"
    );
    let summary: Value =
        serde_json::from_str(&pcapidx_ok(&db, &["summary", "--format", "json"], 0)).unwrap();
    assert_eq!(summary["overview"]["files_in_progress"], 9);
    assert_eq!(summary["overview"]["files_with_errors"], 0);

    let empty = tmpdir("nothing-at-all");
    let db = empty.join("i.db");
    pcapidx_ok(&db, &["index", empty.to_str().unwrap(), "-q"], 0);
    let err = stderr_of(&db, &["flows"], 1);
    assert!(err.contains("no files yet"), "{err}");
}

/// Table output prints its first rows before the query ends and holds at
/// most its sample, whatever the result's size.
#[test]
fn table_output_streams_in_flat_memory() {
    let db = indexed("stream", "fragments");
    let rows = 3_000_000;
    let query = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT {rows})
         SELECT i, 'row number ' || i AS label FROM n"
    );
    let started = Instant::now();
    let mut child = bin()
        .arg("--db")
        .arg(&db)
        .args(["sql", &query])
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    let mut out = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    out.read_line(&mut first).unwrap();
    let first_after = started.elapsed();
    assert!(first.starts_with('i'), "{first}");
    // Read the rest, watching the process's peak memory as it goes.
    let mut peak_kb = 0u64;
    let mut lines = 1u64;
    let mut line = String::new();
    loop {
        line.clear();
        if out.read_line(&mut line).unwrap() == 0 {
            break;
        }
        lines += 1;
        if lines.is_multiple_of(100_000) {
            peak_kb = peak_kb.max(vm_hwm_kb(pid).unwrap_or(0));
        }
    }
    assert!(child.wait().unwrap().success());
    let total = started.elapsed();
    assert_eq!(lines, rows + 1);
    assert!(peak_kb > 0, "no memory reading");
    assert!(peak_kb < 150 * 1024, "peak {peak_kb} KB");
    assert!(
        first_after < total / 4 || first_after < Duration::from_millis(100),
        "first row after {first_after:?} of {total:?}"
    );
}

/// The high-water mark of a process's resident memory, in KB.
fn vm_hwm_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// `summary --since/--until` counts the flows `flows` lists for the same
/// window, and names the window; without one it counts every flow.
#[test]
fn summary_window_counts_the_flows_of_the_window() {
    let db = indexed("summary-window", "encap-qinq");
    let window = [
        "--since",
        "2024-03-02T02:00:05",
        "--until",
        "2024-03-02T02:00:08",
    ];
    let mut args = vec!["flows", "--format", "jsonl"];
    args.extend_from_slice(&window);
    let listed = pcapidx_ok(&db, &args, 0).lines().count();
    let mut args = vec!["summary", "--format", "json"];
    args.extend_from_slice(&window);
    let v: serde_json::Value = serde_json::from_str(&pcapidx_ok(&db, &args, 0)).unwrap();
    let o = &v["overview"];
    assert_eq!(o["flows"].as_u64().unwrap() as usize, listed);
    assert_eq!(o["window_since"], "2024-03-02T02:00:05.000000000Z");
    let by_protocol: u64 = v["protocols"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["flows"].as_u64().unwrap())
        .sum();
    assert_eq!(by_protocol as usize, listed);
    let all: serde_json::Value =
        serde_json::from_str(&pcapidx_ok(&db, &["summary", "--format", "json"], 0)).unwrap();
    let every = sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"]
        .as_u64()
        .unwrap();
    assert_eq!(all["overview"]["flows"].as_u64(), Some(every));
    assert!(all["overview"]["window_since"].is_null());
    assert!(listed > 0 && (listed as u64) < every);
}
