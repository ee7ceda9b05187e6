//! `pcapidx serve` over HTTP on 127.0.0.1: every endpoint answers what the
//! command line prints for the same question, nobody without the token
//! gets in, nothing served can write or reach other files, and bad
//! requests get a JSON error saying what is wrong.
use std::path::Path;
use std::process::Command;

use crate::common::*;

fn enc(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn cli(db: &Path, args: &[&str]) -> Vec<u8> {
    let out = bin().arg("--db").arg(db).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "pcapidx {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

fn ok(s: &Served, path: &str) -> Vec<u8> {
    let (status, _, body) = s.get(path, &[]);
    assert_eq!(status, 200, "{path}: {}", String::from_utf8_lossy(&body));
    body
}

/// The bundled rotated set and, where present, Arkime's rotated synthetic
/// captures (real third-party files) in one index.
fn index() -> std::path::PathBuf {
    let dir = tmpdir("serve");
    let db = dir.join("i.db");
    let mut args = vec!["index".to_string(), "-q".into()];
    args.push(testdata("rotated").to_string_lossy().into_owned());
    if let Some(c) = corpus() {
        args.push(
            c.join("multi/arkime-synthetic")
                .to_string_lossy()
                .into_owned(),
        );
    }
    let refs: Vec<&str> = args.iter().map(String::as_str).collect();
    pcapidx_ok(&db, &refs, 0);
    db
}

#[test]
fn the_api_answers_what_the_command_line_prints() {
    let db = index();
    let s = Served::start(&db, &[]);
    let w = "proto = 6 AND packets_fwd > 2";
    assert_eq!(
        ok(&s, &format!("/api/flows?where={}&limit=5", enc(w))),
        cli(
            &db,
            &["flows", "--where", w, "--limit", "5", "--format", "json"]
        )
    );
    assert_eq!(
        ok(&s, "/api/flows?host=10.1.0.0%2F16&grep=ssh&limit=1000"),
        cli(
            &db,
            &[
                "flows",
                "--host",
                "10.1.0.0/16",
                "--grep",
                "ssh",
                "--limit",
                "1000",
                "--format",
                "json"
            ]
        )
    );
    assert_eq!(ok(&s, "/api/summary"), {
        let mut v = cli(&db, &["summary", "--format", "json"]);
        assert_eq!(v.pop(), Some(b'\n'));
        v
    });
    assert_eq!(
        ok(&s, "/api/files"),
        cli(&db, &["files", "--format", "json"])
    );
    assert_eq!(ok(&s, "/api/macs"), cli(&db, &["macs", "--format", "json"]));
    // Traffic over time: every flow packet, counted at index time, in whole
    // seconds (the capture spans minutes).
    let tl: serde_json::Value =
        serde_json::from_slice(&ok(&s, "/api/timeline?buckets=50")).unwrap();
    let buckets = tl["buckets"].as_array().unwrap();
    assert!(!buckets.is_empty() && buckets.len() <= 51, "{tl}");
    assert_eq!(tl["bucket_ns"].as_i64().unwrap() % 1_000_000_000, 0);
    let sum = |k: &str| buckets.iter().map(|b| b[k].as_f64().unwrap()).sum::<f64>();
    let totals = sql(
        &db,
        "SELECT sum(packets_fwd + packets_rev) AS p, sum(bytes_fwd + bytes_rev) AS b FROM flows",
    );
    assert_eq!(sum("packets") as i64, totals[0]["p"].as_i64().unwrap());
    assert_eq!(sum("bytes") as i64, totals[0]["b"].as_i64().unwrap());
    // The flows of a file, by its id: the CLI's --in-file.
    assert_eq!(
        ok(&s, "/api/flows?file=2&file=3&limit=1000"),
        cli(
            &db,
            &[
                "flows",
                "--in-file",
                "2",
                "--in-file",
                "3",
                "--limit",
                "1000",
                "--format",
                "json"
            ]
        )
    );
    assert_eq!(
        ok(&s, "/api/flows?format=csv&limit=3"),
        cli(&db, &["flows", "--format", "csv", "--limit", "3"])
    );
    // Carving: the bytes `carve -o -` writes, by id and by filter.
    let ids = sql(
        &db,
        "SELECT flow_id FROM flows ORDER BY packets_fwd + packets_rev DESC LIMIT 2",
    );
    let (a, b) = (cell(&ids[0]["flow_id"]), cell(&ids[1]["flow_id"]));
    let (status, hs, body) = s.get(&format!("/api/carve?flow_id={a}&flow_id={b}"), &[]);
    assert_eq!(status, 200);
    assert!(header(&hs, "content-disposition").is_some_and(|d| d.contains("attachment")));
    assert_eq!(
        body,
        cli(
            &db,
            &["carve", "--flow-id", &a, "--flow-id", &b, "-o", "-", "-q"]
        )
    );
    assert_eq!(
        ok(&s, &format!("/api/carve?where={}", enc("service = 'dns'"))),
        cli(
            &db,
            &["carve", "--where", "service = 'dns'", "-o", "-", "-q"]
        )
    );
    // One flow, and its packets.
    let one: serde_json::Value =
        serde_json::from_slice(&ok(&s, &format!("/api/flows/{a}"))).unwrap();
    assert_eq!(cell(&one["flow_id"]), a);
    let packets: serde_json::Value =
        serde_json::from_slice(&ok(&s, &format!("/api/flows/{a}/packets?limit=10000"))).unwrap();
    let n = one["packets_fwd"].as_u64().unwrap() + one["packets_rev"].as_u64().unwrap();
    assert_eq!(packets.as_array().unwrap().len() as u64, n);
    // Its reassembled stream: what `pcapidx follow` prints.
    for format in ["ascii", "hex", "jsonl"] {
        assert_eq!(
            ok(&s, &format!("/api/flows/{a}/stream?format={format}")),
            cli(&db, &["follow", "--flow-id", &a, "--format", format, "-q"]),
            "{format}"
        );
    }
    let count: serde_json::Value =
        serde_json::from_slice(&ok(&s, &format!("/api/flows/count?where={}", enc(w)))).unwrap();
    assert_eq!(
        count["flows"].as_u64().unwrap() as usize,
        sql(&db, &format!("SELECT flow_id FROM flows WHERE {w}")).len()
    );
    let all: serde_json::Value = serde_json::from_slice(&ok(&s, "/api/flows/count")).unwrap();
    assert_eq!(
        all["flows"].as_u64().unwrap() as usize,
        sql(&db, "SELECT flow_id FROM flows").len()
    );
    let rows: serde_json::Value = serde_json::from_slice(&ok(
        &s,
        "/api/sql?q=SELECT%20count(*)%20AS%20n%20FROM%20flows",
    ))
    .unwrap();
    assert_eq!(
        rows[0]["n"],
        sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"]
    );
}

/// Keyset paging through `X-Next-Cursor` gives the rows of one query, in
/// its order, whatever the sort column (NULLs included).
#[test]
fn pages_follow_each_other_without_gaps_or_repeats() {
    let db = index();
    let s = Served::start(&db, &[]);
    for (sort, desc) in [
        ("", false),
        ("bytes_fwd", true),
        ("service", false),
        ("src_port", true),
    ] {
        let mut q = String::new();
        if !sort.is_empty() {
            q.push_str(&format!("&sort={sort}"));
        }
        if desc {
            q.push_str("&desc=1");
        }
        let all: serde_json::Value =
            serde_json::from_slice(&ok(&s, &format!("/api/flows?limit=10000{q}"))).unwrap();
        let mut paged = Vec::new();
        let mut after: Option<String> = None;
        loop {
            let path = match &after {
                Some(c) => format!("/api/flows?limit=7{q}&after={}", enc(c)),
                None => format!("/api/flows?limit=7{q}"),
            };
            let (status, hs, body) = s.get(&path, &[]);
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
            let page: serde_json::Value = serde_json::from_slice(&body).unwrap();
            paged.extend(
                page.as_array()
                    .unwrap()
                    .iter()
                    .map(|r| r["flow_id"].clone()),
            );
            match header(&hs, "x-next-cursor") {
                Some(c) => after = Some(c.to_string()),
                None => break,
            }
        }
        let want: Vec<_> = all
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["flow_id"].clone())
            .collect();
        assert!(want.len() > 20);
        assert_eq!(paged, want, "sort {sort:?} desc {desc}");
    }
}

#[test]
fn nobody_gets_in_without_the_token() {
    let db = index();
    let s = Served::start(&db, &["--token", "s3cret-token"]);
    assert!(s.link.ends_with("/?token=s3cret-token"), "{}", s.link);
    for path in [
        "/",
        "/app.js",
        "/api/flows",
        "/api/carve?flow_id=1",
        "/api/events",
        "/nothing",
    ] {
        let (status, _, body) = s.get(path, &[]);
        assert_eq!(status, 401, "{path}");
        assert!(String::from_utf8_lossy(&body).contains("token"));
        let (status, ..) = s.get(path, &["Authorization: Bearer wrong-token"]);
        assert_eq!(status, 401, "{path}");
    }
    let (status, ..) = s.get("/api/flows", &["Authorization: Bearer s3cret-token"]);
    assert_eq!(status, 200);
    // The share link sets a cookie the page's own requests then carry.
    let (status, hs, body) = s.get("/?token=s3cret-token", &[]);
    assert_eq!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("<title>pcapidx</title>"));
    let cookie = header(&hs, "set-cookie").unwrap();
    assert!(cookie.contains("HttpOnly") && cookie.contains("SameSite=Strict"));
    let pair = cookie.split(';').next().unwrap();
    let (status, ..) = s.get("/api/summary", &[&format!("Cookie: {pair}")]);
    assert_eq!(status, 200);
    // Conservative headers on everything.
    let csp = header(&hs, "content-security-policy").unwrap();
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"));
    assert_eq!(header(&hs, "x-content-type-options"), Some("nosniff"));
}

