//! Captures in object storage, against a real S3 server (tests/common/s3.rs:
//! signatures checked) on 127.0.0.1: what is indexed from a bucket equals
//! what is indexed from disk, carves are the same bytes fetched by few range
//! requests, events index what they name, and every fault is one clear line.
use std::path::Path;
use std::process::Output;

use crate::common::s3::Server;
use crate::common::{cell, flow_summaries, sql, testdata, tmpdir};

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status.code(),
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn code(o: &Output, want: i32) {
    assert_eq!(o.status.code(), Some(want), "{}", text(o));
}

/// Every packet position as (file name, offset, ts, caplen, flow's 5-tuple).
fn positions(db: &Path) -> Vec<String> {
    let mut v: Vec<String> = sql(
        db,
        "SELECT f.path, p.offset, p.ts_ns, p.caplen, fl.proto, fl.src_ip, fl.src_port, fl.dst_ip,
                fl.dst_port
         FROM packets p JOIN files f USING (file_id) JOIN flows fl USING (flow_id)",
    )
    .iter()
    .map(|r| {
        let name = cell(&r["path"]);
        let name = name.rsplit('/').next().unwrap_or_default().to_string();
        let rest: Vec<String> = r.values().skip(1).map(cell).collect();
        format!("{name}\t{}", rest.join("\t"))
    })
    .collect();
    v.sort();
    v
}

/// A server holding the bundled rotated set (a session across many files)
/// and a mixed pcapng file under `sensor1/`.
fn loaded(name: &str) -> Server {
    let s = Server::start(name, &["caps"]);
    s.put_folder(&testdata("rotated"), "caps", "sensor1/");
    s.put_folder(&testdata("format-pcapng-mixed"), "caps", "sensor1/ng/");
    s
}

