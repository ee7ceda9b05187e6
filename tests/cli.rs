//! The command line's promises: incremental runs, filters, output formats,
//! exit codes, read-only SQL, schema versions.
use std::path::Path;
use std::process::Command;

use crate::common::*;

/// Everything that identifies the index's content: flows and every position.
fn content(db: &Path) -> (Vec<String>, Vec<String>, Vec<String>) {
    let positions = sql(
        db,
        "SELECT f.path, p.offset, p.ts_ns, p.caplen, p.orig_len, p.direction, fl.src_ip, fl.dst_ip, fl.first_ts_ns
         FROM packets p JOIN files f USING (file_id) JOIN flows fl USING (flow_id) ORDER BY f.path, p.offset",
    )
    .iter()
    .map(|r| r.values().map(cell).collect::<Vec<_>>().join(" "))
    .collect();
    (flow_summaries(db), positions, flow_payloads(db))
}

#[test]
fn a_second_run_changes_nothing() {
    let db = tmpdir("rerun").join("i.db");
    let dir = testdata("rotated");
    pcapidx_ok(&db, &["index", dir.to_str().unwrap(), "-q"], 0);
    let before = content(&db);
    let files_before = sql(&db, "SELECT * FROM files ORDER BY file_id");
    let out = pcapidx_ok(&db, &["index", dir.to_str().unwrap()], 0);
    assert!(
        out.contains("0 indexed") && out.contains("10 unchanged"),
        "{out}"
    );
    // Nothing read, so no share of it to give.
    assert!(
        out.lines()
            .any(|l| l.starts_with("index:") && !l.contains('%')),
        "{out}"
    );
    assert_eq!(content(&db), before);
    let files_after = sql(&db, "SELECT * FROM files ORDER BY file_id");
    let strip = |rows: &[serde_json::Map<String, serde_json::Value>]| -> Vec<String> {
        rows.iter()
            .map(|r| {
                format!(
                    "{} {} {}",
                    cell(&r["path"]),
                    cell(&r["status"]),
                    cell(&r["packets"])
                )
            })
            .collect()
    };
    assert_eq!(strip(&files_after), strip(&files_before));
}

#[test]
fn sessions_continue_into_files_indexed_by_a_later_run() {
    let dir = testdata("rotated");
    let files = captures_in(&dir);
    let whole = tmpdir("whole").join("i.db");
    pcapidx_ok(&whole, &["index", dir.to_str().unwrap(), "-q"], 0);
    let split = tmpdir("split").join("i.db");
    let first: Vec<&str> = files[..4].iter().map(|p| p.to_str().unwrap()).collect();
    let mut args = vec!["index", "-q"];
    args.extend(&first);
    pcapidx_ok(&split, &args, 0);
    pcapidx_ok(&split, &["index", dir.to_str().unwrap(), "-q"], 0);
    assert_eq!(content(&split), content(&whole));
    // The long session crosses from the first run's files into the second's, as one flow.
    let longest = sql(&split, "SELECT max(files) AS n FROM flows");
    assert!(longest[0]["n"].as_u64().unwrap() > 4);
}

#[test]
fn frequent_commits_and_one_thread_give_the_same_index() {
    let dir = testdata("overlap");
    let reference = tmpdir("ref").join("i.db");
    pcapidx_ok(
        &reference,
        &["index", dir.to_str().unwrap(), "-q", "--jobs", "2"],
        0,
    );
    for extra in [
        &["--jobs", "1"][..],
        // Many commits, each checkpointed in the background while the
        // writer goes on.
        &["--jobs", "2", "--checkpoint-packets", "7"],
        &["--jobs", "3", "--checkpoint-packets", "50"],
        // Two decoder threads: batches come back out of order.
        &["--jobs", "4"],
    ] {
        let db = tmpdir("variant").join("i.db");
        let mut args = vec!["index", dir.to_str().unwrap(), "-q"];
        args.extend_from_slice(extra);
        pcapidx_ok(&db, &args, 0);
        assert_eq!(content(&db), content(&reference), "{extra:?}");
    }
}