#[test]
fn nothing_served_writes_or_runs_unbounded_and_bad_requests_say_why() {
    let db = index();
    let s = Served::start(&db, &[]);
    for q in [
        "ATTACH DATABASE '/etc/passwd' AS p",
        "PRAGMA table_info(flows)",
        "SELECT * FROM pragma_table_info('flows')",
        "VACUUM INTO '/tmp/stolen.db'",
        "DELETE FROM flow_data",
        "CREATE TABLE x (a)",
    ] {
        let (status, _, body) = s.get(&format!("/api/sql?q={}", enc(q)), &[]);
        assert!((400..500).contains(&status), "{q}: {status}");
        let e: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(e["error"].as_str().is_some_and(|m| !m.is_empty()), "{q}");
    }
    assert!(!Path::new("/tmp/stolen.db").exists());
    assert!(
        sql(&db, "SELECT count(*) AS n FROM flows")[0]["n"]
            .as_i64()
            .unwrap()
            > 0
    );
    // A query that would run forever is stopped by the time budget.
    let started = std::time::Instant::now();
    let (status, _, body) = s.get(
        &format!(
            "/api/sql?q={}",
            enc("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c")
        ),
        &[],
    );
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
    // Bad input names what is wrong.
    for (path, says) in [
        ("/api/flows?where=nosuchcolumn%20%3D%201", "no such column"),
        ("/api/flows?host=10.0.0.0%2F99", "host"),
        ("/api/flows?grep=(", "grep"),
        ("/api/flows?limit=many", "limit"),
        ("/api/flows?sort=nonsense", "sort"),
        ("/api/flows?after=junk", "after"),
        ("/api/flows?file=cap.pcap", "not a file id"),
        ("/api/timeline?buckets=lots", "buckets"),
        ("/api/flows/notanumber", "flow id"),
        ("/api/flows/999999999", "no flow"),
        ("/api/carve", "flow_id"),
        ("/api/sql", "q"),
        ("/api/nothing", "no such page"),
    ] {
        let (status, _, body) = s.get(path, &[]);
        assert!((400..500).contains(&status), "{path}: {status}");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains(says), "{path}: {text}");
    }
    // A limit above the cap is clamped, not refused; a row cap cuts SQL.
    let (status, ..) = s.get("/api/flows?limit=99999999", &[]);
    assert_eq!(status, 200);
    let (status, hs, _) = s.get(
        &format!(
            "/api/sql?q={}",
            enc("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 20000) SELECT x FROM c")
        ),
        &[],
    );
    assert_eq!(status, 200);
    assert_eq!(header(&hs, "x-truncated"), Some("true"));
    // Garbage on the socket does not stop the server.
    {
        use std::io::{Read, Write};
        let mut t = std::net::TcpStream::connect(s.addr).unwrap();
        t.write_all(b"\x00\xffGARBAGE / HTTP/9\r\n\r\n").unwrap();
        let mut sink = Vec::new();
        let _ = t.read_to_end(&mut sink);
    }
    let (status, ..) = s.get("/api/flows?limit=1", &[]);
    assert_eq!(status, 200);
}