#[test]
fn a_bucket_indexes_as_its_files_do_and_carves_the_same_bytes() {
    let s = loaded("s3-same");
    let dir = tmpdir("s3-same-db");
    let (from_bucket, from_disk) = (dir.join("bucket.db"), dir.join("disk.db"));
    let o = s.pcapidx(&from_bucket, &["index", "s3://caps/sensor1/"]);
    code(&o, 0);
    let o = s.pcapidx(
        &from_disk,
        &["index", s.root.join("caps/sensor1").to_str().unwrap(), "-q"],
    );
    code(&o, 0);
    assert!(!flow_summaries(&from_bucket).is_empty());
    assert_eq!(flow_summaries(&from_bucket), flow_summaries(&from_disk));
    assert_eq!(positions(&from_bucket), positions(&from_disk));
    let files = sql(
        &from_bucket,
        "SELECT path, status, etag, size, indexed_bytes FROM files ORDER BY path",
    );
    // EXPECTED.tsv files are objects too: not captures.
    let captures: Vec<_> = files
        .iter()
        .filter(|r| !cell(&r["path"]).ends_with(".tsv"))
        .collect();
    assert_eq!(captures.len(), 10, "{files:?}");
    for r in &captures {
        assert!(cell(&r["path"]).starts_with("s3://caps/sensor1/"), "{r:?}");
        assert_eq!(cell(&r["status"]), "ok", "{r:?}");
        assert!(!cell(&r["etag"]).is_empty(), "{r:?}");
        assert_eq!(cell(&r["size"]), cell(&r["indexed_bytes"]), "{r:?}");
    }

    // A re-run fetches nothing: every object's ETag and size are unchanged.
    let before = s.gets();
    let o = s.pcapidx(&from_bucket, &["index", "s3://caps/sensor1/"]);
    code(&o, 0);
    assert_eq!(
        s.gets(),
        before,
        "a re-run read objects again: {}",
        text(&o)
    );

    // Carves: the flows spanning most files, from the bucket and from disk.
    let ids = sql(
        &from_bucket,
        "SELECT flow_id FROM flows ORDER BY files DESC, packets_fwd + packets_rev DESC LIMIT 3",
    );
    for r in ids {
        let id = cell(&r["flow_id"]);
        let (a, b) = (
            dir.join(format!("b{id}.pcap")),
            dir.join(format!("d{id}.pcap")),
        );
        let before = s.gets();
        let o = s.pcapidx(
            &from_bucket,
            &["carve", "--flow-id", &id, "-o", a.to_str().unwrap()],
        );
        code(&o, 0);
        let (gets, fetched) = (s.gets().0 - before.0, s.gets().1 - before.1);
        let o2 = s.pcapidx(
            &from_disk,
            &["carve", "--flow-id", &id, "-o", b.to_str().unwrap()],
        );
        code(&o2, 0);
        let (ca, cb) = (std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
        assert_eq!(ca, cb, "flow {id}: carves differ");
        // About the bytes of its records: what was written (less the
        // capture's headers) plus the small gaps coalesced between them.
        let files: u64 = sql(
            &from_bucket,
            &format!("SELECT files FROM flows WHERE flow_id = {id}"),
        )[0]["files"]
            .as_u64()
            .unwrap();
        assert!(
            fetched <= ca.len() as u64 * 2 + files * 32 * 1024,
            "flow {id}: {fetched} bytes fetched for a {}-byte carve",
            ca.len()
        );
        assert!(
            gets <= files * 2 + 1,
            "flow {id}: {gets} GETs for {files} files"
        );
        assert!(
            stderr(&o).contains("request"),
            "the summary names the requests: {}",
            stderr(&o)
        );
    }
}

#[test]
fn a_replaced_object_is_a_clear_error_and_new_content() {
    let s = loaded("s3-replaced");
    let db = tmpdir("s3-replaced-db").join("i.db");
    code(&s.pcapidx(&db, &["index", "s3://caps/sensor1/", "-q"]), 0);
    let key = "sensor1/rotated_00003.pcap";
    let row = sql(
        &db,
        &format!("SELECT file_id FROM files WHERE path = 's3://caps/{key}'"),
    );
    let fid = cell(&row[0]["file_id"]);
    let flow = cell(
        &sql(
            &db,
            &format!(
                "SELECT flow_id FROM flows WHERE files = 1
                 AND flow_id IN (SELECT flow_id FROM file_flows WHERE file_id = {fid}) LIMIT 1"
            ),
        )[0]["flow_id"],
    );
    // Same size, other bytes: only the ETag tells.
    let mut bytes = std::fs::read(s.file("caps", key)).unwrap();
    let n = bytes.len();
    bytes[n - 1] ^= 0xff;
    s.put("caps", key, &bytes);
    let out = tmpdir("s3-replaced-out").join("c.pcap");
    let o = s.pcapidx(
        &db,
        &["carve", "--flow-id", &flow, "-o", out.to_str().unwrap()],
    );
    assert_ne!(o.status.code(), Some(0), "{}", text(&o));
    let err = stderr(&o);
    assert!(
        err.contains(&format!("s3://caps/{key}")) && err.contains("replaced since it was indexed"),
        "{err}"
    );
    assert!(!out.exists(), "nothing is written");
    // Indexed again: new content at that URL, the old row overwritten.
    let o = s.pcapidx(&db, &["index", "s3://caps/sensor1/"]);
    code(&o, 0);
    let rows = sql(
        &db,
        &format!("SELECT status FROM files WHERE path = 's3://caps/{key}' ORDER BY file_id"),
    );
    let st: Vec<String> = rows.iter().map(|r| cell(&r["status"])).collect();
    assert_eq!(st, ["overwritten", "ok"], "{}", text(&o));
}

#[test]
fn faults_are_one_line_naming_the_url() {
    let s = loaded("s3-faults");
    s.put(
        "caps",
        "junk/notes.txt",
        b"these are not packets at all, just words",
    );
    let whole = std::fs::read(testdata("rotated").join("rotated_00001.pcap")).unwrap();
    s.put("caps", "junk/cut.pcap", &whole[..whole.len() - 7]);
    let dir = tmpdir("s3-faults-db");
    let db = dir.join("i.db");

    // Wrong secret: the signature is refused.
    let o = s.pcapidx_with(&db, &["index", "s3://caps/sensor1/", "-q"], "wrong-secret");
    code(&o, 1);
    let err = stderr(&o);
    assert!(
        err.contains("s3://caps/sensor1/") && err.contains("access denied"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");

    // A missing bucket, a missing key.
    let o = s.pcapidx(&db, &["index", "s3://nobucket/x/", "-q"]);
    code(&o, 1);
    assert!(
        stderr(&o).contains("s3://nobucket/x/: no such bucket"),
        "{}",
        text(&o)
    );
    let o = s.pcapidx(&db, &["index", "s3://caps/nothing-here.pcap", "-q"]);
    code(&o, 1);
    assert!(
        stderr(&o).contains("s3://caps/nothing-here.pcap: no such object"),
        "{}",
        text(&o)
    );

    // Not a capture, and a truncated one: every complete record kept.
    let o = s.pcapidx(&db, &["index", "s3://caps/junk/"]);
    code(&o, 1);
    let st = sql(&db, "SELECT path, status, packets FROM files ORDER BY path");
    let find = |p: &str| st.iter().find(|r| cell(&r["path"]) == p).unwrap().clone();
    assert_eq!(
        cell(&find("s3://caps/junk/notes.txt")["status"]),
        "not-a-capture"
    );
    let cut = find("s3://caps/junk/cut.pcap");
    assert_eq!(cell(&cut["status"]), "partial", "{}", text(&o));
    let disk = dir.join("disk.db");
    let local = dir.join("cut.pcap");
    std::fs::write(&local, &whole[..whole.len() - 7]).unwrap();
    s.pcapidx(&disk, &["index", local.to_str().unwrap(), "-q"]);
    let disk_packets = cell(&sql(&disk, "SELECT packets FROM files")[0]["packets"]);
    assert_eq!(cell(&cut["packets"]), disk_packets);

    // Throttling: 503 SlowDown is retried with backoff.
    s.faults
        .slow_down
        .store(3, std::sync::atomic::Ordering::SeqCst);
    let db2 = dir.join("throttled.db");
    let o = s.pcapidx(&db2, &["index", "s3://caps/sensor1/", "-q"]);
    code(&o, 0);
    assert_eq!(
        s.faults.slow_down.load(std::sync::atomic::Ordering::SeqCst),
        0,
        "the throttled requests were made"
    );
}

/// Runs `run` with a cut armed once planning is over: planning reads an
/// object's header and peeks at its first record, and reading starts with
/// the header again (3 GETs); the next GET body past `cut_at` is cut there,
/// and with `delete` the object is deleted then too.
fn during_cut(s: &Server, cut_at: u64, delete: bool, run: impl FnOnce() -> Output) -> Output {
    use std::sync::atomic::Ordering::SeqCst;
    std::thread::scope(|t| {
        let faults = s.faults.clone();
        t.spawn(move || {
            let start = std::time::Instant::now();
            while faults.gets.load(SeqCst) < 3 && start.elapsed().as_secs() < 20 {
                std::thread::sleep(std::time::Duration::from_millis(1));
            }
            faults.delete_on_cut.store(delete, SeqCst);
            faults.cut_next_get_after.store(cut_at, SeqCst);
        });
        run()
    })
}

#[test]
fn a_dropped_connection_resumes_where_it_stopped() {
    let s = Server::start("s3-dropped", &["caps"]);
    let dir = tmpdir("s3-dropped-db");
    // One object, cut in the middle of the GET that reads it.
    let big = testdata("rotated").join("rotated_00004.pcap");
    let bytes = std::fs::read(&big).unwrap();
    s.put("caps", "rotated_00004.pcap", &bytes);
    let disk = dir.join("disk.db");
    s.pcapidx(&disk, &["index", big.to_str().unwrap(), "-q"]);
    let db = dir.join("i.db");
    let cut_at = (bytes.len() / 2) as u64;
    let o = during_cut(&s, cut_at, false, || {
        s.pcapidx(&db, &["index", "s3://caps/rotated_00004.pcap", "-q"])
    });
    code(&o, 0);
    assert!(
        s.gets().0 >= 3,
        "peek, cut read, resumed read: {:?}",
        s.gets()
    );
    assert_eq!(flow_summaries(&db), flow_summaries(&disk));
    assert_eq!(positions(&db), positions(&disk));
}

/// A capture of a few megabytes from the project's generator.
fn generated(dir: &Path) -> std::path::PathBuf {
    let out = dir.join("gen");
    let o = crate::common::bin()
        .args([
            "generate",
            "--profile",
            "bench",
            "--size",
            "3M",
            "--file-size",
            "3M",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    code(&o, 0);
    crate::common::captures_in(&out).remove(0)
}

#[test]
fn an_object_gone_mid_read_is_partial_with_its_complete_records() {
    let s = Server::start("s3-gone", &["caps"]);
    let dir = tmpdir("s3-gone-db");
    let bytes = std::fs::read(generated(&dir)).unwrap();
    s.put("caps", "big.pcap", &bytes);
    let cut_at = (bytes.len() / 2) as u64;
    let db = dir.join("i.db");
    let o = during_cut(&s, cut_at, true, || {
        s.pcapidx(&db, &["index", "s3://caps/big.pcap"])
    });
    code(&o, 1);
    assert!(
        stderr(&o).contains("s3://caps/big.pcap") && stderr(&o).contains("no such object"),
        "{}",
        text(&o)
    );
    let row = &sql(&db, "SELECT status, packets, indexed_bytes FROM files")[0];
    assert_eq!(cell(&row["status"]), "partial", "{row:?}");
    let kept = row["indexed_bytes"].as_u64().unwrap();
    assert!(kept > 0 && kept <= cut_at, "{row:?}");
    // Every record received whole is kept: what indexing the same bytes
    // from disk keeps.
    let local = dir.join("big.pcap");
    std::fs::write(&local, &bytes[..kept as usize]).unwrap();
    let disk = dir.join("disk.db");
    code(
        &s.pcapidx(&disk, &["index", local.to_str().unwrap(), "-q"]),
        0,
    );
    let want = &sql(&disk, "SELECT packets, indexed_bytes FROM files")[0];
    assert_eq!(row["packets"], want["packets"], "{row:?} vs {want:?}");
    assert!(row["packets"].as_u64().unwrap() > 1000, "{row:?}");
    assert_eq!(positions(&db), positions(&disk));
}

#[test]
fn events_index_exactly_what_they_name() {
    let s = loaded("s3-events");
    let dir = tmpdir("s3-events-db");
    let db = dir.join("i.db");
    let event = |keys: &[(&str, &str)]| {
        let records: Vec<serde_json::Value> = keys
            .iter()
            .map(|(name, key)| {
                let size = std::fs::metadata(s.file("caps", &key.replace('+', " ")))
                    .map(|m| m.len())
                    .unwrap_or(0);
                serde_json::json!({
                    "eventVersion": "2.1", "eventSource": "aws:s3", "eventName": name,
                    "s3": {"bucket": {"name": "caps"},
                           "object": {"key": key, "size": size, "sequencer": "0A1B"}}
                })
            })
            .collect();
        let path = dir.join(format!("event-{}.json", keys.len()));
        std::fs::write(&path, serde_json::json!({ "Records": records }).to_string()).unwrap();
        path
    };
    let ev = event(&[
        ("ObjectCreated:Put", "sensor1/rotated_00000.pcap"),
        (
            "ObjectCreated:CompleteMultipartUpload",
            "sensor1/rotated_00001.pcap",
        ),
        ("ObjectRemoved:Delete", "sensor1/rotated_00002.pcap"),
    ]);
    let o = s.pcapidx(&db, &["index", "--s3-event", ev.to_str().unwrap()]);
    code(&o, 0);
    assert!(
        stderr(&o).contains("ObjectRemoved:Delete, not a new object"),
        "{}",
        text(&o)
    );
    let paths: Vec<String> = sql(&db, "SELECT path FROM files ORDER BY path")
        .iter()
        .map(|r| cell(&r["path"]))
        .collect();
    assert_eq!(
        paths,
        [
            "s3://caps/sensor1/rotated_00000.pcap",
            "s3://caps/sensor1/rotated_00001.pcap"
        ]
    );
    let flows = flow_summaries(&db);
    // Repeated (events may arrive twice): nothing changes, nothing fetched.
    let before = s.gets();
    code(
        &s.pcapidx(&db, &["index", "--s3-event", ev.to_str().unwrap(), "-q"]),
        0,
    );
    assert_eq!(flow_summaries(&db), flows);
    assert_eq!(s.gets().0, before.0);

    // From standard input, with a key that needs decoding ('+' is a space).
    s.put(
        "caps",
        "with space/a.pcapng",
        &std::fs::read(testdata("format-pcapng-mixed").join("format-pcapng-mixed_00000.pcapng"))
            .unwrap(),
    );
    let ev = event(&[("ObjectCreated:Put", "with+space/a.pcapng")]);
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pcapidx"));
    c.arg("--db")
        .arg(&db)
        .args(["index", "--s3-event", "-", "-q"]);
    s.env(&mut c, crate::common::s3::SECRET_KEY);
    c.stdin(std::fs::File::open(&ev).unwrap());
    let o = c.output().unwrap();
    code(&o, 0);
    assert_eq!(
        sql(
            &db,
            "SELECT status FROM files WHERE path = 's3://caps/with space/a.pcapng'"
        )
        .len(),
        1
    );

    // --max-file-size applies before any byte is fetched.
    let before = s.gets();
    let ev = event(&[("ObjectCreated:Put", "sensor1/rotated_00005.pcap")]);
    let o = s.pcapidx(
        &db,
        &[
            "index",
            "--s3-event",
            ev.to_str().unwrap(),
            "--max-file-size",
            "1000",
            "-q",
        ],
    );
    code(&o, 1);
    assert_eq!(s.gets(), before);
    let st = sql(
        &db,
        "SELECT status FROM files WHERE path LIKE '%rotated_00005.pcap'",
    );
    assert_eq!(cell(&st[0]["status"]), "skipped");

    // A test event is skipped with a note.
    let t = dir.join("test-event.json");
    std::fs::write(
        &t,
        r#"{"Service":"Amazon S3","Event":"s3:TestEvent","Bucket":"caps"}"#,
    )
    .unwrap();
    let o = s.pcapidx(&db, &["index", "--s3-event", t.to_str().unwrap()]);
    code(&o, 0);
    assert!(stderr(&o).contains("s3:TestEvent"), "{}", text(&o));
}

#[test]
fn a_malformed_event_writes_nothing() {
    let dir = tmpdir("s3-bad-event");
    let db = dir.join("i.db");
    for (doc, says) in [
        ("{not json", "not JSON"),
        (r#"{"records": []}"#, "no Records"),
        (
            r#"{"Records":[{"s3":{"object":{"key":"k"}}}]}"#,
            "s3.bucket.name",
        ),
    ] {
        let f = dir.join("e.json");
        std::fs::write(&f, doc).unwrap();
        let o = crate::common::pcapidx(&db, &["index", "--s3-event", f.to_str().unwrap()]);
        code(&o, 2);
        let err = stderr(&o);
        assert!(
            err.contains(says) && err.trim().lines().count() == 1,
            "{doc}: {err}"
        );
        assert!(!db.exists(), "{doc}: the index was created");
    }
}

#[test]
fn serve_takes_event_webhooks_with_its_token() {
    use crate::common::{Served, http_request};
    let s = loaded("s3-serve");
    let db = tmpdir("s3-serve-db").join("i.db");
    // An index to serve: one object already in it.
    code(
        &s.pcapidx(
            &db,
            &["index", "s3://caps/sensor1/rotated_00000.pcap", "-q"],
        ),
        0,
    );
    let served = Served::start_with(&db, &["--s3-events", "--token", "sesame"], |c| {
        s.env(c, crate::common::s3::SECRET_KEY)
    });
    let doc = serde_json::json!({"Records": [
        {"eventName": "ObjectCreated:Put",
         "s3": {"bucket": {"name": "caps"}, "object": {"key": "sensor1/rotated_00001.pcap"}}},
        {"eventName": "ObjectCreated:Put",
         "s3": {"bucket": {"name": "caps"}, "object": {"key": "sensor1/rotated_00000.pcap"}}}
    ]})
    .to_string();
    let post = |headers: &[&str], body: &[u8]| {
        http_request(served.addr, "POST", "/api/s3-events", headers, body)
    };
    // Without the token: refused, nothing indexed.
    let (st, _, _) = post(&["Content-Type: application/json"], doc.as_bytes());
    assert_eq!(st, 401);
    assert_eq!(sql(&db, "SELECT path FROM files").len(), 1);
    // Malformed: a 400 that says why.
    let (st, _, body) = post(&["Authorization: Bearer sesame"], b"{\"Records\": [{}]}");
    assert_eq!(st, 400, "{}", String::from_utf8_lossy(&body));
    assert!(String::from_utf8_lossy(&body).contains("s3 part"));
    // With it: the new object indexed, the known one left as it is.
    let (st, _, body) = post(&["Authorization: Bearer sesame"], doc.as_bytes());
    let answer: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(st, 200, "{answer}");
    let actions: Vec<(String, String)> = answer["files"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| (cell(&f["path"]), cell(&f["action"])))
        .collect();
    assert!(
        actions.contains(&(
            "s3://caps/sensor1/rotated_00001.pcap".into(),
            "indexed".into()
        )) && actions.contains(&(
            "s3://caps/sensor1/rotated_00000.pcap".into(),
            "unchanged".into()
        )),
        "{answer}"
    );
    // The page's API sees it.
    let (st, _, body) = served.get("/api/files", &["Authorization: Bearer sesame"]);
    assert_eq!(st, 200);
    assert!(String::from_utf8_lossy(&body).contains("rotated_00001.pcap"));
}

#[test]
fn watch_lists_a_bucket_again_at_each_rescan() {
    let s = Server::start("s3-watch", &["caps"]);
    let rotated = testdata("rotated");
    let put = |name: &str| {
        s.put(
            "caps",
            &format!("live/{name}"),
            &std::fs::read(rotated.join(name)).unwrap(),
        )
    };
    put("rotated_00000.pcap");
    let db = tmpdir("s3-watch-db").join("i.db");
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pcapidx"));
    c.arg("--db").arg(&db).args([
        "index",
        "--watch",
        "--rescan-interval",
        "300ms",
        "s3://caps/live/",
    ]);
    c.stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped());
    s.env(&mut c, crate::common::s3::SECRET_KEY);
    let mut child = c.spawn().unwrap();
    let count = |db: &Path| -> usize {
        if !db.exists() {
            return 0;
        }
        let o = crate::common::pcapidx(
            db,
            &[
                "sql",
                "SELECT path FROM files WHERE status = 'ok'",
                "--format",
                "jsonl",
            ],
        );
        String::from_utf8_lossy(&o.stdout).lines().count()
    };
    let wait = |n: usize| {
        let t = std::time::Instant::now();
        while count(&db) < n && t.elapsed().as_secs() < 20 {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        count(&db)
    };
    if wait(1) != 1 {
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        panic!("nothing indexed: {}", String::from_utf8_lossy(&out.stderr));
    }
    put("rotated_00001.pcap");
    put("rotated_00002.pcap");
    assert_eq!(wait(3), 3);
    let _ = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    assert_eq!(status.code(), Some(0), "{err}");
    // What it indexed equals a one-shot run of the same objects.
    let once = tmpdir("s3-watch-once").join("i.db");
    code(&s.pcapidx(&once, &["index", "s3://caps/live/", "-q"]), 0);
    assert_eq!(flow_summaries(&db), flow_summaries(&once));
}

#[test]
fn a_long_session_across_ten_objects_fetches_about_its_records() {
    let s = Server::start("s3-long", &["caps"]);
    let dir = tmpdir("s3-long-db");
    let out = dir.join("gen");
    let o = crate::common::bin()
        .args([
            "generate",
            "--profile",
            "bench",
            "--size",
            "30M",
            "--file-size",
            "3M",
            "-o",
        ])
        .arg(&out)
        .output()
        .unwrap();
    code(&o, 0);
    let keys = s.put_folder(&out, "caps", "run/");
    let objects = keys.iter().filter(|k| k.ends_with(".pcap")).count() as u64;
    assert!(objects >= 10, "{keys:?}");
    let db = dir.join("i.db");
    code(&s.pcapidx(&db, &["index", "s3://caps/run/", "-q"]), 0);
    let top = &sql(
        &db,
        "SELECT flow_id, files, packets_fwd + packets_rev AS n FROM flows
         ORDER BY files DESC, n DESC LIMIT 1",
    )[0];
    let (id, files, packets) = (
        cell(&top["flow_id"]),
        top["files"].as_u64().unwrap(),
        top["n"].as_u64().unwrap(),
    );
    assert!(files >= 10 && packets >= 1000, "{top:?}");
    if let Ok(gaps) = std::env::var("PCAPIDX_TEST_COALESCE_SWEEP") {
        // Requests against bytes, for BENCHMARKS.md.
        for gap in gaps.split(',') {
            let before = s.gets();
            let out = dir.join(format!("sweep-{gap}.pcap"));
            let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_pcapidx"));
            c.arg("--db").arg(&db);
            c.args(["carve", "--flow-id", &id, "-o", out.to_str().unwrap(), "-q"]);
            s.env(&mut c, crate::common::s3::SECRET_KEY);
            c.env("PCAPIDX_S3_COALESCE", gap);
            let t = std::time::Instant::now();
            code(&c.output().unwrap(), 0);
            let ms = t.elapsed().as_millis();
            let (g, b) = (s.gets().0 - before.0, s.gets().1 - before.1);
            eprintln!("coalesce {gap}: {g} GETs, {b} bytes, {ms} ms");
        }
    }
    let before = s.gets();
    let carved = dir.join("long.pcap");
    let o = s.pcapidx(
        &db,
        &["carve", "--flow-id", &id, "-o", carved.to_str().unwrap()],
    );
    code(&o, 0);
    let (gets, fetched) = (s.gets().0 - before.0, s.gets().1 - before.1);
    let written = std::fs::metadata(&carved).unwrap().len();
    eprintln!(
        "s3 carve: {packets} packets from {files} objects: {gets} GETs, {fetched} bytes fetched, \
         {written} bytes written"
    );
    // Its records are interleaved with everything else's: few requests
    // would mean fetching the objects whole (see BENCHMARKS.md). Neighbours
    // share requests, and the bytes fetched stay near the records'.
    assert!(gets < packets / 2, "{gets} GETs for {packets} packets");
    assert!(
        fetched <= written + written / 2 + files * 16 * 1024,
        "{fetched} bytes for {written}"
    );
    // The same bytes as carving the files on disk.
    let disk = dir.join("disk.db");
    code(
        &s.pcapidx(&disk, &["index", out.to_str().unwrap(), "-q"]),
        0,
    );
    let local = dir.join("local.pcap");
    let o = s.pcapidx(
        &disk,
        &["carve", "--flow-id", &id, "-o", local.to_str().unwrap()],
    );
    code(&o, 0);
    assert_eq!(
        std::fs::read(&carved).unwrap(),
        std::fs::read(&local).unwrap()
    );
}

#[test]
fn export_writes_new_objects_that_duckdb_reads() {
    use crate::export::{by_proto_duck, by_proto_sql, duck, duckdb_ready};
    if !duckdb_ready() {
        crate::common::skip("python3 with duckdb is missing: the Parquet export cannot be checked");
        return;
    }
    let s = Server::start("s3-export", &["caps", "lake"]);
    let dir = tmpdir("s3-export-db");
    let db = dir.join("i.db");
    let rotated = crate::common::captures_in(&testdata("rotated"));
    let mut first = vec!["index", "-q", "--sensor", "alpha"];
    first.extend(rotated[..5].iter().map(|p| p.to_str().unwrap()));
    code(&s.pcapidx(&db, &first), 0);
    let o = s.pcapidx(&db, &["export", "s3://lake/flows-lake/"]);
    code(&o, 0);
    assert!(
        String::from_utf8_lossy(&o.stdout).contains("under s3://lake/flows-lake/"),
        "{}",
        text(&o)
    );
    let mirror = s.root.join("lake/flows-lake");
    let first_files = crate::common::walk(&mirror);
    assert!(!first_files.is_empty());
    let stamp: Vec<_> = first_files
        .iter()
        .map(|f| (f.clone(), std::fs::read(f).unwrap()))
        .collect();
    // More files indexed, exported again with the packets: new objects only.
    let mut rest = vec!["index", "-q"];
    rest.extend(rotated[5..].iter().map(|p| p.to_str().unwrap()));
    code(&s.pcapidx(&db, &rest), 0);
    code(
        &s.pcapidx(&db, &["export", "--packets", "s3://lake/flows-lake/"]),
        0,
    );
    for (f, bytes) in &stamp {
        assert_eq!(
            &std::fs::read(f).unwrap(),
            bytes,
            "{} was rewritten",
            f.display()
        );
    }
    // The objects (s3s-fs keeps them as files) read by DuckDB: its totals
    // through the latest version of each flow are the index's.
    assert_eq!(by_proto_duck(&mirror, "alpha"), by_proto_sql(&db));
    let packets = duck(&format!(
        "SELECT count(*) AS n FROM read_parquet('{}/packets/*/*/*/*.parquet', hive_partitioning = true)",
        mirror.display()
    ));
    assert!(packets[0]["n"].as_str().unwrap().parse::<u64>().unwrap() > 0);
    // The files table says which objects (none here: local files) by text.
    let types = duck(&format!(
        "SELECT column_type AS t FROM (DESCRIBE SELECT etag, version_id FROM read_parquet('{}/files/*/*.parquet'))",
        mirror.display()
    ));
    assert!(types.iter().all(|r| r["t"] == "VARCHAR"), "{types:?}");
    // Compaction is for a local DEST.
    let o = s.pcapidx(&db, &["export", "--compact", "s3://lake/flows-lake/"]);
    code(&o, 2);
    assert!(stderr(&o).contains("--compact"), "{}", text(&o));
    // A wrong secret: a clear error, and the export is not recorded.
    let o = s.pcapidx_with(&db, &["export", "s3://lake/flows-lake/"], "wrong");
    code(&o, 2);
    assert!(stderr(&o).contains("access denied"), "{}", text(&o));
}

#[test]
fn serve_downloads_flows_stored_in_objects() {
    use crate::common::Served;
    let s = loaded("s3-serve-carve");
    let db = tmpdir("s3-serve-carve-db").join("i.db");
    code(&s.pcapidx(&db, &["index", "s3://caps/sensor1/", "-q"]), 0);
    let id = cell(&sql(&db, "SELECT flow_id FROM flows ORDER BY files DESC LIMIT 1")[0]["flow_id"]);
    let out = db.with_file_name("c.pcap");
    code(
        &s.pcapidx(
            &db,
            &["carve", "--flow-id", &id, "-o", out.to_str().unwrap()],
        ),
        0,
    );
    let served = Served::start_with(&db, &[], |c| s.env(c, crate::common::s3::SECRET_KEY));
    let (st, _, body) = served.get(&format!("/api/carve?flow_id={id}"), &[]);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(body, std::fs::read(&out).unwrap());
    // And its stream, reassembled from the objects' records.
    let (st, _, body) = served.get(&format!("/api/flows/{id}/stream?format=jsonl"), &[]);
    assert_eq!(st, 200, "{}", String::from_utf8_lossy(&body));
    let o = s.pcapidx(
        &db,
        &["follow", "--flow-id", &id, "--format", "jsonl", "-q"],
    );
    code(&o, 0);
    assert_eq!(body, o.stdout);
}

#[test]
fn a_capture_on_a_web_server_is_read_in_place_by_range_requests() {
    let s = Server::start_public("http-src", &["pub"]);
    let rotated = testdata("rotated");
    let names = ["rotated_00002.pcap", "rotated_00003.pcap"];
    for n in names {
        s.put("pub", n, &std::fs::read(rotated.join(n)).unwrap());
    }
    let dir = tmpdir("http-src-db");
    let (db, disk) = (dir.join("i.db"), dir.join("disk.db"));
    let urls: Vec<String> = names
        .iter()
        .map(|n| format!("{}/pub/{n}", s.endpoint))
        .collect();
    let mut args = vec!["index", "-q"];
    args.extend(urls.iter().map(String::as_str));
    code(&crate::common::pcapidx(&db, &args), 0);
    let mut args = vec!["index", "-q"];
    let local: Vec<String> = names
        .iter()
        .map(|n| rotated.join(n).to_string_lossy().into_owned())
        .collect();
    args.extend(local.iter().map(String::as_str));
    code(&crate::common::pcapidx(&disk, &args), 0);
    assert_eq!(flow_summaries(&db), flow_summaries(&disk));
    assert_eq!(positions(&db), positions(&disk));
    let etags = sql(&db, "SELECT path, etag FROM files ORDER BY path");
    assert_eq!(cell(&etags[0]["path"]), urls[0]);
    assert!(
        etags.iter().all(|r| !cell(&r["etag"]).is_empty()),
        "{etags:?}"
    );
    // Carved by range requests, the same bytes.
    let id = cell(&sql(&db, "SELECT flow_id FROM flows ORDER BY files DESC LIMIT 1")[0]["flow_id"]);
    let (a, b) = (dir.join("a.pcap"), dir.join("b.pcap"));
    code(
        &crate::common::pcapidx(&db, &["carve", "--flow-id", &id, "-o", a.to_str().unwrap()]),
        0,
    );
    code(
        &crate::common::pcapidx(
            &disk,
            &["carve", "--flow-id", &id, "-o", b.to_str().unwrap()],
        ),
        0,
    );
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
    // A URL that names nothing.
    let o = crate::common::pcapidx(
        &db,
        &["index", "-q", &format!("{}/pub/nothing.pcap", s.endpoint)],
    );
    code(&o, 1);
    assert!(
        stderr(&o).contains("nothing.pcap: no such object"),
        "{}",
        text(&o)
    );
}