#[test]
fn a_growing_capture_is_continued() {
    let dir = tmpdir("growing");
    let src = &captures_in(&testdata("rotated"))[0];
    let bytes = std::fs::read(src).unwrap();
    let live = dir.join("live.pcap");
    // Cut inside a record, as a capture still being written may be.
    let cut = bytes.len() * 2 / 3 + 5;
    std::fs::write(&live, &bytes[..cut]).unwrap();
    let db = dir.join("i.db");
    let out = pcapidx(&db, &["index", live.to_str().unwrap(), "-q"]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a file read only in part is exit 1"
    );
    let row = &sql(&db, "SELECT status, packets, indexed_bytes FROM files")[0];
    assert_eq!(row["status"], "partial");
    let partial_packets = row["packets"].as_u64().unwrap();
    assert!(partial_packets > 0 && row["indexed_bytes"].as_u64().unwrap() < cut as u64);
    std::fs::write(&live, &bytes).unwrap();
    let out = pcapidx_ok(&db, &["index", live.to_str().unwrap()], 0);
    assert!(out.contains("1 continued"), "{out}");
    let reference = dir.join("ref.db");
    let whole = dir.join("whole.pcap");
    std::fs::write(&whole, &bytes).unwrap();
    pcapidx_ok(&reference, &["index", whole.to_str().unwrap(), "-q"], 0);
    assert_eq!(flow_summaries(&db), flow_summaries(&reference));
    let row = &sql(&db, "SELECT status, packets FROM files")[0];
    assert_eq!(
        (row["status"].as_str(), row["packets"].as_u64()),
        (Some("ok"), Some(40))
    );
}