/// The page in a real browser (headless Chromium, driven by Playwright):
/// filter, open a flow, download it (the bytes `pcapidx carve` writes), and
/// see a flow appear while `pcapidx index` adds a file. Screenshots of each
/// step are kept under target/tmp/screenshots.
#[test]
fn the_page_works_in_a_browser() {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/page.py");
    let ready = Command::new("python3")
        .args(["-c", "import playwright.sync_api"])
        .status()
        .is_ok_and(|s| s.success())
        && Path::new("/usr/bin/chromium").exists();
    if !ready {
        skip(
            "python3 with playwright, or /usr/bin/chromium, is missing: the browser test cannot run",
        );
        return;
    }
    let dir = tmpdir("serve-browser");
    let db = dir.join("i.db");
    let rotated = captures_in(&testdata("rotated"));
    let mut args = vec!["index", "-q"];
    let first: Vec<String> = rotated[..5]
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    args.extend(first.iter().map(String::as_str));
    pcapidx_ok(&db, &args, 0);
    let s = Served::start(&db, &["--token", "browser-test-token"]);
    let shots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let later: Vec<String> = rotated[5..]
        .iter()
        .map(|p| p.to_string_lossy().into_owned())
        .collect();
    let out = Command::new("python3")
        .arg(&script)
        .arg(&s.link)
        .arg(env!("CARGO_BIN_EXE_pcapidx"))
        .arg(&db)
        .arg(&shots)
        .args(&later)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