/// A path whose bytes changed holds a new capture (a ring buffer rewrote
/// it): it is indexed as a new file, and its earlier content's row says
/// `overwritten`; only the current content is `ok`.
#[test]
fn a_file_changed_after_indexing_is_new_content() {
    let dir = tmpdir("changed");
    let src = &captures_in(&testdata("rotated"))[1];
    let f = dir.join("a.pcap");
    std::fs::copy(src, &f).unwrap();
    let db = dir.join("i.db");
    pcapidx_ok(&db, &["index", f.to_str().unwrap(), "-q"], 0);
    let packets = |db: &Path| {
        sql(db, "SELECT sum(packets_fwd + packets_rev) AS n FROM flows")[0]["n"]
            .as_u64()
            .unwrap()
    };
    let before = packets(&db);
    let mut bytes = std::fs::read(&f).unwrap();
    bytes[100] ^= 0xff;
    std::fs::write(&f, &bytes).unwrap();
    let out = pcapidx(&db, &["index", f.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("1 overwritten"),
        "{out:?}"
    );
    assert_eq!(packets(&db), 2 * before);
    let mut now = statuses(&db);
    now.sort();
    assert_eq!(
        now,
        [
            ("a.pcap".to_string(), "ok".to_string()),
            ("a.pcap".to_string(), "overwritten".to_string())
        ]
    );
    // Unchanged since: nothing more happens.
    let again = pcapidx_ok(&db, &["index", f.to_str().unwrap()], 0);
    assert!(again.contains("1 unchanged"), "{again}");
    assert_eq!(packets(&db), 2 * before);
}

#[test]
fn ignore_filters_drop_packets_and_are_recorded() {
    let dir = testdata("rotated");
    let db = tmpdir("ignore").join("i.db");
    let list = db.with_file_name("ignore.txt");
    std::fs::write(
        &list,
        "# resolvers\n192.0.2.53\n2001:db8:2::/48  # v6 servers\n",
    )
    .unwrap();
    pcapidx_ok(
        &db,
        &[
            "index",
            dir.to_str().unwrap(),
            "-q",
            "--ignore",
            "198.51.100.0/24",
            "--ignore-file",
            list.to_str().unwrap(),
        ],
        0,
    );
    let leaked = sql(
        &db,
        "SELECT count(*) AS n FROM flows WHERE src_ip IN ('192.0.2.53', '2001:db8:2::80') OR dst_ip IN ('192.0.2.53', '2001:db8:2::80')
         OR src_ip LIKE '198.51.100.%' OR dst_ip LIKE '198.51.100.%'",
    );
    assert_eq!(leaked[0]["n"].as_u64(), Some(0));
    let rows = sql(
        &db,
        "SELECT sum(filtered_packets) AS f, sum(packets) AS p, sum(flow_packets + filtered_packets + undecodable_packets) AS a, min(filters) AS filters FROM files",
    );
    let r = &rows[0];
    assert!(r["f"].as_u64().unwrap() > 100);
    assert_eq!(r["a"], r["p"], "every record accounted for");
    assert_eq!(
        r["filters"],
        "198.51.100.0/24,192.0.2.53/32,2001:db8:2::/48"
    );
}

#[test]
fn an_invalid_cidr_is_a_usage_error_before_anything_is_written() {
    let db = tmpdir("badcidr").join("i.db");
    let out = pcapidx(
        &db,
        &[
            "index",
            testdata("rotated").to_str().unwrap(),
            "--ignore",
            "10.0.0.0/33",
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("invalid CIDR"));
    assert!(!db.exists());
    let list = db.with_file_name("bad.txt");
    std::fs::write(&list, "10.0.0.0/8\nnot-an-address\n").unwrap();
    let out = pcapidx(
        &db,
        &[
            "index",
            testdata("rotated").to_str().unwrap(),
            "--ignore-file",
            list.to_str().unwrap(),
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("line 2"),
        "{out:?}"
    );
    assert!(!db.exists());
}

#[test]
fn files_that_are_not_captures_are_listed_and_do_not_fail_the_run() {
    let dir = tmpdir("mixed-folder");
    std::fs::create_dir_all(dir.join("sub")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a capture\n").unwrap();
    std::fs::write(dir.join("sub/empty"), "").unwrap();
    // Recognised by magic number, whatever the name.
    std::fs::copy(
        &captures_in(&testdata("rotated"))[0],
        dir.join("sub/capture.dmp"),
    )
    .unwrap();
    let db = tmpdir("mixed-db").join("i.db");
    let out = pcapidx_ok(&db, &["index", dir.to_str().unwrap()], 0);
    assert!(
        out.contains("1 indexed") && out.contains("2 not captures") && out.contains("notes.txt"),
        "{out}"
    );
    assert_eq!(
        statuses(&db),
        [
            ("notes.txt".into(), "not-a-capture".into()),
            ("capture.dmp".into(), "ok".into()),
            ("empty".into(), "not-a-capture".into())
        ]
    );
}

#[test]
fn output_formats_are_machine_readable() {
    let db = tmpdir("formats").join("i.db");
    pcapidx_ok(
        &db,
        &["index", testdata("fragments").to_str().unwrap(), "-q"],
        0,
    );
    let json = pcapidx_ok(&db, &["flows", "--format", "json"], 0);
    let v: serde_json::Value = serde_json::from_str(&json).unwrap();
    let flows = v.as_array().unwrap();
    assert_eq!(flows.len(), 3);
    for f in flows {
        assert!(f["flow_id"].is_u64() && f["packets_fwd"].is_u64() && f["vlan"].is_null());
        for col in FLOW_COLUMNS {
            assert!(f.get(col).is_some(), "missing {col}");
        }
    }
    let jsonl = pcapidx_ok(&db, &["flows", "--format", "jsonl", "--limit", "2"], 0);
    assert_eq!(jsonl.lines().count(), 2);
    for l in jsonl.lines() {
        assert!(
            serde_json::from_str::<serde_json::Value>(l)
                .unwrap()
                .is_object()
        );
    }
    let csv = pcapidx_ok(
        &db,
        &["flows", "--format", "csv", "--where", "proto = 6"],
        0,
    );
    let mut lines = csv.lines();
    assert!(
        lines
            .next()
            .unwrap()
            .starts_with("flow_id,proto,src_ip,src_port,dst_ip,dst_port,")
    );
    assert_eq!(lines.count(), 1);
    let table = pcapidx_ok(&db, &["files"], 0);
    assert!(table.starts_with("Id  Path") && table.contains("fragments_00000.pcap"));
    let empty_json = pcapidx_ok(
        &db,
        &["flows", "--format", "json", "--where", "proto = 99"],
        1,
    );
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&empty_json).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn sql_is_read_only_and_errors_are_clear() {
    let db = tmpdir("readonly").join("i.db");
    pcapidx_ok(
        &db,
        &["index", testdata("fragments").to_str().unwrap(), "-q"],
        0,
    );
    for stmt in [
        "DROP TABLE flow_data",
        "DROP VIEW flows",
        "UPDATE flow_data SET proto = 1",
        "DELETE FROM files",
        "VACUUM INTO 'copy.db'",
        "PRAGMA journal_mode=DELETE",
        "PRAGMA journal_mode=WAL",
    ] {
        let out = bin()
            .current_dir(db.parent().unwrap())
            .arg("--db")
            .arg(&db)
            .args(["sql", stmt])
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{stmt}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("SQL is read-only"), "{stmt}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(!err.contains("Error code"), "{err}");
    }
    assert!(!db.with_file_name("copy.db").exists());
    // A finished run leaves rollback-journal mode; the refused pragmas changed nothing.
    assert_eq!(sql(&db, "PRAGMA journal_mode")[0]["journal_mode"], "delete");
    for (stmt, says) in [
        ("", "no SQL statement given"),
        ("SELECT nope FROM flows", "no such column: nope"),
    ] {
        let out = pcapidx(&db, &["sql", stmt]);
        assert_eq!(out.status.code(), Some(2), "{stmt}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(err.trim(), format!("pcapidx: {says}"), "{stmt}");
    }
    assert_eq!(
        sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"].as_u64(),
        Some(3)
    );
    let out = pcapidx(&db, &["flows", "--where", "no_such_column = 1"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no_such_column"));
    let missing = db.with_file_name("missing.db");
    let out = pcapidx(&missing, &["flows"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pcapidx index"));
    assert!(!missing.exists());
}

/// A database that cannot be opened is named once, with what is wrong and
/// what to do, by readers and by `index` alike.
#[test]
fn a_file_that_is_not_an_index_is_named_once() {
    let dir = tmpdir("not-an-index");
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a database\n").unwrap();
    let captures = testdata("fragments");
    let cases = [
        (
            dir.join("missing.db"),
            &["flows"][..],
            "run `pcapidx index` first",
        ),
        (text.clone(), &["flows"][..], "is not a pcapidx index"),
        (
            text.clone(),
            &["carve", "--flow-id", "1", "-o", "-"][..],
            "is not a pcapidx index",
        ),
        (
            text.clone(),
            &["index", captures.to_str().unwrap()][..],
            "is not a pcapidx index",
        ),
    ];
    for (db, args, says) in cases {
        let out = pcapidx(&db, args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says), "{args:?}: {err}");
        assert_eq!(
            err.matches(db.to_str().unwrap()).count(),
            1,
            "{args:?}: {err}"
        );
    }
    assert_eq!(std::fs::read_to_string(&text).unwrap(), "not a database\n");
}

#[test]
fn an_index_from_a_newer_pcapidx_is_refused() {
    let db = tmpdir("newer").join("i.db");
    pcapidx_ok(
        &db,
        &["index", testdata("fragments").to_str().unwrap(), "-q"],
        0,
    );
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.pragma_update(None, "user_version", 99).unwrap();
    drop(conn);
    for args in [
        &["flows"][..],
        &["index", testdata("fragments").to_str().unwrap()],
    ] {
        let out = pcapidx(&db, args);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("schema version 99")
                && err.contains(&format!("up to version {}", pcapidx_store::SCHEMA_VERSION)),
            "{err}"
        );
    }
}

#[test]
fn broken_pipe_exits_quietly() {
    let db = tmpdir("pipe").join("i.db");
    pcapidx_ok(
        &db,
        &["index", testdata("rotated").to_str().unwrap(), "-q"],
        0,
    );
    let mut child = bin()
        .arg("--db")
        .arg(&db)
        .args(["sql", "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n LIMIT 200000) SELECT i FROM n", "--format", "csv"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    let mut buf = [0u8; 64];
    std::io::Read::read(&mut out, &mut buf).unwrap();
    drop(out);
    let status = child.wait_with_output().unwrap();
    assert_eq!(
        status.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    assert!(
        status.stderr.is_empty(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    // `pcapidx follow ... | head`: every flow's stream, into a pipe closed early.
    let mut child = bin()
        .arg("--db")
        .arg(&db)
        .args(["follow", "--where", "flow_id > 0", "--format", "hex", "-q"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = child.stdout.take().unwrap();
    std::io::Read::read(&mut out, &mut buf).unwrap();
    drop(out);
    let status = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&status.stderr);
    assert_eq!((status.status.code(), err.as_ref()), (Some(0), ""));
}

/// `pcapidx index DIR | head -0`: the summary has nowhere to go, which
/// neither panics nor changes the exit status; the index is complete.
#[test]
fn index_summary_into_a_closed_pipe() {
    let db = tmpdir("pipe-index").join("i.db");
    let mut child = bin()
        .arg("--db")
        .arg(&db)
        .args(["index", testdata("rotated").to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // Closed before the run can have written anything.
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let files = sql(&db, "SELECT status FROM files WHERE format IS NOT NULL");
    assert_eq!(files.len(), 9);
    assert!(files.iter().all(|r| cell(&r["status"]) == "ok"));
    assert!(!sql(&db, "SELECT 1 FROM flows LIMIT 1").is_empty());
}

/// An index written by schema version 1 (every position chunk a row of
/// `packet_chunks`) is refused by read-only commands with a pointer to
/// `pcapidx index`, which upgrades it in place: same flows, same positions,
/// same carved bytes; and it then takes new files like any other index.
#[test]
fn an_index_from_schema_version_1_is_upgraded_in_place() {
    let dir = tmpdir("upgrade");
    let db = dir.join("i.db");
    let data = testdata("rotated");
    let files = captures_in(&data);
    let (first, rest) = files.split_at(files.len() / 2);
    let paths = |fs: &[std::path::PathBuf]| -> Vec<String> {
        fs.iter().map(|f| f.to_str().unwrap().to_owned()).collect()
    };
    let mut args = vec!["index".to_owned(), "-q".to_owned()];
    args.extend(paths(first));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    pcapidx_ok(&db, &args, 0);
    let before = content(&db);
    let carve = |out: &Path| {
        pcapidx_ok(
            &db,
            &["carve", "--flow-id", "1", "-o", out.to_str().unwrap()],
            0,
        );
        std::fs::read(out).unwrap()
    };
    let carved = carve(&dir.join("before.pcap"));

    // What schema version 1 wrote: every chunk in packet_chunks, in order;
    // no payload columns, and its flows view.
    undo_schema_7(&db);
    let v1 = pcapidx_store::MIGRATIONS[0].2;
    let view = &v1[v1.find("CREATE VIEW flows AS").unwrap()..];
    let view = &view[..view.find("FROM flow_data;").unwrap() + 15];
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute_batch(&format!(
        "CREATE TEMP TABLE c AS SELECT flow_id, data FROM flow_chunks ORDER BY flow_id, chunk_id;
         DELETE FROM packet_chunks;
         INSERT INTO packet_chunks (flow_id, data) SELECT flow_id, data FROM temp.c ORDER BY rowid;
         DROP VIEW flow_chunks;
         ALTER TABLE flow_data DROP COLUMN first_chunk;
         DROP VIEW flows;
         {view}
         ALTER TABLE flow_data DROP COLUMN payload_fwd;
         ALTER TABLE flow_data DROP COLUMN payload_rev;
         ALTER TABLE flow_data DROP COLUMN missed_fwd;
         ALTER TABLE flow_data DROP COLUMN missed_rev;
         DROP TABLE meta;
         DROP TABLE export_open;
         PRAGMA user_version = 1;"
    ))
    .unwrap();
    drop(conn);

    let out = pcapidx(&db, &["flows"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("pcapidx index"));

    pcapidx_ok(&db, &args, 0);
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, pcapidx_store::SCHEMA_VERSION);
    drop(conn);
    let after = content(&db);
    assert_eq!((after.0, after.1), (before.0, before.1));
    assert_eq!(carve(&dir.join("after.pcap")), carved);
    // Version 1 did not count payload: its flows say so with NULL.
    let counted = sql(
        &db,
        "SELECT count(*) AS n FROM flows WHERE payload_fwd IS NOT NULL",
    );
    assert_eq!(counted[0]["n"], 0);

    // The rest of the files, into the upgraded index, give what one run
    // over all of them gives.
    let mut more = vec!["index".to_owned(), "-q".to_owned()];
    more.extend(paths(&files));
    let more: Vec<&str> = more.iter().map(String::as_str).collect();
    pcapidx_ok(&db, &more, 0);
    let whole = dir.join("whole.db");
    pcapidx_ok(&whole, &more, 0);
    let (upgraded, one_run) = (content(&db), content(&whole));
    assert_eq!((upgraded.0, upgraded.1), (one_run.0, one_run.1));
    assert!(!rest.is_empty());
    // file_flows, filled from version 1's positions, then kept.
    assert_kept_tables_agree(&db);
}

/// An index copied to a folder nobody may write (read-only media) opens in
/// pcapidx and in the sqlite3 shell, as a lone file: runs leave it in
/// rollback-journal mode, and pcapidx reads even a WAL copy there as
/// immutable. Root ignores folder permissions, so as root the readers run
/// as `nobody` (setpriv), from a copy of the binary they can reach.
#[test]
fn an_index_in_a_read_only_folder_opens_anywhere() {
    let db = indexed("ro-src", "rotated");
    let conn = rusqlite::Connection::open(&db).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(
        mode, "delete",
        "a finished run leaves rollback-journal mode"
    );
    drop(conn);
    let want = pcapidx_ok(&db, &["flows", "--format", "csv"], 0);

    let root = is_root();
    if root && !have("setpriv") {
        skip("running as root without setpriv to drop privileges");
        return;
    }
    let base = std::env::temp_dir().join(format!("pcapidx-ro-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&base);
    std::fs::create_dir_all(&base).unwrap();
    let exe = base.join("pcapidx");
    std::fs::copy(env!("CARGO_BIN_EXE_pcapidx"), &exe).unwrap();
    let as_reader = |prog: &Path| {
        let mut c = if root {
            let mut c = Command::new("setpriv");
            c.args(["--reuid", "65534", "--regid", "65534", "--clear-groups"])
                .arg(prog);
            c
        } else {
            Command::new(prog)
        };
        c.current_dir(&base);
        c
    };
    for wal in [false, true] {
        let dir = base.join(if wal { "wal" } else { "plain" });
        std::fs::create_dir_all(&dir).unwrap();
        let copy = dir.join("i.db");
        std::fs::copy(&db, &copy).unwrap();
        if wal {
            let c = rusqlite::Connection::open(&copy).unwrap();
            c.pragma_update(None, "journal_mode", "WAL").unwrap();
            drop(c);
            for s in ["-wal", "-shm"] {
                let _ = std::fs::remove_file(dir.join(format!("i.db{s}")));
            }
        }
        set_mode(&base, 0o755);
        set_mode(&exe, 0o755);
        set_mode(&copy, 0o444);
        set_mode(&dir, 0o555);
        let out = as_reader(&exe)
            .arg("--db")
            .arg(&copy)
            .args(["flows", "--format", "csv"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "wal={wal}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(String::from_utf8_lossy(&out.stdout), want);
        if !wal && have("sqlite3") {
            let out = as_reader(Path::new("sqlite3"))
                .arg(&copy)
                .arg("SELECT count(*) FROM flows")
                .output()
                .unwrap();
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            assert_eq!(
                String::from_utf8_lossy(&out.stdout).trim(),
                want.lines().count().saturating_sub(1).to_string()
            );
        }
        assert!(!dir.join("i.db-wal").exists() && !dir.join("i.db-shm").exists());
        set_mode(&dir, 0o755);
    }
    std::fs::remove_dir_all(&base).unwrap();
}

fn set_mode(p: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(p, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// Whether this process runs as root (from /proc, without unsafe code).
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status").is_ok_and(|s| {
        s.lines()
            .find(|l| l.starts_with("Uid:"))
            .and_then(|l| l.split_whitespace().nth(2))
            == Some("0")
    })
}
